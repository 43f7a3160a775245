"""Experts read a hand's shape from the robot (physics/hand_geometry.py), not from humanoid43's numbers."""

from __future__ import annotations

import dataclasses
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from training_ground import robots
from training_ground.agents.experts import Assembly3CExpert, BreadPickPlaceExpert
from training_ground.agents.fold_expert import WardrobeFoldExpert
from training_ground.physics.hand_geometry import measure_hand

# The numbers the experts were tuned with on humanoid43 before they were measured (agents/experts.py at 86cdd6d):
# its right palm frame's axes in the world for a top-down grasp, and the fingertips and palm face from the site.
HUMANOID43_TOP_DOWN = {"left": np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
                       "right": np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])}


@pytest.mark.parametrize("revision, reach, depth", [
    # Revision 1's curled fingertip spheres (radius 9 mm): 42.1 mm ahead of the site, their surfaces 20.9 mm beyond it.
    (1, 0.0421, 0.0209),
    # Revision 3's (radius 4 mm) curl past pointing down, back behind the site, to meet the thumb tip.
    (3, -0.0188, 0.0124)])
def test_humanoid43s_hands_measure_as_its_experts_were_tuned(revision, reach, depth):
    robot = robots.load("humanoid43", revision=revision)
    for side in ("left", "right"):
        hand = measure_hand(robot, side)
        np.testing.assert_array_equal(hand.top_down, HUMANOID43_TOP_DOWN[side])
        assert hand.palm_to_site == pytest.approx(0.03, abs=1e-12)  # palm box face 3 cm from the site
        assert hand.fingertip_reach == pytest.approx(reach, abs=5e-5)
        assert hand.fingertip_depth == pytest.approx(depth, abs=5e-5)


def test_compact43s_smaller_hands_measure_smaller():
    compact, humanoid = robots.load("compact43"), robots.load("humanoid43", revision=1)  # the hand compact43 scales
    hand, big = measure_hand(compact, "right"), measure_hand(humanoid, "right")
    np.testing.assert_array_equal(hand.top_down, big.top_down)  # its generator draws the palm frames alike
    assert hand.fingertip_reach < 0.6 * big.fingertip_reach and hand.fingertip_depth < 0.7 * big.fingertip_depth
    assert 0.0 < hand.palm_to_site < 0.04 and hand.open_reach > hand.fingertip_reach


def _turn_palm_frame(urdf_path, out_path, palm: str, turn: float) -> np.ndarray:
    """The same robot with ``palm``'s link frame turned by ``turn`` about its z axis: the joint into it is turned,
    and its shapes, inertial and child joints turned back, so nothing moves but the frame. Returns the turn."""
    c, s = math.cos(turn), math.sin(turn)
    rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    root = ET.parse(urdf_path).getroot()

    def turn_back(origin):
        xyz = np.array([float(x) for x in origin.get("xyz", "0 0 0").split()])
        rpy = [float(x) for x in origin.get("rpy", "0 0 0").split()]
        assert rpy[:2] == [0.0, 0.0], "this helper turns origins whose rotation is about z only"
        origin.set("xyz", " ".join(repr(float(x)) for x in rotation.T @ xyz))
        origin.set("rpy", f"0 0 {rpy[2] - turn!r}")

    for joint in root.iter("joint"):
        if joint.find("child").get("link") == palm:
            origin = joint.find("origin")
            assert origin.get("rpy", "0 0 0").split() == ["0", "0", "0"]
            origin.set("rpy", f"0 0 {turn!r}")
            axis = np.array([float(x) for x in joint.find("axis").get("xyz").split()])
            joint.find("axis").set("xyz", " ".join(repr(float(x)) for x in rotation.T @ axis))
        elif joint.find("parent").get("link") == palm:
            turn_back(joint.find("origin"))
    link = next(link for link in root.iter("link") if link.get("name") == palm)
    for element in (*link.findall("collision"), *link.findall("inertial")):
        turn_back(element.find("origin"))
    for visual in link.findall("visual"):
        link.remove(visual)
    out_path.write_text(ET.tostring(root, encoding="unicode"))
    return rotation


