"""The dataset format: robomimic-layout HDF5, written so that a crash loses no finished episode.

Layout (robomimic's, so robomimic and tools written for it read it)::

    data                    group. attrs: total (state-action samples in all demos), env_args (JSON,
                            below), state_layout (JSON [[block, shape], ...]: the columns of states),
                            policy (what acted), format
    data/demo_K             one group per episode, K = 0, 1, ... in seed order
        obs/<key>           (T, ...) float32 observation before each action; a camera's pictures (obs_mode,
                            envs/observations.py) as <camera>_image (T, H, W, 3) uint8 and <camera>_depth
                            (T, H, W, 1) float32 (m), one gzip-compressed chunk per frame
        next_obs/<key>      (T, ...) the observation after it
        actions             (T, A) float32 in [-1, 1]: exactly what the environment applied
        rewards             (T,) float64
        dones               (T,) int64, 1 on a terminal step only: the episode reached a success or a failure
                            (Gymnasium's ``terminated``), so offline RL does not bootstrap past it; 0 where a
                            time limit or a divergence cut the episode short (robomimic's meaning). Files of
                            format 1 (``env_args.training_ground.format``) mark every end, time-outs included.
        truncated           (T,) int64, 1 on the step a time limit or a divergence ended a non-terminal
                            episode (Gymnasium's ``truncated``); absent from format 1 files
        states              (T, S) float64 full simulator state before each action (BatchedTask.get_state)
        final_state         (S,) float64 state after the last action
        attrs               num_samples, seed, success, robot_id (which simulated robot ran it), diverged,
                            model (JSON: the episode's objects, as robomimic keeps its model file),
                            instruction (what the episode asked, in words: envs/base.py instruction_templates),
                            sha256 (the demo's content hash, below), numeric_platform (numpy, its BLAS
                            kernel and SIMD level where the episode ran: data/platform.py)
    mask/successful, mask/failed   demo names (robomimic filter keys, for ``hdf5_filter_key``)
    filtered_seeds          (n,) int64 seeds whose failed episodes ``--only-success`` left out

``env_args`` is robomimic's environment metadata: ``env_name`` (the Gymnasium id), ``type``
(2, robomimic's GYM_TYPE) and ``env_kwargs`` (backend, action_mode, reward_mode, config: what
``gymnasium.make(env_name, **env_kwargs)`` takes), plus ``training_ground`` (project version, format).

Integrity: HDF5's Fletcher-32 checksums catch most damage inside a chunk but not all (it cannot tell
a 16-bit word 0x0000 from 0xFFFF), and attributes have none. So every demo also carries ``sha256``,
a SHA-256 over its arrays (name, dtype, shape, bytes, in name order) and the attributes above
(:func:`content_hash`). Every tool that reads or copies demos checks it: ``dataset info`` and
``merge``, a resumed ``collect`` (a damaged demo is removed and its episode collected again), the
journal merge, ``replay`` and ``bc``. Files written before the hash existed have none and are
checked by checksums and value domains only.

Crash safety: see :class:`DatasetWriter`.
"""

from __future__ import annotations

import dataclasses
import fcntl
import errno
import hashlib
import io
import json
import os
import re
import shutil
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from .. import __version__, robots
from ..envs.config import config_to_dict, make_config, with_stored_defaults
from ..envs.registry import task_spec
from ..physics.engine import StateLayout
from .platform import numeric_platform
from ..errors import InputError, UserError

#: 2: ``dones`` only on terminal steps, ``truncated`` beside it (1: ``dones`` on every end).
FORMAT = "training_ground.dataset/2"
GYM_TYPE = 2  # robomimic's EnvType.GYM_TYPE
REQUIRED_DEMO_KEYS = ("obs", "next_obs", "actions", "rewards", "dones", "states")
REQUIRED_DEMO_ATTRS = ("num_samples", "seed", "success", "robot_id")
# Shuffle + gzip: the state columns are mostly slowly varying doubles and zeros (idle contact springs).
# Fletcher-32 checksums on every dataset make damage inside the data an error on reading, not silent.
_CHECKED = {"fletcher32": True}
_COMPRESSED = {"compression": "gzip", "compression_opts": 4, "shuffle": True, **_CHECKED}


class DatasetError(UserError, RuntimeError):
    """A dataset file that cannot be read, written or resumed, with the reason in words."""


class StorageError(DatasetError):
    """Writing failed for a reason of the storage (disk full, read-only, I/O error); ``errno`` says which.
    The message says what is safe where and what to do."""

    def __init__(self, message: str, error_number: int | None = None):
        super().__init__(message)
        self.errno = error_number


def storage_errno(error: BaseException) -> int | None:
    """The errno of a failed write: an OSError's own, or the one HDF5 puts in its message
    ('... errno = 28, error message = 'No space left on device' ...'); None for other errors."""
    if isinstance(error, OSError) and error.errno is not None:
        return error.errno
    found = re.search(r"errno = (\d+)", str(error))
    return int(found.group(1)) if found else None


def out_of_space(error_number: int | None) -> bool:
    return error_number in (errno.ENOSPC, errno.EDQUOT)


# ---------------------------------------------------------------------------------------------- config
def make_env_args(task_id: str, backend: str, action_mode: str, reward_mode: str, config) -> dict:
    if getattr(config, "robot_revision", 0) is None:  # "the default" is recorded as the number it is now
        config = dataclasses.replace(config, robot_revision=robots.default_revision(config.robot))
    return {
        "env_name": task_id,
        "type": GYM_TYPE,
        "env_kwargs": {"backend": backend, "action_mode": action_mode, "reward_mode": reward_mode,
                       "config": config_to_dict(config)},
        "training_ground": {"version": __version__, "format": FORMAT},
    }


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True)


def _differences(old, new, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new)):
            found += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return found
    return [] if _canonical(old) == _canonical(new) else [f"{prefix[:-1]}: {old!r} in the file, {new!r} now"]


