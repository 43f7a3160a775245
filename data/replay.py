"""``tground replay``: re-run a dataset's episodes on the engine that recorded them and check that they reproduce.

Each episode starts as it was recorded: its robot is reset with the episode's seed (which
must draw the recorded objects, the demo's ``model``), the reset state is compared with
``states[0]`` and then ``states[0]`` is restored. Its actions are applied in order, the
state before every action is compared with the recorded one, and the episode reproduces
when it ends on the same step, with the same success flag, in a final state equal to the
recorded ``final_state`` (bit for bit unless ``atol`` allows more). Episodes run side by
side in one VectorEnv, as they were collected.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .collect import episode_model
from .platform import numeric_platform
from ..progress import progress_bar
from ..agents.runner import EpisodeRunner
from ..envs import make_task_env, task_spec
from ..errors import InputError
from .dataset import (DatasetError, Episode, dataset_env_args, demo_names, open_dataset, read_demo,
                      reading)


@dataclass
class EpisodeCheck:
    """How one demo replayed. Errors are the largest absolute difference over all state columns."""

    demo: str
    seed: int
    steps: int
    recorded_success: bool
    replayed_success: bool | None = None
    ended_at: int | None = None  # the step count at which the replay ended (None: it had not ended)
    objects_match: bool = True
    instruction_matches: bool = True  # the seed says the recorded instruction (demos recorded without one: True)
    initial_state_error: float = 0.0  # the seeded reset against states[0]
    first_divergence: int | None = None  # first step whose state differs from the recorded one
    max_state_error: float = 0.0
    final_state_error: float = float("inf")
    recorded_platform: str = ""  # the numeric platform it was recorded on ("" in files written before it was kept)

    def reproduced(self, atol: float = 0.0) -> bool:
        return (self.objects_match and self.instruction_matches and self.ended_at == self.steps
                and self.replayed_success == self.recorded_success and self.final_state_error <= atol)

    def why_not(self, atol: float = 0.0) -> str:
        if not self.objects_match:
            return "the seed draws other objects than were recorded (task sampling changed)"
        if not self.instruction_matches:
            return "the seed gives another instruction than was recorded (the task's templates changed)"
        if self.ended_at != self.steps:
            return (f"ended after {self.ended_at} steps, recorded {self.steps}" if self.ended_at is not None
                    else f"did not end after the recorded {self.steps} steps")
        if self.replayed_success != self.recorded_success:
            return f"success {self.replayed_success}, recorded {self.recorded_success}"
        if self.final_state_error > atol:
            return (f"final state differs by up to {self.final_state_error:.3g} (first difference at step "
                    f"{self.first_divergence})")
        return ""


@dataclass
class ReplayResult:
    path: str
    task: str
    backend: str
    checks: list[EpisodeCheck]
    atol: float
    wall_time_s: float
    platform: str = field(default_factory=numeric_platform)  # the numeric platform of this replay

    def off_platform(self) -> list[EpisodeCheck]:
        """Demos recorded on another numeric platform than this replay's, or on an unrecorded one."""
        return [check for check in self.checks if check.recorded_platform != self.platform]

    @property
    def reproduced(self) -> int:
        return sum(check.reproduced(self.atol) for check in self.checks)

    def summary(self) -> str:
        total = len(self.checks)
        exact = sum(check.reproduced(0.0) for check in self.checks)
        lines = [f"replayed {total} episodes of {self.task} on the {self.backend} engine in {self.wall_time_s:.1f} s: "
                 f"{self.reproduced}/{total} reproduced ({self.reproduced / max(total, 1):.0%}); success flags "
                 f"{sum(c.replayed_success == c.recorded_success for c in self.checks)}/{total}, final states "
                 f"bit-identical {exact}/{total}"]
        failed = [check for check in self.checks if not check.reproduced(self.atol)]
        for check in failed:
            lines.append(f"  {check.demo} (seed {check.seed}): {check.why_not(self.atol)}")
        elsewhere = [check for check in self.off_platform() if check in failed]
        if elsewhere:
            recorded = sorted({check.recorded_platform or "a platform the file does not name (written before "
                               "demos kept theirs)" for check in elsewhere})
            lines.append(f"  {len(elsewhere)} of these were recorded on {' and on '.join(recorded)}; this replay runs "
                         f"on {self.platform}. Floating-point rounding differs between BLAS kernels and SIMD levels, "
                         f"so bit for bit holds on the recording platform only: --atol 1e-9 checks that they agree "
                         f"to rounding.")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"path": self.path, "task": self.task, "backend": self.backend, "atol": self.atol,
                "wall_time_s": self.wall_time_s, "platform": self.platform, "episodes": len(self.checks),
                "reproduced": self.reproduced,
                "checks": [{**asdict(check), "reproduced": check.reproduced(self.atol)} for check in self.checks]}


