"""Shared machinery of every task: config handling, the batched task core and the Gymnasium Env.

A task is a small subclass of :class:`BatchedTask` with five hooks (scene, episode
sampling, observation, evaluation, reward terms). Everything is batched over the
engine's environments, so the single ``gymnasium.Env`` here and the native VectorEnv
run the same code.
"""

from __future__ import annotations

import abc
import dataclasses
import os

import gymnasium
import numpy as np

from gymnasium import spaces

from .. import robots
from ..physics import BACKENDS, EngineConfig, make_engine
from ..physics.contacts import standing_height
from ..physics.grasp import GRASP_MODES
from ..physics.engine import StateLayout
from ..errors import InputError
from ..physics.scene import EpisodeSetup, ObjectParams, Scene
from .config import make_config
from .controllers import ACTION_MODES, IKSettings, make_controller, validate_action
from .observations import (CameraObservations, check_obs_mode, encode_instructions, instruction_space, select_state,
                           takes_pictures)

REWARD_MODES = ("dense", "sparse")
OBS_LIMIT = 1e4


@dataclasses.dataclass(frozen=True)
class TaskConfig:
    """Options every task has. Subclasses add their own fields.

    robot: a registered robot's name or a spec file's path (robots/spec.py). robot_revision: which of its revisions
    (robots.load; None: the robot's default, which a dataset records by number, so that it replays with the
    revision it ran). max_steps: control steps before truncation.
    grasp: "physical" (objects held by finger contact and friction) or "assisted" (the weld rule of
    physics/grasp.py); tasks whose objects only the assisted rule holds (cloth) default to it.
    physics_dt, control_dt (s), drive (physics DRIVES: how the PD
    drives are integrated; "implicit" holds stiff gains, numpy only), contact_matrix (physics
    CONTACT_MATRICES: how the numpy engine adds its implicit contact term), hand_contact (physics
    HAND_CONTACTS: how the numpy engine's hands touch objects): engine settings.
    init_joint_noise: uniform noise (rad) added to the initial arm posture.
    ik: settings of the ``ee_delta`` action mode.
    obs_mode: "state", "rgb", "rgbd", "state+rgb" or "state+rgbd" (envs/observations.py): what the observation holds.
    cameras: the cameras the image modes picture, by name: the robot's ("head", "left_wrist", "right_wrist" on the
    project's robots) and the scene's ("scene"). camera_width, camera_height: their pictures' size (pixels).
    camera_fps: pictures per second, a divisor of the control rate (None: one every control step).
    render_workers: worker processes that picture the numpy engine's cameras (None: one per core, up to one per
    env, for a batch; none for a single env).
    instruction_obs: observe the episode's instruction too, as ``instruction`` (envs/observations.py).
    """

    robot: str = "humanoid43"
    robot_revision: int | None = None
    max_steps: int = 300
    physics_dt: float = 1.0 / 500.0
    control_dt: float = 1.0 / 50.0
    grasp: str = "physical"
    drive: str = "damping_implicit"
    contact_matrix: str = "composite"
    hand_contact: str = "primitive"
    init_joint_noise: float = 0.02
    ik: IKSettings = dataclasses.field(default_factory=IKSettings)
    obs_mode: str = "state"
    cameras: tuple[str, ...] = ("head",)
    camera_width: int = 128
    camera_height: int = 128
    camera_fps: float | None = None
    render_workers: int | None = None
    instruction_obs: bool = False

    def engine_config(self, num_envs: int = 1) -> EngineConfig:
        return EngineConfig(physics_dt=self.physics_dt, control_dt=self.control_dt, grasp=self.grasp,
                            drive=self.drive, contact_matrix=self.contact_matrix,
                            hand_contact=self.hand_contact, render_workers=self.render_workers_for(num_envs))

    def render_workers_for(self, num_envs: int) -> int:
        """The render worker processes of a batch of ``num_envs`` (``render_workers``; None: the rule above)."""
        if not takes_pictures(self.obs_mode):
            return 0
        if self.render_workers is not None:
            return self.render_workers
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return 0 if num_envs < 2 else min(num_envs, cores)


@dataclasses.dataclass(frozen=True)
class EpisodeArray:
    """One per-env array a task keeps beside the engine: ``shape`` after the num_envs axis and ``dtype``.

    saved: whether it changes while the episode runs and so goes into the state (``task.<name>``
    block, as float columns: one per env for a per-env scalar, the array flattened otherwise);
    unsaved arrays are drawn at reset and come back with the episode's seed.
    """

    shape: tuple[int, ...] = ()
    dtype: type = float
    saved: bool = False


