"""How the physics rate shapes the tasks: expert success, joint tracking and contact penetration per rate.

``tground bench steps --rates 1000 500 250 200 --episodes 16`` runs every task's scripted
expert at each physics rate with 50 Hz control, on both engines, seeds 0..K-1 (the same
episodes everywhere), and reports per task, engine and rate:

- success rate (with its 95 % Wilson interval) and diverged episodes;
- joint tracking error: the RMS over joints of target minus position after each control
  step, averaged over steps, and its largest value;
- contact penetration: the deepest that any of the robot's contact spheres (the numpy
  engine's collision model, placed at each engine's own link poses) reaches into the floor
  or a table box after a control step, over all episodes, and the mean of each episode's deepest;
- the simulation rate: simulated seconds per wall second for the whole batch.

A point whose engine refuses the robot's gains at that step (pybullet's explicit law past its
stability bound, physics/drives.py) is recorded as refused, with the engine's message.

The default physics rate is chosen from this table (README shows it): the largest step at
which every task keeps its expert success on both engines.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from ..agents.evaluate import wilson_interval
from ..agents.policies import load_policy
from ..agents.runner import PolicyRunner
from ..envs import TASKS, make_task_env, resolve_task_id
from ..envs.base import TaskConfig
from ..errors import InputError
from ..physics.contacts import StaticGeometry, contact_spheres, static_contacts
from ..physics.engine import DRIVES, MAX_PHYSICS_DT
from ..physics.rotations import quat_to_matrix
from ..progress import progress_bar

RATES = (1000, 500, 250, 200)
CONTROL_HZ = round(1 / TaskConfig.control_dt)  # every task's control rate (50 Hz)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", nargs="+", default=None, help="task ids or aliases (default: every task with an expert)")
    parser.add_argument("--backends", nargs="+", default=["numpy", "pybullet"], choices=["numpy", "pybullet"])
    parser.add_argument("--rates", type=int, nargs="+", default=list(RATES),
                        help="physics rates in Hz, each a multiple of the 50 Hz control (default: 1000 500 250 200)")
    parser.add_argument("--numpy-drives", nargs="+", default=["damping_implicit", "implicit"], choices=DRIVES,
                        help="the numpy engine's drive laws to measure (pybullet runs its explicit law)")
    parser.add_argument("--episodes", type=int, default=16, help="episodes (seeds seed..seed+K-1) per point")
    parser.add_argument("--seed", type=int, default=0, help="first seed (default: 0)")
    parser.add_argument("--json", default="bench_steps.json", help="write results here")
    parser.add_argument("--png", default="bench_steps.png", help="write the plot here")


class StepStudyRunner(PolicyRunner):
    """The expert's episodes, measuring joint tracking and contact penetration after every control step."""

    def __init__(self, env, seeds, policy):
        super().__init__(env, seeds, policy)
        engine = self.task.engine
        robot = engine.robot
        names = tuple(_urdf_link_names(robot.urdf_path))
        spheres = contact_spheres(robot, names)
        used = sorted(set(spheres.body.tolist()))
        self.links = [names[i] for i in used]
        self.sphere_link = np.searchsorted(used, spheres.body)
        self.sphere_center, self.sphere_radius = spheres.center, spheres.radius
        self.geometry = StaticGeometry.from_scene(engine.scene)
        self.tracking_sum = np.zeros(self.num_envs)
        self.tracking_max = np.zeros(self.num_envs)
        self.deepest = np.zeros(self.num_envs)
        self.results: list[dict] = []

    def started(self, env_ids, observation) -> None:
        super().started(env_ids, observation)
        self.tracking_sum[env_ids] = self.tracking_max[env_ids] = self.deepest[env_ids] = 0.0

    def after_step(self, active, actions, observation, rewards, terminated, truncated, info) -> None:
        engine = self.task.engine
        joint_pos, _ = engine.joint_state()
        rms = np.sqrt(np.mean((engine.joint_targets - joint_pos) ** 2, axis=1))
        self.tracking_sum[active] += rms[active]
        self.tracking_max[active] = np.maximum(self.tracking_max[active], rms[active])
        poses = engine.link_poses(self.links)  # (N, L, 7)
        rotation = quat_to_matrix(poses[..., 3:].reshape(-1, 4)).reshape(*poses.shape[:2], 3, 3)
        centers = poses[:, self.sphere_link, :3] + np.einsum(
            "nsij,sj->nsi", rotation[:, self.sphere_link], self.sphere_center)  # (N, S, 3)
        depth, _, _ = static_contacts(self.geometry, np.transpose(centers, (2, 1, 0)), self.sphere_radius)
        self.deepest[active] = np.maximum(self.deepest[active], depth.max(axis=0)[active])

    def ended(self, ends, info) -> None:
        super().ended(ends, info)
        for end in ends:
            i = end.slot
            self.results.append({"seed": end.seed, "success": bool(end.success), "diverged": bool(end.diverged),
                                 "steps": int(end.steps),
                                 "tracking_rms_mean": float(self.tracking_sum[i] / max(end.steps, 1)),
                                 "tracking_rms_max": float(self.tracking_max[i]),
                                 "penetration_max": float(max(self.deepest[i], 0.0))})


def _urdf_link_names(urdf_path) -> list[str]:
    import xml.etree.ElementTree as ET

    return [link.get("name") for link in ET.parse(urdf_path).getroot().findall("link")]


