"""Adversarial policies against every task on both engines: is every blow-up flagged as diverged?

``tground bench adversarial`` drives each task with policies chosen to provoke the engines
(uniform random actions, bang-bang switching between -1 and +1, full-amplitude sinusoids; Stand
adds its own pushes), by default in ``joint_pos`` mode, which reaches the PD targets' extremes
in one step. Episodes end only at the time limit or a divergence: a fallen robot or a dropped
garment is stepped on, as a careless training loop would. For every env-step it counts
non-finite observations, the divergences the engine flagged, and the *unflagged* exceedances
it measures itself from the engine's reads (not from its flag), once per quantity: a watched
link (base, feet, palms) moving more than ``--link-jump`` in one control step, the centre of
mass more than ``--com-jump``, a joint faster than ``--joint-speed-factor`` times its URDF
velocity limit, the base faster than ``--base-speed`` or higher than ``--base-rise`` above its
reset height, an object more than ``--object-jump`` or a cloth particle more than
``--cloth-jump`` in a step, or an object or particle farther than ``--distance`` from the
robot's base. It also reports the largest value of each quantity over the unflagged steps,
which is how the engines' bounds (physics/divergence.py) were checked against normal runs
(``--policies expert``). The thresholds default to those bounds' values for humanoid43 at
50 Hz, measured independently here. The default run takes about two minutes on two cores;
JSON and a PNG bar chart go to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from ..agents.policies import load_policy
from ..envs import TASKS, make_task_env, resolve_task_id
from ..envs.base import sanitize
from ..progress import progress_bar

POLICIES = ("uniform", "bang_bang", "sinusoid")
#: Quantities measured every step, each against its threshold: name -> (argument, unit).
QUANTITIES = {
    "joint_speed_ratio": ("joint_speed_factor", "x URDF limit"),
    "base_speed": ("base_speed", "m/s"),
    "base_rise": ("base_rise", "m"),
    "link_jump": ("link_jump", "m/step"),
    "com_jump": ("com_jump", "m/step"),
    "object_jump": ("object_jump", "m/step"),
    "object_distance": ("distance", "m"),
    "cloth_jump": ("cloth_jump", "m/step"),
    "cloth_distance": ("distance", "m"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", nargs="+", default=None, help="task ids or aliases (default: every task)")
    parser.add_argument("--backends", nargs="+", default=["numpy", "pybullet"], choices=["numpy", "pybullet"])
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=[*POLICIES, "expert"],
                        help="adversarial policies; 'expert' runs the scripted expert (a normal run, for the maxima)")
    parser.add_argument("--action-mode", default="joint_pos", help="action mode of the adversarial policies")
    parser.add_argument("--seeds", type=int, default=2, help="environments (seeds seed..seed+K-1) per run")
    parser.add_argument("--seed", type=int, default=0, help="first seed (default: 0)")
    parser.add_argument("--steps", type=int, default=150, help="control steps per environment on numpy")
    parser.add_argument("--pybullet-steps", type=int, default=60, help="control steps per environment on pybullet")
    parser.add_argument("--joint-speed-factor", type=float, default=15.0, help="x each joint's URDF velocity limit")
    parser.add_argument("--base-speed", type=float, default=10.0, help="m/s")
    parser.add_argument("--base-rise", type=float, default=1.0, help="m above the reset height (floating base)")
    parser.add_argument("--link-jump", type=float, default=1.0, help="m in one control step: base, feet, palms")
    parser.add_argument("--com-jump", type=float, default=0.2, help="m in one control step")
    parser.add_argument("--object-jump", type=float, default=1.0, help="m in one control step")
    parser.add_argument("--cloth-jump", type=float, default=1.0, help="m in one control step, any particle")
    parser.add_argument("--distance", type=float, default=15.0, help="m from the robot's base, any object or particle")
    parser.add_argument("--json", default="benchmarks/results/adversarial.json", help="write results here")
    parser.add_argument("--png", default="benchmarks/results/adversarial.png", help="write the bar chart here")


class AdversarialPolicy:
    """Actions in [-1, 1] for N environments, each driven by its own generator."""

    def __init__(self, kind: str, action_size: int, rngs: list[np.random.Generator], control_dt: float):
        self.kind, self.action_size, self.rngs, self.control_dt = kind, action_size, rngs, control_dt
        n = len(rngs)
        self.sign = np.ones((n, action_size))
        self.frequency = np.zeros((n, action_size))
        self.phase = np.zeros((n, action_size))
        self.switch_every = np.ones(n, dtype=np.int64)
        self.restart(np.arange(n))

    def restart(self, env_ids) -> None:
        """Draw the switching period, signs, frequencies and phases of the episodes starting in ``env_ids``."""
        for i in env_ids:
            rng = self.rngs[i]
            self.sign[i] = rng.choice([-1.0, 1.0], self.action_size)
            # Up to the control rate's Nyquist frequency: the fastest a held target can alternate.
            self.frequency[i] = rng.uniform(0.5, 0.5 / self.control_dt, self.action_size)
            self.phase[i] = rng.uniform(0.0, 2 * np.pi, self.action_size)
            self.switch_every[i] = rng.integers(1, 10)

    def __call__(self, elapsed: np.ndarray) -> np.ndarray:
        if self.kind == "uniform":
            return np.array([rng.uniform(-1.0, 1.0, self.action_size) for rng in self.rngs])
        if self.kind == "bang_bang":
            flip = (elapsed % self.switch_every) == 0
            self.sign[flip] *= -1.0
            return self.sign.copy()
        return np.sin(2 * np.pi * self.frequency * (elapsed * self.control_dt)[:, None] + self.phase)


def watched_links(robot) -> list[str]:
    """The base, feet and palms, chosen here rather than taken from the engine, which the script checks."""
    return [robot.base_link, *robot.feet, *(hand.palm_link for hand in robot.hands.values())]


def snapshot(engine, links) -> dict[str, np.ndarray]:
    """What the script compares across one control step, read from the engine."""
    snapshot = {"links": engine.link_poses(links)[..., :3], "com": engine.center_of_mass()[0],
                "objects": engine.object_poses()[..., :3]}
    if "cloth" in engine.components:
        snapshot["cloth"] = engine.components["cloth"].positions()
    return snapshot


def _largest(values: np.ndarray, num_envs: int) -> np.ndarray:
    """Per-env maximum over every other axis (zero when there is nothing to measure), NaN kept as inf."""
    values = np.nan_to_num(np.asarray(values, dtype=float).reshape(num_envs, -1), nan=np.inf)
    return values.max(axis=1) if values.shape[1] else np.zeros(num_envs)


def measure(before: dict, after: dict, engine) -> dict[str, np.ndarray]:
    """Per-env values (N,) of every quantity in QUANTITIES over the step from ``before`` to ``after``."""
    n = engine.num_envs
    _, joint_vel = engine.joint_state()
    limit = np.where(engine.robot.velocity_limit > 0, engine.robot.velocity_limit, np.inf)
    jump = lambda key: _largest(np.linalg.norm(after[key] - before[key], axis=-1), n)
    base = after["links"][:, 0]
    distance = lambda key: _largest(np.linalg.norm(after[key] - base[:, None], axis=-1), n)
    values = {
        "joint_speed_ratio": _largest(np.abs(joint_vel) / limit, n),
        "base_speed": _largest(np.linalg.norm(engine.base_velocity()[:, :3], axis=-1), n),
        "base_rise": np.zeros(n) if engine.scene.fixed_base else base[:, 2] - engine.scene.robot_position[2],
        "link_jump": jump("links"),
        "com_jump": jump("com"),
        "object_jump": jump("objects"),
        "object_distance": distance("objects"),
        "cloth_jump": np.zeros(n),
        "cloth_distance": np.zeros(n),
    }
    if "cloth" in after:
        values["cloth_jump"], values["cloth_distance"] = jump("cloth"), distance("cloth")
    return values


def run_one(task_id: str, backend: str, policy_name: str, args, progress=None) -> dict:
    """One task x engine x policy: seeds args.seed.. in one batched task, each stepped ``steps`` times."""
    spec = TASKS[task_id]
    steps = args.steps if backend == "numpy" else args.pybullet_steps
    action_mode = spec.default_action_mode if policy_name == "expert" else args.action_mode
    # The native VectorEnv's task, stepped directly: episodes end where this script says, not at a fall.
    env = make_task_env(task_id, args.seeds, backend=backend, action_mode=action_mode)
    task = env.task
    engine = task.engine
    thresholds = {name: getattr(args, argument) for name, (argument, _) in QUANTITIES.items()}
    counts = {"env_steps": 0, "nonfinite_observations": 0, "flagged_divergences": 0, "episodes": 0}
    unflagged = {name: 0 for name in QUANTITIES}
    maxima = {name: 0.0 for name in QUANTITIES}
    rngs = [np.random.default_rng(args.seed + i) for i in range(args.seeds)]
    next_seed = args.seed + args.seeds
    try:
        task.reset(np.arange(args.seeds), rngs)
        counts["episodes"] += args.seeds
        if policy_name == "expert":
            expert = load_policy("expert", env)
            expert.reset(np.ones(args.seeds, dtype=bool))
            act = lambda: expert.act({key: sanitize(value) for key, value in task.observe().items()})
        else:
            adversary = AdversarialPolicy(policy_name, task.action_space.shape[0], rngs, task.config.control_dt)
            act = lambda: adversary(task.elapsed)
        links = watched_links(task.robot)
        for _ in range(steps):
            before = snapshot(engine, links)
            _, _, _, _, info = task.step(np.clip(act(), -1.0, 1.0))
            raw = task.observe()
            finite = np.ones(task.num_envs, dtype=bool)
            for value in raw.values():
                finite &= np.isfinite(value).reshape(task.num_envs, -1).all(axis=1)
            flagged = np.asarray(info["diverged"], dtype=bool)
            values = measure(before, snapshot(engine, links), engine)
            counts["env_steps"] += task.num_envs
            counts["nonfinite_observations"] += int((~finite).sum())
            counts["flagged_divergences"] += int(flagged.sum())
            for name, value in values.items():
                unflagged[name] += int(((value > thresholds[name]) & ~flagged).sum())
                if (~flagged).any():
                    maxima[name] = max(maxima[name], float(value[~flagged].max()))
            # Episodes end at the time limit or a divergence, not at a fall: the next seed starts there.
            ended = np.flatnonzero(flagged | (task.elapsed >= task.config.max_steps))
            if len(ended):
                fresh = [np.random.default_rng(next_seed + i) for i in range(len(ended))]
                next_seed += len(ended)
                for i, env_id in enumerate(ended):
                    rngs[env_id] = fresh[i]
                task.reset(ended, fresh)
                counts["episodes"] += len(ended)
                if policy_name == "expert":
                    expert.reset(np.isin(np.arange(args.seeds), ended))
                else:
                    adversary.restart(ended)
            if progress is not None:
                progress(task.num_envs)
    finally:
        env.close()
    return {**counts, "unflagged": unflagged, "unflagged_total": int(sum(unflagged.values())),
            "max_unflagged_value": maxima}


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, flagged, unflagged = [], [], []
    for task_id, by_backend in results["runs"].items():
        for backend, by_policy in by_backend.items():
            labels.append(f"{task_id.split('/')[-1].removesuffix('-v0')}\n{backend}")
            flagged.append(sum(run["flagged_divergences"] for run in by_policy.values()))
            unflagged.append(sum(run["unflagged_total"] for run in by_policy.values()))
    x = np.arange(len(labels))
    figure, ax = plt.subplots(figsize=(1.2 * len(labels) + 2, 4))
    ax.bar(x - 0.2, flagged, 0.4, label="flagged divergences")
    ax.bar(x + 0.2, unflagged, 0.4, label="unflagged exceedances (measured)")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("env-steps, all policies")
    ax.set_title("adversarial policies: blow-ups flagged vs missed")
    ax.legend()
    ax.grid(True, axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(args: argparse.Namespace) -> int:
    task_ids = [resolve_task_id(name) for name in args.tasks] if args.tasks else list(TASKS)
    thresholds = {name: getattr(args, argument) for name, (argument, _) in QUANTITIES.items()}
    results = {"machine": platform.platform(), "seeds": args.seeds, "first_seed": args.seed,
               "steps": {"numpy": args.steps, "pybullet": args.pybullet_steps}, "action_mode": args.action_mode,
               "policies": args.policies, "thresholds": thresholds, "runs": {}}
    total = len(task_ids) * len(args.policies) * args.seeds * sum(
        args.steps if b == "numpy" else args.pybullet_steps for b in args.backends)
    start = time.perf_counter()
    with progress_bar(total, "adversarial env-steps", unit="step") as bar:
        for task_id in task_ids:
            for backend in args.backends:
                for policy_name in args.policies:
                    run = run_one(task_id, backend, policy_name, args, bar.update)
                    results["runs"].setdefault(task_id, {}).setdefault(backend, {})[policy_name] = run
    results["wall_s"] = time.perf_counter() - start
    print(f"{'task':<32} {'engine':<9} {'policy':<10} {'steps':>6} {'nonfinite':>9} {'flagged':>8} {'unflagged':>9}"
          "  largest unflagged values")
    for task_id, by_backend in results["runs"].items():
        for backend, by_policy in by_backend.items():
            for policy_name, run in by_policy.items():
                largest = ", ".join(f"{name} {value:.3g}" for name, value in run["max_unflagged_value"].items() if value)
                print(f"{task_id:<32} {backend:<9} {policy_name:<10} {run['env_steps']:>6} "
                      f"{run['nonfinite_observations']:>9} {run['flagged_divergences']:>8} {run['unflagged_total']:>9}"
                      f"  {largest}")
    for path in (args.json, args.png):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2))
    plot(results, args.png)
    print(f"wrote {args.json} and {args.png}")
    missed = sum(run["unflagged_total"] + run["nonfinite_observations"]
                 for by_backend in results["runs"].values() for by_policy in by_backend.values()
                 for run in by_policy.values())
    return 0 if missed == 0 else 1
