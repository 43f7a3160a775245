"""Smoke runs of ``tground train``, ``tground bc`` and ``tground eval`` in a subprocess, with tiny step counts.

``eval`` of the expert and a random policy needs no learning library; the rest is marked ``rl``
and skipped without stable-baselines3 and torch (the rl extra; CI installs it).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import subprocess
import sys

import pytest

from training_ground.data.dataset import inspect_dataset

HAVE_RL = all(importlib.util.find_spec(name) for name in ("stable_baselines3", "torch"))
needs_rl = pytest.mark.skipif(not HAVE_RL, reason="needs the rl extra (stable-baselines3, torch)")


def tground(*args, cwd, timeout=300):
    return subprocess.run([sys.executable, "-m", "training_ground.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def test_eval_expert_and_random_writes_table_json_and_png(tmp_path):
    # 150 steps leave the expert (about 100 steps an episode) time to finish and cut the random policy short.
    run = tground("eval", "--task", "bread", "--policy", "expert", "random", "--episodes", 4, "--num-envs", 4,
                  "--set", "max_steps=150", "--out", tmp_path / "bread_eval", "--no-progress", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "success rate (95% CI)" in run.stdout and "energy (J)" in run.stdout
    report = json.loads((tmp_path / "bread_eval.json").read_text())
    assert (tmp_path / "bread_eval.png").stat().st_size > 10_000
    expert, random = report["policies"]
    assert (expert["policy"], random["policy"]) == ("expert", "random")
    assert [e["seed"] for e in expert["episodes_detail"]] == [1_000_000 + k for k in range(4)]
    assert expert["success_rate"] >= 0.75 and random["success_rate"] == 0.0
    for summary in (expert, random):
        low, high = summary["success_ci95"]
        assert low <= summary["success_rate"] <= high
        for key in ("length", "path_length", "jerk", "energy"):
            assert summary[key]["mean"] > 0 and math.isfinite(summary[key]["mean"])
    # A random policy times out or knocks the roll off the table (physical grasp: nothing holds it but the hand);
    # the expert finishes early, moves its hand less jerkily and spends less energy.
    assert random["length"]["mean"] <= 150 and random["time_to_success"]["mean"] is None
    assert expert["length"]["mean"] < 150 and 0 < expert["time_to_success"]["mean"] < 3
    assert expert["jerk"]["mean"] < random["jerk"]["mean"]
    assert expert["energy"]["mean"] < random["energy"]["mean"]
    # The expert presses the roll and carries it: contact force; it places it without dropping.
    assert expert["peak_contact_force"]["mean"] > 0.1 and expert["drops"]["mean"] == 0


def test_eval_refuses_bad_input_with_a_clear_message(tmp_path):
    run = tground("eval", "--task", "bread", "--policy", "missing.zip", "--episodes", 1, "--out", tmp_path / "e",
                  cwd=tmp_path)
    assert run.returncode == 2 and "missing.zip: no such file" in run.stderr
    run = tground("eval", "--task", "nosuch", "--episodes", 1, cwd=tmp_path)
    assert run.returncode == 2 and "unknown task" in run.stderr
    run = tground("eval", "--task", "bread", "--episodes", 0, cwd=tmp_path)
    assert run.returncode == 2 and "--episodes" in run.stderr


@pytest.mark.rl
@needs_rl
@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_train_smoke_writes_models_curves_and_an_evaluable_policy(tmp_path, algo):
    out = tmp_path / algo
    extra = ["--n-steps", 16, "--batch-size", 32] if algo == "ppo" else ["--learning-starts", 32, "--gradient-steps", 1,
                                                                          "--sac-batch-size", 32]
    run = tground("train", "--algo", algo, "--task", "bread", "--num-envs", 4, "--total-steps", 128,
                  "--eval-every", 64, "--eval-episodes", 2, "--checkpoint-every", 64, "--set", "max_steps=20",
                  "--net-arch", 32, 32, "--out", out, "--no-progress", *extra, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "final evaluation success" in run.stdout
    for name in ("model.zip", "best_model.zip", "args.json", "summary.json", "learning_curve.csv",
                 "learning_curve.png", "checkpoints/step_64.zip", "checkpoints/step_128.zip"):
        assert (out / name).is_file(), name
    rows = list(csv.DictReader(open(out / "learning_curve.csv")))
    evaluated = [row for row in rows if row["eval_success_rate"] != ""]
    assert [int(row["env_steps"]) for row in evaluated] == [0, 64, 128]
    assert all(float(row["eval_length"]) == 20 for row in evaluated)  # untrained: every episode hits the time limit
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env_steps"] == 128 and summary["final_eval"]["episodes"] == 2
    # The saved model is a policy that tground eval (and collect) loads.
    run = tground("eval", "--task", "bread", "--policy", out / "model.zip", "--episodes", 2, "--set", "max_steps=20",
                  "--out", tmp_path / "trained_eval", "--no-progress", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert json.loads((tmp_path / "trained_eval.json").read_text())["policies"][0]["policy"] == "model"


def test_train_refuses_bad_arguments(tmp_path):
    run = tground("train", "--algo", "dqn", "--out", tmp_path / "x", cwd=tmp_path)
    assert run.returncode == 2 and "unknown --algo 'dqn'" in run.stderr
    run = tground("train", "--num-envs", 0, "--out", tmp_path / "x", cwd=tmp_path)
    assert run.returncode == 2 and "--num-envs must be >= 1" in run.stderr


@pytest.mark.rl
@needs_rl
def test_bc_smoke_from_a_collected_dataset(tmp_path):
    dataset = tmp_path / "demos.hdf5"
    # The dataset's config (150 steps at most) is the env BC evaluates in: short episodes for a clumsy policy.
    run = tground("collect", "--task", "bread", "--robots", 3, "--episodes", 3, "--set", "max_steps=150",
                  "--out", dataset, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    out = tmp_path / "bc"
    run = tground("bc", "--dataset", dataset, "--demos", 1, 3, "--gradient-steps", 200, "--hidden", 32,
                  "--eval-episodes", 2, "--num-envs", 2, "--out", out, "--no-progress", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    results = json.loads((out / "bc_results.json").read_text())["results"]
    assert [r["demos"] for r in results] == [1, 3]
    assert results[0]["samples"] < results[1]["samples"]
    assert all(0 <= r["success_rate"] <= 1 and r["episodes"] == 2 for r in results)
    assert (out / "bc_results.png").is_file() and (out / "demos_3" / "loss.csv").is_file()
    losses = [float(row["mse"]) for row in csv.DictReader(open(out / "demos_3" / "loss.csv"))]
    assert losses[-1] < losses[0] / 2  # the regression fits the demos
    run = tground("eval", "--task", "bread", "--policy", out / "demos_3" / "policy.pt", "--episodes", 2,
                  "--set", "max_steps=40", "--out", tmp_path / "bc_eval", "--no-progress", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    # One policy loader: collect takes the BC policy that eval takes.
    run = tground("collect", "--task", "bread", "--robots", 2, "--episodes", 2, "--set", "max_steps=20",
                  "--policy", out / "demos_3" / "policy.pt", "--out", tmp_path / "bc_rollouts.hdf5", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert inspect_dataset(tmp_path / "bc_rollouts.hdf5").episodes == 2
    run = tground("bc", "--dataset", dataset, "--demos", 50, "--out", out, cwd=tmp_path)
    assert run.returncode == 2 and "holds only 3 successful demos" in run.stderr
