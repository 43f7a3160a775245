"""The GUI render mode and the grasp modes."""

import gymnasium
import numpy as np
import pytest

from training_ground.agents.policies import make_expert

BREAD_ID = "TrainingGround/BreadPickPlace-v0"


def test_human_render_without_display_is_a_clear_error(monkeypatch, open_connections):
    monkeypatch.delenv("DISPLAY", raising=False)
    before = open_connections()
    with pytest.raises(RuntimeError, match="display"):
        gymnasium.make(BREAD_ID, render_mode="human")
    assert open_connections() == before


def test_unknown_grasp_mode_is_refused():
    with pytest.raises(ValueError, match="grasp mode"):
        gymnasium.make(BREAD_ID, grasp="magnetic")


@pytest.mark.parametrize("grasp, expect_weld", [("assisted", True), ("physical", False)])
def test_grasp_mode_decides_whether_the_roll_is_welded(make_bread_env, grasp, expect_weld):
    env = make_bread_env(grasp=grasp)
    expert = make_expert(env)
    observation, _ = env.reset(seed=4)
    expert.reset()
    welded = False
    for _ in range(120):
        observation, _, terminated, truncated, _ = env.step(expert(observation))
        welded |= bool((env.unwrapped.task.engine.objects.welded() >= 0).any())
        if terminated or truncated:
            break
    assert welded == expect_weld
    assert np.all(np.isfinite(observation["bread_pos"]))
