"""`costmodel bench`: run the kernel probes and write tidy measurements with provenance, or rebuild
a directory's summary from its raw files (`--resummarise`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..bench import run_suite
from ..bench.catalog import PROBES
from ..bench.runner import TABLES_DIR, default_out_dir, resummarise
from ..errors import UserError

EPILOG = """\
examples:
  costmodel bench --quick --out /tmp/m                   # every probe, fewer repetitions
  costmodel bench --probe remote_drain --out /tmp/rd --no-progress
  costmodel bench --out data/measurements/MACHINE --resume
  costmodel bench --repeat 3 --out DIR     # the probes interleaved over 3 rounds: drift averaged and measured
  costmodel bench --resummarise data/measurements/MACHINE   # say what a rebuild from raw/ changes
  costmodel bench --resummarise data/measurements/MACHINE --force

A directory that already holds results needs --resume (keep the finished probes) or --force
(start over); --resummarise runs no probe and rewrites a changed summary only with --force."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    names = ", ".join(p.name for p in PROBES)
    parser.add_argument("--quick", action="store_true",
                        help="fewer repetitions, same configurations (under a minute)")
    parser.add_argument("--probe", action="append", metavar="NAME", default=None,
                        help=f"run only this probe (repeatable); one of: {names}")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="output directory (default: data/measurements/<machine id>, "
                             "with -quick appended for --quick)")
    parser.add_argument("--force", action="store_true",
                        help="replace the results already in DIR (with --resummarise: replace a summary "
                             "that the rebuild changes)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the probes DIR already finished and run the others")
    parser.add_argument("--resummarise", type=Path, default=None, metavar="DIR",
                        help="run nothing: rebuild DIR/measurements/<probe>.csv (and batch_size_found, per-probe "
                             "sample counts and skips) from DIR/raw/*.tsv.gz with the current summary code; a set "
                             "with the one wide measurements.csv of earlier versions is rewritten as those tables "
                             "(with --force)")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="split the repetitions over N rounds, the probes interleaved (round 1 of every probe, "
                             "then round 2, ...): the host's drift between rounds averages out and is measured "
                             "(the summary's round_sd; calibration and predict widen their intervals by it); "
                             "about the same time as one round")
    parser.add_argument("--seed", type=int, default=None, metavar="S",
                        help="the recording's random seed (default: a fresh one, recorded in provenance.json)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress output (otherwise a bar on a terminal, plain lines elsewhere)")


def run(args: argparse.Namespace) -> int:
    if args.resummarise is not None:
        given = [flag for flag, on in (("--quick", args.quick), ("--probe", args.probe),
                                       ("--out", args.out is not None), ("--resume", args.resume),
                                       ("--repeat", args.repeat != 1), ("--seed", args.seed is not None)) if on]
        if given:
            raise UserError(f"--resummarise rebuilds DIR from its own raw files and runs nothing; "
                            f"drop {given[0]}")
        return _resummarise(args.resummarise, args.force)


    out = args.out if args.out is not None else default_out_dir(args.quick)
    result = run_suite(out, quick=args.quick, probes=args.probe, force=args.force, resume=args.resume,
                       progress=not args.no_progress, repeat=args.repeat, seed=args.seed)
    for name, status in result.status.items():
        reason = result.reasons.get(name)
        print(f"{name:18s} {status}" + (f": {reason}" if reason else ""))
    if result.batch_size_found is not None:
        print(f"batch size found: {result.batch_size_found}")
    print(f"wrote {result.out_dir} in {result.seconds:.0f} s")
    return 1 if result.failed else 0


def _resummarise(directory: Path, force: bool) -> int:
    result = resummarise(directory, force=force)
    for change in result.changes:
        print(f"  {change}")
    if result.written:
        print(f"rebuilt {directory / TABLES_DIR}/<probe>.csv from raw/ ({', '.join(result.probes)})")
    else:
        print(f"{directory / TABLES_DIR} is unchanged: the current summary code gives the same tables")
    return 0
