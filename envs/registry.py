"""The task registry: a task registers itself in its own file with one decorator.

    @register_task("TrainingGround/BreadPickPlace-v0", alias="bread",
                   expert="training_ground.agents.experts:BreadPickPlaceExpert")
    class BreadPickPlaceTask(BatchedTask): ...

That is all a task file does to exist everywhere: the decorator generates the task's
``gymnasium.Env`` and native ``VectorEnv`` classes (placed in the task's module, so the
Gymnasium entry points are importable strings), registers the id and the alias with
Gymnasium (``gymnasium.make("bread")`` works too) and records the scripted expert, which
lives in agents/ above this layer and is therefore named by an entry point and loaded only
when asked for. :func:`make_task_env` is the one way the project builds an env from an id.
"""

from __future__ import annotations

import importlib
import re
import sys
from dataclasses import dataclass

import gymnasium

from ..errors import UnknownNameError
from .base import BatchedTask, TrainingGroundEnv
from .config import make_config
from .vector import TrainingGroundVectorEnv

_ID = re.compile(r"^TrainingGround/(?P<name>[A-Za-z][A-Za-z0-9]*)-v(?P<version>\d+)$")


@dataclass(frozen=True)
class TaskSpec:
    """A registered task: its id and alias, the task class and the two generated env classes.

    expert: ``"module:attribute"`` of the scripted expert class (with ``for_env``/``for_task``), or None.
    """

    id: str
    alias: str
    task_class: type[BatchedTask]
    env_class: type[TrainingGroundEnv]
    vector_env_class: type[TrainingGroundVectorEnv]
    expert: str | None = None

    @property
    def config_class(self) -> type:
        return self.task_class.config_class

    @property
    def default_action_mode(self) -> str:
        return self.task_class.default_action_mode

    def entry_point(self, env_class: type) -> str:
        return f"{env_class.__module__}:{env_class.__name__}"


#: id -> TaskSpec, in registration order.
TASKS: dict[str, TaskSpec] = {}
#: alias -> id.
ALIASES: dict[str, str] = {}


def register_task(task_id: str, *, alias: str, expert: str | None = None):
    """Class decorator: register a BatchedTask subclass under ``task_id`` (``TrainingGround/<Name>-v<N>``)."""
    match = _ID.match(task_id)
    if match is None:
        raise ValueError(f"task id {task_id!r} must look like TrainingGround/<Name>-v<N>")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", alias):
        raise ValueError(f"alias {alias!r} must be a short lower-case name")

    def decorate(task_class: type[BatchedTask]) -> type[BatchedTask]:
        if not (isinstance(task_class, type) and issubclass(task_class, BatchedTask)):
            raise TypeError(f"register_task decorates a BatchedTask subclass, got {task_class!r}")
        for taken, owner in ((task_id, TASKS.get(task_id)), (alias, TASKS.get(ALIASES.get(alias, "")))):
            if owner is not None and owner.task_class.__qualname__ != task_class.__qualname__:
                raise ValueError(f"{taken!r} is already registered for {owner.task_class.__qualname__}")
        name = match["name"]
        module = sys.modules[task_class.__module__]
        about = "\n\n".join(text.strip() for text in (module.__doc__, task_class.__doc__) if text)
        env_class = type(f"{name}Env", (TrainingGroundEnv,), {
            "task_class": task_class, "__module__": module.__name__,
            "__doc__": f"``gymnasium.make({task_id!r})`` (or {alias!r}): one environment.\n\n{about}"})
        vector_env_class = type(f"{name}VectorEnv", (TrainingGroundVectorEnv,), {
            "task_class": task_class, "__module__": module.__name__,
            "__doc__": f"``gymnasium.make_vec({task_id!r}, num_envs=N, vectorization_mode=\"vector_entry_point\")``."})
        setattr(module, env_class.__name__, env_class)
        setattr(module, vector_env_class.__name__, vector_env_class)
        spec = TaskSpec(task_id, alias, task_class, env_class, vector_env_class, expert)
        TASKS[task_id] = spec
        ALIASES[alias] = task_id
        _register_with_gymnasium(spec)
        return task_class

    return decorate


def _register_with_gymnasium(spec: TaskSpec) -> None:
    for gym_id in (spec.id, spec.alias):
        if gym_id not in gymnasium.registry:  # idempotent: a re-import keeps the first spec
            gymnasium.register(id=gym_id, entry_point=spec.entry_point(spec.env_class),
                               vector_entry_point=spec.entry_point(spec.vector_env_class))


def register_all() -> None:
    """Register every known task with Gymnasium again (after a ``gymnasium.registry`` was cleared)."""
    for spec in TASKS.values():
        _register_with_gymnasium(spec)


def task_spec(name: str) -> TaskSpec:
    """The spec of a task id or alias; a clear error lists what exists."""
    task_id = ALIASES.get(name, name)
    if task_id not in TASKS:
        raise UnknownNameError(f"unknown task {name!r}; known ids: {sorted(TASKS)}, aliases: {sorted(ALIASES)}")
    return TASKS[task_id]


def resolve_task_id(name: str) -> str:
    """Full id from an id or alias."""
    return task_spec(name).id


def spec_of(env_or_task) -> TaskSpec:
    """The spec of the task behind an env (single or vector, wrapped or not) or a BatchedTask."""
    task = getattr(getattr(env_or_task, "unwrapped", env_or_task), "task", env_or_task)
    for spec in TASKS.values():
        if type(task) is spec.task_class:
            return spec
    raise UnknownNameError(f"{type(task).__name__} is not a registered task")


def load_entry_point(text: str):
    """The object an entry point ``"module:attribute"`` names."""
    module_name, sep, attribute = text.partition(":")
    if not sep:
        raise ValueError(f"entry point {text!r} must look like module:attribute")
    return getattr(importlib.import_module(module_name), attribute)


def make_task_env(task: str, num_envs: int | None = None, *, backend: str | None = None, action_mode: str | None = None,
                  reward_mode: str = "dense", config=None, render_mode: str | None = None, **overrides):
    """The env of a task id or alias: one ``gymnasium.Env`` (``num_envs=None``) or the native VectorEnv of N.

    ``config`` is a config instance or dict and ``overrides`` override single fields, as for
    ``gymnasium.make``; the action mode defaults to the task's and the backend to the env's
    (pybullet for one env, numpy for the VectorEnv).
    """
    spec = task_spec(task)
    config = make_config(spec.config_class, config, **overrides)
    kwargs = dict(action_mode=action_mode or spec.default_action_mode, reward_mode=reward_mode,
                  render_mode=render_mode, config=config)
    if backend is not None:
        kwargs["backend"] = backend
    if num_envs is None:
        return gymnasium.make(spec.id, **kwargs)
    return gymnasium.make_vec(spec.id, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs)
