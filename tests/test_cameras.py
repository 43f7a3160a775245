"""Cameras: where they look, what they see on both engines, image observation modes, rates, batches and bad input."""

from __future__ import annotations

import gymnasium
import numpy as np
import pybullet
import pytest
from gymnasium.utils.env_checker import check_env

import training_ground.envs  # noqa: F401  (registers the tasks)
from training_ground import robots
from training_ground.envs.registry import make_task_env
from training_ground.errors import InputError
from training_ground.physics.cameras import CameraView, look_at, resolve_cameras
from training_ground.physics.rotations import quat_to_matrix
from training_ground.physics.scene import EpisodeSetup
from training_ground.scenes import bread as bread_scene

BREAD_ID = "TrainingGround/BreadPickPlace-v0"


def test_view_matrix_is_pybullets():
    rng = np.random.default_rng(0)
    eyes, targets, ups = rng.normal(size=(3, 8, 3))
    batched = look_at(eyes, targets, ups)
    for eye, target, up, ours in zip(eyes, targets, ups, batched):
        np.testing.assert_allclose(ours, pybullet.computeViewMatrix(eye, target, up), atol=1e-6)


def _bread_task(backend, **config):
    env = make_task_env("bread", 1, backend=backend, **config)
    env.reset(seed=3)
    return env


def test_depth_is_the_distance_to_the_table_along_the_optical_axis():
    """A camera fixed to the head, 55 cm over a bare patch of the table and looking straight down (placed through
    the head's pose in the engine's kinematics): its pictures read that height as depth."""
    env = _bread_task("numpy")
    try:
        task = env.task
        head = task.engine.link_poses(["head"])[0, 0]
        rotation = quat_to_matrix(head[3:])
        eye = np.array([0.6, 0.4, bread_scene.TABLE_HEIGHT + 0.55])  # left of the basket and the hands
        mount = robots.CameraMount("head", tuple(rotation.T @ (eye - head[:3])), tuple(rotation.T @ [0.0, 0.0, -1.0]),
                                   tuple(rotation.T @ [1.0, 0.0, 0.0]), fov=20.0)
        rgb, depth = task.engine.render_cameras([CameraView("probe", mount=mount)], 33, 33)
        assert np.median(depth) == pytest.approx(0.55, abs=1e-3)
        assert (rgb == rgb[0, 0, 16, 16]).all(axis=-1).mean() > 0.9, "a plain patch of table"
    finally:
        env.close()


def test_both_engines_picture_the_same_state_alike():
    pictures = {}
    for backend in ("numpy", "pybullet"):
        env = _bread_task(backend)
        try:
            task = env.task
            views = resolve_cameras(task.robot, task.scene, ["head", "left_wrist", "right_wrist", "scene"])
            pictures[backend] = task.engine.render_cameras(views, 96, 96)
        finally:
            env.close()
    (rgb_numpy, depth_numpy), (rgb_bullet, depth_bullet) = pictures["numpy"], pictures["pybullet"]
    differing = np.abs(rgb_numpy.astype(int) - rgb_bullet).max(axis=-1) > 10
    assert differing.mean(axis=(0, 2, 3)).max() < 0.01, differing.mean(axis=(0, 2, 3))
    assert np.median(np.abs(depth_numpy - depth_bullet)) < 1e-3
    assert rgb_numpy.std() > 10, "the pictures show something"


def test_cameras_follow_their_links():
    """Turning the neck turns the head camera's picture and leaves the wrist cameras' as they were."""
    env = _bread_task("numpy")
    try:
        task = env.task
        views = resolve_cameras(task.robot, task.scene, ["head", "left_wrist", "right_wrist"])
        episode = task.sample_episode(np.random.default_rng(0))
        pictures = []
        for neck_yaw in (0.0, 0.3):
            joint_pos = episode.joint_pos.copy()
            joint_pos[task.robot.joint_indices(["neck_yaw"])] = neck_yaw
            task.engine.reset([0], [EpisodeSetup(joint_pos, episode.objects, episode.object_poses)])
            pictures.append(task.engine.render_cameras(views, 48, 48)[0])
        assert not np.array_equal(pictures[0][:, 0], pictures[1][:, 0])
        assert np.array_equal(pictures[0][:, 1:], pictures[1][:, 1:])
    finally:
        env.close()