# ---------------------------------------------------------------------------------------------- episodes
@dataclass
class Episode:
    """One finished episode. observations: (T + 1, ...) per key, the one before each action plus the last."""

    seed: int
    robot_id: int
    success: bool
    diverged: bool
    observations: dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray  # terminal steps (Gymnasium's terminated)
    states: np.ndarray
    final_state: np.ndarray
    model: str = "[]"
    # Steps a time limit or divergence ended the episode on; None for files of format 1, which have no such array.
    truncated: np.ndarray | None = None
    # What the episode asked, in words (BatchedTask.instructions); "" for files written before instructions.
    instruction: str = ""
    # Where it ran (data/platform.py): replay is bit for bit on the same numeric platform only.
    platform: str = field(default_factory=numeric_platform)

    @property
    def num_samples(self) -> int:
        return int(len(self.actions))


# The attributes the content hash covers, each with the plain type it is hashed as; the optional ones only where a
# demo has them, so that demos written before them still verify.
HASHED_ATTRS = {"num_samples": int, "seed": int, "success": bool, "robot_id": int, "diverged": bool, "model": str}
OPTIONAL_HASHED_ATTRS = {"instruction": str}


def content_hash(arrays: dict[str, np.ndarray], attrs) -> str:
    """SHA-256 over a demo's arrays (by name: name, dtype, shape, then the bytes) and its HASHED_ATTRS."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name} {array.dtype.str} {array.shape}\n".encode())
        digest.update(array.data)
    for key, kind in HASHED_ATTRS.items():
        digest.update(f"{key}={kind(attrs[key])!r}\n".encode())
    for key, kind in OPTIONAL_HASHED_ATTRS.items():
        if key in attrs:
            digest.update(f"{key}={kind(attrs[key])!r}\n".encode())
    return digest.hexdigest()


def demo_arrays(group: h5py.Group) -> dict[str, np.ndarray]:
    """Every array of a demo group, read whole (each chunk decompressed and its checksum checked)."""
    arrays = {}
    group.visititems(lambda name, item: arrays.__setitem__(name, item[()]) if isinstance(item, h5py.Dataset)
                     else None)
    return arrays


def hash_mismatch(group: h5py.Group, arrays: dict[str, np.ndarray]) -> bool:
    """Whether a demo's content differs from what its stored hash says (False for demos written without one)."""
    stored = group.attrs.get("sha256")
    if stored is None:
        return False
    try:
        return content_hash(arrays, group.attrs) != str(stored)
    except (KeyError, TypeError, ValueError):
        return True  # a hashed attribute missing or of another kind is damage too


def write_demo(group: h5py.Group, episode: Episode) -> None:
    arrays = {}
    for key, value in episode.observations.items():
        arrays[f"obs/{key}"], arrays[f"next_obs/{key}"] = value[:-1], value[1:]
    arrays.update({"actions": np.asarray(episode.actions, dtype=np.float32),
                   "rewards": np.asarray(episode.rewards, dtype=np.float64),
                   "dones": np.asarray(episode.dones, dtype=np.int64),
                   "states": np.asarray(episode.states, dtype=np.float64),
                   "final_state": np.asarray(episode.final_state, dtype=np.float64)})
    if episode.truncated is not None:
        arrays["truncated"] = np.asarray(episode.truncated, dtype=np.int64)
    for name, array in arrays.items():
        # Rewards, the end flags and the final state are small: checksummed but not compressed.
        options = _CHECKED if name in ("rewards", "dones", "truncated", "final_state") else _COMPRESSED
        if array.ndim == 4 and len(array):  # a camera's pictures (T, H, W, C): one chunk a frame, as they are read
            options = {**options, "chunks": (1, *array.shape[1:])}
        group.create_dataset(name, data=array, **options)
    attrs = {"num_samples": episode.num_samples, "seed": int(episode.seed), "success": bool(episode.success),
             "robot_id": int(episode.robot_id), "diverged": bool(episode.diverged), "model": episode.model,
             "instruction": episode.instruction}
    # numeric_platform is outside the content hash: it says where the numbers came from, not what they are, and
    # files written before it existed must still verify.
    group.attrs.update({**attrs, "sha256": content_hash(arrays, attrs), "numeric_platform": episode.platform})


def read_demo(group: h5py.Group) -> Episode:
    """A demo as an Episode, after checking its content hash (a damaged demo raises DatasetError)."""
    arrays = demo_arrays(group)
    if hash_mismatch(group, arrays):
        raise DatasetError(f"{group.file.filename}: {group.name[1:]} (seed {group.attrs.get('seed', '?')}) is "
                           f"damaged: its content does not match its SHA-256; run tground dataset info on it")
    first = {key: arrays[f"obs/{key}"] for key in group["obs"]}
    last = {key: arrays[f"next_obs/{key}"][-1:] for key in group["next_obs"]}
    return Episode(
        seed=int(group.attrs["seed"]), robot_id=int(group.attrs["robot_id"]), success=bool(group.attrs["success"]),
        diverged=bool(group.attrs.get("diverged", False)),
        observations={key: np.concatenate([first[key], last[key]]) for key in first},
        actions=arrays["actions"], rewards=arrays["rewards"], dones=arrays["dones"],
        states=arrays["states"], final_state=arrays["final_state"], model=str(group.attrs.get("model", "[]")),
        platform=str(group.attrs.get("numeric_platform", "")), truncated=arrays.get("truncated"),
        instruction=str(group.attrs.get("instruction", "")),
    )


def demo_names(data: h5py.Group) -> list[str]:
    """Demo groups in robomimic's order (by the number after ``demo_``)."""
    return sorted((name for name in data if name.startswith("demo_")), key=lambda name: int(name[5:]))


