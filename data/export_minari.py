"""Export a dataset written by ``tground collect`` as a Minari dataset (Farama's offline-RL format), without minari.

Minari (0.5.4, its HDF5 storage) keeps a dataset ``(namespace/)name-vN`` in a folder of that path under its root
(``MINARI_DATASETS_PATH``, default ``~/.minari/datasets``)::

    <root>/<dataset_id>/data/metadata.json     dataset_id, env_spec (Gymnasium's EnvSpec JSON), observation_space
                                               and action_space (Minari's space JSON), total_episodes, total_steps,
                                               data_format "hdf5", jpeg_encoding, minari_version, algorithm_name,
                                               description, requirements, dataset_size (MB), ...
    <root>/<dataset_id>/data/main_data.hdf5    one group per episode:
        episode_{i}                 attrs: id, total_steps, seed (and ours: success, diverged, instruction,
                                    robot_id, demo: the source demo's name)
        episode_{i}/observations    a group per observation key, (T + 1, ...): before each action and the last
        episode_{i}/actions         (T, A) float32
        episode_{i}/rewards         (T,) float64
        episode_{i}/terminations    (T,) bool: our ``dones`` (Gymnasium's terminated)
        episode_{i}/truncations     (T,) bool: our ``truncated``
        episode_{i}/infos           (T + 1,) per key, as Minari's DataCollector records infos (the reset's, then
                                    each step's): ``is_success``, ``diverged`` and ``instruction``, the keys of the
                                    env's info that a demo determines (success and divergence both end an
                                    episode, so they can only be set on its last step: row T is the demo's
                                    ``success`` and ``diverged``, every other row False)

Episodes are the demos in robomimic's order (``demo_0``, ``demo_1``, ...: seed order), ``episode_i`` being the
i-th. Pictures stay raw uint8 (``jpeg_encoding: false``: lossless; Minari 0.5.4 JPEG-encodes pictures of 32 x 32
or more unless told not to), so ``minari_version`` is 0.5.4, the first Minari that reads such a file as it is
(0.5.3 decodes every uint8 picture of 32 x 32 or more as JPEG). Arrays are gzip-compressed, which every HDF5
reader undoes transparently, and resizable (``maxshape``) as Minari makes them, so Minari can append to them.

Files of format 1 (before ``truncated`` existed) are refused: their ``dones`` mark time-outs too, and a failure on
the last allowed step cannot be told from a time-out there, so Minari's terminations and truncations cannot be
written truthfully; collect such a dataset again.

Bad input raises one DatasetError or InputError (a bad id, a file not ours, no demos, an existing output: before
anything is written); the dataset is written into a hidden temporary folder beside its place and renamed into place
at the end, so a failure later on (a damaged demo, the disk) leaves nothing behind either, not even the folders it
made for the namespace.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import gymnasium
import h5py
import numpy as np

from .. import __version__
from ..envs.registry import task_spec
from ..errors import InputError, UnknownNameError
from ..progress import progress_bar
from .staging import staged_folder
from .dataset import (FORMAT, DatasetError, dataset_env_args, demo_names, open_dataset, read_demo,
                      reading)

#: The Minari version whose on-disk format this writes (metadata ``minari_version``); readers of 0.5.4 and later.
MINARI_VERSION = "0.5.4"
MAIN_FILE = "main_data.hdf5"
METADATA_FILE = "metadata.json"
NAMESPACE_METADATA_FILE = "namespace_metadata.json"

# Minari's dataset id: (namespace/)name-vN (minari/dataset/minari_dataset.py DATASET_ID_RE; the version is required:
# its parse_dataset_id fails without one).
_DATASET_ID = re.compile(r"^(?:(?P<namespace>[-_\w][-_\w/]*[-_\w]+)/)?(?P<name>[-_\w]+?)-v(?P<version>\d+)$")
_OBSERVATION_OPTIONS = {"compression": "gzip", "compression_opts": 4, "shuffle": True}


# ---------------------------------------------------------------------------------------------- spaces
def serialize_space(space: gymnasium.Space) -> dict:
    """A space as Minari's ``serialize_space(space, to_string=False)`` writes it (Box and Dict: what our envs use)."""
    if isinstance(space, gymnasium.spaces.Box):
        return {"type": "Box", "dtype": str(space.dtype), "shape": list(space.shape), "low": space.low.tolist(),
                "high": space.high.tolist()}
    if isinstance(space, gymnasium.spaces.Dict):
        return {"type": "Dict", "subspaces": {key: serialize_space(value) for key, value in space.spaces.items()}}
    raise DatasetError(f"cannot export a {type(space).__name__} space to Minari (Box and Dict only)")


