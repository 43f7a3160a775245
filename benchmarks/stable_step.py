"""Each engine at its largest stable step: the same tracking task, the same error bound, simulated s per wall s.

A row of ``tground bench engine`` (``--stable-step``). Throughput at one shared step
hides what an integrator buys: an engine that stays accurate at a four times larger step does
four times the simulated time per step. So every engine runs the same task, humanoid43 on a
fixed base under gravity tracking a joint trajectory (each joint a 0.5 Hz sine of 0.2 rad
about the ready pose, phases spread over the joints, 2 s), at each candidate step from the
largest down. Its largest stable step is the largest at which the run stays finite and its
RMS tracking error (joint position minus target, over joints and 50 Hz samples) stays within
``ERROR_MARGIN`` of the reference: MuJoCo's ``implicit`` integrator at the smallest step.
At that step its rate is measured as in the other rows (all cores, N environments) and
reported as simulated seconds per wall second, the batch's sum.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..physics import model as numpy_model
from ..physics import numpy_engine
from ..physics.engine import pd_torques

#: Candidate physics steps (s), largest first; all divide the 50 Hz control period.
CANDIDATE_STEPS = (1 / 50, 1 / 100, 1 / 200, 1 / 250, 1 / 500, 1 / 1000, 1 / 2000)
REFERENCE_STEP = 1 / 4000
DURATION = 2.0
SAMPLE_DT = 1 / 50
#: A run tracks "within the same error" if its RMS error is at most this times the reference's.
ERROR_MARGIN = 1.25
AMPLITUDE, FREQUENCY = 0.2, 0.5

#: The numpy engine's actuator laws, as keyword arguments of numpy_engine.step.
NUMPY_LAWS = {
    "numpy, implicit": {"drive": "implicit"},
    "numpy, damping implicit": {"drive": "damping_implicit"},
    "numpy, explicit": {"drive": "explicit"},
}
MUJOCO_INTEGRATORS = ("implicitfast", "implicit")


def trajectory(robot, t: float) -> np.ndarray:
    """The targets (num_joints,) at time t: the ready pose plus phase-spread sines, inside the joint limits."""
    phases = np.linspace(0.0, 2 * math.pi, robot.num_joints, endpoint=False)
    targets = robot.keyframe("arms_ready") + AMPLITUDE * np.sin(2 * math.pi * FREQUENCY * t + phases)
    return np.clip(targets, robot.joint_lower, robot.joint_upper)


def _samples(dt: float) -> tuple[int, int]:
    """(physics steps in the run, physics steps between samples)."""
    return int(round(DURATION / dt)), int(round(SAMPLE_DT / dt))


def _rms(errors: list[np.ndarray]) -> float:
    stacked = np.array(errors)
    return float(np.sqrt(np.mean(stacked ** 2))) if np.isfinite(stacked).all() else math.inf


def numpy_error(robot, dt: float, law: dict) -> float:
    model = numpy_model.load_model(robot, fixed_base=True)
    params = numpy_engine.ActuatorParams.from_robot(robot)
    state = numpy_engine.init(model, robot.keyframe("arms_ready")[None])
    steps, every = _samples(dt)
    errors = []
    for k in range(steps):
        targets = trajectory(robot, k * dt)[None]
        state = numpy_engine.step(model, params, state, targets, dt, **law)
        if state.diverged.any():
            return math.inf
        if (k + 1) % every == 0:
            errors.append(state.q[0] - trajectory(robot, (k + 1) * dt))
    return _rms(errors)


def pybullet_error(robot, dt: float) -> float:
    from .engine_throughput import _pybullet_envs

    (client,), ((body, joints),) = _pybullet_envs(robot, 1)
    client.setTimeStep(dt)
    import pybullet

    steps, every = _samples(dt)
    errors = []
    try:
        for k in range(steps):
            states = client.getJointStates(body, joints)
            q, qd = np.array([s[0] for s in states]), np.array([s[1] for s in states])
            client.setJointMotorControlArray(body, joints, pybullet.TORQUE_CONTROL,
                                             forces=pd_torques(robot, q, qd, trajectory(robot, k * dt)).tolist())
            client.stepSimulation()
            if (k + 1) % every == 0:
                q = np.array([s[0] for s in client.getJointStates(body, joints)])
                if not np.isfinite(q).all() or np.abs(q).max() > 1e3:
                    return math.inf
                errors.append(q - trajectory(robot, (k + 1) * dt))
    finally:
        client.disconnect()
    return _rms(errors)


def mujoco_error(robot, dt: float, integrator: str) -> float:
    import mujoco

    from .engine_throughput import mujoco_model

    model = mujoco_model(robot)
    model.opt.timestep = dt
    model.opt.integrator = getattr(mujoco.mjtIntegrator, f"mjINT_{integrator.upper()}")
    data = mujoco.MjData(model)
    addresses = [model.joint(name).qposadr[0] for name in robot.joint_names]
    actuators = [model.actuator(name).id for name in robot.joint_names]
    data.qpos[addresses] = robot.keyframe("arms_ready")
    steps, every = _samples(dt)
    errors = []
    for k in range(steps):
        data.ctrl[actuators] = trajectory(robot, k * dt)
        mujoco.mj_step(model, data)
        if (k + 1) % every == 0:
            q = data.qpos[addresses]
            if not np.isfinite(q).all():
                return math.inf
            errors.append(q - trajectory(robot, (k + 1) * dt))
    return _rms(errors)


def engines(available: list[str]) -> dict:
    """Engine label -> error function of (robot, dt), for the engines asked for."""
    found = {}
    if "numpy" in available:
        for label, law in NUMPY_LAWS.items():
            found[label] = lambda robot, dt, law=law: numpy_error(robot, dt, law)
    if "pybullet" in available:
        found["pybullet (explicit, torque mode)"] = pybullet_error
    if "mujoco" in available:
        for integrator in MUJOCO_INTEGRATORS:
            found[f"mujoco {integrator}"] = lambda robot, dt, integrator=integrator: mujoco_error(robot, dt, integrator)
    return found


def largest_stable_steps(robot, available: list[str]) -> dict:
    """The reference error and, per engine, its error at each candidate step tried and the largest stable one."""
    reference = mujoco_error(robot, REFERENCE_STEP, "implicit") if "mujoco" in available else \
        numpy_error(robot, REFERENCE_STEP, NUMPY_LAWS["numpy, explicit"])
    bound = ERROR_MARGIN * reference
    found = {"reference_rms_error": reference, "error_bound": bound, "engines": {}}
    for label, error_of in engines(available).items():
        tried = {}
        for dt in CANDIDATE_STEPS:
            tried[dt] = error_of(robot, dt)
            if tried[dt] <= bound:
                break
        stable = [dt for dt, error in tried.items() if error <= bound]
        found["engines"][label] = {"errors": {f"1/{round(1 / dt)}": error for dt, error in tried.items()},
                                   "largest_stable_step": stable[0] if stable else None,
                                   "rms_error": tried[stable[0]] if stable else None}
    return found


def rate_at(label: str, dt: float, n: int, workers: int, seconds: float) -> float:
    """Env-steps per second of ``label``'s engine at physics step dt, N environments, all workers."""
    from . import engine_throughput as bench

    if label.startswith("numpy"):
        return bench.in_processes(bench._numpy_worker, n, workers, 512, seconds, dt=dt, law=NUMPY_LAWS[label])
    if label.startswith("pybullet"):
        # Independent clients cost the same per environment at any N: the rate of 64 stands for N's (see the rows).
        return bench.in_processes(bench._pybullet_worker, min(n, 64), workers, 0, seconds, dt=dt)
    model = bench.mujoco_model(bench._robot())
    import mujoco

    model.opt.timestep = dt
    model.opt.integrator = getattr(mujoco.mjtIntegrator, f"mjINT_{label.split()[-1].upper()}")
    return bench._mujoco(n, workers, seconds, model)


