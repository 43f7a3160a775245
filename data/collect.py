"""``tground collect``: a policy on N simulated robots at once, every episode into a crash-safe dataset,
and a report that sets the rate against the real training field.

All robots are one native VectorEnv (one engine call steps them all). Episode k of a run
gets seed ``seed + k``: a robot that finishes is reset at once into the next seed still
missing from the dataset (a masked ``reset(seed=[...], options={"reset_mask": ...})``, so
no autoreset ever picks a seed), which is also how a rerun of the same command resumes.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import signal
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ..agents.policies import POLICY_SPECS, Policy, load_policy
from ..agents.runner import PolicyRunner
from ..envs import make_config, make_task_env, parse_overrides, task_spec, with_robot
from ..envs.base import MAX_SEED
from ..physics import BACKENDS
from ..physics.rendering import process_cpu_seconds
from ..errors import InputError
from ..progress import progress_bar
from .ray_options import add_ray_arguments, ray_wanted
from .dataset import (DatasetError, DatasetWriter, Episode, check_output_location, check_resumable, journal_seeds,
                      make_env_args, stored_seeds, write_demo)

SECONDS_PER_DAY = 86_400.0
REAL_ROBOT_PER_DAY = (300.0, 500.0)  # episodes one real robot records in a day
FIELD_PER_DAY = 30_000.0  # episodes the whole real field records in a day
FIELD_GOAL = 100_000_000.0  # the field's goal, in a year
DAYS_PER_YEAR = 365.0


# ---------------------------------------------------------------------------------------------- options
@dataclass
class CollectOptions:
    """What ``tground collect`` takes; see ``tground collect --help``."""

    task: str
    episodes: int
    out: str
    robots: int = 64
    backend: str = "numpy"
    seed: int = 0
    action_mode: str | None = None
    reward_mode: str = "dense"
    overrides: list[str] = field(default_factory=list)
    policy: str = "expert"
    only_success: bool = False
    report: str | None = None
    commit_every: float = 30.0
    progress: bool = True
    # False in a Ray worker: there SIGTERM must end the process, so that Ray restarts the work,
    # which resumes from the journal, instead of returning as if the shard were finished.
    stop_on_sigterm: bool = True


# ---------------------------------------------------------------------------------------------- the loop
class _EpisodeBuffer:
    def __init__(self, seed: int, robot_id: int, observation: dict, instruction: str):
        self.seed, self.robot_id, self.instruction = seed, robot_id, instruction
        self.observations = {key: [value] for key, value in observation.items()}
        self.actions, self.rewards, self.terminated, self.truncated, self.states = [], [], [], [], []

    def add(self, state, action, reward, terminated, truncated, next_observation) -> None:
        self.states.append(state)
        self.actions.append(action)
        self.rewards.append(reward)
        self.terminated.append(terminated)
        self.truncated.append(truncated and not terminated)
        for key, value in next_observation.items():
            self.observations[key].append(value)

    def finish(self, final_state, success: bool, diverged: bool, model: str) -> Episode:
        return Episode(seed=self.seed, robot_id=self.robot_id, success=success, diverged=diverged,
                       observations={key: np.stack(values) for key, values in self.observations.items()},
                       actions=np.stack(self.actions), rewards=np.asarray(self.rewards, dtype=np.float64),
                       dones=np.asarray(self.terminated, dtype=np.int64),
                       truncated=np.asarray(self.truncated, dtype=np.int64), states=np.stack(self.states),
                       final_state=np.asarray(final_state), model=model, instruction=self.instruction)


def episode_model(params) -> str:
    """The episode's objects as JSON (robomimic keeps the model file per demo in the same way)."""
    return json.dumps([dataclasses.asdict(p) if dataclasses.is_dataclass(p) else repr(p) for p in params])


def _row(observation: dict, i: int) -> dict:
    return {key: value[i].copy() for key, value in observation.items()}