def make_env_for(path, num_envs: int, render_mode: str | None = None, config_overrides: dict | None = None):
    """The VectorEnv a dataset was recorded on (same task, engine, action mode and config, with ``config_overrides``
    over the stored config: settings that do not change the state, such as the cameras), and its env_args."""
    with open_dataset(path) as handle, reading(path):
        env_args = dataset_env_args(handle, path)
        stored_layout = json.loads(handle["data"].attrs.get("state_layout", "null"))
    try:
        task_id = task_spec(env_args["env_name"]).id
    except KeyError:
        raise DatasetError(f"{path} was recorded on {env_args['env_name']!r}, which this version does not have") from None
    kwargs = dict(env_args["env_kwargs"])
    if config_overrides:
        kwargs["config"] = {**kwargs.get("config", {}), **config_overrides}
    env = make_task_env(task_id, num_envs, render_mode=render_mode, **kwargs)
    layout = env.unwrapped.task.state_layout().to_json()
    if layout != stored_layout:
        env.close()
        raise DatasetError(f"{path} stores states in another layout than this version's {kwargs.get('backend')} "
                           f"engine (the engine changed since it was recorded); it cannot be replayed exactly")
    return env, env_args


def _select(path, demos: list[str] | None) -> list[str]:
    with open_dataset(path) as handle, reading(path):
        available = demo_names(handle["data"])
    if not demos:
        return available
    unknown = [name for name in demos if name not in available]
    if unknown:
        raise DatasetError(f"{path} has no {', '.join(unknown)}; it holds {len(available)} demos "
                           f"(demo_0..demo_{len(available) - 1})")
    return list(demos)


def _error(a: np.ndarray, b: np.ndarray) -> float:
    difference = np.abs(np.asarray(a, float) - np.asarray(b, float))
    return float(np.nanmax(difference)) if difference.size else 0.0


class ReplayRunner(EpisodeRunner):
    """Restores each demo's first state, applies its recorded actions and compares every state on the way."""

    def __init__(self, env, path: Path, handle, names: list[str], progress):
        self.path, self.handle, self.progress = path, handle, progress
        self.demos: dict[int, tuple[Episode, EpisodeCheck]] = {}
        self.checks: list[EpisodeCheck] = []
        seeds = []
        for name in names:
            with reading(path):
                group = handle["data"][name]
                seed = int(group.attrs["seed"])
            if seed in self.demos:
                raise DatasetError(f"{path} holds {self.demos[seed]} and {name} of the same seed {seed}; "
                                   f"a dataset holds each seed once")
            seeds.append(seed)
            self.demos[seed] = name
        super().__init__(env, seeds)
        self.slots: list[tuple[Episode, EpisodeCheck] | None] = [None] * self.num_envs

    def started(self, env_ids, observation) -> None:
        reset_states = self.task.get_state()
        for i in env_ids:
            name = self.demos[int(self.slot_seed[i])]
            with reading(self.path):
                episode = read_demo(self.handle["data"][name])
            check = EpisodeCheck(name, episode.seed, episode.num_samples, episode.success,
                                 recorded_platform=episode.platform)
            check.objects_match = episode_model(self.task.episode_params[i]) == episode.model
            check.instruction_matches = episode.instruction in ("", self.task.instructions[i])
            check.initial_state_error = _error(reset_states[i], episode.states[0])
            self.slots[i] = (episode, check)
            self.checks.append(check)
        self.task.set_state(env_ids, np.stack([self.slots[i][0].states[0] for i in env_ids]))

    def before_step(self, active) -> None:
        states = self.task.get_state()
        for i in active:
            episode, check = self.slots[i]
            error = _error(states[i], episode.states[self.steps[i]])
            if error > 0 and check.first_divergence is None:
                check.first_divergence = int(self.steps[i])
            check.max_state_error = max(check.max_state_error, error)

    def actions(self, observation, active):
        actions = np.zeros(self.env.action_space.shape, dtype=self.env.action_space.dtype)
        for i in active:
            actions[i] = self.slots[i][0].actions[self.steps[i]]
        return actions

    def cut(self, active):
        cut = np.zeros(self.num_envs, dtype=bool)
        for i in active:
            cut[i] = self.steps[i] >= self.slots[i][1].steps
        return cut

    def ended(self, ends, info) -> None:
        final_states = self.task.get_state()
        for end in ends:
            episode, check = self.slots[end.slot]
            check.ended_at = end.steps if end.done else None
            check.replayed_success = end.success
            check.final_state_error = _error(final_states[end.slot], episode.final_state)
            if check.final_state_error > 0 and check.first_divergence is None:
                check.first_divergence = end.steps
            check.max_state_error = max(check.max_state_error, check.final_state_error)
            self.slots[end.slot] = None
            self.progress(1)


def replay_dataset(path, demos: list[str] | None = None, robots: int = 16, atol: float = 0.0,
                   progress: bool = True) -> ReplayResult:
    path = Path(path)
    names = _select(path, demos)
    if not names:
        raise DatasetError(f"{path} holds no episodes to replay")
    started = time.perf_counter()
    env, env_args = make_env_for(path, min(robots, len(names)))
    handle = open_dataset(path)
    bar = progress_bar(len(names), "replay", progress, unit="ep")
    try:
        runner = ReplayRunner(env, path, handle, names, bar.update)
        runner.run()
    finally:
        bar.close()
        handle.close()
        env.close()
    order = {name: k for k, name in enumerate(names)}
    checks = sorted(runner.checks, key=lambda check: order[check.demo])
    kwargs = env_args["env_kwargs"]
    return ReplayResult(str(path), env_args["env_name"], kwargs.get("backend", "?"), checks, atol,
                        time.perf_counter() - started)


