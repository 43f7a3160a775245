"""Evaluation metrics on hand-made trajectories whose answers are known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training_ground.agents.evaluate import (EpisodeRecord, count_drops, count_limit_hits, episode_metrics,
                                             mean_contact_force, slip_distance,
                                             mean_squared_jerk, mechanical_energy, path_length, summarize,
                                             wilson_interval)


# ---------------------------------------------------------------------------------------------- Wilson interval
@pytest.mark.parametrize("successes, trials, expected", [
    (5, 10, (0.2366, 0.7634)),  # textbook values for z = 1.96
    (0, 10, (0.0, 0.2775)),
    (10, 10, (0.7225, 1.0)),
    (81, 100, (0.7222, 0.8749)),
])
def test_wilson_interval_matches_known_values(successes, trials, expected):
    low, high = wilson_interval(successes, trials)
    assert low == pytest.approx(expected[0], abs=1e-4)
    assert high == pytest.approx(expected[1], abs=1e-4)


def test_wilson_interval_contains_the_rate_and_narrows_with_more_trials():
    for successes, trials in [(1, 3), (7, 9), (40, 50)]:
        low, high = wilson_interval(successes, trials)
        assert 0 <= low <= successes / trials <= high <= 1
    assert np.diff(wilson_interval(80, 100)) < np.diff(wilson_interval(8, 10))
    for trials in (3, 4, 7, 100):  # exactly, not a rounding error away
        assert wilson_interval(0, trials)[0] == 0.0 and wilson_interval(trials, trials)[1] == 1.0


@pytest.mark.parametrize("successes, trials", [(1, 0), (-1, 5), (6, 5)])
def test_wilson_interval_refuses_impossible_counts(successes, trials):
    with pytest.raises(ValueError):
        wilson_interval(successes, trials)


# ---------------------------------------------------------------------------------------------- path length
def test_path_length_of_a_square_and_a_still_hand():
    side = 0.1
    corners = np.array([[0, 0, 0], [side, 0, 0], [side, side, 0], [0, side, 0], [0, 0, 0]], float)
    still = np.zeros_like(corners) + [0.3, -0.2, 1.0]
    positions = np.stack([still, corners], axis=1)  # (T+1, 2 hands, 3)
    assert path_length(positions) == pytest.approx(4 * side)
    assert path_length(positions[:1]) == 0.0


def test_path_length_adds_the_hands():
    triangle = np.array([[0, 0, 0], [3, 0, 0], [3, 4, 0]], float)  # 3 + 4
    diagonal = np.array([[0, 0, 0], [1, 1, 1], [2, 2, 2]], float)  # 2 sqrt(3)
    assert path_length(np.stack([triangle, diagonal], axis=1)) == pytest.approx(7 + 2 * math.sqrt(3))


# ---------------------------------------------------------------------------------------------- jerk
def test_jerk_of_a_cubic_is_six_times_its_coefficient():
    dt, c = 0.02, 0.7
    t = np.arange(30) * dt
    positions = np.zeros((30, 1, 3))
    positions[:, 0, 0] = c * t**3 + 0.5 * t**2 - t  # lower orders have no jerk
    assert mean_squared_jerk(positions, dt) == pytest.approx((6 * c) ** 2, rel=1e-6)


def test_jerk_is_zero_for_uniform_and_constant_acceleration_motion_and_averages_over_hands():
    dt = 0.02
    t = np.arange(20)[:, None] * dt
    parabola = np.concatenate([t**2, 2 * t, np.ones_like(t)], axis=1)
    assert mean_squared_jerk(parabola[:, None], dt) == pytest.approx(0.0, abs=1e-6)
    cubic = np.concatenate([t**3, 0 * t, 0 * t], axis=1)
    both = np.stack([parabola, cubic], axis=1)
    assert mean_squared_jerk(both, dt) == pytest.approx(36 / 2, rel=1e-6)  # one hand jerks 6, the other 0
    assert mean_squared_jerk(both[:3], dt) == 0.0  # three samples have no third difference


# ---------------------------------------------------------------------------------------------- energy
def test_energy_is_the_absolute_power_integrated_over_time():
    dt, steps = 0.02, 50
    torques = np.zeros((steps, 3))
    joint_vel = np.zeros((steps, 3))
    torques[:, 0], joint_vel[:, 0] = 2.0, 3.0  # 6 W of positive work
    torques[:, 1], joint_vel[:, 1] = -4.0, 0.5  # 2 W of braking: a cost too
    torques[:, 2] = 100.0  # holding still costs no mechanical work
    assert mechanical_energy(torques, joint_vel, dt) == pytest.approx((6 + 2) * steps * dt)


# ---------------------------------------------------------------------------------------------- joint limits
def test_limit_hits_count_arrivals_not_steps_at_the_limit():
    lower, upper = np.array([-1.0, 0.0]), np.array([1.0, 1.5])
    joint = np.array([0.0, 0.5, 0.999, 1.0, 1.0, 0.5, 0.995, -0.2, -1.0])  # arrives at +1 twice, -1 once
    starts_at_limit = np.array([0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # counts only on its return
    joint_pos = np.stack([joint, starts_at_limit], axis=1)
    assert count_limit_hits(joint_pos, lower, upper, margin=0.01) == 3 + 1


# ---------------------------------------------------------------------------------------------- drops
def test_a_release_followed_by_a_fall_is_a_drop():
    held = np.array([0, 1, 1, 1, 0, 0, 0], bool)
    height = np.array([0.80, 0.80, 0.85, 0.90, 0.88, 0.84, 0.80])  # fell 0.10 after the release
    assert count_drops(held, height, success=False) == 1


def test_the_placement_of_a_successful_episode_is_not_a_drop():
    held = np.array([0, 1, 1, 1, 0, 0, 0], bool)
    height = np.array([0.80, 0.80, 0.85, 0.90, 0.88, 0.84, 0.80])
    assert count_drops(held, height, success=True) == 0


def test_a_slip_and_regrasp_counts_but_a_gentle_release_does_not():
    held = np.array([0, 1, 1, 0, 0, 1, 1, 0, 0, 0], bool)
    height = np.array([0.8, 0.8, 0.95, 0.90, 0.80, 0.80, 0.9, 0.9, 0.89, 0.89])
    # The first release fell 0.15 before the regrasp: a drop, even in a successful episode; the second is the place.
    assert count_drops(held, height, success=True) == 1
    # Unsuccessful: the second release only sank 1 cm, below the 3 cm threshold.
    assert count_drops(held, height, success=False) == 1
    assert count_drops(held, height, success=False, drop_height=0.005) == 2


# ---------------------------------------------------------------------------------------------- contact and slip
def test_mean_contact_force_averages_the_steps_in_contact_only():
    assert mean_contact_force(np.array([0.0, 2.0, 4.0, 0.0, 6.0])) == pytest.approx(4.0)
    assert mean_contact_force(np.zeros(5)) == 0.0


def test_slip_counts_motion_in_the_holding_palms_frame_only_while_the_same_hand_holds():
    position = np.zeros((6, 2, 3))
    position[:, 1, 0] = [0.0, 0.0, 0.001, 0.003, 0.010, 0.050]  # in the right palm's frame
    position[:, 0, 2] = np.arange(6.0)  # the left palm sees it move a lot: it does not hold it
    held_by = np.array([-1, 1, 1, 1, -1, -1])  # held from step 1 to 3, then let go
    # Steps 1->2 and 2->3: 1 mm + 2 mm; the 7 mm after the release and the left palm's view do not count.
    assert slip_distance(position, held_by) == pytest.approx(0.003)
    assert slip_distance(position, np.full(6, -1)) == 0.0
    # Handed over to the other hand: the step of the handover is no slip of either.
    assert slip_distance(position, np.array([1, 1, 0, 0, 0, 0])) == pytest.approx(3.0)


# ---------------------------------------------------------------------------------------------- per episode and summary
def _record(success: bool, steps: int = 10) -> EpisodeRecord:
    dt = 0.02
    t = np.arange(steps + 1) * dt
    hand = np.zeros((steps + 1, 2, 3))
    hand[:, 1, 0] = 0.5 * t  # 0.5 m/s, straight: path 0.5 * steps * dt, no jerk
    return EpisodeRecord(seed=3, success=success, length=steps, hand_pos=hand,
                         joint_pos=np.zeros((steps + 1, 2)), joint_vel=np.ones((steps, 2)),
                         torques=np.full((steps, 2), 2.0), contact_force=np.linspace(0, 7.5, steps),
                         held=np.zeros(steps + 1, bool), object_height=np.full(steps + 1, 0.8))


def test_episode_metrics_combine_the_definitions():
    metrics = episode_metrics(_record(True), 0.02, np.array([-1.0, -1.0]), np.array([1.0, 1.0]))
    assert metrics.time_to_success == pytest.approx(10 * 0.02)
    assert metrics.path_length == pytest.approx(0.5 * 10 * 0.02)
    assert metrics.jerk == pytest.approx(0.0, abs=1e-6)
    assert metrics.energy == pytest.approx(2 * 2.0 * 1.0 * 10 * 0.02)
    assert metrics.peak_contact_force == pytest.approx(7.5)
    assert metrics.mean_contact_force == pytest.approx(np.linspace(0, 7.5, 10)[1:].mean())
    assert metrics.slip == 0.0  # the record says nothing of a holding hand
    assert (metrics.drops, metrics.limit_hits) == (0, 0)
    assert math.isnan(episode_metrics(_record(False), 0.02, -np.ones(2), np.ones(2)).time_to_success)


def test_summary_averages_time_to_success_over_successes_only():
    lower, upper = -np.ones(2), np.ones(2)
    metrics = [episode_metrics(_record(s, steps), 0.02, lower, upper)
               for s, steps in [(True, 10), (True, 20), (False, 30)]]
    summary = summarize("p", metrics)
    assert summary["success_rate"] == pytest.approx(2 / 3)
    assert summary["success_ci95"] == pytest.approx(list(wilson_interval(2, 3)))
    assert summary["time_to_success"]["mean"] == pytest.approx(15 * 0.02)
    assert summary["length"]["mean"] == pytest.approx(20)
