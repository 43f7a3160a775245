"""The bread table: a humanoid on a stand at a table, a basket, and one randomly placed bread roll.

Layout (world frame, x forward from the robot, y to its left): the table top spans
x in [0.30, 0.80] at 0.95 m; the basket stands left of centre; the roll appears in the
right-hand region in front of the robot's right arm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..physics.rotations import quat_multiply
from ..physics.scene import Camera, ObjectParams, Scene, StaticBox
from ..robots import humanoid43
from .base import table_boxes

TABLE_HEIGHT = 0.95
TABLE_CENTER = (0.55, 0.0)
TABLE_HALF = (0.25, 0.60)
BASKET_CENTER = (0.47, -0.02)
BASKET_INNER_HALF = (0.10, 0.10)
BASKET_WALL = 0.008
BASKET_HEIGHT = 0.07
#: Where the scenes mount a robot that does not say (humanoid43's standing height).
ROBOT_BASE_HEIGHT = humanoid43.STANDING_BASE_HEIGHT
#: The point on the table the arms work around (between the roll's region and the basket): a robot of other
#: proportions is mounted for the same reach to it (scenes/base.py table_mount).
WORK_POINT = (0.45, -0.15, TABLE_HEIGHT)


def _basket_boxes() -> list[StaticBox]:
    cx, cy = BASKET_CENTER
    hx, hy = BASKET_INNER_HALF
    w, h, z0 = BASKET_WALL, BASKET_HEIGHT, TABLE_HEIGHT
    color = (0.55, 0.38, 0.2, 1.0)
    return [
        StaticBox("basket_floor", (cx, cy, z0 + w / 2), (hx + 2 * w, hy + 2 * w, w / 2), rgba=color),
        StaticBox("basket_wall_front", (cx + hx + w, cy, z0 + h / 2), (w, hy + 2 * w, h / 2), rgba=color),
        StaticBox("basket_wall_back", (cx - hx - w, cy, z0 + h / 2), (w, hy + 2 * w, h / 2), rgba=color),
        StaticBox("basket_wall_left", (cx, cy + hy + w, z0 + h / 2), (hx, w, h / 2), rgba=color),
        StaticBox("basket_wall_right", (cx, cy - hy - w, z0 + h / 2), (hx, w, h / 2), rgba=color),
    ]


def _table_boxes() -> list[StaticBox]:
    return table_boxes(TABLE_CENTER, TABLE_HALF, TABLE_HEIGHT)


def bread_scene(robot_base_height: float = ROBOT_BASE_HEIGHT, robot_forward: float = 0.0) -> Scene:
    """The scene with the robot's base mounted ``robot_base_height`` above the floor (its standing height:
    feet on the floor), humanoid43's by default, and ``robot_forward`` towards the table (scenes/base.py
    table_mount places a robot of other proportions)."""
    return Scene(
        name="bread_table",
        static_boxes=tuple(_table_boxes() + _basket_boxes()),
        object_names=("bread",),
        robot_position=(robot_forward, 0.0, robot_base_height),
        fixed_base=True,
        camera=Camera(target=(0.35, -0.08, 1.12), distance=1.75, yaw=60.0, pitch=-25.0, width=400, height=300),
    )


@dataclass(frozen=True)
class BreadRandomization:
    """Ranges the bread roll is drawn from at every reset (uniform)."""

    x_range: tuple[float, float] = (0.38, 0.50)
    y_range: tuple[float, float] = (-0.34, -0.20)
    yaw_range: tuple[float, float] = (-np.pi / 2, np.pi / 2)
    radius_range: tuple[float, float] = (0.028, 0.036)
    length_range: tuple[float, float] = (0.04, 0.08)
    mass_range: tuple[float, float] = (0.05, 0.15)
    friction_range: tuple[float, float] = (0.6, 1.0)


def sample_bread(rng: np.random.Generator, ranges: BreadRandomization) -> tuple[ObjectParams, np.ndarray]:
    """Draw the roll's parameters and its resting pose (a capsule lying on the table)."""
    params = ObjectParams(
        shape="capsule",
        size=(float(rng.uniform(*ranges.radius_range)), float(rng.uniform(*ranges.length_range))),
        mass=float(rng.uniform(*ranges.mass_range)),
        friction=float(rng.uniform(*ranges.friction_range)),
        rgba=(0.8, 0.55, 0.25, 1.0),
    )
    yaw = rng.uniform(*ranges.yaw_range)
    # Lying capsule: its axis (local z) rotated onto the horizontal, then turned by yaw.
    half = np.pi / 4
    lie = np.array([np.sin(half), 0.0, 0.0, np.cos(half)])
    turn = np.array([0.0, 0.0, np.sin(yaw / 2), np.cos(yaw / 2)])
    quaternion = quat_multiply(turn, lie)
    position = np.array([rng.uniform(*ranges.x_range), rng.uniform(*ranges.y_range),
                         TABLE_HEIGHT + params.rest_height() + 1e-3])
    return params, np.concatenate([position, quaternion])


def in_basket(position: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """Whether points (..., 3) lie inside the basket's inner volume, below its rim."""
    cx, cy = BASKET_CENTER
    hx, hy = BASKET_INNER_HALF
    position = np.asarray(position)
    return (
        (np.abs(position[..., 0] - cx) < hx - margin)
        & (np.abs(position[..., 1] - cy) < hy - margin)
        & (position[..., 2] < TABLE_HEIGHT + BASKET_HEIGHT)
        & (position[..., 2] > TABLE_HEIGHT)
    )
