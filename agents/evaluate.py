"""``tground eval``: run policies on a task and measure them on many dimensions; table, JSON and a PNG.

Policies: ``expert`` (the task's scripted expert), ``random`` (uniform actions, seeded), a
trained SB3 model ``PATH.zip`` (``tground train``), a behaviour-cloning policy ``PATH.pt``
(``tground bc``) or ``module:callable`` (as ``tground collect --policy``). Every policy meets
the same episodes: episode k has seed ``seed + k`` on the native batched env.

Metrics, per episode (definitions in the functions below, each unit-tested on hand-made
trajectories with known answers), then averaged over episodes:

- success rate, with a 95 % Wilson score interval (:func:`wilson_interval`);
- episode length (control steps) and time to success (s, successful episodes only);
- end-effector path length (m): distance travelled by every hand's grasp site (:func:`path_length`);
- smoothness: mean squared jerk of the grasp sites (m^2/s^6, lower is smoother; :func:`mean_squared_jerk`);
- energy (J): sum over steps and joints of |torque x joint velocity| x dt (:func:`mechanical_energy`),
  with the torque the actuator law (``physics.engine.pd_torques``) gives at each control step's
  measured state and held targets, sampled at the control rate;
- peak contact force (N) between a hand and an object, and its mean over the steps in contact
  (:func:`mean_contact_force`);
- slip (m): how far the object moved in the frame of the palm holding it (:func:`slip_distance`);
- object drops (:func:`count_drops`) and joint-limit hits (:func:`count_limit_hits`).

Contact forces and what counts as held come from the engines' contacts (physics/grasp.py: under
``grasp="physical"`` two links of a hand pressing 0.5 N), so under the physical grasp the force,
slip and drop metrics measure the fingers' real hold.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..envs import make_task_env, parse_overrides, task_spec, with_robot
from ..envs.controllers import grasp_site_poses
from ..physics.engine import pd_torques
from ..physics.rotations import quat_to_matrix
from ..errors import InputError
from ..progress import progress_bar
from .policies import load_policy
from .runner import PolicyRunner
from .train import add_dataclass_arguments, args_from_namespace

# ---------------------------------------------------------------------------------------------- metric definitions


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95 % for the default z).

    Unlike the normal approximation it stays inside [0, 1] and is not zero-width at 0 or n successes.
    """
    if trials <= 0:
        raise ValueError(f"trials must be >= 1, got {trials}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be in [0, {trials}], got {successes}")
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    # The interval always holds p (exactly 0 or 1 at the ends); rounding must not push it out.
    return min(max(0.0, centre - half), p), max(min(1.0, centre + half), p)


def path_length(positions: np.ndarray) -> float:
    """Distance travelled (m): positions (T+1, H, 3) of H points, the sum over points of each one's polyline length."""
    positions = np.asarray(positions, float)
    if len(positions) < 2:
        return 0.0
    return float(np.linalg.norm(np.diff(positions, axis=0), axis=-1).sum())


def mean_squared_jerk(positions: np.ndarray, dt: float) -> float:
    """Mean over time and points of |d^3 x / dt^3|^2 (m^2/s^6), from third finite differences.

    positions: (T+1, H, 3) sampled every ``dt``; fewer than 4 samples have no jerk (0).
    """
    positions = np.asarray(positions, float)
    if len(positions) < 4:
        return 0.0
    jerk = np.diff(positions, n=3, axis=0) / dt**3
    return float((jerk**2).sum(axis=-1).mean())


def mechanical_energy(torques: np.ndarray, joint_vel: np.ndarray, dt: float) -> float:
    """Sum over steps and joints of |tau * qd| * dt (J): the work the actuators do, counting braking as cost too.

    torques, joint_vel: (T, J) per step.
    """
    return float(np.abs(np.asarray(torques, float) * np.asarray(joint_vel, float)).sum() * dt)


def count_limit_hits(joint_pos: np.ndarray, lower: np.ndarray, upper: np.ndarray, margin: float = 0.01) -> int:
    """Times a joint arrives at a limit: steps where it is within ``margin`` (rad) of one and was not the step before.

    joint_pos: (T+1, J) from the initial state; a joint that starts at a limit does not count until it leaves and
    comes back.
    """
    joint_pos = np.asarray(joint_pos, float)
    at_limit = (joint_pos <= np.asarray(lower) + margin) | (joint_pos >= np.asarray(upper) - margin)
    return int((at_limit[1:] & ~at_limit[:-1]).sum())