@dataclass
class RunStats:
    """Episodes finished by this run: steps and success of each, and the clocks."""

    control_dt: float
    robots: int
    steps: list[int] = field(default_factory=list)
    successes: list[bool] = field(default_factory=list)
    filtered: int = 0
    wall_start: float = field(default_factory=time.perf_counter)
    cpu_start: float = field(default_factory=process_cpu_seconds)

    def wall(self) -> float:
        return time.perf_counter() - self.wall_start

    def cpu(self) -> float:
        return process_cpu_seconds() - self.cpu_start

    def postfix(self) -> dict:
        if not self.steps:
            return {}
        sim_day = SECONDS_PER_DAY / (np.mean(self.steps) * self.control_dt)
        core_day = len(self.steps) * SECONDS_PER_DAY / max(self.cpu(), 1e-9)
        return {"success": f"{np.mean(self.successes):.0%}", "ep/robot/day(sim)": f"{sim_day:,.0f}",
                "ep/core/day": f"{core_day:,.0f}"}


class CollectRunner(PolicyRunner):
    """Records every step of every episode and hands each finished one to the writer at once."""

    def __init__(self, env, seeds, policy: Policy, writer: DatasetWriter, stats: RunStats, only_success: bool = False,
                 on_episode=None):
        super().__init__(env, seeds, policy)
        self.writer, self.stats, self.only_success, self.on_episode = writer, stats, only_success, on_episode
        self.buffers: list[_EpisodeBuffer | None] = [None] * self.num_envs
        self._states = None

    def started(self, env_ids, observation) -> None:
        super().started(env_ids, observation)
        for i in env_ids:
            self.buffers[i] = _EpisodeBuffer(int(self.slot_seed[i]), int(i), _row(observation, i),
                                             self.task.instructions[i])

    def before_step(self, active) -> None:
        self._states = self.task.get_state()

    def after_step(self, active, actions, observation, rewards, terminated, truncated, info) -> None:
        for i in active:
            self.buffers[i].add(self._states[i], actions[i], rewards[i], bool(terminated[i]), bool(truncated[i]),
                                _row(observation, i))

    def ended(self, ends, info) -> None:
        final_states = self.task.get_state()
        for end in ends:
            i = end.slot
            episode = self.buffers[i].finish(final_states[i], end.success, end.diverged,
                                             episode_model(self.task.episode_params[i]))
            self.buffers[i] = None
            if self.only_success and not end.success:
                self.writer.add_filtered(episode.seed)
                self.stats.filtered += 1
            else:
                self.writer.add(episode)
            self.stats.steps.append(episode.num_samples)
            self.stats.successes.append(end.success)
            if self.on_episode is not None:
                self.on_episode(episode)


#: Above this expected file size a collection run in a terminal asks for --yes first.
CONFIRM_SIZE_BYTES = 2 * 1024**3


@dataclass
class SizeEstimate:
    """A collection's expected size, from one episode (the first seed's) written as it would be: for the
    ``episodes`` it still has to collect, of ``requested`` (a resumed file holds the others)."""

    episode_bytes: int
    episode_steps: int
    episodes: int
    requested: int | None = None

    @property
    def total_bytes(self) -> int:
        return self.episode_bytes * self.episodes

    def describe(self) -> str:
        episodes = f"{self.episodes} episode" + ("s" if self.episodes != 1 else "")
        if self.requested is not None and self.requested != self.episodes:
            episodes += f" still to collect of the {self.requested} requested"
        return (f"expected size: about {_size(self.total_bytes)} more for {episodes} (one episode of "
                f"{self.episode_steps} steps takes {_size(self.episode_bytes)}; its length varies)")


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1024


class _KeepEpisodes:
    """A writer for :class:`CollectRunner` that keeps the episodes in memory."""

    def __init__(self):
        self.episodes: list[Episode] = []

    def add(self, episode: Episode) -> None:
        self.episodes.append(episode)

    def add_filtered(self, seed: int) -> None:
        pass


def episodes_to_collect(options: CollectOptions) -> int:
    """How many of the requested seeds the output (and its journal) does not hold yet; all of them where it cannot
    be read (the collection itself then says why)."""
    out = Path(options.out)
    try:
        done = (stored_seeds(out) if out.exists() else set()) | journal_seeds(out)
    except (DatasetError, OSError):
        return options.episodes
    return sum(1 for seed in range(options.seed, options.seed + options.episodes) if seed not in done)


