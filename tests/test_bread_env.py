"""TrainingGround/BreadPickPlace-v0 as a gymnasium.Env: API conformance, determinism, rewards, errors."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import training_ground
from training_ground.envs import ConfigError
from training_ground.envs.bread import BreadPickPlaceConfig

BREAD_ID = "TrainingGround/BreadPickPlace-v0"
ACTION_MODES = ("joint_pos", "ee_delta")


def assert_obs_equal(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.parametrize("action_mode", ACTION_MODES)
def test_check_env(make_bread_env, action_mode):
    env = make_bread_env(action_mode=action_mode)
    check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("action_mode", ACTION_MODES)
def test_spaces(make_bread_env, action_mode):
    env = make_bread_env(action_mode=action_mode)
    size = 43 if action_mode == "joint_pos" else 14
    assert env.action_space.shape == (size,)
    assert env.action_space.dtype == np.float32
    np.testing.assert_array_equal(env.action_space.low, -1.0)
    np.testing.assert_array_equal(env.action_space.high, 1.0)
    expected = {"joint_pos": (43,), "joint_vel": (43,), "hand_pos": (6,), "hand_quat": (8,), "bread_pos": (3,),
                "bread_quat": (4,), "bread_to_hands": (6,), "basket_to_hands": (6,), "grasped": (2,)}
    assert {k: s.shape for k, s in env.observation_space.spaces.items()} == expected


@pytest.mark.parametrize("action_mode", ACTION_MODES)
def test_same_seed_same_rollout(make_bread_env, random_actions, action_mode):
    envs = [make_bread_env(action_mode=action_mode) for _ in range(2)]
    actions = random_actions(envs[0].action_space, 30, seed=11)
    rollouts = []
    for env in envs:
        observation, _ = env.reset(seed=123)
        trace = [(observation, 0.0, False, False)]
        for action in actions:
            observation, reward, terminated, truncated, _ = env.step(action)
            trace.append((observation, reward, terminated, truncated))
            if terminated or truncated:
                break
        rollouts.append(trace)
    assert len(rollouts[0]) == len(rollouts[1])
    for (o1, r1, te1, tr1), (o2, r2, te2, tr2) in zip(*rollouts):
        assert_obs_equal(o1, o2)
        assert r1 == r2 and te1 == te2 and tr1 == tr2


def test_reset_with_same_seed_repeats_in_one_env(bread_env, random_actions):
    first, _ = bread_env.reset(seed=5)
    for action in random_actions(bread_env.action_space, 5, seed=0):
        bread_env.step(action)
    again, _ = bread_env.reset(seed=5)
    assert_obs_equal(first, again)


def test_different_seeds_different_bread(bread_env):
    positions = [bread_env.reset(seed=seed)[0]["bread_pos"] for seed in range(5)]
    for i in range(len(positions)):
        for j in range(i):
            assert not np.allclose(positions[i], positions[j]), (i, j)
    # Unseeded resets continue the generator: a new episode differs from the previous one.
    bread_env.reset(seed=9)
    a = bread_env.reset()[0]["bread_pos"]
    b = bread_env.reset()[0]["bread_pos"]
    assert not np.allclose(a, b)


def test_bread_starts_on_the_table_right_of_the_robot(bread_env):
    for seed in range(5):
        observation, info = bread_env.reset(seed=seed)
        assert info == {"is_success": False, "diverged": False, "saturated_fraction": 0.0, "reward_terms": {
            name: 0.0 for name in ("reach", "grasp", "transport", "place")}, "instruction": info["instruction"]}
        bread = observation["bread_pos"]
        assert 0.3 < bread[0] < 0.6 and -0.4 < bread[1] < -0.15
        np.testing.assert_array_equal(observation["grasped"], 0.0)


def test_dense_reward_is_sum_of_terms(bread_env, random_actions):
    bread_env.reset(seed=3)
    for action in random_actions(bread_env.action_space, 30, seed=3):
        _, reward, terminated, truncated, info = bread_env.step(action)
        terms = info["reward_terms"]
        assert set(terms) == {"reach", "grasp", "transport", "place"}
        assert all(isinstance(v, float) for v in terms.values())
        assert reward == pytest.approx(sum(terms.values()), rel=1e-9, abs=1e-12)
        assert isinstance(reward, float) and np.isfinite(reward)
        assert 0.0 < terms["reach"] <= 1.0  # a hand is never infinitely far from the roll
        if terminated or truncated:
            break


def test_reward_scales_apply(make_bread_env, random_actions):
    plain, scaled = make_bread_env(), make_bread_env(reach_scale=3.0)
    plain.reset(seed=4)
    scaled.reset(seed=4)
    action = random_actions(plain.action_space, 1, seed=4)[0]
    _, _, _, _, info_plain = plain.step(action)
    _, _, _, _, info_scaled = scaled.step(action)
    assert info_scaled["reward_terms"]["reach"] == pytest.approx(3.0 * info_plain["reward_terms"]["reach"])


def test_sparse_reward_is_success(make_bread_env, random_actions):
    env = make_bread_env(reward_mode="sparse")
    env.reset(seed=3)
    for action in random_actions(env.action_space, 20, seed=3):
        _, reward, terminated, truncated, info = env.step(action)
        assert reward == float(info["is_success"])
        if terminated or truncated:
            break


@pytest.mark.parametrize("action_mode", ACTION_MODES)
def test_observations_in_space_and_finite(make_bread_env, random_actions, action_mode):
    env = make_bread_env(action_mode=action_mode)
    observation, _ = env.reset(seed=1)
    observations = [observation]
    for action in random_actions(env.action_space, 20, seed=1):
        observation, *_ = env.step(action)
        observations.append(observation)
    for observation in observations:
        assert env.observation_space.contains(observation)
        for key, value in observation.items():
            assert value.dtype == np.float32, key
            assert np.all(np.isfinite(value)), key
        norms = np.linalg.norm(observation["hand_quat"].reshape(2, 4), axis=1)
        np.testing.assert_allclose(norms, 1.0, atol=1e-4)


def test_observations_do_not_share_memory(bread_env, random_actions):
    actions = random_actions(bread_env.action_space, 2, seed=0)
    first, _ = bread_env.reset(seed=2)
    first_copy = {k: v.copy() for k, v in first.items()}
    second, *_ = bread_env.step(actions[0])
    second_copy = {k: v.copy() for k, v in second.items()}
    for value in first.values():
        value[...] = 1234.0
    third, *_ = bread_env.step(actions[1])
    third_copy = {k: v.copy() for k, v in third.items()}
    assert_obs_equal(second, second_copy)  # mutating the previous obs left this one alone
    for value in second.values():
        value[...] = -4321.0
    assert not any(np.any(v == -4321.0) for v in third.values())
    for key in first:
        assert not np.shares_memory(first[key], second[key])
        assert not np.shares_memory(second[key], third[key])
    # The simulation is not affected by what the caller did with the observations: a replay
    # without any mutation gives the same observations.
    replay, _ = bread_env.reset(seed=2)
    assert_obs_equal(replay, first_copy)
    bread_env.step(actions[0])
    replay, *_ = bread_env.step(actions[1])
    assert_obs_equal(replay, third_copy)


def test_render_rgb_array(make_bread_env):
    env = make_bread_env(render_mode="rgb_array")
    env.reset(seed=0)
    image = env.render()
    assert isinstance(image, np.ndarray)
    assert image.dtype == np.uint8
    assert image.ndim == 3 and image.shape[2] == 3 and image.shape[0] > 10 and image.shape[1] > 10
    assert image.min() != image.max()
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 10


def test_render_none_mode_returns_none(bread_env):
    bread_env.reset(seed=0)
    assert bread_env.render() is None


@pytest.mark.filterwarnings("ignore:.*render_mode:UserWarning")
def test_unknown_render_mode(make_bread_env):
    with pytest.raises(ValueError, match="render_mode"):
        make_bread_env(render_mode="pixels")


def test_truncation_at_max_steps(make_bread_env):
    env = make_bread_env(max_steps=5)
    env.reset(seed=0)
    action = np.zeros(env.action_space.shape, np.float32)
    for step in range(1, 6):
        _, _, terminated, truncated, _ = env.step(action)
        assert not terminated
        assert truncated == (step == 5), step
    # Reset starts a new episode with a fresh step count.
    env.reset(seed=1)
    _, _, _, truncated, _ = env.step(action)
    assert not truncated


def test_zero_ee_delta_action_holds_the_hands(bread_env):
    observation, _ = bread_env.reset(seed=0)
    start = observation["hand_pos"].copy()
    action = np.zeros(14, np.float32)
    action[[6, 13]] = -1.0  # hands open
    for _ in range(25):
        observation, *_ = bread_env.step(action)
    assert np.abs(observation["hand_pos"] - start).max() < 0.03


def test_ee_delta_moves_the_right_hand(bread_env):
    observation, _ = bread_env.reset(seed=0)
    start = observation["hand_pos"].reshape(2, 3).copy()
    action = np.zeros(14, np.float32)
    action[[6, 13]] = -1.0
    action[7 + 2] = 1.0  # right hand up
    for _ in range(10):
        observation, *_ = bread_env.step(action)
    moved = observation["hand_pos"].reshape(2, 3) - start
    assert moved[1, 2] > 0.05  # 10 steps x 2 cm requested
    assert np.abs(moved[0]).max() < 0.03  # the left hand stays


@pytest.mark.parametrize("action_mode", ACTION_MODES)
def test_bad_actions_are_refused_and_env_stays_usable(make_bread_env, action_mode):
    env = make_bread_env(action_mode=action_mode)
    env.reset(seed=0)
    size = env.action_space.shape[0]
    good = np.zeros(size, np.float32)
    nan = good.copy()
    nan[3] = np.nan
    inf = good.copy()
    inf[0] = np.inf
    cases = {
        "shape": np.zeros(size + 1, np.float32),
        "shape ": np.zeros((1, size), np.float32),
        "NaN": nan,
        "inf": inf,
        "dtype": np.zeros(size, np.int64),
        "dtype ": "not an action",
    }
    for expected, action in cases.items():
        with pytest.raises(ValueError) as error:
            env.step(action)
        assert expected.strip() in str(error.value), (expected, str(error.value))
    observation, reward, terminated, truncated, info = env.step(good)
    assert env.observation_space.contains(observation)
    assert np.isfinite(reward)
    assert not info["diverged"]


def test_out_of_range_actions_are_clipped(make_bread_env):
    envs = [make_bread_env(action_mode="joint_pos") for _ in range(2)]
    results = []
    for env, scale in zip(envs, (1.0, 5.0)):
        env.reset(seed=0)
        action = np.full(43, 0.5, np.float32) * np.sign(np.arange(43) % 2 - 0.5)
        observation, *_ = env.step((action * scale * 2).astype(np.float32))
        results.append(observation)
    assert_obs_equal(*results)


@pytest.mark.parametrize("kwargs, match", [
    ({"backend": "mujoco-not-here"}, "backend"),
    ({"action_mode": "torque"}, "action_mode"),
    ({"reward_mode": "shaped"}, "reward_mode"),
])
def test_unknown_options(open_connections, kwargs, match):
    before = open_connections()
    with pytest.raises(ValueError, match=match):
        gymnasium.make(BREAD_ID, **kwargs)
    assert open_connections() == before


def test_unknown_task_id():
    with pytest.raises(gymnasium.error.Error):
        gymnasium.make("TrainingGround/NoSuchTask-v0")
    with pytest.raises((gymnasium.error.NameNotFound, gymnasium.error.VersionNotFound)):
        gymnasium.make("TrainingGround/BreadPickPlace-v9")


def test_unknown_config_key(open_connections):
    before = open_connections()
    with pytest.raises(ConfigError, match="not_a_key"):
        gymnasium.make(BREAD_ID, not_a_key=1)
    with pytest.raises(ConfigError, match="bogus"):
        gymnasium.make(BREAD_ID, config={"ik": {"bogus": 1}})
    with pytest.raises(ConfigError, match="also_bad"):
        gymnasium.make(BREAD_ID, config={"max_steps": 10, "also_bad": 2})
    assert issubclass(ConfigError, ValueError)
    assert open_connections() == before


def test_config_from_dict_and_dataclass(make_bread_env):
    env = make_bread_env(config={"max_steps": 7, "ik": {"translation_scale": 0.01}})
    assert env.unwrapped.config.max_steps == 7
    assert env.unwrapped.config.ik.translation_scale == 0.01
    assert env.unwrapped.config.ik.rotation_scale == BreadPickPlaceConfig().ik.rotation_scale
    env = make_bread_env(config=BreadPickPlaceConfig(max_steps=9))
    assert env.unwrapped.config.max_steps == 9


def test_invalid_engine_config_leaves_no_clients_open(open_connections):
    before = open_connections()
    with pytest.raises(ValueError):
        gymnasium.make(BREAD_ID, physics_dt=0.01)
    with pytest.raises(ValueError):
        gymnasium.make(BREAD_ID, grasp="glue")
    assert open_connections() == before


def test_close_releases_clients(open_connections):
    before = open_connections()
    env = gymnasium.make(BREAD_ID)
    during = open_connections()
    assert len(during - before) == 1
    env.close()
    env.close()
    assert open_connections() == before


def test_package_import_is_enough():
    assert BREAD_ID in gymnasium.registry
    assert training_ground.envs.resolve_task_id("bread") == BREAD_ID
    with pytest.raises(KeyError, match="unknown task"):
        training_ground.envs.resolve_task_id("NotATask")


def test_failure_after_engine_start_leaves_no_clients_open(open_connections):
    """An error raised while the first episode is drawn (after the engine started) closes its clients.

    The check runs while the exception (and its traceback, which references the half-built
    task) is still alive, so garbage collection of the engine cannot hide a leak.
    """
    before = open_connections()
    with pytest.raises(ValueError) as error:
        gymnasium.make(BREAD_ID, config={"randomization": {"radius_range": ("a", "b")}})
    assert error.value is not None
    assert open_connections() == before