def stable_step_row(robot, available: list[str], n: int, workers: int, seconds: float) -> dict:
    """The row: each engine's largest stable step, its error there, and its simulated seconds per wall second."""
    row = {"num_envs": n, **largest_stable_steps(robot, available)}
    for label, entry in row["engines"].items():
        dt = entry["largest_stable_step"]
        if dt is None:
            entry["simulated_s_per_wall_s"] = None
            continue
        start = time.perf_counter()
        entry["env_steps_per_s"] = rate_at(label, dt, n, workers, seconds)
        entry["simulated_s_per_wall_s"] = entry["env_steps_per_s"] * dt
        entry["measured_in_s"] = time.perf_counter() - start
    return row


def print_row(row: dict) -> None:
    print(f"largest stable step, humanoid43 tracking a 2 s trajectory within {ERROR_MARGIN}x the reference RMS error "
          f"({row['reference_rms_error']:.4f} rad), N = {row['num_envs']}:")
    for label, entry in row["engines"].items():
        if entry["largest_stable_step"] is None:
            print(f"  {label:<34} no candidate step is stable: {entry['errors']}")
            continue
        print(f"  {label:<34} dt 1/{round(1 / entry['largest_stable_step']):<5} error {entry['rms_error']:.4f} rad  "
              f"{entry['simulated_s_per_wall_s']:>10,.0f} simulated s / wall s")
