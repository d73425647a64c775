"""``costmodel breakeven``: where two policies cost the same as one parameter moves."""

from __future__ import annotations

import argparse
import json

from ..breakeven import breakeven
from .common import add_param_options, resolve_params


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_param_options(parser)
    parser.add_argument("--policy", required=True, metavar="A")
    parser.add_argument("--against", required=True, metavar="B")
    parser.add_argument("--solve-for", required=True, metavar="NAME", help="the numeric parameter to move")
    parser.add_argument("--low", help="search from here (default: the registry's lower bound)")
    parser.add_argument("--high", help="search up to here (default: the registry's upper bound)")
    parser.add_argument("--json", action="store_true")


def run(args) -> int:
    values, _ = resolve_params(args)
    result = breakeven(values, args.policy, args.against, args.solve_for, args.low, args.high)
    print(json.dumps(result.as_dict(), indent=2) if args.json else result.describe())
    return 0
