"""export_minari: a dataset of tground collect written in Minari's on-disk format (checked with h5py and json only;
the check against minari itself runs in a virtualenv of its own, README)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gymnasium
import h5py
import numpy as np
import pytest

import training_ground  # registers the Gymnasium ids
from training_ground.data.collect import CollectOptions, collect
from training_ground.data.dataset import DatasetError, dataset_env_args, demo_names, open_dataset, read_demo
from training_ground.data.export_minari import MINARI_VERSION, export_minari
from training_ground.errors import InputError

# Written before truncated existed (format 1): its dones mark time-outs too.
FORMAT_1_DATASET = Path(__file__).parent / "fixtures" / "datasets" / "bread_numpy.hdf5"

# max_steps=120: the expert finishes seed 2 (a terminal step) and runs out of time on seeds 0 and 1 (truncated).
SHORT = ["max_steps=120"]
CAMERAS = ["obs_mode=state+rgbd", 'cameras=["head"]', "camera_width=32", "camera_height=32"]
DATASET_ID = "tground/bread/expert-v0"


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    folder = tmp_path_factory.mktemp("minari_sources")
    plain, pictured = folder / "plain.hdf5", folder / "pictured.hdf5"
    collect(CollectOptions(task="bread", episodes=3, out=str(plain), robots=3, progress=False, overrides=SHORT))
    collect(CollectOptions(task="bread", episodes=3, out=str(pictured), robots=3, progress=False,
                           overrides=[*SHORT, *CAMERAS]))
    return plain, pictured


def source_episodes(path):
    with open_dataset(path) as handle:
        return dataset_env_args(handle, path), [read_demo(handle["data"][name]) for name in demo_names(handle["data"])]


def box_from_json(entry: dict) -> gymnasium.spaces.Box:
    """Minari's deserialize_space for a Box (minari/serialization.py)."""
    assert entry["type"] == "Box"
    return gymnasium.spaces.Box(low=np.array(entry["low"], dtype=entry["dtype"]),
                                high=np.array(entry["high"], dtype=entry["dtype"]),
                                shape=tuple(entry["shape"]), dtype=entry["dtype"])


def read_metadata(root, dataset_id=DATASET_ID) -> dict:
    return json.loads((root / dataset_id / "data" / "metadata.json").read_text())


def all_files(folder):
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*")) if folder.exists() else []


# ---------------------------------------------------------------------------------------------- layout
def test_the_layout_and_metadata_are_minaris(datasets, tmp_path, capsys):
    plain, _ = datasets
    env_args, episodes = source_episodes(plain)
    summary = export_minari(plain, tmp_path)
    progress = capsys.readouterr().err  # the bar over episodes (progress=True by default)
    assert "export minari" in progress and "3/3" in progress
    steps = sum(episode.num_samples for episode in episodes)
    assert summary == {"dataset_id": DATASET_ID, "path": str(tmp_path / DATASET_ID), "episodes": 3, "steps": steps,
                       "successes": sum(episode.success for episode in episodes),
                       "observation_keys": sorted(episodes[0].observations), "size_mb": summary["size_mb"]}
    assert all_files(tmp_path) == ["tground", "tground/bread", "tground/bread/expert-v0",
                                   "tground/bread/expert-v0/data", "tground/bread/expert-v0/data/main_data.hdf5",
                                   "tground/bread/expert-v0/data/metadata.json",
                                   "tground/bread/namespace_metadata.json", "tground/namespace_metadata.json"]
    metadata = read_metadata(tmp_path)
    assert {key: metadata[key] for key in ("dataset_id", "total_episodes", "total_steps", "data_format",
                                           "jpeg_encoding", "minari_version", "algorithm_name")} == {
        "dataset_id": DATASET_ID, "total_episodes": 3, "total_steps": steps, "data_format": "hdf5",
        "jpeg_encoding": False, "minari_version": MINARI_VERSION, "algorithm_name": "expert"}
    assert MINARI_VERSION == "0.5.4"
    assert isinstance(metadata["description"], str) and metadata["description"]
    assert metadata["requirements"] == [f"training-ground=={training_ground.__version__}"]
    assert 0 < metadata["dataset_size"] < 10

    # env_spec: Gymnasium's EnvSpec JSON, which makes the same environment again.
    assert isinstance(metadata["env_spec"], str)
    spec = gymnasium.envs.registration.EnvSpec.from_json(metadata["env_spec"])
    assert spec.id == env_args["env_name"] and spec.kwargs == env_args["env_kwargs"]
    env = gymnasium.make(env_args["env_name"], **env_args["env_kwargs"])
    try:
        # the spaces: JSON strings as Minari's serialize_space writes them, decoding to the env's own spaces
        observation_space = json.loads(metadata["observation_space"])
        assert observation_space["type"] == "Dict"
        assert list(observation_space["subspaces"]) == list(env.observation_space.spaces)
        for key, entry in observation_space["subspaces"].items():
            assert box_from_json(entry) == env.observation_space[key], key
        assert box_from_json(json.loads(metadata["action_space"])) == env.action_space
    finally:
        env.close()
    assert [path.name for path in tmp_path.joinpath("tground/bread").iterdir() if path.name.startswith(".")] == []


