"""Nothing silent: bad values refused where they enter, and the messages of issue 12 (findings 6 and 9;
7, 8 in part).

Each case here went wrong before: through ``gymnasium.make`` a config value was not checked
against its domain, a float seed was truncated, an int mask was cast to bool, float16 actions
were taken, a closed env kept stepping, a reset kept the previous episode's cloth pins, a demo
into a missing folder died after the episodes, piped collection printed no progress, the report
rounded 999/1000 up to 100 % and the install hints named a package the index does not have.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import gymnasium
import numpy as np
import pytest

import training_ground  # noqa: F401
from training_ground.envs import TASKS, ConfigError, make_config, make_task_env
from training_ground.envs.bread import BreadPickPlaceConfig
from training_ground.physics import BACKENDS

BAD_CONFIGS = [
    ({"max_steps": -1}, "max_steps must lie in"),
    ({"max_steps": 0}, "max_steps must lie in"),
    ({"max_steps": 2.5}, "max_steps must be a whole number"),
    ({"max_steps": True}, "max_steps must be a whole number"),
    ({"max_steps": "abc"}, "max_steps must be a whole number"),
    ({"randomization": {"radius_range": (-0.03, 0.03)}}, "randomization.radius_range must lie in"),
    ({"randomization": {"length_range": (-0.05, -0.04)}}, "randomization.length_range must lie in"),
    ({"randomization": {"mass_range": (0.0, 0.0)}}, "randomization.mass_range must lie in"),
    ({"randomization": {"mass_range": (-0.1, 0.1)}}, "randomization.mass_range must lie in"),
    ({"randomization": {"friction_range": (-0.5, 0.5)}}, "randomization.friction_range must lie in"),
    ({"randomization": {"x_range": (0.5, 0.4)}}, "randomization.x_range is reversed"),
    ({"reach_scale": math.nan}, "reach_scale must be a finite number"),
    ({"physics_dt": math.inf}, "physics_dt must be a finite number"),
    ({"ik": {"damping": -0.1}}, "ik.damping must lie in"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("values, message", BAD_CONFIGS, ids=[str(v) for v, _ in BAD_CONFIGS])
def test_a_bad_config_value_through_gymnasium_make_is_refused_naming_the_key(backend, values, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        gymnasium.make("TrainingGround/BreadPickPlace-v0", backend=backend, **values)


def test_a_config_instance_is_checked_too_and_good_values_pass():
    with pytest.raises(ConfigError, match="max_steps must lie in"):
        make_config(BreadPickPlaceConfig, BreadPickPlaceConfig(max_steps=-3))
    assert make_config(BreadPickPlaceConfig, max_steps=np.int64(7)).max_steps == 7
    for task_id, spec in TASKS.items():  # every task's defaults lie in their domains
        assert make_config(spec.config_class) == spec.config_class()


@pytest.mark.parametrize("seed", [1.7, 2**63, -1, True, "3"])
def test_a_seed_must_be_an_int_in_0_to_2_to_the_63(seed):
    env = gymnasium.make("bread", backend="numpy")
    vector = make_task_env("bread", 2)
    try:
        with pytest.raises(ValueError, match=r"seed must be an int in \[0, 2\*\*63\)"):
            env.reset(seed=seed)
        with pytest.raises(ValueError, match=r"seed must be an int in \[0, 2\*\*63\)"):
            vector.reset(seed=seed)
        with pytest.raises(ValueError, match=r"seed must be an int in \[0, 2\*\*63\)"):
            vector.reset(seed=[0, seed])
    finally:
        env.close()
        vector.close()


def test_collect_refuses_seeds_past_int64_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "training_ground.cli", "collect", "--task", "bread", "--episodes",
                             "1", "--seed", str(2**63 - 1 + 1), "--out", str(tmp_path / "x.hdf5")],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2 and "2**63" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.hdf5").exists()


@pytest.mark.parametrize("mask", [[0, 1, 2], np.array([0, 1, 1]), "abc", np.ones(3, dtype=bool), [True, False]],
                         ids=["int list", "int array", "string", "wrong length", "bool list"])
def test_a_reset_mask_must_be_a_bool_array_of_the_batch_size(mask):
    vector = make_task_env("bread", 2)
    try:
        with pytest.raises(ValueError, match="reset_mask must be a bool numpy array of shape"):
            vector.reset(seed=0, options={"reset_mask": mask})
    finally:
        vector.close()


def test_an_all_false_reset_mask_is_a_no_op():
    vector = make_task_env("bread", 2)
    try:
        first, _ = vector.reset(seed=0)
        state = vector.unwrapped.task.get_state()
        again, _ = vector.reset(seed=5, options={"reset_mask": np.zeros(2, dtype=bool)})
        assert all(np.array_equal(first[key], again[key]) for key in first)
        np.testing.assert_array_equal(vector.unwrapped.task.get_state(), state)
    finally:
        vector.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_float16_actions_are_refused(backend):
    env = gymnasium.make("bread", backend=backend)
    try:
        env.reset(seed=0)
        with pytest.raises(ValueError, match="float32 or float64"):
            env.step(np.zeros(env.action_space.shape, dtype=np.float16))
        env.step(np.zeros(env.action_space.shape, dtype=np.float64))
    finally:
        env.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_closed_env_raises_on_every_call(backend):
    env = gymnasium.make("bread", backend=backend, render_mode="rgb_array")
    vector = make_task_env("bread", 2, backend=backend)
    env.reset(seed=0)
    vector.reset(seed=0)
    env.close()
    vector.close()
    for call in (lambda: env.step(env.action_space.sample()), lambda: env.reset(seed=0), env.render,
                 lambda: vector.step(vector.action_space.sample()), lambda: vector.reset(seed=0)):
        with pytest.raises(RuntimeError, match="this env is closed"):
            call()


def test_demo_into_a_missing_folder_or_of_no_episodes_stops_before_running(tmp_path, capsys):
    from training_ground import cli

    for arguments, message in ((["--out", str(tmp_path / "missing" / "a.gif")], "does not exist"),
                               (["--still", str(tmp_path / "missing" / "a.png")], "does not exist"),
                               (["--episodes", "0"], "--episodes and --frame-every must be >= 1")):
        assert cli.main(["demo", "bread", "--backend", "numpy", *arguments]) == 2
        error = capsys.readouterr().err
        assert message in error and "Traceback" not in error and "nan" not in error


def test_the_field_report_title_does_not_round_999_of_1000_up_to_100_percent():
    from training_ground.data.collect import FieldReport

    report = FieldReport.from_totals("TrainingGround/BreadPickPlace-v0", "numpy", "x.hdf5", robots=4,
                                     steps=[100] * 1000, successes=[True] * 999 + [False], wall_time_s=10.0,
                                     cpu_time_s=10.0, control_dt=0.02, machine_cores=2)
    assert "999 succeeded (99.9%)" in report.title() and "100" not in report.title().split("episodes,")[1]


def test_missing_extras_are_named_by_the_project_s_own_install_form():
    from training_ground.data import distributed

    assert 'pip install ".[dist]"' in distributed.RAY_MISSING and "training-ground[" not in distributed.RAY_MISSING
    source = "\n".join(path.read_text() for path in (Path(__file__).parent.parent / "agents").glob("*.py"))
    assert "training-ground[rl]" not in source


def test_collect_reports_progress_when_its_output_is_piped(tmp_path):
    result = subprocess.run([sys.executable, "-m", "training_ground.cli", "collect", "--task", "bread", "--episodes",
                             "2", "--robots", "2", "--set", "max_steps=5", "--out", str(tmp_path / "x.hdf5")],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("collect BreadPickPlace")]
    assert lines and "2/2" in lines[-1] and "\r" not in result.stderr


def test_a_reset_leaves_nothing_of_the_slot_s_previous_cloth_pins():
    vector = make_task_env("wardrobe", 2, max_steps=5)
    try:
        vector.reset(seed=0)
        task = vector.unwrapped.task
        task.engine.components["cloth"]._pin_offset[:] = 0.25  # as a pinned garment of the previous episode leaves it
        vector.reset(seed=[7, 8], options={"reset_mask": np.array([True, False])})
        columns = task.state_layout().columns()["engine.cloth_pin_offset"]
        state = task.get_state()
        assert not state[0, columns].any() and (state[1, columns] == 0.25).all()
    finally:
        vector.close()


def test_collect_with_another_first_seed_than_the_file_s_is_refused_and_the_file_untouched(tmp_path):
    import hashlib

    from training_ground.data.collect import CollectOptions, collect
    from training_ground.data.dataset import stored_seeds

    path = tmp_path / "run.hdf5"
    options = dict(task="bread", episodes=2, out=str(path), robots=2, overrides=["max_steps=5"], progress=False)
    collect(CollectOptions(**options))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ValueError, match=r"holds the seeds 0\.\.1 .* rerun with --seed 0"):
        collect(CollectOptions(**{**options, "seed": 100}))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    result = collect(CollectOptions(**{**options, "episodes": 3}))  # the same first seed extends the file
    assert result.file_episodes == 3 and stored_seeds(path) == {0, 1, 2}


@pytest.mark.parametrize("damage, problem", [
    (lambda handle: handle["data/demo_1/dones"].__setitem__(1, -1), "demo_1: dones holds values other than 0 and 1"),
    (lambda handle: handle["data/demo_0/states"].__setitem__((3, 5), np.nan), "demo_0: states holds NaN or inf"),
    (lambda handle: handle["data"].attrs.__setitem__("state_layout", '"garbage"'),
     "is not a readable state layout"),
], ids=["dones -1", "NaN state", "garbage layout"])
def test_dataset_info_finds_values_that_checksums_cannot_vouch_for(tmp_path, damage, problem):
    import shutil

    import h5py

    from training_ground.data.dataset import inspect_dataset

    path = tmp_path / "damaged.hdf5"
    shutil.copy(Path(__file__).parent / "fixtures" / "datasets" / "bread_numpy.hdf5", path)
    assert inspect_dataset(path).problems == []
    with h5py.File(path, "a") as handle:  # rewritten through h5py: the chunks' checksums still match
        damage(handle)
    assert any(problem in found for found in inspect_dataset(path).problems), inspect_dataset(path).problems


@pytest.mark.parametrize("damage, message", [
    (lambda handle: handle["data/demo_1/dones"].__setitem__(1, -1), "dones holds values other than 0 and 1"),
    (lambda handle: handle.copy("data/demo_0", "data/demo_2"), "demo_0 and demo_2 hold the same seed"),
], ids=["bad value", "seed twice"])
def test_merge_refuses_a_damaged_input_and_writes_nothing(tmp_path, damage, message):
    import shutil

    import h5py

    from training_ground.data.dataset import DatasetError, merge_datasets

    path = tmp_path / "damaged.hdf5"
    shutil.copy(Path(__file__).parent / "fixtures" / "datasets" / "bread_numpy.hdf5", path)
    with h5py.File(path, "a") as handle:
        damage(handle)
    with pytest.raises(DatasetError, match=message):
        merge_datasets([path], tmp_path / "merged.hdf5")
    assert not (tmp_path / "merged.hdf5").exists()


def test_a_resume_over_an_unreadable_journal_entry_collects_that_episode_again(tmp_path):
    from training_ground.data.collect import CollectOptions, collect
    from training_ground.data.dataset import journal_dir, stored_seeds

    path = tmp_path / "run.hdf5"
    options = dict(task="bread", episodes=2, out=str(path), robots=2, overrides=["max_steps=5"], progress=False)
    collect(CollectOptions(**options))
    journal_dir(path).mkdir()
    (journal_dir(path) / "seed_2.hdf5").write_bytes(b"\\x89HDF\\r\\n truncated")  # as a damaged entry would be
    result = collect(CollectOptions(**{**options, "episodes": 3}))
    assert "nothing to do" not in result.message
    assert any("journal entry seed_2.hdf5 is damaged" in notice for notice in result.notices), result.notices
    assert result.file_episodes == 3 and stored_seeds(path) == {0, 1, 2}
