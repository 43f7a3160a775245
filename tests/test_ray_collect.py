"""Collection and evaluation over Ray (the ``dist`` extra), and the merge step behind it.

Shards merge into one robomimic-layout file with exactly the requested seeds; a Ray collection
equals a local one episode for episode; a worker killed mid-run costs only its episodes in
flight and the run still ends with every seed exactly once; evaluation fans out over seeds;
and without ``--ray`` nothing imports Ray. The Ray tests start a local 2-CPU Ray and skip when
Ray is not installed.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import training_ground  # noqa: F401
from training_ground import cli
from training_ground.data.collect import CollectOptions, collect
from training_ground.data.dataset import (DatasetError, DatasetWriter, inspect_dataset, journal_dir, journal_seeds,
                                          merge_datasets, read_demo, stored_seeds)

ray_test = pytest.mark.ray
TINY = ["max_steps=30"]  # every episode ends by time after 30 steps: equal work per seed


def options_for(out: Path, seed: int, episodes: int, robots: int = 3, overrides=TINY) -> CollectOptions:
    return CollectOptions(task="bread", episodes=episodes, out=str(out), robots=robots, seed=seed,
                          overrides=list(overrides), progress=False)


def demos_by_seed(path: Path) -> dict[int, object]:
    with h5py.File(path, "r") as handle:
        data = handle["data"]
        return {int(data[name].attrs["seed"]): read_demo(data[name]) for name in data}


# The numpy engine's reset leaves these two blocks as the robot slot's previous episode ended them:
# the hand force until the first substep recomputes it, the grasp offset until the next weld writes
# it (it is read only while welded). Neither feeds the dynamics, but the recorded states carry the
# slot's history, which differs between one local run and shards. Everything else is compared bit for bit.
INERT_BLOCKS = ("engine.hand_forces", "engine.grasp_offset")


def inert_columns(path: Path) -> np.ndarray:
    with h5py.File(path, "r") as handle:
        layout = json.loads(handle["data"].attrs["state_layout"])
    return np.concatenate([np.full(int(np.prod(shape)), name in INERT_BLOCKS) for name, shape in layout])


def assert_same_episodes(path: Path, reference: dict[int, object], seeds) -> None:
    """Every seed once, demos numbered in seed order, and each episode bit for bit the reference's."""
    with h5py.File(path, "r") as handle:
        data = handle["data"]
        names = sorted(data, key=lambda name: int(name[5:]))
        assert [int(data[name].attrs["seed"]) for name in names] == list(seeds)
        assert names == [f"demo_{k}" for k in range(len(seeds))]
    info = inspect_dataset(path)
    assert info.problems == [] and info.pending == 0
    episodes = demos_by_seed(path)
    active = ~inert_columns(path)
    for seed in seeds:
        if seed not in reference:
            continue
        got, want = episodes[seed], reference[seed]
        np.testing.assert_array_equal(got.actions, want.actions)
        np.testing.assert_array_equal(got.states[:, active], want.states[:, active])
        np.testing.assert_array_equal(got.final_state[active], want.final_state[active])
        np.testing.assert_array_equal(got.rewards, want.rewards)
        for key in got.observations:
            np.testing.assert_array_equal(got.observations[key], want.observations[key])
        assert got.success == want.success and got.model == want.model


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """Seeds 0..5 collected in one local run on 3 robots: what every merge and Ray run must reproduce."""
    path = tmp_path_factory.mktemp("local") / "bread.hdf5"
    collect(options_for(path, 0, 6))
    return path, demos_by_seed(path)


@pytest.fixture(scope="module")
def two_shards(tmp_path_factory):
    """Seeds 0..2 and 3..5 collected apart, on 2 robots each."""
    folder = tmp_path_factory.mktemp("shards")
    collect(options_for(folder / "a.hdf5", 0, 3, robots=2))
    collect(options_for(folder / "b.hdf5", 3, 3, robots=2))
    return folder / "a.hdf5", folder / "b.hdf5"


