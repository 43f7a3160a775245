"""The episode runner (agents/runner.py): every seed once, in seed order, each as a single env seeded with it."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import training_ground  # noqa: F401
from training_ground.agents.policies import checked_actions, load_policy, random_policy
from training_ground.agents.runner import EpisodeRunner, PolicyRunner
from training_ground.envs import make_task_env


class ObservingRunner(PolicyRunner):
    """Keeps each episode's observations and actions, by seed."""

    def __init__(self, env, seeds, policy):
        super().__init__(env, seeds, policy)
        self.trace: dict[int, list] = {}

    def started(self, env_ids, observation) -> None:
        super().started(env_ids, observation)
        for i in env_ids:
            self.trace[int(self.slot_seed[i])] = [observation["bread_pos"][i].copy()]

    def after_step(self, active, actions, observation, rewards, terminated, truncated, info) -> None:
        for i in active:
            self.trace[int(self.slot_seed[i])].append(observation["bread_pos"][i].copy())


def test_every_seed_runs_once_in_seed_order_and_equals_a_single_env_with_that_seed():
    seeds = [7, 3, 11, 5, 9]  # more seeds than environments: slots are reused through masked resets
    env = make_task_env("bread", 2, max_steps=12)
    try:
        runner = ObservingRunner(env, seeds, load_policy("expert", env))
        ends = runner.run()
    finally:
        env.close()
    assert [end.seed for end in ends] == seeds
    assert all(end.steps == 12 and end.done for end in ends)
    assert sorted({end.slot for end in ends}) == [0, 1]
    single = gymnasium.make("bread", backend="numpy", max_steps=12)
    try:
        from training_ground.agents.policies import make_expert

        for seed in seeds:
            expert = make_expert(single)
            observation, _ = single.reset(seed=seed)
            expert.reset()
            positions = [observation["bread_pos"]]
            for _ in range(12):
                observation, *_ = single.step(expert(observation))
                positions.append(observation["bread_pos"])
            np.testing.assert_array_equal(np.array(runner.trace[seed]), np.array(positions))
    finally:
        single.close()


class CuttingRunner(EpisodeRunner):
    """Zero actions; ends each episode after as many steps as its seed."""

    def actions(self, observation, active):
        return np.zeros(self.env.action_space.shape, dtype=self.env.action_space.dtype)

    def cut(self, active):
        return self.steps >= self.slot_seed


def test_a_caller_can_end_episodes_early_and_the_end_says_the_env_did_not():
    env = make_task_env("bread", 2)
    try:
        ends = CuttingRunner(env, [3, 1, 2]).run()
    finally:
        env.close()
    assert [(end.seed, end.steps, end.done) for end in ends] == [(3, 3, False), (1, 1, False), (2, 2, False)]


@pytest.mark.parametrize("seeds", [[1, 1], [-1]])
def test_repeated_or_negative_seeds_are_refused(seeds):
    env = make_task_env("bread", 1)
    try:
        with pytest.raises(ValueError, match="distinct seeds"):
            CuttingRunner(env, seeds).run()
    finally:
        env.close()


def test_a_policy_that_returns_bad_actions_is_refused_by_name():
    env = make_task_env("bread", 2)
    try:
        env.reset(seed=0)
        observation, _ = env.reset(seed=0)
        bad = load_policy("random", env)
        bad._act = lambda observation: np.zeros((2, 3))
        with pytest.raises(ValueError, match="policy 'random' returned actions of shape"):
            checked_actions(bad, observation, env.action_space)
        actions = checked_actions(random_policy(env, 0), observation, env.action_space)
        assert actions.shape == env.action_space.shape and actions.dtype == env.action_space.dtype
    finally:
        env.close()


@pytest.mark.parametrize("spec, message", [("nonsense", "--policy must be"), ("no_such_module:make", "cannot import"),
                                           ("missing.zip", "no such file")])
def test_bad_policy_specs_say_what_is_wrong(spec, message):
    env = make_task_env("bread", 1)
    try:
        with pytest.raises(ValueError, match=message):
            load_policy(spec, env)
    finally:
        env.close()