def mean_contact_force(contact_force: np.ndarray) -> float:
    """Mean of a (T,) hand-object normal force over the steps it is not zero (N); 0 if it never touches."""
    force = np.asarray(contact_force, float)
    touching = force > 0
    return float(force[touching].mean()) if touching.any() else 0.0


def slip_distance(object_in_hand: np.ndarray, held_by: np.ndarray) -> float:
    """How far (m) the object moved relative to the palm holding it: over every step at whose start and end the
    same hand holds it, the change of its position in that palm's frame.

    object_in_hand: (T+1, H, 3) the object's position in each palm's frame; held_by: (T+1,) the hand holding
    it or -1. A weld (the assisted grasp) slips 0; fingers whose hold gives way slip by what they let go.
    """
    position, hand = np.asarray(object_in_hand, float), np.asarray(held_by)
    steps = np.flatnonzero((hand[:-1] >= 0) & (hand[:-1] == hand[1:]))
    if not steps.size:
        return 0.0
    moved = position[steps + 1, hand[steps]] - position[steps, hand[steps]]
    return float(np.linalg.norm(moved, axis=-1).sum())


def count_drops(held: np.ndarray, object_height: np.ndarray, success: bool, drop_height: float = 0.03) -> int:
    """Times a held object left the hand and fell more than ``drop_height`` (m) before being held again.

    held: (T+1,) whether any hand holds the object; object_height: (T+1,) its height. The last release of a
    successful episode is the placement, not a drop.
    """
    held = np.asarray(held, bool)
    height = np.asarray(object_height, float)
    releases = np.flatnonzero(held[:-1] & ~held[1:]) + 1  # first step not held
    drops = 0
    for k, start in enumerate(releases):
        regrasp = np.flatnonzero(held[start:])
        end = start + regrasp[0] if regrasp.size else len(held)
        if success and not regrasp.size:
            continue  # the placement
        if height[start - 1] - height[start:end].min() > drop_height:
            drops += 1
    return drops


# ---------------------------------------------------------------------------------------------- rollouts
@dataclass
class EpisodeRecord:
    """What one episode leaves for the metrics; T = its number of control steps."""

    seed: int
    success: bool
    length: int
    hand_pos: np.ndarray  # (T+1, H, 3) grasp-site positions (m), world frame, from the initial state
    joint_pos: np.ndarray  # (T+1, J) joint positions (rad)
    joint_vel: np.ndarray  # (T, J) joint velocities (rad/s) after each step
    torques: np.ndarray  # (T, J) actuator torques (N m) at each step's measured state and targets
    contact_force: np.ndarray  # (T,) largest hand-object normal force (N) at each step
    held: np.ndarray  # (T+1,) whether a hand holds object 0
    object_height: np.ndarray  # (T+1,) height of object 0 (m); zeros in scenes without objects
    held_by: np.ndarray | None = None  # (T+1,) the hand holding object 0, or -1
    object_in_hand: np.ndarray | None = None  # (T+1, H, 3) object 0's position in each palm's frame (m)


@dataclass
class EpisodeMetrics:
    seed: int
    success: bool
    length: int
    time_to_success: float  # s, NaN if not successful
    path_length: float
    jerk: float
    energy: float
    peak_contact_force: float
    mean_contact_force: float
    slip: float
    drops: int
    limit_hits: int


def episode_metrics(record: EpisodeRecord, dt: float, lower: np.ndarray, upper: np.ndarray,
                    limit_joints: np.ndarray | None = None) -> EpisodeMetrics:
    """The per-episode metrics of a record; ``limit_joints`` selects the joints whose limit hits count."""
    joints = slice(None) if limit_joints is None else limit_joints
    return EpisodeMetrics(
        seed=record.seed, success=record.success, length=record.length,
        time_to_success=record.length * dt if record.success else float("nan"),
        path_length=path_length(record.hand_pos), jerk=mean_squared_jerk(record.hand_pos, dt),
        energy=mechanical_energy(record.torques, record.joint_vel, dt),
        peak_contact_force=float(np.max(record.contact_force, initial=0.0)),
        mean_contact_force=mean_contact_force(record.contact_force),
        slip=0.0 if record.held_by is None else slip_distance(record.object_in_hand, record.held_by),
        drops=count_drops(record.held, record.object_height, record.success),
        limit_hits=count_limit_hits(record.joint_pos[:, joints], lower[joints], upper[joints]))


