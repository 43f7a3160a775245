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
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .collect import episode_model
from ..envs import make_task_env, task_spec
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
    initial_state_error: float = 0.0  # the seeded reset against states[0]
    first_divergence: int | None = None  # first step whose state differs from the recorded one
    max_state_error: float = 0.0
    final_state_error: float = float("inf")

    def reproduced(self, atol: float = 0.0) -> bool:
        return (self.objects_match and self.ended_at == self.steps and self.replayed_success == self.recorded_success
                and self.final_state_error <= atol)

    def why_not(self, atol: float = 0.0) -> str:
        if not self.objects_match:
            return "the seed draws other objects than were recorded (task sampling changed)"
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
        for check in self.checks:
            if not check.reproduced(self.atol):
                lines.append(f"  {check.demo} (seed {check.seed}): {check.why_not(self.atol)}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"path": self.path, "task": self.task, "backend": self.backend, "atol": self.atol,
                "wall_time_s": self.wall_time_s, "episodes": len(self.checks), "reproduced": self.reproduced,
                "checks": [{**asdict(check), "reproduced": check.reproduced(self.atol)} for check in self.checks]}


def make_env_for(path, num_envs: int, render_mode: str | None = None):
    """The VectorEnv a dataset was recorded on (same task, engine, action mode and config), and its env_args."""
    with open_dataset(path) as handle, reading(path):
        env_args = dataset_env_args(handle, path)
        stored_layout = json.loads(handle["data"].attrs.get("state_layout", "null"))
    try:
        task_id = task_spec(env_args["env_name"]).id
    except KeyError:
        raise DatasetError(f"{path} was recorded on {env_args['env_name']!r}, which this version does not have") from None
    kwargs = dict(env_args["env_kwargs"])
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


def replay_dataset(path, demos: list[str] | None = None, robots: int = 16, atol: float = 0.0,
                   progress: bool = True) -> ReplayResult:
    from tqdm import tqdm

    path = Path(path)
    names = _select(path, demos)
    if not names:
        raise DatasetError(f"{path} holds no episodes to replay")
    started = time.perf_counter()
    env, env_args = make_env_for(path, min(robots, len(names)))
    task = env.unwrapped.task
    n = env.num_envs
    queue = deque(names)
    handle = open_dataset(path)
    slots: list[tuple[Episode, EpisodeCheck] | None] = [None] * n
    steps = np.zeros(n, dtype=np.int64)
    checks: list[EpisodeCheck] = []
    bar = tqdm(total=len(names), desc="replay", unit="ep", disable=None if progress else True)

    def start(env_ids) -> None:
        seeds, mask = [0] * n, np.zeros(n, dtype=bool)
        for i in env_ids:
            slots[i] = None
            if queue:
                name = queue.popleft()
                with reading(path):
                    episode = read_demo(handle["data"][name])
                check = EpisodeCheck(name, episode.seed, episode.num_samples, episode.success)
                slots[i], seeds[i], mask[i] = (episode, check), episode.seed, True
                checks.append(check)
        if not mask.any():
            return
        env.reset(seed=seeds, options={"reset_mask": mask})
        ids = np.flatnonzero(mask)
        reset_states = task.get_state()
        for i in ids:
            episode, check = slots[i]
            check.objects_match = episode_model(task.episode_params[i]) == episode.model
            check.initial_state_error = _error(reset_states[i], episode.states[0])
        task.set_state(ids, np.stack([slots[i][0].states[0] for i in ids]))
        steps[ids] = 0

    try:
        start(range(n))
        action_shape = env.action_space.shape
        while any(slot is not None for slot in slots):
            states = task.get_state()
            actions = np.zeros(action_shape, dtype=env.action_space.dtype)
            active = [i for i in range(n) if slots[i] is not None]
            for i in active:
                episode, check = slots[i]
                error = _error(states[i], episode.states[steps[i]])
                if error > 0 and check.first_divergence is None:
                    check.first_divergence = int(steps[i])
                check.max_state_error = max(check.max_state_error, error)
                actions[i] = episode.actions[steps[i]]
            _, _, terminated, truncated, info = env.step(actions)
            steps[active] += 1
            done = terminated | truncated
            finished = [i for i in active if done[i] or steps[i] >= slots[i][1].steps]
            if finished:
                final_states = task.get_state()
                for i in finished:
                    episode, check = slots[i]
                    check.ended_at = int(steps[i]) if done[i] else None
                    check.replayed_success = bool(info["is_success"][i])
                    check.final_state_error = _error(final_states[i], episode.final_state)
                    if check.final_state_error > 0 and check.first_divergence is None:
                        check.first_divergence = int(steps[i])
                    check.max_state_error = max(check.max_state_error, check.final_state_error)
                    bar.update(1)
                start(finished)
    finally:
        bar.close()
        handle.close()
        env.close()
    order = {name: k for k, name in enumerate(names)}
    checks.sort(key=lambda check: order[check.demo])
    kwargs = env_args["env_kwargs"]
    return ReplayResult(str(path), env_args["env_name"], kwargs.get("backend", "?"), checks, atol,
                        time.perf_counter() - started)


def render_demo(path, demo: str, out, frame_every: int = 2) -> int:
    """Replay one demo in a single rendering env and write its camera frames as an animated GIF."""
    from PIL import Image

    path = Path(path)
    (name,) = _select(path, [demo])
    with open_dataset(path) as handle, reading(path):
        episode = read_demo(handle["data"][name])
    env, _ = make_env_for(path, 1, render_mode="rgb_array")
    frames = []
    try:
        env.reset(seed=[episode.seed], options={"reset_mask": np.ones(1, dtype=bool)})
        env.unwrapped.task.set_state([0], episode.states[:1])
        frames.append(env.render()[0])
        for step, action in enumerate(episode.actions, start=1):
            env.step(action[None])
            if step % frame_every == 0 or step == episode.num_samples:
                frames.append(env.render()[0])
        fps = max(1, int(round(env.metadata.get("render_fps", 50) / frame_every)))
    finally:
        env.close()
    images = [Image.fromarray(frame) for frame in frames]
    try:
        images[0].save(out, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    except OSError as error:
        raise DatasetError(f"cannot write {out}: {error.strerror or error}") from None
    return len(images)
