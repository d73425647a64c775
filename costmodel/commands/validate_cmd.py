"""``costmodel validate``: the model's p_copy against measured unnecessary copies."""

from __future__ import annotations

import argparse
import json
import math
import sys

from .. import validate
from ..errors import UserError
from .common import check_measurement_dir

EPILOG = """\
examples:
  costmodel validate data/measurements/MACHINE
  costmodel validate data/measurements/MACHINE --all
  costmodel validate data/measurements/MACHINE --min-inside 0.95   # exit 1 below 95 %, for CI

Exit status: 0, or 1 when --min-inside is given and fewer measured fractions contain the model;
2 for a bad directory or option; 130 when interrupted."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", help="a measurement directory written by `costmodel bench`")
    parser.add_argument("--json", action="store_true", help="rows and summary as one JSON object")
    parser.add_argument("--all", action="store_true", help="print every row, not only those outside the interval")
    parser.add_argument("--min-inside", metavar="SHARE", default=None,
                        help="fail (exit 1) when the share of measured fractions whose 95%% interval contains"
                             " the model is below SHARE, a number from 0 to 1 (e.g. 0.95)")


def min_inside(raw) -> float | None:
    if raw is None:
        return None
    try:
        value = float(str(raw).strip())
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise UserError(f"--min-inside {raw!r}: give a share from 0 to 1, e.g. 0.95")
    return value


def run(args) -> int:
    threshold = min_inside(args.min_inside)  # checked before the work
    check_measurement_dir(args.directory, "validate")
    rows, summary = validate.model_vs_kernel(args.directory)
    share = summary["inside_ci"] / summary["rows"] if summary["rows"] else 0.0
    passed = threshold is None or share >= threshold
    if args.json:
        check = {"share_inside": share, "min_inside": threshold, "passed": passed}
        print(json.dumps({"summary": summary, "check": check, "rows": rows.to_dict(orient="records")}, indent=2))
    else:
        print(validate.describe(summary))
        shown = rows if args.all else rows[~rows["inside_ci"]]
        if len(shown):
            print()
            print(shown.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    if not passed:
        sys.stdout.flush()
        print(f"costmodel validate: {summary['inside_ci']}/{summary['rows']} = {share:.3f} of the measured fractions"
              f" contain the model, below --min-inside {threshold:g}", file=sys.stderr)
        return 1
    return 0
