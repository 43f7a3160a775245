"""The 3C assembly bench: a humanoid on a stand at a workbench, a parts tray with one chip, and a
circuit board with sockets.

Layout (world frame, x forward from the robot, y to its left), on the bread scene's table
(same height and extent): the tray lies in front of the robot's right arm; the board lies
left of it with a row of identical sockets, one of which is the episode's target. A socket
is four thin walls on the board whose square opening is a little wider than the largest
chip; a chip is *seated* when it lies flat on the board inside the opening, centred and
turned like the socket (a square chip fits every quarter turn).

Static geometry is built once per engine, so the socket positions are fixed; what varies
per episode is which socket is the target, the chip's pose in the tray, its size, mass and
friction (see :class:`ChipRandomization`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..physics.rotations import quat_conjugate, quat_multiply, quat_to_axis_angle
from ..physics.scene import Camera, ObjectParams, Scene, StaticBox
from .bread import ROBOT_BASE_HEIGHT, TABLE_HEIGHT, _table_boxes

TRAY_CENTER = (0.44, -0.25)
TRAY_INNER_HALF = (0.07, 0.06)
TRAY_FLOOR = 0.004  # thickness (m)
TRAY_WALL = 0.005
TRAY_WALL_HEIGHT = 0.005  # above the tray floor: lower than the thinnest chip, so a hand over the chip clears it
TRAY_TOP = TABLE_HEIGHT + TRAY_FLOOR  # the surface the chip lies on

BOARD_CENTER = (0.46, -0.05)
BOARD_HALF = (0.07, 0.085)
BOARD_THICKNESS = 0.004
BOARD_TOP = TABLE_HEIGHT + BOARD_THICKNESS  # the surface a seated chip rests on

#: Socket centres on the board (x, y), and the half side of every socket's square opening.
SOCKET_CENTERS = ((0.46, -0.11), (0.46, -0.05), (0.46, 0.01))
SOCKET_INNER_HALF = 0.0175
SOCKET_WALL = 0.002  # thickness (m)
SOCKET_WALL_HEIGHT = 0.003
SOCKET_YAW = 0.0

#: Success tolerances of a seated chip.
SEAT_POSITION_TOLERANCE = 0.002
SEAT_ANGLE_TOLERANCE = np.deg2rad(5.0)


def _tray_boxes() -> list[StaticBox]:
    cx, cy = TRAY_CENTER
    hx, hy = TRAY_INNER_HALF
    w, h, z0 = TRAY_WALL, TRAY_WALL_HEIGHT, TRAY_TOP
    color = (0.25, 0.32, 0.45, 1.0)
    return [
        StaticBox("tray_floor", (cx, cy, TABLE_HEIGHT + TRAY_FLOOR / 2), (hx + 2 * w, hy + 2 * w, TRAY_FLOOR / 2),
                  rgba=color),
        StaticBox("tray_wall_front", (cx + hx + w, cy, z0 + h / 2), (w, hy + 2 * w, h / 2), rgba=color),
        StaticBox("tray_wall_back", (cx - hx - w, cy, z0 + h / 2), (w, hy + 2 * w, h / 2), rgba=color),
        StaticBox("tray_wall_left", (cx, cy + hy + w, z0 + h / 2), (hx, w, h / 2), rgba=color),
        StaticBox("tray_wall_right", (cx, cy - hy - w, z0 + h / 2), (hx, w, h / 2), rgba=color),
    ]


def _board_boxes(socket_inner_half: float) -> list[StaticBox]:
    (cx, cy), (hx, hy) = BOARD_CENTER, BOARD_HALF
    board = StaticBox("circuit_board", (cx, cy, TABLE_HEIGHT + BOARD_THICKNESS / 2), (hx, hy, BOARD_THICKNESS / 2),
                      rgba=(0.1, 0.45, 0.2, 1.0))
    boxes = [board]
    inner, w, h = socket_inner_half, SOCKET_WALL / 2, SOCKET_WALL_HEIGHT / 2
    color = (0.85, 0.85, 0.8, 1.0)
    for i, (sx, sy) in enumerate(SOCKET_CENTERS):
        z = BOARD_TOP + h
        boxes += [
            StaticBox(f"socket_{i}_front", (sx + inner + w, sy, z), (w, inner + 2 * w, h), rgba=color),
            StaticBox(f"socket_{i}_back", (sx - inner - w, sy, z), (w, inner + 2 * w, h), rgba=color),
            StaticBox(f"socket_{i}_left", (sx, sy + inner + w, z), (inner, w, h), rgba=color),
            StaticBox(f"socket_{i}_right", (sx, sy - inner - w, z), (inner, w, h), rgba=color),
        ]
    return boxes


def assembly_scene(robot_base_height: float = ROBOT_BASE_HEIGHT, robot_forward: float = 0.0,
                   socket_inner_half: float = SOCKET_INNER_HALF) -> Scene:
    """The scene with the robot's base mounted ``robot_base_height`` above the floor (its standing height:
    feet on the floor), humanoid43's by default, and ``robot_forward`` towards the table (scenes/base.py
    table_mount places a robot of other proportions); ``socket_inner_half``: the sockets' opening (the part's,
    ChipRandomization)."""
    return Scene(
        name="assembly_bench",
        static_boxes=tuple(_table_boxes() + _tray_boxes() + _board_boxes(socket_inner_half)),
        object_names=("chip",),
        robot_position=(robot_forward, 0.0, robot_base_height),
        fixed_base=True,
        # From the robot's right front, low enough to see the chip under the hand at the socket.
        camera=Camera(target=(0.45, -0.15, 0.97), distance=0.55, yaw=150.0, pitch=-35.0, width=400, height=300),
    )


def socket_pose(index) -> np.ndarray:
    """Pose (..., 7) of sockets by index: the centre of the opening on the board's surface, turned by SOCKET_YAW."""
    centers = np.asarray(SOCKET_CENTERS)[np.asarray(index)]
    position = np.concatenate([centers, np.full(centers.shape[:-1] + (1,), BOARD_TOP)], -1)
    quaternion = np.broadcast_to([0.0, 0.0, np.sin(SOCKET_YAW / 2), np.cos(SOCKET_YAW / 2)], position.shape[:-1] + (4,))
    return np.concatenate([position, quaternion], -1)


