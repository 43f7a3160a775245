"""Camera pictures for a dataset recorded without them: ``tground replay FILE --add-cameras head ... --out NEW``.

A recorded state holds everything a picture shows (the robot's posture, the objects, the garment),
so each step's pictures are taken by restoring that step's state, in the episode its seed starts,
and picturing it: the same pictures the collection would have recorded with the cameras on (at
``camera_fps``, each picture held until the next, as the collection holds them). The new file is
the source file with ``<camera>_image`` (and ``_depth``) added to every demo's ``obs`` and
``next_obs`` and the camera settings in its config; every demo is read through its content hash and
written with a new one.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from gymnasium.utils import seeding

from ..envs.observations import render_period
from ..errors import InputError
from ..progress import progress_bar
from .collect import episode_model
from .dataset import DatasetError, DatasetWriter, demo_names, open_dataset, read_demo, reading
from .replay import make_env_for


def add_cameras(path, out, cameras, depth: bool = False, width: int = 128, height: int = 128,
                camera_fps: float | None = None, robots: int = 8, progress: bool = True) -> int:
    """Write ``out``: the dataset at ``path`` with the named cameras' pictures of every step. Returns the demos."""
    path, out = Path(path), Path(out)
    if out.resolve() == path.resolve():
        raise InputError(f"--out must be a new file, not the dataset itself ({path})")
    if out.exists():
        raise InputError(f"{out} exists; --add-cameras writes a new file (remove it or name another --out)")
    with open_dataset(path) as handle, reading(path):
        data = handle["data"]
        names = demo_names(data)
        policy = str(data.attrs.get("policy", ""))
        layout = data.attrs["state_layout"]
    if not names:
        raise DatasetError(f"{path} holds no episodes to picture")
    camera_config = {"cameras": list(cameras), "camera_width": width, "camera_height": height,
                     "camera_fps": camera_fps}
    env, env_args = make_env_for(path, min(robots, len(names)), config_overrides={
        **camera_config, "obs_mode": "state+rgbd" if depth else "state+rgb"})
    stored_mode = env_args["env_kwargs"]["config"].get("obs_mode", "state")
    if stored_mode != "state":
        env.close()
        raise DatasetError(f"{path} already records camera pictures (obs_mode {stored_mode!r}); add cameras to a "
                           f"state-only dataset")
    task = env.unwrapped.task
    period = render_period(camera_fps, task.config.control_dt)
    config = {**env_args["env_kwargs"]["config"], **camera_config, "obs_mode": task.config.obs_mode}
    new_args = {**env_args, "env_kwargs": {**env_args["env_kwargs"], "config": config}}
    bar = progress_bar(len(names), "cameras", progress, unit="ep")
    handle = open_dataset(path)
    try:
        with DatasetWriter(out, new_args, json.loads(layout), policy) as writer:
            for start in range(0, len(names), task.num_envs):
                group = names[start:start + task.num_envs]
                with reading(path):
                    episodes = [read_demo(handle["data"][name]) for name in group]
                for episode, pictures in zip(episodes, _picture(task, path, group, episodes, period)):
                    writer.add(replace(episode, observations={**episode.observations, **pictures}))
                    bar.update(1)
    finally:
        bar.close()
        handle.close()
        env.close()
    return len(names)


def _picture(task, path, names, episodes, period: int) -> list[dict[str, np.ndarray]]:
    """Each episode's pictures (T + 1, ...) per key, its envs restored step by step to the recorded states."""
    env_ids = np.arange(len(episodes))
    task.reset(env_ids, [seeding.np_random(episode.seed)[0] for episode in episodes])
    for i, (name, episode) in enumerate(zip(names, episodes)):
        if episode_model(task.episode_params[i]) != episode.model:
            raise DatasetError(f"{path}: {name}'s seed {episode.seed} draws other objects than it recorded; this "
                               f"version cannot picture it (tground replay says more)")
    lengths = [len(episode.actions) + 1 for episode in episodes]
    pictures: list[dict[str, np.ndarray]] = [{} for _ in episodes]
    for step in range(0, max(lengths), period):
        active = np.array([i for i in env_ids if step < lengths[i]])
        states = np.stack([_state(episodes[i], step) for i in active])
        task.set_state(active, states)
        observation = task.camera_observations.observe()
        for i in active:
            held = min(period, lengths[i] - step)  # held until the next picture, as a collection holds it
            for key, value in observation.items():
                frames = pictures[i].setdefault(key, np.empty((lengths[i], *value.shape[1:]), value.dtype))
                frames[step:step + held] = value[i]
    return pictures


def _state(episode, step: int) -> np.ndarray:
    return episode.states[step] if step < len(episode.states) else episode.final_state


__all__ = ["add_cameras"]
