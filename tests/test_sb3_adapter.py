"""The stable-baselines3 VecEnv adapter: same-step reset, terminal observations, time limits, episode info.

Needs the rl extra (stable-baselines3, torch); skipped cleanly without it.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
pytestmark = pytest.mark.rl

from training_ground.agents.sb3_adapter import SB3VecEnv, flatten_observations  # noqa: E402
from training_ground.envs import TASKS  # noqa: E402

BREAD = "TrainingGround/BreadPickPlace-v0"
STAND = "TrainingGround/Stand-v0"


def _native(task_id, num_envs, **kwargs):
    return gymnasium.make_vec(task_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)


def test_flat_observations_follow_gymnasiums_flatten_order():
    env = SB3VecEnv(BREAD, 2, seed=4)
    try:
        observation = env.reset()
        native = env.vector_env.unwrapped.task.observe()
        space = env.vector_env.single_observation_space
        expected = np.stack([gymnasium.spaces.flatten(space, {k: v[i] for k, v in native.items()}) for i in range(2)])
        np.testing.assert_allclose(observation, expected.astype(np.float32), rtol=0, atol=1e-6)
        assert env.observation_space.contains(observation[0])
        assert observation.dtype == np.float32 and observation.shape == (2, env.observation_space.shape[0])
    finally:
        env.close()


def test_time_limit_same_step_reset_and_terminal_observation():
    steps = 4
    env = SB3VecEnv(BREAD, 3, seed=10, max_steps=steps)
    native = _native(BREAD, 3, max_steps=steps)
    rng = np.random.default_rng(0)
    try:
        observation = env.reset()
        native_observation, _ = native.reset(seed=10)
        keys = env.observation_keys
        np.testing.assert_array_equal(observation, flatten_observations(native_observation, keys))
        rewards_sum = np.zeros(3)
        for step in range(1, steps + 1):
            actions = rng.uniform(-1, 1, (3, 14)).astype(np.float32)
            observation, rewards, dones, infos = env.step(actions)
            native_observation, native_rewards, terminated, truncated, _ = native.step(actions)
            rewards_sum += rewards
            np.testing.assert_array_equal(rewards, native_rewards.astype(np.float32))
            if step < steps:
                assert not dones.any() and infos == [{}, {}, {}]
                np.testing.assert_array_equal(observation, flatten_observations(native_observation, keys))
        assert dones.all() and truncated.all() and not terminated.any()
        for i, info in enumerate(infos):
            assert info["TimeLimit.truncated"] is True and info["is_success"] is False
            # The terminal observation is the episode's last; the returned one is the next episode's first.
            np.testing.assert_array_equal(info["terminal_observation"],
                                          flatten_observations(native_observation, keys)[i])
            assert info["episode"]["l"] == steps
            assert info["episode"]["r"] == pytest.approx(rewards_sum[i], rel=1e-5)
        # The native env resets on the next step; its first observation then equals the adapter's, bit for bit.
        native_observation, *_ = native.step(np.zeros((3, 14), np.float32))
        np.testing.assert_array_equal(observation, flatten_observations(native_observation, keys))
        assert not np.array_equal(observation, np.stack([info["terminal_observation"] for info in infos]))
    finally:
        env.close()
        native.close()


def test_next_episode_continues_each_envs_own_seed_sequence():
    """Env i seeded s rolls out like a single env seeded s + i, including its second episode's start."""
    env = SB3VecEnv(BREAD, 2, seed=7, max_steps=2)
    try:
        env.reset()
        for _ in range(2):
            observation, _, dones, _ = env.step(np.zeros((2, 14), np.float32))
        assert dones.all()
        for i in range(2):
            single = gymnasium.make(BREAD, backend="numpy", max_steps=2)
            single.reset(seed=7 + i)
            second, _ = single.reset()
            single.close()
            flat = gymnasium.spaces.flatten(single.observation_space, second)
            np.testing.assert_allclose(observation[i], flat, rtol=0, atol=0)
    finally:
        env.close()


def test_a_true_termination_is_not_a_time_limit():
    """Stand: limp joints (all targets at one end) make the robot fall, which terminates the episode."""
    env = SB3VecEnv(STAND, 2, seed=0)
    try:
        env.reset()
        actions = np.full((2, env.action_space.shape[0]), -1.0, np.float32)
        finished = {}
        for _ in range(env.task.config.max_steps):
            _, _, dones, infos = env.step(actions)
            for i in np.flatnonzero(dones):
                finished.setdefault(i, infos[i])
            if len(finished) == 2:
                break
        assert len(finished) == 2
        for info in finished.values():
            assert info["TimeLimit.truncated"] is False and info["is_success"] is False
            assert info["episode"]["l"] < env.task.config.max_steps
    finally:
        env.close()