def _robot_lacks(robot: robots.RobotDescription, need: str) -> str | None:
    """What ``robot`` lacks of one need of a task (``BatchedTask.robot_needs``), or None."""
    kind, _, name = need.partition(":")
    if kind == "hands":
        fingered = [side for side, hand in robot.hands.items() if hand.finger_joints]
        return None if len(fingered) == 2 else f"two hands with finger joints (declares {sorted(robot.hands) or 'none'})"
    if kind == "feet":
        return None if len(robot.feet) == 2 else f"two feet (declares {list(robot.feet) or 'none'})"
    if kind == "torso":
        return None if robot.torso_link else "a torso link to push (torso_link)"
    if kind == "group":
        return None if name in robot.groups else f"a joint group {name!r} (has {list(robot.groups)})"
    if kind == "keyframe":
        return None if name in robot.keyframes else f"a keyframe {name!r} (has {sorted(robot.keyframes)})"
    raise ValueError(f"unknown robot need {need!r}")


def check_robot_needs(task_name: str, robot: robots.RobotDescription, needs) -> None:
    """Refuse a robot that lacks what a task needs, naming everything it lacks."""
    lacking = [lack for lack in (_robot_lacks(robot, need) for need in needs) if lack]
    if lacking:
        raise robots.RobotContractError(
            f"{task_name} needs a robot with {', '.join(needs)}; {robot.name!r} lacks " + "; ".join(lacking)
            + ". Declare them in the robot's spec file (robots/spec.py) or pick another task.")


