"""``tground bc``: behaviour cloning (agents/bc.py) from a dataset that ``tground collect`` wrote.

The learner lives in agents/; reading the dataset is the data layer's, so the command is here.
"""

from __future__ import annotations

import numpy as np

from ..agents.bc import BCArgs, Demonstrations, train_bc
from ..agents.train import add_dataclass_arguments, args_from_namespace
from ..errors import InputError
from .dataset import DatasetError, check_demo, dataset_env_args, demo_names, open_dataset, reading


def load_demonstrations(path, count: int) -> Demonstrations:
    """The first ``count`` successful demos (all if 0), in the file's demo order, flattened. Each is checked
    first (checksums, content hash, values): a policy is never trained on a damaged demo."""
    with open_dataset(path) as handle, reading(path):
        env_args = dataset_env_args(handle, path)
        data = handle["data"]
        successful = [name for name in demo_names(data) if bool(data[name].attrs["success"])]
        if not successful:
            raise DatasetError(f"{path} holds no successful demos to clone")
        if count > len(successful):
            raise InputError(f"--demos {count}: {path} holds only {len(successful)} successful demos")
        chosen = successful[:count] if count else successful
        keys = sorted(data[chosen[0]]["obs"])
        shapes = {key: data[chosen[0]][f"obs/{key}"].shape[1:] for key in keys}
        observations, actions = [], []
        for name in chosen:
            problems, arrays = check_demo(name, data[name], None)
            if problems:
                raise DatasetError(f"{path}: {problems[0]}; nothing was trained. Run tground dataset info {path} "
                                   f"for every problem")
            n = int(data[name].attrs["num_samples"])
            observations.append(np.concatenate([arrays[f"obs/{key}"].reshape(n, -1) for key in keys], axis=1))
            actions.append(arrays["actions"])
    return Demonstrations(np.concatenate(observations).astype(np.float32), np.concatenate(actions).astype(np.float32),
                          keys, shapes, chosen, env_args)


def add_arguments(parser) -> None:
    add_dataclass_arguments(parser, BCArgs)


def main(namespace) -> int:
    train_bc(args_from_namespace(BCArgs, namespace), load_demonstrations)
    return 0
