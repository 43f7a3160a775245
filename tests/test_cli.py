"""The ``tground`` command line, run as a subprocess from outside the repository."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BREAD_ID = "TrainingGround/BreadPickPlace-v0"


def tground_executable() -> str:
    beside_python = Path(sys.executable).parent / "tground"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("tground")
    assert found, "the tground console script is not installed (pip install -e .)"
    return found


def tground(*args: str, cwd, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([tground_executable(), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_help_lists_subcommands(tmp_path):
    result = tground("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "demo" in result.stdout
    assert "bench" in result.stdout


def test_no_command_prints_help(tmp_path):
    result = tground(cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "demo" in result.stdout


def test_demo_help(tmp_path):
    result = tground("demo", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for option in ("--backend", "--episodes", "--out", "--seed"):
        assert option in result.stdout


def test_bench_help(tmp_path):
    result = tground("bench", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_demo_writes_gif(tmp_path):
    from PIL import Image

    out = tmp_path / "demo.gif"
    result = tground("demo", BREAD_ID, "--backend", "pybullet", "--episodes", "1", "--seed", "100",
                     "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = result.stdout + result.stderr
    assert re.search(r"episode 0 .*\b(success|failure)\b", text), text
    assert "success rate" in text
    assert "Traceback" not in result.stderr
    assert out.exists() and out.stat().st_size > 0
    with Image.open(out) as image:
        assert image.format == "GIF"
        assert image.n_frames > 1
        assert image.size[0] > 10 and image.size[1] > 10


def test_demo_unknown_task(tmp_path):
    result = tground("demo", "NotATask", "--episodes", "1", cwd=tmp_path)
    assert result.returncode != 0
    assert "unknown task" in result.stderr.lower()
    assert "Traceback" not in result.stderr


def test_demo_unknown_backend(tmp_path):
    result = tground("demo", BREAD_ID, "--backend", "nope", "--episodes", "1", cwd=tmp_path)
    assert result.returncode != 0
    assert "backend" in result.stderr.lower()
    assert "Traceback" not in result.stderr


def test_demo_batch_runs_every_episode_in_the_vector_env(tmp_path):
    result = tground("demo", "bread", "--backend", "numpy", "--episodes", "3", "--seed", "7", "--batch",
                     "--json", "out.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    import json

    data = json.loads((tmp_path / "out.json").read_text())
    assert data["seeds"] == [7, 8, 9] and len(data["success"]) == 3 and data["backend"] == "numpy"
    assert "success rate" in result.stdout
    refused = tground("demo", "bread", "--batch", "--out", "x.gif", cwd=tmp_path)
    assert refused.returncode == 2 and "--batch" in refused.stderr and "Traceback" not in refused.stderr


def test_bad_input_is_one_line_and_exit_2_but_a_bug_keeps_its_traceback(monkeypatch, tmp_path, capsys):
    from training_ground import cli
    from training_ground.data import collect
    from training_ground.errors import InputError

    arguments = ["collect", "--task", "bread", "--episodes", "1", "--out", str(tmp_path / "x.hdf5")]

    def bad_input(options):
        raise InputError("--episodes: not like that")

    monkeypatch.setattr(collect, "collect", bad_input)
    assert cli.main(arguments) == 2
    # After the size estimate's line (data/collect.py check_size), the error's one line.
    assert capsys.readouterr().err.strip().splitlines()[-1] == "tground collect: error: --episodes: not like that"

    def bug(options):
        raise ValueError("an internal bug")

    monkeypatch.setattr(collect, "collect", bug)
    with pytest.raises(ValueError, match="an internal bug"):  # not swallowed into exit 2: Python prints the traceback
        cli.main(arguments)
    assert not (tmp_path / "x.hdf5").exists()
