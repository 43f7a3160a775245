"""Camera observations: which of a task's observation keys an obs_mode takes, and the frames its cameras hold.

obs_mode (a task config key):

- ``"state"``: the task's state observation (poses of the objects and goals relative to the hands, ...);
- ``"rgb"``: the robot's own sensing (the task's ``proprio_keys``: joints, hand poses) and one RGB picture per
  camera, ``<camera>_image`` (H, W, 3) uint8;
- ``"rgbd"``: as ``"rgb"`` and a depth picture per camera, ``<camera>_depth`` (H, W, 1) float32, metres along
  the optical axis, ``far`` where nothing is nearer;
- ``"state+rgb"``, ``"state+rgbd"``: the whole state observation with the pictures (a scripted expert acts on the
  state while the dataset records what a visual policy will see).

The keys are robomimic's (``agentview_image``, ``robot0_eye_in_hand_image``: ``<camera>_image``), so a collected
dataset names its image modality the way robomimic's configs expect. With ``instruction_obs=True`` every mode also
observes ``instruction``, the episode's instruction as UTF-8 bytes (:func:`decode_instruction`). Cameras take a picture every control step, or
at ``camera_fps``, holding the last picture in between as a slower real camera does. Each env's pictures follow its
own step count, so env i of a batch sees exactly what a single env does.
"""

from __future__ import annotations

import math

import numpy as np
from gymnasium import spaces

from ..errors import InputError
from ..physics.cameras import resolve_cameras

OBS_MODES = ("state", "rgb", "rgbd", "state+rgb", "state+rgbd")
#: The instruction observation (config key instruction_obs): the episode's instruction as UTF-8 bytes, padded with
#: zeros to this length: a fixed-size uint8 array batches, stores in HDF5 and passes through SB3 as any Box does.
INSTRUCTION_BYTES = 128


def encode_instructions(instructions) -> np.ndarray:
    """(N, INSTRUCTION_BYTES) uint8 of N instructions (:func:`decode_instruction` reads one back)."""
    encoded = np.zeros((len(instructions), INSTRUCTION_BYTES), np.uint8)
    for row, text in enumerate(instructions):
        data = text.encode("utf-8")
        if len(data) > INSTRUCTION_BYTES:
            raise ValueError(f"instruction {text!r} is {len(data)} bytes, over the observation's {INSTRUCTION_BYTES}")
        encoded[row, :len(data)] = np.frombuffer(data, np.uint8)
    return encoded


def decode_instruction(encoded) -> str:
    """The instruction an ``instruction`` observation (INSTRUCTION_BYTES,) holds."""
    return bytes(np.asarray(encoded, np.uint8)).rstrip(b"\0").decode("utf-8")


def instruction_space() -> spaces.Box:
    return spaces.Box(0, 255, (INSTRUCTION_BYTES,), np.uint8)


def takes_pictures(obs_mode: str) -> bool:
    return obs_mode != "state"


def render_period(camera_fps: float | None, control_dt: float) -> int:
    """Control steps from one picture to the next: 1 for ``camera_fps=None`` (every step); a rate that does not
    divide the control rate raises InputError naming the rates that do."""
    if camera_fps is None:
        return 1
    period = 1.0 / (camera_fps * control_dt)
    steps = round(period)
    if steps < 1 or not math.isclose(period, steps, rel_tol=1e-6):
        control_rate = 1.0 / control_dt
        rates = [f"{control_rate / k:g}" for k in range(1, 11) if control_rate / k >= 1.0]
        raise InputError(f"camera_fps={camera_fps:g} does not divide the control rate of {control_rate:g} Hz; "
                         f"take one of {', '.join(rates)} Hz (or null: a picture every control step)")
    return steps


class CameraObservations:
    """The pictures of a task's cameras (config keys cameras, camera_width, camera_height, camera_fps) in each env.

    A picture is due after a reset, after a restored state, and every ``period`` control steps; :meth:`observe`
    takes the due ones only, so reading the observation twice renders nothing twice.
    """

    def __init__(self, engine, robot, scene, config, num_envs: int):
        self.engine = engine
        self.views = resolve_cameras(robot, scene, config.cameras)
        self.width, self.height = config.camera_width, config.camera_height
        self.depth = config.obs_mode.endswith("d")
        self.period = render_period(config.camera_fps, config.control_dt)
        shape = (num_envs, len(self.views), self.height, self.width)
        self.rgb = np.zeros((*shape, 3), np.uint8)
        self.depths = np.zeros((*shape, 1), np.float32)
        self.due = np.ones(num_envs, dtype=bool)

    def mark_due(self, env_ids) -> None:
        self.due[env_ids] = True

    def after_step(self, elapsed: np.ndarray) -> None:
        """After a control step: each env whose step count reached its next picture takes one."""
        self.due |= elapsed % self.period == 0

    def observe(self) -> dict[str, np.ndarray]:
        due = np.flatnonzero(self.due)
        if due.size:
            self.rgb[due], self.depths[due] = self.engine.render_cameras(self.views, self.width, self.height, due)
            self.due[:] = False
        observation = {}
        for c, view in enumerate(self.views):
            observation[f"{view.name}_image"] = self.rgb[:, c].copy()
            if self.depth:
                observation[f"{view.name}_depth"] = self.depths[:, c].copy()
        return observation

    def spaces(self) -> dict[str, spaces.Box]:
        found = {}
        for view in self.views:
            found[f"{view.name}_image"] = spaces.Box(0, 255, (self.height, self.width, 3), np.uint8)
            if self.depth:
                found[f"{view.name}_depth"] = spaces.Box(0.0, view.far, (self.height, self.width, 1), np.float32)
        return found


def select_state(obs_mode: str, state: dict[str, np.ndarray], proprio_keys) -> dict[str, np.ndarray]:
    """The keys of a task's state observation that ``obs_mode`` takes: all, or the robot's own (``proprio_keys``)."""
    if obs_mode.startswith("state"):
        return state
    return {key: state[key] for key in proprio_keys}


def check_obs_mode(obs_mode: str) -> None:
    if obs_mode not in OBS_MODES:
        raise InputError(f"unknown obs_mode {obs_mode!r}; choose one of {OBS_MODES}")


__all__ = ["CameraObservations", "INSTRUCTION_BYTES", "OBS_MODES", "decode_instruction", "encode_instructions",
           "instruction_space", "check_obs_mode", "render_period", "select_state", "takes_pictures"]
