"""The LeRobotDataset v3.0 export (data/export_lerobot.py), checked with pyarrow and imageio only (no lerobot):
the layout LeRobot 0.4.4 reads, frames equal to the HDF5 demos, videos that decode to the recorded pictures,
statistics of the data, file limits, old files, and bad input that writes nothing."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
imageio = pytest.importorskip("imageio.v2")
pytest.importorskip("imageio_ffmpeg")

from training_ground import robots
from training_ground.data.collect import CollectOptions, collect
from training_ground.data.dataset import DatasetError
from training_ground.data.export_lerobot import (QUANTILES, _quantile_from_counts, encode_video, export_lerobot,
                                                 join_videos)
from training_ground.errors import InputError, SetupError

SHORT = ["max_steps=40"]
CAMERAS = ["obs_mode=state+rgb", 'cameras=["head","right_wrist"]', "camera_width=32", "camera_height=24"]
FIXTURES = Path(__file__).parent / "fixtures" / "datasets"
STATS = {"min", "max", "mean", "std", "count", *QUANTILES}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """Three bread episodes with two cameras, the same state-only, and their exports."""
    folder = tmp_path_factory.mktemp("lerobot_export")
    pictured, plain = folder / "pictured.hdf5", folder / "plain.hdf5"
    collect(CollectOptions(task="bread", episodes=3, out=str(pictured), robots=3, progress=False,
                           overrides=[*SHORT, *CAMERAS]))
    collect(CollectOptions(task="bread", episodes=3, out=str(plain), robots=3, progress=False, overrides=SHORT))
    summaries = {"pictured": export_lerobot(pictured, folder / "pictured", progress=False),
                 "plain": export_lerobot(plain, folder / "plain", progress=False)}
    return folder, pictured, plain, summaries


def demos(path):
    """Each demo's raw HDF5 arrays (obs/<key> is the observation before each action) and attributes."""
    with h5py.File(path, "r") as handle:
        names = sorted(handle["data"], key=lambda name: int(name[5:]))
        return [({key: value[()] for key, value in handle["data"][name]["obs"].items()},
                 {key: handle["data"][name][key][()] for key in ("actions", "rewards", "dones", "truncated")
                  if key in handle["data"][name]},
                 dict(handle["data"][name].attrs)) for name in names]


def read_table(path: Path):
    return pq.read_table(path)


def files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


# ---------------------------------------------------------------------------------------------- layout
def test_the_folder_and_info_json_are_lerobot_v3(datasets):
    folder, pictured, _, summaries = datasets
    out = folder / "pictured"
    assert files_under(out) == [
        "data/chunk-000/file-000.parquet", "meta/episodes/chunk-000/file-000.parquet", "meta/info.json",
        "meta/stats.json", "meta/tasks.parquet",
        "videos/observation.images.head/chunk-000/file-000.mp4",
        "videos/observation.images.right_wrist/chunk-000/file-000.mp4"]
    info = json.loads((out / "meta/info.json").read_text())
    source = demos(pictured)
    steps = [len(arrays["actions"]) for _, arrays, _ in source]
    instructions = [attrs["instruction"] for _, _, attrs in source]
    assert info["codebase_version"] == "v3.0" and info["robot_type"] == "humanoid43"
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, sum(steps),
                                                                                    len(set(instructions)))
    assert (info["chunks_size"], info["data_files_size_in_mb"], info["video_files_size_in_mb"]) == (1000, 100, 200)
    assert info["fps"] == 50 and info["splits"] == {"train": "0:3"}
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    features = info["features"]
    assert list(features) == ["observation.state", "observation.images.head", "observation.images.right_wrist",
                              "action", "next.reward", "next.done", "next.truncated", "timestamp", "frame_index",
                              "episode_index", "index", "task_index"]
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index", "next.reward", "next.done"):
        assert features[key]["shape"] == [1] and features[key]["names"] is None
    assert features["timestamp"]["dtype"] == "float32" and features["index"]["dtype"] == "int64"
    assert features["next.done"]["dtype"] == features["next.truncated"]["dtype"] == "bool"
    for camera in ("head", "right_wrist"):
        video = features[f"observation.images.{camera}"]
        assert video["dtype"] == "video" and video["shape"] == [24, 32, 3]
        assert video["names"] == ["height", "width", "channels"]
        assert video["info"] == {"video.height": 24, "video.width": 32, "video.codec": "h264",
                                 "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": 50,
                                 "video.channels": 3, "has_audio": False}
    summary = summaries["pictured"]
    assert (summary["episodes"], summary["frames"], summary["fps"]) == (3, sum(steps), 50)
    assert summary["cameras"] == ["head", "right_wrist"] and summary["skipped"] == []
    assert summary["features"]["observation.state"] == features["observation.state"]["shape"]