@pytest.mark.parametrize("obs_mode", ["rgb", "rgbd", "state+rgb", "state+rgbd"])
def test_image_modes_pass_gymnasiums_checker(obs_mode):
    env = gymnasium.make(BREAD_ID, backend="numpy", obs_mode=obs_mode, cameras=["head", "scene"], camera_width=48,
                         camera_height=32)
    try:
        check_env(env.unwrapped, skip_render_check=True)
        observation, _ = env.reset(seed=0)
        assert observation["head_image"].shape == (32, 48, 3) and observation["head_image"].dtype == np.uint8
        assert ("head_depth" in observation) == obs_mode.endswith("d")
        assert ("bread_pos" in observation) == obs_mode.startswith("state")
        assert {"joint_pos", "joint_vel", "hand_pos", "hand_quat"} <= set(observation)
        assert env.observation_space.contains(observation)
        if obs_mode.endswith("d"):
            assert 0.0 < observation["head_depth"].min() and observation["head_depth"].max() <= 4.0
    finally:
        env.close()


def test_the_pybullet_engine_observes_pictures_too():
    env = gymnasium.make(BREAD_ID, backend="pybullet", obs_mode="rgbd", cameras=["left_wrist"], camera_width=24,
                         camera_height=24)
    try:
        check_env(env.unwrapped, skip_render_check=True)
        observation, _ = env.reset(seed=2)
        assert observation["left_wrist_image"].shape == (24, 24, 3) and observation["left_wrist_depth"].max() <= 2.0
    finally:
        env.close()


def test_state_mode_takes_no_pictures():
    env = gymnasium.make(BREAD_ID, backend="numpy")
    try:
        observation, _ = env.reset(seed=0)
        assert not any(key.endswith(("_image", "_depth")) for key in observation)
        assert env.unwrapped.task.camera_observations is None
    finally:
        env.close()


def test_a_slower_camera_holds_its_picture():
    env = gymnasium.make(BREAD_ID, backend="numpy", obs_mode="rgb", cameras=["right_wrist"], camera_fps=10,
                         camera_width=32, camera_height=32)
    try:
        observation, _ = env.reset(seed=1)
        changed = []
        for _ in range(10):
            previous = observation["right_wrist_image"]
            observation, *_ = env.step(np.full(14, 0.5, np.float32))
            changed.append(not np.array_equal(previous, observation["right_wrist_image"]))
        assert changed == [False, False, False, False, True] * 2  # 50 Hz control, a picture every fifth step
    finally:
        env.close()


@pytest.mark.parametrize("task, cameras, row, steps", [
    ("bread", ["head", "right_wrist"], 2, 4),
    # The garment too, which a viewer draws from the snapshot alone, whatever it showed before.
    ("wardrobe", ["head", "left_wrist"], 1, 6),
])
def test_a_batch_pictures_env_i_as_a_single_env_in_worker_processes(task, cameras, row, steps):
    config = dict(obs_mode="rgbd", cameras=cameras, camera_width=40, camera_height=40)
    batch = make_task_env(task, 3, backend="numpy", render_workers=2, **config)
    single = make_task_env(task, 1, backend="numpy", **config)
    try:
        assert batch.task.engine.config.render_workers == 2 and single.task.engine.config.render_workers == 0
        rng = np.random.default_rng(0)
        observations, _ = batch.reset(seed=20)
        observation, _ = single.reset(seed=20 + row)
        for step in range(steps):
            for key in observation:
                assert np.array_equal(observations[key][row], observation[key][0]), (step, key)
            actions = rng.uniform(-1, 1, (3, batch.single_action_space.shape[0])).astype(np.float32)
            observations, *_ = batch.step(actions)
            observation, *_ = single.step(actions[row:row + 1])
    finally:
        batch.close()
        single.close()


def test_a_restored_state_is_pictured_as_it_is():
    env = _bread_task("numpy", obs_mode="rgb", cameras=["right_wrist"], camera_fps=10)
    try:
        task = env.task
        start, state = task.observation()["right_wrist_image"], task.get_state()
        for _ in range(3):
            env.step(np.full((1, 14), 0.5, np.float32))
        task.set_state([0], state)
        assert np.array_equal(task.observation()["right_wrist_image"], start)
    finally:
        env.close()


