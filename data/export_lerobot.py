"""Export a dataset written by ``tground collect`` as a LeRobotDataset (format v3.0), without lerobot.

What LeRobot 0.4.4 (``LeRobotDataset(repo_id, root=OUT)``) reads from the folder written::

    meta/info.json          codebase_version "v3.0", robot_type (the robot's name), total_episodes, total_frames,
                            total_tasks, chunks_size, data_files_size_in_mb, video_files_size_in_mb, fps, splits
                            {"train": "0:N"}, data_path, video_path (null without cameras), features (below), and
                            ``training_ground`` (where the data came from; LeRobot ignores it)
    meta/stats.json         per feature: min, max, mean, std, count, q01, q10, q50, q90, q99
    meta/tasks.parquet      the distinct instructions, each with its task_index (pandas' layout: the task is the
                            frame's index, as LeRobot's ``meta.tasks`` expects)
    meta/episodes/chunk-CCC/file-FFF.parquet
                            one row per episode: episode_index, tasks, length, data/chunk_index, data/file_index,
                            dataset_from_index, dataset_to_index, videos/<key>/{chunk_index, file_index,
                            from_timestamp, to_timestamp} per camera, stats/<feature>/<stat> (the episode's own
                            statistics), meta/episodes/{chunk_index, file_index}, and training_ground/seed,
                            training_ground/success (the demo's seed and outcome)
    data/chunk-CCC/file-FFF.parquet
                            the frames of the episodes, in order: observation.state, action, next.reward,
                            next.done, next.truncated, timestamp, frame_index, episode_index, index, task_index
    videos/observation.images.<camera>/chunk-CCC/file-FFF.mp4
                            a camera's pictures, the episodes one after another (an episode's frames from its
                            from_timestamp to its to_timestamp); H.264, yuv420p (yuv444p for a picture of odd
                            width or height, which 4:2:0 cannot hold), a key frame every 2 frames as LeRobot's
                            recorder writes them, at the dataset's fps

Frames. LeRobot pairs an observation with the action taken from it, so frame t of an episode of T steps (t < T)
holds the observation before action t (the demo's ``obs[t]``), ``action`` = actions[t], ``next.reward`` =
rewards[t], ``next.done`` = dones[t] (Gymnasium's terminated: a success or a failure ended the episode on this
step), ``next.truncated`` = truncated[t] (a time limit or a divergence ended it); the final observation, which
no action follows, is not written. fps = round(1 / control_dt) (50 by default); timestamp = frame_index / fps.
Files of format 1 (before ``truncated`` existed) mark every end in ``dones``: their ``next.done`` is that, and
``next.truncated`` is not written (the summary says so).

observation.state (float32) is the demo's non-picture observation keys in sorted key order (the order HDF5 lists
them, e.g. for the bread task basket_to_hands, bread_pos, bread_quat, bread_to_hands, grasped, hand_pos,
hand_quat, joint_pos, joint_vel), each flattened in C order, with a name per dimension ``<key>.<part>``:

- a key of one value per joint (``joint_pos``, ``joint_vel``): the robot's joint names (``joint_pos.left_hip_yaw``);
- ``hand_*`` and ``*_to_hands`` keys of 3 values per hand: ``hand_pos.left.x``, ... in the robot's hand order;
  ``*_quat`` keys of 4 per hand ``hand_quat.left.qx`` ... ``qw`` (x, y, z, w: pybullet's order); ``grasped``, one
  per hand: ``grasped.left``; ``feet_*`` keys of 3 per foot: ``feet_pos.left_foot.x``;
- other keys of 3 values ending in ``_pos``, ``_vel``, ``_size`` or holding ``_to_``: ``.x .y .z``; of 4 ending in
  ``_quat``: ``.qx .qy .qz .qw``;
- anything else by index: ``base_velocity.0`` ... ``base_velocity.5``.

``action`` (float32) is the demo's actions as applied, with names: for action_mode ``ee_delta`` per hand in the
robot's hand order ``<hand>.dx dy dz drx dry drz grasp``; for ``joint_pos`` (and ``joint_delta``) the joint names.

Pictures: a camera's ``<camera>_image`` becomes video feature ``observation.images.<camera>`` (shape [H, W, 3],
names [height, width, channels], and the ``info`` LeRobot's recorder writes: codec, pix_fmt, fps, ...); a camera
slower than the control rate (camera_fps) holds its last picture between shots, in the video as in the dataset.
Depth pictures (``<camera>_depth``) are not exported: LeRobot 0.4.4 stores video of 8-bit colour only (its
``video.is_depth_map`` is always false), and squeezing metres into it would lose them; the summary names them.
The ``instruction`` observation (the instruction as bytes) is not a state either: it is the frame's task.

Statistics, as LeRobot 0.4.4 keeps them: each episode's own (stats/... columns of the episodes table), over all
its frames: min, max, mean, std (population), count (frames) and the quantiles q01 ... q99; pictures per colour
channel in [0, 1], shape (3, 1, 1). A quantile q is the inverted empirical CDF's, the smallest value that at least
q x count of the frames do not exceed (numpy's ``method="inverted_cdf"``): what LeRobot's 5000-bin histogram
estimate tends to, computed exactly. meta/stats.json aggregates the episodes' the way LeRobot does: min of the
minima, max of the maxima, the frame-weighted mean, the pooled std (these four exact for the whole dataset) and
the frame-weighted mean of the episodes' quantiles. Every feature has them, the index columns too.

File sizes: LeRobot's limits (data_files_size_in_mb 100, video_files_size_in_mb 200, chunks_size 1000 files a
chunk folder): a data or episodes file holds episodes until the next would bring it to its limit (counted in
Arrow's in-memory bytes, about the data's uncompressed size); a video file until the next episode's encoded bytes would
bring it to its limit (each episode is encoded on its own, then the file's episodes are joined without
re-encoding, as LeRobot does). The first episode of a file always goes in, however large.

Bad input (not a dataset of ours, no demos, a damaged demo, demos that disagree on their keys, an output folder
that exists and is not empty) raises one DatasetError or InputError; the export is written into a hidden
temporary folder beside the output and renamed into place at the end, so a failure leaves nothing behind.
Needs pyarrow, imageio and imageio-ffmpeg (the export extra); lerobot itself is not imported.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__, robots
from ..errors import InputError, SetupError, UserError
from ..progress import progress_bar
from .staging import staged_folder
from .dataset import (DatasetError, dataset_env_args, demo_names, open_dataset, read_demo, reading)

#: The LeRobotDataset format written (info.json codebase_version), as LeRobot 0.4.4 reads it.
CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # files per chunk folder (LeRobot's DEFAULT_CHUNK_SIZE)
DATA_FILES_SIZE_IN_MB = 100  # LeRobot's DEFAULT_DATA_FILE_SIZE_IN_MB
VIDEO_FILES_SIZE_IN_MB = 200  # LeRobot's DEFAULT_VIDEO_FILE_SIZE_IN_MB
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}  # LeRobot's DEFAULT_QUANTILES
#: H.264 quality (x264's constant rate factor: 0 lossless, 23 its default, 51 worst) and key frame interval.
VIDEO_CRF = 18
VIDEO_GOP = 2

DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
TASKS_PATH = "meta/tasks.parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"

#: The columns every LeRobot dataset has (LeRobot's DEFAULT_FEATURES).
INDEX_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
EE_DELTA_PARTS = ("dx", "dy", "dz", "drx", "dry", "drz", "grasp")
XYZ = ("x", "y", "z")
QUAT = ("qx", "qy", "qz", "qw")  # pybullet's order (physics/model.py)


# ---------------------------------------------------------------------------------------------- names
def _part_names(key: str, width: int, robot) -> list[str]:
    """Names of the ``width`` values of observation ``key`` (see the module docstring)."""
    joints = list(robot.joint_names) if robot is not None else []
    hands = list(robot.hands) if robot is not None else []
    feet = list(robot.feet) if robot is not None else []
    if joints and key.startswith("joint_") and width == len(joints):
        return [f"{key}.{joint}" for joint in joints]
    per_hand = key.startswith("hand_") or key.endswith("_to_hands")
    for group, owners in ((per_hand, hands), (key.startswith("feet_"), feet)):
        if group and owners:
            parts = QUAT if key.endswith("_quat") else XYZ
            if width == len(parts) * len(owners):
                return [f"{key}.{owner}.{part}" for owner in owners for part in parts]
    if key == "grasped" and hands and width == len(hands):
        return [f"{key}.{hand}" for hand in hands]
    if width == 3 and (key.endswith(("_pos", "_vel", "_size")) or "_to_" in key):
        return [f"{key}.{part}" for part in XYZ]
    if width == 4 and key.endswith("_quat"):
        return [f"{key}.{part}" for part in QUAT]
    return [f"{key}.{i}" for i in range(width)]


def _action_names(action_mode: str, width: int, robot) -> list[str]:
    if robot is not None:
        hands = list(robot.hands)
        if action_mode == "ee_delta" and width == len(EE_DELTA_PARTS) * len(hands):
            return [f"{hand}.{part}" for hand in hands for part in EE_DELTA_PARTS]
        if action_mode in ("joint_pos", "joint_delta") and width == len(robot.joint_names):
            return list(robot.joint_names)
    return [f"action.{i}" for i in range(width)]


# ---------------------------------------------------------------------------------------------- statistics
def _vector_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """An episode's statistics of a (T, D) feature, each (D,) (count (1,)), as LeRobot's compute_episode_stats."""
    values = np.asarray(values, dtype=np.float64)
    stats = {"min": values.min(axis=0), "max": values.max(axis=0), "mean": values.mean(axis=0),
             "std": values.std(axis=0), "count": np.array([len(values)], dtype=np.int64)}
    ordered = np.sort(values, axis=0)
    ranks = np.arange(1, len(values) + 1)
    for key, q in QUANTILES.items():  # the first value at least q * count values do not exceed
        stats[key] = ordered[min(int(np.searchsorted(ranks, q * len(values))), len(values) - 1)]
    return stats


def _quantile_from_counts(counts: np.ndarray, q: float) -> int:
    """The inverted-CDF quantile (see :func:`_vector_stats`) of the integers 0 .. len(counts)-1, each present
    ``counts`` times."""
    cumulative = np.cumsum(counts)
    target = q * cumulative[-1]
    if target <= 0:
        return int(np.flatnonzero(counts)[0])
    return min(int(np.searchsorted(cumulative, target)), len(counts) - 1)


def _image_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """An episode's per-channel statistics of (T, H, W, 3) uint8 pictures in [0, 1], each (3, 1, 1), as LeRobot's."""
    levels = np.arange(256, dtype=np.float64)
    per_channel = {key: [] for key in ("min", "max", "mean", "std", *QUANTILES)}
    for channel in range(frames.shape[-1]):
        counts = np.bincount(frames[..., channel].ravel(), minlength=256).astype(np.float64)
        total = counts.sum()
        present = np.flatnonzero(counts)
        mean = (counts * levels).sum() / total
        per_channel["min"].append(present[0])
        per_channel["max"].append(present[-1])
        per_channel["mean"].append(mean)
        per_channel["std"].append(math.sqrt(max(0.0, (counts * levels ** 2).sum() / total - mean ** 2)))
        for key, q in QUANTILES.items():
            per_channel[key].append(_quantile_from_counts(counts, q))
    stats = {key: np.asarray(values, dtype=np.float64).reshape(-1, 1, 1) / 255.0
             for key, values in per_channel.items()}
    stats["count"] = np.array([len(frames)], dtype=np.int64)
    return stats


def aggregate_stats(episodes: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The dataset's statistics of one feature from its episodes', as LeRobot 0.4.4's aggregate_feature_stats:
    exact min, max, mean and (pooled) std, and the frame-weighted mean of the episodes' quantiles."""
    counts = np.array([float(stats["count"][0]) for stats in episodes])
    total = counts.sum()
    weights = counts.reshape(-1, *([1] * np.ndim(episodes[0]["mean"])))
    means = np.stack([stats["mean"] for stats in episodes])
    mean = (means * weights).sum(axis=0) / total
    variances = np.stack([stats["std"] ** 2 for stats in episodes])
    variance = ((variances + (means - mean) ** 2) * weights).sum(axis=0) / total
    result = {"min": np.min([stats["min"] for stats in episodes], axis=0),
              "max": np.max([stats["max"] for stats in episodes], axis=0),
              "mean": mean, "std": np.sqrt(variance), "count": np.array([int(total)], dtype=np.int64)}
    for key in QUANTILES:
        result[key] = (np.stack([stats[key] for stats in episodes]) * weights).sum(axis=0) / total
    return result


