"""Physics engines behind one batched interface; ``backend=`` picks one."""

from __future__ import annotations

from .engine import CONTACT_MATRICES, DRIVES, HAND_CONTACTS, Engine, EngineConfig, pd_torques
from .model import Model, bias_forces, forward_kinematics, jacobian, load_model, mass_matrix

BACKENDS = ("pybullet", "numpy")


def make_engine(backend: str, robot, scene, num_envs: int = 1, config: EngineConfig | None = None, **kwargs) -> Engine:
    """Build an engine by name: ``"numpy"`` (batched, the hot path) or ``"pybullet"`` (reference)."""
    if backend == "numpy":
        from .numpy_engine import NumpyEngine

        return NumpyEngine(robot, scene, num_envs, config, **kwargs)
    if backend == "pybullet":
        from .pybullet_engine import PybulletEngine

        return PybulletEngine(robot, scene, num_envs, config, **kwargs)
    raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")


__all__ = [
    "BACKENDS", "CONTACT_MATRICES", "DRIVES", "HAND_CONTACTS", "Engine", "EngineConfig", "Model", "bias_forces", "forward_kinematics", "jacobian", "load_model",
    "make_engine", "mass_matrix", "pd_torques",
]
