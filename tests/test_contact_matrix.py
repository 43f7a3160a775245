"""The numpy engine's two ways of adding its implicit contact term to the mass matrix agree.

"per_contact" (a Jacobian product per contact on the matrix's pattern, what datasets recorded before
the option ran) and "composite" (sticking contacts as point masses of their links inside the CRBA,
sliding ones by their rank-one terms, the default) build the same sum in another order.
"""

import json

import h5py
import numpy as np
import pytest

from training_ground import robots
from training_ground.data.dataset import dataset_env_args
from training_ground.envs import make_config
from training_ground.envs.config import ConfigError, with_stored_defaults
from training_ground.envs.registry import load_entry_point, task_spec
from training_ground.physics import EngineConfig, load_model
from training_ground.physics import model as numpy_model
from training_ground.physics.numpy_engine import ImplicitContacts, contact_point_masses

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "datasets"


@pytest.fixture(scope="module")
def floating():
    robot = robots.load("humanoid43")
    model = load_model(robot, fixed_base=False)
    rng = np.random.default_rng(3)
    n = 3
    q = np.tile(np.concatenate([[0.1, -0.2, 1.0], [0.0, 0.0, 0.0, 1.0], robot.home_posture]), (n, 1))
    q[:, 3:7] = rng.normal(size=(n, 4))
    q[:, 3:7] /= np.linalg.norm(q[:, 3:7], axis=1, keepdims=True)
    q[:, 7:] += rng.uniform(-0.3, 0.3, size=(n, robot.num_joints))
    kin = numpy_model.kinematics(model, q)
    return robot, model, q, kin, rng


def _contact_jacobian(model, kin, q, link, relative_point, env):
    """Dense (3, nv) Jacobian of a point given about the base origin, on link ``link``, in env ``env``."""
    rotation = kin.rotation[:, :, link, env]
    local = rotation.T @ (relative_point - kin.origin[:, link, env])
    return numpy_model.jacobian(model, q[env:env + 1], model.link_names[link], local)[0, :3]


def test_point_masses_in_the_crba_add_w_jt_j(floating):
    robot, model, q, kin, rng = floating
    n = q.shape[0]
    links = np.array([model.link_index("left_foot"), model.link_index("right_palm"), model.link_index("left_foot")])
    envs = np.array([0, 2, 0])
    points = np.stack([kin.origin[:, link, env] + rng.normal(scale=0.05, size=3) for link, env in zip(links, envs)],
                      axis=1)
    weight = np.array([40.0, 3.0, 7.5])
    with_masses = model._sparse.to_dense(numpy_model._mass_pairs(model, kin, contact_point_masses(
        n, links, envs, points, weight)), model.nv)
    expected = numpy_model._mass_matrix(model, kin)
    for c, (link, env) in enumerate(zip(links, envs)):
        jac = _contact_jacobian(model, kin, q, link, points[:, c], env)
        expected[env] += weight[c] * jac.T @ jac
    scale = np.abs(expected).max()
    # Two orders of the same sums of products: rounding, 1e-16 of the largest entry, far below 1e-12.
    np.testing.assert_allclose(with_masses, expected, rtol=0, atol=1e-12 * scale)


def test_sliding_terms_equal_the_per_contact_jacobian_terms(floating):
    robot, model, q, kin, rng = floating
    n = q.shape[0]
    from training_ground.physics.contacts import contact_spheres

    spheres = contact_spheres(robot, model.link_names)
    implicit = ImplicitContacts(model, spheres.body)
    s_count = spheres.size
    active = rng.random((s_count, n)) < 0.2
    relative = rng.normal(scale=0.3, size=(3, s_count, n))
    velocity = rng.normal(size=(3, s_count, n))
    normal = rng.normal(size=(3, s_count, n))
    normal /= np.linalg.norm(normal, axis=0)
    stiffness, damping = rng.uniform(10, 1e4, size=(s_count, n)), rng.uniform(1, 100, size=(s_count, n))
    sliding = np.ones((s_count, n), dtype=bool)
    dt = 0.002
    (pairs, envs, values), force = implicit.terms(kin, relative, velocity, normal, active, sliding, stiffness,
                                                  damping, dt)
    sphere, env = np.nonzero(active)
    (pairs2, envs2, values2), force2 = implicit.sliding_terms(
        kin, sphere, env, relative[:, sphere, env], velocity[:, sphere, env], normal[:, sphere, env],
        stiffness[sphere, env], damping[sphere, env], dt, n)

    def assemble(p, e, v):
        matrix = np.zeros((len(model._sparse.rows), n))
        np.add.at(matrix, (p, e), v)
        return matrix

    first, second = assemble(pairs, envs, values), assemble(pairs2, envs2, values2)
    assert np.abs(first).max() > 0
    np.testing.assert_allclose(second, first, rtol=0, atol=1e-12 * np.abs(first).max())
    np.testing.assert_allclose(force2, force, rtol=0, atol=1e-12 * np.abs(force).max())


def _rollout(task_id, contact_matrix, steps, n=2):
    spec = task_spec(task_id)
    # The static contacts' matrices compared: the hands touch objects the "cover" way on both (the
    # "primitive" hand contacts need the composite matrix; tests/test_physical_grasp.py).
    task = spec.task_class(backend="numpy", num_envs=n, config=make_config(spec.config_class,
                                                                           contact_matrix=contact_matrix,
                                                                           hand_contact="cover"))
    try:
        task.reset(np.arange(n), [np.random.default_rng(seed) for seed in range(n)])
        expert = load_entry_point(spec.expert).for_task(task)
        observation, states = task.observe(), []
        for _ in range(steps):
            observation, *_ = task.step(expert.act(observation))
            states.append(task.engine.state.q.copy())
        return np.array(states)
    finally:
        task.close()


@pytest.mark.parametrize("task_id", ["stand", "assembly"])
def test_both_contact_matrices_give_the_same_rollout_up_to_rounding(task_id):
    # Stand: a floating base on its feet (sticking and sliding floor contacts); assembly: hands on the table.
    per_contact, composite = _rollout(task_id, "per_contact", 25), _rollout(task_id, "composite", 25)
    # Measured 5e-16 (stand) and 1e-20 (assembly) after 25 control steps: rounding, grown by a stable system.
    np.testing.assert_allclose(composite, per_contact, rtol=0, atol=1e-12)


def test_an_unknown_contact_matrix_is_refused_by_name():
    with pytest.raises(ConfigError, match="contact_matrix"):
        make_config(task_spec("stand").config_class, contact_matrix="dense")
    with pytest.raises(ValueError, match="contact_matrix"):
        EngineConfig(contact_matrix="dense")


def test_a_stored_config_without_the_option_reads_as_what_it_ran():
    assert with_stored_defaults({"max_steps": 3})["contact_matrix"] == "per_contact"
    assert with_stored_defaults({"contact_matrix": "composite"})["contact_matrix"] == "composite"
    assert make_config(task_spec("bread").config_class).contact_matrix == "composite"
    path = FIXTURES / "bread_numpy.hdf5"
    with h5py.File(path, "r") as handle:
        assert "contact_matrix" not in json.loads(handle["data"].attrs["env_args"])["env_kwargs"]["config"]
        assert dataset_env_args(handle, path)["env_kwargs"]["config"]["contact_matrix"] == "per_contact"