def _listed(stats: dict[str, np.ndarray]) -> dict[str, list]:
    return {key: np.asarray(value).tolist() for key, value in stats.items()}


# ---------------------------------------------------------------------------------------------- files
@dataclass
class _FileSeries:
    """Which file of ``chunk-CCC/file-FFF`` the next episode goes into, LeRobot's way: a new file once the current
    one's bytes plus the episode's would reach the limit (the first episode of a file always goes in)."""

    limit_bytes: float
    chunks_size: int
    chunk_index: int = 0
    file_index: int = 0
    size: int = 0
    episodes: int = 0

    def place(self, nbytes: int) -> bool:
        """Account an episode of ``nbytes``; True when it starts a new file (the indices then name it)."""
        new = self.episodes > 0 and self.size + nbytes >= self.limit_bytes
        if new:
            self.file_index += 1
            if self.file_index == self.chunks_size:
                self.chunk_index, self.file_index = self.chunk_index + 1, 0
            self.size = self.episodes = 0
        self.size += nbytes
        self.episodes += 1
        return new


def _ffmpeg_error(process: subprocess.CompletedProcess, what: str) -> RuntimeError:
    return RuntimeError(f"ffmpeg failed {what} (exit {process.returncode}): "
                        f"{process.stderr.decode(errors='replace').strip()[-2000:]}")