def estimate_size(options: CollectOptions, episodes: int | None = None) -> SizeEstimate:
    """Run the first seed's episode on one robot and write it, as a collection would, into an HDF5 file in memory;
    the estimate is for ``episodes`` of them (default: all requested)."""
    plan = plan_collection(options)
    env = make_env(plan, options, 1)
    try:
        kept = _KeepEpisodes()
        stats = RunStats(control_dt=plan.config.control_dt, robots=1)
        CollectRunner(env, [options.seed], load_policy(options.policy, env), kept, stats).run()
    finally:
        env.close()
    episode = kept.episodes[0]
    with h5py.File(io.BytesIO(), "w") as handle:
        write_demo(handle.create_group("data").create_group("demo_0"), episode)
        handle.flush()
        size = handle.id.get_filesize()
    return SizeEstimate(int(size), episode.num_samples, options.episodes if episodes is None else episodes,
                        options.episodes)


def check_size(options: CollectOptions, confirmed: bool, interactive: bool) -> str:
    """The size estimate's line, for the episodes the run still has to collect ("" when the file holds them all: no
    episode is run to estimate); raises InputError above CONFIRM_SIZE_BYTES in a terminal unless ``confirmed``."""
    remaining = episodes_to_collect(options)
    if not remaining:
        return ""
    estimate = estimate_size(options, remaining)
    if estimate.total_bytes > CONFIRM_SIZE_BYTES and interactive and not confirmed:
        raise InputError(f"{estimate.describe()}: over {_size(CONFIRM_SIZE_BYTES)}. Rerun with --yes to write it, "
                         f"or collect fewer --episodes; nothing was written")
    return estimate.describe()


@contextmanager
def terminate_as_interrupt():
    """SIGTERM stops a collection as Ctrl-C does: finished episodes are committed first."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class CollectResult:
    report: "FieldReport | None"
    interrupted: bool
    file_episodes: int
    message: str = ""
    stats: RunStats | None = None  # the episodes this run finished (None: nothing was left to do)
    resumed: int = 0  # requested episodes the file already held when the run began
    notices: list[str] = field(default_factory=list)  # damaged demos removed, journal entries set aside


@dataclass
class CollectPlan:
    """What a collection's options resolve to, before any env is made or file touched."""

    task_id: str
    config: object
    action_mode: str
    env_args: dict  # as stored in the dataset (``data.attrs['env_args']``)


def plan_collection(options: CollectOptions) -> CollectPlan:
    """Check the options and resolve task, config and action mode; bad input raises with the reason."""
    if options.episodes < 1:
        raise InputError(f"--episodes must be >= 1, got {options.episodes}")
    if options.robots < 1:
        raise InputError(f"--robots must be >= 1, got {options.robots}")
    if options.seed < 0 or options.seed + options.episodes > MAX_SEED:
        raise InputError(f"--seed must be >= 0 and SEED+EPISODES at most 2**63 (seeds are SEED..SEED+EPISODES-1, "
                         f"stored as int64), got {options.seed}")
    spec = task_spec(options.task)
    config = make_config(spec.config_class, parse_overrides(options.overrides))
    action_mode = options.action_mode or spec.default_action_mode
    env_args = make_env_args(spec.id, options.backend, action_mode, options.reward_mode, config)
    return CollectPlan(spec.id, config, action_mode, env_args)


def make_env(plan: CollectPlan, options: CollectOptions, robots: int):
    """The native VectorEnv of ``robots`` robots that a collection steps."""
    return make_task_env(plan.task_id, robots, backend=options.backend, action_mode=plan.action_mode,
                         reward_mode=options.reward_mode, config=plan.config)


