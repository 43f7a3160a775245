"""The assisted-grasp rule, shared by both engines (as in OmniGibson's assisted grasping).

A hand *closes* while its grasp command is positive. An object is welded to the palm, at
the relative pose it has at that instant, when all of these hold:

1. the hand is closing and holds nothing;
2. the object's centre lies within ``GRASP_RADIUS`` of the hand's grasp site
   (the grasp volume, a sphere fixed in the palm frame);
3. some link of the hand (palm or finger) is within ``TOUCH_MARGIN`` of the object's surface.

The weld is released as soon as the hand's grasp command is no longer positive (it opens).
With ``grasp="physical"`` no weld is made: contact and friction alone hold objects, on pybullet with
its own contacts and on the numpy engine with its "primitive" hand contacts (physics/numpy_objects.py:
hand spheres against the object's exact shape, with static friction, implicit on both sides).

What counts as *held* under ``grasp="physical"`` (the ``grasped`` observation, the tasks' success tests)
is one rule for both engines, :func:`contact_holds`: at least ``HOLD_LINKS`` distinct links of the hand
(palm or phalanges) touch the object, pressing on it with at least ``HOLD_FORCE`` newtons in all, or twice its
weight where that is less (``HOLD_WEIGHTS``).

Cloth follows the same close-to-hold, open-to-let-go rule with particles in place of objects:
see :func:`update_cloth_pins` (the numpy engine pins particles to the palm, pybullet anchors them).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

GRASP_RADIUS = 0.07
TOUCH_MARGIN = 0.005
GRASP_MODES = ("assisted", "physical")


#: A physically held object touches at least this many distinct links of the hand ...
HOLD_LINKS = 2
#: ... whose normal forces on it sum to at least this (N): a tenth of a 0.5 kg object's weight ...
HOLD_FORCE = 0.5
#: ... or to this many times the object's weight, if that is less: a 2 g part is held by a tenth of a newton.
HOLD_WEIGHTS = 2.0


def contact_holds(touching_links: np.ndarray, normal_force: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """The object each hand physically holds, or -1 (N, H), from the number of the hand's links touching each
    object and their summed normal force (N, H, K), and the objects' weights (N, K) (N); a hand holding two
    objects is given the first."""
    threshold = np.minimum(HOLD_FORCE, HOLD_WEIGHTS * np.asarray(weight, float))[:, None, :]
    holds = (touching_links >= HOLD_LINKS) & (normal_force >= threshold)
    return np.where(holds.any(axis=-1), holds.argmax(axis=-1), -1)


def should_attach(closing: np.ndarray, holding: np.ndarray, site_distance: np.ndarray, touching: np.ndarray) -> np.ndarray:
    """Elementwise rule above: all inputs broadcast, returns a bool array."""
    return closing & ~holding & (site_distance <= GRASP_RADIUS) & touching


#: Cloth particles within this distance (m) of a closing hand's grasp site are pinned to the palm.
CLOTH_PIN_RADIUS = 0.02


def update_cloth_pins(closing: np.ndarray, pinned_by: np.ndarray, sites: np.ndarray, particles: np.ndarray) -> np.ndarray:
    """The assisted grasp for cloth, shared by both engines; returns the new ``pinned_by``.

    closing: (N, H) bool. pinned_by: (N, P) int, the hand pinning each particle or -1.
    sites: (N, H, 3) grasp-site positions. particles: (N, P, 3) positions.

    A hand that opens releases its particles. A closing hand that pins nothing pins every free
    particle within ``CLOTH_PIN_RADIUS`` of its grasp site, at the particle's current position
    relative to the palm, until it opens; while nothing is in reach it tries again at the next
    control step (as the weld rule does). Cloth is thin, so nearness to the site stands in for
    the rigid rule's touch test. Hands are served in order, so a particle in both reaches goes
    to the first.
    """
    pinned_by = np.where(np.take_along_axis(closing, np.maximum(pinned_by, 0), axis=1) & (pinned_by >= 0),
                         pinned_by, -1)
    for hand in range(closing.shape[1]):
        holding = (pinned_by == hand).any(axis=1)
        gap = particles - sites[:, hand, None, :]
        reach = (gap**2).sum(-1) <= CLOTH_PIN_RADIUS**2
        take = (closing[:, hand] & ~holding)[:, None] & reach & (pinned_by < 0)
        pinned_by = np.where(take, hand, pinned_by)
    return pinned_by


def check_grasp_mode(mode: str) -> str:
    if mode not in GRASP_MODES:
        raise InputError(f"unknown grasp mode {mode!r}; use one of {GRASP_MODES}")
    return mode
