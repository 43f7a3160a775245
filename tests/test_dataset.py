"""Simulator state save/restore, and the dataset file format: writer, journal, validation, clear errors."""

from __future__ import annotations

import json
import shutil

import gymnasium
import h5py
import numpy as np
import pytest

import training_ground  # noqa: F401
from training_ground.agents.policies import make_expert
from training_ground.data.collect import CollectOptions, collect
from training_ground.data.dataset import (DatasetError, DatasetWriter, inspect_dataset, journal_dir, open_dataset,
                                          read_demo, stored_seeds)
from training_ground.envs import TASKS, ConfigError, config_to_dict, make_config, parse_overrides
from training_ground.envs.bread import BreadPickPlaceConfig
from training_ground.physics.engine import StateLayout

BREAD = "TrainingGround/BreadPickPlace-v0"


def _expert_run(backend: str, num_envs: int, steps: int, seed: int = 0):
    env = gymnasium.make_vec(BREAD, num_envs=num_envs, vectorization_mode="vector_entry_point", backend=backend)
    observation, _ = env.reset(seed=seed)
    expert = make_expert(env)
    expert.reset()
    for _ in range(steps):
        observation, *_ = env.step(expert.act(observation))
    return env, expert, observation


# ---------------------------------------------------------------------------------------------- state
def test_state_layout_packs_and_unpacks_named_blocks():
    blocks = {"q": np.arange(6.0).reshape(2, 3), "flag": np.array([1.0, 0.0]), "poses": np.ones((2, 2, 7))}
    layout = StateLayout.of(blocks)
    assert layout.size == 3 + 1 + 14
    flat = layout.pack(blocks)
    assert flat.shape == (2, 18) and flat.dtype == np.float64
    back = layout.unpack(flat)
    for name, value in blocks.items():
        np.testing.assert_array_equal(back[name], value)
    assert StateLayout.from_json(json.loads(json.dumps(layout.to_json()))) == layout
    with pytest.raises(ValueError, match="shape"):
        layout.unpack(np.zeros((2, 17)))


@pytest.mark.parametrize("backend", ["numpy", "pybullet"])
def test_get_state_set_state_round_trip_while_holding_the_roll(backend):
    env, _, _ = _expert_run(backend, 2, 45)
    try:
        task = env.unwrapped.task
        assert (task.engine.grasped_objects() >= 0).any(), "the expert should hold the roll by now"
        state = task.get_state()
        assert state.shape == (2, task.state_layout().size) and state.dtype == np.float64
        task.set_state([0, 1], state)
        np.testing.assert_array_equal(task.get_state(), state)
        np.testing.assert_array_equal(task.engine.grasped_objects(), np.rint(
            state[:, task.state_layout().columns()["engine.grasped"]]).astype(int))
    finally:
        env.close()


def test_numpy_restore_mid_episode_continues_bit_for_bit_and_leaves_others_alone():
    env, expert, observation = _expert_run("numpy", 2, 35)
    try:
        task = env.unwrapped.task
        saved = task.get_state()
        actions = []
        for _ in range(20):  # through the grasp: contacts, welds and friction springs all matter here
            actions.append(expert.act(observation))
            observation, *_ = env.step(actions[-1])
        after = task.get_state()
        other = after[1].copy()
        task.set_state([0], saved[:1])
        np.testing.assert_array_equal(task.get_state()[1], other)  # a partial restore touches env 0 only
        np.testing.assert_array_equal(task.get_state()[0], saved[0])
        task.set_state([1], saved[1:])
        for action in actions:
            env.step(action)
        np.testing.assert_array_equal(task.get_state(), after)
    finally:
        env.close()


@pytest.mark.parametrize("backend", ["numpy", "pybullet"])
@pytest.mark.parametrize("task_id", sorted(TASKS))
def test_every_task_restores_its_observation_from_a_saved_state(task_id, backend):
    """The contract every task and engine keeps: a saved state holds all that the observation depends on.

    pybullet keeps orientations as matrices, so a pose that moved comes back within rounding.
    """
    env = gymnasium.make_vec(task_id, num_envs=2, vectorization_mode="vector_entry_point", backend=backend)
    try:
        task = env.unwrapped.task
        rng = np.random.default_rng(0)
        env.reset(seed=3)
        for _ in range(8):  # the task directly: no autoreset may start another episode in between
            task.step(rng.uniform(-1, 1, env.action_space.shape))
        saved, observation = task.get_state(), {key: value.copy() for key, value in task.observe().items()}
        for _ in range(8):
            task.step(rng.uniform(-1, 1, env.action_space.shape))
        task.set_state([0, 1], saved)
        restored = task.observe()
        for key, value in observation.items():
            if backend == "numpy":
                np.testing.assert_array_equal(restored[key], value, err_msg=key)
            else:
                np.testing.assert_allclose(restored[key], value, rtol=0, atol=1e-12, err_msg=key)
    finally:
        env.close()


