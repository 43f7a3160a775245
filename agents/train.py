"""``tground train``: PPO or SAC (stable-baselines3) on a task's native batched env, CleanRL style.

One readable script: the arguments are the :class:`TrainArgs` dataclass (one line of doc per
field); :func:`train` builds the SB3 adapter over the numpy VectorEnv, the model and the
callbacks, and writes into ``--out``:

- ``model.zip`` (final) and ``best_model.zip`` (best periodic evaluation): SB3 models on
  flattened observations, loadable by ``tground eval --policy`` and ``tground collect --policy``;
- ``checkpoints/step_<N>.zip`` every ``checkpoint_every`` environment steps;
- ``learning_curve.csv`` and ``learning_curve.png``: training and evaluation success rate and
  return against environment steps;
- ``args.json`` (these arguments), ``summary.json`` (final numbers), ``tb/`` TensorBoard logs
  when tensorboard is installed.

Success ends an episode. With a dense reward that pays every step, ending early can pay less
than lingering next to the goal (a roll held over the basket earns every step; dropping it in
earns once and ends the episode). ``success_bonus`` adds a one-off reward on the step an
episode succeeds, for training only (the logged returns and evaluation are the env's own), so
that succeeding is worth at least what staying would have been: for BreadPickPlace more than
the best non-success step reward (reach 1 + grasp 1 + transport 2 = 4) over 1 - gamma, which is
80 at gamma 0.95 (the reference run used 200). Even so, that run first learned to hold the
roll over the basket (benchmarks/results/ppo_bread_curve.png: the env's return climbs for
1.8M steps), then to let go, after which the return falls as episodes end early in success.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..envs import make_config, parse_overrides, task_spec, with_robot
from ..physics import BACKENDS
from ..errors import InputError, SetupError
from ..progress import progress_bar
from .policies import sb3_model_policy
from .runner import PolicyRunner

ALGORITHMS = ("ppo", "sac")


@dataclass
class TrainArgs:
    """Arguments of ``tground train`` (flags are the field names with dashes)."""

    task: str = "TrainingGround/BreadPickPlace-v0"  # task id or alias (bread, stand, ...)
    algo: str = "ppo"  # ppo or sac
    out: str = "runs/train"  # output folder (models, checkpoints, curves, logs)
    num_envs: int = 256  # environments stepped together in one engine call
    total_steps: int = 1_000_000  # environment steps (summed over environments) to train for
    seed: int = 0  # seed of the training envs (env i gets seed + i), of the network and of evaluation
    backend: str = "numpy"  # physics backend: numpy (fast, batched) or pybullet
    action_mode: str | None = None  # joint_pos or ee_delta (default: the task's)
    reward_mode: str = "dense"  # dense or sparse
    set: tuple[str, ...] = ()  # task config overrides KEY=VALUE, as tground collect --set (e.g. max_steps=200)
    robot: str | None = None  # robot: a registered name or a spec file (path/to/robot.toml), as --set robot=...
    learning_rate: float = 3e-4  # Adam step size
    gamma: float = 0.99  # discount factor
    net_arch: tuple[int, ...] = (256, 256)  # hidden layers of the policy and value (or Q) networks
    log_std_init: float = -0.5  # initial log standard deviation of the Gaussian policy
    success_bonus: float = 0.0  # reward added on the step an episode succeeds, training only (see module doc)
    init_posture: str = ""  # PPO, joint_pos mode: start the policy's mean action at this robot keyframe (e.g. standing)
    normalize_reward: bool = True  # scale rewards by a running estimate of the return's spread (VecNormalize)
    # PPO
    n_steps: int = 64  # PPO: steps per environment in each rollout
    batch_size: int = 512  # PPO: minibatch size; small enough for many gradient steps per rollout (SAC: sac_batch_size)
    n_epochs: int = 8  # PPO: passes over each rollout
    gae_lambda: float = 0.95  # PPO: GAE lambda
    clip_range: float = 0.2  # PPO: ratio clipping
    ent_coef: float = 0.0  # PPO: entropy bonus
    target_kl: float | None = 0.05  # PPO: stop a rollout's epochs early past this approximate KL (None: never)
    # SAC
    buffer_size: int = 1_000_000  # SAC: replay buffer transitions
    learning_starts: int = 10_000  # SAC: environment steps of random actions before learning
    sac_batch_size: int = 512  # SAC: gradient batch size
    gradient_steps: int = 8  # SAC: gradient steps per batched environment step
    tau: float = 0.005  # SAC: target network averaging rate
    # evaluation, checkpoints, logging
    eval_every: int = 250_000  # environment steps between evaluations (0: only at the end)
    eval_episodes: int = 64  # deterministic episodes per evaluation (fixed seeds, disjoint from training's)
    eval_seed: int = 1_000_000  # seed of the first evaluation episode
    checkpoint_every: int = 500_000  # environment steps between checkpoints (0: none)
    torch_threads: int = 1  # CPU threads for torch (the physics has the other cores)
    device: str = "cpu"  # torch device (the env is on the CPU; small MLPs gain little from a GPU)
    progress: bool = True  # tqdm progress bar

    def check(self) -> None:
        if self.algo not in ALGORITHMS:
            raise InputError(f"unknown --algo {self.algo!r}; choose one of {ALGORITHMS}")
        for name in ("num_envs", "total_steps", "eval_episodes", "n_steps", "batch_size", "n_epochs", "torch_threads"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        for name in ("eval_every", "checkpoint_every", "seed", "eval_seed", "learning_starts"):
            if getattr(self, name) < 0:
                raise InputError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        if self.init_posture and self.algo != "ppo":
            raise InputError("--init-posture applies to --algo ppo (SAC's squashed mean starts at zero)")
        if not 0 < self.gamma <= 1:
            raise InputError(f"--gamma must be in (0, 1], got {self.gamma}")


def _require_sb3():
    try:
        import stable_baselines3  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        raise SetupError("training needs the rl extra: pip install torch==2.13.0 && "
                           "pip install \".[rl]\" (from the project's folder)") from None


def task_config(task: str, overrides: tuple[str, ...]):
    """The task's config with ``KEY=VALUE`` overrides; unknown keys raise ConfigError."""
    return make_config(task_spec(task).config_class, parse_overrides(overrides))


