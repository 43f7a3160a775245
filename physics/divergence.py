"""When a simulated environment has left physics: the bounds behind the engines' ``diverged`` flag.

A speed cap alone (``EngineConfig.divergence_speed``) lets a blow-up through as long as it
stays under the cap: feet jumping metres in one control step, a base at hundreds of m/s, a
garment thrown across the hall. So both engines also compare what a control step did with
what a humanoid and the things it handles can do, from the robot's model and the scene.
The numbers in brackets are the largest values measured by ``tground bench adversarial``
(humanoid43, 50 Hz control): scripted experts / random, bang-bang and sinusoidal targets
that did not blow up / blow-ups the bound now catches.

- joint speeds: each joint against ``joint_speed_factor`` (15) times its URDF velocity limit;
  a joint whose URDF gives none gets the robot's fastest declared limit, or
  :data:`FALLBACK_JOINT_VELOCITY_LIMIT`. The drives are torque-limited PD without a velocity
  limit, so adversarial targets legitimately spin light joints past their URDF limits
  [2.4x / 10.4x / 15-50x]; Bullet caps joints at 100 rad/s by itself;
- the watched links (base, feet, palms) and every object and cloth particle: how far each
  moved in the control step, against ``max_link_speed`` (50 m/s) times control_dt, 1 m at
  50 Hz [0.03 m / 0.86 m / 1.1-2.3 m]. Objects and cloth are moved by the hands, so they get
  the hands' bound;
- the whole body: the base's linear speed against ``max_body_speed`` (10 m/s: a falling or
  sprinting humanoid stays under it) [0.24 m/s / 4.6 m/s on pybullet / up to 53 m/s], the
  centre of mass's step against the same speed times control_dt [0.005 m / 0.14 m / 0.6 m],
  and a floating base rising more than ``max_base_rise`` (1 m, more than a jump) above its
  reset height [0 / 0.06 m on pybullet / 7 m, a robot flying off the floor];
- objects and cloth particles farther than ``scene_radius`` (15 m) from the robot's base
  [0.65 m / 9.7 m, a bread batted at 20 m/s / a garment 21 m away].

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