def test_state_and_action_dimensions_are_named(datasets):
    folder, pictured, _, _ = datasets
    features = json.loads((folder / "pictured/meta/info.json").read_text())["features"]
    robot = robots.load("humanoid43")
    observations = demos(pictured)[0][0]
    state_keys = sorted(key for key in observations if not key.endswith("_image"))
    names = features["observation.state"]["names"]
    assert features["observation.state"]["shape"] == [len(names)]
    assert len(names) == sum(observations[key][0].size for key in state_keys) == len(set(names))
    # The flattening order: the keys sorted, each key's values in a row.
    assert [name.split(".")[0] for name in names] == [key for key in state_keys
                                                      for _ in range(observations[key][0].size)]
    start = names.index("joint_pos." + robot.joint_names[0])
    assert names[start:start + robot.num_joints] == [f"joint_pos.{joint}" for joint in robot.joint_names]
    assert "joint_vel.left_hip_yaw" in names
    assert names[names.index("hand_pos.left.x"):][:6] == ["hand_pos.left.x", "hand_pos.left.y", "hand_pos.left.z",
                                                           "hand_pos.right.x", "hand_pos.right.y", "hand_pos.right.z"]
    assert {"hand_quat.right.qw", "grasped.left", "grasped.right", "bread_pos.z", "bread_quat.qx",
            "bread_to_hands.right.y", "basket_to_hands.left.x"} <= set(names)
    assert features["action"]["dtype"] == "float32" and features["action"]["shape"] == [14]
    assert features["action"]["names"] == [f"{hand}.{part}" for hand in robot.hands
                                           for part in ("dx", "dy", "dz", "drx", "dry", "drz", "grasp")]


def test_a_joint_position_dataset_names_its_actions_by_joint(tmp_path):
    summary = export_lerobot(FIXTURES / "stand_numpy.hdf5", tmp_path / "stand", progress=False)
    features = json.loads((tmp_path / "stand/meta/info.json").read_text())["features"]
    robot = robots.load("humanoid43")
    assert features["action"]["names"] == list(robot.joint_names)
    names = features["observation.state"]["names"]
    assert names[:1] == ["base_height.0"] and "base_velocity.5" in names and "com_pos.x" in names
    assert "feet_pos.left_foot.x" in names and "feet_pos.right_foot.z" in names
    assert summary["cameras"] == [] and summary["episodes"] == 1


# ---------------------------------------------------------------------------------------------- frames
def test_frames_equal_the_hdf5_demos(datasets):
    folder, pictured, _, _ = datasets
    table = read_table(folder / "pictured/data/chunk-000/file-000.parquet")
    source = demos(pictured)
    steps = [len(arrays["actions"]) for _, arrays, _ in source]
    assert table.num_rows == sum(steps)
    schema = table.schema
    assert schema.names == ["observation.state", "action", "next.reward", "next.done", "next.truncated", "timestamp",
                            "frame_index", "episode_index", "index", "task_index"]
    width = sum(value[0].size for key, value in source[0][0].items() if not key.endswith("_image"))
    assert schema.field("observation.state").type == pa.list_(pa.float32(), width)
    assert schema.field("action").type == pa.list_(pa.float32(), 14)
    assert schema.field("next.reward").type == pa.float32() and schema.field("timestamp").type == pa.float32()
    assert schema.field("next.done").type == pa.bool_() and schema.field("next.truncated").type == pa.bool_()
    for key in ("frame_index", "episode_index", "index", "task_index"):
        assert schema.field(key).type == pa.int64()
    columns = table.to_pydict()
    state = np.array(columns["observation.state"], dtype=np.float32)
    tasks = read_table(folder / "pictured/meta/tasks.parquet").column("__index_level_0__").to_pylist()
    start = 0
    for episode, (observations, arrays, attrs) in enumerate(source):
        rows = slice(start, start + steps[episode])
        expected = np.concatenate([observations[key].reshape(steps[episode], -1).astype(np.float32)
                                   for key in sorted(observations) if not key.endswith("_image")], axis=1)
        np.testing.assert_array_equal(state[rows], expected)
        np.testing.assert_array_equal(np.array(columns["action"][rows], dtype=np.float32), arrays["actions"])
        np.testing.assert_array_equal(columns["next.reward"][rows], arrays["rewards"].astype(np.float32))
        np.testing.assert_array_equal(columns["next.done"][rows], arrays["dones"].astype(bool))
        np.testing.assert_array_equal(columns["next.truncated"][rows], arrays["truncated"].astype(bool))
        np.testing.assert_array_equal(columns["frame_index"][rows], np.arange(steps[episode]))
        np.testing.assert_allclose(columns["timestamp"][rows], np.arange(steps[episode]) / 50, rtol=1e-6)
        assert set(columns["episode_index"][rows]) == {episode}
        assert {tasks[index] for index in columns["task_index"][rows]} == {attrs["instruction"]}
        start += steps[episode]
    np.testing.assert_array_equal(columns["index"], np.arange(sum(steps)))
    assert sum(columns["next.truncated"]) + sum(columns["next.done"]) == 3  # every episode ends once


