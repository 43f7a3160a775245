"""Datasets written by an earlier version of the project (tests/fixtures/datasets) still replay bit for bit.

Bit for bit holds on the numeric platform they were recorded on (platform.txt beside them: numpy,
its BLAS kernel, its SIMD level); OpenBLAS picks its kernel by CPU, and on another one the same
step differs in the last bits. There the replay must still end as recorded, within rounding.
"""

from pathlib import Path

import pytest

from training_ground.data.platform import numeric_platform
from training_ground.data.replay import replay_dataset

FIXTURE_DIR = Path(__file__).parent / "fixtures" / "datasets"
FIXTURES = sorted(FIXTURE_DIR.glob("*.hdf5"))
RECORDED_ON = (FIXTURE_DIR / "platform.txt").read_text().strip()
# Off the recording platform: the largest difference measured between the Haswell and SkylakeX kernels over
# these fixtures is 9e-12 (bread on pybullet, 30 steps), so 1e-9 is rounding, and any change of the physics is
# far above it.
ROUNDING = 1e-9


def test_the_fixtures_are_there():
    assert {path.stem for path in FIXTURES} == {"bread_numpy", "wardrobe_numpy", "stand_numpy", "assembly_numpy",
                                                 "bread_pybullet"}


@pytest.mark.parametrize("path", FIXTURES, ids=[path.stem for path in FIXTURES])
def test_a_dataset_of_the_earlier_version_replays_bit_for_bit(path):
    result = replay_dataset(path, progress=False)
    assert result.checks, result.summary()
    if numeric_platform() == RECORDED_ON:
        assert result.reproduced == len(result.checks), result.summary()
        assert all(check.final_state_error == 0.0 and check.max_state_error == 0.0 for check in result.checks)
    else:
        assert all(check.reproduced(ROUNDING) and check.max_state_error <= ROUNDING for check in result.checks), \
            result.summary()


def test_a_dataset_with_two_demos_of_one_seed_is_refused_by_name(tmp_path):
    import shutil

    import h5py

    from training_ground.data.dataset import DatasetError

    path = tmp_path / "twice.hdf5"
    shutil.copy(FIXTURES[0].with_name("bread_numpy.hdf5"), path)
    with h5py.File(path, "a") as handle:
        handle.copy("data/demo_0", "data/demo_2")
    with pytest.raises(DatasetError, match="demo_0 and demo_2 of the same seed"):
        replay_dataset(path, progress=False)