# ---------------------------------------------------------------------------------------------- reading
def open_dataset(path) -> h5py.File:
    """Open a Training Ground dataset read-only, or raise DatasetError saying why it is not one."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file")
    if path.is_dir():
        raise DatasetError(f"{path} is a directory, not a dataset file")
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise DatasetError(f"{path} is not a readable HDF5 file ({_reason(error)})") from None
    try:
        dataset_env_args(handle, path)
    except BaseException:
        handle.close()
        raise
    return handle


def _reason(error: BaseException) -> str:
    """The library's own words: 'Unable to open object (bad object header version number)' -> the bracket."""
    text = str(error.args[0]) if error.args else str(error)
    return text.split("(", 1)[-1].rstrip(")") if "(" in text else text


@contextmanager
def reading(path):
    """Turn the library's errors while reading a damaged file into one DatasetError naming the file."""
    try:
        yield
    except DatasetError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError, TypeError, IndexError) as error:
        raise DatasetError(f"{path} is corrupt or incomplete: {_reason(error)}") from None


def dataset_env_args(handle: h5py.File, path) -> dict:
    if "data" not in handle or not isinstance(handle["data"], h5py.Group):
        raise DatasetError(f"{path} is an HDF5 file but not a dataset in the robomimic layout (no 'data' group)")
    raw = handle["data"].attrs.get("env_args")
    try:
        env_args = json.loads(raw)
    except (TypeError, ValueError):
        raise DatasetError(f"{path} has no readable data/env_args; it was not written by tground collect") from None
    if not isinstance(env_args, dict) or "training_ground" not in env_args:
        name = env_args.get("env_name", "?") if isinstance(env_args, dict) else "?"
        raise DatasetError(f"{path} is a robomimic-style dataset of {name!r} but was not written by tground collect")
    kwargs = env_args.get("env_kwargs")
    if isinstance(kwargs, dict) and isinstance(kwargs.get("config"), dict):
        kwargs["config"] = with_stored_defaults(kwargs["config"])
    return env_args


def journal_dir(path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".journal")


def _entry_seed(entry: Path) -> int | None:
    """``seed_12.hdf5`` -> 12 (None for a name that is not a journal entry's)."""
    number = entry.name[5:-5]
    return int(number) if entry.name.startswith("seed_") and number.lstrip("-").isdigit() else None


def journal_seeds(path) -> set[int]:
    """Seeds of the whole episodes waiting in a dataset's journal (merged by the next collect)."""
    folder = journal_dir(path)
    if not folder.is_dir():
        return set()
    return {seed for seed in map(_entry_seed, folder.glob("seed_*.hdf5")) if seed is not None}


def keep_aside(path: Path, label: str) -> Path:
    """A hard link (a copy where links are not allowed) ``PATH.LABEL[.N]`` to the file as it is now."""
    candidates = (path.with_name(f"{path.name}.{label}" + (f".{n}" if n else "")) for n in range(1000))
    target = next(candidate for candidate in candidates if not candidate.exists())
    try:
        os.link(path, target)
    except OSError:
        shutil.copy2(path, target)
    return target


def stored_seeds(path) -> set[int]:
    """Seeds done in a dataset file: its demos and the episodes --only-success left out."""
    with open_dataset(path) as handle, reading(path):
        data = handle["data"]
        seeds = {int(data[name].attrs["seed"]) for name in demo_names(data)}
        if "filtered_seeds" in handle:
            seeds |= {int(s) for s in handle["filtered_seeds"][()]}
    return seeds


@dataclass
class DatasetInfo:
    """What ``tground dataset info`` prints."""

    path: str
    env_args: dict
    policy: str
    episodes: int
    successes: int
    filtered: int
    lengths: list[int]
    seeds: list[int]
    action_min: list[float]
    action_max: list[float]
    total_samples: int
    pending: int = 0
    size_bytes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def success_rate(self) -> float:
        return self.successes / self.episodes if self.episodes else 0.0

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "success_rate": self.success_rate}

    def format(self) -> str:
        kwargs = self.env_args.get("env_kwargs", {})
        version = self.env_args.get("training_ground", {}).get("version", "?")
        lengths = np.asarray(self.lengths) if self.lengths else np.zeros(1)
        lines = [
            ("dataset", f"{self.path} ({self.size_bytes / 2**20:.1f} MiB)"),
            ("task", f"{self.env_args.get('env_name')} [{kwargs.get('backend')}, {kwargs.get('action_mode')}, "
                     f"{kwargs.get('reward_mode')}], training-ground {version}"),
            ("policy", self.policy),
            ("episodes", f"{self.episodes}: {self.successes} succeeded ({self.success_rate:.1%}), "
                         f"{self.episodes - self.successes} failed" + (
                             f"; {self.filtered} failed ones left out (--only-success)" if self.filtered else "")),
            ("samples", f"{self.total_samples:,} (episode length min {lengths.min():.0f} / mean {lengths.mean():.1f}"
                        f" / max {lengths.max():.0f} steps)"),
            ("seeds", _seed_ranges(self.seeds)),
        ]
        if self.action_min:
            lines.append(("actions", f"{len(self.action_min)} dims, range [{min(self.action_min):.3f}, "
                                     f"{max(self.action_max):.3f}]"))
        if self.pending:
            lines.append(("journal", f"{self.pending} finished episodes not yet merged; rerun the same "
                                     f"collect command to merge them"))
        for problem in self.problems:
            lines.append(("PROBLEM", problem))
        width = max(len(name) for name, _ in lines)
        return "\n".join(f"{name:<{width}}  {text}" for name, text in lines)


def contiguous_runs(seeds: list[int]) -> list[tuple[int, int]]:
    """Sorted seeds -> their maximal runs of consecutive values, ``(first, last)`` each."""
    runs = []
    for seed in seeds:
        if runs and seed == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], seed)
        else:
            runs.append((seed, seed))
    return runs


def _seed_ranges(seeds: list[int]) -> str:
    if not seeds:
        return "none"
    runs = contiguous_runs(seeds)
    text = ", ".join(f"{a}..{b}" if a != b else f"{a}" for a, b in runs[:8]) + (" ..." if len(runs) > 8 else "")
    return f"{len(seeds)} seeds: {text}" + (" (no gaps)" if len(runs) == 1 else f" ({len(runs) - 1} gaps)")