def encode_video(frames: np.ndarray, path: Path, fps: int, crf: int = VIDEO_CRF) -> str:
    """Write (T, H, W, 3) uint8 ``frames`` as an H.264 MP4 at ``fps`` with imageio's ffmpeg; the pixel format used
    (yuv420p, or yuv444p where the width or height is odd)."""
    import imageio.v2 as imageio

    height, width = frames.shape[1:3]
    pixel_format = "yuv420p" if height % 2 == 0 and width % 2 == 0 else "yuv444p"
    writer = imageio.get_writer(
        str(path), format="FFMPEG", mode="I", fps=fps, codec="libx264", pixelformat=pixel_format, quality=None,
        macro_block_size=1, ffmpeg_log_level="error", output_params=["-crf", str(crf), "-g", str(VIDEO_GOP)])
    try:
        for frame in frames:
            writer.append_data(np.ascontiguousarray(frame))
    finally:
        writer.close()
    return pixel_format


def join_videos(segments: list[Path], out: Path) -> None:
    """Join MP4 files of one codec and size into ``out`` without re-encoding (ffmpeg's concat demuxer)."""
    if len(segments) == 1:
        os.replace(segments[0], out)
        return
    import imageio_ffmpeg

    listing = out.with_name(out.name + ".ffconcat")
    quoted = (str(segment.resolve()).replace("'", "'\\''") for segment in segments)  # ffconcat's quoting
    listing.write_text("ffconcat version 1.0\n" + "".join(f"file '{name}'\n" for name in quoted))
    process = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-f", "concat", "-safe", "0",
                              "-i", str(listing), "-c", "copy", "-movflags", "+faststart", str(out)],
                             stdin=subprocess.DEVNULL, capture_output=True, check=False)
    listing.unlink()
    if process.returncode != 0:
        raise _ffmpeg_error(process, f"joining {len(segments)} episodes into {out.name}")
    for segment in segments:
        segment.unlink()