@pytest.mark.parametrize("config, message", [
    ({"cameras": ["nose"]}, "unknown camera"),
    ({"cameras": []}, "at least one camera"),
    ({"cameras": ["head", "head"]}, "more than once"),
    ({"camera_width": 0}, "camera_width must lie in"),
    ({"camera_height": -3}, "camera_height must lie in"),
    ({"camera_fps": 7}, "does not divide the control rate"),
    ({"obs_mode": "depth"}, "obs_mode must be one of"),
    ({"render_workers": -1}, "render_workers must lie in"),
])
def test_bad_camera_config_is_one_clear_error(config, message):
    with pytest.raises(InputError, match=message):
        gymnasium.make(BREAD_ID, backend="numpy", **{"obs_mode": "rgb", **config})


def test_a_robot_spec_declares_cameras_and_bad_ones_are_refused(tmp_path):
    robot = robots.load("humanoid43")
    spec = tmp_path / "robot.toml"
    # humanoid43 through a spec file: its URDF, groups and gains, with one camera on the torso.
    groups = "\n".join(f'{group} = [{", ".join(repr(j) for j in names)}]' for group, names in robot.groups.items())
    base = (f'name = "speccam"\nurdf = "{robot.urdf_path}"\n[groups]\n{groups}\n[kp]\n"*" = 50.0\n[kd]\n"*" = 2.0\n')
    spec.write_text(base + '[cameras.chest]\nlink = "torso"\nposition = [0.15, 0.0, 0.2]\nforward = [1.0, 0.0, -0.5]\n')
    loaded = robots.load_spec(spec)
    assert loaded.cameras["chest"].link == "torso" and loaded.cameras["chest"].fov == 60.0
    spec.write_text(base + '[cameras.chest]\nlink = "no_such_link"\nposition = [0, 0, 0]\nforward = [1, 0, 0]\n')
    with pytest.raises(robots.RobotContractError, match="no_such_link"):
        robots.load_spec(spec)
    spec.write_text(base + '[cameras.chest]\nlink = "torso"\nposition = [0, 0, 0]\nforward = [0, 0, 1]\nup = [0, 0, 2]\n')
    with pytest.raises(robots.RobotContractError, match="parallel"):
        robots.load_spec(spec)
    spec.write_text(base + '[cameras.chest]\nlink = "torso"\nforward = [1, 0, 0]\nzoom = 2\n')
    with pytest.raises(robots.RobotContractError, match=r"lacks \['position'\].*unknown keys \['zoom'\]"):
        robots.load_spec(spec)


def test_every_shipped_robot_has_head_and_wrist_cameras_that_see_the_table():
    for name in ("humanoid43", "compact43"):
        env = make_task_env("bread", 1, backend="numpy", robot=name)
        try:
            env.reset(seed=0)
            task = env.task
            views = resolve_cameras(task.robot, task.scene, ["head", "left_wrist", "right_wrist"])
            _, depth = task.engine.render_cameras(views, 32, 32)
            # Something within reach in every view: the table, the hands, the roll (not the empty far plane).
            assert (np.median(depth, axis=(0, 2, 3, 4)) < 1.5).all(), (name, np.median(depth, axis=(0, 2, 3, 4)))
        finally:
            env.close()


def test_the_expert_asks_for_the_state_beside_the_pictures():
    from training_ground.agents.policies import make_expert

    env = gymnasium.make(BREAD_ID, backend="numpy", obs_mode="rgb", camera_width=16, camera_height=16)
    try:
        with pytest.raises(InputError, match="obs_mode='state\\+rgb'"):
            make_expert(env)
    finally:
        env.close()


def test_demo_puts_the_cameras_pictures_beside_the_scene(tmp_path):
    from PIL import Image

    from training_ground.cli import main

    still = tmp_path / "still.png"
    assert main(["demo", "bread", "--backend", "numpy", "--episodes", "1", "--cameras", "head", "right_wrist",
                 "--camera-size", "20", "--still", str(still)]) == 0
    width, height = Image.open(still).size
    assert (width, height) == (400 + 2 * 300, 3 * 300)  # a scene picture and two cameras scaled to its height
    assert main(["demo", "bread", "--cameras", "head"]) == 2  # the pictures need --still or --out to go to