def inspect_dataset(path) -> DatasetInfo:
    """Read and check every demo; a corrupt or foreign file raises DatasetError, layout problems are listed."""
    path = Path(path)
    with open_dataset(path) as handle, reading(path):
        env_args = dataset_env_args(handle, path)
        data = handle["data"]
        problems, names, lengths, seeds, successes, unreadable = [], [], [], [], 0, 0
        low, high = None, None
        width = _layout_width(data, problems)
        for name in demo_names(data):
            demo = data[name]
            found, arrays = check_demo(name, demo, width)
            problems += found
            if arrays is None:
                unreadable += 1
                continue
            actions = arrays["actions"]
            steps = int(demo.attrs["num_samples"])
            lengths.append(steps)
            names.append(name)
            seeds.append(int(demo.attrs["seed"]))
            successes += bool(demo.attrs["success"])
            if actions.size:
                low = actions.min(axis=0) if low is None else np.minimum(low, actions.min(axis=0))
                high = actions.max(axis=0) if high is None else np.maximum(high, actions.max(axis=0))
        total = int(data.attrs.get("total", -1))
        if total != sum(lengths) and not unreadable:
            problems.append(f"data.attrs['total'] is {total}, but the demos hold {sum(lengths)} samples")
        first_with: dict[int, str] = {}
        for name, seed in zip(names, seeds):
            if seed in first_with:
                problems.append(f"{first_with[seed]} and {name} hold the same seed {seed}")
            first_with.setdefault(seed, name)
        filtered = len(handle["filtered_seeds"]) if "filtered_seeds" in handle else 0
        return DatasetInfo(
            path=str(path), env_args=env_args, policy=str(data.attrs.get("policy", "?")), episodes=len(lengths),
            successes=successes, filtered=filtered, lengths=lengths, seeds=sorted(seeds),
            action_min=[] if low is None else low.tolist(), action_max=[] if high is None else high.tolist(),
            total_samples=sum(lengths), pending=len(journal_seeds(path)), size_bytes=path.stat().st_size,
            problems=problems)


def check_demo(name: str, demo: h5py.Group, width: int | None) -> tuple[list[str], dict[str, np.ndarray] | None]:
    """Everything wrong with one demo: missing keys, a chunk that fails its checksum, a content hash that does
    not match, row counts, values out of their domain. Returns the problems and the demo's arrays (None when
    the demo lacks what the rest of a check needs, or cannot be read)."""
    missing = [key for key in REQUIRED_DEMO_KEYS if key not in demo]
    missing += [f"attribute {attr}" for attr in REQUIRED_DEMO_ATTRS if attr not in demo.attrs]
    if missing:
        return [f"{name} lacks {', '.join(missing)}"], None
    seed = demo.attrs["seed"]
    try:
        arrays = demo_arrays(demo)
        steps = int(demo.attrs["num_samples"])
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as error:
        return [f"{name} (seed {seed}) cannot be read ({_reason(error)})"], None
    problems = []
    if hash_mismatch(demo, arrays):
        problems.append(f"{name} (seed {seed}): its content does not match its SHA-256 (changed after writing)")
    rows = {key: len(value) for key, value in arrays.items() if key != "final_state"}
    wrong = sorted(key for key, count in rows.items() if count != steps)
    if wrong:
        problems.append(f"{name}: {', '.join(wrong)} do not have num_samples = {steps} rows")
    actions = arrays["actions"]
    if actions.size and (actions.min() < -1.0 or actions.max() > 1.0):
        problems.append(f"{name}: actions outside [-1, 1]")
    return problems + _value_problems(name, arrays, width), arrays


def _layout_width(data: h5py.Group, problems: list[str]) -> int | None:
    """The state width that ``data.attrs['state_layout']`` gives; a garbage layout is a problem (None)."""
    try:
        return StateLayout.from_json(json.loads(data.attrs["state_layout"])).size
    except (KeyError, TypeError, ValueError) as error:
        problems.append(f"data.attrs['state_layout'] is not a readable state layout ({_reason(error)})")
        return None


def _value_problems(name: str, values: dict[str, np.ndarray], width: int | None) -> list[str]:
    """Values that their checksums cannot vouch for: end flags other than 0 and 1 or set before the last step, a
    step both terminal and truncated, non-finite rewards or states, states of another width than the layout's."""
    found = []
    flags = {key: np.asarray(values[key]) for key in ("dones", "truncated") if key in values}  # format 1: no truncated
    for key, flag in flags.items():
        if not np.isin(flag, (0, 1)).all():
            found.append(f"{name}: {key} holds values other than 0 and 1")
        elif flag[:-1].any():
            found.append(f"{name}: {key} is set before the episode's last step")
    if "truncated" in flags and flags["truncated"].shape == flags["dones"].shape and (
            flags["truncated"] * flags["dones"]).any():
        found.append(f"{name}: a step is both terminal (dones) and truncated")
    for key in ("rewards", "states", "final_state"):
        if not np.isfinite(values[key]).all():
            found.append(f"{name}: {key} holds NaN or inf")
    if width is not None and (values["states"].shape[-1:] != (width,) or values["final_state"].shape != (width,)):
        found.append(f"{name}: states are {values['states'].shape[-1]} wide, the state layout {width}")
    return found


def _stored_config(task, config: dict) -> dict:
    """A stored config with the fields it predates at their defaults (today's drive law, say), as a replay reads it."""
    try:
        return config_to_dict(make_config(task_spec(task).config_class, config))
    except UserError:
        return config  # compared as stored, so the difference is reported


