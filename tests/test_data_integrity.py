"""Data verified on every copy (issue 12, findings 1-3): the per-demo SHA-256 beside HDF5's checksums.

Fletcher-32 sums 16-bit words modulo 65535, so it cannot tell 0x0000 from 0xFFFF: turning one
zero word of a stored array into 0xFFFF passes the checksum. In a float64 zero that gives a
finite denormal, which passes every value check as well. Before the content hash, every tool
took such a demo as it was: ``dataset info`` found nothing, ``merge`` copied it, a resumed
``collect`` reported the file complete and kept it, ``bc`` trained on it.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from training_ground.data.collect import CollectOptions, collect
from training_ground.data.dataset import (DatasetError, DatasetWriter, content_hash, demo_arrays, inspect_dataset,
                                          journal_dir, merge_datasets, read_demo, stored_seeds)

OPTIONS = dict(task="bread", episodes=3, robots=3, overrides=["max_steps=5"], progress=False)


def flip_a_zero_word(path, array: str) -> tuple[int, float]:
    """XOR 0xFFFF into the low 16-bit word of the first 0.0 in ``array`` (an uncompressed float64 dataset),
    straight in the file's bytes: its Fletcher-32 checksum still matches. Returns the index and new value."""
    with h5py.File(path, "r") as handle:
        dataset = handle[array]
        index = int(np.flatnonzero(dataset[()] == 0.0)[0])
        offset = dataset.id.get_chunk_info(0).byte_offset + dataset.dtype.itemsize * index
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    raw[offset + 1] ^= 0xFF
    path.write_bytes(bytes(raw))
    with h5py.File(path, "r") as handle:
        value = float(handle[array][index])  # reads without a checksum error
    return index, value


@pytest.fixture
def dataset(tmp_path):
    path = tmp_path / "run.hdf5"
    collect(CollectOptions(out=str(path), **OPTIONS))
    return path


def test_every_demo_carries_a_hash_of_its_content(dataset):
    with h5py.File(dataset, "r") as handle:
        for name in ("demo_0", "demo_1", "demo_2"):
            group = handle[f"data/{name}"]
            assert group.attrs["sha256"] == content_hash(demo_arrays(group), group.attrs)
            # The hash covers the attributes too: another seed or success flag is another content.
            assert content_hash(demo_arrays(group), {**group.attrs, "success": not group.attrs["success"]}) \
                != group.attrs["sha256"]


def test_a_flip_that_the_checksum_cannot_see_is_named_by_info_and_refused_by_merge_replay_and_bc(dataset, tmp_path):
    from training_ground.data.imitation import load_demonstrations

    mark_all_successful(dataset)  # bc reads only successful demos; five-step episodes fail
    assert len(load_demonstrations(dataset, 0).demos) == 3
    index, value = flip_a_zero_word(dataset, "data/demo_1/final_state")
    assert np.isfinite(value) and value != 0.0
    problems = inspect_dataset(dataset).problems
    assert problems == ["demo_1 (seed 1): its content does not match its SHA-256 (changed after writing)"]
    with pytest.raises(DatasetError, match=r"demo_1 \(seed 1\).*SHA-256.*nothing was written"):
        merge_datasets([dataset], tmp_path / "merged.hdf5")
    assert not (tmp_path / "merged.hdf5").exists()
    with h5py.File(dataset, "r") as handle, pytest.raises(DatasetError, match=r"demo_1 \(seed 1\) is damaged"):
        read_demo(handle["data/demo_1"])
    with pytest.raises(DatasetError, match=r"demo_1 \(seed 1\).*SHA-256.*nothing was trained"):
        load_demonstrations(dataset, 0)


def mark_all_successful(path) -> None:
    """Set every demo's success flag, with its hash rewritten to match (as a writer would have stored it)."""
    with h5py.File(path, "a") as handle:
        for name in handle["data"]:
            group = handle[f"data/{name}"]
            group.attrs["success"] = True
            group.attrs["sha256"] = content_hash(demo_arrays(group), group.attrs)


