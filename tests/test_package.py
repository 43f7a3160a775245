"""Packaging: one import package ``training_ground``, no stray top-level modules, idempotent registration."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import gymnasium
import pytest

import training_ground
from training_ground import envs as tg_envs

BREAD_ID = "TrainingGround/BreadPickPlace-v0"


def run_python(code: str, cwd) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter from ``cwd`` (outside the repository)."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_import_from_outside_the_repo(tmp_path):
    result = run_python("""
        import training_ground
        import gymnasium
        assert "TrainingGround/BreadPickPlace-v0" in gymnasium.registry
        print("ok", training_ground.__version__)
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


@pytest.mark.parametrize("name", ["envs", "agents", "robots", "physics", "scenes", "benchmarks", "data"])
def test_subpackages_are_not_top_level_modules(tmp_path, name):
    result = run_python(f"""
        import training_ground
        try:
            import {name}
        except ModuleNotFoundError:
            print("not found")
        else:
            print("FOUND", {name}.__file__)
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "not found", result.stdout


def test_subpackages_live_under_training_ground():
    import training_ground.agents.experts
    import training_ground.physics.engine
    import training_ground.robots
    import training_ground.scenes.bread  # noqa: F401

    assert training_ground.envs.bread.BreadPickPlaceEnv.__module__ == "training_ground.envs.bread"


def test_import_twice_and_register_all_twice_are_idempotent(tmp_path):
    result = run_python("""
        import importlib, warnings
        warnings.simplefilter("error")  # a re-registration warning would fail here
        import gymnasium
        import training_ground
        ids = sorted(k for k in gymnasium.registry if k.startswith("TrainingGround/"))
        import training_ground
        importlib.reload(training_ground.envs)
        training_ground.envs.register_all()
        training_ground.envs.register_all()
        again = sorted(k for k in gymnasium.registry if k.startswith("TrainingGround/"))
        assert ids == again == sorted(training_ground.envs.TASKS), (ids, again)
        assert "TrainingGround/BreadPickPlace-v0" in ids
        print("ok")
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_register_all_in_process_keeps_the_spec():
    spec = gymnasium.spec(BREAD_ID)
    tg_envs.register_all()
    tg_envs.register_all()
    assert gymnasium.spec(BREAD_ID) is spec
    assert spec.entry_point == "training_ground.envs.bread:BreadPickPlaceEnv"


def test_gymnasium_make_after_import():
    env = gymnasium.make(BREAD_ID)
    try:
        assert env.spec.id == BREAD_ID
        observation, info = env.reset(seed=0)
        assert "bread_pos" in observation
        assert isinstance(env.unwrapped, tg_envs.bread.BreadPickPlaceEnv)
    finally:
        env.close()


def test_version_is_a_string():
    assert isinstance(training_ground.__version__, str) and training_ground.__version__