def test_every_episode_holds_the_source_demo(datasets, tmp_path):
    plain, _ = datasets
    _, episodes = source_episodes(plain)
    export_minari(plain, tmp_path, progress=False)
    # the fixture has both ends: a terminal step and a time-out
    assert {bool(episode.dones[-1]) for episode in episodes} == {True, False}
    with h5py.File(tmp_path / DATASET_ID / "data" / "main_data.hdf5", "r") as handle:
        assert list(handle) == [f"episode_{i}" for i in range(3)]
        for index, (group, episode) in enumerate(zip(handle.values(), episodes)):
            steps = episode.num_samples
            assert (group.attrs["id"], group.attrs["total_steps"], group.attrs["seed"]) == (index, steps, episode.seed)
            assert bool(group.attrs["success"]) == episode.success and group.attrs["demo"] == f"demo_{index}"
            assert group.attrs["instruction"] == episode.instruction
            assert set(group) == {"observations", "actions", "rewards", "terminations", "truncations", "infos"}
            assert set(group["observations"]) == set(episode.observations)
            for key, value in episode.observations.items():
                stored = group[f"observations/{key}"]
                assert stored.shape == (steps + 1, *value.shape[1:]) and stored.dtype == value.dtype, key
                np.testing.assert_array_equal(stored[()], value, err_msg=key)
            assert group["actions"].dtype == np.float32
            np.testing.assert_array_equal(group["actions"][()], episode.actions)
            np.testing.assert_array_equal(group["rewards"][()], episode.rewards)
            for name, flags in (("terminations", episode.dones), ("truncations", episode.truncated)):
                assert group[name].dtype == bool and group[name].shape == (steps,), name
                np.testing.assert_array_equal(group[name][()], flags.astype(bool), err_msg=name)
            # infos as Minari's DataCollector records them: the reset's, then one a step
            infos = group["infos"]
            assert {key: infos[key].shape for key in infos} == {key: (steps + 1,) for key in
                                                                 ("is_success", "diverged", "instruction")}
            np.testing.assert_array_equal(infos["is_success"][()], [False] * steps + [episode.success])
            assert not infos["diverged"][()].any()
            assert {text.decode() for text in infos["instruction"][()]} == {episode.instruction}
            # resizable along time, as Minari makes its datasets (it appends to them)
            assert group["actions"].maxshape == (None, *episode.actions.shape[1:])


def test_pictures_are_stored_as_raw_uint8(datasets, tmp_path):
    _, pictured = datasets
    _, episodes = source_episodes(pictured)
    summary = export_minari(pictured, tmp_path, dataset_id="tground/bread/pictured-v1", progress=False)
    assert {"head_image", "head_depth"} <= set(summary["observation_keys"])
    metadata = read_metadata(tmp_path, "tground/bread/pictured-v1")
    assert metadata["jpeg_encoding"] is False  # Minari would otherwise decode 32 x 32 uint8 pictures as JPEG
    subspaces = json.loads(metadata["observation_space"])["subspaces"]
    image = box_from_json(subspaces["head_image"])
    assert image.dtype == np.uint8 and image.shape == (32, 32, 3)
    assert (image.low == 0).all() and (image.high == 255).all()
    assert box_from_json(subspaces["head_depth"]).dtype == np.float32
    with h5py.File(tmp_path / "tground/bread/pictured-v1/data/main_data.hdf5", "r") as handle:
        for index, episode in enumerate(episodes):
            images = handle[f"episode_{index}/observations/head_image"]
            assert images.dtype == np.uint8 and images.shape == (episode.num_samples + 1, 32, 32, 3)
            assert images.chunks == (1, 32, 32, 3)
            np.testing.assert_array_equal(images[()], episode.observations["head_image"])
            depth = handle[f"episode_{index}/observations/head_depth"]
            assert depth.dtype == np.float32 and depth.shape == (episode.num_samples + 1, 32, 32, 1)
            np.testing.assert_array_equal(depth[()], episode.observations["head_depth"])
    assert np.ptp(episodes[0].observations["head_image"]) > 0  # real pictures, not blank ones


