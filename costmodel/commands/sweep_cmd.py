"""``costmodel sweep``: the policies over a grid of parameters, as a tidy CSV."""

from __future__ import annotations

import argparse

import numpy as np

from .. import registry
from ..atomic import write_atomic
from ..errors import UserError
from ..evaluate import policy_or_error, sweep
from .common import add_param_options, resolve_params


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_param_options(parser)
    parser.add_argument("--vary", action="append", required=True, metavar="NAME=SPEC",
                        help="a grid axis: NAME=v1,v2,... or NAME=lo:hi:count (log-spaced with "
                             "NAME=lo:hi:count:log); categoricals take a list of choices")
    parser.add_argument("--policy", action="append", metavar="NAME", help="policies to include (default all)")
    parser.add_argument("-o", "--out", required=True, metavar="FILE.csv")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")


def parse_axis(spec: str) -> tuple[str, list]:
    name, sep, rhs = spec.partition("=")
    name = name.strip()
    if not sep or not rhs:
        raise UserError(f"--vary {spec!r}: expected NAME=v1,v2 or NAME=lo:hi:count[:log]")
    if name not in registry.PARAMS:
        raise registry._unknown(name)
    if ":" in rhs:
        if name in registry.CATEGORICAL:
            raise UserError(f"--vary {name}: a categorical takes a list of choices, e.g. {name}=" + ",".join(registry.CATEGORICAL[name].choices))
        parts = rhs.split(":")
        if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] not in ("log", "lin")):
            raise UserError(f"--vary {spec!r}: range is lo:hi:count, optionally :log")
        lo = registry.parse_value(name, parts[0])
        hi = registry.parse_value(name, parts[1])
        try:
            count = int(parts[2])
        except ValueError:
            raise UserError(f"--vary {spec!r}: count {parts[2]!r} is not a whole number") from None
        if not 1 <= count <= 10_000_000:
            raise UserError(f"--vary {spec!r}: count must be 1 .. 10000000")
        if len(parts) == 4 and parts[3] == "log":
            if lo <= 0:
                raise UserError(f"--vary {spec!r}: a log range needs lo > 0")
            vals = np.geomspace(lo, hi, count)
        else:
            vals = np.linspace(lo, hi, count)
        if registry.NUMERIC[name].integer:
            vals = np.unique(np.round(vals))
        return name, vals.tolist()
    return name, [registry.parse_value(name, v) for v in rhs.split(",")]


def run(args) -> int:
    values, _ = resolve_params(args)
    grid = dict(parse_axis(s) for s in args.vary)
    policies = [policy_or_error(p) for p in args.policy] if args.policy else None
    from ..atomic import refuse_overwrite

    refuse_overwrite(args.out, args.force)
    df = sweep(grid, base=values, policies=policies)
    write_atomic(args.out, df.to_csv(index=False), force=args.force)
    points = len(df) // df["policy"].nunique()
    print(f"wrote {args.out}: {points} points x {df['policy'].nunique()} policies = {len(df)} rows")
    return 0
