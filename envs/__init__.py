"""Tasks and their Gymnasium registration.

Every module of this package is imported here, and each task module registers its task
with :func:`register_task` (envs/registry.py): adding a task is adding its file. Ids are
versioned (``TrainingGround/<Task>-v<N>``); each task class's docstring keeps the version
history. Registration is idempotent, so importing twice (or reloading) is harmless.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import BatchedTask, TaskConfig, TrainingGroundEnv
from .config import ConfigError, config_to_dict, make_config, parse_overrides, with_robot
from .registry import (ALIASES, TASKS, TaskSpec, load_entry_point, make_task_env, register_all, register_task,
                       resolve_task_id, spec_of, task_spec)
from .vector import TrainingGroundVectorEnv

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "ALIASES", "TASKS", "BatchedTask", "ConfigError", "TaskConfig", "TaskSpec", "TrainingGroundEnv",
    "TrainingGroundVectorEnv", "config_to_dict", "load_entry_point", "make_config", "make_task_env", "parse_overrides", "with_robot",
    "register_all", "register_task", "resolve_task_id", "spec_of", "task_spec",
]