def test_the_episodes_table_covers_the_frames_and_tasks_are_the_instructions(datasets):
    folder, pictured, _, _ = datasets
    episodes = read_table(folder / "pictured/meta/episodes/chunk-000/file-000.parquet").to_pydict()
    source = demos(pictured)
    steps = [len(arrays["actions"]) for _, arrays, _ in source]
    instructions = [attrs["instruction"] for _, _, attrs in source]
    assert episodes["episode_index"] == [0, 1, 2] and episodes["length"] == steps
    assert episodes["dataset_from_index"] == [0, steps[0], steps[0] + steps[1]]
    assert episodes["dataset_to_index"] == list(np.cumsum(steps))
    assert episodes["data/chunk_index"] == episodes["data/file_index"] == [0, 0, 0]
    assert episodes["meta/episodes/chunk_index"] == episodes["meta/episodes/file_index"] == [0, 0, 0]
    assert episodes["tasks"] == [[text] for text in instructions]
    assert episodes["training_ground/seed"] == [int(attrs["seed"]) for _, _, attrs in source]
    for camera in ("head", "right_wrist"):
        prefix = f"videos/observation.images.{camera}/"
        assert episodes[prefix + "chunk_index"] == episodes[prefix + "file_index"] == [0, 0, 0]
        starts = np.concatenate([[0], np.cumsum(steps)[:-1]])
        np.testing.assert_allclose(episodes[prefix + "from_timestamp"], starts / 50)
        np.testing.assert_allclose(episodes[prefix + "to_timestamp"], np.cumsum(steps) / 50)
    for key in ("observation.state", "action", "next.reward", "observation.images.head", "index"):
        assert {f"stats/{key}/{stat}" for stat in STATS} <= set(episodes)
    tasks = read_table(folder / "pictured/meta/tasks.parquet")
    unique = list(dict.fromkeys(instructions))
    assert tasks.column("__index_level_0__").to_pylist() == unique
    assert tasks.column("task_index").to_pylist() == list(range(len(unique)))
    pandas = json.loads(tasks.schema.metadata[b"pandas"])
    assert pandas["index_columns"] == ["__index_level_0__"]  # pandas reads the task back as the frame's index


def test_a_state_only_dataset_has_no_videos(datasets):
    folder, _, _, summaries = datasets
    out = folder / "plain"
    info = json.loads((out / "meta/info.json").read_text())
    assert info["video_path"] is None and not (out / "videos").exists()
    assert not [key for key, feature in info["features"].items() if feature["dtype"] == "video"]
    episodes = read_table(out / "meta/episodes/chunk-000/file-000.parquet")
    assert not [name for name in episodes.column_names if name.startswith("videos/")]
    assert summaries["plain"]["cameras"] == [] and summaries["plain"]["files"]["videos"] == {}


# ---------------------------------------------------------------------------------------------- videos
def decode(path: Path) -> tuple[np.ndarray, dict]:
    reader = imageio.get_reader(str(path), format="FFMPEG")
    try:
        return np.stack([frame for frame in reader.iter_data()]), reader.get_meta_data()
    finally:
        reader.close()


