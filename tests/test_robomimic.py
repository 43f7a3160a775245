"""robomimic's own train.py on a collected image dataset, rollouts and videos in this project's env included.

robomimic runs in a virtualenv of its own (README, "robomimic"): TG_ROBOMIMIC_PYTHON names its python. `.ci/run`
builds that virtualenv and sets it; without it these tests skip, saying how to set it up.
"""

from __future__ import annotations

import json
import os
import subprocess

import h5py
import pytest

from training_ground.data.collect import CollectOptions, collect

ROBOMIMIC_PYTHON = os.environ.get("TG_ROBOMIMIC_PYTHON")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not ROBOMIMIC_PYTHON, reason="robomimic runs in a virtualenv of its own; set TG_ROBOMIMIC_PYTHON to its python "
                                 "(README, robomimic; .ci/run does)")]


def robomimic(*args, cwd, timeout=900) -> subprocess.CompletedProcess:
    result = subprocess.run([ROBOMIMIC_PYTHON, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def image_dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("robomimic")
    path = folder / "bread_images.hdf5"
    collect(CollectOptions(task="bread", episodes=4, out=str(path), robots=4, progress=False, overrides=[
        "obs_mode=state+rgb", 'cameras=["head"]', "camera_width=48", "camera_height=48", "max_steps=150"]))
    return folder, path


def test_robomimic_makes_the_env_from_the_dataset_and_restores_its_states(image_dataset):
    folder, path = image_dataset
    script = f"""
import json, h5py, numpy as np
import robomimic.utils.env_utils as EnvUtils, robomimic.utils.file_utils as FileUtils
import robomimic.utils.obs_utils as ObsUtils
from training_ground.data.robomimic_env import EnvTrainingGround, register
register()
meta = FileUtils.get_env_metadata_from_dataset({str(path)!r})
ObsUtils.initialize_obs_utils_with_obs_specs({{"obs": {{"low_dim": ["joint_pos"], "rgb": ["head_image"]}}}})
env = EnvUtils.create_env_from_metadata(env_meta=meta, render_offscreen=True, use_image_obs=True)
assert isinstance(env, EnvTrainingGround) and EnvUtils.get_env_class(env_meta=meta) is EnvTrainingGround
with h5py.File({str(path)!r}) as f:
    demo = f["data/demo_1"]
    obs = env.reset_to({{"states": demo["states"][5], "seed": int(demo.attrs["seed"])}})
    assert np.array_equal(obs["joint_pos"], demo["obs/joint_pos"][5])
    assert obs["head_image"].shape == (3, 48, 48) and 0.0 <= obs["head_image"].min() <= obs["head_image"].max() <= 1.0
    assert np.array_equal(np.round(obs["head_image"] * 255).astype(np.uint8).transpose(1, 2, 0), demo["obs/head_image"][5])
    state = env.get_state()
    next_obs, reward, done, info = env.step(demo["actions"][5])
    assert np.array_equal(next_obs["joint_pos"], demo["next_obs/joint_pos"][5])
    frame = env.render(mode="rgb_array", height=60, width=80)
    assert frame.shape == (60, 80, 3) and env.render(mode="rgb_array", camera_name="head").shape == (128, 128, 3)
print(json.dumps({{"name": env.name, "serialized": env.serialize()["env_name"], "success": env.is_success()}}))
"""
    out = json.loads(robomimic("-c", script, cwd=folder).stdout.strip().splitlines()[-1])
    assert out["name"] == "TrainingGround-BreadPickPlace-v0" and out["serialized"] == "TrainingGround/BreadPickPlace-v0"
    assert set(out["success"]) == {"task"}


def test_robomimic_train_runs_bc_rnn_with_rollouts_and_videos_on_an_image_dataset(image_dataset):
    folder, path = image_dataset
    config, runs = folder / "bc_rnn.json", folder / "runs"
    robomimic("-m", "training_ground.data.robomimic_env", "config", str(path), str(config), "--rgb", "head_image",
              "--output-dir", str(runs), "--epochs", "2", "--steps-per-epoch", "3", "--batch-size", "4",
              "--rollouts", "2", "--rollout-horizon", "30", "--rollout-every", "2", cwd=folder)
    assert json.loads(config.read_text())["observation"]["modalities"]["obs"]["rgb"] == ["head_image"]
    result = robomimic("-m", "training_ground.data.robomimic_env", "--config", str(config), cwd=folder, timeout=1500)
    assert "Rollout" in result.stdout and "Success_Rate" in result.stdout, result.stdout[-3000:]
    videos = sorted(p.name for p in runs.rglob("*.mp4"))
    assert videos and all(name.startswith("TrainingGround-BreadPickPlace-v0") for name in videos), videos
    assert list(runs.rglob("*.pth")), "robomimic saves the model it rolled out"
    with h5py.File(path) as handle:
        assert json.loads(handle["data"].attrs["env_args"])["type"] == 2
