"""Tasks and their Gymnasium registration.

Ids are versioned (``TrainingGround/<Task>-v<N>``); each class docstring keeps the version
history. Registration is idempotent, so importing twice (or reloading) is harmless.
"""

from __future__ import annotations

import gymnasium

from .assembly import Assembly3CConfig, Assembly3CEnv, Assembly3CTask, Assembly3CVectorEnv
from .base import BatchedTask, ConfigError, TaskConfig, TrainingGroundEnv, make_config
from .bread import BreadPickPlaceConfig, BreadPickPlaceEnv, BreadPickPlaceTask, BreadPickPlaceVectorEnv
from .stand import StandConfig, StandEnv, StandTask, StandVectorEnv
from .vector import TrainingGroundVectorEnv
from .wardrobe import WardrobeFoldConfig, WardrobeFoldEnv, WardrobeFoldTask, WardrobeFoldVectorEnv

#: id -> (single-env entry point, task class, vector entry point)
TASKS = {
    "TrainingGround/BreadPickPlace-v0": ("training_ground.envs.bread:BreadPickPlaceEnv", BreadPickPlaceTask,
                                         "training_ground.envs.bread:BreadPickPlaceVectorEnv"),
    "TrainingGround/WardrobeFold-v0": ("training_ground.envs.wardrobe:WardrobeFoldEnv", WardrobeFoldTask,
                                       "training_ground.envs.wardrobe:WardrobeFoldVectorEnv"),
    "TrainingGround/Assembly3C-v0": ("training_ground.envs.assembly:Assembly3CEnv", Assembly3CTask,
                                     "training_ground.envs.assembly:Assembly3CVectorEnv"),
    "TrainingGround/Stand-v0": ("training_ground.envs.stand:StandEnv", StandTask,
                                "training_ground.envs.stand:StandVectorEnv"),
}
#: Short names accepted by the command line.
ALIASES = {"bread": "TrainingGround/BreadPickPlace-v0", "wardrobe": "TrainingGround/WardrobeFold-v0", "stand": "TrainingGround/Stand-v0", "assembly": "TrainingGround/Assembly3C-v0"}


def resolve_task_id(name: str) -> str:
    """Full id from an id or alias; a clear error lists what exists."""
    task_id = ALIASES.get(name, name)
    if task_id not in TASKS:
        raise KeyError(f"unknown task {name!r}; known ids: {sorted(TASKS)}, aliases: {sorted(ALIASES)}")
    return task_id


def register_all() -> None:
    for task_id, (entry_point, _, vector_entry_point) in TASKS.items():
        if task_id not in gymnasium.registry:
            gymnasium.register(id=task_id, entry_point=entry_point, vector_entry_point=vector_entry_point)


register_all()

__all__ = [
    "StandConfig", "StandEnv", "StandTask", "StandVectorEnv",
    "Assembly3CConfig", "Assembly3CEnv", "Assembly3CTask", "Assembly3CVectorEnv",
    "ALIASES", "TASKS", "BatchedTask", "BreadPickPlaceConfig", "BreadPickPlaceEnv", "BreadPickPlaceTask",
    "BreadPickPlaceVectorEnv", "TrainingGroundVectorEnv",
    "WardrobeFoldConfig", "WardrobeFoldEnv", "WardrobeFoldTask", "WardrobeFoldVectorEnv",
    "ConfigError", "TaskConfig", "TrainingGroundEnv", "make_config", "register_all", "resolve_task_id",
]
