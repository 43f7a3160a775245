"""``tground bc``: behaviour cloning, an MLP policy (torch) regressed on a collected dataset's actions.

CleanRL style: the arguments are :class:`BCArgs`; :func:`train_bc` reads the first N successful
demos of a ``tground collect`` dataset (robomimic-layout HDF5), fits an MLP from the flattened
observation (normalised by the demos' mean and spread) to the recorded action (tanh output,
mean squared error), and evaluates it in the dataset's own environment (task, backend, action
mode and config from the file's ``env_args``) on fresh seeds. ``--demos 10 50 200`` trains one
policy per count and writes the table of demos used against success rate.

Outputs in ``--out``: ``demos_<N>/policy.pt`` (loadable by ``tground eval --policy``),
``demos_<N>/loss.csv``, ``bc_results.json`` and ``bc_results.png``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..envs import make_task_env
from ..errors import InputError, SetupError
from ..progress import progress_bar
from .evaluate import rollout, wilson_interval


@dataclass
class BCArgs:
    """Arguments of ``tground bc``."""

    dataset: str = ""  # an HDF5 dataset written by tground collect
    out: str = "runs/bc"  # output folder
    demos: tuple[int, ...] = (0,)  # successful demos to train on, one policy per count (0: all of them)
    hidden: tuple[int, ...] = (256, 256)  # hidden layer sizes of the MLP
    gradient_steps: int = 20_000  # Adam steps per policy (the same for every count: small sets are not under-trained)
    batch_size: int = 256  # samples per gradient step
    learning_rate: float = 1e-3  # Adam step size (cosine-decayed to zero)
    weight_decay: float = 1e-4  # AdamW weight decay
    seed: int = 0  # seed of the demo order, the network and the minibatches
    eval_episodes: int = 100  # evaluation episodes per policy in the dataset's env (0: skip)
    eval_seed: int = 1_000_000  # seed of the first evaluation episode (the demos' seeds are 0 and up by default)
    num_envs: int = 50  # evaluation episodes run side by side
    torch_threads: int = 1  # CPU threads for torch
    progress: bool = True  # tqdm progress bars


def _require_torch():
    try:
        import torch
    except ImportError:
        raise SetupError("behaviour cloning needs torch: pip install torch==2.13.0 "
                           "(or the rl extra, from the project's folder: pip install \".[rl]\")") from None
    return torch


# ---------------------------------------------------------------------------------------------- data
@dataclass
class Demonstrations:
    observations: np.ndarray  # (S, D) float32, flattened in ``keys`` order
    actions: np.ndarray  # (S, A) float32
    keys: list[str]
    shapes: dict[str, tuple]  # each key's per-step shape
    demos: list[str]
    env_args: dict


# ---------------------------------------------------------------------------------------------- the policy
def build_network(torch, input_size: int, output_size: int, hidden: tuple[int, ...]):
    layers, width = [], input_size
    for size in hidden:
        layers += [torch.nn.Linear(width, size), torch.nn.ReLU()]
        width = size
    layers += [torch.nn.Linear(width, output_size), torch.nn.Tanh()]  # actions live in [-1, 1]
    return torch.nn.Sequential(*layers)


class BCPolicy:
    """Batched dict observations -> actions; the normalisation and key order travel with the weights."""

    def __init__(self, network, keys: list[str], shapes: dict[str, tuple], mean: np.ndarray, std: np.ndarray):
        self.network, self.keys, self.mean, self.std = network, keys, mean, std
        self.shapes = {key: tuple(shape) for key, shape in shapes.items()}
        self.name = "bc"

    def act(self, observation: dict) -> np.ndarray:
        import torch

        from .sb3_adapter import flatten_observations

        # A single env's observation lacks the batch axis that a batch's has.
        single = np.ndim(observation[self.keys[0]]) == len(self.shapes[self.keys[0]])
        batch = {key: np.asarray(observation[key])[None] for key in self.keys} if single else observation
        flat = (flatten_observations(batch, self.keys) - self.mean) / self.std
        with torch.no_grad():
            actions = self.network(torch.as_tensor(flat, dtype=torch.float32)).numpy()
        return actions[0] if single else actions

    def __call__(self, observation: dict) -> np.ndarray:
        return self.act(observation)

    def reset(self, env_mask=None) -> None:
        """Stateless: nothing to reset."""

    def save(self, path, extra: dict) -> None:
        import torch

        torch.save({"state_dict": self.network.state_dict(), "keys": self.keys, "shapes": self.shapes, "mean": self.mean, "std": self.std,
                    **extra}, path)


def load_policy(path, env=None) -> BCPolicy:
    """A BCPolicy saved by ``tground bc``; with ``env``, checks that it fits the env's spaces."""
    torch = _require_torch()
    path = Path(path)
    if not path.is_file():
        raise InputError(f"--policy {path}: no such file")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
        network = build_network(torch, len(saved["mean"]), int(saved["action_size"]), tuple(saved["hidden"]))
        network.load_state_dict(saved["state_dict"])
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise InputError(f"--policy {path}: not a policy written by tground bc ({error})") from None
    network.eval()
    policy = BCPolicy(network, list(saved["keys"]), saved["shapes"], np.asarray(saved["mean"]), np.asarray(saved["std"]))
    if env is not None:
        space = getattr(env, "single_observation_space", env.observation_space)
        missing = [key for key in policy.keys if key not in space.spaces]
        action_shape = getattr(env, "single_action_space", env.action_space).shape
        if missing or action_shape != (int(saved["action_size"]),):
            raise InputError(f"--policy {path} was cloned on {saved.get('env_name')} ({saved.get('action_mode')}); "
                             f"it does not fit this env (missing keys {missing}, actions {action_shape})")
    return policy