# ---------------------------------------------------------------------------------------------- bad input
def test_an_invalid_dataset_id_is_refused_before_anything_is_written(datasets, tmp_path):
    plain, _ = datasets
    out = tmp_path / "minari"
    for bad in ("expert", "tground/bread/expert", "tground//bread/expert-v0", "../expert-v0", "tground/ex pert-v0",
                "/abs/expert-v0", "tground/bread/expert-vX"):
        with pytest.raises(InputError, match="invalid Minari dataset id"):
            export_minari(plain, out, dataset_id=bad, progress=False)
    assert not out.exists()


def test_an_existing_dataset_is_refused_and_left_as_it_is(datasets, tmp_path):
    plain, pictured = datasets
    export_minari(plain, tmp_path, progress=False)
    before = {path: path.read_bytes() for path in (tmp_path / DATASET_ID).rglob("*") if path.is_file()}
    with pytest.raises(DatasetError, match="exists"):
        export_minari(pictured, tmp_path, progress=False)
    assert {path: path.read_bytes() for path in (tmp_path / DATASET_ID).rglob("*") if path.is_file()} == before
    with pytest.raises(DatasetError, match="is a Minari dataset itself"):
        export_minari(plain, tmp_path, dataset_id=f"{DATASET_ID}/inner-v0", progress=False)


def test_files_that_are_not_our_datasets_are_refused(datasets, tmp_path):
    plain, _ = datasets
    out = tmp_path / "minari"
    text = tmp_path / "notes.hdf5"
    text.write_text("not HDF5")
    other = tmp_path / "other.hdf5"
    with h5py.File(other, "w") as handle:
        handle.create_dataset("x", data=[1, 2, 3])
    empty = tmp_path / "empty.hdf5"
    shutil.copyfile(plain, empty)
    with h5py.File(empty, "a") as handle:
        for name in demo_names(handle["data"]):
            del handle["data"][name]
    for path, reason in ((tmp_path / "missing.hdf5", "no such file"), (text, "not a readable HDF5"),
                         (other, "not a dataset in the robomimic layout"), (empty, "has no demos"),
                         (FORMAT_1_DATASET, "format 'training_ground.dataset/1'")):
        with pytest.raises(DatasetError, match=reason):
            export_minari(path, out, progress=False)
    assert not out.exists()
    file_out = tmp_path / "a_file"
    file_out.write_text("")
    with pytest.raises(InputError, match="not a folder"):
        export_minari(plain, file_out, progress=False)


def test_a_damaged_demo_stops_the_export_and_leaves_nothing(datasets, tmp_path):
    plain, _ = datasets
    damaged = tmp_path / "damaged.hdf5"
    shutil.copyfile(plain, damaged)
    with h5py.File(damaged, "a") as handle:  # the last demo: two episodes are written before it is read
        handle["data/demo_2/actions"][5, 0] = 0.5 + handle["data/demo_2/actions"][5, 0] / 4
    out = tmp_path / "minari"
    with pytest.raises(DatasetError, match="demo_2 .*damaged"):
        export_minari(damaged, out, progress=False)
    assert all_files(out) == [] and not out.exists()  # the folders it made are gone too
    (out / "tground").mkdir(parents=True)  # a namespace that was there stays
    with pytest.raises(DatasetError, match="damaged"):
        export_minari(damaged, out, progress=False)
    assert all_files(out) == ["tground"]


def test_tground_dataset_export_writes_it_from_the_command_line(datasets, tmp_path):
    from training_ground.cli import main

    plain, _ = datasets
    assert main(["dataset", "export", str(plain), "--format", "minari", "--out", str(tmp_path),
                 "--dataset-id", "tground/bread/cli-v0"]) == 0
    assert read_metadata(tmp_path, "tground/bread/cli-v0")["total_episodes"] == 3
    assert main(["dataset", "export", str(plain), "--format", "minari", "--out", str(tmp_path),
                 "--dataset-id", "bad id"]) == 2  # one clear error, exit 2
