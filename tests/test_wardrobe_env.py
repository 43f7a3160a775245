"""WardrobeFold on both engines: the garment, the success rule, the cloth grasp and the scripted expert."""

import gymnasium
import numpy as np
import pytest

from training_ground.agents.policies import make_expert
from training_ground.agents.fold_expert import WardrobeFoldExpert
from training_ground.envs.wardrobe import WardrobeFoldTask
from training_ground.physics import grasp as grasp_rule
from training_ground.scenes import wardrobe as wardrobe_scene

WARDROBE = "TrainingGround/WardrobeFold-v0"
BASE = np.array(wardrobe_scene.wardrobe_scene().robot_position)


@pytest.fixture
def make_env():
    made = []

    def factory(**kwargs):
        env = gymnasium.make(WARDROBE, **kwargs)
        made.append(env)
        return env

    yield factory
    for env in made:
        env.close()


@pytest.mark.parametrize("backend", ["numpy", "pybullet"])
def test_the_garment_starts_flat_on_the_table_where_the_seed_puts_it(make_env, backend):
    env = make_env(backend=backend)
    ranges = wardrobe_scene.GarmentRandomization()
    corners = []
    for seed in (0, 1, 0):
        observation, _ = env.reset(seed=seed)
        cloth = env.unwrapped.task.engine.components["cloth"].positions()[0]
        assert cloth.shape == (100, 3)
        np.testing.assert_allclose(cloth[:, 2], wardrobe_scene.TABLE_HEIGHT + 0.005, atol=1e-3)
        near_right, near_left, far_right, far_left = observation["cloth_corners"].reshape(4, 3) + BASE
        assert ranges.length_range[0] - 1e-3 < np.linalg.norm(far_right - near_right) < ranges.length_range[1] + 1e-3
        assert ranges.width_range[0] - 1e-3 < np.linalg.norm(near_left - near_right) < ranges.width_range[1] + 1e-3
        assert near_left[1] > near_right[1] and far_right[0] > near_right[0]  # rows run away from the robot
        assert not observation["grasped"].any()
        corners.append(observation["cloth_corners"])
    assert np.array_equal(corners[0], corners[2]) and not np.allclose(corners[0], corners[1])


def _place_cloth(task, positions):
    """Put the garment's particles at ``positions`` (P, 3), at rest, through the public state API."""
    state = task.get_state()
    columns = task.state_layout().columns()
    for name in ("engine.cloth_positions", "engine.cloth_previous"):
        state[0, columns[name]] = positions.ravel()
    state[0, columns["engine.cloth_velocities"]] = 0.0
    task.set_state([0], state)


def _folded_on(params, centre_x, centre_y, top):
    """A garment of ``params``' size folded in half (near half over the far half), flat at height ``top``."""
    rows = np.linspace(-0.5, 0.5, 10) * params.length
    cols = np.linspace(-0.5, 0.5, 10) * params.width
    x = np.where(rows < 0, -rows, rows)  # the near half turned over about the middle
    z = np.full(10, top + 0.005)  # the cloth does not collide with itself: both layers lie on the shelf
    grid = np.stack(np.meshgrid(x, cols, indexing="ij"), -1).reshape(-1, 2)
    return np.column_stack([grid[:, 0] + centre_x, grid[:, 1] + centre_y, np.repeat(z, 10)])


def test_success_needs_the_garment_folded_flat_on_the_shelf_and_let_go(make_env):
    env = make_env(backend="numpy")
    env.reset(seed=2)
    task = env.unwrapped.task
    params = task.engine.components["cloth"].params[0]
    flat = task.engine.components["cloth"].positions()[0].copy()

    def outcome(positions):
        _place_cloth(task, positions)
        evaluation = task.evaluate()
        return bool(evaluation["success"][0]), bool(evaluation["failure"][0])

    shelf_x, shelf_y = wardrobe_scene.SHELF_CENTER
    folded_on_shelf = _folded_on(params, shelf_x - params.length / 4, shelf_y, wardrobe_scene.SHELF_TOP)
    assert outcome(folded_on_shelf) == (True, False)
    flat[:, :2] += np.array([shelf_x, shelf_y]) - flat[:, :2].mean(axis=0)
    flat[:, 2] = wardrobe_scene.SHELF_TOP + 0.005
    assert outcome(flat) == (False, False)  # on the shelf but not folded
    folded_on_table = _folded_on(params, 0.42, 0.1, wardrobe_scene.TABLE_HEIGHT)
    assert outcome(folded_on_table) == (False, False)
    crumpled = folded_on_shelf.copy()
    crumpled[50:60, 2] += 0.06  # a ridge across the middle: folded, on the shelf, but not flat
    assert outcome(crumpled) == (False, False)
    on_floor = folded_on_shelf * [1.0, 1.0, 0.0] + [0.0, 0.0, 0.005]
    assert outcome(on_floor) == (False, True)
    _place_cloth(task, folded_on_shelf)
    terms = task.reward_terms(task.evaluate())
    assert terms["place"][0] == 1.0 and terms["transport"][0] == 1.0 and terms["fold"][0] > 0.99