def check_resumable(path, env_args: dict, policy: str) -> None:
    """An existing output file may only be extended by the same task, engine, config and policy."""
    with open_dataset(path) as handle, reading(path):
        existing = dataset_env_args(handle, path)
        stored_policy = str(handle["data"].attrs.get("policy", ""))
    old = {"task": existing.get("env_name"), **existing.get("env_kwargs", {})}
    if isinstance(old.get("config"), dict):
        old["config"] = _stored_config(old["task"], old["config"])
    new = {"task": env_args["env_name"], **env_args["env_kwargs"]}
    changes = _differences(old, new)
    if changes:
        shown = "; ".join(changes[:4]) + ("; ..." if len(changes) > 4 else "")
        raise DatasetError(f"{path} already holds episodes collected differently ({shown}). Rerun with the "
                           f"same arguments to resume it, or write to another --out; it was left untouched.")
    if stored_policy != policy:
        raise DatasetError(f"{path} was collected with policy {stored_policy!r}, not {policy!r}; "
                           f"write to another --out (it was left untouched)")
    stored_format = existing.get("training_ground", {}).get("format")
    if stored_format != FORMAT:  # format 1 marks time-outs in dones: one file must not mean two things by it
        raise DatasetError(f"{path} is in format {stored_format!r}, which records episode ends differently from "
                           f"{FORMAT!r} (README, Episode ends); write to another --out (it was left untouched)")


# ---------------------------------------------------------------------------------------------- writing
def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomically(path: Path, fill, source: Path | None = None, extra_bytes: int = 0) -> None:
    """Replace ``path`` whole: a copy of ``source`` (or a new file) beside it is filled by ``fill(handle)``,
    fsynced and renamed over it, so a kill at any moment leaves the old file or the new one, never a broken one.
    ``extra_bytes``: about how much ``fill`` adds. A failure of the storage raises StorageError; the old file
    stays as it was."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    temporary = path.with_name(path.name + ".commit.tmp")
    # Room for the copy and what fill adds is checked first: HDF5 running out of space mid-write
    # reports it in ways that are hard to clean up after (and the old file is safe either way).
    needed = int(1.1 * ((source.stat().st_size if source is not None else 0) + extra_bytes)) + 2**16
    if shutil.disk_usage(folder).free < needed:
        raise StorageError(f"no space left on the device of {folder}: writing {path} needs about "
                           f"{needed / 2**20:.1f} MiB", errno.ENOSPC)
    try:
        if source is not None:
            shutil.copyfile(source, temporary)
        with h5py.File(temporary, "a" if source is not None else "w") as handle:
            fill(handle)
        _fsync(temporary)
        os.replace(temporary, path)
        _fsync(folder)
    except (OSError, RuntimeError) as error:
        temporary.unlink(missing_ok=True)
        number = storage_errno(error)
        if number is None and not isinstance(error, OSError):
            raise  # not the storage's fault: a bug, keep its traceback
        reason = os.strerror(number) if number is not None else str(error)
        raise StorageError(f"cannot write {path}: {reason}", number) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_index(handle: h5py.File, filtered: set[int]) -> None:
    """The file-level index over ``data/demo_*``: sample total, robomimic's success masks, the filtered seeds."""
    data = handle["data"]
    names = demo_names(data)
    data.attrs["total"] = int(sum(int(data[name].attrs["num_samples"]) for name in names))
    success = [bool(data[name].attrs["success"]) for name in names]
    for key, wanted in (("successful", True), ("failed", False)):
        if f"mask/{key}" in handle:
            del handle[f"mask/{key}"]
        handle.create_dataset(f"mask/{key}", data=np.array(
            [name for name, ok in zip(names, success) if ok == wanted], dtype="S"))
    if "filtered_seeds" in handle:
        del handle["filtered_seeds"]
    handle.create_dataset("filtered_seeds", data=np.array(sorted(filtered), dtype=np.int64))


