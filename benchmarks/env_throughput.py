"""Env-steps per second of every task, numpy vs pybullet, for several batch sizes, plus the pybullet layout choice
and the engine benchmark's contact-on row (numpy vs MuJoCo on the bread table).

``tground bench envs --num-envs 1 64 1024 --json out.json --png out.png`` (``--tasks bread stand`` for a subset;
``--num-envs 1 --repeats 5 --no-layout --contact-num-envs 0`` for the single environment of ``gymnasium.make``;
``--render-num-envs 1 16 64 --camera-episodes 40`` adds what cameras cost: benchmarks/camera_throughput.py)

Three measurements, one run:

- *task*: full control steps of the task (scripted-expert actions, IK, rewards, observations,
  auto-reset) on each backend, N environments split over one worker process per core, each
  running for ``--seconds`` after a warm-up. pybullet holds one DIRECT client per
  environment; above ``--pybullet-max`` environments its best measured rate stands in
  (marked ``extrapolated``), since each client costs the same at any N;
- *layout* (pybullet only): the physics alone with the shared PD law, for the two ways of
  holding N environments: N DIRECT clients with one robot each (what the engine uses), or
  one client with N robots side by side;
- *contacts on*: the bread table with its roll, physics only, numpy vs MuJoCo at one N
  (benchmarks/engine_throughput.py, same robot and objects in both).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from ..progress import progress_bar
from .. import robots
from ..envs import TASKS, load_entry_point, make_config, parse_overrides, resolve_task_id, task_spec

from ..physics.engine import pd_torques
from . import camera_throughput, engine_throughput
from .engine_throughput import in_processes, plot_throughput


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", nargs="+", default=None, help="task ids or aliases (default: every registered task)")
    parser.add_argument("--backends", nargs="+", default=["numpy", "pybullet"], choices=["numpy", "pybullet"],
                        help="backends to measure (default: numpy pybullet)")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 64, 1024], help="batch sizes (default: 1 64 1024)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: all cores)")
    parser.add_argument("--seconds", type=float, default=3.0, help="measured wall time per point (default: 3)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="measurements per point, backends interleaved; the median is reported with the min-max "
                             "spread (default: 3)")
    parser.add_argument("--pybullet-max", type=int, default=64,
                        help="largest N measured for pybullet; larger N reuse its best rate (default: 64)")
    parser.add_argument("--no-layout", action="store_true", help="skip the pybullet layout comparison")
    parser.add_argument("--contact-num-envs", type=int, default=1024, metavar="N",
                        help="also run the engine benchmark's contact-on row (bread table, numpy vs MuJoCo) at this N; "
                             "0 skips it")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="task config override for every task, repeatable: --set grasp=physical")
    parser.add_argument("--render-num-envs", type=int, nargs="+", default=[], metavar="N",
                        help="also measure the head camera's RGB-D frames/s per core for batches of these sizes, on "
                             "each backend (benchmarks/camera_throughput.py; default: skip)")
    parser.add_argument("--render-size", type=int, nargs=2, default=(128, 128), metavar=("WIDTH", "HEIGHT"),
                        help="the pictures' size for --render-num-envs (default: 128 128)")
    parser.add_argument("--camera-episodes", type=int, default=0, metavar="E",
                        help="also collect E episodes of the first task state-only and with a head camera, and "
                             "compare episodes per core per day (default: 0, skip)")
    parser.add_argument("--camera-robots", type=int, default=8, help="simulated robots for --camera-episodes")
    parser.add_argument("--json", default="bench_envs.json", help="write results here (default: bench_envs.json)")
    parser.add_argument("--png", default="bench_envs.png", help="write the plot here (default: bench_envs.png)")


def task_worker(num_envs: int, task_id: str, backend: str, seconds: float, barrier, overrides=None
                ) -> tuple[int, float]:
    """Control steps of the task with its scripted expert on num_envs environments for ``seconds``; ``overrides``:
    task config values (--set)."""
    spec = task_spec(task_id)
    config = make_config(spec.config_class, overrides or {})
    task = spec.task_class(backend=backend, num_envs=num_envs, config=config)  # default action mode: its expert's
    try:
        expert = load_entry_point(spec.expert).for_task(task)
        rngs = [np.random.default_rng(seed) for seed in range(num_envs)]
        observation = task.observe()

        def advance(observation):
            observation, _, terminated, truncated, _ = task.step(expert.act(observation))
            done = np.flatnonzero(terminated | truncated)
            if done.size:
                task.reset(done, [rngs[i] for i in done])
                expert.reset(terminated | truncated)
                observation = task.observe()
            return observation

        observation = advance(observation)  # warm-up
        barrier.wait()
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            observation = advance(observation)
            steps += 1
        return steps * num_envs, time.perf_counter() - start
    finally:
        task.close()


def measure_pybullet_layout(num_envs: int, physics_steps: int = 500) -> dict:
    """Physics-only env-steps/s (per physics step) for N clients vs N robots in one client."""
    import pybullet
    from pybullet_utils import bullet_client


    robot = robots.load("humanoid43")
    targets = robot.keyframe("arms_ready")

    def load(client, offset):
        body = client.loadURDF(str(robot.urdf_path), [offset, 0, robot.standing_base_height], useFixedBase=True,
                               flags=pybullet.URDF_USE_INERTIA_FROM_FILE)
        ids = list(range(client.getNumJoints(body)))
        client.setJointMotorControlArray(body, ids, pybullet.VELOCITY_CONTROL, forces=[0.0] * len(ids))
        names = {client.getJointInfo(body, j)[1].decode(): j for j in ids}
        joints = [names[n] for n in robot.joint_names]
        for joint, q in zip(joints, targets):
            client.resetJointState(body, joint, q)
        return body, joints

    def run(pairs, clients):
        start = time.perf_counter()
        for _ in range(physics_steps):
            for client, body, joints in pairs:
                states = client.getJointStates(body, joints)
                q = np.array([s[0] for s in states])
                qd = np.array([s[1] for s in states])
                client.setJointMotorControlArray(body, joints, pybullet.TORQUE_CONTROL,
                                                 forces=pd_torques(robot, q, qd, targets).tolist())
            for client in clients:
                client.stepSimulation()
        return num_envs * physics_steps / (time.perf_counter() - start)

    results = {}
    clients = [bullet_client.BulletClient(pybullet.DIRECT) for _ in range(num_envs)]
    try:
        for client in clients:
            client.setGravity(0, 0, -9.81)
            client.setTimeStep(1 / 500)
        pairs = [(client, *load(client, 0.0)) for client in clients]
        results["separate_clients"] = run(pairs, clients)
    finally:
        for client in clients:
            client.disconnect()
    shared = bullet_client.BulletClient(pybullet.DIRECT)
    try:
        shared.setGravity(0, 0, -9.81)
        shared.setTimeStep(1 / 500)
        pairs = [(shared, *load(shared, 3.0 * i)) for i in range(num_envs)]
        results["one_client"] = run(pairs, [shared])
    finally:
        shared.disconnect()
    return {"num_envs": num_envs, "physics_steps_per_s": results,
            "ratio_separate_over_shared": results["separate_clients"] / results["one_client"]}


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = results["tasks"]
    cameras = bool(results.get("render") or results.get("camera_collection"))
    panels = len(tasks) + bool(results.get("layout")) + 2 * cameras
    columns = min(panels, 3)
    rows = -(-panels // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.8 * rows), squeeze=False)
    for ax in axes.flat[panels:]:
        ax.set_visible(False)
    for ax, (task_id, task_rows) in zip(axes.flat, tasks.items()):
        plot_throughput(ax, task_rows, "env-steps / s (control steps, 50 Hz)", task_id.split("/")[-1])
        for row in task_rows:  # the min-max spread of the repeats
            for runs in row.get("runs", {}).values():
                ax.plot([row["num_envs"]] * 2, [min(runs), max(runs)], "-", color="0.4", linewidth=1)
    if results.get("layout"):
        ax = axes.flat[len(tasks)]
        layout = results["layout"]
        ns = [r["num_envs"] for r in layout]
        for key, label in (("separate_clients", "N DIRECT clients"), ("one_client", "N robots in one client")):
            ax.plot(ns, [r["physics_steps_per_s"][key] for r in layout], "o-", label=label)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("environments (N)")
        ax.set_ylabel("physics steps / s (500 Hz, PD torque law)")
        ax.set_title("pybullet layout")
        ax.grid(True, alpha=0.3)
        ax.legend()
    if cameras:
        camera_throughput.plot_rows(axes.flat[panels - 2:panels], results.get("render", []),
                                    results.get("camera_collection", []))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def measure_task(task_id: str, args: argparse.Namespace, progress) -> list[dict]:
    """Rows of env-steps/s for one task over args.num_envs, numpy and pybullet (extrapolated above --pybullet-max).

    Each point is measured ``args.repeats`` times with the backends interleaved, so that both see the same
    load on a shared machine: ``env_steps_per_s`` holds the median, ``runs`` every measurement.
    """
    rows, best_pybullet = [], 0.0
    overrides = parse_overrides(getattr(args, "overrides", []))
    for n in args.num_envs:
        row = {"num_envs": n, "env_steps_per_s": {}, "runs": {}, "extrapolated": []}
        measured = [b for b in ("numpy", "pybullet") if b in args.backends and (b == "numpy" or n <= args.pybullet_max)]
        for _ in range(max(1, args.repeats)):
            for backend in measured:
                rate = in_processes(task_worker, n, args.workers, task_id, backend, args.seconds, overrides=overrides)
                row["runs"].setdefault(backend, []).append(rate)
        for backend, runs in row["runs"].items():
            row["env_steps_per_s"][backend] = float(np.median(runs))
        if "pybullet" in measured:
            best_pybullet = max(best_pybullet, row["env_steps_per_s"]["pybullet"])
        elif "pybullet" in args.backends:
            if not best_pybullet:
                best_pybullet = in_processes(task_worker, args.pybullet_max, args.workers, task_id, "pybullet",
                                             args.seconds, overrides=overrides)
            row["env_steps_per_s"]["pybullet"] = best_pybullet
            row["extrapolated"].append("pybullet")
        if len(row["env_steps_per_s"]) == 2:
            row["numpy_over_pybullet"] = row["env_steps_per_s"]["numpy"] / row["env_steps_per_s"]["pybullet"]
            if len(row["runs"]) == 2:  # the ratio within each interleaved repeat, which the load cancels out of
                row["numpy_over_pybullet_runs"] = [a / b for a, b in zip(row["runs"]["numpy"], row["runs"]["pybullet"])]
        rows.append(row)
        progress.update()
    return rows


def main(args: argparse.Namespace) -> int:
    task_ids = [resolve_task_id(name) for name in args.tasks] if args.tasks else list(TASKS)
    for task_id in task_ids:  # bad overrides are refused before anything runs
        spec = task_spec(task_id)
        spec.task_class.check_grasp(make_config(spec.config_class, parse_overrides(args.overrides)))
    results = {"task_ids": task_ids, "machine": platform.platform(), "cpu_count": os.cpu_count(),
               "workers": args.workers, "seconds_per_point": args.seconds, "repeats": args.repeats,
               "overrides": parse_overrides(args.overrides), "tasks": {},
               "layout": []}
    with progress_bar(len(task_ids) * len(args.num_envs), "task throughput", unit="point") as progress:
        for task_id in task_ids:
            results["tasks"][task_id] = measure_task(task_id, args, progress)
    if "pybullet" in args.backends and not args.no_layout:
        for n in progress_bar(desc="pybullet layout", unit="N",
                              iterable=[n for n in args.num_envs if n <= args.pybullet_max]):
            results["layout"].append(measure_pybullet_layout(n))
    if args.render_num_envs:
        with progress_bar(None, "render", unit="point") as progress:
            results["render"] = camera_throughput.render_rows(
                task_ids[0], args.backends, args.render_num_envs, *args.render_size, args.seconds, args.workers,
                args.repeats, args.pybullet_max, progress)
    if args.camera_episodes:
        results["camera_collection"] = camera_throughput.collection_rows(task_ids[0], args.camera_episodes,
                                                                         args.camera_robots, args.overrides)
    if args.contact_num_envs:
        try:
            import mujoco  # noqa: F401
            engines = ("numpy", "mujoco")
        except ImportError:
            print("MuJoCo is not installed (pip install \".[bench]\" from the project's folder): the contact-on row runs "
                  "numpy alone")
            engines = ("numpy",)
        results["contact_row"] = engine_throughput.contact_row(args.contact_num_envs, args.workers, args.seconds,
                                                               engines)
    print(f"env-steps/s on {args.workers} workers (control steps at 50 Hz, scripted expert acting)")
    print(f"{'task':<34} {'N':>6} " + " ".join(f"{b:>12}" for b in args.backends) + "  numpy/pybullet")
    for task_id, rows in results["tasks"].items():
        for row in rows:
            rates = row["env_steps_per_s"]
            cells = " ".join(f"{rates[b]:>11.0f}{'*' if b in row['extrapolated'] else ' '}" for b in args.backends)
            spread = "  ".join(f"{b} {min(r):.0f}-{max(r):.0f}" for b, r in row["runs"].items() if len(r) > 1)
            print(f"{task_id:<34} {row['num_envs']:>6} {cells} {row.get('numpy_over_pybullet', float('nan')):>15.2f}"
                  + (f"  (spread: {spread})" if spread else ""))
    if any(row["extrapolated"] for rows in results["tasks"].values() for row in rows):
        print(f"* pybullet above N = {args.pybullet_max}: its best measured rate (independent clients cost the same per env)")
    for row in results["layout"]:
        steps = row["physics_steps_per_s"]
        print(f"layout N={row['num_envs']}: separate clients {steps['separate_clients']:.0f}/s, "
              f"one client {steps['one_client']:.0f}/s (ratio {row['ratio_separate_over_shared']:.2f})")
    if "contact_row" in results:
        engine_throughput.print_contact_row(results["contact_row"])
    camera_throughput.print_rows(results.get("render", []), results.get("camera_collection", []))
    Path(args.json).write_text(json.dumps(results, indent=2))
    plot(results, args.png)
    print(f"wrote {args.json} and {args.png}")
    return 0