def test_videos_decode_to_the_recorded_pictures(datasets):
    folder, pictured, _, _ = datasets
    source = demos(pictured)
    for camera in ("head", "right_wrist"):
        frames, meta = decode(folder / f"pictured/videos/observation.images.{camera}/chunk-000/file-000.mp4")
        recorded = np.concatenate([observations[f"{camera}_image"] for observations, _, _ in source])
        assert frames.shape == recorded.shape == (sum(len(a["actions"]) for _, a, _ in source), 24, 32, 3)
        assert meta["fps"] == 50 and meta["codec"] == "h264"
        error = np.abs(frames.astype(float) - recorded)
        assert error.mean() < 12, (camera, error.mean())  # H.264 is lossy; pictures this small lose colour most
        # Frame t is picture t: one frame later or earlier is further off.
        assert error.mean() < np.abs(frames[1:].astype(float) - recorded[:-1]).mean()
        assert error.mean() < np.abs(frames[:-1].astype(float) - recorded[1:]).mean()


def test_pictures_of_odd_size_are_encoded_in_full_colour_resolution(tmp_path):
    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 256, (1, 25, 33, 3), dtype=np.uint8), 7, axis=0)
    assert encode_video(frames, tmp_path / "odd.mp4", fps=50) == "yuv444p"
    decoded, meta = decode(tmp_path / "odd.mp4")
    assert decoded.shape == frames.shape and meta["size"] == (33, 25)
    assert encode_video(frames[:, :24, :32], tmp_path / "even.mp4", fps=50) == "yuv420p"


def test_episodes_are_joined_into_one_video_frame_for_frame(tmp_path):
    folder = tmp_path / "it's a folder"  # a quote in the path: ffmpeg's concat list quotes it
    folder.mkdir()
    levels = [np.full((length, 16, 16, 3), level, np.uint8) for length, level in ((5, 40), (3, 200), (4, 120))]
    segments = [folder / f"{i}.mp4" for i in range(3)]
    for frames, segment in zip(levels, segments):
        encode_video(frames, segment, fps=50)
    join_videos(segments, folder / "all.mp4")
    decoded, meta = decode(folder / "all.mp4")
    assert [path.name for path in folder.iterdir()] == ["all.mp4"]
    assert len(decoded) == 12 and meta["fps"] == 50
    np.testing.assert_allclose(decoded.reshape(12, -1).mean(axis=1), np.repeat([40, 200, 120], [5, 3, 4]), atol=3)