def check_output_location(path) -> None:
    """The output's folder must exist and be writable: say so before any work is done."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.exists() and path.is_dir():
        raise DatasetError(f"cannot write {path}: it is a directory")
    if not folder.is_dir():
        raise DatasetError(f"cannot write {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DatasetError(f"cannot write {path}: folder {folder} is not writable")
    if path.exists() and not os.access(path, os.R_OK):
        raise DatasetError(f"cannot read {path} to resume it: permission denied")


class DatasetWriter:
    """Adds episodes to a dataset file so that killing the process at any moment loses only episodes in flight.

    HDF5 cannot give that in place: a process killed while the library rewrites a file's
    metadata can leave the whole file unreadable, and SWMR mode, which avoids that, cannot
    create the new groups every episode needs. So the dataset file is only ever replaced
    whole (a new copy written beside it, fsynced, renamed over it) and is always a complete
    HDF5 file. Each finished episode is first written and fsynced on its own into the
    journal, a folder beside the file (``FILE.journal/seed_<seed>.hdf5``, each made as a
    temporary file and renamed). Every ``commit_every`` seconds and on close, the journal
    is merged into a fresh copy of the dataset that replaces the old one, demos renumbered
    in seed order, and the merged entries are deleted. After a kill the next writer merges
    what the journal holds first; an entry that reached the file before the kill is known
    by its seed and dropped, so no seed is ever stored twice. A lock in the journal keeps
    two writers off one file.
    """

    def __init__(self, path, env_args: dict, state_layout: list | None, policy: str, commit_every: float = 30.0):
        self.path = Path(path)
        self.journal = journal_dir(self.path)
        self.env_args = env_args
        self.policy = policy
        self.commit_every = float(commit_every)
        self._lock = None
        check_output_location(self.path)
        if self.path.exists():
            check_resumable(self.path, env_args, policy)
            with open_dataset(self.path) as handle, reading(self.path):
                stored = json.loads(handle["data"].attrs.get("state_layout", "null"))
            if state_layout is not None and stored != state_layout:
                raise DatasetError(f"{self.path} stores states in another layout than this engine's (the engine "
                                   f"changed since it was written); write to another --out")
            state_layout = stored
        elif state_layout is None:
            raise ValueError("a new dataset needs the state layout")
        self.state_layout = state_layout
        try:
            self.journal.mkdir(exist_ok=True)
            # "a+", not "w": a second writer must not wipe the holder's name before finding the lock taken.
            self._lock = open(self.journal / "lock", "a+")
        except OSError as error:
            raise DatasetError(f"cannot write beside {self.path}: {error.strerror} ({self.journal})") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.seek(0)
            holder = self._lock.read().strip() or "unknown"
            self._lock.close()
            self._lock = None
            raise DatasetError(f"another process is writing {self.path} ({holder} holds {self.journal / 'lock'}); "
                               f"wait for it or choose another --out") from None
        # Who writes: a distributed run's shards are written by worker processes on other machines.
        self._lock.truncate(0)
        self._lock.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        self._lock.flush()
        # What the reader should know: damaged demos removed, journal entries set aside (their episodes are
        # collected again because their seeds are no longer done).
        self.notices: list[str] = []
        self.done_seeds: set[int] = set()
        self._state_width = StateLayout.from_json(state_layout).size
        try:
            for stale in self.journal.glob("*.tmp"):
                stale.unlink()
            if self.path.exists():
                self._remove_damaged_demos()
            else:
                self._replace_file(None, [])
            self._last_commit = time.monotonic()
            self.commit()
            self.done_seeds = stored_seeds(self.path)
        except BaseException:
            self._release()
            raise

    def _remove_damaged_demos(self) -> None:
        """Check every demo of the file being resumed (checksums, content hash, values); a damaged one is
        removed, so that its episode is collected again, and the file as it was is kept beside it."""
        with open_dataset(self.path) as handle, reading(self.path):
            data = handle["data"]
            damaged = {}
            for name in demo_names(data):
                problems, _ = check_demo(name, data[name], self._state_width)
                if problems:
                    damaged[name] = problems[0]
        if not damaged:
            return
        kept = keep_aside(self.path, "damaged")
        write_atomically(self.path, lambda handle: self._merge(handle, [], drop=list(damaged)), self.path)
        for problem in damaged.values():
            self.notices.append(f"{self.path}: {problem}; removed, its episode is collected again "
                                f"(the file as it was is kept as {kept})")

    # ------------------------------------------------------------------ journal
    def _write_entry(self, seed: int, fill) -> None:
        final = self.journal / f"seed_{int(seed)}.hdf5"
        temporary = final.with_name(final.name + ".tmp")
        # The entry is built in memory and written with plain file I/O: a full disk is then one OSError
        # here, not HDF5 failing inside its own writes (which printed tracebacks and crashed the process).
        image = io.BytesIO()
        with h5py.File(image, "w") as handle:
            handle.attrs["env_args"] = _canonical(self.env_args)
            fill(handle)
        try:
            with open(temporary, "wb") as stream:
                stream.write(image.getbuffer())
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, final)
            _fsync(self.journal)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            raise self._storage_failure(f"journal entry {final}", error.errno) from None
        self.done_seeds.add(int(seed))
        if time.monotonic() - self._last_commit >= self.commit_every:
            self.commit()

    def add(self, episode: Episode) -> None:
        """Write one finished episode durably (into the journal; the file gets it at the next commit)."""
        self._write_entry(episode.seed, lambda handle: write_demo(handle.create_group("demo"), episode))

    def add_filtered(self, seed: int) -> None:
        """Record that ``seed``'s episode ran and was left out (failed under --only-success)."""
        self._write_entry(seed, lambda handle: handle.attrs.__setitem__("filtered_seed", int(seed)))

    # ------------------------------------------------------------------ committing
    def _storage_failure(self, what: str, error_number: int | None) -> StorageError:
        """The error for a write that the storage refused, saying what is safe where and what to do."""
        try:
            safe = len(stored_seeds(self.path)) if self.path.exists() else 0
        except DatasetError:
            safe = 0
        pending = len(journal_seeds(self.path))
        where = f"{safe} episodes are safe in {self.path}" + (
            f" and {pending} more in {self.journal} (merged into it by the next run)" if pending else "")
        if out_of_space(error_number):
            return StorageError(f"no space left on the device of {self.journal.parent} while writing {what}: "
                                f"{where}; free space and rerun the same command to go on", error_number)
        reason = os.strerror(error_number) if error_number is not None else "an I/O error"
        return StorageError(f"cannot write {what} ({reason}): {where}; fix that and rerun the same command",
                            error_number)

    def commit(self) -> int:
        """Merge the journal into the dataset file (atomically); returns how many entries were merged."""
        entries = sorted(self.journal.glob("seed_*.hdf5"))
        self._last_commit = time.monotonic()
        if not entries:
            return 0
        try:
            self._replace_file(self.path, entries)
        except StorageError as error:
            raise self._storage_failure(f"the merged copy of {self.path}", error.errno) from None
        for entry in entries:
            entry.unlink(missing_ok=True)
        _fsync(self.journal)
        return len(entries)

    def _replace_file(self, source: Path | None, entries: list[Path]) -> None:
        def fill(handle: h5py.File) -> None:
            if source is None:
                data = handle.create_group("data")
                data.attrs.update({"total": 0, "env_args": json.dumps(self.env_args),
                                   "state_layout": json.dumps(self.state_layout), "policy": self.policy,
                                   "format": FORMAT})
            self._merge(handle, entries)

        write_atomically(self.path, fill, source, extra_bytes=sum(entry.stat().st_size for entry in entries))

    def _merge(self, handle: h5py.File, entries: list[Path], drop: list[str] = ()) -> None:
        data = handle["data"]
        for name in drop:
            del data[name]
        seeds = {int(data[name].attrs["seed"]) for name in demo_names(data)}
        filtered = set(handle["filtered_seeds"][()].tolist()) if "filtered_seeds" in handle else set()
        for entry in entries:
            problem = None
            try:
                with h5py.File(entry, "r") as source:
                    if source.attrs.get("env_args") != _canonical(self.env_args):
                        raise DatasetError(f"journal entry {entry} belongs to another collection; move "
                                           f"{self.journal} away or write to another --out")
                    if "filtered_seed" in source.attrs:
                        filtered.add(int(source.attrs["filtered_seed"]))
                        continue
                    problems, _ = check_demo("demo", source["demo"], self._state_width)
                    seed = int(source["demo"].attrs["seed"])
                    if problems:
                        problem = problems[0]
                    elif seed not in seeds:
                        source.copy(source["demo"], data, name=f"incoming_{seed}")
                        seeds.add(seed)
            except (OSError, KeyError, ValueError) as error:
                problem = f"it cannot be read ({_reason(error)})"
            if problem is not None:
                # Entries are renamed into place only once complete, so this is damage from outside;
                # the episode is simply collected again.
                aside = entry.with_name(entry.name + ".unreadable")
                entry.rename(aside)
                self.done_seeds.discard(_entry_seed(entry))
                self.notices.append(f"journal entry {entry.name} is damaged ({problem}); set aside as {aside.name}, "
                                    f"its episode is collected again")
        # Demo numbers follow the seeds, so a resumed file equals one written in a single run.
        names = sorted((name for name in data if name.startswith(("demo_", "incoming_"))),
                       key=lambda name: int(data[name].attrs["seed"]))
        moving = [(name, f"demo_{index}") for index, name in enumerate(names) if name != f"demo_{index}"]
        for name, _ in moving:
            data.move(name, f"renumbering_{name}")
        for name, target in moving:
            data.move(f"renumbering_{name}", target)
        write_index(handle, filtered)

    def close(self) -> None:
        """Commit what the journal holds and release the file."""
        if self._lock is None:
            return
        try:
            self.commit()  # a failure leaves the entries in the journal, for the next run to merge
        finally:
            self._release()

    def _release(self) -> None:
        """Give up the lock; the journal folder goes too once empty."""
        (self.journal / "lock").unlink(missing_ok=True)
        self._lock.close()
        self._lock = None
        try:
            self.journal.rmdir()
        except OSError:
            pass  # entries not yet merged, or that could not be read, stay

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------------------------- merging
def finish_journal(path) -> None:
    """Merge what a killed writer left in ``path``'s journal into the file (a live writer's file is refused)."""
    path = Path(path)
    if not journal_dir(path).is_dir() or not path.exists():
        return
    with open_dataset(path) as handle, reading(path):
        env_args = dataset_env_args(handle, path)
        policy = str(handle["data"].attrs.get("policy", ""))
    DatasetWriter(path, env_args, None, policy).close()