# ---------------------------------------------------------------------------------------------- ids
def check_dataset_id(dataset_id: str) -> Path:
    """The relative folder of a valid Minari dataset id, or InputError saying what one looks like."""
    match = _DATASET_ID.fullmatch(dataset_id) if isinstance(dataset_id, str) else None
    if match is None or (match["namespace"] and "" in match["namespace"].split("/")):
        raise InputError(f"invalid Minari dataset id {dataset_id!r}: it must look like (namespace/)name-vN with "
                         f"letters, digits, '-' and '_', e.g. 'tground/bread/expert-v0'")
    return Path(*dataset_id.split("/"))


def default_dataset_id(env_args: dict, policy: str) -> str:
    """``tground/<task alias>/<policy>-v0``: e.g. tground/bread/expert-v0."""
    try:
        task = task_spec(env_args["env_name"]).alias
    except (KeyError, UnknownNameError):
        task = re.sub(r"[^-\w]+", "_", str(env_args.get("env_name", "task")).split("/")[-1]).strip("_") or "task"
    name = re.sub(r"[^-\w]+", "_", policy).strip("_") or "data"
    return f"tground/{task}/{name}-v0"


# ---------------------------------------------------------------------------------------------- writing
def _create(group: h5py.Group, name: str, data: np.ndarray, compressed: bool = False, **options) -> None:
    """A dataset as Minari makes one (chunked, resizable along the first axis so that Minari can append)."""
    if compressed:
        options = {**_OBSERVATION_OPTIONS, **options}
    if data.ndim == 4 and len(data):  # pictures (T + 1, H, W, C): one chunk a frame
        options.setdefault("chunks", (1, *data.shape[1:]))
    group.create_dataset(name, data=data, chunks=options.pop("chunks", True), maxshape=(None, *data.shape[1:]),
                         **options)


def _check_episode(name: str, episode, observation_space: gymnasium.spaces.Dict, action_space) -> None:
    steps = episode.num_samples
    problems = []
    if set(episode.observations) != set(observation_space.spaces):
        problems.append(f"observation keys {sorted(episode.observations)}, the environment's "
                        f"{sorted(observation_space.spaces)}")
    for key, space in observation_space.spaces.items():
        value = episode.observations.get(key)
        if value is not None and (value.shape != (steps + 1, *space.shape) or value.dtype != space.dtype):
            problems.append(f"observation {key!r} {value.dtype} {value.shape}, the space's {space.dtype} "
                            f"{(steps + 1, *space.shape)}")
    if episode.actions.shape != (steps, *action_space.shape):
        problems.append(f"actions {episode.actions.shape}, the space's {(steps, *action_space.shape)}")
    for flag, values in (("dones", episode.dones), ("truncated", episode.truncated), ("rewards", episode.rewards)):
        if values is None or values.shape != (steps,):
            problems.append(f"{flag} of shape {None if values is None else values.shape}, not ({steps},)")
        elif flag != "rewards" and not np.isin(values, (0, 1)).all():
            problems.append(f"{flag} not 0/1")
    if problems:
        raise DatasetError(f"{name} (seed {episode.seed}) does not fit its environment: " + "; ".join(problems))