@dataclass
class _VideoSeries:
    """One camera's video files: each episode encoded on its own, a file's episodes joined when it is full."""

    key: str
    root: Path
    fps: int
    crf: int
    files: _FileSeries
    segments: list[Path] = field(default_factory=list)
    frames: int = 0  # frames in the current file
    pixel_format: str = "yuv420p"
    written: int = 0  # files written

    def add(self, episode_index: int, pictures: np.ndarray) -> dict:
        """Encode an episode's pictures; its episodes-table columns."""
        folder = self.root / ".episodes" / self.key
        folder.mkdir(parents=True, exist_ok=True)
        segment = folder / f"episode-{episode_index:06d}.mp4"
        self.pixel_format = encode_video(pictures, segment, self.fps, self.crf)
        if self.files.place(segment.stat().st_size):
            self.close_file(previous=True)
        start = self.frames / self.fps
        self.segments.append(segment)
        self.frames += len(pictures)
        prefix = f"videos/{self.key}/"
        return {prefix + "chunk_index": self.files.chunk_index, prefix + "file_index": self.files.file_index,
                prefix + "from_timestamp": start, prefix + "to_timestamp": self.frames / self.fps}

    def close_file(self, previous: bool = False) -> None:
        """Write the current file (``previous``: the one before the indices just moved on)."""
        if not self.segments:
            return
        chunk, index = self.files.chunk_index, self.files.file_index
        if previous:  # the indices name the new file already: step back to the full one
            chunk, index = (chunk, index - 1) if index > 0 else (chunk - 1, self.files.chunks_size - 1)
        out = self.root / VIDEO_PATH.format(video_key=self.key, chunk_index=chunk, file_index=index)
        out.parent.mkdir(parents=True, exist_ok=True)
        join_videos(self.segments, out)
        self.segments, self.frames = [], 0
        self.written += 1