def test_a_turned_palm_frame_turns_the_experts_hand_orientation_and_nothing_else(tmp_path):
    """Vendors draw palm frames their own way. Turning the right palm's frame a quarter turn, with the hand itself
    left where it was, must turn the expert's target orientation with it (top_down @ turn) and leave every
    distance as it was: the experts before this change asked for humanoid43's palm orientation whatever the
    robot, which on this robot points the fingers sideways."""
    robot = robots.load("humanoid43")
    hand = robot.hands["right"]
    turn = _turn_palm_frame(robot.urdf_path, tmp_path / "turned.urdf", hand.palm_link, math.pi / 2)
    turned_hand = dataclasses.replace(hand, grasp_site=tuple(turn.T @ np.asarray(hand.grasp_site)))
    turned = dataclasses.replace(robot, urdf_path=tmp_path / "turned.urdf",
                                 hands={**robot.hands, "right": turned_hand})
    before, after = measure_hand(robot, "right"), measure_hand(turned, "right")
    np.testing.assert_allclose(after.top_down, before.top_down @ turn, atol=1e-12)
    for name in ("palm_to_site", "fingertip_reach", "fingertip_depth", "open_reach"):
        assert getattr(after, name) == pytest.approx(getattr(before, name), abs=1e-12), name
    for expert_type in (BreadPickPlaceExpert, Assembly3CExpert, WardrobeFoldExpert):
        expert = expert_type(1, robot=turned)
        np.testing.assert_allclose(expert.hands[1].top_down, before.top_down @ turn, atol=1e-12)


def test_an_unknown_hand_is_a_clear_error():
    with pytest.raises(KeyError, match="no 'middle' hand"):
        measure_hand(robots.load("humanoid43"), "middle")


def _tip_centres(robot, command):
    """Thumb tip and mean fingertip centres (3,) each, in the right palm frame, at grasp ``command``: posed here by
    forward kinematics, independently of hand_geometry's sampling."""
    from training_ground.physics.contacts import robot_spheres
    from training_ground.physics.model import forward_kinematics, load_model
    from training_ground.physics.rotations import quat_to_matrix

    hand = robot.hands["right"]
    model = load_model(robot, fixed_base=True)
    q = robot.home_posture.copy()
    q[robot.joint_indices(hand.finger_joints)] = hand.finger_targets(command)
    poses = forward_kinematics(model, q[None])[0]
    palm = model.link_index(hand.palm_link)
    tips = {}
    for name in ("thumb", "index", "middle", "ring", "little"):
        link = model.link_index(f"right_{name}")
        spheres = robot_spheres(robot.urdf_path, model.link_names, links=[f"right_{name}"])
        tip = spheres.center[np.argmax(np.linalg.norm(spheres.center, axis=1))]  # farthest from the link's joint
        world = poses[link, :3] + quat_to_matrix(poses[link, 3:]) @ tip
        tips[name] = (world - poses[palm, :3]) @ quat_to_matrix(poses[palm, 3:])
    return tips["thumb"], np.mean([tips[f] for f in ("index", "middle", "ring", "little")], axis=0)


def test_only_a_hand_whose_thumb_tip_meets_its_fingertips_has_a_pinch():
    """humanoid43 revision 3's thumb tip and fingertips close on each other at one depth over gaps from over 10 cm
    down to under 2 cm; revision 1's thumb hooks and revision 2's ends 3 cm above its curled fingers, so they have
    none, nor has compact43 (whose tips meet in passing only)."""
    for name, revision in (("humanoid43", 1), ("humanoid43", 2), ("compact43", None)):
        assert measure_hand(robots.load(name, revision=revision), "right").pinch is None, (name, revision)
    robot = robots.load("humanoid43", revision=3)
    hand = measure_hand(robot, "right")
    pinch = hand.pinch
    assert pinch is not None and np.all(np.diff(pinch.gaps) < 0) and np.all(np.diff(pinch.commands) > 0)
    assert pinch.gaps[0] > 0.10 and pinch.gaps[-1] < 0.02
    for gap in (0.08, 0.038, 0.028):  # a roll, a 3 cm chip, a 2 cm part, each between 4 mm tips
        command, midpoint = pinch.at_gap(gap)
        thumb, fingers = _tip_centres(robot, float(command))
        assert (fingers - thumb) @ hand.finger_axis == pytest.approx(gap, abs=1e-3)
        assert abs((fingers - thumb) @ hand.palm_normal) <= 0.006  # one depth, within a tip radius
        np.testing.assert_allclose((thumb + fingers) / 2 - np.asarray(robot.hands["right"].grasp_site), midpoint,
                                   atol=1e-3)
        np.testing.assert_allclose(pinch.midpoint_at(command), midpoint, atol=1e-9)
        site = np.asarray(robot.hands["right"].grasp_site)
        for measured, posed in zip(pinch.tips_at(command), (thumb, fingers)):
            np.testing.assert_allclose(measured, posed - site, atol=1e-3)
    assert list(pinch.moves_thumb) == [True, True, False, False, False, False]  # thumb_rotation, thumb_flexion
    # Pre-shaped at its deepest, the tips only rise as the hand closes further.
    deepest = pinch.deepest_command(hand.palm_normal)
    later = pinch.commands >= deepest
    assert np.all(np.diff(pinch.midpoints[later] @ hand.palm_normal) <= 1e-12)
    assert pinch.at_gap(1.0)[0] == pinch.commands[0] and pinch.at_gap(0.0)[0] == pinch.commands[-1]  # clipped
