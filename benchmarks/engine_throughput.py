"""Physics env-steps per second, contact-free, numpy vs pybullet vs MuJoCo, in one run.

``tground bench engine --num-envs 1 16 64 256 1024 4096 --json engine.json --png engine.png``

Every engine steps humanoid43 on a fixed base (pelvis on a stand, nothing to touch) at the
same dt with the same PD law towards the same targets:

- numpy: :func:`physics.numpy_engine.step`, one worker process per core, each stepping its
  share of the N environments in chunks;
- pybullet: TORQUE_CONTROL with the explicit PD law, one DIRECT client per environment, one
  worker process per core. Independent clients cost the same per environment at any N, and
  thousands of clients do not fit in memory, so above ``--pybullet-max`` environments the
  best rate measured at any smaller N is reported (the kindest reading for pybullet) and
  marked ``extrapolated``;
- MuJoCo: the same URDF through mujoco's importer, joint position actuators with the same
  kp, kv and force limits, implicitfast integrator, contacts disabled, ``mujoco.rollout``
  with one thread per core.

Each measurement runs for ``--seconds`` of wall time after a warm-up; the JSON holds the
ratios numpy/pybullet and numpy/MuJoCo at each N.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np

from .. import robots
from ..errors import InputError, SetupError
from ..progress import progress_bar
from ..physics import EngineConfig
from ..physics import model as numpy_model
from ..physics import numpy_engine
from ..physics.engine import pd_torques
from ..physics.numpy_engine import NumpyEngine
from ..physics.scene import EpisodeSetup
from ..scenes.bread import BreadRandomization, bread_scene, sample_bread
from . import stable_step

DT = 1.0 / 500.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 16, 64, 256, 1024, 4096],
                        help="batch sizes (default: 1 16 64 256 1024 4096)")
    parser.add_argument("--engines", nargs="+", default=["numpy", "pybullet", "mujoco"],
                        choices=["numpy", "pybullet", "mujoco"], help="engines to measure (default: all three)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes (numpy, pybullet) or threads (MuJoCo) (default: all cores)")
    parser.add_argument("--chunk", type=int, default=512, help="numpy environments per step call (default: 512)")
    parser.add_argument("--seconds", type=float, default=1.5, help="measured wall time per point (default: 1.5)")
    parser.add_argument("--pybullet-max", type=int, default=256,
                        help="largest N measured for pybullet; larger N reuse that rate (default: 256)")
    parser.add_argument("--contact-num-envs", type=int, default=1024, metavar="N",
                        help="also measure the bread scene with contacts on at this N, numpy vs MuJoCo (0: skip)")
    parser.add_argument("--profile", type=int, default=1024, metavar="N",
                        help="also time each stage of one numpy step at this N on one core (0: skip; default: 1024)")
    parser.add_argument("--stable-step", type=int, default=1024, metavar="N",
                        help="also find each engine's largest stable step on a tracking task and measure its "
                             "simulated seconds per wall second at N (0: skip; default: 1024)")
    parser.add_argument("--memory-num-envs", type=int, default=4096, metavar="N",
                        help="also measure memory per environment holding N of them (pybullet: at most "
                             "--pybullet-max) (0: skip; default: 4096)")
    parser.add_argument("--json", default="bench_engine.json", help="write results here")
    parser.add_argument("--png", default="bench_engine.png", help="write the plot here")


def _robot():
    return robots.load("humanoid43")


def _targets(robot, n: int) -> np.ndarray:
    # Small offsets from the ready pose so the actuators work without hitting limits.
    rng = np.random.default_rng(0)
    return np.clip(robot.keyframe("arms_ready") + rng.uniform(-0.1, 0.1, (n, robot.num_joints)),
                   robot.joint_lower, robot.joint_upper)


def _split(n: int, workers: int) -> list[int]:
    workers = max(1, min(workers, n))
    return [n // workers + (1 if i < n % workers else 0) for i in range(workers)]


def _numpy_worker(n: int, chunk: int, seconds: float, barrier, dt: float = DT,
                  law: dict | None = None) -> tuple[int, float]:
    robot = _robot()
    model = numpy_model.load_model(robot, fixed_base=True)
    params = numpy_engine.ActuatorParams.from_robot(robot)
    sizes = _split(n, (n + chunk - 1) // chunk)
    starts = np.cumsum([0] + sizes)
    targets = _targets(robot, n)
    states = [numpy_engine.init(model, np.tile(robot.keyframe("arms_ready"), (size, 1))) for size in sizes]
    for i, state in enumerate(states):  # warm-up
        states[i] = numpy_engine.step(model, params, state, targets[starts[i]:starts[i + 1]], dt, **(law or {}))
    barrier.wait()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for i, state in enumerate(states):
            states[i] = numpy_engine.step(model, params, state, targets[starts[i]:starts[i + 1]], dt, **(law or {}))
        steps += 1
    return steps * n, time.perf_counter() - start


def _pybullet_envs(robot, n: int):
    """n DIRECT clients, each with humanoid43 on a fixed base under the explicit PD law: (clients, bodies)."""
    import pybullet
    from pybullet_utils import bullet_client

    clients, bodies = [], []
    for _ in range(n):
        client = bullet_client.BulletClient(pybullet.DIRECT)
        client.setGravity(0, 0, -9.81)
        client.setTimeStep(DT)
        body = client.loadURDF(str(robot.urdf_path), [0, 0, 2.0], useFixedBase=True,
                               flags=pybullet.URDF_USE_INERTIA_FROM_FILE)
        count = client.getNumJoints(body)
        client.setJointMotorControlArray(body, list(range(count)), pybullet.VELOCITY_CONTROL, forces=[0.0] * count)
        for link in range(-1, count):
            client.changeDynamics(body, link, linearDamping=0.0, angularDamping=0.0)
        names = {client.getJointInfo(body, j)[1].decode(): j for j in range(count)}
        joints = [names[name] for name in robot.joint_names]
        for joint, q in zip(joints, robot.keyframe("arms_ready")):
            client.resetJointState(body, joint, q)
        clients.append(client)
        bodies.append((body, joints))
    return clients, bodies


def _pybullet_worker(n: int, chunk: int, seconds: float, barrier, dt: float = DT) -> tuple[int, float]:
    import pybullet

    robot = _robot()
    targets = _targets(robot, n)
    clients, bodies = _pybullet_envs(robot, n)
    for client in clients:
        client.setTimeStep(dt)

    def advance():
        for i, (client, (body, joints)) in enumerate(zip(clients, bodies)):
            states = client.getJointStates(body, joints)
            q = np.array([s[0] for s in states])
            qd = np.array([s[1] for s in states])
            client.setJointMotorControlArray(body, joints, pybullet.TORQUE_CONTROL,
                                             forces=pd_torques(robot, q, qd, targets[i]).tolist())
            client.stepSimulation()

    advance()
    barrier.wait()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        advance()
        steps += 1
    elapsed = time.perf_counter() - start
    for client in clients:
        client.disconnect()
    return steps * n, elapsed


def in_processes(worker, n: int, workers: int, *args, **options) -> float:
    """Run ``worker(share, *args, barrier, **options)`` on each share of n environments in its own process,
    released together by the barrier; returns the total env-steps per second.

    Each worker returns (env-steps done, seconds it ran).
    """
    shares = _split(n, workers)
    context = multiprocessing.get_context("fork")
    with multiprocessing.Manager() as manager:
        barrier = manager.Barrier(len(shares))
        with context.Pool(len(shares)) as pool:
            results = pool.starmap(functools.partial(worker, **options), [(share, *args, barrier) for share in shares])
    return sum(steps for steps, _ in results) / max(elapsed for _, elapsed in results)


def mujoco_model(robot, scene=None, objects=None, object_poses=None):
    """humanoid43 compiled by mujoco's URDF importer with the project's PD actuators.

    Without a scene: contacts off, fixed base at the origin. With the bread scene: the robot on
    its stand, floor, table and basket as static boxes, the objects as free bodies, contacts on
    between robot and world (no self-collision, as in the other engines).
    """
    import mujoco

    spec = mujoco.MjSpec.from_file(str(robot.urdf_path))
    if scene is not None:
        spec.worldbody.first_body().pos = list(scene.robot_position)
        for geom in spec.geoms:
            geom.contype, geom.conaffinity = 2, 1  # robot geoms touch the world, not each other
        spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_PLANE, size=[0, 0, 0.05], contype=1, conaffinity=3)
        for box in scene.static_boxes:
            x, y, z, w = box.quaternion
            spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, size=list(box.half_extents), pos=list(box.position),
                                    quat=[w, x, y, z], friction=[box.friction, 0.005, 0.0001], contype=1, conaffinity=3)
        for params, pose in zip(objects, object_poses):
            x, y, z, w = pose[3:]
            body = spec.worldbody.add_body(pos=list(pose[:3]), quat=[w, x, y, z])
            body.add_freejoint()
            size = [params.size[0], params.size[1] / 2, 0] if params.shape == "capsule" else list(params.size)
            kind = {"capsule": mujoco.mjtGeom.mjGEOM_CAPSULE, "box": mujoco.mjtGeom.mjGEOM_BOX,
                    "sphere": mujoco.mjtGeom.mjGEOM_SPHERE}[params.shape]
            body.add_geom(type=kind, size=size, mass=params.mass, friction=[params.friction, 0.005, 0.0001],
                          contype=1, conaffinity=3)
    for name, kp, kd, limit in zip(robot.joint_names, robot.kp, robot.kd, robot.torque_limit):
        actuator = spec.add_actuator()
        actuator.name, actuator.target = name, name
        actuator.trntype = mujoco.mjtTrn.mjTRN_JOINT
        actuator.set_to_position(kp=float(kp), kv=float(kd))
        actuator.forcelimited = 1
        actuator.forcerange = [-float(limit), float(limit)]
    model = spec.compile()
    model.opt.timestep = DT
    model.opt.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    if scene is None:
        model.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_CONTACT
    return model


def _bread_episode(robot):
    """The bread scene with one seeded roll, as both engines' contact-on benchmark uses it."""
    params, pose = sample_bread(np.random.default_rng(0), BreadRandomization())
    return bread_scene(), [params], pose[None]


