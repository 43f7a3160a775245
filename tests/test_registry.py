"""The task registry: one decorator in a task's own file makes the task exist everywhere.

A throwaway task, written into a temporary module outside the package, is loaded into a pytest
run of the registry-wide contract tests (``-p`` imports it before collection); every one of
those tests then runs on it too, and passes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium
import pytest

from training_ground.envs import ALIASES, TASKS, make_task_env, register_task, task_spec
from training_ground.envs.bread import BreadPickPlaceTask

TESTS = Path(__file__).resolve().parent
CONTRACT_FILES = ["test_registry_contracts.py", "test_vector_env.py", "test_sb3_adapter.py", "test_dataset.py"]

THROWAWAY = '''
"""Touch: move a hand to the bread roll (a test's task, registered from outside the package)."""

import numpy as np

from training_ground.envs import BatchedTask, register_task
from training_ground.envs.bread import BreadPickPlaceConfig, BreadPickPlaceTask


@register_task("TrainingGround/ThrowawayTouch-v0", alias="throwaway_touch")
class ThrowawayTouchTask(BreadPickPlaceTask):
    """Version history: v0, made by tests/test_registry.py."""

    reward_names = ("reach",)

    def evaluate(self):
        evaluation = super().evaluate()
        _, site_pos, _, bread = self._frames()
        gap = np.linalg.norm(site_pos - bread[:, None, :3], axis=-1).min(axis=1)
        return {**evaluation, "success": gap < 0.03}

    def reward_terms(self, evaluation):
        return {"reach": super().reward_terms(evaluation)["reach"]}
'''


def test_a_throwaway_task_in_a_temporary_module_is_in_every_registry_wide_contract_test(tmp_path):
    (tmp_path / "throwaway_task.py").write_text(textwrap.dedent(THROWAWAY))
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "throwaway_task", "-p", "no:cacheprovider",
               "-k", "ThrowawayTouch", *[str(TESTS / name) for name in CONTRACT_FILES]]
    collected = subprocess.run([*command, "--collect-only"], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                               env=environment)
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-3000:]
    ids = [line for line in collected.stdout.splitlines() if "ThrowawayTouch" in line]
    # Each registry-wide test of each contract file runs on the new task.
    for name in CONTRACT_FILES:
        assert any(name in line for line in ids), f"no test of {name} ran on the throwaway task"
    assert len(ids) >= 10, ids
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=900, env=environment)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    assert f"{len(ids)} passed" in result.stdout, result.stdout[-2000:]


def test_registration_generates_both_env_classes_and_registers_id_and_alias():
    spec = task_spec("bread")
    assert spec is TASKS["TrainingGround/BreadPickPlace-v0"] and ALIASES["bread"] == spec.id
    assert spec.env_class.__name__ == "BreadPickPlaceEnv" and spec.env_class.task_class is BreadPickPlaceTask
    assert spec.vector_env_class.__name__ == "BreadPickPlaceVectorEnv"
    assert spec.expert == "training_ground.agents.experts:BreadPickPlaceExpert"
    for gym_id in (spec.id, "bread"):
        assert gymnasium.spec(gym_id).entry_point == "training_ground.envs.bread:BreadPickPlaceEnv"
        assert gymnasium.spec(gym_id).vector_entry_point == "training_ground.envs.bread:BreadPickPlaceVectorEnv"


def test_an_alias_works_in_gymnasium_make_and_make_vec():
    env = gymnasium.make("bread", backend="numpy")
    try:
        assert type(env.unwrapped).__name__ == "BreadPickPlaceEnv"
        env.reset(seed=0)
    finally:
        env.close()
    vector = make_task_env("bread", 2, max_steps=5)
    try:
        assert vector.num_envs == 2 and vector.unwrapped.config.max_steps == 5
    finally:
        vector.close()


def test_bad_registrations_are_refused():
    class Other(BreadPickPlaceTask):
        pass

    with pytest.raises(ValueError, match="already registered"):
        register_task("TrainingGround/BreadPickPlace-v0", alias="other_bread")(Other)
    with pytest.raises(ValueError, match="already registered"):
        register_task("TrainingGround/OtherBread-v0", alias="bread")(Other)
    with pytest.raises(ValueError, match="TrainingGround/<Name>-v<N>"):
        register_task("bread-table", alias="x")
    with pytest.raises(TypeError, match="BatchedTask"):
        register_task("TrainingGround/NotATask-v0", alias="not_a_task")(dict)
    assert "TrainingGround/OtherBread-v0" not in TASKS and "other_bread" not in ALIASES


def test_an_unknown_task_names_what_exists():
    with pytest.raises(KeyError, match="known ids.*aliases"):
        task_spec("no_such_task")
