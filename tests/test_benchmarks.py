"""Smoke runs of the benchmarks: they finish, and write a table, JSON and a PNG with the promised fields."""

import json
import subprocess
import sys

import numpy as np
import pytest


def test_engine_benchmark_writes_json_and_png(tmp_path):
    out, png = tmp_path / "engine.json", tmp_path / "engine.png"
    result = subprocess.run(
        [sys.executable, "-m", "training_ground.cli", "bench", "engine", "--num-envs", "1", "4",
         "--engines", "numpy", "pybullet", "--seconds", "0.05", "--workers", "2", "--pybullet-max", "2", "--profile", "8", "--contact-num-envs", "2",
         "--memory-num-envs", "1024", "--stable-step", "0", "--json", str(out), "--png", str(png)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert [row["num_envs"] for row in data["rows"]] == [1, 4]
    for row in data["rows"]:
        assert row["env_steps_per_s"]["numpy"] > 0 and row["env_steps_per_s"]["pybullet"] > 0
        assert row["numpy_over_pybullet"] == row["env_steps_per_s"]["numpy"] / row["env_steps_per_s"]["pybullet"]
    assert data["rows"][1]["extrapolated"] == ["pybullet"]
    assert data["step_profile_ms"]["num_envs"] == 8 and data["step_profile_ms"]["whole step"] > 0
    assert data["contact_row"]["num_envs"] == 2 and data["contact_row"]["env_steps_per_s"]["numpy"] > 0
    memory = {row["engine"]: row for row in data["memory"]}
    # (At a few environments the allocator's reuse of freed memory hides them: measured at 1024.)
    assert memory["numpy"]["num_envs"] == 1024 and memory["pybullet"]["num_envs"] == 2  # --pybullet-max
    # An environment holds at least its generalised state (50 positions, 49 velocities in float64).
    assert all(row["bytes_per_env"] > 99 * 8 for row in memory.values())
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "numpy/pybullet" in result.stdout and "per environment" in result.stdout


def test_engine_benchmark_finds_each_engine_s_largest_stable_step(tmp_path):
    out = tmp_path / "engine.json"
    result = subprocess.run(
        [sys.executable, "-m", "training_ground.cli", "bench", "engine", "--num-envs", "2", "--engines", "numpy",
         "mujoco", "--seconds", "0.05", "--workers", "1", "--profile", "0", "--contact-num-envs", "0",
         "--memory-num-envs", "0", "--stable-step", "2", "--json", str(out), "--png", str(tmp_path / "engine.png")],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    row = json.loads(out.read_text())["stable_step_row"]
    assert row["error_bound"] == pytest.approx(1.25 * row["reference_rms_error"]) and row["reference_rms_error"] > 0
    engines = row["engines"]
    assert set(engines) == {"numpy, implicit", "numpy, damping implicit", "numpy, explicit", "mujoco implicitfast",
                            "mujoco implicit"}
    for entry in engines.values():
        assert entry["rms_error"] <= row["error_bound"] and entry["simulated_s_per_wall_s"] > 0
        larger = [error for step, error in entry["errors"].items()
                  if 1 / int(step.split("/")[1]) > entry["largest_stable_step"]]
        assert all(error > row["error_bound"] for error in larger)  # every larger step tried was worse
    # Implicit damping buys a larger step than the explicit law (what pybullet runs) on the same model.
    assert engines["numpy, damping implicit"]["largest_stable_step"] > engines["numpy, explicit"]["largest_stable_step"]
    assert "simulated s / wall s" in result.stdout


def test_engine_benchmark_without_mujoco_says_how_to_install_it(tmp_path):
    code = "import sys; sys.modules['mujoco'] = None; from training_ground.cli import main; sys.exit(main(" \
           "['bench', 'engine', '--num-envs', '1', '--seconds', '0.01']))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2
    assert 'pip install ".[bench]"' in result.stderr and "Traceback" not in result.stderr


def test_envs_benchmark_compares_backends_for_each_task(tmp_path):
    out, png = tmp_path / "envs.json", tmp_path / "envs.png"
    result = subprocess.run(
        [sys.executable, "-m", "training_ground.cli", "bench", "envs", "--tasks", "bread", "stand", "--num-envs", "1",
         "2", "--seconds", "0.2", "--workers", "1", "--pybullet-max", "1", "--contact-num-envs", "2",
         "--json", str(out), "--png", str(png)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert list(data["tasks"]) == ["TrainingGround/BreadPickPlace-v0", "TrainingGround/Stand-v0"]
    for rows in data["tasks"].values():
        assert [row["num_envs"] for row in rows] == [1, 2]
        assert all(row["env_steps_per_s"]["numpy"] > 0 and row["env_steps_per_s"]["pybullet"] > 0 for row in rows)
        assert rows[1]["extrapolated"] == ["pybullet"]
    contact = data["contact_row"]
    assert contact["num_envs"] == 2 and contact["env_steps_per_s"]["numpy"] > 0
    assert data["layout"] and png.read_bytes()[:4] == b"\x89PNG"


def test_envs_benchmark_takes_task_config_overrides(tmp_path):
    out = tmp_path / "envs.json"
    result = subprocess.run(
        [sys.executable, "-m", "training_ground.cli", "bench", "envs", "--tasks", "bread", "--num-envs", "2",
         "--seconds", "0.2", "--workers", "1", "--repeats", "1", "--backends", "numpy", "--no-layout",
         "--contact-num-envs", "0", "--set", "grasp=physical", "--json", str(out), "--png", str(tmp_path / "e.png")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert data["overrides"] == {"grasp": "physical"}
    assert data["tasks"]["TrainingGround/BreadPickPlace-v0"][0]["env_steps_per_s"]["numpy"] > 0
    bad = subprocess.run([sys.executable, "-m", "training_ground.cli", "bench", "envs", "--tasks", "wardrobe",
                          "--num-envs", "1", "--seconds", "0.1", "--set", "grasp=physical", "--json",
                          str(tmp_path / "bad.json"), "--png", str(tmp_path / "bad.png")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert bad.returncode != 0 and "cloth is held by the pin rule" in bad.stderr


def test_envs_benchmark_measures_what_cameras_cost(tmp_path):
    out = tmp_path / "envs.json"
    result = subprocess.run(
        [sys.executable, "-m", "training_ground.cli", "bench", "envs", "--tasks", "bread", "--num-envs", "1",
         "--seconds", "0.3", "--workers", "2", "--repeats", "1", "--no-layout", "--contact-num-envs", "0",
         "--pybullet-max", "1", "--render-num-envs", "1", "3", "--render-size", "24", "16", "--camera-episodes", "2",
         "--camera-robots", "2", "--set", "max_steps=15", "--json", str(out), "--png", str(tmp_path / "e.png")],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    rows = {(row["backend"], row["num_envs"]): row for row in data["render"]}
    assert sorted(rows) == [("numpy", 1), ("numpy", 3), ("pybullet", 1)]  # pybullet to --pybullet-max
    assert rows[("numpy", 3)]["render_workers"] == 2 and rows[("numpy", 1)]["render_workers"] == 1
    for row in rows.values():
        assert row["frames"] > 0 and row["frames_per_core_s"] > 0 and (row["width"], row["height"]) == (24, 16)
    collection = {row["mode"]: row for row in data["camera_collection"]}
    assert list(collection) == ["state only", "head camera RGB at 10 Hz", "head camera RGB-D every step"]
    assert all(row["episodes"] == 2 and row["episodes_per_core_day"] > 0 for row in collection.values())
    assert collection["head camera RGB-D every step"]["mib_per_episode"] > collection["state only"]["mib_per_episode"]
    assert (tmp_path / "e.png").stat().st_size > 0


def test_expert_success_table_runs_every_engine(tmp_path):
    out, png = tmp_path / "experts.json", tmp_path / "experts.png"
    result = subprocess.run(
        [sys.executable, "-m", "training_ground.cli", "bench", "experts", "--tasks", "stand", "--episodes", "2",
         "--json", str(out), "--png", str(png)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    row = json.loads(out.read_text())["tasks"]["TrainingGround/Stand-v0"]
    assert row["numpy"]["successes"] == row["pybullet"]["successes"] == 2 and row["meets_bar"]
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_expert_success_table_records_the_seeds_that_failed(tmp_path, monkeypatch):
    """Before 2026-12-02 a run in which any seed failed crashed writing its JSON (numpy integers in the seed
    list): the compact43 table had no file."""
    import argparse

    from training_ground.benchmarks import expert_success

    monkeypatch.setattr(expert_success, "run_expert_batch", lambda task_id, backend, episodes, seed, progress, robot,
                        grasp, overrides: (np.array([True, False, True]), np.array([10, 300, 12], dtype=np.int64)))
    out, png = tmp_path / "experts.json", tmp_path / "experts.png"
    args = argparse.Namespace(tasks=["stand"], backends=["numpy"], episodes=3, seed=5, robots=["humanoid43"],
                              grasp=None, json=str(out), png=str(png))
    assert expert_success.main(args) == 1  # 2 of 3 is under the bar
    row = json.loads(out.read_text())["tasks"]["TrainingGround/Stand-v0"]
    assert row["numpy"]["failed_seeds"] == [6] and row["numpy"]["successes"] == 2


def test_expert_success_table_refuses_a_bad_override_before_it_runs(tmp_path, monkeypatch):
    import argparse

    from training_ground.benchmarks import expert_success
    from training_ground.envs.config import ConfigError

    ran = []
    monkeypatch.setattr(expert_success, "run_expert_batch", lambda *a, **k: ran.append(a) or (np.ones(1, bool),
                                                                                           np.ones(1)))
    out = tmp_path / "experts.json"
    for bad, message in ((["max_stepz=3"], "unknown config key"), (["robot_revision=1.5"], "whole number")):
        args = argparse.Namespace(tasks=["bread"], backends=["numpy"], episodes=1, seed=0, robots=["humanoid43"],
                                  grasp=["assisted"], overrides=bad, json=str(out), png=str(tmp_path / "e.png"))
        with pytest.raises(ConfigError, match=message):
            expert_success.main(args)
    assert not ran and not out.exists()


def test_expert_success_table_has_a_row_per_grasp_mode_and_leaves_cloth_out_of_the_physical_rows(tmp_path, monkeypatch):
    import argparse

    from training_ground.benchmarks import expert_success

    calls = []
    monkeypatch.setattr(expert_success, "run_expert_batch", lambda task_id, backend, episodes, seed, progress, robot,
                        grasp, overrides: calls.append((task_id, grasp)) or (np.ones(2, bool), np.full(2, 50)))
    out = tmp_path / "experts.json"
    args = argparse.Namespace(tasks=["bread", "wardrobe"], backends=["numpy"], episodes=2, seed=0, robots=["humanoid43"],
                              grasp=["assisted", "physical"], json=str(out), png=str(tmp_path / "experts.png"))
    expert_success.main(args)
    # A row in its task's default mode (bread: physical, cloth: assisted) is keyed by the task alone.
    assert sorted(json.loads(out.read_text())["tasks"]) == [
        "TrainingGround/BreadPickPlace-v0", "TrainingGround/BreadPickPlace-v0 [assisted]",
        "TrainingGround/WardrobeFold-v0"]
    assert ("TrainingGround/WardrobeFold-v0", "physical") not in calls
    calls.clear()
    expert_success.main(argparse.Namespace(**{**vars(args), "grasp": None}))  # each task's default
    assert calls == [("TrainingGround/BreadPickPlace-v0", "physical"), ("TrainingGround/WardrobeFold-v0", "assisted")]


def test_step_size_study_measures_every_engine_at_every_rate(tmp_path):
    out, png = tmp_path / "steps.json", tmp_path / "steps.png"
    result = subprocess.run(
        [sys.executable, "-m", "training_ground.cli", "bench", "steps", "--tasks", "stand", "--rates", "500", "200",
         "--episodes", "2", "--json", str(out), "--png", str(png)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    points = json.loads(out.read_text())["points"]
    assert sorted((p["backend"], p["drive"], p["physics_hz"]) for p in points) == [
        ("numpy", "damping_implicit", 200), ("numpy", "damping_implicit", 500), ("numpy", "implicit", 200),
        ("numpy", "implicit", 500), ("pybullet", "explicit", 200), ("pybullet", "explicit", 500)]
    refused = [p for p in points if "refused" in p]
    # pybullet's explicit law cannot integrate humanoid43's ankle gains at 200 Hz: refused, saying so.
    assert [(p["backend"], p["physics_hz"]) for p in refused] == [("pybullet", 200)]
    assert "unstable under the explicit drive law" in refused[0]["refused"] and "refused" in result.stdout
    for point in (p for p in points if "refused" not in p):
        assert point["episodes"] == 2 and 0.0 <= point["success_rate"] <= 1.0
        assert point["tracking_rms_mean"] > 0 and point["tracking_rms_max"] >= point["tracking_rms_mean"]
        assert point["penetration_max"] > 0.0  # standing: the soles are pressed into the floor by the weight
    default = [p for p in points if p["physics_hz"] == 500]
    assert all(p["success_rate"] == 1.0 and p["penetration_max"] < 0.01 for p in default)  # at the default rate
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("arguments, message", [
    (["steps", "--rates", "333"], "--rates [333]: each rate must be a multiple of the 50 Hz control"),
    (["steps", "--rates", "150"], "at least 200 Hz"),
    (["steps", "--episodes", "0"], "--episodes must be >= 1"),
    (["engine", "--stable-step", "-1"], "--stable-step must be >= 0"),
    (["engine", "--memory-num-envs", "-8"], "--memory-num-envs must be >= 0"),
], ids=["rate not a multiple", "rate too low", "no episodes", "negative stable-step", "negative memory"])
def test_new_benchmark_options_refuse_bad_values_before_running(tmp_path, arguments, message):
    out = tmp_path / "out.json"
    result = subprocess.run([sys.executable, "-m", "training_ground.cli", "bench", *arguments, "--json", str(out),
                             "--png", str(tmp_path / "out.png")], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not out.exists()


@pytest.mark.parametrize("benchmark", ["experts", "envs", "steps"])
def test_task_benchmarks_refuse_an_unknown_task_clearly(tmp_path, benchmark):
    out = tmp_path / "out.json"
    result = subprocess.run(
        [sys.executable, "-m", "training_ground.cli", "bench", benchmark, "--tasks", "nosuch", "--json", str(out),
         "--png", str(tmp_path / "out.png")], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2 and "unknown task 'nosuch'" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