@pytest.mark.parametrize("backend", ["numpy", "pybullet"])
def test_a_closing_hand_pins_the_corner_under_its_grasp_site_and_opening_lets_go(make_env, backend):
    env = make_env(backend=backend)
    observation, _ = env.reset(seed=4)
    expert = make_expert(env)
    assert isinstance(expert, WardrobeFoldExpert)
    expert.reset()
    while expert.phase[0] <= WardrobeFoldExpert.CLOSE:
        observation, *_ = env.step(expert(observation))
    engine = env.unwrapped.task.engine
    assert observation["grasped"].tolist() == [1.0, 1.0]
    corners = observation["cloth_corners"].reshape(4, 3)
    hands = observation["hand_pos"].reshape(2, 3)
    # Each hand holds the near corner on its side, within the grasp radius of its site.
    assert np.linalg.norm(corners[[1, 0]] - hands, axis=-1).max() <= grasp_rule.CLOTH_PIN_RADIUS
    offset, start = corners[[1, 0]] - hands, hands.copy()
    lift = np.zeros(env.action_space.shape, np.float32)
    lift[[2, 9]] = 0.5  # both hands up 1 cm a step, still closed
    lift[[6, 13]] = expert.grip
    for _ in range(8):
        observation, *_ = env.step(lift)
    corners, hands = observation["cloth_corners"].reshape(4, 3), observation["hand_pos"].reshape(2, 3)
    assert (hands[:, 2] - start[:, 2]).min() > 0.05  # the hands went up (8 cm asked; the arms lag: 5.7 cm seen)
    np.testing.assert_allclose(corners[[1, 0]] - hands, offset, atol=5e-3)  # and the corners with them
    let_go = lift * 0
    let_go[[6, 13]] = -1.0
    observation, *_ = env.step(let_go)
    assert observation["grasped"].tolist() == [0.0, 0.0] and not engine.components["cloth"].grasped().any()
    for _ in range(25):
        observation, *_ = env.step(let_go)
    assert observation["cloth_corners"].reshape(4, 3)[:, 2].max() + BASE[2] < wardrobe_scene.TABLE_HEIGHT + 0.02


def test_the_expert_folds_and_shelves_the_garment_on_the_numpy_engine_in_a_batch():
    env = gymnasium.make_vec(WARDROBE, num_envs=2, vectorization_mode="vector_entry_point", backend="numpy")
    try:
        expert = make_expert(env)
        observation, _ = env.reset(seed=10)
        expert.reset()
        done, succeeded = np.zeros(2, bool), np.zeros(2, bool)
        for _ in range(env.unwrapped.task.config.max_steps):
            observation, _, terminated, truncated, info = env.step(expert.act(observation))
            succeeded |= info["is_success"] & ~done
            done |= terminated | truncated
            if done.all():
                break
        assert succeeded.all()
    finally:
        env.close()


def test_the_expert_folds_and_shelves_the_garment_on_pybullet(make_env):
    env = make_env(backend="pybullet")
    expert = make_expert(env)
    observation, _ = env.reset(seed=12)
    expert.reset()
    for _ in range(env.unwrapped.task.config.max_steps):
        observation, _, terminated, truncated, info = env.step(expert(observation))
        if terminated or truncated:
            break
    assert info["is_success"]


def test_the_expert_needs_the_ee_delta_action_mode(make_env):
    env = make_env(backend="numpy", action_mode="joint_pos")
    with pytest.raises(ValueError, match="ee_delta"):
        make_expert(env)
    assert WardrobeFoldTask.reward_names == ("reach", "grasp", "fold", "transport", "place")