class BatchedTask(abc.ABC):
    """One task on N environments of one engine. Subclasses implement the hooks below."""

    config_class: type[TaskConfig] = TaskConfig
    #: Named reward terms; the dense reward is their sum times the config's scales.
    reward_names: tuple[str, ...] = ()
    #: What the episode asks, in words: ``str.format`` templates over :meth:`instruction_slots`' fields. One is
    #: picked per episode from its seed; every task has at least one (tests/test_instructions.py).
    instruction_templates: tuple[str, ...] = ()
    #: The keys of :meth:`observe` that the robot senses itself (joints, hands): what the image observation modes
    #: keep of the state (envs/observations.py).
    proprio_keys: tuple[str, ...] = ("joint_pos", "joint_vel", "hand_pos", "hand_quat")
    #: The action mode an env gets when none is named (its scripted expert's).
    default_action_mode: str = "ee_delta"
    #: What the robot must declare (checked before anything is built): "hands" (two, with fingers),
    #: "feet" (two), "torso" (a link to push), "group:NAME", "keyframe:NAME".
    robot_needs: tuple[str, ...] = ("hands", "group:arms", "keyframe:arms_ready")
    #: The grasp modes (physics/grasp.py GRASP_MODES) the task's objects can be held by.
    grasp_modes: tuple[str, ...] = GRASP_MODES
    grasp_modes_why: str = ""

    @classmethod
    def check_grasp(cls, config: TaskConfig) -> None:
        """Refuse a grasp mode the task's objects cannot be held by, saying why."""
        if config.grasp not in cls.grasp_modes:
            raise InputError(f"{cls.__name__.removesuffix('Task')} supports grasp={cls.grasp_modes}, not "
                             f"{config.grasp!r}: " + cls.grasp_modes_why)

    def __init__(self, backend: str = "pybullet", num_envs: int = 1, action_mode: str | None = None,
                 reward_mode: str = "dense", config: TaskConfig | None = None, gui: bool = False):
        action_mode = action_mode or self.default_action_mode
        if backend not in BACKENDS:
            raise InputError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
        if action_mode not in ACTION_MODES:
            raise InputError(f"unknown action_mode {action_mode!r}; choose one of {ACTION_MODES}")
        if reward_mode not in REWARD_MODES:
            raise InputError(f"unknown reward_mode {reward_mode!r}; choose one of {REWARD_MODES}")
        self.config = config or self.config_class()
        self.check_grasp(self.config)
        check_obs_mode(self.config.obs_mode)
        self.closed = False
        self._state_cache: dict = {}
        self.backend, self.action_mode, self.reward_mode = backend, action_mode, reward_mode
        self.robot = robots.load(self.config.robot, revision=self.config.robot_revision)
        check_robot_needs(type(self).__name__.removesuffix("Task"), self.robot, self.robot_needs)
        if self.robot.standing_base_height is None:  # a spec that leaves it to the feet
            self.robot = dataclasses.replace(self.robot, standing_base_height=standing_height(
                self.robot, self.robot.keyframe("standing")))
        self.scene = self.build_scene()
        self.engine = make_engine(backend, self.robot, self.scene, num_envs, self.config.engine_config(num_envs),
                                  gui=gui)
        try:
            self.camera_observations = (CameraObservations(self.engine, self.robot, self.scene, self.config, num_envs)
                                        if takes_pictures(self.config.obs_mode) else None)
            self.num_envs = num_envs
            self.controller = make_controller(action_mode, self.engine, self.config.ik)
            self.action_space = spaces.Box(-1.0, 1.0, (self.controller.action_size,), np.float32)
            self.elapsed = np.zeros(num_envs, dtype=np.int64)
            # Saturation diagnostic (not state): per actuator, the physics substeps at the torque limit summed
            # over the control steps counted since the env's reset or restore, in units of control steps.
            self._saturated_steps = np.zeros((num_envs, self.robot.num_joints))
            self._saturation_counted = np.zeros(num_envs, dtype=np.int64)
            self.episode_params: list[list[ObjectParams]] = [[] for _ in range(num_envs)]
            #: Each env's episode instruction, in words (:meth:`instruction_slots`).
            self.instructions: list[str] = [""] * num_envs
            for name, array in self.episode_state().items():
                setattr(self, name, np.zeros((num_envs, *array.shape), dtype=array.dtype))
            # A first episode gives the observation shapes; a bad config fails here, not mid-run.
            self.reset(np.arange(num_envs), [np.random.default_rng(0) for _ in range(num_envs)])
            state = select_state(self.config.obs_mode, self.observe(), self.proprio_keys)
            self.observation_space = spaces.Dict({
                **{key: spaces.Box(-OBS_LIMIT, OBS_LIMIT, value.shape[1:], np.float32) for key, value in state.items()},
                **(self.camera_observations.spaces() if self.camera_observations else {}),
                **({"instruction": instruction_space()} if self.config.instruction_obs else {}),
            })
        except Exception:
            self.engine.close()
            raise

    # ------------------------------------------------------------------ hooks
    @abc.abstractmethod
    def build_scene(self) -> Scene:
        """The static scene and the names of its free objects."""

    @abc.abstractmethod
    def sample_episode(self, rng: np.random.Generator) -> EpisodeSetup:
        """One env's initial state: joint positions, the objects' parameters and poses, the garment if any."""

    @abc.abstractmethod
    def observe(self) -> dict[str, np.ndarray]:
        """The state observation: arrays with a leading num_envs axis (:meth:`observation` adds the pictures)."""

    @abc.abstractmethod
    def evaluate(self) -> dict[str, np.ndarray]:
        """At least ``success`` and ``failure`` (bool, (N,)); a failed episode terminates.

        A pure function of the engine's state and the task's per-episode arrays: it changes nothing.
        """

    @abc.abstractmethod
    def reward_terms(self, evaluation: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Unscaled reward terms, one (N,) array per name in ``reward_names``."""

    def episode_state(self) -> dict[str, EpisodeArray]:
        """The task's per-episode arrays by name, in state order. Before the first reset each becomes an
        attribute of zeros, (num_envs, *shape); a reset zeroes the rows it starts before :meth:`init_episode`."""
        return {}

    def init_episode(self, env_ids: np.ndarray, episodes: list[EpisodeSetup], rngs: list[np.random.Generator]) -> None:
        """Fill the per-episode arrays of the episodes just started, after the engine's reset.

        Draws come from each env's generator after :meth:`sample_episode`'s, so one seed fixes the whole episode.
        """

    def instruction_slots(self, env_id: int) -> dict[str, str]:
        """The words that fill ``instruction_templates`` for env ``env_id``'s episode, from what it drew (which
        object, which socket), after :meth:`init_episode`."""
        return {}

    def before_step(self) -> None:
        """Before each step's physics: what the task does to the world this step (Stand pushes the torso)."""

    def advance(self, evaluation: dict[str, np.ndarray]) -> None:
        """After each step's evaluation: move the per-episode arrays on to the new step (what it carries to the next)."""

    def arms_ready_posture(self, rng: np.random.Generator) -> np.ndarray:
        """The ``arms_ready`` keyframe with uniform noise of ``init_joint_noise`` rad on the arms, within limits."""
        q = self.robot.keyframe("arms_ready")
        arms = self.robot.joint_indices("arms")
        q[arms] += rng.uniform(-1, 1, len(arms)) * self.config.init_joint_noise
        return np.clip(q, self.robot.joint_lower, self.robot.joint_upper)

    def observation(self) -> dict[str, np.ndarray]:
        """What the config's obs_mode observes (envs/observations.py): the state's arrays (float64 here; the envs
        give float32) and the cameras' pictures, each with a leading num_envs axis."""
        observation = select_state(self.config.obs_mode, self.observe(), self.proprio_keys)
        if self.camera_observations is not None:
            observation = {**observation, **self.camera_observations.observe()}
        if self.config.instruction_obs:
            observation["instruction"] = encode_instructions(self.instructions)
        return observation

    def cached(self, key: str, compute):
        """``compute()`` once per simulator state: hooks share engine reads within one step."""
        if key not in self._state_cache:
            self._state_cache[key] = compute()
        return self._state_cache[key]

    def reward_scales(self) -> dict[str, float]:
        return {name: getattr(self.config, f"{name}_scale") for name in self.reward_names}

    # ------------------------------------------------------------------ batched API
    def reset(self, env_ids: np.ndarray, rngs: list[np.random.Generator]) -> None:
        """Start new episodes in ``env_ids``, each drawn from its own generator."""
        self._check_open()
        episodes = [self.sample_episode(rng) for rng in rngs]
        for env_id, episode in zip(env_ids, episodes):
            self.episode_params[env_id] = list(episode.objects)
        joint_pos = np.array([episode.joint_pos for episode in episodes])
        self.engine.reset(env_ids, episodes)
        self._state_cache = {}
        self.controller.reset(env_ids, joint_pos)
        self.elapsed[env_ids] = 0
        self._saturated_steps[env_ids] = 0.0
        self._saturation_counted[env_ids] = 0
        for name in self.episode_state():
            getattr(self, name)[env_ids] = 0
        self.init_episode(env_ids, episodes, rngs)
        if self.camera_observations is not None:
            self.camera_observations.mark_due(env_ids)
        for env_id, rng in zip(env_ids, rngs):
            self.instructions[env_id] = self._instruction(int(env_id), rng)

    def _instruction(self, env_id: int, rng: np.random.Generator) -> str:
        # The template is drawn from a child of the episode's seed, not from its generator, so the episode's own
        # draws stay what they were before instructions existed (recorded datasets replay bit for bit).
        seed_sequence = getattr(rng.bit_generator, "seed_seq", None)
        pick = 0 if seed_sequence is None else int(np.random.default_rng(seed_sequence.spawn(1)[0]).integers(
            len(self.instruction_templates)))
        return self.instruction_templates[pick].format(**self.instruction_slots(env_id))

    def step(self, actions: np.ndarray):
        """Apply (N, action_size) actions for one control step.

        Returns observations, rewards (N,), terminated (N,), truncated (N,) and a dict of
        per-env info arrays: is_success, diverged, saturated_fraction (the worst actuator's fraction
        of the episode's physics steps spent at its torque limit: a drive that chatters between its
        limits, or one pinned there, shows near 1 without the env being flagged diverged), one
        entry per reward term, and the episode's instruction (str).
        """
        self._check_open()
        self.before_step()
        self.controller.apply(actions)
        self.engine.step()
        self._state_cache = {}
        self.elapsed += 1
        self._saturated_steps += self.engine.saturated_fraction
        self._saturation_counted += 1
        evaluation = self.evaluate()
        self.advance(evaluation)
        terms = self.reward_terms(evaluation)
        scales = self.reward_scales()
        scaled = {name: scales[name] * terms[name] for name in self.reward_names}
        if self.reward_mode == "dense":
            # Term by term, elementwise: a batch's env i sums exactly like a single env.
            reward = np.zeros(self.num_envs)
            for value in scaled.values():
                reward = reward + value
        else:
            reward = evaluation["success"].astype(float)
        diverged = self.engine.diverged.copy()
        if self.camera_observations is not None:
            self.camera_observations.after_step(self.elapsed)
        observation = self.observation()
        finite = np.ones(self.num_envs, dtype=bool)
        for key, value in observation.items():
            if np.issubdtype(value.dtype, np.floating):
                finite &= np.isfinite(value).reshape(self.num_envs, -1).all(axis=1)
        diverged |= ~finite | ~np.isfinite(reward)
        observation = {key: sanitize(value) for key, value in observation.items()}
        reward = np.where(diverged, 0.0, np.nan_to_num(reward))
        terminated = (evaluation["success"] | evaluation["failure"]) & ~diverged
        truncated = (self.elapsed >= self.config.max_steps) | diverged
        saturated = self._saturated_steps.max(axis=1) / self._saturation_counted
        info = {"is_success": evaluation["success"] & ~diverged, "diverged": diverged,
                "saturated_fraction": saturated, "reward_terms": scaled, "instruction": self.episode_instructions()}
        return observation, reward, terminated, truncated & ~terminated, info

    def episode_instructions(self) -> np.ndarray:
        """(N,) str: each env's episode instruction."""
        return np.array(self.instructions, dtype=np.str_)

    def start_info(self) -> dict:
        """The info of a reset, with the keys and kinds of a step's (Minari records reset and step infos alike):
        nothing succeeded, diverged, saturated or was rewarded yet."""
        zeros = np.zeros(self.num_envs)
        return {"is_success": zeros.astype(bool), "diverged": zeros.astype(bool), "saturated_fraction": zeros,
                "reward_terms": {name: zeros.copy() for name in self.reward_names},
                "instruction": self.episode_instructions()}

    # ------------------------------------------------------------------ saving and restoring state
    def task_state_blocks(self) -> dict[str, np.ndarray]:
        """Task-side state carried between steps, as named (N, ...) arrays: elapsed steps, the controller's,
        then the saved per-episode arrays (:meth:`episode_state`)."""
        blocks = {"elapsed": self.elapsed.astype(float)}
        blocks.update({f"controller.{name}": value for name, value in self.controller.state_blocks().items()})
        for name, array in self.episode_state().items():
            if array.saved:
                value = getattr(self, name)
                blocks[name] = (value if value.ndim == 1 else value.reshape(self.num_envs, -1)).astype(float)
        return blocks

    def load_task_state_blocks(self, env_ids: np.ndarray, blocks: dict[str, np.ndarray]) -> None:
        self.elapsed[env_ids] = np.rint(blocks["elapsed"]).astype(np.int64)
        prefix = "controller."
        self.controller.load_state_blocks(
            env_ids, {name[len(prefix):]: value for name, value in blocks.items() if name.startswith(prefix)})
        self._saturated_steps[env_ids] = 0.0  # the diagnostic counts again from the restored step
        self._saturation_counted[env_ids] = 0
        for name, array in self.episode_state().items():
            if array.saved:
                value = blocks[name].reshape(len(env_ids), *array.shape)
                if np.dtype(array.dtype) == bool:
                    value = value > 0.5
                elif np.issubdtype(np.dtype(array.dtype), np.integer):
                    value = np.rint(value)
                getattr(self, name)[env_ids] = value

    def _state_blocks(self) -> dict[str, np.ndarray]:
        return {**{f"task.{name}": value for name, value in self.task_state_blocks().items()},
                **{f"engine.{name}": value for name, value in self.engine.state_blocks().items()}}

    def state_layout(self) -> StateLayout:
        """Named column blocks of :meth:`get_state`: ``task.*`` (task and controller), then ``engine.*``."""
        return StateLayout.of(self._state_blocks())

    def get_state(self) -> np.ndarray:
        """(num_envs, S) float64: everything needed to continue each env's episode exactly from here.

        Restoring a row with :meth:`set_state` into an env that was reset into the same episode
        (same seed, hence the same objects) makes it step on exactly as it would have.
        """
        blocks = self._state_blocks()
        return StateLayout.of(blocks).pack(blocks)

    def set_state(self, env_ids, states: np.ndarray) -> None:
        """Restore environments ``env_ids`` to rows of :meth:`get_state`; the others are untouched."""
        env_ids = self.engine._env_ids(env_ids)
        blocks = self.state_layout().unpack(states, len(env_ids))
        self.load_task_state_blocks(env_ids, {name[5:]: value for name, value in blocks.items()
                                              if name.startswith("task.")})
        self.engine.load_state_blocks(env_ids, {name[7:]: value for name, value in blocks.items()
                                                if name.startswith("engine.")})
        self._state_cache = {}
        if self.camera_observations is not None:  # a restored env pictures the state it is in now
            self.camera_observations.mark_due(env_ids)

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("this env is closed; make a new one with gymnasium.make")

    def close(self) -> None:
        self.closed = True
        self.engine.close()