def test_a_resume_over_a_damaged_demo_collects_it_again_and_says_so(dataset):
    with h5py.File(dataset, "r") as handle:
        original = demo_arrays(handle["data/demo_1"])
    flip_a_zero_word(dataset, "data/demo_1/final_state")
    result = collect(CollectOptions(out=str(dataset), **OPTIONS))
    assert "nothing to do" not in result.message
    assert len(result.notices) == 1 and "demo_1 (seed 1)" in result.notices[0]
    assert "collected again" in result.notices[0] and "run.hdf5.damaged" in result.notices[0]
    assert inspect_dataset(dataset).problems == [] and stored_seeds(dataset) == {0, 1, 2}
    with h5py.File(dataset, "r") as handle:  # the same seed gives the same episode (on another robot_id)
        again = demo_arrays(handle["data/demo_1"])
    assert again.keys() == original.keys() and all(np.array_equal(again[key], original[key]) for key in original)
    kept = dataset.with_name("run.hdf5.damaged")
    assert inspect_dataset(kept).problems  # the file as it was, for whoever wants to look at the damage


def test_a_damaged_journal_entry_is_set_aside_and_its_episode_collected_again(dataset, tmp_path):
    # A journal entry as a killed writer leaves it, then damaged on disk.
    with h5py.File(dataset, "r") as handle:
        env_args = handle["data"].attrs["env_args"]
        original = demo_arrays(handle["data/demo_2"])
    with h5py.File(dataset, "a") as handle:
        journal_dir(dataset).mkdir()
        entry = journal_dir(dataset) / "seed_2.hdf5"
        with h5py.File(entry, "w") as journal:
            journal.attrs["env_args"] = json.dumps(json.loads(env_args), sort_keys=True)
            handle.copy(handle["data/demo_2"], journal, name="demo")
        del handle["data/demo_2"]
    flip_a_zero_word(entry, "demo/final_state")
    result = collect(CollectOptions(out=str(dataset), **OPTIONS))
    assert any("journal entry seed_2.hdf5 is damaged" in notice and "collected again" in notice
               for notice in result.notices), result.notices
    assert stored_seeds(dataset) == {0, 1, 2} and inspect_dataset(dataset).problems == []
    with h5py.File(dataset, "r") as handle:
        again = demo_arrays(handle["data/demo_2"])
    assert all(np.array_equal(again[key], original[key]) for key in original)


def test_files_written_before_the_hash_are_still_read(tmp_path):
    """The fixtures were written before the hash: checksums and value checks only."""
    fixture = Path(__file__).parent / "fixtures" / "datasets" / "bread_numpy.hdf5"
    with h5py.File(fixture, "r") as handle:
        assert "sha256" not in handle["data/demo_0"].attrs
        read_demo(handle["data/demo_0"])
    assert inspect_dataset(fixture).problems == []


def test_a_writer_resuming_a_file_checks_it_once_and_leaves_a_sound_file_alone(dataset):
    before = dataset.read_bytes()
    with h5py.File(dataset, "r") as handle:
        env_args = json.loads(handle["data"].attrs["env_args"])
    with DatasetWriter(dataset, env_args, None, "expert") as writer:
        assert writer.notices == [] and writer.done_seeds == {0, 1, 2}
    assert dataset.read_bytes() == before and not dataset.with_name("run.hdf5.damaged").exists()


def test_a_chunk_that_fails_its_checksum_is_named_and_never_merged(dataset, tmp_path):
    """Finding 1: such inputs were merged ('merged 1 files ... 8 episodes') into a file that could not be read."""
    with h5py.File(dataset, "r") as handle:
        chunk = handle["data/demo_2/states"].id.get_chunk_info(0)
    raw = bytearray(dataset.read_bytes())
    raw[chunk.byte_offset + chunk.size // 2] ^= 0x5A
    dataset.write_bytes(bytes(raw))
    problems = inspect_dataset(dataset).problems
    assert len(problems) == 1 and problems[0].startswith("demo_2 (seed 2) cannot be read"), problems
    with pytest.raises(DatasetError, match=r"demo_2 \(seed 2\) cannot be read.*nothing was written"):
        merge_datasets([dataset], tmp_path / "merged.hdf5")
    assert not (tmp_path / "merged.hdf5").exists()
