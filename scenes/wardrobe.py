"""The wardrobe table: a humanoid on a stand at a table, a garment lying flat on it, and a low shelf.

Layout (world frame, x forward from the robot, y to its left): the table top spans
x in [0.30, 0.80] at 0.95 m, like the bread table. The garment lies near the robot, a
little left of centre, where both hands reach its far corners; the shelf stands on the
table to the robot's right, low enough for the arms to lay the folded garment on it.
The arms reach table height only up to about x = 0.5 m, which bounds the garment's depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..physics.cloth import ClothParams, ClothSpec
from ..physics.scene import Camera, Scene, StaticBox
from .base import table_boxes
from .bread import ROBOT_BASE_HEIGHT

TABLE_HEIGHT = 0.95
TABLE_CENTER = (0.55, 0.0)
TABLE_HALF = (0.25, 0.60)
SHELF_CENTER = (0.43, -0.34)
SHELF_HALF = (0.13, 0.18)
SHELF_HEIGHT = 0.06  # of its top above the table
SHELF_TOP = TABLE_HEIGHT + SHELF_HEIGHT
GARMENT = ClothSpec(
    name="garment", rows=10, cols=10, thickness=0.005, rgba=(0.2, 0.45, 0.85, 1.0),
    default_params=ClothParams(length=0.175, width=0.26),
    default_pose=(0.42, 0.1, TABLE_HEIGHT + 0.005, 0.0, 0.0, 0.0, 1.0),
)


def _table_boxes() -> list[StaticBox]:
    return table_boxes(TABLE_CENTER, TABLE_HALF, TABLE_HEIGHT, top_rgba=(0.78, 0.72, 0.6, 1.0))


def _shelf_box() -> StaticBox:
    (cx, cy), (hx, hy) = SHELF_CENTER, SHELF_HALF
    return StaticBox("shelf", (cx, cy, TABLE_HEIGHT + SHELF_HEIGHT / 2), (hx, hy, SHELF_HEIGHT / 2), friction=0.8,
                     rgba=(0.55, 0.36, 0.22, 1.0))


def wardrobe_scene(robot_base_height: float = ROBOT_BASE_HEIGHT, robot_forward: float = 0.0) -> Scene:
    """The scene with the robot's base mounted ``robot_base_height`` above the floor (its standing height:
    feet on the floor), humanoid43's by default, and ``robot_forward`` towards the table (scenes/base.py
    table_mount places a robot of other proportions)."""
    return Scene(
        name="wardrobe_table",
        static_boxes=tuple(_table_boxes() + [_shelf_box()]),
        object_names=(),
        robot_position=(robot_forward, 0.0, robot_base_height),
        fixed_base=True,
        camera=Camera(target=(0.42, -0.06, 0.98), distance=1.25, yaw=40.0, pitch=-42.0, width=400, height=300),
        cloth=GARMENT,
    )


@dataclass(frozen=True)
class GarmentRandomization:
    """Ranges the garment is drawn from at every reset (uniform).

    near_edge_range: x of the edge nearest the robot (m); the far edge follows from the length.
    """

    near_edge_range: tuple[float, float] = (0.31, 0.325)
    y_range: tuple[float, float] = (0.08, 0.12)
    yaw_range: tuple[float, float] = (-0.12, 0.12)
    length_range: tuple[float, float] = (0.16, 0.19)
    width_range: tuple[float, float] = (0.24, 0.28)
    mass_range: tuple[float, float] = (0.08, 0.2)
    stretch_stiffness_range: tuple[float, float] = (300.0, 600.0)
    bend_stiffness_range: tuple[float, float] = (1.0, 3.0)
    friction_range: tuple[float, float] = (0.5, 0.9)


def sample_garment(rng: np.random.Generator, ranges: GarmentRandomization) -> tuple[ClothParams, np.ndarray]:
    """Draw the garment's parameters and its pose: lying flat on the table, rows along the robot's x."""
    params = ClothParams(
        length=float(rng.uniform(*ranges.length_range)),
        width=float(rng.uniform(*ranges.width_range)),
        mass=float(rng.uniform(*ranges.mass_range)),
        stretch_stiffness=float(rng.uniform(*ranges.stretch_stiffness_range)),
        bend_stiffness=float(rng.uniform(*ranges.bend_stiffness_range)),
        friction=float(rng.uniform(*ranges.friction_range)),
    )
    yaw = rng.uniform(*ranges.yaw_range)
    near_edge = rng.uniform(*ranges.near_edge_range)
    centre = np.array([near_edge + params.length / 2, rng.uniform(*ranges.y_range), TABLE_HEIGHT + GARMENT.thickness])
    return params, np.concatenate([centre, [0.0, 0.0, np.sin(yaw / 2), np.cos(yaw / 2)]])


def on_shelf(points: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """Whether points (..., 3) lie over the shelf's top (inside its edges less ``margin``), above its surface."""
    (cx, cy), (hx, hy) = SHELF_CENTER, SHELF_HALF
    points = np.asarray(points)
    return ((np.abs(points[..., 0] - cx) < hx - margin) & (np.abs(points[..., 1] - cy) < hy - margin)
            & (points[..., 2] > SHELF_TOP))