#: Seeds are ints in [0, MAX_SEED): they are stored as int64 in datasets.
MAX_SEED = 2**63


def check_seed(seed) -> int:
    """``seed`` as an int, or an InputError: a float is not truncated, a bool is not a seed."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < MAX_SEED:
        raise InputError(f"a seed must be an int in [0, 2**63), got {seed!r}")
    return int(seed)


def sanitize(value: np.ndarray) -> np.ndarray:
    """float32 copy with non-finite entries zeroed and magnitudes bounded by the observation space; a picture
    (uint8) as it is, copied."""
    if value.dtype == np.uint8:
        return value.copy()
    return np.clip(np.nan_to_num(value, nan=0.0, posinf=0.0, neginf=0.0), -OBS_LIMIT, OBS_LIMIT).astype(np.float32)


class SpecWithTimeLimit:
    """An env's ``spec`` that names its time limit: ``gymnasium.make`` sets the spec after building the env, and the
    limit is the config's ``max_steps``, at which the env truncates by itself. So ``spec.max_episode_steps`` says it
    (Minari records it) while make, which reads its own copy, adds no TimeLimit wrapper of its own."""

    config: TaskConfig

    @property
    def spec(self):
        return self.__dict__.get("_spec")

    @spec.setter
    def spec(self, spec) -> None:
        if spec is not None and spec.max_episode_steps is None:
            spec = dataclasses.replace(spec, max_episode_steps=self.config.max_steps)
        self.__dict__["_spec"] = spec


class TrainingGroundEnv(SpecWithTimeLimit, gymnasium.Env):
    """One environment of a task as a ``gymnasium.Env``.

    Keyword arguments: backend ("pybullet" | "numpy"), action_mode ("joint_pos" | "ee_delta";
    default: the task's ``default_action_mode``),
    reward_mode ("dense" | "sparse"), render_mode (None | "rgb_array" | "human"), config
    (a config dataclass or dict); any other keyword overrides one config field and an
    unknown one raises ConfigError.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 25}
    task_class: type[BatchedTask]

    def __init__(self, backend: str = "pybullet", action_mode: str | None = None, reward_mode: str = "dense",
                 render_mode: str | None = None, config=None, **overrides):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"unknown render_mode {render_mode!r}; choose one of {self.metadata['render_modes']}")
        config = make_config(self.task_class.config_class, config, **overrides)
        self.render_mode = render_mode
        self.task = self.task_class(backend, 1, action_mode, reward_mode, config, gui=render_mode == "human")
        self.config = config
        self.action_space = self.task.action_space
        self.observation_space = self.task.observation_space
        self.metadata = {**self.metadata, "render_fps": int(round(1.0 / config.control_dt))}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=None if seed is None else check_seed(seed))
        self.task.reset(np.array([0]), [self.np_random])
        return self.current_observation(), self._single_info(self.task.start_info())

    def current_observation(self) -> dict:
        """The observation of the env's state now, as reset and step return it (after a ``task.set_state`` too)."""
        return {key: sanitize(value[0]) for key, value in self.task.observation().items()}

    def step(self, action):
        action = validate_action(action, self.action_space, batched=False)
        observation, reward, terminated, truncated, info = self.task.step(action[None])
        observation = {key: value[0] for key, value in observation.items()}
        return observation, float(reward[0]), bool(terminated[0]), bool(truncated[0]), self._single_info(info)

    @staticmethod
    def _single_info(info: dict) -> dict:
        """The batched task's info for its one env, as plain Python values."""
        return {
            "is_success": bool(info["is_success"][0]),
            "diverged": bool(info["diverged"][0]),
            "saturated_fraction": float(info["saturated_fraction"][0]),
            "reward_terms": {name: float(value[0]) for name, value in info["reward_terms"].items()},
            "instruction": str(info["instruction"][0]),
        }

    def render(self):
        self.task._check_open()
        if self.render_mode == "rgb_array":
            return self.task.engine.render(0)
        return None

    def close(self):
        self.task.close()
