"""Contracts over every registered task and backend: construction, bad input, finite observations."""

import gymnasium
import numpy as np
import pytest

from training_ground.envs import TASKS, ConfigError
from training_ground.physics import BACKENDS

CASES = [(task_id, backend) for task_id in TASKS for backend in BACKENDS]


@pytest.mark.parametrize("task_id, backend", CASES)
def test_bad_input_is_refused_and_the_env_keeps_working(task_id, backend):
    env = gymnasium.make(task_id, backend=backend)
    try:
        observation, _ = env.reset(seed=0)
        shape = env.action_space.shape
        for bad, message in ((np.zeros(shape[0] + 1, np.float32), "shape"),
                             (np.full(shape, np.nan, np.float32), "NaN"),
                             (np.full(shape, np.inf, np.float32), "NaN or inf"),
                             (np.zeros(shape, np.int64), "dtype"),
                             ("left", "dtype")):
            with pytest.raises(ValueError, match=message):
                env.step(bad)
        for _ in range(5):
            observation, reward, *_ = env.step(env.action_space.sample())
        assert all(np.isfinite(value).all() for value in observation.values()) and np.isfinite(reward)
        assert observation in env.observation_space
    finally:
        env.close()


@pytest.mark.parametrize("task_id, backend", CASES)
def test_unknown_config_keys_are_refused(task_id, backend):
    with pytest.raises(ConfigError, match="not_a_key"):
        gymnasium.make(task_id, backend=backend, not_a_key=1)
    with pytest.raises(ValueError, match="backend"):
        gymnasium.make(task_id, backend="mujoco-warp")


@pytest.mark.parametrize("task_id", list(TASKS))
def test_every_task_has_a_native_vector_entry_point(task_id):
    spec = gymnasium.spec(task_id)
    assert spec.vector_entry_point is not None
    env = gymnasium.make_vec(task_id, num_envs=2, vectorization_mode="vector_entry_point")
    try:
        observation, _ = env.reset(seed=0)
        assert observation in env.observation_space
    finally:
        env.close()


@pytest.mark.parametrize("task_id", list(TASKS))
def test_check_env_on_the_pybullet_backend(task_id):
    # The numpy backend is checked in both action modes in test_vector_env.py.
    from gymnasium.utils.env_checker import check_env

    env = gymnasium.make(task_id, backend="pybullet")
    try:
        check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()


@pytest.mark.parametrize("task_id, backend", CASES)
def test_a_robot_that_breaks_the_43_dof_contract_is_refused_by_every_task(task_id, backend, tmp_path):
    from training_ground import robots
    from training_ground.robots import RobotContractError

    with pytest.raises(KeyError, match="unknown robot"):
        gymnasium.make(task_id, backend=backend, robot="no_such_robot")
    text = robots.load("humanoid43").urdf_path.read_text()
    broken = tmp_path / "broken.urdf"
    broken.write_text(text.replace('<joint name="right_elbow" type="revolute">', '<joint name="right_elbow" type="fixed">'))
    with pytest.raises(RobotContractError):
        gymnasium.make(task_id, backend=backend, robot=str(broken))
