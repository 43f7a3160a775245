"""The one policy loader: every command that runs a policy takes the same specs.

- ``expert``: the task's registered scripted expert;
- ``random``: uniform actions, seeded;
- ``PATH.zip``: a model saved by stable-baselines3 (``tground train``);
- ``PATH.pt``: a behaviour-cloning policy (``tground bc``);
- ``module:callable``: called with the env, returns a callable from batched observations to
  batched actions or an object with ``act(observations)``; either may have ``reset(env_mask)``.

A policy acts on a native VectorEnv's batched observations.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np

from ..envs import load_entry_point, spec_of
from ..errors import InputError, UnknownNameError

POLICY_SPECS = "expert, random, a saved SB3 model PATH.zip, a BC policy PATH.pt, or module:callable"


class Policy:
    """Batched observations -> batched actions, and ``reset(env_mask)`` when environments start episodes."""

    def __init__(self, act, reset=None, name: str = "policy"):
        self._act, self._reset, self.name = act, reset, name

    def act(self, observation: dict) -> np.ndarray:
        return self._act(observation)

    def reset(self, env_mask: np.ndarray) -> None:
        if self._reset is not None:
            self._reset(env_mask)


def make_expert(env):
    """The scripted expert registered for the task of ``env`` (a Gymnasium env or VectorEnv of a registered task)."""
    spec = spec_of(env)
    if spec.expert is None:
        raise UnknownNameError(f"task {spec.id} registers no scripted expert")
    obs_mode = env.unwrapped.task.config.obs_mode
    if not obs_mode.startswith("state"):
        raise InputError(f"the scripted expert acts on the state observation, which obs_mode={obs_mode!r} leaves out; "
                         f"use obs_mode='state+rgb' (or 'state+rgbd') to record its episodes with the pictures")
    return load_entry_point(spec.expert).for_env(env)


def random_policy(env, seed: int) -> Policy:
    rng = np.random.default_rng(seed)
    space = env.action_space
    return Policy(lambda observation: rng.uniform(space.low, space.high).astype(space.dtype), None, "random")


def load_policy(spec: str, env, seed: int = 0) -> Policy:
    """A Policy for ``env`` from one of the specs above; a bad spec raises ValueError saying why."""
    if spec == "expert":
        return wrap(make_expert(env), "expert")
    if spec == "random":
        return random_policy(env, seed)
    if spec.endswith(".zip"):
        return _sb3_policy(Path(spec), env)
    if spec.endswith(".pt"):
        from . import bc  # torch is imported only for a .pt policy

        return wrap(bc.load_policy(spec, env), spec)
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise InputError(f"--policy must be {POLICY_SPECS}; got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise InputError(f"--policy {spec}: cannot import {module_name!r} ({error})") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise InputError(f"--policy {spec}: {module_name} has no callable {attribute!r}")
    return wrap(factory(env), spec)


def wrap(policy, name: str) -> Policy:
    """A Policy from a callable or an object with ``act`` (and maybe ``reset``)."""
    if isinstance(policy, Policy):
        return policy
    act = getattr(policy, "act", None) or policy
    if not callable(act):
        raise InputError(f"policy {name!r} is neither callable nor has an act() method")
    return Policy(act, getattr(policy, "reset", None), name)


def checked_actions(policy: Policy, observation: dict, space) -> np.ndarray:
    """The policy's actions for a batch, refused with the reason if they do not fit; clipped as the env applies them."""
    actions = np.asarray(policy.act(observation))
    if actions.shape != space.shape:
        raise InputError(f"policy {policy.name!r} returned actions of shape {actions.shape}; the env takes {space.shape}")
    if not np.all(np.isfinite(actions)):
        raise InputError(f"policy {policy.name!r} returned NaN or inf actions")
    # Recorded exactly as applied: the env's dtype, clipped to the normalised range.
    return np.clip(actions.astype(space.dtype), -1.0, 1.0)


def _sb3_policy(path: Path, env) -> Policy:
    if not path.is_file():
        raise InputError(f"--policy {path}: no such file")
    try:
        import stable_baselines3 as sb3
    except ImportError:
        raise InputError("--policy PATH.zip needs stable-baselines3 (pip install stable-baselines3)") from None

    model, errors = None, []
    for name in ("PPO", "SAC", "TD3", "A2C", "DDPG"):  # the zip does not name its algorithm class
        try:
            model = getattr(sb3, name).load(str(path), device="cpu")
            break
        except Exception as error:  # noqa: BLE001 - a wrong class fails in many ways; the next is tried
            errors.append(f"{name}: {error}")
    if model is None:
        raise InputError(f"--policy {path}: not a loadable SB3 model ({'; '.join(errors)[:300]})")
    if model.action_space.shape != env.single_action_space.shape:
        raise InputError(f"--policy {path}: the model acts in {model.action_space.shape}, the env takes "
                         f"{env.single_action_space.shape} (another task or action mode?)")
    return sb3_model_policy(model, env, str(path))


def sb3_model_policy(model, env, name: str = "sb3") -> Policy:
    """A Policy from a stable-baselines3 model (deterministic actions) for a native VectorEnv."""
    from gymnasium import spaces

    keys = list(env.single_observation_space.spaces)
    flat = not isinstance(model.observation_space, spaces.Dict)

    def act(observation):
        if flat:  # trained on FlattenObservation: the keys in the space's order
            n = len(observation[keys[0]])
            observation = np.concatenate([observation[key].reshape(n, -1) for key in keys], axis=1)
        actions, _ = model.predict(observation, deterministic=True)
        return actions

    return Policy(act, None, name)