def _engine_sample(task) -> dict[str, np.ndarray]:
    engine = task.engine
    q, qd = engine.joint_state()
    hand_pos, _ = grasp_site_poses(engine)
    objects = engine.object_poses()
    num_objects = objects.shape[1]
    contact = engine.hand_contact_forces()
    held_by = np.full(len(q), -1)
    object_in_hand = np.zeros((len(q), len(engine.hand_names), 3))
    if num_objects:
        grasped = engine.grasped_objects() == 0  # (N, H)
        held_by = np.where(grasped.any(axis=1), grasped.argmax(axis=1), -1)
        palms = engine.link_poses([engine.robot.hands[h].palm_link for h in engine.hand_names])
        offset = objects[:, None, 0, :3] - palms[..., :3]
        object_in_hand = np.einsum("nhji,nhj->nhi", quat_to_matrix(palms[..., 3:]), offset)
    return {
        "hand_pos": hand_pos, "joint_pos": q, "joint_vel": qd,
        "torques": pd_torques(engine.robot, q, qd, engine.joint_targets),
        "contact_force": contact.reshape(len(q), -1).max(axis=1) if contact.size else np.zeros(len(q)),
        "held": (engine.grasped_objects() == 0).any(axis=1) if num_objects else np.zeros(len(q), bool),
        "object_height": objects[:, 0, 2] if num_objects else np.zeros(len(q)),
        "held_by": held_by, "object_in_hand": object_in_hand,
    }


class RecordingRunner(PolicyRunner):
    """Keeps what the metrics need of every step of every episode (:func:`_engine_sample`)."""

    PER_STEP = ("joint_vel", "torques", "contact_force")  # after each step; the rest also before the first

    def __init__(self, env, seeds, policy, progress=None):
        super().__init__(env, seeds, policy)
        self.progress = progress
        self.history: list[dict | None] = [None] * self.num_envs
        self.records: list[EpisodeRecord] = []

    def started(self, env_ids, observation) -> None:
        super().started(env_ids, observation)
        sample = _engine_sample(self.task)
        for i in env_ids:
            self.history[i] = {key: [] if key in self.PER_STEP else [value[i]] for key, value in sample.items()}

    def after_step(self, active, actions, observation, rewards, terminated, truncated, info) -> None:
        sample = _engine_sample(self.task)  # before any reset: an ending episode's last state
        for i in active:
            for key, values in self.history[i].items():
                values.append(sample[key][i])

    def ended(self, ends, info) -> None:
        for end in ends:
            stacked = {key: np.stack(values) for key, values in self.history[end.slot].items()}
            self.records.append(EpisodeRecord(seed=end.seed, success=end.success, length=end.steps, **stacked))
            self.history[end.slot] = None
        if self.progress is not None:
            self.progress(len(ends))


def rollout(env, policy, episodes: int, seed: int, progress=None) -> list[EpisodeRecord]:
    """Episodes seed..seed+episodes-1 on a native VectorEnv (the episode runner); one record each, in seed order."""
    runner = RecordingRunner(env, range(seed, seed + episodes), policy, progress)
    runner.run()
    return sorted(runner.records, key=lambda record: record.seed)


# ---------------------------------------------------------------------------------------------- summary
SUMMARY_METRICS = (  # (field, label, unit)
    ("length", "episode length", "steps"),
    ("time_to_success", "time to success", "s"),
    ("path_length", "end-effector path", "m"),
    ("jerk", "mean squared jerk", "m^2/s^6"),
    ("energy", "energy", "J"),
    ("peak_contact_force", "peak contact force", "N"),
    ("mean_contact_force", "mean contact force", "N"),
    ("slip", "slip in the hand", "m"),
    ("drops", "object drops", "per episode"),
    ("limit_hits", "joint-limit hits", "per episode"),
)


def summarize(name: str, metrics: list[EpisodeMetrics]) -> dict:
    successes = sum(m.success for m in metrics)
    low, high = wilson_interval(successes, len(metrics))
    summary = {"policy": name, "episodes": len(metrics), "successes": successes,
               "success_rate": successes / len(metrics), "success_ci95": [low, high]}
    for key, _, _ in SUMMARY_METRICS:
        values = np.array([getattr(m, key) for m in metrics], dtype=float)
        values = values[np.isfinite(values)]
        summary[key] = {"mean": float(values.mean()) if values.size else None,
                        "std": float(values.std()) if values.size else None}
    return summary


