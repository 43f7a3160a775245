"""``tground eval``: agents/evaluate.py on this machine, or its seed chunks on Ray workers (``--ray``)."""

from __future__ import annotations

from pathlib import Path

from ..agents import evaluate
from ..agents.train import args_from_namespace
from .ray_options import add_ray_arguments, ray_wanted



def add_arguments(parser) -> None:
    evaluate.add_arguments(parser)
    add_ray_arguments(parser, "evaluate on Ray workers, each running chunks of the seeds")


def main(args) -> int:
    if not ray_wanted(args):
        return evaluate.main(args)
    from . import distributed  # Ray is imported only here

    eval_args = args_from_namespace(evaluate.EvalArgs, args)
    summaries = distributed.evaluate_distributed(eval_args, args.ray, workers=args.workers, retries=args.retries)
    print(evaluate.format_table(summaries))
    out = Path(eval_args.out)
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')}")
    return 0
