"""Language instructions: every task says in words what its episode asks, from what the episode drew; the
instruction is in reset and step info (single env and VectorEnv alike), in every collected demo, and optionally an
observation."""

from __future__ import annotations

import string

import gymnasium
import h5py
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import training_ground  # noqa: F401  (registers the ids)
from training_ground.data.collect import CollectOptions, collect
from training_ground.data.dataset import content_hash, demo_arrays, open_dataset, read_demo
from training_ground.data.replay import replay_dataset
from training_ground.envs import TASKS, make_task_env
from training_ground.envs.observations import INSTRUCTION_BYTES, decode_instruction
from training_ground.scenes import assembly as assembly_scene

TASK_IDS = sorted(TASKS)


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_every_task_fills_its_instructions_from_the_episode_and_repeats_them_by_seed(task_id):
    task_class = TASKS[task_id].task_class
    assert task_class.instruction_templates, f"{task_id} has no instruction templates"
    env = make_task_env(task_id, backend="numpy")
    try:
        said = []
        for seed in range(6):
            _, info = env.reset(seed=seed)
            instruction = info["instruction"]
            assert instruction and not set("{}") & set(instruction), instruction  # every field filled
            _, _, _, _, step_info = env.step(np.zeros(env.action_space.shape, np.float32))
            assert step_info["instruction"] == instruction  # one instruction for the whole episode
            assert set(step_info) == set(info)  # reset and step infos alike (Minari records both)
            assert step_info["reward_terms"].keys() == info["reward_terms"].keys()
            said.append(instruction)
        assert [env.reset(seed=seed)[1]["instruction"] for seed in range(6)] == said
    finally:
        env.close()
    vector = make_task_env(task_id, 3, backend="numpy")
    try:
        _, info = vector.reset(seed=[0, 1, 2])
        assert info["instruction"].tolist() == said[:3] and info["_instruction"].all()
    finally:
        vector.close()


def test_the_instruction_names_what_the_episode_drew():
    env = make_task_env("assembly", 8, backend="numpy")
    try:
        _, info = env.reset(seed=0)
        task = env.unwrapped.task
        by_y = np.argsort([y for _, y in assembly_scene.SOCKET_CENTERS])  # right (lowest y) to left
        for k in range(8):
            side = ("right", "middle", "left")[int(np.flatnonzero(by_y == task.target_socket[k])[0])]
            assert f"the {side} socket" in info["instruction"][k] and "chip" in info["instruction"][k]
    finally:
        env.close()
    env = make_task_env("bread", 8, backend="numpy")
    try:
        _, info = env.reset(seed=0)
        task = env.unwrapped.task
        middle = sum(task.config.randomization.length_range) / 2
        for k in range(8):
            length = task.episode_params[k][0].size[1]
            assert ("short" if length < middle else "long") in info["instruction"][k]
        # Over 8 seeds the templates vary; the filled words come from the episode, not the template.
        templates = {next(t for t in task.instruction_templates if _fits(t, s)) for s in info["instruction"]}
        assert len(templates) > 1
    finally:
        env.close()


def _fits(template: str, text: str) -> bool:
    fields = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    return any(template.format(**{f: word for f in fields}) == text for word in ("short", "long"))


def test_each_demo_records_its_instruction_under_its_hash(tmp_path):
    out = tmp_path / "assembly.hdf5"
    collect(CollectOptions(task="assembly", episodes=3, out=str(out), robots=3, seed=4, progress=False,
                           overrides=["max_steps=5"]))
    env = make_task_env("assembly", backend="numpy")
    try:
        expected = [env.reset(seed=seed)[1]["instruction"] for seed in (4, 5, 6)]
    finally:
        env.close()
    with open_dataset(out) as handle:
        assert [read_demo(handle["data"][f"demo_{k}"]).instruction for k in range(3)] == expected
    with h5py.File(out, "a") as handle:  # another instruction is another demo: the hash no longer matches
        group = handle["data/demo_0"]
        attrs = {**group.attrs, "instruction": "Put the chip in the left socket."}
        assert content_hash(demo_arrays(group), attrs) != group.attrs["sha256"]
    assert replay_dataset(out, progress=False).reproduced == 3
    with h5py.File(out, "a") as handle:  # a demo whose seed no longer says what it recorded: replay names it
        group = handle["data/demo_0"]
        group.attrs["instruction"] = "Put the chip in the left socket." if "left" not in expected[0] else "Put it away."
        group.attrs["sha256"] = content_hash(demo_arrays(group), group.attrs)
    result = replay_dataset(out, progress=False)
    assert result.reproduced == 2 and "another instruction" in result.summary()


def test_the_instruction_is_an_optional_observation_in_one_env_and_in_a_batch():
    env = gymnasium.make("TrainingGround/Assembly3C-v0", backend="numpy", instruction_obs=True)
    try:
        check_env(env.unwrapped, skip_render_check=True)
        observation, info = env.reset(seed=4)
        assert observation["instruction"].dtype == np.uint8 and observation["instruction"].shape == (INSTRUCTION_BYTES,)
        assert decode_instruction(observation["instruction"]) == info["instruction"] != ""
        observation, *_, info = env.step(env.action_space.sample())
        assert decode_instruction(observation["instruction"]) == info["instruction"]
    finally:
        env.close()
    batch = make_task_env("assembly", 3, backend="numpy", instruction_obs=True)
    try:
        observation, info = batch.reset(seed=4)
        assert [decode_instruction(row) for row in observation["instruction"]] == list(info["instruction"])
        assert batch.observation_space.contains(observation)
    finally:
        batch.close()
    plain = gymnasium.make("TrainingGround/Assembly3C-v0", backend="numpy")
    try:
        assert "instruction" not in plain.reset(seed=4)[0]
    finally:
        plain.close()
