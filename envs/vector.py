"""The native batched ``gymnasium.vector.VectorEnv``: one engine steps all N environments per call.

``gymnasium.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")`` returns it
(numpy engine by default; ``backend="pybullet"`` works too, for checking).

Seeding rule: ``reset(seed=s)`` gives environment i the seed ``s + i`` (a list gives each
its own); environment i then rolls out exactly like a single env reset with that seed, and
later episodes continue each environment's own generator, as a single env's do.

Autoreset: ``AutoresetMode.NEXT_STEP``, Gymnasium's default. The step after an episode ends
resets that environment (its action is ignored) and returns the first observation of the
next episode with reward 0 and terminated = truncated = False. ``reset(options={"reset_mask":
mask})`` resets only the masked environments and leaves the others untouched.
"""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from ..errors import InputError
from .base import BatchedTask, SpecWithTimeLimit, check_seed, sanitize
from .config import make_config
from .controllers import validate_action


class TrainingGroundVectorEnv(SpecWithTimeLimit, gymnasium.vector.VectorEnv):
    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": ["rgb_array"], "render_fps": 25}
    task_class: type[BatchedTask]

    def __init__(self, num_envs: int = 1, backend: str = "numpy", action_mode: str | None = None,
                 reward_mode: str = "dense", render_mode: str | None = None, config=None, **overrides):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"unknown render_mode {render_mode!r} for the vector env; choose one of "
                             f"{self.metadata['render_modes']}")
        config = make_config(self.task_class.config_class, config, **overrides)
        self.task = self.task_class(backend, num_envs, action_mode, reward_mode, config)
        self.config = config
        self.num_envs = num_envs
        self.render_mode = render_mode
        self.single_action_space = self.task.action_space
        self.single_observation_space = self.task.observation_space
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.metadata = {**self.metadata, "render_fps": int(round(1.0 / config.control_dt))}
        self._generators = [seeding.np_random(None)[0] for _ in range(num_envs)]
        self._needs_reset = np.zeros(num_envs, dtype=bool)

    def reset(self, *, seed: int | list[int] | None = None, options: dict | None = None):
        options = dict(options or {})
        mask = options.pop("reset_mask", np.ones(self.num_envs, dtype=bool))
        if options:
            raise InputError(f"unknown reset options {sorted(options)}; the vector env takes 'reset_mask'")
        if not (isinstance(mask, np.ndarray) and mask.dtype == bool and mask.shape == (self.num_envs,)):
            # An int or string mask cast to bool would reset other environments than meant.
            raise InputError(f"reset_mask must be a bool numpy array of shape ({self.num_envs},), got "
                             f"{type(mask).__name__} {getattr(mask, 'dtype', '')} {np.shape(mask)}")
        env_ids = np.flatnonzero(mask)
        if seed is not None:
            if isinstance(seed, (list, tuple, np.ndarray)):
                seeds = list(seed)
                if len(seeds) != self.num_envs:
                    raise InputError(f"seed must be an int or a list of {self.num_envs} ints, got {len(seeds)}")
            else:
                seeds = [check_seed(seed) + i for i in range(self.num_envs)]
            for i in env_ids:
                self._generators[i] = seeding.np_random(check_seed(seeds[i]))[0]
        if env_ids.size:  # an all-False mask is a valid no-op
            self.task.reset(env_ids, [self._generators[i] for i in env_ids])
        self._needs_reset[env_ids] = False
        observation = self._observe()
        return observation, self._vector_info(self.task.start_info())

    def _observe(self) -> dict[str, np.ndarray]:
        return {key: sanitize(value) for key, value in self.task.observation().items()}

    def step(self, actions):
        actions = validate_action(actions, self.action_space, batched=True)
        restart = np.flatnonzero(self._needs_reset)
        if restart.size:
            # Hold the restarting environments still for this step; they are reset right after it.
            actions = actions.copy()
            actions[restart] = 0.0
        observation, reward, terminated, truncated, info = self.task.step(actions)
        if restart.size:
            self.task.reset(restart, [self._generators[i] for i in restart])
            fresh = self._observe()
            for key in observation:
                observation[key][restart] = fresh[key][restart]
            reward[restart] = 0.0
            terminated[restart] = truncated[restart] = False
            info["is_success"][restart] = False
            info["diverged"][restart] = False
            info["saturated_fraction"][restart] = 0.0
            for value in info["reward_terms"].values():
                value[restart] = 0.0
            info["instruction"] = self.task.episode_instructions()  # the new episodes'
        self._needs_reset = terminated | truncated
        return observation, reward.astype(np.float64), terminated, truncated, self._vector_info(info)

    def _vector_info(self, info: dict) -> dict:
        """Gymnasium's vector info: every key for every env, with its ``_key`` mask."""
        everyone = np.ones(self.num_envs, dtype=bool)
        keys = ("is_success", "diverged", "saturated_fraction", "reward_terms", "instruction")
        return {name: value for key in keys for name, value in ((key, info[key]), (f"_{key}", everyone))}

    def render(self):
        self.task._check_open()
        if self.render_mode == "rgb_array":
            return tuple(self.task.engine.render(i) for i in range(self.num_envs))
        return None

    def close_extras(self, **kwargs):
        self.task.close()
