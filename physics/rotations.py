"""Quaternion and rotation helpers. Quaternions are xyzw (pybullet's order); all broadcast over leading axes."""

from __future__ import annotations

import numpy as np


def quat_multiply(a, b) -> np.ndarray:
    """Hamilton product a * b."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    ax, ay, az, aw = a[..., 0], a[..., 1], a[..., 2], a[..., 3]
    bx, by, bz, bw = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    out = np.empty(np.broadcast_shapes(a.shape, b.shape))  # filled entry by entry: cheaper than np.stack
    out[..., 0] = aw * bx + ax * bw + ay * bz - az * by
    out[..., 1] = aw * by - ax * bz + ay * bw + az * bx
    out[..., 2] = aw * bz + ax * by - ay * bx + az * bw
    out[..., 3] = aw * bw - ax * bx - ay * by - az * bz
    return out


def quat_conjugate(q) -> np.ndarray:
    q = np.asarray(q, float)
    return np.concatenate([-q[..., :3], q[..., 3:]], axis=-1)


def quat_to_matrix(q) -> np.ndarray:
    q = np.asarray(q, float)
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    out = np.empty(q.shape[:-1] + (3, 3))
    out[..., 0, 0] = 1 - 2 * (y * y + z * z)
    out[..., 0, 1] = 2 * (x * y - z * w)
    out[..., 0, 2] = 2 * (x * z + y * w)
    out[..., 1, 0] = 2 * (x * y + z * w)
    out[..., 1, 1] = 1 - 2 * (x * x + z * z)
    out[..., 1, 2] = 2 * (y * z - x * w)
    out[..., 2, 0] = 2 * (x * z - y * w)
    out[..., 2, 1] = 2 * (y * z + x * w)
    out[..., 2, 2] = 1 - 2 * (x * x + y * y)
    return out


def matrix_to_quat(m) -> np.ndarray:
    """Rotation matrices (..., 3, 3) to unit xyzw quaternions with w >= 0."""
    m = np.asarray(m, float)
    # Shepperd's method via the largest of four candidate denominators, fully vectorised.
    trace = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    candidates = np.stack([trace, m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]], -1)
    choice = np.argmax(candidates, axis=-1)
    out = np.empty(m.shape[:-2] + (4,))
    r = np.sqrt(np.maximum(1.0 + 2.0 * np.take_along_axis(candidates, choice[..., None], -1)[..., 0] - trace, 1e-12))
    s = 0.5 / r
    quats = [
        np.stack([(m[..., 2, 1] - m[..., 1, 2]) * s, (m[..., 0, 2] - m[..., 2, 0]) * s, (m[..., 1, 0] - m[..., 0, 1]) * s, 0.5 * r], -1),
        np.stack([0.5 * r, (m[..., 0, 1] + m[..., 1, 0]) * s, (m[..., 0, 2] + m[..., 2, 0]) * s, (m[..., 2, 1] - m[..., 1, 2]) * s], -1),
        np.stack([(m[..., 0, 1] + m[..., 1, 0]) * s, 0.5 * r, (m[..., 1, 2] + m[..., 2, 1]) * s, (m[..., 0, 2] - m[..., 2, 0]) * s], -1),
        np.stack([(m[..., 0, 2] + m[..., 2, 0]) * s, (m[..., 1, 2] + m[..., 2, 1]) * s, 0.5 * r, (m[..., 1, 0] - m[..., 0, 1]) * s], -1),
    ]
    for index, quat in enumerate(quats):
        out = np.where((choice == index)[..., None], quat, out)
    out /= np.linalg.norm(out, axis=-1, keepdims=True)
    return np.where(out[..., 3:] < 0, -out, out)


def axis_angle_to_quat(rotvec) -> np.ndarray:
    rotvec = np.asarray(rotvec, float)
    angle = np.linalg.norm(rotvec, axis=-1, keepdims=True)
    safe = np.where(angle > 1e-12, angle, 1.0)
    axis = np.where(angle > 1e-12, rotvec / safe, 0.0)
    return np.concatenate([axis * np.sin(angle / 2), np.cos(angle / 2)], axis=-1)


def quat_to_axis_angle(q) -> np.ndarray:
    """Rotation vector of the shortest rotation a quaternion represents."""
    q = np.asarray(q, float)
    q = np.where(q[..., 3:] < 0, -q, q)
    sin_half = np.linalg.norm(q[..., :3], axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(sin_half, q[..., 3:])
    scale = np.where(sin_half > 1e-12, angle / np.where(sin_half > 1e-12, sin_half, 1.0), 2.0)
    return q[..., :3] * scale

