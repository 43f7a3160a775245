"""The scripted BreadPickPlace expert: success rate and batched use."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

from training_ground.agents.experts import BreadPickPlaceExpert
from training_ground.agents.policies import make_expert

SEEDS = range(100, 110)


def run_episode(env, expert, seed: int) -> tuple[bool, int, bool]:
    observation, _ = env.reset(seed=seed)
    expert.reset()
    steps, grasped_once = 0, False
    while True:
        action = expert(observation)
        assert action.shape == env.action_space.shape and action.dtype == np.float32
        observation, reward, terminated, truncated, info = env.step(action)
        steps += 1
        grasped_once |= bool(observation["grasped"].any())
        assert not info["diverged"]
        if terminated or truncated:
            return bool(info["is_success"]), steps, grasped_once


@pytest.mark.slow
def test_expert_succeeds(bread_env):
    expert = make_expert(bread_env)
    assert isinstance(expert, BreadPickPlaceExpert)
    results = [run_episode(bread_env, expert, seed) for seed in SEEDS]
    successes = sum(success for success, _, _ in results)
    assert successes >= 8, results
    for success, steps, grasped_once in results:
        if success:
            assert grasped_once  # placed by carrying, not by pushing
            assert steps < bread_env.unwrapped.config.max_steps


def test_expert_is_batched(bread_env):
    expert = BreadPickPlaceExpert.for_env(bread_env, num_envs=3)
    observations = [bread_env.reset(seed=seed)[0] for seed in (0, 1, 2)]
    batch = {key: np.stack([o[key] for o in observations]) for key in observations[0]}
    expert.reset()
    for _ in range(3):
        action = expert.act(batch)
        assert action.shape == (3, 14)
        assert action.dtype == np.float32
        assert np.all(action >= -1.0) and np.all(action <= 1.0)
        assert np.all(np.isfinite(action))
    # Each row depends only on its own env: the single-env call agrees with the batch.
    for i, observation in enumerate(observations):
        single = BreadPickPlaceExpert.for_env(bread_env, num_envs=1)
        single.reset()
        batched = BreadPickPlaceExpert.for_env(bread_env, num_envs=3)
        batched.reset()
        np.testing.assert_array_equal(single(observation), batched.act(batch)[i])


def test_expert_resets_per_env(bread_env):
    expert = BreadPickPlaceExpert.for_env(bread_env, num_envs=2)
    expert.phase[:] = expert.CARRY
    expert.timer[:] = 5
    expert.reset(np.array([False, True]))
    assert expert.phase.tolist() == [expert.CARRY, expert.APPROACH]
    assert expert.timer.tolist() == [5, 0]


def test_no_expert_for_an_unregistered_task():
    with pytest.raises(KeyError, match="not a registered task"):
        make_expert(object())


def test_expert_on_a_gymnasium_made_env_uses_its_config():
    env = gymnasium.make("TrainingGround/BreadPickPlace-v0", ik={"translation_scale": 0.01})
    try:
        expert = make_expert(env)
        assert expert.ik.translation_scale == 0.01
        assert expert.num_envs == 1
    finally:
        env.close()


def test_bread_and_assembly_experts_are_configurations_of_one_state_machine():
    from training_ground.agents.experts import Assembly3CExpert, TopDownPickPlaceExpert
    from training_ground.envs import TASKS, load_entry_point

    assert load_entry_point(TASKS["TrainingGround/Assembly3C-v0"].expert) is Assembly3CExpert
    for expert in (BreadPickPlaceExpert, Assembly3CExpert):
        assert issubclass(expert, TopDownPickPlaceExpert) and "act" not in vars(expert)


def test_assembly_expert_inserts_slowly_and_lets_go_without_moving_its_fingers():
    from training_ground.agents.experts import Assembly3CExpert

    # The pressing hand's expert (revision 1, assisted): the pinch expert's grip follows the pinch (test_assembly_env).
    env = gymnasium.make("TrainingGround/Assembly3C-v0", backend="numpy", robot_revision=1, grasp="assisted")
    try:
        observation, _ = env.reset(seed=0)
        observation["grasped"][1] = 1.0  # as if the chip were in the hand, still over the tray: far from its seat
        expert = make_expert(env)
        assert isinstance(expert, Assembly3CExpert)
        expert.reset()
        expert.phase[:] = expert.INSERT
        action = expert(observation).reshape(2, 7)
        step = expert.insert_speed / expert.ik.translation_scale
        assert np.abs(action[1, :3]).max() == pytest.approx(step)  # far away, yet no faster than insert_speed
        assert 0 < action[1, 6] < 0.1  # still holding, fingers relaxed to just past half-closed
        expert.phase[:] = expert.RELEASE
        action = expert(observation).reshape(2, 7)
        assert action[1, 6] == 0.0  # not closing (the weld lets go), but the fingers stay where they were
        expert.phase[:] = expert.RETREAT
        assert expert(observation).reshape(2, 7)[1, 6] == -1.0
    finally:
        env.close()