def _tasks_table(pa, tasks: list[str]):
    """meta/tasks.parquet as pandas writes LeRobot's ``DataFrame({"task_index": ...}, index=tasks)``."""
    pandas_metadata = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
                            "metadata": {"encoding": "UTF-8"}}],
        "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
                     "metadata": None},
                    {"name": None, "field_name": "__index_level_0__", "pandas_type": "unicode",
                     "numpy_type": "object", "metadata": None}],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0",
    }
    schema = pa.schema([("task_index", pa.int64()), ("__index_level_0__", pa.string())],
                       metadata={b"pandas": json.dumps(pandas_metadata).encode()})
    return pa.table({"task_index": list(range(len(tasks))), "__index_level_0__": tasks}, schema=schema)


def _fixed_list(pa, values: np.ndarray):
    values = np.ascontiguousarray(values, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


# ---------------------------------------------------------------------------------------------- the layout
@dataclass
class _Layout:
    """What every demo of the dataset must share: its state keys and widths, action width and cameras."""

    state_keys: list[tuple[str, int]]
    action_width: int
    cameras: dict[str, tuple[int, int]]  # camera -> (height, width)
    depth_keys: list[str]
    other_keys: list[str]  # neither state nor pictures (the instruction bytes)

    @classmethod
    def of(cls, observations: dict[str, np.ndarray], actions: np.ndarray) -> _Layout:
        state, cameras, depth, other = [], {}, [], []
        for key in sorted(observations):
            value = observations[key]
            if key.endswith("_image") and value.ndim == 4 and value.shape[-1] == 3 and value.dtype == np.uint8:
                cameras[key[:-len("_image")]] = (int(value.shape[1]), int(value.shape[2]))
            elif key.endswith("_depth") and value.ndim == 4:
                depth.append(key)
            elif key == "instruction":
                other.append(key)
            else:
                state.append((key, int(np.prod(value.shape[1:], dtype=np.int64))))
        return cls(state, int(actions.shape[1]), cameras, depth, other)


def _frames_table(pa, episode, layout: _Layout, fps: int, episode_index: int, first_index: int, task_index: int,
                  with_truncated: bool):
    steps = episode.num_samples
    columns = {}
    if layout.state_keys:
        state = np.concatenate([np.asarray(episode.observations[key][:steps], dtype=np.float32).reshape(steps, -1)
                                for key, _ in layout.state_keys], axis=1)
        columns["observation.state"] = state
    columns["action"] = np.asarray(episode.actions, dtype=np.float32)
    columns["next.reward"] = np.asarray(episode.rewards, dtype=np.float32)
    columns["next.done"] = np.asarray(episode.dones).astype(bool)
    if with_truncated:
        columns["next.truncated"] = np.asarray(episode.truncated).astype(bool)
    frame_index = np.arange(steps, dtype=np.int64)
    columns["timestamp"] = (frame_index / fps).astype(np.float32)
    columns["frame_index"] = frame_index
    columns["episode_index"] = np.full(steps, episode_index, dtype=np.int64)
    columns["index"] = first_index + frame_index
    columns["task_index"] = np.full(steps, task_index, dtype=np.int64)
    arrays = {key: _fixed_list(pa, value) if value.ndim == 2 else pa.array(value) for key, value in columns.items()}
    return pa.table(arrays), columns


def _features(layout: _Layout, state_names: list[str], action_names: list[str], fps: int, with_truncated: bool,
              pixel_formats: dict[str, str]) -> dict:
    features = {}
    if layout.state_keys:
        features["observation.state"] = {"dtype": "float32", "shape": [len(state_names)], "names": state_names}
    for camera, (height, width) in layout.cameras.items():
        features[f"observation.images.{camera}"] = {
            "dtype": "video", "shape": [height, width, 3], "names": ["height", "width", "channels"],
            "info": {"video.height": height, "video.width": width, "video.codec": "h264",
                     "video.pix_fmt": pixel_formats.get(camera, "yuv420p"), "video.is_depth_map": False,
                     "video.fps": fps, "video.channels": 3, "has_audio": False}}
    features["action"] = {"dtype": "float32", "shape": [len(action_names)], "names": action_names}
    features["next.reward"] = {"dtype": "float32", "shape": [1], "names": None}
    features["next.done"] = {"dtype": "bool", "shape": [1], "names": None}
    if with_truncated:
        features["next.truncated"] = {"dtype": "bool", "shape": [1], "names": None}
    return {**features, **INDEX_FEATURES}


def _write_json(value, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as file:
        json.dump(value, file, indent=4, ensure_ascii=False)


def _import_tools():
    try:
        import imageio  # noqa: F401
        import imageio_ffmpeg  # noqa: F401
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as error:
        raise SetupError(f"exporting a LeRobot dataset needs pyarrow, imageio and imageio-ffmpeg ({error.name} is "
                         f"not installed): pip install \".[export]\"") from None
    return pa, pq


def _check_output(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir} exists and is not a folder; name a new folder for the LeRobot dataset")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        raise InputError(f"{out_dir} exists and is not empty; name a new (or empty) folder for the LeRobot dataset")


# ---------------------------------------------------------------------------------------------- the export
def export_lerobot(path, out_dir, *, progress: bool = True, crf: int = VIDEO_CRF, chunks_size: int = CHUNKS_SIZE,
                   data_files_size_in_mb: float = DATA_FILES_SIZE_IN_MB,
                   video_files_size_in_mb: float = VIDEO_FILES_SIZE_IN_MB) -> dict:
    """Write the dataset at ``path`` as a LeRobotDataset v3.0 in the folder ``out_dir`` (new, or empty).

    ``LeRobotDataset("local/NAME", root=out_dir)`` reads it (lerobot 0.4.4). ``crf`` is the videos' H.264 quality;
    the sizes are LeRobot's file limits. Returns a summary: out, episodes, frames, fps, robot_type, tasks,
    features (name -> shape), cameras, files (data, episodes, video files written) and skipped (what was not
    exported, and why, in words). Bad input raises DatasetError/InputError and writes nothing."""
    pa, pq = _import_tools()
    path, out_dir = Path(path), Path(out_dir)
    if not 0 <= crf <= 51:
        raise InputError(f"crf={crf}: x264's quality runs from 0 (lossless) to 51")
    for name, value in (("chunks_size", chunks_size), ("data_files_size_in_mb", data_files_size_in_mb),
                        ("video_files_size_in_mb", video_files_size_in_mb)):
        if not value > 0:
            raise InputError(f"{name}={value}: it must be positive")
    _check_output(out_dir)
    with open_dataset(path) as handle:
        with reading(path):
            env_args = dataset_env_args(handle, path)
            data = handle["data"]
            names = demo_names(data)
        if not names:
            raise DatasetError(f"{path} has no demos: there is nothing to export")
        kwargs = env_args.get("env_kwargs") or {}
        config = kwargs.get("config") or {}
        robot_name = str(config.get("robot", "humanoid43"))
        skipped: list[str] = []
        try:
            robot = robots.load(robot_name, revision=config.get("robot_revision"))
            robot_type = robot.name
        except (UserError, OSError, ValueError) as error:
            robot, robot_type = None, Path(robot_name).stem
            skipped.append(f"names: robot {robot_name!r} cannot be loaded here ({error}); its joints and hands are "
                           f"named by index")
        control_dt = float(config.get("control_dt", 0.02))
        fps = round(1.0 / control_dt)
        if fps < 1:
            raise DatasetError(f"{path}: control_dt {control_dt} s is longer than a second; LeRobot needs a whole "
                               f"number of frames a second")
        if not math.isclose(1.0 / control_dt, fps, rel_tol=1e-6):
            skipped.append(f"timing: the control rate {1.0 / control_dt:g} Hz is not a whole number; fps is "
                           f"{fps} and timestamps are frame_index / {fps}, not the control times")
        action_mode = str(kwargs.get("action_mode", ""))
        env_name = str(env_args.get("env_name", path.stem))

        with staged_folder(out_dir, "LeRobot dataset") as temporary:
            summary = _export(pa, pq, path, data, names, temporary, fps=fps, crf=crf, robot=robot,
                              robot_type=robot_type, action_mode=action_mode, env_name=env_name, env_args=env_args,
                              chunks_size=chunks_size, data_mb=data_files_size_in_mb,
                              video_mb=video_files_size_in_mb, skipped=skipped, progress=progress)
    return {"out": str(out_dir), **summary}


def _export(pa, pq, path: Path, data, names: list[str], root: Path, *, fps: int, crf: int, robot, robot_type: str,
            action_mode: str, env_name: str, env_args: dict, chunks_size: int, data_mb: float, video_mb: float,
            skipped: list[str], progress: bool) -> dict:
    data_limit, video_limit = data_mb * 1024 ** 2, video_mb * 1024 ** 2
    layout = None
    tasks: dict[str, int] = {}
    rows: list[dict] = []
    episode_stats: dict[str, list[dict]] = {}
    data_files = _FileSeries(data_limit, chunks_size)
    videos: dict[str, _VideoSeries] = {}
    writer = None
    with_truncated = True
    empty, fallback_task, frames = [], False, 0
    try:
        with progress_bar(total=len(names), desc="export lerobot", enabled=progress, unit="episode") as bar:
            for name in names:
                with reading(path):  # a damaged demo: one DatasetError naming it
                    episode = read_demo(data[name])
                bar.update(1)
                if episode.num_samples == 0:
                    empty.append(name)
                    continue
                if layout is None:
                    layout = _Layout.of(episode.observations, episode.actions)
                    with_truncated = episode.truncated is not None
                    videos = {camera: _VideoSeries(f"observation.images.{camera}", root, fps, crf,
                                                   _FileSeries(video_limit, chunks_size))
                              for camera in layout.cameras}
                else:
                    found = _Layout.of(episode.observations, episode.actions)
                    if found != layout:
                        raise DatasetError(f"{path}: {name} has other observation keys, widths, cameras or action "
                                           f"width than the demos before it; the file is damaged")
                if with_truncated and episode.truncated is None:
                    raise DatasetError(f"{path}: {name} has no truncated flags though the demos before it have; "
                                       f"the file is damaged")
                task = episode.instruction
                if not task:
                    task, fallback_task = env_name, True
                task_index = tasks.setdefault(task, len(tasks))
                episode_index = len(rows)
                table, columns = _frames_table(pa, episode, layout, fps, episode_index, frames, task_index,
                                               with_truncated)
                if data_files.place(table.nbytes) and writer is not None:
                    writer.close()
                    writer = None
                if writer is None:
                    out = root / DATA_PATH.format(chunk_index=data_files.chunk_index,
                                                  file_index=data_files.file_index)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    writer = pq.ParquetWriter(out, table.schema, compression="snappy")
                writer.write_table(table)
                row = {"episode_index": episode_index, "tasks": [task], "length": episode.num_samples,
                       "data/chunk_index": data_files.chunk_index, "data/file_index": data_files.file_index,
                       "dataset_from_index": frames, "dataset_to_index": frames + episode.num_samples}
                stats = {key: _vector_stats(value.reshape(len(value), -1)) for key, value in columns.items()}
                for camera, series in videos.items():
                    pictures = episode.observations[f"{camera}_image"][:episode.num_samples]
                    row.update(series.add(episode_index, pictures))
                    stats[series.key] = _image_stats(pictures)
                for key, value in stats.items():
                    episode_stats.setdefault(key, []).append(value)
                    row.update({f"stats/{key}/{stat}": array.tolist() for stat, array in value.items()})
                row.update({"training_ground/seed": int(episode.seed),
                            "training_ground/success": bool(episode.success)})
                rows.append(row)
                frames += episode.num_samples
        if writer is not None:
            writer.close()
            writer = None
        for series in videos.values():
            series.close_file()
    finally:
        if writer is not None:
            writer.close()
    if not rows:
        raise DatasetError(f"{path}: its demos have no steps: there is nothing to export")
    shutil.rmtree(root / ".episodes", ignore_errors=True)

    episodes_files = _write_episodes(pa, pq, root, rows, chunks_size, data_limit)
    task_list = sorted(tasks, key=tasks.get)
    pq.write_table(_tasks_table(pa, task_list), root / TASKS_PATH)
    state_names = [part for key, width in layout.state_keys for part in _part_names(key, width, robot)]
    action_names = _action_names(action_mode, layout.action_width, robot)
    features = _features(layout, state_names, action_names, fps, with_truncated,
                         {camera: series.pixel_format for camera, series in videos.items()})
    stats = {key: _listed(aggregate_stats(values)) for key, values in episode_stats.items()}
    _write_json({key: stats[key] for key in features if key in stats}, root / STATS_PATH)
    info = {
        "codebase_version": CODEBASE_VERSION, "robot_type": robot_type, "total_episodes": len(rows),
        "total_frames": frames, "total_tasks": len(task_list), "chunks_size": chunks_size,
        "data_files_size_in_mb": data_mb, "video_files_size_in_mb": video_mb,
        "fps": fps, "splits": {"train": f"0:{len(rows)}"}, "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if layout.cameras else None, "features": features,
        "training_ground": {"version": __version__, "source": path.name, "env_name": env_name,
                            "env_kwargs": {key: value for key, value in (env_args.get("env_kwargs") or {}).items()
                                           if key != "config"},
                            "state_keys": [key for key, _ in layout.state_keys]},
    }
    for key in ("data_files_size_in_mb", "video_files_size_in_mb"):  # LeRobot's are whole numbers of MB
        if float(info[key]).is_integer():
            info[key] = int(info[key])
    _write_json(info, root / INFO_PATH)

    for key in layout.depth_keys:
        skipped.append(f"{key}: depth pictures are not exported (LeRobot 0.4.4 stores 8-bit colour video only)")
    for key in layout.other_keys:
        skipped.append(f"{key}: the instruction is each frame's task (meta/tasks.parquet), not part of the state")
    if not with_truncated:
        skipped.append("next.truncated: a format-1 file has no truncated flags; its next.done (dones) marks every "
                       "end, time limits too")
    if fallback_task:
        skipped.append(f"instructions: demos without one (older files) have the task {env_name!r}")
    if empty:
        skipped.append(f"{', '.join(empty)}: no steps (a LeRobot episode needs a frame)")
    return {"episodes": len(rows), "frames": frames, "fps": fps, "robot_type": robot_type, "tasks": task_list,
            "features": {key: list(value["shape"]) for key, value in features.items()},
            "cameras": list(layout.cameras),
            "files": {"data": data_files.chunk_index * chunks_size + data_files.file_index + 1,
                      "episodes": episodes_files,
                      "videos": {series.key: series.written for series in videos.values()}},
            "skipped": skipped}


def _write_episodes(pa, pq, root: Path, rows: list[dict], chunks_size: int, limit: float) -> int:
    """meta/episodes/...: the rows, in files of at most ``limit`` Arrow bytes (each row's estimated from the first)."""
    per_row = pa.Table.from_pylist(rows[:1]).nbytes
    files = _FileSeries(limit, chunks_size)
    groups: list[tuple[int, int, list[dict]]] = []
    for row in rows:
        if files.place(per_row) or not groups:
            groups.append((files.chunk_index, files.file_index, []))
        row["meta/episodes/chunk_index"], row["meta/episodes/file_index"] = files.chunk_index, files.file_index
        groups[-1][2].append(row)
    for chunk_index, file_index, group in groups:
        out = root / EPISODES_PATH.format(chunk_index=chunk_index, file_index=file_index)
        out.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(group), out, compression="snappy")
    return len(groups)
