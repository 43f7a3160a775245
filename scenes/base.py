"""Helpers shared by the scene files; the description types themselves are in physics/scene.py."""

from __future__ import annotations

from ..physics.scene import StaticBox


def table_boxes(center: tuple[float, float], half: tuple[float, float], height: float,
                top_rgba=(0.75, 0.7, 0.62, 1.0), friction: float = 0.8) -> list[StaticBox]:
    """A work table: a 4 cm top whose upper face is at ``height`` and four legs, as static boxes."""
    (cx, cy), (hx, hy) = center, half
    top = StaticBox("table_top", (cx, cy, height - 0.02), (hx, hy, 0.02), friction=friction, rgba=top_rgba)
    legs = [
        StaticBox(f"table_leg_{i}", (cx + sx * (hx - 0.03), cy + sy * (hy - 0.03), (height - 0.04) / 2),
                  (0.025, 0.025, (height - 0.04) / 2), rgba=(0.4, 0.4, 0.42, 1.0))
        for i, (sx, sy) in enumerate(((1, 1), (1, -1), (-1, 1), (-1, -1)))
    ]
    return [top, *legs]