@dataclass
class _Header:
    path: Path
    env_args: dict
    raw_env_args: str
    state_layout: str
    policy: str
    demos: dict[int, str]  # seed -> demo name
    filtered: set[int]


def _read_header(path: Path) -> _Header:
    """What merging needs of an input that :func:`inspect_dataset` passed (so each seed is in one demo)."""
    with open_dataset(path) as handle, reading(path):
        data = handle["data"]
        return _Header(path=path, env_args=dataset_env_args(handle, path), raw_env_args=str(data.attrs["env_args"]),
                       state_layout=str(data.attrs.get("state_layout", "null")),
                       policy=str(data.attrs.get("policy", "")),
                       demos={int(data[name].attrs["seed"]): name for name in demo_names(data)},
                       filtered={int(seed) for seed in handle["filtered_seeds"][()]}
                       if "filtered_seeds" in handle else set())


@dataclass
class MergeResult:
    """What ``merge_datasets`` wrote."""

    path: str
    inputs: list[str]
    episodes: int  # demos in the merged file
    filtered: int  # seeds whose failed episodes --only-success left out
    left_out: int  # seeds in the inputs outside the requested set

    def summary(self) -> str:
        text = (f"merged {len(self.inputs)} files into {self.path}: {self.episodes} episodes"
                + (f", {self.filtered} failed seeds left out by --only-success" if self.filtered else ""))
        return text + (f"; {self.left_out} episodes outside the requested seeds were not copied" if self.left_out
                       else "")


def merge_datasets(inputs, out, seeds=None) -> MergeResult:
    """One robomimic-layout file from datasets of one collection (the shards of a distributed run).

    Every input must come from the same task, engine, config, state layout, policy and project
    version. A seed found in two inputs is an error: shards of one run never share one, so a
    duplicate means files of different runs. With ``seeds`` the output holds exactly those
    (demos and --only-success filtered seeds together): a missing seed is an error that names
    it, and seeds outside the set are not copied. Demos are numbered in seed order, so the
    result equals a file written by one ``tground collect`` of the same seeds. ``out`` may be
    one of the inputs: it is replaced atomically, never half written. An input whose writer
    was killed has its journal merged first; one still being written is refused.
    """
    paths = [Path(path) for path in inputs]
    out = Path(out)
    if not paths:
        raise DatasetError("nothing to merge: name one or more dataset files")
    resolved = [path.resolve() for path in paths]
    repeated = sorted({str(path) for path, key in zip(paths, resolved) if resolved.count(key) > 1})
    if repeated:
        raise DatasetError(f"{', '.join(repeated)} given more than once")
    check_output_location(out)
    if out.exists() and out.resolve() not in resolved:
        raise DatasetError(f"{out} already exists and is not one of the inputs; name it as an input to add to it, "
                           f"or choose another --out (it was left untouched)")
    for path in paths:
        finish_journal(path)
        # Every chunk read (checksums) and every value checked before anything is copied: damage is named, never merged.
        problems = inspect_dataset(path).problems
        if problems:
            raise DatasetError(f"{path} is damaged ({'; '.join(problems[:3])}); nothing was written")
    headers = [_read_header(path) for path in paths]
    first = headers[0]
    for header in headers[1:]:
        changes = _differences(first.env_args, header.env_args)
        if header.policy != first.policy:
            changes.append(f"policy: {first.policy!r} in {first.path}, {header.policy!r} here")
        if header.state_layout != first.state_layout:
            changes.append("the state layout differs (another engine version)")
        if changes:
            shown = "; ".join(changes[:4]) + ("; ..." if len(changes) > 4 else "")
            raise DatasetError(f"{header.path} is not from the same collection as {first.path} ({shown}); "
                               f"nothing was written")

    owner: dict[int, Path] = {}
    duplicates: dict[tuple[Path, Path], list[int]] = {}
    for header in headers:
        for seed in [*header.demos, *header.filtered]:
            if seed in owner:
                duplicates.setdefault((owner[seed], header.path), []).append(seed)
            else:
                owner[seed] = header.path
    if duplicates:
        (a, b), found = next(iter(duplicates.items()))
        raise DatasetError(f"{a} and {b} both hold {_seed_ranges(sorted(found))}; shards of one run never share a "
                           f"seed, so these are files of different runs. Nothing was written.")
    selected = set(owner) if seeds is None else {int(seed) for seed in seeds}
    missing = sorted(selected - set(owner))
    if missing:
        raise DatasetError(f"the inputs lack {len(missing)} of the {len(selected)} requested episodes "
                           f"({_seed_ranges(missing)}); nothing was written")

    filtered = {seed for header in headers for seed in header.filtered if seed in selected}
    order = sorted(((seed, header) for header in headers for seed in header.demos if seed in selected),
                   key=lambda item: item[0])

    def fill(handle: h5py.File) -> None:
        data = handle.create_group("data")
        data.attrs.update({"total": 0, "env_args": first.raw_env_args, "state_layout": first.state_layout,
                           "policy": first.policy, "format": FORMAT})
        sources = {}
        try:
            for index, (seed, header) in enumerate(order):
                if header.path not in sources:
                    sources[header.path] = h5py.File(header.path, "r")
                # A raw object copy: chunks, filters and checksums move over without being decoded.
                sources[header.path].copy(sources[header.path]["data"][header.demos[seed]], data,
                                          name=f"demo_{index}")
        finally:
            for source in sources.values():
                source.close()
        write_index(handle, filtered)

    write_atomically(out, fill, extra_bytes=sum(path.stat().st_size for path in paths))
    return MergeResult(path=str(out), inputs=[str(path) for path in paths], episodes=len(order),
                       filtered=len(filtered), left_out=len(set(owner) - selected))