def test_set_state_refuses_a_state_of_the_wrong_width():
    env = gymnasium.make_vec(BREAD, num_envs=1, vectorization_mode="vector_entry_point")
    try:
        with pytest.raises(ValueError, match="states must have shape"):
            env.unwrapped.task.set_state([0], np.zeros((1, 5)))
    finally:
        env.close()


# ---------------------------------------------------------------------------------------------- config
def test_config_survives_json_and_refuses_unknown_or_mistyped_keys():
    config = make_config(BreadPickPlaceConfig, parse_overrides(
        ["max_steps=40", "ik.damping=0.1", "randomization.mass_range=[0.1, 0.2]"]))
    assert config.max_steps == 40 and config.ik.damping == 0.1
    assert config.randomization.mass_range == (0.1, 0.2)
    assert make_config(BreadPickPlaceConfig, json.loads(json.dumps(config_to_dict(config)))) == config
    with pytest.raises(ConfigError, match="unknown config key"):
        make_config(BreadPickPlaceConfig, {"max_stepz": 3})
    with pytest.raises(ConfigError, match="unknown config key"):
        make_config(BreadPickPlaceConfig, {"ik": {"dampnig": 0.1}})
    with pytest.raises(ConfigError, match="whole number"):
        make_config(BreadPickPlaceConfig, parse_overrides(["max_steps=fast"]))
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_overrides(["max_steps"])


# ---------------------------------------------------------------------------------------------- the file
@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    """6 short bread episodes, seeds 3..8, on 3 numpy robots."""
    path = tmp_path_factory.mktemp("data") / "small.hdf5"
    result = collect(CollectOptions(task="bread", episodes=6, out=str(path), robots=3, seed=3,
                                    overrides=["max_steps=25"], progress=False))
    assert result.file_episodes == 6
    return path


def test_writer_merges_a_leftover_journal_without_duplicating_seeds(small_dataset, tmp_path):
    path = tmp_path / "copy.hdf5"
    shutil.copyfile(small_dataset, path)
    with open_dataset(path) as handle:
        env_args = json.loads(handle["data"].attrs["env_args"])
        layout = json.loads(handle["data"].attrs["state_layout"])
        episode = read_demo(handle["data/demo_2"])  # seed 5, already in the file
    # As a kill between the commit's rename and the journal clean-up leaves it, plus one new seed.
    with DatasetWriter(path, env_args, layout, "expert") as writer:
        writer.add(episode)
        with h5py.File(small_dataset, "r") as handle:
            moved = read_demo(handle["data/demo_0"])
        moved.seed = 1
        writer.add(moved)
    info = inspect_dataset(path)
    assert info.seeds == [1, 3, 4, 5, 6, 7, 8] and not info.problems
    with h5py.File(path, "r") as handle:
        assert int(handle["data/demo_0"].attrs["seed"]) == 1  # renumbered in seed order
        assert handle["data"].attrs["total"] == sum(info.lengths)
    assert not journal_dir(path).exists()


def test_a_second_writer_on_the_same_file_is_refused(small_dataset, tmp_path):
    path = tmp_path / "copy.hdf5"
    shutil.copyfile(small_dataset, path)
    with open_dataset(path) as handle:
        env_args = json.loads(handle["data"].attrs["env_args"])
    with DatasetWriter(path, env_args, None, "expert"):
        with pytest.raises(DatasetError, match="another process is writing"):
            DatasetWriter(path, env_args, None, "expert")


def test_foreign_and_corrupt_files_get_clear_errors(small_dataset, tmp_path):
    text = tmp_path / "notes.hdf5"
    text.write_text("not a dataset")
    with pytest.raises(DatasetError, match="not a readable HDF5 file"):
        inspect_dataset(text)
    other = tmp_path / "other.hdf5"
    with h5py.File(other, "w") as handle:
        handle.create_group("data").attrs["env_args"] = json.dumps({"env_name": "Lift", "type": 1, "env_kwargs": {}})
    with pytest.raises(DatasetError, match="not written by tground collect"):
        inspect_dataset(other)
    truncated = tmp_path / "truncated.hdf5"
    truncated.write_bytes(small_dataset.read_bytes()[: small_dataset.stat().st_size // 2])
    with pytest.raises(DatasetError, match="truncated|corrupt|not a readable"):
        inspect_dataset(truncated)
    with pytest.raises(DatasetError, match="no such file"):
        stored_seeds(tmp_path / "missing.hdf5")
