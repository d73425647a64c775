"""`costmodel bench`: run the kernel probes and write tidy measurements with provenance."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..bench.catalog import PROBES

    names = ", ".join(p.name for p in PROBES)
    parser.add_argument("--quick", action="store_true",
                        help="fewer repetitions, same configurations (under a minute)")
    parser.add_argument("--probe", action="append", metavar="NAME", default=None,
                        help=f"run only this probe (repeatable); one of: {names}")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="output directory (default: data/measurements/<machine id>, "
                             "with -quick appended for --quick)")
    parser.add_argument("--force", action="store_true", help="replace the results already in DIR")
    parser.add_argument("--resume", action="store_true",
                        help="keep the probes DIR already finished and run the others")


def run(args: argparse.Namespace) -> int:
    from ..bench import run_suite
    from ..bench.runner import default_out_dir

    out = args.out if args.out is not None else default_out_dir(args.quick)
    result = run_suite(out, quick=args.quick, probes=args.probe, force=args.force, resume=args.resume)
    for name, status in result.status.items():
        reason = result.reasons.get(name)
        print(f"{name:18s} {status}" + (f": {reason}" if reason else ""))
    if result.batch_size_found is not None:
        print(f"batch size found: {result.batch_size_found}")
    print(f"wrote {result.out_dir} in {result.seconds:.0f} s")
    return 1 if result.failed else 0