# ---------------------------------------------------------------------------------------------- without Ray
def test_collect_without_ray_never_imports_ray(tmp_path):
    code = f"""
import sys
from training_ground import cli
assert cli.main(["collect", "--task", "bread", "--episodes", "1", "--robots", "1", "--set", "max_steps=3",
                 "--out", {str(tmp_path / "one.hdf5")!r}]) == 0
assert cli.main(["collect", "--task", "bread", "--episodes", "1", "--workers", "2",
                 "--out", {str(tmp_path / "two.hdf5")!r}]) == 2
assert cli.main(["eval", "--policy", "expert", "--episodes", "1", "--retries", "1",
                 "--out", {str(tmp_path / "eval")!r}]) == 2
assert "ray" not in sys.modules, sorted(name for name in sys.modules if name.startswith("ray"))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--workers only apply with --ray" in done.stderr and "--retries only apply with --ray" in done.stderr
    assert not (tmp_path / "two.hdf5").exists()


# ---------------------------------------------------------------------------------------------- merging
def test_merged_shards_equal_one_local_run(two_shards, local_run, tmp_path):
    a, b = two_shards
    out = tmp_path / "merged.hdf5"
    result = merge_datasets([b, a], out, seeds=range(0, 6))
    assert (result.episodes, result.left_out) == (6, 0)
    assert_same_episodes(out, local_run[1], range(0, 6))
    with h5py.File(out, "r") as merged, h5py.File(local_run[0], "r") as local:
        assert merged["data"].attrs["env_args"] == local["data"].attrs["env_args"]
        assert merged["data"].attrs["total"] == local["data"].attrs["total"]
        for key in ("mask/successful", "mask/failed", "filtered_seeds"):
            np.testing.assert_array_equal(merged[key][()], local[key][()])


def test_merge_takes_exactly_the_requested_seeds(two_shards, tmp_path):
    a, b = two_shards
    out = tmp_path / "middle.hdf5"
    result = merge_datasets([a, b], out, seeds=range(1, 5))
    assert (result.episodes, result.left_out) == (4, 2)
    assert inspect_dataset(out).seeds == [1, 2, 3, 4]
    with pytest.raises(DatasetError, match=r"lack 2 of the 8 requested episodes \(2 seeds: 6..7"):
        merge_datasets([a, b], tmp_path / "gap.hdf5", seeds=range(0, 8))
    assert not (tmp_path / "gap.hdf5").exists()


def test_merge_refuses_duplicates_foreign_shards_and_a_stray_output(two_shards, tmp_path):
    a, b = two_shards
    copy = tmp_path / "copy_of_a.hdf5"
    shutil.copyfile(a, copy)
    with pytest.raises(DatasetError, match=r"both hold 3 seeds: 0..2"):
        merge_datasets([a, b, copy], tmp_path / "out.hdf5")
    other = tmp_path / "longer.hdf5"
    collect(options_for(other, 6, 1, robots=1, overrides=["max_steps=20"]))
    with pytest.raises(DatasetError, match=r"not from the same collection .*max_steps: 30 in the file, 20 now"):
        merge_datasets([a, other], tmp_path / "out.hdf5")
    stray = tmp_path / "stray.hdf5"
    stray.write_bytes(b"keep me")
    with pytest.raises(DatasetError, match="already exists and is not one of the inputs"):
        merge_datasets([a, b], stray)
    assert stray.read_bytes() == b"keep me"
    assert not (tmp_path / "out.hdf5").exists()


def test_merge_finishes_a_killed_writers_journal_and_may_extend_an_input(two_shards, local_run, tmp_path):
    a, b = two_shards
    grown = tmp_path / "grown.hdf5"
    shutil.copyfile(a, grown)
    with h5py.File(a, "r") as handle:
        env_args, layout = handle["data"].attrs["env_args"], handle["data"].attrs["state_layout"]
    writer = DatasetWriter(grown, json.loads(env_args), json.loads(layout), "expert", commit_every=1e9)
    writer.add(local_run[1][5])
    writer._lock.close()  # the process dies here: the episode is only in the journal
    assert journal_dir(grown).is_dir()
    part = tmp_path / "three_four.hdf5"
    merge_datasets([b], part, seeds=[3, 4])
    result = merge_datasets([grown, part], grown)  # the output is an input: replaced whole
    assert result.episodes == 6 and not journal_dir(grown).exists()
    assert_same_episodes(grown, local_run[1], range(0, 6))


def test_dataset_merge_command(two_shards, tmp_path, capsys):
    a, b = two_shards
    out = tmp_path / "cli.hdf5"
    assert cli.main(["dataset", "merge", str(a), str(b), "--out", str(out), "--seed", "0", "--episodes", "6"]) == 0
    assert "merged 2 files" in capsys.readouterr().out
    assert inspect_dataset(out).seeds == list(range(6))
    assert cli.main(["dataset", "merge", str(a), "--out", str(tmp_path / "x.hdf5"), "--seed", "0"]) == 2
    assert "--seed and --episodes go together" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- over Ray
@pytest.fixture(scope="module")
def worker_gate(tmp_path_factory):
    """The gate file of ``--policy gated_expert:make`` (tests/gated_expert.py) in the Ray workers; closed while
    it exists."""
    gate = tmp_path_factory.mktemp("gate") / "gate"
    yield gate
    gate.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def ray_local(worker_gate):
    ray = pytest.importorskip("ray")
    # The workers start with the environment Ray starts with: tests/ importable, the gate named.
    saved = {key: os.environ.get(key) for key in ("PYTHONPATH", "TG_TEST_GATE")}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parent), saved["PYTHONPATH"]]))
    os.environ["TG_TEST_GATE"] = str(worker_gate)
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    yield ray
    ray.shutdown()


@ray_test
def test_ray_collection_equals_a_local_run_and_reports_its_scaling(ray_local, local_run, tmp_path):
    from training_ground.data.distributed import collect_distributed, shards_dir

    out = tmp_path / "ray.hdf5"
    result = collect_distributed(options_for(out, 0, 6, robots=2), workers=2, measure_scaling=True, ray=ray_local)
    assert not result.interrupted
    assert_same_episodes(out, local_run[1], range(0, 6))
    assert not shards_dir(out).exists() and not out.with_name(out.name + ".scaling").exists()
    assert sorted(Path(shard["shard"]).name for shard in result.shards) == ["seeds_0-2.hdf5", "seeds_3-5.hdf5"]
    assert len({worker["pid"] for worker in result.workers}) == 2

    report = result.report
    assert (report.workers, report.robots, report.episodes, report.cluster_cores) == (2, 4, 6, 2)
    assert report.mean_episode_steps == 30
    assert report.cpu_time_s == pytest.approx(sum(shard["cpu_s"] for shard in result.shards))
    assert report.episodes_per_run_day == pytest.approx(6 * 86_400 / report.wall_time_s)
    assert report.one_worker_episodes_per_day > 0 and 0 < report.one_worker_cores_used <= 1.05
    assert report.scaling_efficiency == pytest.approx(
        report.episodes_per_run_day / (2 * report.one_worker_episodes_per_day))
    assert "scaling efficiency (2 workers / 2 x one)" in report.table()
    assert "scaling_efficiency" in report.to_json()

    again = collect_distributed(options_for(out, 0, 6, robots=2), workers=2, ray=ray_local)
    assert again.report is None and "nothing to do" in again.message


def _lock_holder(journal: Path) -> int | None:
    text = (journal / "lock").read_text() if (journal / "lock").exists() else ""
    return int(text.split()[1]) if text.startswith("pid ") else None


def _finished_in(shard: Path) -> set[int]:
    """Seeds a shard holds durably, in its file or its journal (counted once if in both for a moment)."""
    try:
        committed = stored_seeds(shard) if shard.exists() else set()
    except DatasetError:  # not yet a dataset: the writer is making it
        committed = set()
    return committed | journal_seeds(shard)


@ray_test
def test_a_killed_worker_costs_only_its_episodes_in_flight(ray_local, worker_gate, local_run, tmp_path):
    """Kill one worker process (SIGKILL) once its shard holds finished episodes: Ray restarts it, the
    shard resumes from its journal, and the merged file has every requested seed exactly once.

    The workers run the expert behind a gate (tests/gated_expert.py) that holds each after 4 of its
    shard's 6 episodes until the kill: whatever the machine's speed, the kill finds a shard part done."""
    from training_ground.data.distributed import collect_distributed, shards_dir

    out = tmp_path / "killed.hdf5"
    # 2 shards of 6 seeds: 3 rounds of 30 steps on each worker, held after the second round.
    options = dataclasses.replace(options_for(out, 0, 12, robots=2), policy="gated_expert:make")
    worker_gate.write_text("4")
    outcome = {}

    def drive():
        try:
            outcome["result"] = collect_distributed(options, workers=2, retries=2, ray=ray_local)
        except BaseException as error:  # noqa: BLE001 - reported by the test thread
            outcome["error"] = error

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    killed = None
    deadline = time.monotonic() + 600  # a safety net only: the gate holds the workers until the kill
    try:
        while killed is None:
            assert driver.is_alive(), f"the run ended before a worker was killed: {outcome}"
            assert time.monotonic() < deadline, "no worker finished an episode within 600 s"
            for journal in sorted(shards_dir(out).glob("*.journal")) if shards_dir(out).is_dir() else []:
                shard = journal.with_name(journal.name[:-len(".journal")])
                finished = _finished_in(shard)
                pid = _lock_holder(journal)
                if finished and pid is not None:
                    os.kill(pid, signal.SIGKILL)
                    killed = (shard.name, pid, len(finished))
                    break
            time.sleep(0.02)
    finally:
        worker_gate.unlink(missing_ok=True)  # the other worker goes on; the restarted one is not held
    driver.join(timeout=600)
    assert not driver.is_alive()
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]

    assert_same_episodes(out, local_run[1], range(0, 12))  # the gated expert acts as the expert
    shard_name, pid, finished_at_kill = killed
    (resumed,) = [shard for shard in result.shards if Path(shard["shard"]).name == shard_name]
    assert resumed["pid"] != pid  # finished by the restarted worker
    # What the dead worker finished was kept, not redone (and it could not have finished more than 4).
    assert finished_at_kill <= resumed["resumed"] <= 4
    assert len(resumed["steps"]) == 6 - resumed["resumed"]
    assert not shards_dir(out).exists()
    assert result.report.episodes_per_run_day == pytest.approx(12 * 86_400 / result.report.wall_time_s)


def _first_observation_digests(seeds: list[int], task: str = "bread") -> list[str]:
    """A stand-in for an evaluation: per seed, a digest of the seeded reset's observation."""
    import gymnasium

    from training_ground.envs import resolve_task_id

    env = gymnasium.make_vec(resolve_task_id(task), num_envs=len(seeds), vectorization_mode="vector_entry_point")
    try:
        observation, _ = env.reset(seed=list(seeds))
    finally:
        env.close()
    return [hashlib.sha256(b"".join(np.ascontiguousarray(observation[key][i]).tobytes()
                                    for key in sorted(observation))).hexdigest() for i in range(len(seeds))]


