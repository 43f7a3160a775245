"""Shared fixtures: the robot, bread-env factories and a pybullet connection counter."""

from __future__ import annotations

import gymnasium
import numpy as np
import pybullet
import pytest

import training_ground  # noqa: F401  (registers the Gymnasium ids)
from training_ground import robots

BREAD_ID = "TrainingGround/BreadPickPlace-v0"


@pytest.fixture(scope="session")
def robot():
    return robots.load("humanoid43")


@pytest.fixture
def make_bread_env():
    """Factory ``make_bread_env(**kwargs)`` for BreadPickPlace envs; every env made is closed at teardown."""
    made = []

    def factory(**kwargs):
        env = gymnasium.make(BREAD_ID, **kwargs)
        made.append(env)
        return env

    yield factory
    for env in made:
        env.close()


@pytest.fixture
def bread_env(make_bread_env):
    """A default (ee_delta, dense) BreadPickPlace env."""
    return make_bread_env()


def _open_pybullet_connections(limit: int = 200) -> set[int]:
    """Ids of the pybullet physics clients that are connected in this process."""
    connected = set()
    for client_id in range(limit):
        try:
            info = pybullet.getConnectionInfo(physicsClientId=client_id)
        except pybullet.error:
            continue
        if info.get("isConnected", 0):
            connected.add(client_id)
    return connected


@pytest.fixture
def open_connections():
    """``open_connections()``: the set of connected pybullet client ids in this process."""
    return _open_pybullet_connections


@pytest.fixture
def random_actions():
    """``random_actions(space, n, seed)``: n seeded uniform actions of a Box space."""

    def draw(space: gymnasium.spaces.Box, n: int, seed: int) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        return [rng.uniform(space.low, space.high).astype(space.dtype) for _ in range(n)]

    return draw
