"""Datasets written by an earlier version of the project (tests/fixtures/datasets) still replay bit for bit."""

from pathlib import Path

import pytest

from training_ground.data.replay import replay_dataset

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "datasets").glob("*.hdf5"))


def test_the_fixtures_are_there():
    assert {path.stem for path in FIXTURES} == {"bread_numpy", "wardrobe_numpy", "stand_numpy", "assembly_numpy",
                                                 "bread_pybullet"}


@pytest.mark.parametrize("path", FIXTURES, ids=[path.stem for path in FIXTURES])
def test_a_dataset_of_the_earlier_version_replays_bit_for_bit(path):
    result = replay_dataset(path, progress=False)
    assert result.checks and result.reproduced == len(result.checks), result.summary()
    assert all(check.final_state_error == 0.0 and check.max_state_error == 0.0 for check in result.checks)
