"""``costmodel sweep``: the policies over a grid of parameters, as a tidy CSV."""

from __future__ import annotations

import argparse
import itertools
import sys

import numpy as np
import pandas as pd

from .. import registry, uncertainty
from ..atomic import describe_output, is_stdout, write_output
from ..errors import UserError
from ..evaluate import csv_column, policy_or_error, sweep
from ..model import output_names
from ..textfmt import format_value
from .common import add_output_options, add_param_options, check_out, params_label
from .sensitivity_cmd import add_uncertainty_options, params_and_point, uncertainty_settings, wants_uncertainty

#: draws per point of a sweep with --uncertainty (every point uses the same draws)
SWEEP_DRAWS = 1000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_param_options(parser)
    parser.add_argument("--vary", action="append", required=True, metavar="NAME=SPEC",
                        help="a grid axis: NAME=v1,v2,... or NAME=lo:hi:count (log-spaced with "
                             "NAME=lo:hi:count:log); categoricals take a list of choices")
    parser.add_argument("--policy", action="append", metavar="NAME", help="policies to include (default all)")
    add_output_options(parser, metavar="FILE.csv", what="the tidy CSV to write")
    add_uncertainty_options(parser, SWEEP_DRAWS)


def parse_axis(spec: str) -> tuple[str, list]:
    name, sep, rhs = spec.partition("=")
    name = name.strip()
    if not sep or not rhs:
        raise UserError(f"--vary {spec!r}: expected NAME=v1,v2 or NAME=lo:hi:count[:log]")
    if name not in registry.PARAMS:
        raise registry.unknown_parameter(name)
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
    check_out(args)
    values, _, paramset = params_and_point(args)
    grid = {}
    for spec in args.vary:
        name, axis = parse_axis(spec)
        if name in grid:
            raise UserError(f"--vary {name} is given twice; give one axis per parameter (join values: {name}=a,b,c)")
        grid[name] = axis
    policies = [policy_or_error(p) for p in args.policy] if args.policy else None
    uncertain = wants_uncertainty(args)
    if uncertain:
        draws, seed, vary = uncertainty_settings(args, SWEEP_DRAWS)
        params = uncertainty.uncertain_parameters(values, paramset, vary)
    df = sweep(grid, base=values, policies=policies)
    note = ""
    if uncertain:
        df = add_intervals(df, grid, values, params, draws=draws, seed=seed)
        note = (f"; with each output's 95% interval (<column>_low, <column>_high) and p_cheapest from {draws:,} "
                f"draws, seed {seed}, the same draws at every point")
    _warn_overload(df, values)
    where = write_output(args.out, df.to_csv(index=False), force=args.force, parents=args.parents)
    points = len(df) // df["policy"].nunique()
    message = (f"wrote {describe_output(where) if not is_stdout(args.out) else 'standard output'}: {points} points x"
               f" {df['policy'].nunique()} policies = {len(df)} rows{note}; {params_label(args)}")
    print(message, file=sys.stderr if is_stdout(args.out) else sys.stdout)
    return 0


def _warn_overload(df, values: dict) -> None:
    """On standard error: the rows whose CPU time per second is more than their CPUs have."""
    cpus = df["cpus"].to_numpy(dtype=float) if "cpus" in df else np.full(len(df), float(values["cpus"]))
    over = df["cpu_us_per_s"].to_numpy(dtype=float) > cpus * 1e6
    if not over.any():
        return
    i = int(np.argmax(df["cpu_us_per_s"].to_numpy(dtype=float) / (cpus * 1e6)))
    row = df.iloc[i]
    print(f"warning: {int(over.sum()):,} of {len(df):,} rows of the sweep need more CPU time per second than their "
          f"CPUs have (the worst, row {i + 2} of the CSV: {row['policy']}, {format_value(row['cpu_us_per_s'] / 1e6)} "
          f"s of CPU per second on {int(cpus[i])} CPUs): no machine sustains that fault rate; lower "
          "wp_faults_per_s or raise cpus", file=sys.stderr)


def add_intervals(df, grid: dict, values: dict, params, *, draws: int, seed: int):
    """The sweep's frame with, per row, each output's interval and the policy's P(cheapest): the
    points are the sweep's own (its numeric axes, for each combination of categorical ones)."""
    pols = list(dict.fromkeys(df["policy"]))
    numeric = [n for n in grid if n in registry.NUMERIC]
    cats = [n for n in grid if n in registry.CATEGORICAL]
    keys = output_names()
    frames = []
    for combo in itertools.product(*(list(dict.fromkeys(df[n])) if n in df else grid[n] for n in cats)):
        mask = np.ones(len(df), dtype=bool)
        for n, v in zip(cats, combo):
            mask &= (df[n] == v).to_numpy()
        block = df[mask]
        point = dict(values, **dict(zip(cats, combo)))
        first = block[block["policy"] == pols[0]]
        axes = {n: first[n].to_numpy(dtype=float) for n in numeric}
        res = uncertainty.propagate_grid(point, axes, params, draws=draws, seed=seed, policies=pols, keys=keys)
        extra = {}
        for key in keys:
            col = csv_column(key)
            extra[f"{col}_low"] = np.concatenate([res.intervals[(p, key)][0] for p in pols])
            extra[f"{col}_high"] = np.concatenate([res.intervals[(p, key)][1] for p in pols])
        shares = {c: res.p_cheapest[i] for i, c in enumerate(res.candidates)}
        size = len(first)
        extra["p_cheapest"] = np.concatenate([shares.get(p, np.full(size, np.nan)) for p in pols])
        # the sweep's rows of this block are policy after policy, each in the same point order
        ordered = pd.concat([block[block["policy"] == p] for p in pols])
        frames.append(ordered.assign(**extra, draws=draws, seed=seed))
    return pd.concat(frames).sort_index()