@dataclass(frozen=True)
class ChipRandomization:
    """Ranges the chip and the target socket are drawn from at every reset (uniform).

    The chip is square (``half_side``) so that it fits its socket at every quarter turn; its
    socket, whose opening's half side is ``socket_inner_half``, leaves socket_inner_half - half_side of
    clearance per side (2 to 3 mm by default). :data:`SMALL_PART` is the small-part variant's.
    """

    x_range: tuple[float, float] = (0.40, 0.48)
    y_range: tuple[float, float] = (-0.28, -0.22)
    yaw_range: tuple[float, float] = (-np.pi / 6, np.pi / 6)
    half_side_range: tuple[float, float] = (0.0145, 0.0155)
    half_height_range: tuple[float, float] = (0.003, 0.004)
    mass_range: tuple[float, float] = (0.004, 0.015)
    friction_range: tuple[float, float] = (0.5, 0.9)
    socket_inner_half: float = SOCKET_INNER_HALF

    def __post_init__(self):
        if not self.socket_inner_half > self.half_side_range[1] > self.half_side_range[0] > 0:
            raise ValueError(f"chip half_side_range {self.half_side_range} must be increasing, positive and below "
                             f"the socket's inner half side {self.socket_inner_half}")
        corner = np.sqrt(2) * self.half_side_range[1]
        inside = np.array([[TRAY_CENTER[0] - TRAY_INNER_HALF[0], TRAY_CENTER[0] + TRAY_INNER_HALF[0]],
                           [TRAY_CENTER[1] - TRAY_INNER_HALF[1], TRAY_CENTER[1] + TRAY_INNER_HALF[1]]])
        for axis, span in enumerate((self.x_range, self.y_range)):
            if span[0] - corner < inside[axis, 0] or span[1] + corner > inside[axis, 1]:
                raise ValueError(f"chip {'xy'[axis]}_range {span} would put the chip into the tray's walls "
                                 f"(inside spans {tuple(inside[axis])})")


