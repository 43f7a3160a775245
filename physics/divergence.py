"""When a simulated environment has left physics: the bounds behind the engines' ``diverged`` flag.

A speed cap alone (``EngineConfig.divergence_speed``) lets a blow-up through as long as it
stays under the cap: feet jumping metres in one control step, a base at hundreds of m/s, a
garment thrown across the hall. So both engines also compare what a control step did with
what a humanoid and the things it handles can do, from the robot's model and the scene:

- joint speeds: each joint against ``joint_speed_factor`` times its URDF velocity limit (a joint
  whose URDF gives none gets the robot's fastest declared limit, or
  :data:`FALLBACK_JOINT_VELOCITY_LIMIT`). The drives are torque-limited PD without a velocity
  limit, so random targets legitimately spin light joints past their URDF limits (up to 10x was
  measured, benchmarks/adversarial.py); numerical blow-ups showed 15-50x;
- watched links (base, feet, palms) and every object and cloth particle: how far each moved
  in the control step, against ``max_link_speed * control_dt``. Objects and cloth are moved by
  the hands, so they get the hands' bound;
- the whole body: the base's linear speed and the centre of mass's step against ``max_body_speed``
  (a falling or sprinting humanoid stays under 10 m/s), and a floating base rising more than
  ``max_base_rise`` above its reset height (more than a jump);
- objects and cloth particles farther than ``scene_radius`` from the robot's base: beyond
  anything a scene holds or a hand can throw.

Everything is compared before and after one control step inside ``Engine.step``, from the
engines' own reads, so no state is added and recorded datasets replay unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: rad/s, for joints whose URDF declares no velocity limit on a robot that declares none at all.
FALLBACK_JOINT_VELOCITY_LIMIT = 20.0


@dataclass(frozen=True)
class DivergenceBounds:
    """The bounds of one engine, derived by :meth:`from_model`.

    joint_speed: (num_joints,) rad/s. link_speed: m/s and link_step: m per control step, for watched
    links, objects and cloth particles. body_speed: m/s, the base's linear speed. com_step: m per control step.
    base_rise: m above the base's reset height (None on a fixed base). scene_radius: m from the base.
    """

    joint_speed: np.ndarray
    link_speed: float
    link_step: float
    body_speed: float
    com_step: float
    base_rise: float | None
    scene_radius: float

    @classmethod
    def from_model(cls, robot, scene, config) -> "DivergenceBounds":
        declared = np.asarray(robot.velocity_limit, dtype=float)
        valid = np.isfinite(declared) & (declared > 0)
        fallback = declared[valid].max() if valid.any() else FALLBACK_JOINT_VELOCITY_LIMIT
        limits = np.where(valid, declared, fallback)
        return cls(joint_speed=config.joint_speed_factor * limits,
                   link_speed=config.max_link_speed,
                   link_step=config.max_link_speed * config.control_dt,
                   body_speed=config.max_body_speed,
                   com_step=config.max_body_speed * config.control_dt,
                   base_rise=None if scene.fixed_base else config.max_base_rise,
                   scene_radius=config.scene_radius)


def watched_links(robot) -> list[str]:
    """The links whose steps are bounded: the base, the feet and the palms (the extremities that hit things)."""
    return [robot.base_link, *robot.feet, *(hand.palm_link for hand in robot.hands.values())]


def too_far(step: np.ndarray, bound: float) -> np.ndarray:
    """(N,) bool: any point of (N, ..., 3) displacements longer than ``bound``, or not finite."""
    step = np.asarray(step, dtype=float).reshape(step.shape[0], -1, 3)
    if not step.shape[1]:
        return np.zeros(step.shape[0], dtype=bool)
    # Squared lengths against the squared bound: no square root in the hot path; NaN compares False.
    return ~((step * step).sum(axis=-1) <= bound * bound).all(axis=1)


def points_diverged(step: np.ndarray, after: np.ndarray, base: np.ndarray, bound: float,
                    bounds: DivergenceBounds) -> np.ndarray:
    """(N,) bool for objects or cloth particles: ``step`` (N, P, 3) longer than ``bound`` (a displacement
    against bounds.link_step, or a velocity against bounds.link_speed), or ``after`` (N, P, 3) farther from
    the base (N, 3) than bounds.scene_radius."""
    return too_far(step, bound) | too_far(after - base[:, None], bounds.scene_radius)
