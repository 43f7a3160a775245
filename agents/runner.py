"""The one episode runner: a list of seeds run on a native VectorEnv through masked resets.

Every loop that runs episodes is this one: collection, replay, evaluation, the expert
benchmark, the demo command and training-time evaluation. Episode k of the list runs in
whichever environment is free next; it is reset alone with its own seed (a masked
``reset(seed=[...], options={"reset_mask": ...})``), so no autoreset ever picks a seed and
episode k rolls out exactly as a single env reset with that seed would.

A caller subclasses :class:`EpisodeRunner` and fills in the hooks it needs: what to do when
episodes start, the actions of a step, what to record around a step, when a caller ends an
episode early (replay does, at the recorded length) and what to keep when an episode ends.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from .policies import checked_actions


@dataclass
class EpisodeEnd:
    """How one episode ended: its seed and slot (environment index), length and flags."""

    seed: int
    slot: int
    steps: int
    success: bool
    diverged: bool
    done: bool  # the env ended it (terminated or truncated); False where the caller cut it short


class EpisodeRunner:
    """Runs ``seeds`` on ``env``, ``env.num_envs`` at a time; :meth:`run` returns the EpisodeEnds in seed order."""

    def __init__(self, env, seeds):
        self.env = env
        self.task = env.unwrapped.task
        self.num_envs = env.num_envs
        self.seeds = [int(seed) for seed in seeds]
        self.slot_seed = np.full(self.num_envs, -1, dtype=np.int64)  # -1: idle
        self.steps = np.zeros(self.num_envs, dtype=np.int64)

    # ------------------------------------------------------------------ hooks
    def started(self, env_ids: np.ndarray, observation: dict) -> None:
        """Episodes began in ``env_ids`` (``slot_seed`` holds their seeds); ``observation`` is the whole batch's."""

    def actions(self, observation: dict, active: np.ndarray) -> np.ndarray:
        """The batch's actions (num_envs, A); rows of idle environments are ignored."""
        raise NotImplementedError

    def before_step(self, active: np.ndarray) -> None:
        """Called before every step with the indices of the environments running an episode."""

    def after_step(self, active: np.ndarray, actions, observation, rewards, terminated, truncated, info) -> None:
        """Called after every step, before any episode that ended is replaced; ``terminated`` and ``truncated``
        as the env returned them (a terminal state, or an end by time limit or divergence)."""

    def cut(self, active: np.ndarray) -> np.ndarray:
        """(num_envs,) bool: episodes the caller ends now although the env has not."""
        return np.zeros(self.num_envs, dtype=bool)

    def ended(self, ends: list[EpisodeEnd], info: dict) -> None:
        """Episodes ended this step (the env's state is still their last one)."""

    # ------------------------------------------------------------------ the loop
    def _start(self, env_ids, pending: deque):
        n = self.num_envs
        seeds, mask = [0] * n, np.zeros(n, dtype=bool)
        for i in env_ids:
            self.slot_seed[i] = pending.popleft() if pending else -1
            if self.slot_seed[i] >= 0:
                seeds[i], mask[i] = int(self.slot_seed[i]), True
        if not mask.any():
            return None
        observation, _ = self.env.reset(seed=seeds, options={"reset_mask": mask})
        started = np.flatnonzero(mask)
        self.steps[started] = 0
        self.started(started, observation)
        return observation

    def run(self) -> list[EpisodeEnd]:
        if len(set(self.seeds)) != len(self.seeds) or any(seed < 0 for seed in self.seeds):
            raise ValueError("the runner takes distinct seeds >= 0")
        pending = deque(self.seeds)
        ends: list[EpisodeEnd] = []
        observation = self._start(range(self.num_envs), pending)
        while observation is not None and (self.slot_seed >= 0).any():
            active = np.flatnonzero(self.slot_seed >= 0)
            self.before_step(active)
            actions = self.actions(observation, active)
            next_observation, rewards, terminated, truncated, info = self.env.step(actions)
            self.steps[active] += 1
            done = terminated | truncated
            self.after_step(active, actions, next_observation, rewards, terminated, truncated, info)
            cut = self.cut(active)
            finished = [int(i) for i in active if done[i] or cut[i]]
            if finished:
                batch = [EpisodeEnd(int(self.slot_seed[i]), i, int(self.steps[i]), bool(info["is_success"][i]),
                                    bool(info["diverged"][i]), bool(done[i])) for i in finished]
                self.ended(batch, info)
                ends.extend(batch)
                fresh = self._start(finished, pending)
                if fresh is not None:
                    next_observation = fresh
            observation = next_observation
        order = {seed: k for k, seed in enumerate(self.seeds)}
        return sorted(ends, key=lambda end: order[end.seed])


class PolicyRunner(EpisodeRunner):
    """A runner whose actions come from a Policy (agents/policies.py), reset as its episodes start."""

    def __init__(self, env, seeds, policy, on_end=None):
        super().__init__(env, seeds)
        self.policy = policy
        self.on_end = on_end

    def started(self, env_ids, observation) -> None:
        mask = np.zeros(self.num_envs, dtype=bool)
        mask[env_ids] = True
        self.policy.reset(mask)

    def actions(self, observation, active):
        return checked_actions(self.policy, observation, self.env.action_space)

    def ended(self, ends, info) -> None:
        if self.on_end is not None:
            for end in ends:
                self.on_end(end)
