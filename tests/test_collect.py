"""``tground collect`` / ``replay`` / ``dataset info``: the robomimic layout, crash safety and resume,
replay reproducing episodes, the report, and clear errors that lose nothing already written."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import training_ground  # noqa: F401
from training_ground.data.collect import CollectOptions, collect
from training_ground.data.dataset import (REQUIRED_DEMO_ATTRS, DatasetError, inspect_dataset, journal_dir,
                                          journal_seeds)
from training_ground.data.replay import replay_dataset
from training_ground.errors import InputError

BREAD = "TrainingGround/BreadPickPlace-v0"


def tground(*args: str, cwd, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training_ground.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env or {**os.environ, "PYTHONWARNINGS": "ignore"})


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def seeds_in(path: Path) -> list[int]:
    with h5py.File(path, "r") as handle:
        return sorted(int(handle["data"][name].attrs["seed"]) for name in handle["data"])


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """Bread on 3 numpy robots: 5 episodes, seeds 10..14, 40 steps at most."""
    folder = tmp_path_factory.mktemp("collect")
    options = CollectOptions(task="bread", episodes=5, out=str(folder / "bread.hdf5"), robots=3, seed=10,
                             overrides=["max_steps=40"], report=str(folder / "report.json"), progress=False)
    result = collect(options)
    return folder / "bread.hdf5", options, result


def test_file_has_the_robomimic_layout(collected):
    path, options, result = collected
    with h5py.File(path, "r") as handle:
        data = handle["data"]
        env_args = json.loads(data.attrs["env_args"])
        assert env_args["env_name"] == BREAD and env_args["type"] == 2
        assert env_args["env_kwargs"]["backend"] == "numpy" and env_args["env_kwargs"]["action_mode"] == "ee_delta"
        assert env_args["env_kwargs"]["config"]["max_steps"] == 40
        assert env_args["training_ground"]["version"] == training_ground.__version__
        layout = json.loads(data.attrs["state_layout"])
        state_size = sum(int(np.prod(shape)) for _, shape in layout)
        names = sorted(data, key=lambda name: int(name[5:]))
        assert names == [f"demo_{k}" for k in range(5)]
        assert [int(data[name].attrs["seed"]) for name in names] == list(range(10, 15))  # demo order = seed order
        total = 0
        for name in names:
            demo = data[name]
            for attr in REQUIRED_DEMO_ATTRS:
                assert attr in demo.attrs, (name, attr)
            steps = int(demo.attrs["num_samples"])
            total += steps
            assert 1 <= steps <= 40
            assert set(demo["obs"]) == set(demo["next_obs"]) and "joint_pos" in demo["obs"]
            for key in demo["obs"]:
                assert demo["obs"][key].shape[0] == demo["next_obs"][key].shape[0] == steps
                np.testing.assert_array_equal(demo["obs"][key][1:], demo["next_obs"][key][:-1])
            actions = demo["actions"][()]
            assert actions.shape == (steps, 14) and actions.dtype == np.float32
            assert actions.min() >= -1.0 and actions.max() <= 1.0
            assert demo["rewards"].shape == (steps,)
            # 40 steps are too few to finish: every episode times out. That end is a truncation, not a terminal
            # state, so dones stays 0 (offline RL bootstraps past it) and truncated marks the last step.
            assert steps == 40 and not demo.attrs["success"]
            np.testing.assert_array_equal(demo["dones"][()], np.zeros(steps))
            np.testing.assert_array_equal(demo["truncated"][()], np.arange(steps) == steps - 1)
            assert demo["states"].shape == (steps, state_size) and demo["states"].dtype == np.float64
            assert demo["final_state"].shape == (state_size,)
            assert 0 <= int(demo.attrs["robot_id"]) < 3
            assert json.loads(demo.attrs["model"])[0]["shape"] == "capsule"
            # The state's elapsed-step column counts the steps.
            np.testing.assert_array_equal(demo["states"][:, 0], np.arange(steps))
        assert data.attrs["total"] == total
        masks = {key: sorted(handle[f"mask/{key}"].asstr()[()]) for key in ("successful", "failed")}
        assert sorted(masks["successful"] + masks["failed"]) == sorted(names)
        assert all(bool(data[name].attrs["success"]) for name in masks["successful"])
    assert not journal_dir(path).exists()


def test_report_sets_the_run_against_the_field(collected):
    path, options, result = collected
    report = result.report
    assert report.episodes == 5 and report.robots == 3
    assert report.mean_episode_sim_s == pytest.approx(report.mean_episode_steps * 0.02)
    assert report.episodes_per_sim_robot_day == pytest.approx(86_400 / report.mean_episode_sim_s)
    assert report.episodes_per_core_day == pytest.approx(5 * 86_400 / report.cpu_time_s)
    assert report.real_robots_per_core_at_300 == pytest.approx(report.episodes_per_core_day / 300)
    machine_day = report.episodes_per_core_day * report.machine_cores
    assert report.hours_for_machine_to_match_field_day == pytest.approx(30_000 / machine_day * 24)
    assert report.machines_for_100M_in_a_year == int(np.ceil(1e8 / (machine_day * 365)))
    from training_ground.data.collect import write_report

    json_path, png_path = write_report(report, options)
    assert json.loads(json_path.read_text())["episodes_per_core_day"] == pytest.approx(report.episodes_per_core_day)
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "episodes per CPU core per day" in report.table()


def test_replay_on_one_robot_reproduces_bit_for_bit(tmp_path):
    path = tmp_path / "one.hdf5"
    collect(CollectOptions(task="bread", episodes=2, out=str(path), robots=1, overrides=["max_steps=60"],
                           progress=False))
    result = replay_dataset(path, robots=1, progress=False)
    assert result.reproduced == 2, result.summary()
    for check in result.checks:
        assert check.objects_match and check.initial_state_error == 0.0
        assert check.max_state_error == 0.0 and check.first_divergence is None


def test_replay_on_pybullet_reproduces_across_batch_layouts(tmp_path):
    path = tmp_path / "pybullet.hdf5"
    collect(CollectOptions(task="bread", episodes=3, out=str(path), robots=2, backend="pybullet",
                           overrides=["max_steps=50"], progress=False))
    result = replay_dataset(path, robots=3, progress=False)  # other neighbours than when collected
    assert result.reproduced == 3, result.summary()
    assert all(check.max_state_error == 0.0 for check in result.checks)


def test_replay_of_a_batched_numpy_collection(collected):
    path, _, _ = collected
    result = replay_dataset(path, robots=2, progress=False)
    assert len(result.checks) == 5
    assert all(check.replayed_success == check.recorded_success for check in result.checks)
    assert all(check.ended_at == check.steps for check in result.checks)
    # Bit for bit with another batch size: the numpy engine's sums do not depend on the batch.
    assert all(check.final_state_error == 0.0 for check in result.checks), result.summary()


def test_demos_record_their_numeric_platform_and_replay_names_a_different_one(collected, tmp_path):
    import shutil

    from training_ground.data.dataset import inspect_dataset
    from training_ground.data.platform import numeric_platform

    path, _, _ = collected
    here = numeric_platform()
    assert here.startswith("numpy ") and "SIMD " in here
    with h5py.File(path, "r") as handle:
        assert {str(handle["data"][name].attrs["numeric_platform"]) for name in handle["data"]} == {here}
    # A demo recorded elsewhere whose numbers differ in the last bits, as another BLAS kernel's do.
    moved = tmp_path / "elsewhere.hdf5"
    shutil.copy(path, moved)
    with h5py.File(moved, "a") as handle:
        demo = handle["data/demo_0"]
        demo.attrs["numeric_platform"] = "numpy 2.4.6, openblas 0.3.31 (Zen), SIMD X86_V3, x86_64"
        final = demo["final_state"][()]
        final[0] += 1e-13
        demo["final_state"][...] = final
        del demo.attrs["sha256"]  # as a file written before content hashes
    assert inspect_dataset(moved).problems == []  # the platform is not part of what is verified
    result = replay_dataset(moved, robots=2, progress=False)
    assert [check.demo for check in result.off_platform()] == ["demo_0"]
    assert result.reproduced == 4, result.summary()
    summary = result.summary()
    assert "recorded on numpy 2.4.6, openblas 0.3.31 (Zen)" in summary and f"runs on {here}" in summary
    assert "--atol 1e-9" in summary
    assert all(check.reproduced(1e-9) for check in result.checks)


def test_a_finished_episode_ends_terminal_and_an_old_file_reads_without_truncation(tmp_path):
    """A success is a terminal state: dones 1 on its last step, truncated 0 throughout. A file of format 1 (the
    fixtures) has no truncated array and its demos read with truncated None; the inspection accepts both."""
    from training_ground.data.dataset import open_dataset, read_demo

    out = tmp_path / "bread.hdf5"
    collect(CollectOptions(task="bread", episodes=2, out=str(out), robots=2, seed=0, progress=False))
    with open_dataset(out) as handle:
        assert json.loads(handle["data"].attrs["env_args"])["training_ground"]["format"] == "training_ground.dataset/2"
        for name in ("demo_0", "demo_1"):
            episode = read_demo(handle["data"][name])
            assert episode.success
            np.testing.assert_array_equal(episode.dones, np.arange(episode.num_samples) == episode.num_samples - 1)
            np.testing.assert_array_equal(episode.truncated, np.zeros(episode.num_samples))
    fixture = Path(__file__).parent / "fixtures" / "datasets" / "bread_numpy.hdf5"
    with open_dataset(fixture) as handle:
        assert read_demo(handle["data"]["demo_0"]).truncated is None
    assert inspect_dataset(fixture).problems == []
    with h5py.File(out, "a") as handle:  # both end flags on one step is damage
        demo = handle["data/demo_0"]
        flags = demo["truncated"][()]
        flags[-1] = 1
        demo["truncated"][...] = flags
    assert any("both terminal (dones) and truncated" in problem for problem in inspect_dataset(out).problems)
    # A collection of format 1 is not extended with episodes whose dones mean something else.
    old = tmp_path / "old.hdf5"
    collect(CollectOptions(task="bread", episodes=1, out=str(old), robots=1, seed=0, progress=False,
                           overrides=["max_steps=5"]))
    with h5py.File(old, "a") as handle:
        env_args = json.loads(handle["data"].attrs["env_args"])
        env_args["training_ground"]["format"] = "training_ground.dataset/1"
        handle["data"].attrs["env_args"] = json.dumps(env_args)
    before = digest(old)
    with pytest.raises(DatasetError, match="records episode ends differently"):
        collect(CollectOptions(task="bread", episodes=2, out=str(old), robots=1, seed=0, progress=False,
                               overrides=["max_steps=5"]))
    assert digest(old) == before


def test_the_size_estimate_is_measured_from_one_episode_and_a_large_run_in_a_terminal_asks_for_yes(
        tmp_path, monkeypatch):
    """Bread, 6 full episodes: the estimate (the first seed's episode written in memory, times 6) is within 20 % of
    the file (seen: 7 %; episode lengths differ). Over the threshold, a terminal run stops before it writes."""
    from training_ground.data import collect as collect_module

    options = CollectOptions(task="bread", episodes=6, out=str(tmp_path / "bread.hdf5"), robots=3, seed=0,
                             progress=False)
    estimate = collect_module.estimate_size(options)
    assert estimate.episodes == 6 and estimate.episode_steps > 50
    collect(options)
    actual = (tmp_path / "bread.hdf5").stat().st_size
    assert abs(estimate.total_bytes - actual) < 0.2 * actual, (estimate, actual)
    # A resume estimates what it adds; a complete file runs no episode to estimate and prints nothing.
    assert collect_module.check_size(options, confirmed=False, interactive=True) == ""
    more = dataclasses.replace(options, episodes=8)
    assert "more for 2 episodes still to collect of the 8 requested" in collect_module.check_size(
        more, confirmed=False, interactive=True)
    monkeypatch.setattr(collect_module, "CONFIRM_SIZE_BYTES", 1000)
    other = CollectOptions(task="bread", episodes=2, out=str(tmp_path / "big.hdf5"), progress=False)
    with pytest.raises(InputError, match="Rerun with --yes"):
        collect_module.check_size(other, confirmed=False, interactive=True)
    assert collect_module.check_size(other, confirmed=True, interactive=True)  # --yes
    assert collect_module.check_size(other, confirmed=False, interactive=False)  # piped or in CI: no question
    run = tground("collect", "--task", "bread", "--episodes", "2", "--robots", "2", "--set", "max_steps=3",
                  "--out", str(tmp_path / "cli.hdf5"), cwd=tmp_path)
    assert run.returncode == 0 and "expected size: about" in run.stderr, run.stderr
    assert not (tmp_path / "big.hdf5").exists()


def test_policy_from_module_callable_and_only_success(tmp_path, monkeypatch):
    (tmp_path / "still_policy.py").write_text(
        "import numpy as np\n"
        "def make(env):\n"
        "    return lambda observation: np.zeros(env.action_space.shape, dtype=np.float32)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "still.hdf5"
    collect(CollectOptions(task="bread", episodes=3, out=str(path), robots=3, policy="still_policy:make",
                           overrides=["max_steps=8"], only_success=True, progress=False))
    with h5py.File(path, "r") as handle:  # standing still never succeeds: every seed filtered, none lost
        assert [name for name in handle["data"]] == []
        assert handle["filtered_seeds"][()].tolist() == [0, 1, 2]
        assert handle["data"].attrs["policy"] == "still_policy:make"
    again = collect(CollectOptions(task="bread", episodes=3, out=str(path), robots=3, policy="still_policy:make",
                                   overrides=["max_steps=8"], only_success=True, progress=False))
    assert "nothing to do" in again.message
    path = tmp_path / "kept.hdf5"
    collect(CollectOptions(task="bread", episodes=2, out=str(path), robots=2, policy="still_policy:make",
                           overrides=["max_steps=8"], progress=False))
    info = inspect_dataset(path)
    assert info.episodes == 2 and info.successes == 0 and info.action_max == [0.0] * 14


def _wait_for(condition, process: subprocess.Popen, timeout: float = 300.0) -> None:
    """Poll until ``condition()`` holds. The timeout is only a safety net: a stuck collector fails the test
    instead of hanging it; a collector that exits first fails it at once."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the collector exited (status {process.returncode}) before the condition held"
        assert time.monotonic() < deadline, f"the collector did not get there within {timeout:.0f} s"
        time.sleep(0.05)


def _committed_and_journal(path: Path) -> tuple[int, int]:
    try:
        with h5py.File(path, "r") as handle:
            committed = len(handle["data"])
    except (OSError, KeyError):
        committed = 0
    return committed, len(list(journal_dir(path).glob("seed_*.hdf5")))


def _finished_seeds(path: Path) -> set[int]:
    """Seeds of the episodes that are durable: in the file or in its journal (an entry can be in both for a
    moment, between a commit's rename and the journal's clean-up; counted once)."""
    return (set(seeds_in(path)) if path.exists() else set()) | journal_seeds(path)


def _gated(gate: Path | None = None) -> dict:
    """The environment for ``--policy gated_expert:make`` (tests/gated_expert.py): the expert, which stops
    while the file ``gate`` exists once more than the number it holds of episodes have started."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))}
    env.pop("TG_TEST_GATE", None)
    if gate is not None:
        env["TG_TEST_GATE"] = str(gate)
    return env


def test_sigkill_mid_run_then_rerun_resumes_to_exactly_the_requested_seeds(tmp_path):
    path = tmp_path / "killed.hdf5"
    gate = tmp_path / "gate"
    gate.write_text("12")  # the run cannot finish more than 12 of its 14 episodes before the kill
    command = ["collect", "--task", "bread", "--robots", "3", "--episodes", "14", "--seed", "100",
               "--out", str(path), "--set", "max_steps=12", "--commit-every", "0", "--policy", "gated_expert:make"]
    process = subprocess.Popen([sys.executable, "-m", "training_ground.cli", *command], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_gated(gate))
    try:
        # Kill once some episodes are committed, whatever the collector is doing then (stepping the
        # episodes in flight, writing a journal entry, replacing the file in a commit, or waiting at the gate).
        _wait_for(lambda: _committed_and_journal(path)[0] >= 3, process)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    assert process.returncode == -signal.SIGKILL  # killed mid-run, not finished
    assert 3 <= len(_finished_seeds(path)) <= 12
    survived = seeds_in(path)  # the file is readable after the kill
    assert survived == list(range(100, 100 + len(survived)))
    gate.unlink()
    result = tground(*command, cwd=tmp_path, env=_gated())
    assert result.returncode == 0, result.stderr
    assert seeds_in(path) == list(range(100, 114))  # no duplicates, no gaps
    info = inspect_dataset(path)
    assert info.episodes == 14 and not info.problems and info.pending == 0
    assert not journal_dir(path).exists()


def test_ctrl_c_stops_cleanly_after_writing_what_is_finished(tmp_path):
    path = tmp_path / "interrupted.hdf5"
    gate = tmp_path / "gate"
    gate.write_text("8")  # 8 of the 1000 episodes at most can finish before the signal
    process = subprocess.Popen(
        [sys.executable, "-m", "training_ground.cli", "collect", "--task", "bread", "--robots", "2", "--episodes",
         "1000", "--out", str(path), "--set", "max_steps=10", "--commit-every", "1000",  # far more than a signal needs
         "--policy", "gated_expert:make"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_gated(gate),
        # A process started in the background by a shell without job control inherits SIGINT ignored, and
        # Python then installs no KeyboardInterrupt handler: give the collector the default, as a terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _wait_for(lambda: _committed_and_journal(path)[1] >= 4, process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=300)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "rerun the same command" in stderr and "Traceback" not in stderr
    seeds = seeds_in(path)
    assert 4 <= len(seeds) <= 8 and seeds == list(range(len(seeds)))  # every finished episode reached the file
    assert not journal_dir(path).exists()


def test_bad_inputs_get_clear_errors_and_lose_nothing(collected, tmp_path):
    path, _, _ = collected
    before = digest(path)
    common = ["--episodes", "2", "--robots", "2", "--set", "max_steps=5"]

    result = tground("collect", "--task", "nosuchtask", "--out", str(tmp_path / "x.hdf5"), *common, cwd=tmp_path)
    assert result.returncode == 2 and "unknown task 'nosuchtask'" in result.stderr
    result = tground("collect", "--task", "bread", "--out", str(tmp_path / "x.hdf5"), "--set", "max_stepz=3",
                     "--episodes", "1", cwd=tmp_path)
    assert result.returncode == 2 and "unknown config key" in result.stderr
    result = tground("collect", "--task", "bread", "--out", str(tmp_path / "missing" / "x.hdf5"), *common,
                     cwd=tmp_path)
    assert result.returncode == 2 and "does not exist" in result.stderr
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    result = tground("collect", "--task", "bread", "--out", str(blocker / "x.hdf5"), *common, cwd=tmp_path)
    assert result.returncode == 2 and "cannot write" in result.stderr

    # The existing file holds another configuration (max_steps=40), then "another task".
    result = tground("collect", "--task", "bread", "--out", str(path), *common, cwd=tmp_path)
    assert result.returncode == 2 and "collected differently" in result.stderr and "max_steps" in result.stderr
    other_task = tmp_path / "other_task.hdf5"
    other_task.write_bytes(path.read_bytes())
    with h5py.File(other_task, "a") as handle:
        env_args = json.loads(handle["data"].attrs["env_args"])
        env_args["env_name"] = "TrainingGround/SomeOtherTask-v0"
        handle["data"].attrs["env_args"] = json.dumps(env_args)
    other_digest = digest(other_task)
    result = tground("collect", "--task", "bread", "--out", str(other_task), *common, cwd=tmp_path)
    assert result.returncode == 2 and "SomeOtherTask" in result.stderr
    assert digest(other_task) == other_digest

    corrupt = tmp_path / "corrupt.hdf5"
    corrupt.write_bytes(path.read_bytes()[:4096])
    corrupt_digest = digest(corrupt)
    for args in (["collect", "--task", "bread", "--out", str(corrupt), *common], ["dataset", "info", str(corrupt)],
                 ["replay", str(corrupt)]):
        result = tground(*args, cwd=tmp_path)
        assert result.returncode == 2, args
        assert "not a readable HDF5 file" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert digest(corrupt) == corrupt_digest
    assert digest(path) == before
    assert not journal_dir(path).exists() and not journal_dir(corrupt).exists()


def test_dataset_info_and_replay_commands(collected, tmp_path):
    path, _, _ = collected
    result = tground("dataset", "info", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "5 seeds: 10..14 (no gaps)" in result.stdout and "range [" in result.stdout
    result = tground("replay", str(path), "--demos", "demo_1", "--json", str(tmp_path / "replay.json"), cwd=tmp_path)
    assert "replayed 1 episodes" in result.stdout, result.stderr
    assert json.loads((tmp_path / "replay.json").read_text())["checks"][0]["demo"] == "demo_1"