def _numpy_contact_worker(n: int, seconds: float, barrier) -> tuple[int, float]:
    robot = _robot()
    scene, objects, poses = _bread_episode(robot)
    config = EngineConfig(physics_dt=DT, control_dt=DT)  # one physics step per engine.step
    engine = NumpyEngine(robot, scene, n, config)
    engine.reset(None, EpisodeSetup.per_env(np.tile(robot.keyframe("arms_ready"), (n, 1)), [objects] * n,
                                            np.tile(poses, (n, 1, 1))))
    engine.set_joint_targets(_targets(robot, n))
    engine.step()
    barrier.wait()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        engine.step()
        steps += 1
    return steps * n, time.perf_counter() - start


def _mujoco_contacts(n: int, workers: int, seconds: float) -> float:
    robot = _robot()
    scene, objects, poses = _bread_episode(robot)
    return _mujoco(n, workers, seconds, mujoco_model(robot, scene, objects, poses))


def _mujoco(n: int, workers: int, seconds: float, model=None) -> float:
    import mujoco
    from mujoco import rollout

    robot = _robot()
    model = model if model is not None else mujoco_model(robot)
    if model.nu != robot.num_joints:
        raise RuntimeError(f"mujoco imported {model.nu} actuators, expected {robot.num_joints}")
    data = mujoco.MjData(model)
    for name, q in zip(robot.joint_names, robot.keyframe("arms_ready")):
        data.joint(name).qpos[0] = q
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    state = np.empty(mujoco.mj_stateSize(model, spec))
    mujoco.mj_getState(model, data, state, spec)
    initial = np.tile(state, (n, 1))
    datas = [mujoco.MjData(model) for _ in range(max(1, workers))]
    control = _targets(robot, n)[:, None, :]
    start = time.perf_counter()
    rollout.rollout(model, datas, initial, np.repeat(control, 10, axis=1))  # warm-up and rate estimate
    per_step = (time.perf_counter() - start) / 10
    nstep = max(10, int(seconds / per_step))
    start = time.perf_counter()
    rollout.rollout(model, datas, initial, np.repeat(control, nstep, axis=1))
    return n * nstep / (time.perf_counter() - start)


