"""The balance floor: a humanoid standing free on its own feet, pushed at the torso.

The robot has a floating base: nothing holds it but its feet on the floor. Pushes are
horizontal forces on the robot's torso link (``robot.torso_link``), drawn per episode (:func:`sample_pushes`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..physics.scene import Camera, Scene

#: Start height margin above the floor so that the feet do not begin in penetration (m).
DROP_MARGIN = 0.005


def stand_scene(standing_base_height: float) -> Scene:
    return Scene(
        name="balance_floor",
        static_boxes=(),
        object_names=(),
        robot_position=(0.0, 0.0, standing_base_height + DROP_MARGIN),
        fixed_base=False,
        floor_friction=0.9,
        camera=Camera(target=(0.0, 0.0, 0.9), distance=2.3, yaw=50.0, pitch=-12.0, width=400, height=300),
    )


@dataclass(frozen=True)
class PushRandomization:
    """Pushes per episode and the uniform ranges they are drawn from.

    Each push is a horizontal force of ``magnitude_range`` N in a uniformly random direction
    held for ``duration_range`` s; start times fall in ``start_range`` s, spread so that pushes
    do not overlap (each starts at least ``min_gap`` s after the previous one ends).
    """

    count: int = 2
    magnitude_range: tuple[float, float] = (60.0, 140.0)
    duration_range: tuple[float, float] = (0.1, 0.2)
    start_range: tuple[float, float] = (0.6, 4.0)
    min_gap: float = 1.2


def sample_pushes(rng: np.random.Generator, ranges: PushRandomization) -> np.ndarray:
    """Pushes (count, 5): start (s), end (s), force x, y, z (N); sorted by start time."""
    pushes = np.zeros((ranges.count, 5))
    start = ranges.start_range[0]
    span = ranges.start_range[1] - ranges.start_range[0]
    # Equal slots across the window, one push at a random time inside each: never overlapping.
    slot = span / max(ranges.count, 1)
    for i in range(ranges.count):
        duration = rng.uniform(*ranges.duration_range)
        begin = start + i * slot + rng.uniform(0.0, max(slot - duration - ranges.min_gap, 0.0))
        angle = rng.uniform(0.0, 2 * np.pi)
        magnitude = rng.uniform(*ranges.magnitude_range)
        pushes[i] = (begin, begin + duration, magnitude * np.cos(angle), magnitude * np.sin(angle), 0.0)
    return pushes


def push_force(pushes: np.ndarray, time: np.ndarray) -> np.ndarray:
    """The force (N, 3) each environment's push schedule (N, count, 5) applies at its time (N,) s."""
    active = (pushes[..., 0] <= time[:, None]) & (time[:, None] < pushes[..., 1])
    return (pushes[..., 2:] * active[..., None]).sum(axis=1)