def make_env(args: TrainArgs, num_envs: int, seed: int):
    from .sb3_adapter import SB3VecEnv

    return SB3VecEnv(args.task, num_envs, seed=seed, backend=args.backend, action_mode=args.action_mode,
                     reward_mode=args.reward_mode, config=task_config(args.task, with_robot(args.set, args.robot)))


def make_model(args: TrainArgs, env):
    import stable_baselines3 as sb3

    tensorboard = str(Path(args.out) / "tb") if importlib.util.find_spec("tensorboard") else None
    if args.algo == "ppo":
        return sb3.PPO("MlpPolicy", env, learning_rate=args.learning_rate, n_steps=args.n_steps,
                       batch_size=min(args.batch_size, args.n_steps * args.num_envs), n_epochs=args.n_epochs,
                       gamma=args.gamma, gae_lambda=args.gae_lambda, clip_range=args.clip_range,
                       ent_coef=args.ent_coef, target_kl=args.target_kl, seed=args.seed, device=args.device,
                       tensorboard_log=tensorboard, verbose=0,
                       policy_kwargs={"net_arch": list(args.net_arch), "log_std_init": args.log_std_init})
    return sb3.SAC("MlpPolicy", env, learning_rate=args.learning_rate, buffer_size=args.buffer_size,
                   learning_starts=args.learning_starts, batch_size=args.sac_batch_size, tau=args.tau,
                   gamma=args.gamma, train_freq=1, gradient_steps=args.gradient_steps, seed=args.seed,
                   device=args.device, tensorboard_log=tensorboard, verbose=0,
                   policy_kwargs={"net_arch": list(args.net_arch), "log_std_init": args.log_std_init})


def start_at_posture(model, env, keyframe: str) -> None:
    """Set the PPO policy's mean action to a keyframe's joint_pos action.

    SB3 initialises the action layer's weights near zero, so the mean is then that posture in
    every state, and exploration starts around it: a floating robot that starts by commanding
    mid-range joints falls before it learns anything.
    """
    import torch

    controller = env.task.controller
    if not hasattr(controller, "to_action"):
        raise InputError(f"--init-posture needs the joint_pos action mode, not {env.task.action_mode}")
    action = controller.to_action(env.task.robot.keyframe(keyframe))
    with torch.no_grad():
        model.policy.action_net.bias.copy_(torch.as_tensor(action, dtype=model.policy.action_net.bias.dtype))


