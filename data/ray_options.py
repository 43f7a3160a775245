"""The ``--ray``, ``--workers`` and ``--retries`` options that ``tground collect`` and ``tground eval`` share."""

from __future__ import annotations

import argparse

from ..errors import InputError


def add_ray_arguments(parser, what: str) -> None:
    parser.add_argument("--ray", default=None, metavar="auto|ADDRESS",
                        help=f"{what} (the dist extra). auto: the Ray cluster this machine is in, else a new local "
                             f"one; or the head node's HOST:PORT (ray start --head prints it)")
    parser.add_argument("--workers", type=int, default=None,
                        help="with --ray: worker processes, one CPU each (default: 2)")
    parser.add_argument("--retries", type=int, default=None,
                        help="with --ray: how often a lost worker is restarted to take up its work again "
                             "(default: 3)")


def ray_wanted(args: argparse.Namespace, **more) -> bool:
    """Whether to run over Ray; options that only mean something with --ray are an error without it."""
    if args.ray is not None:
        args.workers = 2 if args.workers is None else args.workers
        args.retries = 3 if args.retries is None else args.retries
        return True
    given = [f"--{name}" for name, value in (("workers", args.workers), ("retries", args.retries), *more.items())
             if value not in (None, False)]
    if given:
        raise InputError(f"{', '.join(given)} only apply with --ray auto|ADDRESS")
    return False