# ---------------------------------------------------------------------------------------------- command


def add_arguments(parser) -> None:
    """``tground dataset``: inspect and merge datasets written by tground collect."""
    dataset_sub = parser.add_subparsers(dest="dataset_command", metavar="COMMAND", required=True)
    info = dataset_sub.add_parser("info", help="counts, success rate, lengths, action range of a dataset",
                                  description="Counts, success rate, episode lengths, seeds and action range; "
                                              "checks every demo's keys and sizes.")
    info.add_argument("dataset", help="an HDF5 file written by tground collect")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(dataset_handler=info_main)
    merge = dataset_sub.add_parser(
        "merge", help="merge datasets of one collection (the shards of a --ray run) into one file",
        description="Merge datasets of one collection (same task, engine, config and policy; the shards of "
                    "tground collect --ray) into one robomimic-layout file, demos in seed order. A seed in two "
                    "inputs is an error. With --seed/--episodes the output must hold exactly those seeds.")
    merge.add_argument("shards", nargs="+", metavar="SHARD", help="HDF5 files written by tground collect")
    merge.add_argument("--out", required=True, help="the merged file (may be one of the inputs: replaced atomically)")
    merge.add_argument("--seed", type=int, default=None, help="with --episodes: require exactly seeds SEED..SEED+N-1")
    merge.add_argument("--episodes", type=int, default=None, help="with --seed: how many seeds")
    merge.set_defaults(dataset_handler=merge_main)
    export = dataset_sub.add_parser(
        "export", help="write a dataset in LeRobot's (v3.0) or Minari's format",
        description="Write a dataset as a LeRobotDataset v3.0 folder (parquet frames, MP4 video per camera, meta/ "
                    "with fps, features and their names, tasks: data/export_lerobot.py) or as a Minari dataset "
                    "(main_data.hdf5 and metadata.json, real termination and truncation flags: "
                    "data/export_minari.py). Every demo is read through its content hash; nothing is written "
                    "unless the whole export succeeds. LeRobot's format needs the export extra (pyarrow, imageio's ffmpeg).")
    export.add_argument("dataset", help="an HDF5 file written by tground collect")
    export.add_argument("--format", required=True, choices=("lerobot", "minari"), help="the format to write")
    export.add_argument("--out", required=True,
                        help="lerobot: the dataset's folder (must not exist, or be empty); minari: the datasets root "
                             "(MINARI_DATASETS_PATH, e.g. ~/.minari/datasets), which may hold others: the dataset "
                             "goes to OUT/DATASET_ID/")
    export.add_argument("--dataset-id", default=None,
                        help="minari: the dataset's id (default: tground/TASK/POLICY-v0)")
    export.set_defaults(dataset_handler=export_main)


def main(args) -> int:
    return args.dataset_handler(args)


def info_main(args) -> int:
    info = inspect_dataset(args.dataset)
    print(json.dumps(info.to_json(), indent=2) if args.json else info.format())
    return 1 if info.problems else 0


def merge_main(args) -> int:
    if (args.seed is None) != (args.episodes is None):
        raise InputError("--seed and --episodes go together (the seeds SEED..SEED+EPISODES-1)")
    seeds = None if args.seed is None else range(args.seed, args.seed + args.episodes)
    print(merge_datasets(args.shards, args.out, seeds).summary())
    return 0


def export_main(args) -> int:
    if args.format == "lerobot":
        from .export_lerobot import export_lerobot

        if args.dataset_id is not None:
            raise InputError("--dataset-id names a Minari dataset; a LeRobot export is named by its --out folder")
        summary = export_lerobot(args.dataset, args.out)
    else:
        from .export_minari import export_minari

        summary = export_minari(args.dataset, args.out, dataset_id=args.dataset_id)
    print(f"wrote {args.out} ({args.format}): " + ", ".join(
        f"{key} {value}" for key, value in summary.items() if isinstance(value, (int, float, str))))
    for note in summary.get("skipped", []):  # what the format cannot hold (depth video), and what was named for it
        print(f"  note: {note}")
    return 0
