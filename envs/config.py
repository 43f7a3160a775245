"""The one config parser: task configs from instances, dicts, JSON and ``KEY=VALUE`` overrides.

Every way a config arrives goes through :func:`make_config`: keyword arguments of
``gymnasium.make``, ``--set`` pairs of the command line (:func:`parse_overrides`) and the
JSON stored in a dataset (:func:`config_to_dict` writes it). Unknown keys at any depth and
values of the wrong type or outside their domain raise :class:`ConfigError` naming the key;
lists become tuples where the default is a tuple, so a config survives a JSON round trip
unchanged. Every field is checked, also those of a config instance built in Python.

Domains: every number must be finite; a ``*_range`` pair must not be reversed; and the
fields named in :data:`DOMAINS` (one meaning per name across the tasks and scenes, for a
range both of its ends) must lie in theirs; a field named in :data:`CHOICES` must be one of its strings.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import numbers

from .. import robots
from ..errors import InputError
from ..physics import CONTACT_MATRICES, DRIVES, HAND_CONTACTS
from ..physics.grasp import GRASP_MODES
from .observations import OBS_MODES


class ConfigError(InputError):
    """An unknown or invalid task configuration key or value."""


#: Field name (a ``*_range`` field: without the suffix) -> (lowest, highest, whether the bounds are included).
DOMAINS = {
    "max_steps": (1, math.inf, True),
    "count": (0, math.inf, True),
    **{name: (0.0, math.inf, False) for name in (
        "physics_dt", "control_dt", "mass", "radius", "length", "width", "half_side", "half_height",
        "stretch_stiffness", "bend_stiffness", "duration", "translation_scale", "rotation_scale", "rest_speed",
        "rest_spin", "fold_tolerance", "flat_height", "fall_height")},
    **{name: (0.0, math.inf, True) for name in (
        "friction", "magnitude", "min_gap", "start", "init_joint_noise", "init_leg_noise", "damping",
        "max_joint_lead", "posture_gain")},
    "fall_tilt": (0.0, math.pi, False),
    **{name: (1, 4096, True) for name in ("camera_width", "camera_height")},
    "camera_fps": (0.0, math.inf, False),
    "render_workers": (0, 256, True),
}

#: Config fields added after datasets were first recorded, with what the files written before each one
#: ran: a stored config that lacks a field is read with this value, not today's default, so that the
#: dataset still replays bit for bit however the default changes (:func:`with_stored_defaults`).
PREDATING_VALUES = {"drive": "damping_implicit", "contact_matrix": "per_contact", "hand_contact": "cover",
                    "robot_revision": 1}


def with_stored_defaults(config: dict) -> dict:
    """A config dict read from a dataset, with :data:`PREDATING_VALUES` for the fields it lacks."""
    return {**{key: value for key, value in PREDATING_VALUES.items() if key not in config}, **config}


#: Field name -> how a Python object given for it becomes the JSON value a dataset records: a
#: RobotDescription becomes the name it is registered under (robots.register).
CONVERTERS = {"robot": robots.robot_name}

#: Optional fields (default None) that take whole numbers, not floats.
OPTIONAL_WHOLE = {"robot_revision", "render_workers"}

#: String field name -> the values it may take.
CHOICES = {"drive": DRIVES, "grasp": GRASP_MODES, "contact_matrix": CONTACT_MATRICES, "hand_contact": HAND_CONTACTS,
           "obs_mode": OBS_MODES}


def make_config(config_class: type, config=None, **overrides):
    """``config_class`` from a config instance, a dict (nested dicts, JSON lists) or None, plus keyword overrides."""
    if isinstance(config, config_class):
        base, values = config, overrides
    elif config is None or isinstance(config, dict):
        base, values = config_class(), {**(config or {}), **overrides}
    else:
        raise ConfigError(f"config must be a {config_class.__name__} or a dict, got {type(config).__name__}")
    merged = _coerce(config_class.__name__, base, values)
    # Again from the defaults with every field given: an instance's own fields are checked too.
    return _coerce(config_class.__name__, config_class(), _fields_of(merged))


def _fields_of(config) -> dict:
    return {f.name: _fields_of(getattr(config, f.name)) if dataclasses.is_dataclass(getattr(config, f.name))
            else getattr(config, f.name) for f in dataclasses.fields(config)}


def config_to_dict(config) -> dict:
    """A task config as plain JSON values (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _coerce(name: str, default, value, whole: bool = False):
    if dataclasses.is_dataclass(default):
        if isinstance(value, type(default)):
            return value
        fields = {f.name for f in dataclasses.fields(default)}
        if not isinstance(value, dict):
            raise ConfigError(f"{name} takes a JSON object with keys {sorted(fields)}, got {value!r}")
        unknown = sorted(set(value) - fields)
        if unknown:
            raise ConfigError(f"unknown config key(s) {unknown} in {name}; valid keys: {sorted(fields)}")
        coerced = {key: _coerce(f"{name}.{key}", getattr(default, key),
                                CONVERTERS[key](item) if key in CONVERTERS else item, whole=key in OPTIONAL_WHOLE)
                   for key, item in value.items()}
        for key, item in coerced.items():
            _check_domain(f"{name}.{key}", key, item)
        try:
            return dataclasses.replace(default, **coerced)
        except ValueError as error:  # a dataclass's own check across its fields
            raise ConfigError(f"{name}: {error}") from None
    if default is None:  # an optional number (``float | None``), None meaning the field's documented rule
        if value is None:
            return None
        if whole:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ConfigError(f"{name} must be a whole number or null, got {value!r}")
            return int(value)
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number or null, got {value!r}")
        return float(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{name} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ConfigError(f"{name} must be a whole number, got {value!r}")
        return int(value)
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {value!r}")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name} must be a list like {list(default)!r}, got {value!r}")
        if not default:
            return tuple(value)
        return tuple(_coerce(f"{name}[{i}]", default[min(i, len(default) - 1)], item)
                     for i, item in enumerate(value))
    return value


def _check_domain(name: str, key: str, value) -> None:
    """The key's domain (DOMAINS); a ``*_range`` pair also in order. None (an optional field left to its rule) has none."""
    if value is None:
        return
    if key in CHOICES and isinstance(value, str):
        if value not in CHOICES[key]:
            raise ConfigError(f"{name} must be one of {CHOICES[key]}, got {value!r} (unknown {key} mode)")
        return
    is_range = key.endswith("_range")
    values = list(value) if is_range and isinstance(value, tuple) else [value]
    if is_range and len(values) == 2 and all(isinstance(v, numbers.Real) for v in values) and values[0] > values[1]:
        raise ConfigError(f"{name} is reversed: {tuple(value)} (low, high)")
    domain = DOMAINS.get(key[:-len("_range")] if is_range else key)
    if domain is None:
        return
    low, high, closed = domain
    for item in values:
        inside = low <= item <= high if closed else low < item < high
        if not inside:
            bounds = f"[{low}, {high}]" if closed else f"({low}, {high})"
            raise ConfigError(f"{name} must lie in {bounds}, got {value!r}")


def with_robot(pairs, robot: str | None) -> list[str]:
    """``--set`` pairs with a command line's ``--robot NAME_OR_SPEC`` added as ``robot=...``."""
    return [*pairs, f"robot={robot}"] if robot else list(pairs)


def parse_overrides(pairs) -> dict:
    """``["max_steps=40", "ik.damping=0.1", "randomization={...}"]`` -> a nested dict of parsed values.

    A value is read as JSON, then as a Python literal (tuples), else kept as a string.
    """
    result: dict = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set takes KEY=VALUE, got {pair!r}")
        value = _parse_value(text.strip())
        parts = key.strip().split(".")
        target = result
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise ConfigError(f"--set {key}: {part} was already given a value")
        if isinstance(target.get(parts[-1]), dict) and isinstance(value, dict):
            target[parts[-1]].update(value)
        else:
            target[parts[-1]] = value
    return result


def _parse_value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        value = ast.literal_eval(text)
        return list(value) if isinstance(value, tuple) else value
    except (ValueError, SyntaxError):
        return text