# ---------------------------------------------------------------------------------------------- training
def fit(demos: Demonstrations, args: BCArgs, progress: bool = True) -> tuple[BCPolicy, list[tuple[int, float]]]:
    """Regress actions on normalised observations; returns the policy and (step, loss) every 1 %."""
    torch = _require_torch()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    mean = demos.observations.mean(axis=0)
    # Constant features (a fixed base, flags never set) get unit spread instead of a division by zero.
    std = np.where(demos.observations.std(axis=0) > 1e-6, demos.observations.std(axis=0), 1.0).astype(np.float32)
    inputs = torch.as_tensor((demos.observations - mean) / std, dtype=torch.float32)
    targets = torch.as_tensor(np.clip(demos.actions, -1.0, 1.0), dtype=torch.float32)
    network = build_network(torch, inputs.shape[1], targets.shape[1], args.hidden)
    optimizer = torch.optim.AdamW(network.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.gradient_steps)
    losses, running = [], []
    every = max(args.gradient_steps // 100, 1)
    for step in progress_bar(desc=f"bc {len(demos.demos)} demos", enabled=progress, unit="step", mininterval=1.0,
                             iterable=range(1, args.gradient_steps + 1)):
        batch = torch.as_tensor(rng.integers(0, len(inputs), args.batch_size))
        loss = torch.nn.functional.mse_loss(network(inputs[batch]), targets[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        running.append(loss.item())
        if step % every == 0:
            losses.append((step, float(np.mean(running))))
            running = []
    network.eval()
    return BCPolicy(network, demos.keys, demos.shapes, mean.astype(np.float32), std), losses


def evaluate_in_env(policy: BCPolicy, env_args: dict, args: BCArgs) -> dict:
    """Success rate (with its Wilson interval) and mean length on the dataset's env, fresh seeds."""
    env = make_task_env(env_args["env_name"], min(args.num_envs, args.eval_episodes), **env_args["env_kwargs"])
    try:
        bar = progress_bar(args.eval_episodes, "bc eval", args.progress, unit="ep")
        records = rollout(env, policy, args.eval_episodes, args.eval_seed, bar.update)
        bar.close()
    finally:
        env.close()
    successes = sum(r.success for r in records)
    low, high = wilson_interval(successes, len(records))
    return {"success_rate": successes / len(records), "success_ci95": [low, high], "episodes": len(records),
            "mean_length": float(np.mean([r.length for r in records]))}


def train_bc(args: BCArgs, load_demonstrations) -> list[dict]:
    """One policy per demo count; returns (and writes) the results table.

    ``load_demonstrations(path, count)`` reads the first ``count`` successful demos (all if 0) of a
    dataset: data/imitation.py passes the dataset reader, which lives in the data layer above this one.
    """
    torch = _require_torch()
    torch.set_num_threads(args.torch_threads)
    if not args.dataset:
        raise InputError("--dataset is required")
    if any(count < 0 for count in args.demos) or args.gradient_steps < 1 or args.batch_size < 1:
        raise InputError("--demos must be >= 0, --gradient-steps and --batch-size >= 1")
    if args.eval_episodes < 0:
        raise InputError(f"--eval-episodes must be >= 0, got {args.eval_episodes}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for count in args.demos:
        started = time.perf_counter()
        demos = load_demonstrations(args.dataset, count)
        policy, losses = fit(demos, args, args.progress)
        folder = out / f"demos_{len(demos.demos)}"
        folder.mkdir(exist_ok=True)
        env_kwargs = demos.env_args["env_kwargs"]
        policy.save(folder / "policy.pt", {"hidden": list(args.hidden), "action_size": demos.actions.shape[1],
                                           "env_name": demos.env_args["env_name"],
                                           "action_mode": env_kwargs.get("action_mode"), "demos": demos.demos,
                                           "dataset": str(args.dataset)})
        with open(folder / "loss.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["gradient_step", "mse"])
            writer.writerows(losses)
        result = {"demos": len(demos.demos), "samples": len(demos.actions), "final_mse": losses[-1][1],
                  "policy": str(folder / "policy.pt"), "train_s": round(time.perf_counter() - started, 1)}
        if args.eval_episodes:
            result.update(evaluate_in_env(policy, demos.env_args, args))
        results.append(result)
        print(format_results(results[-1:], header=len(results) == 1), flush=True)
    (out / "bc_results.json").write_text(json.dumps({"args": dataclasses.asdict(args), "results": results}, indent=2))
    if args.eval_episodes:
        plot_results(results, out / "bc_results.png", demos.env_args["env_name"])
    return results


def format_results(results: list[dict], header: bool = True) -> str:
    lines = [f"{'demos':>6}  {'samples':>8}  {'final mse':>9}  {'success (95% CI)':<22}  {'mean length':>11}"] if header else []
    for r in results:
        success = (f"{r['success_rate']:.0%} [{r['success_ci95'][0]:.0%}, {r['success_ci95'][1]:.0%}]"
                   if "success_rate" in r else "-")
        length = f"{r['mean_length']:.0f}" if "mean_length" in r else "-"
        lines.append(f"{r['demos']:>6}  {r['samples']:>8}  {r['final_mse']:>9.4f}  {success:<22}  {length:>11}")
    return "\n".join(lines)


def plot_results(results: list[dict], path, task: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.5, 3.8))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    demos = [r["demos"] for r in results]
    rate = np.array([100 * r["success_rate"] for r in results])
    low = np.array([100 * r["success_ci95"][0] for r in results])
    high = np.array([100 * r["success_ci95"][1] for r in results])
    axes.errorbar(demos, rate, yerr=np.maximum([rate - low, high - rate], 0.0), fmt="o-", capsize=4)
    axes.set_xscale("log")
    axes.set_xlabel("successful demos used")
    axes.set_ylabel("success rate (%), 95% Wilson interval")
    axes.set_ylim(-3, 103)
    axes.grid(alpha=0.3)
    axes.set_title(f"Behaviour cloning on {task.split('/')[-1]}", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