def _write_episode(handle: h5py.File, index: int, name: str, episode) -> None:
    steps = episode.num_samples
    group = handle.create_group(f"episode_{index}")
    group.attrs.update({"id": index, "total_steps": steps, "seed": int(episode.seed),
                        "success": bool(episode.success), "diverged": bool(episode.diverged),
                        "instruction": episode.instruction, "robot_id": int(episode.robot_id), "demo": name})
    observations = group.create_group("observations")
    for key, value in episode.observations.items():
        _create(observations, key, np.ascontiguousarray(value), compressed=True)
    _create(group, "actions", np.asarray(episode.actions, dtype=np.float32), compressed=True)
    _create(group, "rewards", np.asarray(episode.rewards, dtype=np.float64))
    _create(group, "terminations", np.asarray(episode.dones, dtype=bool))
    _create(group, "truncations", np.asarray(episode.truncated, dtype=bool))
    infos = group.create_group("infos")
    last = np.zeros(steps + 1, dtype=bool)
    last[-1] = True
    _create(infos, "is_success", last & bool(episode.success))
    _create(infos, "diverged", last & bool(episode.diverged))
    _create(infos, "instruction", np.array([episode.instruction] * (steps + 1), dtype=object),
            dtype=h5py.string_dtype(encoding="utf-8"))


def _inside_a_dataset(out_dir: Path, relative: Path) -> Path | None:
    """The existing Minari dataset folder above the new one, if any (Minari would not see a dataset inside one)."""
    folder = out_dir
    for part in relative.parts[:-1]:
        folder = folder / part
        if (folder / "data").is_dir():
            return folder
    return None