def wrap_for_training(env, args: TrainArgs):
    """The training env: the adapter, a success bonus if asked for, reward normalisation if asked for."""
    from stable_baselines3.common.vec_env import VecEnvWrapper, VecNormalize

    class SuccessBonus(VecEnvWrapper):
        """Adds ``bonus`` to the reward of each step that ends an episode in success (infos untouched)."""

        def __init__(self, venv, bonus: float):
            super().__init__(venv)
            self.bonus = bonus

        def reset(self):
            return self.venv.reset()

        def step_wait(self):
            observation, rewards, dones, infos = self.venv.step_wait()
            success = np.array([bool(info.get("is_success", False)) for info in infos])
            return observation, rewards + self.bonus * (dones & success), dones, infos

    if args.success_bonus:
        env = SuccessBonus(env, args.success_bonus)
    if args.normalize_reward:
        # Observations stay raw (they are O(1) metres, radians and flags), so a saved model needs no statistics.
        env = VecNormalize(env, norm_obs=False, norm_reward=True, gamma=args.gamma)
    return env


# ---------------------------------------------------------------------------------------------- evaluation
class ReturnRunner(PolicyRunner):
    """The episode runner, adding up each episode's (unnormalised) return."""

    def __init__(self, env, seeds, policy):
        super().__init__(env, seeds, policy)
        self.episode_return = np.zeros(self.num_envs)
        self.returns: dict[int, float] = {}

    def started(self, env_ids, observation) -> None:
        super().started(env_ids, observation)
        self.episode_return[env_ids] = 0.0

    def after_step(self, active, actions, observation, rewards, terminated, truncated, info) -> None:
        self.episode_return[active] += rewards[active]

    def ended(self, ends, info) -> None:
        for end in ends:
            self.returns[end.seed] = float(self.episode_return[end.slot])


def evaluate_model(model, env, episodes: int, seed: int) -> dict:
    """Deterministic episodes with seeds seed..seed+episodes-1 on the native VectorEnv behind ``env`` (an
    SB3VecEnv), through the episode runner; success rate, mean return and length."""
    vector_env = env.vector_env
    runner = ReturnRunner(vector_env, range(seed, seed + episodes), sb3_model_policy(model, vector_env))
    ends = runner.run()
    return {"success_rate": float(np.mean([end.success for end in ends])),
            "mean_return": float(np.mean([runner.returns[end.seed] for end in ends])),
            "mean_length": float(np.mean([end.steps for end in ends])), "episodes": len(ends)}


CURVE_FIELDS = ("env_steps", "wall_s", "train_success_rate", "train_return", "eval_success_rate", "eval_return",
                "eval_length")


