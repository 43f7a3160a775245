"""The assisted-grasp rule, shared by both engines (as in OmniGibson's assisted grasping).

A hand *closes* while its grasp command is positive. An object is welded to the palm, at
the relative pose it has at that instant, when all of these hold:

1. the hand is closing and holds nothing;
2. the object's centre lies within ``GRASP_RADIUS`` of the hand's grasp site
   (the grasp volume, a sphere fixed in the palm frame);
3. some link of the hand (palm or finger) is within ``TOUCH_MARGIN`` of the object's surface.

The weld is released as soon as the hand's grasp command is no longer positive (it opens).
With ``grasp="physical"`` (pybullet only) no weld is made: friction alone holds objects.
"""

from __future__ import annotations

import numpy as np

GRASP_RADIUS = 0.07
TOUCH_MARGIN = 0.005
GRASP_MODES = ("assisted", "physical")


def should_attach(closing: np.ndarray, holding: np.ndarray, site_distance: np.ndarray, touching: np.ndarray) -> np.ndarray:
    """Elementwise rule above: all inputs broadcast, returns a bool array."""
    return closing & ~holding & (site_distance <= GRASP_RADIUS) & touching


def check_grasp_mode(mode: str) -> str:
    if mode not in GRASP_MODES:
        raise ValueError(f"unknown grasp mode {mode!r}; use one of {GRASP_MODES}")
    return mode
