"""Env-steps per second of a task on a backend for several batch sizes, plus the pybullet layout choice.

``tground bench envs --task bread --backend pybullet --num-envs 1 8 --json out.json --png out.png``

Two measurements, one run:

- *task*: full control steps of the task (scripted-expert actions, IK, rewards, observations,
  auto-reset), batched over N environments of one engine;
- *layout* (pybullet only): the physics alone with the shared PD law, for the two ways of
  holding N environments: N DIRECT clients with one robot each (what the engine uses), or
  one client with N robots side by side. Reported as ratios in the same run.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="bread", help="task id or alias (default: bread)")
    parser.add_argument("--backend", default="pybullet", help="physics backend (default: pybullet)")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 8], help="batch sizes (default: 1 8)")
    parser.add_argument("--steps", type=int, default=200, help="control steps per batch size (default: 200)")
    parser.add_argument("--no-layout", action="store_true", help="skip the pybullet layout comparison")
    parser.add_argument("--json", default="bench_envs.json", help="write results here (default: bench_envs.json)")
    parser.add_argument("--png", default="bench_envs.png", help="write the plot here (default: bench_envs.png)")


def measure_task(task_id: str, backend: str, num_envs: int, steps: int) -> dict:
    from ..agents.experts import EXPERTS
    from ..envs import TASKS

    task = TASKS[task_id][1](backend=backend, num_envs=num_envs, action_mode="ee_delta")
    try:
        expert = EXPERTS[task_id](num_envs, task.config.ik, task.scene.robot_position)
        rngs = [np.random.default_rng(seed) for seed in range(num_envs)]
        observation = task.observe()
        episodes = 0
        start = time.perf_counter()
        for _ in range(steps):
            observation, _, terminated, truncated, _ = task.step(expert.act(observation))
            done = np.flatnonzero(terminated | truncated)
            if done.size:
                episodes += done.size
                task.reset(done, [rngs[i] for i in done])
                expert.reset(terminated | truncated)
                observation = task.observe()
        elapsed = time.perf_counter() - start
    finally:
        task.close()
    return {"num_envs": num_envs, "steps": steps, "seconds": elapsed,
            "env_steps_per_s": num_envs * steps / elapsed, "episodes_finished": episodes}


def measure_pybullet_layout(num_envs: int, physics_steps: int = 500) -> dict:
    """Physics-only env-steps/s (per physics step) for N clients vs N robots in one client."""
    import pybullet
    from pybullet_utils import bullet_client

    from .. import robots
    from ..physics.engine import pd_torques

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

    figure, axes = plt.subplots(1, 2 if results.get("layout") else 1, figsize=(10, 4), squeeze=False)
    rows = results["task"]
    ax = axes[0, 0]
    ax.plot([r["num_envs"] for r in rows], [r["env_steps_per_s"] for r in rows], "o-", label=results["backend"])
    ax.set_xscale("log", base=2)
    ax.set_xlabel("environments per engine (N)")
    ax.set_ylabel("env-steps / s (control steps, 50 Hz)")
    ax.set_title(f"{results['task_id']}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    if results.get("layout"):
        ax = axes[0, 1]
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
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..envs import resolve_task_id

    task_id = resolve_task_id(args.task)
    results = {"task_id": task_id, "backend": args.backend, "machine": platform.platform(),
               "processor": platform.processor() or platform.machine(), "task": [], "layout": []}
    for n in tqdm(args.num_envs, desc="task throughput", unit="N"):
        results["task"].append(measure_task(task_id, args.backend, n, args.steps))
    if args.backend == "pybullet" and not args.no_layout:
        for n in tqdm(args.num_envs, desc="pybullet layout", unit="N"):
            results["layout"].append(measure_pybullet_layout(n))
    print(f"{'N':>6} {'env-steps/s':>12} {'episodes':>9}")
    for row in results["task"]:
        print(f"{row['num_envs']:>6} {row['env_steps_per_s']:>12.1f} {row['episodes_finished']:>9}")
    for row in results["layout"]:
        steps = row["physics_steps_per_s"]
        print(f"layout N={row['num_envs']}: separate clients {steps['separate_clients']:.0f}/s, "
              f"one client {steps['one_client']:.0f}/s (ratio {row['ratio_separate_over_shared']:.2f})")
    Path(args.json).write_text(json.dumps(results, indent=2))
    plot(results, args.png)
    print(f"wrote {args.json} and {args.png}")
    return 0
