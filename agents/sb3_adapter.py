"""A thin stable-baselines3 ``VecEnv`` over the native batched VectorEnv (numpy engine by default).

SB3 and Gymnasium disagree on what a vector env returns when an episode ends:

- the native VectorEnv (envs/vector.py) resets on the *next* step (``AutoresetMode.NEXT_STEP``);
- SB3 expects the reset in the *same* step: ``step_wait`` returns the next episode's first
  observation, ``done = terminated or truncated``, and the finished episode's last
  observation in ``infos[i]["terminal_observation"]``, with ``infos[i]["TimeLimit.truncated"]``
  telling a time limit (bootstrap from that observation) from a true end.

The adapter does the same-step reset itself, with a masked ``reset(options={"reset_mask": done})``
right after the step, so each environment's seed sequence is exactly the native one: env i of
an adapter seeded s rolls out like a single env seeded s + i, then continues that env's own
generator. Each finished episode also reports ``infos[i]["episode"] = {"r", "l", "t"}`` (return,
length, seconds since the adapter was made, as SB3's Monitor writes it) and ``is_success``,
which SB3's logger turns into ``rollout/ep_rew_mean`` and ``rollout/success_rate``.

Observations are flattened into one float32 vector per environment (``flatten=True``), in the
key order of the Dict observation space, so SB3's ``MlpPolicy`` applies; a model saved this way
is what ``tground collect --policy PATH.zip`` and ``tground eval --policy PATH.zip`` load.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import gymnasium
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from ..envs import make_task_env, task_spec


def flatten_observations(observation: dict[str, np.ndarray], keys: Sequence[str]) -> np.ndarray:
    """(n, D) float32: each key's (n, ...) array flattened, concatenated in ``keys`` order."""
    n = len(observation[keys[0]])
    return np.concatenate([np.asarray(observation[key], np.float32).reshape(n, -1) for key in keys], axis=1)


class SB3VecEnv(VecEnv):
    """SB3 view of ``gymnasium.make_vec(task_id, num_envs, vectorization_mode="vector_entry_point", **env_kwargs)``.

    ``seed``: the first reset's seed (env i gets seed + i); later resets continue each env's
    generator unless :meth:`seed` is called again. ``flatten``: a Box of flattened observations
    instead of the Dict space.
    """

    def __init__(self, task_id: str, num_envs: int, seed: int | None = 0, flatten: bool = True, **env_kwargs):
        self.task_id = task_spec(task_id).id
        self.env_kwargs = dict(env_kwargs)
        self.vector_env = make_task_env(self.task_id, num_envs, **env_kwargs)
        single_space = self.vector_env.single_observation_space
        self.observation_keys = list(single_space.spaces)
        self.flatten = flatten
        observation_space = spaces.flatten_space(single_space) if flatten else single_space
        if flatten:
            observation_space = spaces.Box(observation_space.low.astype(np.float32),
                                           observation_space.high.astype(np.float32), dtype=np.float32)
        super().__init__(num_envs, observation_space, self.vector_env.single_action_space)
        if seed is not None:
            self.seed(seed)
        self._actions: np.ndarray | None = None
        self._episode_returns = np.zeros(num_envs)
        self._episode_lengths = np.zeros(num_envs, dtype=np.int64)
        self._started = time.perf_counter()
        self._reset_once = False

    @property
    def task(self):
        """The batched task behind the env (engine, config, state)."""
        return self.vector_env.unwrapped.task

    def _convert(self, observation: dict[str, np.ndarray]):
        if self.flatten:
            return flatten_observations(observation, self.observation_keys)
        return {key: np.array(observation[key]) for key in self.observation_keys}

    def _row(self, observation, i: int):
        if self.flatten:
            return observation[i].copy()
        return {key: value[i].copy() for key, value in observation.items()}

    # ------------------------------------------------------------------ VecEnv
    def reset(self):
        seeds = self._seeds
        seed = None if all(s is None for s in seeds) else [int(s) for s in seeds]
        if seed is not None and any(s is None for s in seeds):
            raise ValueError("seed either every environment or none")
        observation, _ = self.vector_env.reset(seed=seed)
        self._reset_seeds()
        self._reset_options()
        self._episode_returns[:] = 0.0
        self._episode_lengths[:] = 0
        self._reset_once = True
        return self._convert(observation)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self):
        if not self._reset_once:
            raise RuntimeError("call reset() before step()")
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async(actions)")
        actions = self._actions.astype(self.action_space.dtype).reshape(self.num_envs, *self.action_space.shape)
        self._actions = None
        observation, rewards, terminated, truncated, info = self.vector_env.step(actions)
        self._episode_returns += rewards
        self._episode_lengths += 1
        dones = terminated | truncated
        converted = self._convert(observation)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        success = np.asarray(info["is_success"], dtype=bool)
        diverged = np.asarray(info["diverged"], dtype=bool)
        finished = np.flatnonzero(dones)
        for i in finished:
            infos[i] = {
                "terminal_observation": self._row(converted, i),
                # True only for a time limit (or divergence): SB3 then bootstraps from the terminal observation.
                "TimeLimit.truncated": bool(truncated[i] and not terminated[i]),
                "is_success": bool(success[i]),
                "diverged": bool(diverged[i]),
                "saturated_fraction": float(info["saturated_fraction"][i]),
                "episode": {"r": float(self._episode_returns[i]), "l": int(self._episode_lengths[i]),
                            "t": round(time.perf_counter() - self._started, 6)},
            }
        if finished.size:
            # Same-step reset, from each env's own generator (no seed: the native sequence continues).
            fresh, _ = self.vector_env.reset(options={"reset_mask": dones})
            fresh = self._convert(fresh)
            if self.flatten:
                converted[finished] = fresh[finished]
            else:
                for key in converted:
                    converted[key][finished] = fresh[key][finished]
            self._episode_returns[finished] = 0.0
            self._episode_lengths[finished] = 0
        return converted, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self.vector_env.close()

    def get_images(self):
        return [None] * self.num_envs

    # Attribute access goes to the one vector env: there are no per-env objects to address.
    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self.vector_env.unwrapped, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        if indices is not None and len(list(self._get_indices(indices))) != self.num_envs:
            raise ValueError("the native vector env has one set of attributes; set them for every env at once")
        setattr(self.vector_env.unwrapped, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        result = getattr(self.vector_env.unwrapped, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gymnasium.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        # No per-env gymnasium wrappers: episode statistics come from this adapter (SB3's Monitor is not needed).
        return [False for _ in self._get_indices(indices)]