def export_minari(path, out_dir, *, dataset_id: str | None = None, progress: bool = True, author: str | None = None,
                  author_email: str | None = None, code_permalink: str | None = None,
                  description: str | None = None) -> dict:
    """Write the dataset at ``path`` as Minari dataset ``dataset_id`` under the Minari root ``out_dir``.

    ``dataset_id`` defaults to ``tground/<task>/<policy>-v0``; ``minari.load_dataset(dataset_id)`` with
    ``MINARI_DATASETS_PATH=out_dir`` reads it. Returns a summary: dataset_id, path, episodes, steps, successes,
    observation_keys, size_mb. Bad input raises DatasetError/InputError and writes nothing."""
    path, out_dir = Path(path), Path(out_dir)
    if dataset_id is not None:
        check_dataset_id(dataset_id)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir} is not a folder (the Minari datasets root to write into)")
    with open_dataset(path) as handle:
        with reading(path):
            env_args = dataset_env_args(handle, path)
            data = handle["data"]
            names = demo_names(data)
            policy = str(data.attrs.get("policy", "unknown"))
        stored_format = env_args.get("training_ground", {}).get("format")
        if stored_format != FORMAT:
            raise DatasetError(
                f"{path} is in format {stored_format!r}, not {FORMAT!r}: its dones mark time-outs as well as "
                f"terminal steps, and a failure on the last allowed step cannot be told from a time-out, so "
                f"Minari's terminations and truncations cannot be written from it; collect it again with this "
                f"version (README, Episode ends)")
        if not names:
            raise DatasetError(f"{path} has no demos: there is nothing to export")
        dataset_id = dataset_id or default_dataset_id(env_args, policy)
        relative = check_dataset_id(dataset_id)
        final = out_dir / relative
        if final.exists():
            raise DatasetError(f"{final} exists: Minari dataset {dataset_id!r} is there already; delete it or "
                               f"choose another dataset id (another version, -v1, ...)")
        enclosing = _inside_a_dataset(out_dir, relative)
        if enclosing is not None:
            raise DatasetError(f"cannot write {dataset_id!r}: {enclosing} is a Minari dataset itself, and Minari "
                               f"does not look for datasets inside one; choose another namespace")
        env_spec, observation_space, action_space = _environment(path, env_args)
        if not isinstance(observation_space, gymnasium.spaces.Dict):
            raise DatasetError(f"{path}: the environment's observation space is a {type(observation_space).__name__},"
                               f" not the Dict its demos' observations are")
        metadata_spaces = {"observation_space": json.dumps(serialize_space(observation_space)),
                           "action_space": json.dumps(serialize_space(action_space))}

        with staged_folder(final, "Minari dataset") as temporary:
            (temporary / "data").mkdir()
            steps = successes = 0
            with h5py.File(temporary / "data" / MAIN_FILE, "w", track_order=True) as out, \
                    progress_bar(total=len(names), desc="export minari", enabled=progress, unit="episode") as bar:
                for index, name in enumerate(names):
                    with reading(path):  # a damaged demo: DatasetError (a write's OSError is the storage's)
                        episode = read_demo(data[name])
                    if episode.truncated is None:
                        raise DatasetError(f"{path}: {name} has no truncated flags (a format 1 demo in a format 2 "
                                           f"file); it is damaged")
                    _check_episode(f"{path}: {name}", episode, observation_space, action_space)
                    _write_episode(out, index, name, episode)
                    steps += episode.num_samples
                    successes += bool(episode.success)
                    bar.update(1)
            metadata = {
                "total_episodes": len(names), "total_steps": steps, "data_format": "hdf5", "jpeg_encoding": False,
                **metadata_spaces, "env_spec": env_spec, "dataset_id": dataset_id,
                **({"code_permalink": code_permalink} if code_permalink else {}),
                **({"author": [author]} if author else {}),
                **({"author_email": [author_email]} if author_email else {}),
                "algorithm_name": policy,
                "description": description or (
                    f"{len(names)} episodes ({successes} successful, {steps} steps) of {env_args['env_name']}, "
                    f"collected by tground collect with policy {policy!r} and exported from {path.name} by "
                    f"training_ground.data.export_minari."),
                "minari_version": MINARI_VERSION,
                "requirements": [f"training-ground=={__version__}"],
                "training_ground": {"version": __version__, "source": path.name, "source_format": FORMAT,
                                    "policy": policy},
            }
            size = (temporary / "data" / MAIN_FILE).stat().st_size + len(json.dumps(metadata)) + 32
            metadata["dataset_size"] = round(size / 1e6, 1)
            with open(temporary / "data" / METADATA_FILE, "w") as file:
                json.dump(metadata, file)
                file.flush()
                os.fsync(file.fileno())
    _write_namespace_metadata(out_dir, relative)
    return {"dataset_id": dataset_id, "path": str(final), "episodes": len(names), "steps": steps,
            "successes": successes, "observation_keys": list(observation_space.spaces),
            "size_mb": metadata["dataset_size"]}


def _environment(path: Path, env_args: dict) -> tuple[str, gymnasium.Space, gymnasium.Space]:
    """The dataset's environment: its EnvSpec JSON, observation space and action space (the package's import,
    which this module's is part of, registered the Gymnasium ids)."""
    try:
        env = gymnasium.make(env_args["env_name"], **env_args.get("env_kwargs", {}))
    except (KeyError, TypeError, ValueError, gymnasium.error.Error) as error:
        raise DatasetError(f"{path}: cannot make its environment {env_args.get('env_name')!r} "
                           f"({type(error).__name__}: {error})") from None
    try:
        try:
            spec = env.spec.to_json()
        except (AttributeError, TypeError, ValueError) as error:
            raise DatasetError(f"{path}: the environment's spec is not JSON ({error}); Minari could not "
                               f"recover the environment") from None
        return spec, env.observation_space, env.action_space
    finally:
        env.close()


def _write_namespace_metadata(out_dir: Path, relative: Path) -> None:
    """Minari's namespace files ({} where none is), as its create_dataset_from_buffers leaves them."""
    folder = out_dir
    for part in relative.parts[:-1]:
        folder = folder / part
        target = folder / NAMESPACE_METADATA_FILE
        if not target.exists():
            try:
                target.write_text("{}")
            except OSError:
                return  # optional: Minari reads a dataset without them
