"""The env spec names the episode's time limit (the config's max_steps), as Minari and Gymnasium's tools read it."""

from __future__ import annotations

import gymnasium
import numpy as np
from gymnasium.wrappers import TimeLimit

import training_ground  # noqa: F401  (registers the ids)


def _wrappers(env) -> list[type]:
    found = []
    while isinstance(env, gymnasium.Wrapper):
        found.append(type(env))
        env = env.env
    return found


def test_the_spec_names_the_config_time_limit_and_make_adds_no_second_one():
    env = gymnasium.make("TrainingGround/BreadPickPlace-v0", backend="numpy", max_steps=7)
    try:
        assert env.spec.max_episode_steps == 7 and TimeLimit not in _wrappers(env)
        env.reset(seed=0)
        for step in range(1, 8):
            _, _, terminated, truncated, _ = env.step(np.zeros(env.action_space.shape, np.float32))
            assert truncated == (step == 7) and not terminated  # the env's own limit, once
        again = gymnasium.make(env.spec)  # rebuilt from its spec (Minari's recover_environment): the same limit
        try:
            assert again.spec.max_episode_steps == 7 and again.unwrapped.config.max_steps == 7
        finally:
            again.close()
    finally:
        env.close()
    assert gymnasium.make("TrainingGround/WardrobeFold-v0", backend="numpy").spec.max_episode_steps == 450
    vector = gymnasium.make_vec("TrainingGround/Stand-v0", num_envs=2, vectorization_mode="vector_entry_point")
    try:
        assert vector.spec.max_episode_steps == vector.unwrapped.config.max_steps
    finally:
        vector.close()
