"""Success rates of every task's scripted expert on every engine: the task x engine table.

``tground bench experts --episodes 50`` runs seeds 0..49 of each task in one native
VectorEnv per engine (environment i gets seed i, so each engine sees the same episodes),
prints the table with 95 % Wilson intervals, and writes JSON and a PNG. The acceptance
rule of the scenes issue is checked per task: at least 80 % on each engine, and the
engines within 10 points of each other. ``--robots humanoid43 compact43`` puts other robots'
rows beside humanoid43's (keyed "task (robot)"), and ``--grasp physical assisted`` rows of each grasp
mode; a row in a mode other than its task's default is keyed "task [mode]" (the rigid tasks default to
physical, cloth, which only the assisted rule holds, to assisted and is left out of the physical rows).
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
from ..envs import TASKS, make_config, make_task_env, parse_overrides, resolve_task_id
from ..errors import UnknownNameError
from ..physics.grasp import GRASP_MODES
from ..progress import progress_bar

MIN_SUCCESS = 0.8
MAX_GAP = 0.10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", nargs="+", default=None, help="task ids or aliases (default: every task with an expert)")
    parser.add_argument("--backends", nargs="+", default=["numpy", "pybullet"], choices=["numpy", "pybullet"])
    parser.add_argument("--episodes", type=int, default=50, help="episodes (seeds seed..seed+K-1) per task and engine")
    parser.add_argument("--seed", type=int, default=0, help="first seed (default: 0)")
    parser.add_argument("--robots", nargs="+", default=["humanoid43"], metavar="NAME_OR_SPEC",
                        help="robots, side by side in the table: registered names or spec files (default: humanoid43)")
    parser.add_argument("--grasp", nargs="+", default=None, choices=list(GRASP_MODES),
                        help="grasp modes, side by side in the table (default: each task's own: physical, "
                             "assisted for cloth)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="task config override for every row, repeatable: --set robot_revision=2")
    parser.add_argument("--json", default="bench_experts.json", help="write results here")
    parser.add_argument("--png", default="bench_experts.png", help="write the bar chart here")


def run_expert_batch(task_id: str, backend: str, episodes: int, seed: int = 0, progress=None, robot: str = "humanoid43",
                     grasp: str | None = None, overrides=None):
    """Seeds seed..seed+K-1, one per environment of a VectorEnv; returns success (K,) and lengths (K,).
    grasp: a grasp mode (None: the task's default)."""
    config = {**(overrides or {}), **({} if grasp is None else {"grasp": grasp})}
    env = make_task_env(task_id, episodes, backend=backend, config=config, robot=robot)
    try:
        ends = PolicyRunner(env, range(seed, seed + episodes), load_policy("expert", env),
                            on_end=None if progress is None else lambda end: progress(1)).run()
    finally:
        env.close()
    return np.array([end.success for end in ends]), np.array([end.steps for end in ends], dtype=np.int64)


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(results["tasks"])
    backends = results["backends"]
    width = 0.8 / len(backends)
    figure, ax = plt.subplots(figsize=(1.9 * len(tasks) + 2, 4))
    for b, backend in enumerate(backends):
        rates = [results["tasks"][t][backend]["success_rate"] * 100 for t in tasks]
        low = [rates[i] - results["tasks"][t][backend]["ci95"][0] * 100 for i, t in enumerate(tasks)]
        high = [results["tasks"][t][backend]["ci95"][1] * 100 - rates[i] for i, t in enumerate(tasks)]
        x = np.arange(len(tasks)) + (b - (len(backends) - 1) / 2) * width
        ax.bar(x, rates, width, yerr=[low, high], capsize=3, label=backend)
    ax.axhline(MIN_SUCCESS * 100, color="k", linestyle="--", linewidth=1, label="80 % bar")
    ax.set_xticks(np.arange(len(tasks)), [t.split("/")[-1].replace(" (", "\n(") for t in tasks])
    ax.set_ylabel(f"expert success, % of {results['episodes']} seeds (95 % CI)")
    ax.set_ylim(0, 105)
    ax.legend(loc="lower right")
    ax.grid(True, axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(args: argparse.Namespace) -> int:
    with_expert = [task_id for task_id, spec in TASKS.items() if spec.expert]
    task_ids = [resolve_task_id(name) for name in args.tasks] if args.tasks else with_expert
    missing = [t for t in task_ids if t not in with_expert]
    if missing:
        raise UnknownNameError(f"no scripted expert for {missing}; experts exist for {sorted(with_expert)}")
    overrides = parse_overrides(getattr(args, "overrides", []))
    for task_id in task_ids:  # bad overrides are refused before anything runs
        make_config(TASKS[task_id].config_class, overrides)
    results = {"machine": platform.platform(), "episodes": args.episodes, "first_seed": args.seed, "overrides": overrides,
               "backends": args.backends, "robots": list(args.robots), "grasp": args.grasp, "tasks": {}}
    # One row per task, robot and grasp mode: humanoid43's rows in the task's default mode keep the task id as key.
    default_grasp = {task_id: make_config(TASKS[task_id].config_class, overrides).grasp for task_id in task_ids}
    rows = [(task_id, robot, grasp) for task_id in task_ids for robot in args.robots
            for grasp in (args.grasp or [default_grasp[task_id]]) if grasp in TASKS[task_id].task_class.grasp_modes]
    with progress_bar(len(rows) * len(args.backends) * args.episodes, "expert episodes", unit="ep") as bar:
        for task_id, robot, grasp in rows:
            row = {"task": task_id, "robot": robot, "grasp": grasp}
            for backend in args.backends:
                start = time.perf_counter()
                success, lengths = run_expert_batch(task_id, backend, args.episodes, args.seed, bar.update, robot,
                                                    grasp, overrides)
                row[backend] = {"successes": int(success.sum()), "success_rate": float(success.mean()),
                                "ci95": wilson_interval(int(success.sum()), args.episodes),
                                "mean_length": float(lengths.mean()), "wall_s": time.perf_counter() - start,
                                "failed_seeds": [int(args.seed + i) for i in np.flatnonzero(~success)]}
            rates = [row[b]["success_rate"] for b in args.backends]
            row["gap_points"] = 100 * (max(rates) - min(rates))
            row["meets_bar"] = min(rates) >= MIN_SUCCESS and max(rates) - min(rates) <= MAX_GAP + 1e-12
            key = task_id if robot == "humanoid43" else f"{task_id} ({Path(robot).stem})"
            results["tasks"][key if grasp == default_grasp[task_id] else f"{key} [{grasp}]"] = row
    print(f"scripted experts, seeds {args.seed}..{args.seed + args.episodes - 1}")
    print(f"{'task':<48} " + " ".join(f"{b:>22}" for b in args.backends) + "   gap  >=80% & <=10 pts")
    for key, row in results["tasks"].items():
        cells = " ".join(f"{row[b]['successes']:>3}/{args.episodes} ({100 * row[b]['success_rate']:5.1f} %)     "
                         for b in args.backends)
        print(f"{key:<48} {cells} {row['gap_points']:5.1f}  {'yes' if row['meets_bar'] else 'NO'}")
    Path(args.json).write_text(json.dumps(results, indent=2))
    plot(results, args.png)
    print(f"wrote {args.json} and {args.png}")
    return 0 if all(row["meets_bar"] for row in results["tasks"].values()) else 1
