"""``costmodel validate``: the model's p_copy against measured unnecessary copies."""

from __future__ import annotations

import argparse
import json

from ..validate import describe, model_vs_kernel


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", help="a measurement directory written by `costmodel bench`")
    parser.add_argument("--json", action="store_true", help="rows and summary as one JSON object")
    parser.add_argument("--all", action="store_true", help="print every row, not only those outside the interval")


def run(args) -> int:
    rows, summary = model_vs_kernel(args.directory)
    if args.json:
        print(json.dumps({"summary": summary, "rows": rows.to_dict(orient="records")}, indent=2))
        return 0
    print(describe(summary))
    shown = rows if args.all else rows[~rows["inside_ci"]]
    if len(shown):
        print()
        print(shown.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    return 0