def contact_row(n: int, workers: int, seconds: float, engines=("numpy", "mujoco")) -> dict:
    """Physics env-steps/s on the bread table with its roll, contacts on, numpy vs MuJoCo at N = n."""
    row = {"num_envs": n, "scene": "bread table, contacts on", "env_steps_per_s": {}}
    if "numpy" in engines:
        row["env_steps_per_s"]["numpy"] = in_processes(_numpy_contact_worker, n, workers, seconds)
    if "mujoco" in engines:
        row["env_steps_per_s"]["mujoco"] = _mujoco_contacts(n, workers, seconds)
    if len(row["env_steps_per_s"]) == 2:
        row["numpy_over_mujoco"] = row["env_steps_per_s"]["numpy"] / row["env_steps_per_s"]["mujoco"]
    return row


def print_contact_row(row: dict) -> None:
    rates = "  ".join(f"{engine} {rate:.0f}" for engine, rate in row["env_steps_per_s"].items())
    print(f"contacts on (bread table, physics only), N = {row['num_envs']}: {rates} env-steps/s"
          + (f", numpy/mujoco {row['numpy_over_mujoco']:.2f}" if "numpy_over_mujoco" in row else ""))


def step_profile(n: int, repeats: int = 20) -> dict[str, float]:
    """Milliseconds per numpy physics step at batch size n on one core, stage by stage."""
    robot = _robot()
    model = numpy_model.load_model(robot, fixed_base=True)
    params = numpy_engine.ActuatorParams.from_robot(robot)
    state = numpy_engine.init(model, np.tile(robot.keyframe("arms_ready"), (n, 1)))
    targets = _targets(robot, n)
    q_last, v_last = np.ascontiguousarray(state.q.T), np.ascontiguousarray(state.v.T)
    stages = {
        "kinematics": lambda: numpy_model._kinematics(model, q_last),
        "kinematics + mass matrix (CRBA)": lambda: numpy_model._mass_pairs(model, numpy_model._kinematics(model, q_last)),
        "kinematics + bias forces (RNEA)": lambda: numpy_model._bias_forces(model, numpy_model._kinematics(model, q_last), v_last),
        "LTDL factor + solve": None,
        "whole step": lambda: numpy_engine.step(model, params, state, targets, DT),
    }
    pairs = numpy_model._mass_pairs(model, numpy_model._kinematics(model, q_last))
    stages["LTDL factor + solve"] = lambda: numpy_model._ltdl_solve(
        numpy_model._ltdl_factor(pairs.copy(), model._sparse), model._sparse, v_last.copy())
    timings = {}
    for name, call in stages.items():
        call()
        start = time.perf_counter()
        for _ in range(repeats):
            call()
        timings[name] = 1e3 * (time.perf_counter() - start) / repeats
    return timings


