"""``costmodel breakeven``: where two policies cost the same as one parameter moves."""

from __future__ import annotations

import argparse
import json
import math

from ..breakeven import REL_TOL, breakeven
from ..errors import UserError
from ..model import POLICIES
from .common import add_param_options, params_label, resolve_params

EPILOG = f"""\
examples:
  costmodel breakeven --policy drain_remote --against drain_local --solve-for remote_cpus --set cpus=64
  costmodel breakeven --policy drain_remote --against drain_local --solve-for remote_cpus --high 256 --raise-cpus
  costmodel breakeven --policy drain_local --against copy_if_referenced --solve-for wp_gap_s --json
  costmodel breakeven --policy drain_all --against drain_remote --solve-for drain_all_base_ns --low 0 --high 1e5

An integer parameter's break-even is the integer at which the cheaper policy changes (with the
crossing of the two cost curves beside it); a real one's is where the costs are equal. Two costs
are 'equal' within --rtol (default {REL_TOL:g}) of the larger. Where a rule between parameters
limits the range (remote_cpus <= cpus - 1), the answer says so and what to --set to widen it."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    names = ", ".join(POLICIES)
    add_param_options(parser)
    parser.add_argument("--policy", required=True, metavar="A", help=f"the policy to price; one of {names}")
    parser.add_argument("--against", required=True, metavar="B", help="the policy to compare it with (another one)")
    parser.add_argument("--solve-for", required=True, metavar="NAME",
                        help="the numeric parameter to move (see `costmodel params`)")
    parser.add_argument("--low", help="search from here (default: the registry's lower bound)")
    parser.add_argument("--high", help="search up to here (default: the registry's upper bound)")
    parser.add_argument("--rtol", default=str(REL_TOL), metavar="R",
                        help=f"relative tolerance under which two costs count as equal (default {REL_TOL:g})")
    parser.add_argument("--raise-cpus", action="store_true",
                        help="with --solve-for remote_cpus: cpus follows remote_cpus + 1 where the point has fewer "
                             "CPUs, as the report's charts and map do (the report's break-even table uses it)")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object: roots, crossings, regions, limits, the tolerance")


def _rtol(raw: str) -> float:
    try:
        value = float(str(raw).strip())
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 <= value < 1):
        raise UserError(f"--rtol {raw!r}: give a relative tolerance from 0 up to (not including) 1, e.g. 1e-9")
    return value


def run(args) -> int:
    rtol = _rtol(args.rtol)
    values, _ = resolve_params(args)
    if args.raise_cpus and args.solve_for != "remote_cpus":
        raise UserError(f"--raise-cpus: only with --solve-for remote_cpus (not {args.solve_for}); drop it")
    result = breakeven(values, args.policy, args.against, args.solve_for, args.low, args.high, rtol=rtol,
                       raise_cpus=args.raise_cpus)
    if args.json:
        print(json.dumps(dict(result.as_dict(), parameter_set=getattr(args, "params_label", None)), indent=2))
    else:
        print(result.describe())
        print(params_label(args))
    return 0