class FilmingReplayRunner(ReplayRunner):
    """A replay of one demo that keeps every ``frame_every``-th camera frame, the first and the last."""

    def __init__(self, env, path, handle, name: str, frame_every: int):
        super().__init__(env, path, handle, [name], progress=lambda finished: None)
        self.frame_every, self.frames = frame_every, []

    def started(self, env_ids, observation) -> None:
        super().started(env_ids, observation)
        self.frames.append(self.env.render()[0])

    def after_step(self, active, actions, observation, rewards, terminated, truncated, info) -> None:
        step = int(self.steps[0])
        if step % self.frame_every == 0 or step == self.slots[0][1].steps:
            self.frames.append(self.env.render()[0])


def render_demo(path, demo: str, out, frame_every: int = 2) -> int:
    """Replay one demo in a single rendering env and write its camera frames as an animated GIF."""
    from PIL import Image

    path = Path(path)
    (name,) = _select(path, [demo])
    env, _ = make_env_for(path, 1, render_mode="rgb_array")
    handle = open_dataset(path)
    try:
        runner = FilmingReplayRunner(env, path, handle, name, frame_every)
        runner.run()
        fps = max(1, int(round(env.metadata.get("render_fps", 50) / frame_every)))
    finally:
        handle.close()
        env.close()
    images = [Image.fromarray(frame) for frame in runner.frames]
    try:
        images[0].save(out, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    except OSError as error:
        raise DatasetError(f"cannot write {out}: {error.strerror or error}") from None
    return len(images)


# ---------------------------------------------------------------------------------------------- command


def add_arguments(parser) -> None:
    """``tground replay``: restore each episode's initial state, apply its recorded actions on the same engine and
    check that it ends on the same step with the same success flag and final state."""
    parser.add_argument("dataset", help="an HDF5 file written by tground collect")
    parser.add_argument("--demos", nargs="+", default=None, metavar="DEMO", help="only these demos (e.g. demo_0)")
    parser.add_argument("--episodes", type=int, default=None, help="only the first N demos")
    parser.add_argument("--robots", type=int, default=16, help="episodes replayed side by side (default: 16)")
    parser.add_argument("--atol", type=float, default=0.0,
                        help="allowed final-state difference (default: 0, bit for bit)")
    parser.add_argument("--json", default=None, help="write per-episode results to this JSON file")
    parser.add_argument("--render", default=None, metavar="OUT.gif",
                        help="write an animated GIF of one replayed demo instead of checking them all")
    parser.add_argument("--render-demo", default=None, metavar="DEMO", help="the demo to render (default: demo_0)")
    parser.add_argument("--frame-every", type=int, default=2, help="keep every k-th control step as a frame")
    parser.add_argument("--check", action="store_true", help="with --render, also check the episodes")
    parser.add_argument("--add-cameras", nargs="+", default=None, metavar="CAMERA",
                        help="instead of checking: write --out, this dataset with these cameras' pictures of every "
                             "recorded state (the robot's: head, left_wrist, right_wrist; the scene's: scene)")
    parser.add_argument("--out", default=None, metavar="NEW.hdf5", help="the file --add-cameras writes")
    parser.add_argument("--depth", action="store_true", help="with --add-cameras, depth pictures too")
    parser.add_argument("--camera-size", type=int, nargs=2, default=(128, 128), metavar=("WIDTH", "HEIGHT"),
                        help="with --add-cameras, the pictures' size in pixels (default: 128 128)")
    parser.add_argument("--camera-fps", type=float, default=None,
                        help="with --add-cameras, pictures per second, each held until the next (default: every step)")


def main(args) -> int:
    if args.add_cameras:
        from .images import add_cameras

        if not args.out:
            raise InputError("--add-cameras writes a new dataset: name it with --out NEW.hdf5")
        count = add_cameras(args.dataset, args.out, args.add_cameras, depth=args.depth, width=args.camera_size[0],
                            height=args.camera_size[1], camera_fps=args.camera_fps, robots=args.robots)
        print(f"wrote {args.out}: {count} demos with {', '.join(args.add_cameras)} pictures")
        return 0
    if args.render:
        demo = args.render_demo or "demo_0"
        frames = render_demo(args.dataset, demo, args.render, frame_every=args.frame_every)
        print(f"wrote {args.render} ({frames} frames of {demo})")
        if not args.check:
            return 0
    demos = args.demos or None
    if demos is None and args.episodes is not None:
        with open_dataset(args.dataset) as handle:
            demos = demo_names(handle["data"])[:args.episodes]
    result = replay_dataset(args.dataset, demos, robots=args.robots, atol=args.atol)
    print(result.summary())
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_json(), indent=2))
    return 0 if result.reproduced == len(result.checks) else 1