def collect(options: CollectOptions) -> CollectResult:
    """Run a collection as ``tground collect`` does (report printing aside)."""
    plan = plan_collection(options)
    task_id, config, env_args = plan.task_id, plan.config, plan.env_args
    out = Path(options.out)
    check_output_location(out)
    done = set()
    if out.exists():
        check_resumable(out, env_args, options.policy)
        done = stored_seeds(out)
    done |= journal_seeds(out)
    if done and min(done) != options.seed:
        # Another first seed would extend the file with a gap (or re-collect seeds under other numbers).
        first, last = min(done), max(done)
        raise InputError(f"{out} holds the seeds {first}..{last} of a run that began at --seed {first}; rerun with "
                         f"--seed {first} (and more --episodes to extend it), or write another file")
    wanted = range(options.seed, options.seed + options.episodes)
    missing = [seed for seed in wanted if seed not in done]
    notices = []
    if not missing and out.exists():
        # The writer checks every stored demo and merges a leftover journal: a damaged demo or an unreadable
        # journal entry is set aside, and its episode is collected below.
        with DatasetWriter(out, env_args, None, options.policy) as writer:
            held = set(writer.done_seeds)
            notices += writer.notices
        missing = [seed for seed in wanted if seed not in held]
        if not missing:
            return CollectResult(None, False, len(held), f"{out} already holds all {options.episodes} requested "
                                                         f"episodes (seeds {wanted.start}..{wanted.stop - 1}); "
                                                         f"nothing to do", resumed=options.episodes)

    robots = min(options.robots, max(len(missing), 1))
    stats = RunStats(control_dt=config.control_dt, robots=robots)
    env = make_env(plan, options, robots)
    interrupted = False
    try:
        task = env.unwrapped.task
        policy = load_policy(options.policy, env)  # a bad policy fails before any file is made
        writer = DatasetWriter(out, env_args, task.state_layout().to_json(), options.policy, options.commit_every)
        notices += writer.notices
        reported = len(writer.notices)
        try:
            pending = [seed for seed in wanted if seed not in writer.done_seeds]
            resumed = options.episodes - len(pending)
            bar = progress_bar(len(pending), f"collect {task_id.split('/')[-1]} x{robots}", options.progress,
                               unit="ep", dynamic_ncols=True)
            if resumed:
                bar.write(f"resuming {out}: {resumed} of the {options.episodes} requested episodes are already there")

            def progress(episode):
                bar.update(1)
                bar.set_postfix(stats.postfix(), refresh=False)

            with terminate_as_interrupt() if options.stop_on_sigterm else nullcontext():
                try:
                    CollectRunner(env, pending, policy, writer, stats, options.only_success, progress).run()
                except KeyboardInterrupt:
                    interrupted = True
            bar.close()
        finally:
            writer.close()
            notices += writer.notices[reported:]  # journal entries set aside by commits during the run
        file_episodes = len(writer.done_seeds)
    finally:
        env.close()
    report = FieldReport.from_run(task_id, options.backend, stats, str(out)) if stats.steps else None
    message = ""
    if interrupted:
        message = (f"interrupted: {len(stats.steps)} finished episodes were written to {out}; "
                   f"rerun the same command to collect the rest")
    return CollectResult(report, interrupted, file_episodes, message, stats, resumed, notices)


