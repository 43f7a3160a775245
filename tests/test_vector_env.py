"""The native batched VectorEnv (numpy engine) over every registered task, and BreadPickPlace on the numpy backend."""

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

import training_ground  # noqa: F401
from training_ground.agents.policies import make_expert
from training_ground.envs import TASKS
from training_ground.envs.bread import BreadPickPlaceVectorEnv

BREAD = "TrainingGround/BreadPickPlace-v0"


@pytest.fixture
def make_vec():
    made = []

    def factory(num_envs=3, task_id=BREAD, **kwargs):
        env = gymnasium.make_vec(task_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
        made.append(env)
        return env

    yield factory
    for env in made:
        env.close()


def _objects_or_empty(engine):
    return engine.object_poses() if engine.scene.num_objects else np.zeros((engine.num_envs, 0))


def _actions(env, steps, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, env.action_space.shape).astype(np.float32) for _ in range(steps)]


def test_make_vec_gives_the_native_batched_env(make_vec):
    env = make_vec(4)
    assert isinstance(env.unwrapped, BreadPickPlaceVectorEnv)
    assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert env.unwrapped.task.backend == "numpy"
    assert env.action_space.shape == (4, 14)
    observation, info = env.reset(seed=0)
    assert observation in env.observation_space
    assert info["is_success"].shape == (4,)


@pytest.mark.parametrize("task_id", list(TASKS))
def test_env_i_of_a_batch_seeded_s_equals_a_single_env_seeded_s_plus_i(make_vec, task_id):
    env = make_vec(3, task_id)
    single = gymnasium.make(task_id, backend="numpy")
    try:
        observations, _ = env.reset(seed=10)
        single_observation, _ = single.reset(seed=12)
        for key in single_observation:
            np.testing.assert_array_equal(observations[key][2], single_observation[key])
        for action in _actions(env, 8):
            observations, rewards, *_ = env.step(action)
            single_observation, reward, *_ = single.step(action[2])
            for key in single_observation:
                np.testing.assert_array_equal(observations[key][2], single_observation[key])
            assert rewards[2] == reward
    finally:
        single.close()


@pytest.mark.parametrize("task_id", list(TASKS))
def test_same_seed_same_batch_rollout(make_vec, task_id):
    rollouts = []
    for _ in range(2):
        env = make_vec(3, task_id)
        observation, _ = env.reset(seed=4)
        trace = [value.copy() for value in observation.values()]
        for action in _actions(env, 6, seed=1):
            observation, reward, *_ = env.step(action)
            trace += [value.copy() for value in observation.values()] + [reward.copy()]
        rollouts.append(trace)
    for a, b in zip(*rollouts):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("task_id", list(TASKS))
def test_partial_reset_leaves_the_other_environments_untouched(make_vec, task_id):
    env = make_vec(3, task_id)
    env.reset(seed=0)
    for action in _actions(env, 3):
        observation, *_ = env.step(action)
    engine = env.unwrapped.task.engine
    before = engine.state.q.copy(), engine.state.v.copy(), _objects_or_empty(engine)
    mask = np.array([False, True, False])
    fresh, _ = env.reset(options={"reset_mask": mask})
    after = engine.state.q, engine.state.v, _objects_or_empty(engine)
    for old, new in zip(before, after):
        np.testing.assert_array_equal(old[~mask], new[~mask])
        assert old.size == 0 or not np.array_equal(old[mask], new[mask])
    for key in fresh:
        np.testing.assert_array_equal(fresh[key][~mask], observation[key][~mask])
    with pytest.raises(ValueError, match="reset_mask"):
        env.reset(options={"reset_mask": np.ones(2, bool)})
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"mask": mask})


def test_next_step_autoreset(make_vec):
    env = make_vec(2, max_steps=3)
    env.reset(seed=0)
    actions = _actions(env, 4)
    for action in actions[:3]:
        _, _, terminated, truncated, _ = env.step(action)
    assert truncated.all() and not terminated.any()
    observation, reward, terminated, truncated, _ = env.step(actions[3])
    assert (reward == 0).all() and not terminated.any() and not truncated.any()
    # The new episode continues each environment's generator, as a single env's second reset does.
    single = gymnasium.make(BREAD, backend="numpy")
    try:
        single.reset(seed=1)
        second, _ = single.reset()
        np.testing.assert_array_equal(observation["bread_pos"][1], second["bread_pos"])
    finally:
        single.close()


def test_bad_batched_actions_are_refused(make_vec):
    env = make_vec(2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros((2, 13), np.float32))
    bad = np.zeros((2, 14), np.float32)
    bad[1, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        env.step(bad)
    env.step(np.zeros((2, 14), np.float32))  # still usable


@pytest.mark.parametrize("task_id", list(TASKS))
def test_no_nan_and_no_shared_memory_over_4032_random_env_steps(make_vec, task_id):
    """64 environments for 63 random steps: episodes of up to 50 steps, so every environment ends one and is
    autoreset inside the rollout (the step that resets it is checked like any other)."""
    env = make_vec(64, task_id, max_steps=50)
    observation, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    previous = observation
    reset_inside = np.zeros(64, dtype=bool)  # an episode ended before the last step: the next step reset it
    for step in range(63):
        observation, reward, terminated, truncated, _ = env.step(
            rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        for key, value in observation.items():
            assert np.isfinite(value).all(), key
            assert not np.shares_memory(value, previous[key])
        assert np.isfinite(reward).all()
        previous = observation
        reset_inside |= (terminated | truncated) & (step < 62)
    assert reset_inside.all()


@pytest.mark.parametrize("task_id", list(TASKS))
@pytest.mark.parametrize("action_mode", ["joint_pos", "ee_delta"])
def test_check_env_on_the_numpy_backend(task_id, action_mode):
    env = gymnasium.make(task_id, backend="numpy", action_mode=action_mode)
    try:
        check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()


def test_expert_succeeds_on_the_numpy_engine_in_a_batch(make_vec):
    env = make_vec(10)
    expert = make_expert(env)
    observation, _ = env.reset(seed=200)
    expert.reset()
    succeeded = np.zeros(10, dtype=bool)
    finished = np.zeros(10, dtype=bool)
    for _ in range(env.unwrapped.config.max_steps):
        observation, _, terminated, truncated, info = env.step(expert.act(observation))
        succeeded |= info["is_success"] & ~finished
        finished |= terminated | truncated
        if finished.all():
            break
    assert succeeded.sum() >= 8