def plot_learning_curve(rows: list[dict], path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import EngFormatter

    figure = Figure(figsize=(9, 3.8))
    FigureCanvasAgg(figure)
    success, returns = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    steps = np.array([row["env_steps"] for row in rows], dtype=float)
    for key, label, style in (("train_success_rate", "training episodes", "-"),
                              ("eval_success_rate", "evaluation (deterministic)", "o-")):
        values = np.array([np.nan if row[key] == "" else row[key] for row in rows], dtype=float)
        keep = np.isfinite(values)
        success.plot(steps[keep], 100 * values[keep], style, label=label)
    success.set_ylim(-3, 103)
    success.set_ylabel("success rate (%)")
    for key, label, style in (("train_return", "training episodes", "-"), ("eval_return", "evaluation", "o-")):
        values = np.array([np.nan if row[key] == "" else row[key] for row in rows], dtype=float)
        keep = np.isfinite(values)
        returns.plot(steps[keep], values[keep], style, label=label)
    returns.set_ylabel("episode return (env reward)")
    for axes in (success, returns):
        axes.xaxis.set_major_formatter(EngFormatter(sep=""))  # 250k, 1.5M: long tick labels collide
        axes.set_xlabel("environment steps")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def make_callback(args: TrainArgs, eval_env, rows: list[dict], started: float):
    from stable_baselines3.common.callbacks import BaseCallback
    out = Path(args.out)

    class Progress(BaseCallback):
        """tqdm bar, training statistics every rollout, evaluations and checkpoints on schedule."""

        def __init__(self):
            super().__init__()
            self.bar = None
            self.next_eval = args.eval_every or np.inf
            self.next_checkpoint = args.checkpoint_every or np.inf
            self.next_row = 0
            self.best = -np.inf

        def _on_training_start(self):
            self.bar = progress_bar(args.total_steps, f"{args.algo} {args.task.split('/')[-1]}", args.progress,
                                    unit="step", unit_scale=True, dynamic_ncols=True)
            if args.eval_every:  # the starting point of the curve: the untrained (or initialised) policy
                self.record(self.evaluate())

        def _training_stats(self) -> tuple[float | str, float | str]:
            episodes = list(self.model.ep_info_buffer or [])
            success = list(getattr(self.model, "ep_success_buffer", None) or [])
            return (float(np.mean(success)) if success else "",
                    float(np.mean([e["r"] for e in episodes])) if episodes else "")

        def record(self, evaluation: dict | None) -> None:
            success, returns = self._training_stats()
            row = {"env_steps": self.num_timesteps, "wall_s": round(time.perf_counter() - started, 1),
                   "train_success_rate": success, "train_return": returns,
                   "eval_success_rate": "", "eval_return": "", "eval_length": ""}
            if evaluation:
                row.update(eval_success_rate=evaluation["success_rate"], eval_return=evaluation["mean_return"],
                           eval_length=evaluation["mean_length"])
            rows.append(row)
            write_curve(rows, out, args, plot=evaluation is not None)  # a PNG per evaluation, not per row

        def evaluate(self) -> dict:
            evaluation = evaluate_model(self.model, eval_env, args.eval_episodes, args.eval_seed)
            if evaluation["success_rate"] + 1e-6 * evaluation["mean_return"] > self.best:
                self.best = evaluation["success_rate"] + 1e-6 * evaluation["mean_return"]
                self.model.save(out / "best_model.zip")
            for key, value in evaluation.items():
                self.logger.record(f"eval/{key}", value)
            self.bar.write(f"[{self.num_timesteps:>10,d} steps] eval success {evaluation['success_rate']:.0%}, "
                           f"return {evaluation['mean_return']:.1f}, length {evaluation['mean_length']:.0f}")
            return evaluation

        def _on_step(self) -> bool:
            self.bar.update(self.training_env.num_envs)
            if self.num_timesteps >= self.next_eval:
                self.next_eval += args.eval_every
                self.record(self.evaluate())
            elif self.num_timesteps >= self.next_row:
                self.record(None)
            if self.num_timesteps >= self.next_row:
                self.next_row = self.num_timesteps + max(args.total_steps // 200, args.num_envs)
                success, returns = self._training_stats()
                if success != "":
                    self.bar.set_postfix({"success": f"{success:.0%}", "return": f"{returns:.1f}"}, refresh=False)
            if self.num_timesteps >= self.next_checkpoint:
                self.next_checkpoint += args.checkpoint_every
                (out / "checkpoints").mkdir(exist_ok=True)
                self.model.save(out / "checkpoints" / f"step_{self.num_timesteps}.zip")
            return True

        def _on_training_end(self):
            self.bar.close()

    return Progress()


def write_curve(rows: list[dict], out: Path, args: TrainArgs, plot: bool = True) -> None:
    with open(out / "learning_curve.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CURVE_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    if plot:
            plot_learning_curve(rows, out / "learning_curve.png",
                            f"{args.algo.upper()} on {args.task.split('/')[-1]} ({args.num_envs} envs, {args.backend})")


def quiet_logger(verbose: int):
    """An SB3 logger that writes to stdout only when verbose and leaves no folder behind: SB3's default
    one creates a /tmp/SB3-<date> folder on every learn() even when it writes only to stdout."""
    import sys

    from stable_baselines3.common.logger import HumanOutputFormat, Logger

    return Logger(folder=None, output_formats=[HumanOutputFormat(sys.stdout)] if verbose else [])


# ---------------------------------------------------------------------------------------------- main
def train(args: TrainArgs) -> dict:
    """Train, evaluate at the end, write every output; returns the summary written to summary.json."""
    args.check()
    _require_sb3()
    import torch

    args.task = task_spec(args.task).id
    torch.set_num_threads(args.torch_threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "args.json").write_text(json.dumps(dataclasses.asdict(args), indent=2))
    env = make_env(args, args.num_envs, args.seed)
    eval_env = make_env(args, min(args.eval_episodes, 64), args.eval_seed)
    rows: list[dict] = []
    started = time.perf_counter()
    try:
        model = make_model(args, wrap_for_training(env, args))
        if args.init_posture:
            start_at_posture(model, env, args.init_posture)
        callback = make_callback(args, eval_env, rows, started)
        model.set_logger(quiet_logger(model.verbose))
        model.learn(total_timesteps=args.total_steps, callback=callback, tb_log_name=args.algo)
        model.save(out / "model.zip")
        if rows and rows[-1]["env_steps"] == model.num_timesteps and rows[-1]["eval_success_rate"] != "":
            final = {"success_rate": rows[-1]["eval_success_rate"], "mean_return": rows[-1]["eval_return"],
                     "mean_length": rows[-1]["eval_length"], "episodes": args.eval_episodes}
        else:
            final = evaluate_model(model, eval_env, args.eval_episodes, args.eval_seed)
            callback.bar = callback.bar or _NullBar()
            callback.record(final)
        if final["success_rate"] + 1e-6 * final["mean_return"] > callback.best:
            model.save(out / "best_model.zip")
    finally:
        env.close()
        eval_env.close()
    summary = {"task": args.task, "algo": args.algo, "env_steps": int(model.num_timesteps),
               "wall_s": round(time.perf_counter() - started, 1), "final_eval": final,
               "best_eval_success_rate": max(r["eval_success_rate"] for r in rows if r["eval_success_rate"] != ""),
               "model": str(out / "model.zip"), "best_model": str(out / "best_model.zip")}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


class _NullBar:
    def write(self, text):
        print(text)

    def close(self):
        pass


# ---------------------------------------------------------------------------------------------- command line
#: Fields whose flags take one of a fixed set of values, as every command's flags of the same name do.
FLAG_CHOICES = {"backend": BACKENDS}


def add_dataclass_arguments(parser, cls, skip: tuple[str, ...] = ()) -> None:
    """One ``--flag`` per dataclass field, with the field's comment as help (read from the source)."""
    import inspect
    import re

    comments = dict(re.findall(r"^\s+(\w+):[^#\n]*#\s*(.+)$", inspect.getsource(cls), re.M))
    defaults = cls()
    for item in dataclasses.fields(cls):
        if item.name in skip:
            continue
        flag = "--" + item.name.replace("_", "-")
        default = getattr(defaults, item.name)
        comment = comments.get(item.name, "")
        shown = " ".join(map(str, default)) if isinstance(default, tuple) else default
        help_text = comment if "default" in comment else f"{comment} (default: {shown})"
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse_bool(), default=default, help=help_text)
        elif isinstance(default, tuple):
            # Repeated flags add up (--set a=1 --set b=2, as tground collect takes them); none given: the default.
            kind = int if "int" in str(item.type) else str
            parser.add_argument(flag, type=kind, nargs="+", action="extend", default=None, help=help_text)
        else:
            kind = {"int": int, "float": float}.get(type(default).__name__, str)
            if item.name == "target_kl":
                kind = _optional_float
            parser.add_argument(flag, type=kind, default=default, help=help_text, choices=FLAG_CHOICES.get(item.name))


def argparse_bool():
    import argparse

    return argparse.BooleanOptionalAction


def _optional_float(text: str):
    return None if text.lower() in ("none", "") else float(text)


def args_from_namespace(cls, namespace):
    values = {f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls) if hasattr(namespace, f.name)}
    defaults = cls()
    for name, value in values.items():
        if isinstance(value, list):
            values[name] = tuple(value)
        elif value is None and isinstance(getattr(defaults, name), tuple):
            values[name] = getattr(defaults, name)
    return cls(**values)


def add_arguments(parser) -> None:
    add_dataclass_arguments(parser, TrainArgs)


def main(namespace) -> int:
    summary = train(args_from_namespace(TrainArgs, namespace))
    final = summary["final_eval"]
    print(f"{summary['algo'].upper()} on {summary['task']}: {summary['env_steps']:,} steps in {summary['wall_s']:.0f} s; "
          f"final evaluation success {final['success_rate']:.0%} over {final['episodes']} episodes "
          f"(best {summary['best_eval_success_rate']:.0%}); outputs in {Path(summary['model']).parent}")
    return 0

