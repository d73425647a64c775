"""``costmodel predict``: the model's cost and copy probability against the end-to-end probes."""

from __future__ import annotations

import argparse
import json
import math
import sys

import pandas as pd

from .. import prediction
from ..errors import UserError
from .common import check_measurement_dir

EPILOG = """\
examples:
  costmodel predict data/measurements/MACHINE
  costmodel predict DIR --params data/params/MACHINE.json
  costmodel predict DIR --max-error 0.15 --min-share 0.8   # exit 1 below 80 % agreement, for CI

The measurement directory needs the workload and/or swap_cow probes (`costmodel bench --probe
workload --probe swap_cow`); the parameter set defaults to the calibrated set of the same CPU.
Exit status: 0, or 1 when a target given by --max-error/--min-share is missed; 2 for a bad
directory, file or option; 130 when interrupted."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", help="a measurement directory written by `costmodel bench`")
    parser.add_argument("--params", metavar="FILE",
                        help="calibrated parameter set (default: the set in data/params measured on the same CPU)")
    parser.add_argument("--json", action="store_true", help="rows and summary as one JSON object")
    parser.add_argument("--max-error", metavar="FRACTION", default=None,
                        help="fail (exit 1) unless every configuration the model prices fully (those it says "
                             "lack a concept are listed apart) has its predicted mean cost within FRACTION of the "
                             "measured mean (e.g. 0.15) and its predicted 95%% interval around the measured mean, "
                             "every measured copy and fault fraction's 99%% interval holds the model, and every "
                             "swap-loop ratio is within its own 20%% of the measured one; relax with --min-share")
    parser.add_argument("--min-share", metavar="SHARE", default=None,
                        help="with --max-error: the share (0 to 1) of configurations that must agree, per check")


def _number(raw, option: str, low: float, high: float, example: str) -> float | None:
    if raw is None:
        return None
    try:
        value = float(str(raw).strip())
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and low <= value <= high):
        raise UserError(f"{option} {raw!r}: give a number from {low:g} to {high:g}, e.g. {example}")
    return value


def _plain(x):
    """A JSON value for what pandas and numpy hand over: NaN and NA as null, numpy scalars as
    Python numbers."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    if not isinstance(x, (list, dict, str)) and pd.isna(x):
        return None
    if hasattr(x, "item"):
        return _plain(x.item())
    if isinstance(x, (bool, int, float, str)):
        return x
    return str(x)


def run(args) -> int:
    max_error = _number(args.max_error, "--max-error", 0.0, 10.0, "0.15")
    min_share = _number(args.min_share, "--min-share", 0.0, 1.0, "0.8")
    if min_share is not None and max_error is None:
        raise UserError("--min-share needs --max-error: it relaxes the targets that --max-error sets")
    check_measurement_dir(args.directory, "predict")
    tolerance = prediction.COST_TOLERANCE if max_error is None else max_error
    rows, summary = prediction.predict(args.directory, params=args.params, tolerance=tolerance)
    problems = prediction.check(summary, 1.0 if min_share is None else min_share) if max_error is not None else []
    if args.json:
        records = [{k: _plain(v) for k, v in r.items()} for r in rows.to_dict(orient="records")]
        print(json.dumps({"summary": summary, "rows": records,
                          "check": {"max_error": max_error, "min_share": min_share, "problems": problems,
                                    "passed": not problems}}, indent=2, default=_plain))
    else:
        print(prediction.describe(rows, summary))
    if problems:
        sys.stdout.flush()
        print(f"costmodel predict: {'; '.join(problems)}", file=sys.stderr)
        return 1
    return 0