def test_only_finished_envs_are_reset():
    env = SB3VecEnv(BREAD, 2, seed=3, max_steps=3)
    try:
        env.reset()
        env.step(np.zeros((2, 14), np.float32))
        # Env 1 is one step behind: reset it alone through the native env, as a partial reset would.
        env.vector_env.reset(options={"reset_mask": np.array([False, True])})
        env._episode_lengths[1] = 0
        _, _, dones, _ = env.step(np.zeros((2, 14), np.float32))
        assert not dones.any()
        before = env.task.get_state()[1].copy()
        _, _, dones, infos = env.step(np.zeros((2, 14), np.float32))
        assert dones.tolist() == [True, False] and infos[1] == {}
        assert env.task.elapsed.tolist() == [0, 2]  # env 0 restarted; env 1 is two steps into its episode
        assert not np.array_equal(env.task.get_state()[1], before)  # env 1 stepped on
    finally:
        env.close()


def test_bad_use_is_refused():
    env = SB3VecEnv(BREAD, 2, seed=0)
    try:
        with pytest.raises(RuntimeError, match="reset"):
            env.step(np.zeros((2, 14), np.float32))
        env.reset()
        with pytest.raises(ValueError, match="shape"):
            env.step(np.zeros((2, 13), np.float32))
    finally:
        env.close()
    with pytest.raises(KeyError, match="unknown task"):
        SB3VecEnv("NoSuchTask-v0", 1)


@pytest.mark.parametrize("task_id", list(TASKS))
def test_sb3_check_env_on_every_task(task_id):
    """SB3's own checker on what the adapter presents to SB3: the task's env with flattened observations."""
    from stable_baselines3.common.env_checker import check_env

    env = gymnasium.wrappers.FlattenObservation(gymnasium.make(task_id, backend="numpy"))
    try:
        check_env(env, warn=True, skip_render_check=True)
    finally:
        env.close()
    adapter = SB3VecEnv(task_id, 2, seed=0, max_steps=3)
    try:
        assert adapter.observation_space == env.observation_space
        assert adapter.action_space == env.action_space
    finally:
        adapter.close()


def test_ppo_learns_through_the_adapter_without_error():
    from stable_baselines3 import PPO

    from training_ground.agents.train import quiet_logger

    env = SB3VecEnv(BREAD, 2, seed=0, max_steps=5)
    try:
        model = PPO("MlpPolicy", env, n_steps=8, batch_size=16, n_epochs=1, seed=0, device="cpu")
        model.set_logger(quiet_logger(model.verbose))
        model.learn(total_timesteps=32)
        assert model.num_timesteps == 32
        assert len(model.ep_info_buffer) == 6  # 32 steps / 2 envs / 5 steps an episode = 3 finished each
        assert list(model.ep_success_buffer) == [False] * 6
    finally:
        env.close()


def test_success_bonus_is_added_only_on_successful_episode_ends():
    """tground train's success bonus: on the step an episode succeeds, never otherwise; infos stay the env's."""
    from training_ground.agents.policies import make_expert
    from training_ground.agents.train import TrainArgs, wrap_for_training

    adapter = SB3VecEnv(BREAD, 2, seed=0, max_steps=150)
    plain = SB3VecEnv(BREAD, 2, seed=0, max_steps=150)
    env = wrap_for_training(adapter, TrainArgs(success_bonus=100.0, normalize_reward=False))
    try:
        expert = make_expert(adapter.vector_env)
        env.reset()
        plain.reset()
        expert.reset()
        successes = 0
        for _ in range(150):
            actions = expert.act({k: v.astype(float) for k, v in adapter.task.observe().items()})
            _, rewards, dones, infos = env.step(actions)
            _, plain_rewards, plain_dones, plain_infos = plain.step(actions)
            success = np.array([info.get("is_success", False) for info in infos])
            np.testing.assert_array_equal(dones, plain_dones)
            np.testing.assert_allclose(rewards - plain_rewards, 100.0 * (dones & success), atol=1e-4)
            # The logged returns stay the env's own (the bonus is for training only); "t" is wall time.
            assert ([(i["episode"]["r"], i["episode"]["l"]) for i in infos if "episode" in i]
                    == [(i["episode"]["r"], i["episode"]["l"]) for i in plain_infos if "episode" in i])
            successes += int((dones & success).sum())
            if dones.all():
                break
            expert.reset(dones)
        assert successes >= 1
    finally:
        env.close()
        plain.close()