def format_table(summaries: list[dict]) -> str:
    def cell(value, digits=3):
        if value is None:
            return "-"
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:,.0f}"

    header = ["metric"] + [s["policy"] for s in summaries]
    rows = [["success rate (95% CI)"] + [f"{s['success_rate']:.0%} [{s['success_ci95'][0]:.0%}, "
                                         f"{s['success_ci95'][1]:.0%}]" for s in summaries]]
    rows.append(["episodes"] + [str(s["episodes"]) for s in summaries])
    for key, label, unit in SUMMARY_METRICS:
        rows.append([f"{label} ({unit})"] + [cell(s[key]["mean"]) for s in summaries])
    widths = [max(len(row[c]) for row in [header] + rows) for c in range(len(header))]
    lines = ["  ".join(text.ljust(width) for text, width in zip(row, widths)) for row in [header] + rows]
    rule = "-" * len(lines[0])
    return "\n".join([rule, lines[0], rule, *lines[1:], rule])


def plot_comparison(summaries: list[dict], path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [("success_rate", "success rate (%)", "")] + list(SUMMARY_METRICS)
    figure = Figure(figsize=(2.6 * ((len(panels) + 1) // 2), 6))
    FigureCanvasAgg(figure)
    names = [s["policy"] for s in summaries]
    colors = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860"]
    for k, (key, label, unit) in enumerate(panels):
        axes = figure.add_subplot(2, (len(panels) + 1) // 2, k + 1)
        if key == "success_rate":
            values = [100 * s["success_rate"] for s in summaries]
            errors = np.array([[100 * (s["success_rate"] - s["success_ci95"][0]),
                                100 * (s["success_ci95"][1] - s["success_rate"])] for s in summaries]).T
            errors = np.maximum(errors, 0.0)  # an interval's end may sit a rounding error inside the rate
            axes.set_ylim(0, 105)
        else:
            values = [s[key]["mean"] if s[key]["mean"] is not None else 0.0 for s in summaries]
            errors = [s[key]["std"] or 0.0 for s in summaries]
        axes.bar(range(len(names)), values, yerr=errors, color=colors[:len(names)] * 3, capsize=3)
        if key == "jerk" and min(values) > 0:  # a random policy's jerk is orders of magnitude above a smooth one's
            axes.set_yscale("log")
        axes.set_xticks(range(len(names)), [name if len(name) < 14 else name[:12] + ".." for name in names],
                        rotation=30, fontsize=7)
        axes.set_title(label + (f" ({unit})" if unit else ""), fontsize=8)
        axes.tick_params(axis="y", labelsize=7)
    figure.suptitle(title + "  (bars: mean; whiskers: 95% Wilson interval for success, std otherwise)", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


# ---------------------------------------------------------------------------------------------- command
@dataclass
class EvalArgs:
    """Arguments of ``tground eval``."""

    task: str = "TrainingGround/BreadPickPlace-v0"  # task id or alias
    policy: tuple[str, ...] = ("expert", "random")  # policies to compare: expert, random, PATH.zip, PATH.pt, module:callable
    episodes: int = 100  # episodes per policy (seeds SEED..SEED+EPISODES-1, the same for every policy)
    seed: int = 1_000_000  # seed of the first episode (training uses 0 and up by default)
    num_envs: int = 50  # episodes run side by side in the native VectorEnv
    backend: str = "numpy"  # physics backend
    action_mode: str | None = None  # action mode (default: the task's; must be what the policies were trained on)
    set: tuple[str, ...] = ()  # task config overrides KEY=VALUE, as tground collect --set
    robot: str | None = None  # robot: a registered name or a spec file (path/to/robot.toml), as --set robot=...
    out: str = "eval"  # output prefix: OUT.json and OUT.png
    names: tuple[str, ...] = ()  # display names for the policies, in order (default: the specs)
    progress: bool = True  # tqdm progress bar


def check_args(args: EvalArgs) -> None:
    if args.episodes < 1 or args.num_envs < 1:
        raise InputError(f"--episodes and --num-envs must be >= 1, got {args.episodes} and {args.num_envs}")
    if args.names and len(args.names) != len(args.policy):
        raise InputError(f"--names gives {len(args.names)} names for {len(args.policy)} policies")


def policy_names(args: EvalArgs) -> tuple[str, ...]:
    """Display names: ``--names``, else each spec (a file's stem)."""
    return args.names or tuple(Path(spec).stem if spec.endswith((".zip", ".pt")) else spec for spec in args.policy)


def eval_env(args: EvalArgs, num_envs: int):
    """The native VectorEnv ``tground eval`` runs, and its action mode."""
    spec = task_spec(args.task)
    action_mode = args.action_mode or spec.default_action_mode
    env = make_task_env(spec.id, num_envs, backend=args.backend, action_mode=action_mode,
                        config=parse_overrides(with_robot(args.set, args.robot)))
    return env, action_mode


def evaluate_seeds(args: EvalArgs, policy_spec: str, seeds, progress=None) -> list[EpisodeMetrics]:
    """The per-episode metrics of one policy on a contiguous block of seeds: the whole of a local
    evaluation, or one chunk of a distributed one (data/distributed.py runs this in each worker)."""
    seeds = list(seeds)
    if seeds != list(range(seeds[0], seeds[0] + len(seeds))):
        raise ValueError("evaluate_seeds takes a contiguous block of seeds")
    env, _ = eval_env(args, min(args.num_envs, len(seeds)))
    try:
        task, robot = env.unwrapped.task, env.unwrapped.task.robot
        hands = {robot.joint_names[j] for j in robot.joint_indices("hands")}
        limit_joints = np.array([i for i, name in enumerate(robot.joint_names) if name not in hands])
        # The random policy draws from the block's first seed: a chunk rerun after a lost worker repeats itself.
        policy = load_policy(policy_spec, env, seeds[0])
        records = rollout(env, policy, len(seeds), seeds[0], progress)
        return [episode_metrics(record, task.config.control_dt, robot.joint_lower, robot.joint_upper, limit_joints)
                for record in records]
    finally:
        env.close()


def check_policies(args: EvalArgs) -> str:
    """Load every policy once on a one-env batch, so that a bad spec fails before any episode runs; the action mode."""
    env, action_mode = eval_env(args, 1)
    try:
        for policy_spec in args.policy:
            load_policy(policy_spec, env, args.seed)
    finally:
        env.close()
    return action_mode


def summaries_of(args: EvalArgs, metrics_per_policy: list[list[EpisodeMetrics]]) -> list[dict]:
    summaries = []
    for name, policy_spec, metrics in zip(policy_names(args), args.policy, metrics_per_policy):
        summary = summarize(name, metrics)
        summary.update(spec=policy_spec, episodes_detail=[_finite_or_none(dataclasses.asdict(m)) for m in metrics])
        summaries.append(summary)
    return summaries


def write_evaluation(args: EvalArgs, action_mode: str, summaries: list[dict], title: str = "", **extra) -> None:
    """OUT.json and OUT.png of an evaluation."""
    task_id = task_spec(args.task).id
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {"task": task_id, "backend": args.backend, "action_mode": action_mode, "config_overrides": list(args.set),
              "seed": args.seed, "episodes": args.episodes, "policies": summaries, **extra}
    out.with_suffix(".json").write_text(json.dumps(report, indent=2, allow_nan=False, default=_json_default))
    plot_comparison(summaries, out.with_suffix(".png"),
                    f"{task_id.split('/')[-1]}: {args.episodes} episodes per policy, seeds {args.seed}+{title}")


def evaluate(args: EvalArgs) -> list[dict]:
    check_args(args)
    action_mode = check_policies(args)
    seeds = range(args.seed, args.seed + args.episodes)
    metrics = []
    for name, policy_spec in zip(policy_names(args), args.policy):
        bar = progress_bar(args.episodes, f"eval {name}", args.progress, unit="ep")
        metrics.append(evaluate_seeds(args, policy_spec, seeds, bar.update))
        bar.close()
    summaries = summaries_of(args, metrics)
    write_evaluation(args, action_mode, summaries)
    return summaries


def _finite_or_none(values: dict) -> dict:
    """JSON has no NaN: an undefined value (time to success of a failed episode) becomes null."""
    return {key: None if isinstance(value, float) and not math.isfinite(value) else value
            for key, value in values.items()}


def _json_default(value):
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def add_arguments(parser) -> None:
    add_dataclass_arguments(parser, EvalArgs)


def main(namespace) -> int:
    args = args_from_namespace(EvalArgs, namespace)
    summaries = evaluate(args)
    print(format_table(summaries))
    out = Path(args.out)
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")
    return 0