# ---------------------------------------------------------------------------------------------- the report
@dataclass
class FieldReport:
    """This run's rate set against the real field (300-500 episodes per robot a day, 30,000 a day in all,
    100 million in a year). CPU-time rates assume a machine runs one such worker per core, as the
    throughput benchmarks do.

    A run over Ray counts every worker: ``robots`` is all workers' robots, ``episodes`` and
    ``cpu_time_s`` are summed over the workers, ``machine_cores`` is the cores of one node and
    ``cluster_cores`` those of all. ``episodes_per_run_day`` is what the run achieved on the wall
    clock, all workers together; with ``--scaling`` the same was first measured for one worker
    alone, and ``scaling_efficiency`` is the K-worker rate over K times that. A Ray run's wall time
    runs from the first shard handed out to the last one finished: the workers' start (process,
    imports, a first env) comes before and the merge after, as one-off costs of a run.
    """

    task: str
    backend: str
    dataset: str
    robots: int
    episodes: int
    successes: int
    success_rate: float
    wall_time_s: float
    cpu_time_s: float
    cpu_cores_used: float
    machine_cores: int
    mean_episode_steps: float
    mean_episode_sim_s: float
    episodes_per_sim_robot_day: float
    episodes_per_core_day: float
    real_robots_per_core_at_300: float
    real_robots_per_core_at_500: float
    episodes_per_machine_day: float
    hours_for_machine_to_match_field_day: float
    machines_for_100M_in_a_year: int
    sim_speed_per_core: float  # simulated robot-seconds per CPU-second
    workers: int = 1  # processes that collected (Ray workers; 1 for a local run)
    nodes: int = 1  # machines they ran on
    cluster_cores: int = 0  # CPU cores of those machines
    episodes_per_run_day: float = 0.0  # episodes this run added per day of its wall time, all workers together
    one_worker_episodes_per_day: float | None = None  # the same rate with one worker alone (--scaling)
    scaling_efficiency: float | None = None  # episodes_per_run_day / (workers * one_worker_episodes_per_day)
    # CPU cores the lone worker got: with cpu_cores_used, this tells contention on a shared machine from overhead
    one_worker_cores_used: float | None = None

    @classmethod
    def from_run(cls, task: str, backend: str, stats: RunStats, dataset: str) -> "FieldReport":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return cls.from_totals(task, backend, dataset, robots=stats.robots, steps=stats.steps,
                               successes=stats.successes, wall_time_s=stats.wall(), cpu_time_s=stats.cpu(),
                               control_dt=stats.control_dt, machine_cores=cores)

    @classmethod
    def from_totals(cls, task: str, backend: str, dataset: str, *, robots: int, steps: list[int],
                    successes: list[bool], wall_time_s: float, cpu_time_s: float, control_dt: float,
                    machine_cores: int, workers: int = 1, nodes: int = 1, cluster_cores: int | None = None,
                    run_episodes: int | None = None, one_worker_episodes_per_day: float | None = None,
                    one_worker_cores_used: float | None = None) -> "FieldReport":
        """The report from totals over all workers: every finished episode's steps and success, the
        summed CPU time, and the run's wall time. ``run_episodes`` (default: the episodes counted) is what
        the run added to the dataset, including episodes of a worker that was lost after finishing them."""
        wall, cpu = max(wall_time_s, 1e-9), max(cpu_time_s, 1e-9)
        episodes = len(steps)
        mean_steps = float(np.mean(steps))
        mean_sim = mean_steps * control_dt
        per_core_day = episodes * SECONDS_PER_DAY / cpu
        per_machine_day = per_core_day * machine_cores
        per_run_day = (episodes if run_episodes is None else run_episodes) * SECONDS_PER_DAY / wall
        efficiency = None
        if one_worker_episodes_per_day:
            efficiency = per_run_day / (workers * one_worker_episodes_per_day)
        return cls(
            task=task, backend=backend, dataset=dataset, robots=robots, episodes=episodes,
            successes=int(np.sum(successes)), success_rate=float(np.mean(successes)),
            wall_time_s=wall, cpu_time_s=cpu, cpu_cores_used=cpu / wall, machine_cores=machine_cores,
            mean_episode_steps=mean_steps, mean_episode_sim_s=mean_sim,
            episodes_per_sim_robot_day=SECONDS_PER_DAY / mean_sim,
            episodes_per_core_day=per_core_day,
            real_robots_per_core_at_300=per_core_day / REAL_ROBOT_PER_DAY[0],
            real_robots_per_core_at_500=per_core_day / REAL_ROBOT_PER_DAY[1],
            episodes_per_machine_day=per_machine_day,
            hours_for_machine_to_match_field_day=FIELD_PER_DAY / per_machine_day * 24.0,
            machines_for_100M_in_a_year=int(math.ceil(FIELD_GOAL / (per_machine_day * DAYS_PER_YEAR))),
            sim_speed_per_core=float(np.sum(steps)) * control_dt / cpu,
            workers=workers, nodes=nodes, cluster_cores=cluster_cores or machine_cores,
            episodes_per_run_day=per_run_day, one_worker_episodes_per_day=one_worker_episodes_per_day,
            scaling_efficiency=efficiency, one_worker_cores_used=one_worker_cores_used,
        )

    def rows(self) -> list[tuple[str, str]]:
        return [
            ("task / engine", f"{self.task} / {self.backend}, {self.robots} simulated robots"
                              + (f" ({self.workers} workers x {self.robots // self.workers})" if self.workers > 1
                                 else "")),
            *([("Ray workers", f"{self.workers} on {self.nodes} node{'s' if self.nodes > 1 else ''}, "
                               f"{self.cluster_cores} cores in all")] if self.workers > 1 or self.nodes > 1 else []),
            ("episodes", f"{self.episodes:,} ({self.successes:,} succeeded, {self.success_rate:.1%})"),
            ("wall time", f"{self.wall_time_s:,.1f} s"),
            ("CPU time, cores used", f"{self.cpu_time_s:,.1f} s, {self.cpu_cores_used:.2f} of {self.machine_cores}"),
            ("mean episode", f"{self.mean_episode_steps:.1f} steps = {self.mean_episode_sim_s:.2f} s simulated"),
            ("episodes per simulated robot per day (sim time)", f"{self.episodes_per_sim_robot_day:,.0f}"),
            ("episodes per CPU core per day (wall clock)", f"{self.episodes_per_core_day:,.0f}"),
            ("  = real robots at 300 / 500 a day", f"{self.real_robots_per_core_at_300:,.1f} / "
                                                    f"{self.real_robots_per_core_at_500:,.1f}"),
            (f"this machine ({self.machine_cores} cores) per day", f"{self.episodes_per_machine_day:,.0f}"),
            ("time to match the field's 30,000 a day", _duration(self.hours_for_machine_to_match_field_day * 3600)),
            ("machines for 100 million in a year", f"{self.machines_for_100M_in_a_year:,}"),
            ("simulated robot-time per CPU second", f"{self.sim_speed_per_core:.2f} s"),
            (f"this run, {self.workers} worker{'s' if self.workers > 1 else ''} (wall clock) per day",
             f"{self.episodes_per_run_day:,.0f}"),
            *self._scaling_rows(),
        ]

    def _scaling_rows(self) -> list[tuple[str, str]]:
        if self.one_worker_episodes_per_day is None:
            return []
        got = "" if self.one_worker_cores_used is None else f" (it got {self.one_worker_cores_used:.2f} cores)"
        return [("one worker alone (wall clock) per day", f"{self.one_worker_episodes_per_day:,.0f}{got}"),
                (f"scaling efficiency ({self.workers} workers / {self.workers} x one)",
                 f"{self.scaling_efficiency:.0%} (the {self.workers} workers got {self.cpu_cores_used:.2f} cores)")]

    def table(self) -> str:
        width = max(len(name) for name, _ in self.rows())
        rule = "-" * (width + 2 + max(len(value) for _, value in self.rows()))
        lines = [rule] + [f"{name:<{width}}  {value}" for name, value in self.rows()] + [rule]
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "field": {
            "real_robot_episodes_per_day": list(REAL_ROBOT_PER_DAY), "field_episodes_per_day": FIELD_PER_DAY,
            "field_goal_episodes_per_year": FIELD_GOAL}}

    def title(self) -> str:
        # Counts, and a rate that rounds only to a tenth: 999 of 1000 must not read as 100 %.
        return (f"{self.task.split('/')[-1]} on the {self.backend} engine: {self.episodes:,} episodes, "
                f"{self.successes:,} succeeded ({self.success_rate:.1%})")

    def plot(self, path) -> None:
        """Episodes a day: this run's rates against the real robot's 300-500 band and the field's 30,000."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(8.5, 4.2 if self.workers == 1 else 5.2))
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        bars = [
            ("one simulated robot\n(simulated time)", self.episodes_per_sim_robot_day, "#4c72b0"),
            ("one CPU core\n(wall clock)", self.episodes_per_core_day, "#55a868"),
            (f"this machine\n({self.machine_cores} cores)", self.episodes_per_machine_day, "#c44e52"),
        ]
        if self.one_worker_episodes_per_day is not None:
            bars.append(("one Ray worker alone\n(measured)", self.one_worker_episodes_per_day, "#8172b3"))
        if self.workers > 1:
            efficiency = f", {self.scaling_efficiency:.0%} efficient" if self.scaling_efficiency is not None else ""
            bars.append((f"this run: {self.workers} workers\n(measured{efficiency})", self.episodes_per_run_day,
                         "#937860"))
        labels = [label for label, _, _ in bars]
        values = [value for _, value, _ in bars]
        axes.barh(labels, values, color=[color for _, _, color in bars], zorder=2)
        axes.set_xscale("log")
        axes.axvspan(*REAL_ROBOT_PER_DAY, color="#dd8452", alpha=0.6, zorder=1, label="real robot: 300-500 a day")
        axes.axvline(FIELD_PER_DAY, color="black", linestyle="--", zorder=3, label="whole real field: 30,000 a day")
        for y, value in enumerate(values):
            axes.text(value, y, f" {value:,.0f}", va="center", fontsize=9)
        low = min(values + [REAL_ROBOT_PER_DAY[0]]) / 3
        axes.set_xlim(low, max(values + [FIELD_PER_DAY]) * 8)
        axes.set_xlabel("episodes per day (log scale)")
        axes.invert_yaxis()
        axes.set_title(self.title(), fontsize=10)
        axes.legend(loc="upper right", fontsize=8)
        figure.tight_layout()
        figure.savefig(path, dpi=110)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:,.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:,.1f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:,.1f} h"
    return f"{seconds / 86400:,.1f} days"


def report_paths(options: CollectOptions) -> tuple[Path, Path]:
    """The report JSON (``--report``, else beside the dataset) and the PNG beside it."""
    if options.report:
        json_path = Path(options.report)
    else:
        out = Path(options.out)
        json_path = out.with_name(out.stem + "_report.json")
    return json_path, json_path.with_suffix(".png")


def write_report(report: FieldReport, options: CollectOptions) -> tuple[Path, Path]:
    json_path, png_path = report_paths(options)
    try:
        json_path.write_text(json.dumps(report.to_json(), indent=2))
        report.plot(png_path)
    except OSError as error:
        raise DatasetError(f"cannot write the report {json_path}: {error.strerror or error} (the dataset "
                           f"{options.out} is complete; only the report is missing)") from None
    return json_path, png_path


# ---------------------------------------------------------------------------------------------- command


def add_arguments(parser) -> None:
    """``tground collect``: run a policy (the task's scripted expert by default) on N simulated robots at once and
    write every episode to a crash-safe HDF5 dataset (robomimic layout); rerunning the same command resumes.
    Episode k gets seed SEED+k. Ends with a report against the real field."""
    parser.add_argument("--task", required=True, help="task id or alias, e.g. TrainingGround/BreadPickPlace-v0 or bread")
    parser.add_argument("--robots", type=int, default=64, help="simulated robots stepped together (default: 64)")
    parser.add_argument("--episodes", type=int, required=True, help="episodes to collect (seeds SEED..SEED+N-1)")
    parser.add_argument("--out", required=True, help="dataset file (.hdf5); an existing one of the same run resumes")
    parser.add_argument("--backend", default="numpy", choices=BACKENDS, help="physics backend (default: numpy)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode (default: 0)")
    parser.add_argument("--action-mode", default=None, help="joint_pos or ee_delta (default: the task's)")
    parser.add_argument("--robot", default=None, metavar="NAME_OR_SPEC",
                        help="robot: a registered name or a spec file (path/to/robot.toml); the same as --set robot=...")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="task config override, repeatable: --set max_steps=200 --set ik.damping=0.1")
    parser.add_argument("--policy", default="expert",
                        help=f"the policy: {POLICY_SPECS} (default: expert)")
    parser.add_argument("--only-success", action="store_true",
                        help="keep only successful episodes (failed seeds are recorded in filtered_seeds)")
    parser.add_argument("--report", default=None,
                        help="report JSON path (default: OUT_report.json beside the dataset); a PNG goes beside it")
    parser.add_argument("--commit-every", type=float, default=30.0,
                        help="seconds between merges of finished episodes into the file (default: 30)")
    add_ray_arguments(parser, "collect on Ray workers, each writing a shard beside OUT; the shards are merged "
                               "into OUT at the end")
    parser.add_argument("--yes", action="store_true",
                        help=f"collect even if the expected file (printed first, measured from one episode) is over "
                             f"{_size(CONFIRM_SIZE_BYTES)}; without it such a run in a terminal stops before it starts")
    parser.add_argument("--scaling", action="store_true",
                        help="with --ray: first time one worker alone on one worker's share of the seeds and "
                             "report the scaling efficiency (the share is collected twice)")


def main(args) -> int:
    options = CollectOptions(
        task=args.task, episodes=args.episodes, out=args.out, robots=args.robots, backend=args.backend,
        seed=args.seed, action_mode=args.action_mode, overrides=with_robot(args.set, args.robot), policy=args.policy,
        only_success=args.only_success, report=args.report, commit_every=args.commit_every)
    size = check_size(options, args.yes, sys.stdin.isatty())
    if size:
        print(size, file=sys.stderr)
    if ray_wanted(args, scaling=args.scaling):
        from . import distributed  # Ray is imported only here; distributed imports this module

        result = distributed.collect_distributed(options, args.ray, workers=args.workers, retries=args.retries,
                                                 measure_scaling=args.scaling)
    else:
        result = collect(options)
    if result.report is not None:
        print(result.report.table())
        json_path, png_path = write_report(result.report, options)
        print(f"{args.out}: {result.file_episodes} episodes; report {json_path}, plot {png_path}")
    for notice in result.notices:
        print(notice, file=sys.stderr)
    if result.message:
        print(result.message, file=sys.stderr if result.interrupted else sys.stdout)
    return 130 if result.interrupted else 0
