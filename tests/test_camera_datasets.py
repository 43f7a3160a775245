"""Datasets with camera pictures: collected with the cameras on, or added later from the recorded states."""

from __future__ import annotations

import time

import h5py
import numpy as np
import pytest

import training_ground  # noqa: F401
from training_ground.data.collect import CollectOptions, collect
from training_ground.data.dataset import DatasetError, inspect_dataset
from training_ground.data.images import add_cameras
from training_ground.data.replay import replay_dataset
from training_ground.envs import make_task_env
from training_ground.errors import InputError
from training_ground.physics.cameras import resolve_cameras
from training_ground.physics.rendering import RenderPool, process_cpu_seconds

CAMERAS = '["head","right_wrist"]'
SHORT = ["max_steps=40", "camera_width=32", "camera_height=24"]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """The same three seeds collected state-only, and with two cameras at 10 Hz."""
    folder = tmp_path_factory.mktemp("camera_datasets")
    plain, pictured = folder / "plain.hdf5", folder / "pictured.hdf5"
    collect(CollectOptions(task="bread", episodes=3, out=str(plain), robots=3, overrides=SHORT, progress=False))
    collect(CollectOptions(task="bread", episodes=3, out=str(pictured), robots=3, progress=False,
                           overrides=[*SHORT, "obs_mode=state+rgb", f"cameras={CAMERAS}", "camera_fps=10"]))
    return folder, plain, pictured


def test_pictures_are_stored_uint8_one_compressed_chunk_a_frame(datasets):
    _, _, pictured = datasets
    with h5py.File(pictured) as handle:
        demo = handle["data/demo_0"]
        steps = len(demo["actions"])
        for group in ("obs", "next_obs"):
            for camera in ("head", "right_wrist"):
                images = demo[f"{group}/{camera}_image"]
                assert images.dtype == np.uint8 and images.shape == (steps, 24, 32, 3)
                assert images.chunks == (1, 24, 32, 3) and images.compression == "gzip"
        np.testing.assert_array_equal(demo["obs/head_image"][1:], demo["next_obs/head_image"][:-1])
    info = inspect_dataset(pictured)
    assert not info.problems


def test_a_pictured_dataset_replays_bit_for_bit(datasets):
    _, _, pictured = datasets
    result = replay_dataset(pictured, robots=2, progress=False)
    assert result.reproduced == 3, result.summary()


def test_pictures_added_later_are_the_ones_a_collection_records(datasets):
    folder, plain, pictured = datasets
    added = folder / "added.hdf5"
    assert add_cameras(plain, added, ["head", "right_wrist"], width=32, height=24, camera_fps=10, robots=2,
                       progress=False) == 3
    with h5py.File(added) as new, h5py.File(pictured) as recorded, h5py.File(plain) as source:
        for name in recorded["data"]:
            for group in ("obs", "next_obs"):
                for key in recorded[f"data/{name}/{group}"]:
                    np.testing.assert_array_equal(new[f"data/{name}/{group}/{key}"][()],
                                                  recorded[f"data/{name}/{group}/{key}"][()], err_msg=key)
            np.testing.assert_array_equal(new[f"data/{name}/states"][()], source[f"data/{name}/states"][()])
    assert not inspect_dataset(added).problems
    assert replay_dataset(added, robots=3, progress=False).reproduced == 3


def test_adding_cameras_refuses_bad_requests_and_writes_nothing(datasets, tmp_path):
    _, plain, pictured = datasets
    with pytest.raises(InputError, match="unknown camera"):
        add_cameras(plain, tmp_path / "a.hdf5", ["nose"], progress=False)
    with pytest.raises(DatasetError, match="already records camera pictures"):
        add_cameras(pictured, tmp_path / "b.hdf5", ["head"], progress=False)
    with pytest.raises(InputError, match="not the dataset itself"):
        add_cameras(plain, plain, ["head"], progress=False)
    with pytest.raises(InputError, match="exists"):
        add_cameras(plain, pictured, ["head"], progress=False)
    with pytest.raises(InputError, match="does not divide"):
        add_cameras(plain, tmp_path / "c.hdf5", ["head"], camera_fps=7, progress=False)
    from training_ground.cli import main

    assert main(["replay", str(plain), "--add-cameras", "head"]) == 2  # no --out: one clear error
    assert sorted(path.name for path in tmp_path.iterdir()) == []


def test_render_workers_report_their_cpu_time():
    env = make_task_env("bread", 2, backend="numpy")
    try:
        env.reset(seed=0)
        task = env.task
        views = resolve_cameras(task.robot, task.scene, ["head"])
        pool = RenderPool(task.robot, task.scene, task.engine.config, 1)
        try:
            at_start = pool.cpu_seconds  # the worker's start-up: importing and building its viewer
            snapshots = [task.engine.snapshot(i) for i in range(2)] * 10
            matrices = np.repeat(np.eye(4).reshape(1, 1, 16), 20, axis=0)
            matrices[..., 14] = -1.0  # the camera a metre back from the origin
            rgb, depth = pool.pictures(snapshots, matrices, views, 64, 64)
            assert rgb.shape == (20, 1, 64, 64, 3) and depth.shape == (20, 1, 64, 64, 1)
            assert 0.0 < at_start < pool.cpu_seconds
            assert process_cpu_seconds() - time.process_time() >= pool.cpu_seconds
        finally:
            pool.close()
    finally:
        env.close()