#: The small-part variant (Assembly3CSmall-v0): a 2 cm square part 8-10 mm thick, 2-8 g, as training grounds
#: practise with connectors and passives, in sockets with the default's 2-3 mm of clearance per side.
SMALL_PART = ChipRandomization(half_side_range=(0.0095, 0.0105), half_height_range=(0.004, 0.005),
                               mass_range=(0.002, 0.008), socket_inner_half=0.0125)


def sample_chip(rng: np.random.Generator, ranges: ChipRandomization) -> tuple[ObjectParams, np.ndarray]:
    """Draw the chip's parameters and its resting pose in the tray (lying flat, turned by a yaw)."""
    half_side = float(rng.uniform(*ranges.half_side_range))
    half_height = float(rng.uniform(*ranges.half_height_range))
    params = ObjectParams(
        shape="box",
        size=(half_side, half_side, half_height),
        mass=float(rng.uniform(*ranges.mass_range)),
        friction=float(rng.uniform(*ranges.friction_range)),
        rgba=(0.12, 0.12, 0.14, 1.0),
    )
    yaw = rng.uniform(*ranges.yaw_range)
    position = [rng.uniform(*ranges.x_range), rng.uniform(*ranges.y_range), TRAY_TOP + half_height + 5e-4]
    return params, np.array([*position, 0.0, 0.0, np.sin(yaw / 2), np.cos(yaw / 2)])


def sample_socket(rng: np.random.Generator) -> int:
    """Index of the episode's target socket (uniform over SOCKET_CENTERS)."""
    return int(rng.integers(len(SOCKET_CENTERS)))


def square_yaw_error(chip_quat: np.ndarray, socket_quat: np.ndarray) -> np.ndarray:
    """Yaw of a square chip relative to its socket (rad), folded into [-pi/4, pi/4) by the quarter-turn symmetry."""
    relative = quat_multiply(quat_conjugate(socket_quat), chip_quat)
    x, y, z, w = np.moveaxis(relative, -1, 0)
    # Yaw of the relative rotation's x axis projected on the socket plane.
    yaw = np.arctan2(2 * (x * y + z * w), 1 - 2 * (y * y + z * z))
    return (yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4


def seated(chip_pose, socket_pose, chip_half_height) -> dict[str, np.ndarray]:
    """How far a chip is from sitting in a socket; broadcasts over leading axes.

    chip_pose, socket_pose: (..., 7), the socket's position on the board surface;
    chip_half_height: (...,). Returns ``xy_error`` (m, horizontal distance of the centres),
    ``height_error`` (m, signed, chip centre minus its seated height), ``position_error``
    (m, their combination), ``yaw_error`` (rad, signed, folded by the quarter-turn symmetry),
    ``tilt`` (rad, between the chip's and the socket's normals), ``angle_error`` (rad, the
    smallest rotation from the chip to any of its seated orientations: yaw and tilt
    together) and ``within`` (inside SEAT_POSITION_TOLERANCE and SEAT_ANGLE_TOLERANCE).
    """
    chip_pose, socket_pose = np.asarray(chip_pose, float), np.asarray(socket_pose, float)
    xy_error = np.linalg.norm(chip_pose[..., :2] - socket_pose[..., :2], axis=-1)
    height_error = chip_pose[..., 2] - (socket_pose[..., 2] + np.asarray(chip_half_height, float))
    position_error = np.hypot(xy_error, height_error)
    relative = quat_multiply(quat_conjugate(socket_pose[..., 3:]), chip_pose[..., 3:])
    angles = [np.linalg.norm(quat_to_axis_angle(quat_multiply(relative, [0.0, 0.0, np.sin(k * np.pi / 4),
                                                                         np.cos(k * np.pi / 4)])), axis=-1)
              for k in range(4)]
    angle_error = np.min(angles, axis=0)
    x, y = relative[..., 0], relative[..., 1]
    tilt = np.arccos(np.clip(1 - 2 * (x * x + y * y), -1.0, 1.0))  # the z axis's z component in the socket frame
    within = (position_error <= SEAT_POSITION_TOLERANCE) & (angle_error <= SEAT_ANGLE_TOLERANCE)
    return {"xy_error": xy_error, "height_error": height_error, "position_error": position_error,
            "yaw_error": square_yaw_error(chip_pose[..., 3:], socket_pose[..., 3:]), "tilt": tilt,
            "angle_error": angle_error, "within": within}