# ---------------------------------------------------------------------------------------------- statistics
def test_stats_are_the_datas(datasets):
    folder, pictured, _, _ = datasets
    out = folder / "pictured"
    info = json.loads((out / "meta/info.json").read_text())
    stats = json.loads((out / "meta/stats.json").read_text())
    assert set(stats) == set(info["features"])
    for key, value in stats.items():
        assert set(value) == STATS, key
    frames = read_table(out / "data/chunk-000/file-000.parquet").to_pydict()
    episodes = read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pydict()
    for key in ("observation.state", "action", "next.reward", "frame_index"):
        values = np.array(frames[key], dtype=np.float64).reshape(len(frames[key]), -1)
        np.testing.assert_allclose(stats[key]["min"], values.min(axis=0), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(stats[key]["max"], values.max(axis=0), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(stats[key]["mean"], values.mean(axis=0), rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(stats[key]["std"], values.std(axis=0), rtol=1e-4, atol=1e-6)
        assert stats[key]["count"] == [len(values)]
        # Each episode's own quantiles are its inverted CDF's (what LeRobot's histogram estimates); the dataset's
        # their frame-weighted mean, as LeRobot aggregates them.
        start = 0
        for episode, length in enumerate(episodes["length"]):
            rows = values[start:start + length]
            for stat, q in QUANTILES.items():
                np.testing.assert_allclose(episodes[f"stats/{key}/{stat}"][episode],
                                           np.quantile(rows, q, axis=0, method="inverted_cdf"), rtol=1e-6, atol=1e-9)
            start += length
        for stat in QUANTILES:
            weighted = np.average(np.array(episodes[f"stats/{key}/{stat}"]), axis=0, weights=episodes["length"])
            np.testing.assert_allclose(stats[key][stat], weighted, rtol=1e-9, atol=1e-12)
        assert np.all(np.array(stats[key]["q01"]) <= np.array(stats[key]["q99"]) + 1e-12)
    source = demos(pictured)
    for camera in ("head", "right_wrist"):
        key = f"observation.images.{camera}"
        pictures = np.concatenate([observations[f"{camera}_image"] for observations, _, _ in source])
        channels = pictures.reshape(-1, 3).astype(np.float64) / 255
        for stat in STATS - {"count"}:
            assert np.array(stats[key][stat]).shape == (3, 1, 1), (key, stat)
            assert 0 <= np.min(stats[key][stat]) and np.max(stats[key][stat]) <= 1
        np.testing.assert_allclose(np.ravel(stats[key]["mean"]), channels.mean(axis=0), rtol=1e-9)
        np.testing.assert_allclose(np.ravel(stats[key]["std"]), channels.std(axis=0), rtol=1e-9)
        np.testing.assert_allclose(np.ravel(stats[key]["min"]), channels.min(axis=0))
        np.testing.assert_allclose(np.ravel(stats[key]["max"]), channels.max(axis=0))
        assert stats[key]["count"] == [len(pictures)]
        first = source[0][0][f"{camera}_image"].reshape(-1, 3).astype(np.float64) / 255
        for stat, q in QUANTILES.items():  # an episode's picture quantiles: numpy's over its pixels, per channel
            np.testing.assert_allclose(np.ravel(episodes[f"stats/{key}/{stat}"][0]),
                                       np.quantile(first, q, axis=0, method="inverted_cdf"), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("size", [1, 2, 5, 17, 300])
def test_picture_quantiles_from_level_counts_are_numpys(size):
    levels = np.random.default_rng(size).integers(0, 256, size)
    counts = np.bincount(levels, minlength=256)
    for q in (0.0, *QUANTILES.values(), 1.0):
        assert _quantile_from_counts(counts, q) == np.quantile(levels, q, method="inverted_cdf"), q


# ---------------------------------------------------------------------------------------------- limits, old files
def test_files_roll_over_at_their_size_limits(datasets, tmp_path):
    _, pictured, _, _ = datasets
    out = tmp_path / "small"
    summary = export_lerobot(pictured, out, progress=False, chunks_size=2, data_files_size_in_mb=0.01,
                             video_files_size_in_mb=0.001)
    names = ["chunk-000/file-000", "chunk-000/file-001", "chunk-001/file-000"]
    assert files_under(out / "data") == [f"{name}.parquet" for name in names]
    assert files_under(out / "meta/episodes") == [f"{name}.parquet" for name in names]
    assert files_under(out / "videos/observation.images.head") == [f"{name}.mp4" for name in names]
    assert summary["files"] == {"data": 3, "episodes": 3, "videos": {"observation.images.head": 3,
                                                                     "observation.images.right_wrist": 3}}
    info = json.loads((out / "meta/info.json").read_text())
    assert (info["chunks_size"], info["data_files_size_in_mb"], info["video_files_size_in_mb"]) == (2, 0.01, 0.001)
    episodes = pa.concat_tables([read_table(path) for path in sorted((out / "meta/episodes").rglob("*.parquet"))])
    source = demos(pictured)
    for row in episodes.to_pylist():
        data = read_table(out / info["data_path"].format(chunk_index=row["data/chunk_index"],
                                                         file_index=row["data/file_index"])).to_pydict()
        assert data["episode_index"] == [row["episode_index"]] * row["length"]
        assert data["index"] == list(range(row["dataset_from_index"], row["dataset_to_index"]))
        key = "observation.images.head"
        assert row[f"videos/{key}/from_timestamp"] == 0.0
        assert row[f"videos/{key}/to_timestamp"] == pytest.approx(row["length"] / 50)
        frames, _ = decode(out / info["video_path"].format(video_key=key, chunk_index=row[f"videos/{key}/chunk_index"],
                                                           file_index=row[f"videos/{key}/file_index"]))
        recorded = source[row["episode_index"]][0]["head_image"]
        assert frames.shape == recorded.shape and np.abs(frames.astype(float) - recorded).mean() < 12
    assert not (out / ".episodes").exists()  # the per-episode videos are gone


def test_an_old_file_exports_without_truncation_and_with_its_task_name(tmp_path):
    fixture = FIXTURES / "bread_numpy.hdf5"  # format 1: dones mark every end, no instructions
    summary = export_lerobot(fixture, tmp_path / "old", progress=False)
    info = json.loads((tmp_path / "old/meta/info.json").read_text())
    assert "next.truncated" not in info["features"]
    assert any(line.startswith("next.truncated") for line in summary["skipped"])
    assert summary["tasks"] == ["TrainingGround/BreadPickPlace-v0"]
    frames = read_table(tmp_path / "old/data/chunk-000/file-000.parquet").to_pydict()
    dones = np.concatenate([arrays["dones"] for _, arrays, _ in demos(fixture)])
    np.testing.assert_array_equal(frames["next.done"], dones.astype(bool))


def test_depth_pictures_are_named_as_skipped(tmp_path):
    dataset = tmp_path / "depth.hdf5"
    collect(CollectOptions(task="bread", episodes=1, out=str(dataset), robots=1, progress=False,
                           overrides=["max_steps=5", "obs_mode=state+rgbd", 'cameras=["head"]', "camera_width=16",
                                      "camera_height=16"]))
    summary = export_lerobot(dataset, tmp_path / "out", progress=False)
    assert summary["cameras"] == ["head"]
    assert [line.split(":")[0] for line in summary["skipped"]] == ["head_depth"]
    info = json.loads((tmp_path / "out/meta/info.json").read_text())
    assert not [key for key in info["features"] if "depth" in key]
    assert not [name for name in info["features"]["observation.state"]["names"] if "depth" in name]


# ---------------------------------------------------------------------------------------------- bad input
def assert_nothing_written(folder: Path, before: list[str]) -> None:
    assert sorted(path.name for path in folder.iterdir()) == before


def test_bad_input_raises_one_error_and_writes_nothing(datasets, tmp_path):
    _, pictured, _, _ = datasets
    text = tmp_path / "notes.hdf5"
    text.write_text("not a dataset")
    foreign = tmp_path / "foreign.hdf5"
    with h5py.File(foreign, "w") as handle:
        handle.create_dataset("x", data=np.zeros(3))
    empty = tmp_path / "empty.hdf5"
    shutil.copy(pictured, empty)
    with h5py.File(empty, "a") as handle:
        for name in list(handle["data"]):
            del handle["data"][name]
    damaged = tmp_path / "damaged.hdf5"
    shutil.copy(pictured, damaged)
    with h5py.File(damaged, "a") as handle:  # the last demo: the export has written the others when it fails
        actions = handle["data/demo_2/actions"]
        actions[0, 0] = -actions[0, 0] + 0.5
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    before = sorted(path.name for path in tmp_path.iterdir())
    with pytest.raises(DatasetError, match="not a readable HDF5 file"):
        export_lerobot(text, tmp_path / "a" / "b", progress=False)
    with pytest.raises(DatasetError, match="not a dataset in the robomimic layout"):
        export_lerobot(foreign, tmp_path / "a", progress=False)
    with pytest.raises(DatasetError, match="no demos"):
        export_lerobot(empty, tmp_path / "a", progress=False)
    with pytest.raises(DatasetError, match="demo_2 .*damaged"):
        export_lerobot(damaged, tmp_path / "new" / "deeper", progress=False)
    with pytest.raises(InputError, match="not empty"):
        export_lerobot(pictured, full, progress=False)
    with pytest.raises(InputError, match="not a folder"):
        export_lerobot(pictured, text, progress=False)
    with pytest.raises(InputError, match="crf"):
        export_lerobot(pictured, tmp_path / "a", crf=60, progress=False)
    assert_nothing_written(tmp_path, before)
    assert [path.name for path in full.iterdir()] == ["keep.txt"]


def test_an_empty_output_folder_is_filled(datasets, tmp_path):
    _, _, plain, _ = datasets
    (tmp_path / "out").mkdir()
    summary = export_lerobot(plain, tmp_path / "out", progress=False)
    assert summary["episodes"] == 3 and (tmp_path / "out/meta/info.json").is_file()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]


def test_without_the_export_extra_it_says_what_to_install(datasets, tmp_path, monkeypatch):
    _, _, plain, _ = datasets
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow raises ImportError
    with pytest.raises(SetupError, match=r'pip install "\.\[export\]"'):
        export_lerobot(plain, tmp_path / "out", progress=False)
    assert not list(tmp_path.iterdir())


def test_tground_dataset_export_writes_it_from_the_command_line(datasets, tmp_path, capsys):
    from training_ground.cli import main

    _, pictured, _, _ = datasets
    assert main(["dataset", "export", str(pictured), "--format", "lerobot", "--out", str(tmp_path / "out")]) == 0
    info = json.loads((tmp_path / "out" / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["total_episodes"] == 3
    assert main(["dataset", "export", str(pictured), "--format", "lerobot", "--out", str(tmp_path / "out")]) == 2
    assert main(["dataset", "export", str(pictured), "--format", "lerobot", "--out", str(tmp_path / "other"),
                 "--dataset-id", "a/b-v0"]) == 2  # a Minari option: one clear error, nothing written
    assert not (tmp_path / "other").exists()
