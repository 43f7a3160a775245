"""A policy for the tests that stop a collection mid-run (SIGKILL, Ctrl-C, a killed Ray worker).

``--policy gated_expert:make`` (with this folder on PYTHONPATH) is the task's scripted expert,
action for action, with a gate: while the file named by ``$TG_TEST_GATE`` exists, holding a
number K, the policy stops before its first action once more than K episodes have started, and
waits until the file is removed. So a run that is stopped while the gate is closed cannot have
finished more than K episodes, however fast the machine: a test can wait for a number of finished
episodes (a condition, not a clock) and know the run is still short of the end. Without the file
(a rerun) it is the plain expert.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from training_ground.agents.policies import make_expert


class GatedExpert:
    def __init__(self, env):
        self.expert = make_expert(env)
        gate = os.environ.get("TG_TEST_GATE")
        self.gate = Path(gate) if gate else None
        try:
            self.after = int(self.gate.read_text()) if self.gate is not None else None
        except FileNotFoundError:
            self.after = None
        self.started = 0

    def reset(self, env_mask) -> None:
        self.started += int(np.sum(env_mask))
        self.expert.reset(env_mask)

    def act(self, observation: dict) -> np.ndarray:
        if self.after is not None and self.started > self.after:
            while self.gate.exists():
                time.sleep(0.01)
        return self.expert.act(observation)


def make(env) -> GatedExpert:
    return GatedExpert(env)
