"""The ``tground`` command line: ``tground --help`` lists the subcommands.

One convention for every subcommand: a module with ``add_arguments(parser)`` and
``main(args) -> int`` (the exit code), listed in :data:`COMMANDS`. Modules load only when
their command runs, so ``tground --help`` stays quick and optional extras stay optional.
Bad input (:class:`training_ground.errors.UserError`) prints one line and exits 2; any
other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import UserError

#: command -> (module, one-line help); ``bench`` groups the benchmarks.
COMMANDS = {
    "demo": ("agents.demo", "run a task's scripted expert, print success, optionally write a GIF"),
    "collect": ("data.collect", "run a policy on N simulated robots and write every episode to an HDF5 dataset"),
    "replay": ("data.replay", "re-run a dataset's episodes and check that success and final states reproduce"),
    "dataset": ("data.dataset", "inspect and merge datasets (dataset info FILE, dataset merge ...)"),
    "train": ("agents.train", "train PPO or SAC (stable-baselines3, rl extra) on a task's batched env"),
    "bc": ("data.imitation", "behaviour cloning: an MLP policy (torch, rl extra) from a collected dataset"),
    "eval": ("data.evaluation", "evaluate policies on many metrics; table, JSON and a comparison PNG"),
}
BENCHMARKS = {
    "engine": ("benchmarks.engine_throughput", "physics env-steps/s: numpy vs pybullet vs MuJoCo"),
    "envs": ("benchmarks.env_throughput", "task env-steps/s on a backend for several batch sizes"),
    "experts": ("benchmarks.expert_success", "every task's scripted expert on every engine: the success table"),
    "steps": ("benchmarks.step_size", "expert success, joint tracking and penetration against the physics rate"),
    "adversarial": ("benchmarks.adversarial", "adversarial policies on every task and engine: are blow-ups flagged?"),
}


def _description(module) -> str:
    return (module.__doc__ or "").strip().split("\n\n")[0]


def _add(sub, name: str, module_name: str, help_text: str) -> None:
    module = importlib.import_module(f"{__package__}.{module_name}")
    parser = sub.add_parser(name, help=help_text, description=_description(module))
    module.add_arguments(parser)
    parser.set_defaults(handler=module.main)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tground", description="Training Ground: humanoid training-ground simulator.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        _add(sub, name, module_name, help_text)
    bench = sub.add_parser("bench", help="benchmarks with JSON + PNG: engine and env throughput, expert success table",
                           description="Throughput benchmarks; each writes a table, JSON and a PNG.")
    bench_sub = bench.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for name, (module_name, help_text) in BENCHMARKS.items():
        _add(bench_sub, name, module_name, help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.handler(args)
    except UserError as error:
        print(f"tground {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