def _wrong_count(seeds):
    return [0]


def _refuse(seeds):
    raise ValueError(f"no policy for seeds {seeds}")


@ray_test
def test_run_over_seeds_returns_every_seed_once_in_order(ray_local):
    from training_ground.data.distributed import run_over_seeds

    ray_local.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    seeds = [7, 3, 11, 5, 2, 9, 4]
    results = run_over_seeds(functools.partial(_first_observation_digests, task="bread"), seeds, workers=2,
                             chunk_size=2, ray=ray_local)
    assert results == _first_observation_digests(seeds)
    assert len(set(results)) == len(seeds)
    with pytest.raises(ValueError, match="returned 1 results for the 2 seeds"):
        run_over_seeds(_wrong_count, [1, 2], workers=1, chunk_size=2, ray=ray_local)
    with pytest.raises(ValueError, match=r"no policy for seeds \[1\]"):
        run_over_seeds(_refuse, [1], workers=1, ray=ray_local)
    with pytest.raises(ValueError, match="every seed must appear once"):
        run_over_seeds(_refuse, [1, 1], ray=ray_local)
    with pytest.raises(ValueError, match="the Ray cluster has 2 CPUs"):
        run_over_seeds(_refuse, list(range(10)), workers=3, ray=ray_local)



@ray_test
def test_eval_over_ray_measures_every_episode_as_a_local_eval(ray_local, tmp_path):
    from training_ground.agents.evaluate import EvalArgs, evaluate
    from training_ground.data.distributed import evaluate_distributed

    args = EvalArgs(task="bread", policy=("expert",), episodes=5, seed=40, num_envs=3, set=("max_steps=30",),
                    out=str(tmp_path / "local"), progress=False)
    (local,) = evaluate(args)
    (spread,) = evaluate_distributed(dataclasses.replace(args, out=str(tmp_path / "ray")), workers=2, chunk_size=2,
                                     ray=ray_local)
    assert [episode["seed"] for episode in spread["episodes_detail"]] == list(range(40, 45))
    assert spread["episodes_detail"] == local["episodes_detail"]
    assert spread["success_ci95"] == local["success_ci95"]
    report = json.loads((tmp_path / "ray.json").read_text())
    assert report["ray"] == {"workers": 2, "chunks_per_policy": 3} and (tmp_path / "ray.png").exists()