def _resident() -> int:
    """This process's resident memory now, in bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def _hold_envs(engine: str, n: int):
    """Build n environments of ``engine`` and step each once (so step temporaries count); returns them."""
    robot = _robot()
    if engine == "numpy":
        scene, objects, poses = _bread_episode(robot)
        held = NumpyEngine(robot, scene, n, EngineConfig(physics_dt=DT, control_dt=DT))
        held.reset(None, EpisodeSetup.per_env(np.tile(robot.keyframe("arms_ready"), (n, 1)), [objects] * n,
                                              np.tile(poses, (n, 1, 1))))
        held.set_joint_targets(_targets(robot, n))
        held.step()
        return held
    if engine == "mujoco":
        import mujoco

        scene, objects, poses = _bread_episode(robot)
        model = mujoco_model(robot, scene, objects, poses)
        datas = [mujoco.MjData(model) for _ in range(n)]
        for data in datas:
            mujoco.mj_step(model, data)
        return model, datas
    clients, bodies = _pybullet_envs(robot, n)
    for client in clients:
        client.stepSimulation()
    return clients, bodies


def _memory_child(engine: str, n: int) -> tuple[int, int]:
    """Resident bytes holding one environment, then n more (both kept alive)."""
    one = _hold_envs(engine, 1)
    with_one = _resident()
    many = _hold_envs(engine, n)
    with_many = _resident()
    del one, many
    return with_one, with_many


def memory_per_env(engine: str, n: int) -> dict:
    """Bytes per environment: (resident memory holding 1 + n environments - holding 1) / n, in a fresh process,
    after each was built and stepped once (a step's temporaries are freed again and do not count).

    numpy and MuJoCo hold the bread scene with contacts (MuJoCo one MjData per environment, as a
    batch of live environments needs); pybullet one DIRECT client with the robot per environment.
    """
    context = multiprocessing.get_context("spawn")  # a clean process: nothing measured before counts
    with context.Pool(1) as pool:
        with_one, with_many = pool.apply(_memory_child, (engine, n))
    return {"engine": engine, "num_envs": n, "bytes_per_env": (with_many - with_one) / n,
            "resident_bytes": with_many}


ENGINE_STYLES = (("numpy", "o-"), ("pybullet", "s--"), ("mujoco", "^-"))


def plot_throughput(ax, rows: list[dict], ylabel: str, title: str) -> None:
    """Env-steps/s against N, one line per engine found in ``rows[i]["env_steps_per_s"]``, log-log."""
    for engine, style in ENGINE_STYLES:
        points = [r for r in rows if engine in r["env_steps_per_s"]]
        if points:
            ax.plot([r["num_envs"] for r in points], [r["env_steps_per_s"][engine] for r in points], style, label=engine)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("environments (N)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(7, 4.5))
    plot_throughput(ax, results["rows"], "physics env-steps / s (contact-free, dt = 2 ms)",
                    f"humanoid43, {results['workers']} workers on {results['cpu_count']} cores")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main(args: argparse.Namespace) -> int:
    for flag in ("stable_step", "memory_num_envs", "contact_num_envs", "profile"):
        if getattr(args, flag) < 0:
            raise InputError(f"--{flag.replace('_', '-')} must be >= 0 (0 skips it), got {getattr(args, flag)}")
    if "mujoco" in args.engines:
        try:
            import mujoco  # noqa: F401
        except ImportError:
            raise SetupError("MuJoCo is not installed: pip install \".[bench]\" (from the project's folder), "
                               "or leave it out with --engines numpy pybullet") from None
    results = {"machine": platform.platform(), "cpu_count": os.cpu_count(), "workers": args.workers,
               "dt": DT, "seconds_per_point": args.seconds, "rows": []}
    pybullet_cache: dict[int, float] = {}
    for n in progress_bar(desc="engine throughput", unit="N", iterable=args.num_envs):
        row = {"num_envs": n, "env_steps_per_s": {}, "extrapolated": []}
        if "numpy" in args.engines:
            row["env_steps_per_s"]["numpy"] = in_processes(_numpy_worker, n, args.workers, args.chunk, args.seconds)
        if "pybullet" in args.engines:
            if n <= args.pybullet_max:
                pybullet_cache[n] = in_processes(_pybullet_worker, n, args.workers, 0, args.seconds)
                row["env_steps_per_s"]["pybullet"] = pybullet_cache[n]
            else:
                if not pybullet_cache:
                    pybullet_cache[args.pybullet_max] = in_processes(
                        _pybullet_worker, args.pybullet_max, args.workers, 0, args.seconds)
                row["env_steps_per_s"]["pybullet"] = max(pybullet_cache.values())
                row["extrapolated"].append("pybullet")
        if "mujoco" in args.engines:
            row["env_steps_per_s"]["mujoco"] = _mujoco(n, args.workers, args.seconds)
        rates = row["env_steps_per_s"]
        for other in ("pybullet", "mujoco"):
            if "numpy" in rates and other in rates:
                row[f"numpy_over_{other}"] = rates["numpy"] / rates[other]
        results["rows"].append(row)
    header = f"{'N':>6} " + " ".join(f"{engine:>12}" for engine in args.engines)
    header += "  numpy/pybullet  numpy/mujoco"
    print(header)
    for row in results["rows"]:
        rates = row["env_steps_per_s"]
        cells = " ".join(f"{rates[e]:>11.0f}{'*' if e in row['extrapolated'] else ' '}" for e in args.engines)
        ratios = f"{row.get('numpy_over_pybullet', float('nan')):>15.2f} {row.get('numpy_over_mujoco', float('nan')):>13.2f}"
        print(f"{row['num_envs']:>6} {cells} {ratios}")
    if any(row["extrapolated"] for row in results["rows"]):
        print(f"* pybullet above N = {args.pybullet_max}: its best measured rate (independent clients cost the same per env)")
    if args.contact_num_envs:
        results["contact_row"] = contact_row(args.contact_num_envs, args.workers, args.seconds,
                                             [e for e in ("numpy", "mujoco") if e in args.engines])
        print_contact_row(results["contact_row"])
    if args.profile and "numpy" in args.engines:
        results["step_profile_ms"] = {"num_envs": args.profile, **step_profile(args.profile)}
        print(f"one numpy step at N = {args.profile}, one core:")
        for name, ms in results["step_profile_ms"].items():
            if name != "num_envs":
                print(f"  {name:<34} {ms:8.2f} ms")
    if args.stable_step:
        results["stable_step_row"] = stable_step.stable_step_row(_robot(), args.engines, args.stable_step,
                                                                 args.workers, args.seconds)
        stable_step.print_row(results["stable_step_row"])
    if args.memory_num_envs:
        results["memory"] = [memory_per_env(engine, min(args.memory_num_envs, args.pybullet_max)
                                            if engine == "pybullet" else args.memory_num_envs)
                             for engine in args.engines]
        for row in results["memory"]:
            print(f"memory, {row['engine']} holding N = {row['num_envs']}: {row['bytes_per_env'] / 1024:,.0f} KiB "
                  f"per environment ({row['resident_bytes'] / 2**20:,.0f} MiB resident)")
    Path(args.json).write_text(json.dumps(results, indent=2))
    plot(results, args.png)
    print(f"wrote {args.json} and {args.png}")
    return 0