def measure(task_id: str, backend: str, rate: int, episodes: int, seed: int, drive: str | None = None) -> dict:
    """One point of the table: the expert's episodes at physics ``rate`` Hz on ``backend`` (numpy: with ``drive``)."""
    overrides = {"drive": drive} if drive is not None else {}
    point = {"task": task_id, "backend": backend, "drive": drive or "explicit", "physics_hz": rate}
    try:
        env = make_task_env(task_id, episodes, backend=backend, physics_dt=1.0 / rate, **overrides)
    except InputError as error:  # the engine refuses gains its law cannot integrate at this step
        return {**point, "refused": str(error)}
    try:
        runner = StepStudyRunner(env, range(seed, seed + episodes), load_policy("expert", env))
        start = time.perf_counter()
        runner.run()
        wall = time.perf_counter() - start
        control_dt = env.unwrapped.task.config.control_dt
    finally:
        env.close()
    rows = runner.results
    successes = sum(row["success"] for row in rows)
    low, high = wilson_interval(successes, len(rows))
    steps = sum(row["steps"] for row in rows)
    return {
        **point, "episodes": len(rows),
        "success_rate": successes / len(rows), "success_interval": [low, high],
        "diverged": sum(row["diverged"] for row in rows),
        "tracking_rms_mean": float(np.mean([row["tracking_rms_mean"] for row in rows])),
        "tracking_rms_max": float(max(row["tracking_rms_max"] for row in rows)),
        "penetration_max": float(max(row["penetration_max"] for row in rows)),
        "penetration_mean": float(np.mean([row["penetration_max"] for row in rows])),
        "simulated_s_per_wall_s": steps * control_dt / wall,
    }


def format_table(points: list[dict]) -> str:
    lines = [f"{'task':<34} {'engine':<9} {'drive':<16} {'Hz':>5} {'success':>8} {'diverged':>8} {'track rms':>10} "
             f"{'track max':>10} {'depth max':>10} {'depth mean':>10} {'sim s/s':>8}"]
    for p in points:
        if "refused" in p:
            lines.append(f"{p['task']:<34} {p['backend']:<9} {p['drive']:<16} {p['physics_hz']:>5}  refused: "
                         f"{p['refused'].split(':')[0]}")
            continue
        lines.append(f"{p['task']:<34} {p['backend']:<9} {p['drive']:<16} {p['physics_hz']:>5} {p['success_rate']:>8.0%} "
                     f"{p['diverged']:>8} {p['tracking_rms_mean']:>10.4f} {p['tracking_rms_max']:>10.4f} "
                     f"{1000 * p['penetration_max']:>8.1f}mm {1000 * p['penetration_mean']:>8.1f}mm "
                     f"{p['simulated_s_per_wall_s']:>8.2f}")
    return "\n".join(lines)


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = results["points"]
    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    panels = (("success_rate", "expert success", 1.0), ("tracking_rms_mean", "joint tracking RMS (rad)", 1.0),
              ("penetration_max", "deepest penetration (mm)", 1000.0))
    for ax, (key, label, scale) in zip(axes, panels):
        for task in results["tasks"]:
            for (backend, drive), style in (((b, d), st) for b, d, st in (
                    ("numpy", "damping_implicit", "o-"), ("numpy", "implicit", "d-"), ("numpy", "explicit", "x-"),
                    ("pybullet", "explicit", "s--"))):
                line = sorted((p for p in points if p["task"] == task and p["backend"] == backend
                               and p["drive"] == drive and "refused" not in p), key=lambda p: p["physics_hz"])
                if line:
                    ax.plot([p["physics_hz"] for p in line], [scale * p[key] for p in line], style,
                            label=f"{task.split('/')[-1]} {backend} {drive}")
        ax.set_xlabel("physics rate (Hz), control 50 Hz")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7)
    figure.suptitle(f"Step-size study, {results['episodes']} expert episodes per point")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def check_args(args: argparse.Namespace) -> None:
    """Bad rates or counts are refused before any point runs (a refused point means the engine refused gains)."""
    if args.episodes < 1:
        raise InputError(f"--episodes must be >= 1, got {args.episodes}")
    if args.seed < 0:
        raise InputError(f"--seed must be >= 0, got {args.seed}")
    lowest = round(1 / MAX_PHYSICS_DT)
    bad = [rate for rate in args.rates if rate < lowest or rate % CONTROL_HZ]
    if bad:
        raise InputError(f"--rates {bad}: each rate must be a multiple of the {CONTROL_HZ} Hz control and at least "
                         f"{lowest} Hz (the largest physics step the engines take)")


def main(args: argparse.Namespace) -> int:
    check_args(args)
    tasks = [resolve_task_id(task) for task in args.tasks] if args.tasks else [
        task_id for task_id, spec in TASKS.items() if spec.expert]
    runs = [(task, backend, drive, rate) for task in tasks for backend in args.backends
            for drive in (args.numpy_drives if backend == "numpy" else [None]) for rate in args.rates]
    results = {"machine": platform.platform(), "episodes": args.episodes, "seed": args.seed, "tasks": tasks,
               "rates": args.rates, "points": []}
    for task, backend, drive, rate in progress_bar(desc="step-size study", unit="point", iterable=runs):
        results["points"].append(measure(task, backend, rate, args.episodes, args.seed, drive))
    print(format_table(results["points"]))
    Path(args.json).write_text(json.dumps(results, indent=2))
    plot(results, args.png)
    print(f"wrote {args.json} and {args.png}")
    return 0
