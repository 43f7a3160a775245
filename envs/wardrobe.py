"""WardrobeFold: fold a garment lying on the wardrobe table in half and put it on the shelf.

Observation (dict, positions in the robot base frame, which is fixed on its stand):
joint_pos, joint_vel (43 each); hand_pos (2 hands x 3) and hand_quat (2 x 4) of the grasp
sites; cloth_corners (4 x 3: near-right, near-left, far-right, far-left as the garment lies
at reset; "near" is the edge nearest the robot); cloth_points (a 4 x 4 subsample of the
particle grid, x 3, corners included); near_corners_to_hands (2 x 3: the near corner on each
hand's side, the one it folds, minus the hand); shelf_to_hands (2 x 3: the shelf's top centre minus each
hand); grasped (2, 1.0 where the hand pins cloth).

Success: the garment is folded in half (each near corner within ``fold_tolerance`` of the
far corner on its side), lies flat on the shelf (every particle over the shelf top and at
most ``flat_height`` above it), both hands have let go and it is nearly still. Failure
(terminates): the garment falls off the table.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..scenes import wardrobe as wardrobe_scene
from ..scenes.base import table_mount
from ..scenes.bread import WORK_POINT
from ..physics.scene import ClothSetup, EpisodeSetup, Scene
from .base import BatchedTask, EpisodeArray, TaskConfig
from .controllers import grasp_site_poses
from .registry import register_task

#: The shelf's top centre, where the dense reward guides the folded garment.
SHELF_POINT = np.array([*wardrobe_scene.SHELF_CENTER, wardrobe_scene.SHELF_TOP])
#: Corners in observation order, as (row, col) of the grid: near-right, near-left, far-right, far-left.
CORNER_NAMES = ("near_right", "near_left", "far_right", "far_left")


@dataclasses.dataclass(frozen=True)
class WardrobeFoldConfig(TaskConfig):
    """WardrobeFold options (see TaskConfig for the shared ones).

    randomization: ranges of the garment's pose, size, mass, stiffness and friction.
    fold_tolerance: largest near-to-far corner distance (m) that counts as folded.
    flat_height: highest a particle may lie above the shelf top (m) for the garment to count as flat.
    rest_speed: the garment counts as placed once every particle is slower than this (m/s).
    *_scale: weights of the named dense reward terms.
    """

    max_steps: int = 450
    grasp: str = "assisted"  # the pin rule: the only mode cloth has (WardrobeFoldTask.grasp_modes_why)
    randomization: wardrobe_scene.GarmentRandomization = dataclasses.field(
        default_factory=wardrobe_scene.GarmentRandomization)
    fold_tolerance: float = 0.04
    flat_height: float = 0.035
    rest_speed: float = 0.1
    reach_scale: float = 1.0
    grasp_scale: float = 1.0
    fold_scale: float = 2.0
    transport_scale: float = 2.0
    place_scale: float = 10.0


@register_task("TrainingGround/WardrobeFold-v0", alias="wardrobe",
               expert="training_ground.agents.fold_expert:WardrobeFoldExpert")
class WardrobeFoldTask(BatchedTask):
    """Version history: v0, first release (pybullet soft-body cloth and the numpy engine's
    position-based cloth; joint_pos and ee_delta actions; native VectorEnv).
    """

    # Cloth is held by the pin rule on both engines: no engine has two-way, frictional hand-cloth contacts.
    grasp_modes = ("assisted",)
    grasp_modes_why = ("cloth is held by the pin rule (physics/grasp.py update_cloth_pins); the hands only push "
                       "the garment's particles aside on numpy and do not touch it on pybullet, so no friction "
                       "could hold it. Use grasp='assisted' (the task's default).")
    config_class = WardrobeFoldConfig
    reward_names = ("reach", "grasp", "fold", "transport", "place")
    instruction_templates = ("Fold the {size} garment in half and put it on the shelf.",
                             "Fold the {size} cloth and lay it flat on the shelf.",
                             "Fold the {size} garment and place it on the wardrobe shelf.")

    def build_scene(self) -> Scene:
        scene = wardrobe_scene.wardrobe_scene(*table_mount(self.robot, WORK_POINT))
        spec = scene.cloth
        self._corners = spec.corner_indices
        rows = np.linspace(0, spec.rows - 1, 4).round().astype(int)
        cols = np.linspace(0, spec.cols - 1, 4).round().astype(int)
        self._subsample = np.array([spec.particle_index(r, c) for r in rows for c in cols])
        return scene

    def sample_episode(self, rng):
        q = self.arms_ready_posture(rng)
        params, pose = wardrobe_scene.sample_garment(rng, self.config.randomization)
        return EpisodeSetup(q, cloth=ClothSetup(params, pose))

    def episode_state(self):
        # The garment's width, for the instruction; it comes back with the episode's seed.
        return {"garment_width": EpisodeArray(())}

    def init_episode(self, env_ids, episodes, rngs) -> None:
        self.garment_width[env_ids] = [episode.cloth.params.width for episode in episodes]

    def instruction_slots(self, env_id):
        low, high = self.config.randomization.width_range
        return {"size": "narrow" if self.garment_width[env_id] < (low + high) / 2 else "wide"}

    def _sites(self):
        return self.cached("sites", lambda: grasp_site_poses(self.engine))

    @property
    def garment(self):
        """The engine's cloth component (physics/components.py)."""
        return self.engine.components["cloth"]

    def _cloth(self):
        return self.cached("cloth", self.garment.positions)

    def _own_near_corners(self, corners: np.ndarray) -> np.ndarray:
        """(N, 2, 3): the near corner on each hand's side, hands in robot order (left, right)."""
        return corners[:, [1, 0]]

    def observe(self):
        base = np.asarray(self.scene.robot_position)
        site_pos, site_quat = self._sites()
        cloth = self._cloth()
        corners = cloth[:, self._corners]
        q, qd = self.engine.joint_state()
        n = self.num_envs
        return {
            "joint_pos": q,
            "joint_vel": qd,
            "hand_pos": (site_pos - base).reshape(n, -1),
            "hand_quat": site_quat.reshape(n, -1),
            "cloth_corners": (corners - base).reshape(n, -1),
            "cloth_points": (cloth[:, self._subsample] - base).reshape(n, -1),
            "near_corners_to_hands": (self._own_near_corners(corners) - site_pos).reshape(n, -1),
            "shelf_to_hands": (SHELF_POINT[None, None] - site_pos).reshape(n, -1),
            "grasped": self.garment.grasped().astype(np.float32),
        }

    def evaluate(self):
        cloth = self._cloth()
        corners = cloth[:, self._corners]
        # Near-right onto far-right, near-left onto far-left.
        fold_gap = np.linalg.norm(corners[:, :2] - corners[:, 2:], axis=-1)  # (N, 2)
        folded = (fold_gap < self.config.fold_tolerance).all(axis=1)
        held = self.garment.grasped().any(axis=1)
        on_shelf = wardrobe_scene.on_shelf(cloth).all(axis=1)
        flat = (cloth[..., 2] - wardrobe_scene.SHELF_TOP < self.config.flat_height).all(axis=1)
        still = np.linalg.norm(self.garment.velocities(), axis=-1).max(axis=1) < self.config.rest_speed
        success = folded & on_shelf & flat & ~held & still
        failure = cloth[..., 2].mean(axis=1) < wardrobe_scene.TABLE_HEIGHT - 0.1
        return {"success": success, "failure": failure, "fold_gap": fold_gap, "folded": folded, "cloth": cloth}

    def reward_terms(self, evaluation):
        site_pos, _ = self._sites()
        cloth = evaluation["cloth"]
        folded = evaluation["folded"]
        grasped = self.garment.grasped().astype(float)
        reach_gap = np.linalg.norm(site_pos - self._own_near_corners(cloth[:, self._corners]), axis=-1).mean(axis=1)
        both_held = grasped.min(axis=1)
        centre = cloth.mean(axis=1)
        transport = folded * both_held * (1.0 - np.tanh(5.0 * np.linalg.norm(centre - SHELF_POINT, axis=-1)))
        return {
            "reach": np.where(folded, 1.0, 1.0 - np.tanh(5.0 * reach_gap)),
            "grasp": grasped.mean(axis=1),
            "fold": 1.0 - np.tanh(10.0 * evaluation["fold_gap"].mean(axis=1)),
            "transport": np.where(evaluation["success"], 1.0, transport),
            "place": evaluation["success"].astype(float),
        }
