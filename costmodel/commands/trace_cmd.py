"""``costmodel trace``: record a real program's WP faults, count them, derive and predict."""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import UserError

EPILOG = """\
examples:
  costmodel trace -o traces/redis -- redis-server --save '' --port 7777
  costmodel trace -o traces/build --predict --json -- make -j2
  costmodel trace -o traces/svc --pid 1234 --duration 30      # attach to a running process tree
  costmodel trace --load data/traces/redis-bgsave --predict   # a recorded trace, predicted again

Needs root (tracefs, page frame numbers). Uses a tracefs instance of its own, removed on every exit
path (Ctrl-C included); tracefs is left as it was found. Everything after `--` is the command.
The prediction uses the calibrated set of this CPU (data/params), or --params FILE; with neither,
the closest committed set and a one-line warning. Exit status: 0; 2 for bad input (not root, no
tracefs, a failing COMMAND, a directory that is not a trace); 130 when interrupted before anything
was recorded."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--out", metavar="DIR", help="write the trace dataset here")
    parser.add_argument("--load", metavar="DIR", help="read a recorded trace dataset instead of recording")
    parser.add_argument("--recount", metavar="DIR", help="count a recorded trace again from its raw pages (DIR/raw)")
    parser.add_argument("--pid", metavar="PID", help="attach to a running process and its descendants")
    parser.add_argument("--cgroup", metavar="PATH", help="attach to the processes of a cgroup directory")
    parser.add_argument("--duration", metavar="S", help="stop after S seconds (COMMAND gets SIGTERM)")
    parser.add_argument("--buffer-mb", metavar="MB", default="128", help="ring buffer per CPU (default 128)")
    parser.add_argument("--no-raw", action="store_true", help="do not keep the raw ring-buffer pages (raw/)")
    parser.add_argument("--predict", action="store_true", help="predict the counts with the model, beside them")
    parser.add_argument("--params", metavar="FILE", help="calibrated parameter set for --predict "
                                                         "(default: the set of this CPU in data/params)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")
    parser.add_argument("--force", action="store_true", help="replace an existing, non-empty DIR")
    parser.add_argument("program", nargs=argparse.REMAINDER, metavar="-- COMMAND [ARGS...]",
                        help="the program to trace")


def _positive(raw, option: str, example: str) -> float | None:
    if raw is None:
        return None
    try:
        v = float(str(raw))
    except ValueError:
        v = math.nan
    if not (math.isfinite(v) and v > 0):
        raise UserError(f"{option} {raw!r}: give a positive number, e.g. {example}")
    return v


def run(args) -> int:
    # the trace machinery (scipy.stats among it, about 0.4 s): loaded when the command runs, not for
    # every command's parser
    from ..trace import dataset, describe, predict, record

    command = list(args.program or [])
    if command and command[0] == "--":
        command = command[1:]
    duration = _positive(args.duration, "--duration", "30")
    buffer_mb = _positive(args.buffer_mb, "--buffer-mb", "256")
    pid = None
    if args.pid is not None:
        try:
            pid = int(args.pid)
        except ValueError:
            raise UserError(f"--pid {args.pid!r}: give a process id (a whole number)") from None
    modes = [m for m in (bool(command), pid is not None, args.cgroup is not None, args.load is not None,
                         args.recount is not None) if m]
    if len(modes) != 1:
        raise UserError("give exactly one of: -- COMMAND, --pid PID, --cgroup PATH, --load DIR, --recount DIR")
    if args.recount is not None:
        trace = dataset.recount(args.recount)
    elif args.load is not None:
        if args.out:
            raise UserError("--load reads a recorded trace; -o is for recording (drop one of them)")
        trace = dataset.load(args.load)
    else:
        if not args.out:
            raise UserError("-o DIR is needed: where to write the trace dataset")
        if os.geteuid() != 0:
            raise UserError("tracing needs root (tracefs and the page frame numbers); run it as root")
        out = Path(args.out)
        if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.force:
            raise UserError(f"{out} already exists; pass --force to replace it")
        if not out.parent.is_dir():
            raise UserError(f"{out.parent}: no such directory; create it first")
        work = Path(tempfile.mkdtemp(prefix=f".{out.name}.raw.", dir=out.parent))
        try:
            rec = record.record(work, command or None, pid, args.cgroup, duration, int(buffer_mb * 1024))
            trace = dataset.build(rec, out, force=args.force, keep_raw=not args.no_raw)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    derived = None
    pred = None
    from ..trace.derive import derive  # the trace machinery, as above

    derived = derive(trace)
    if args.predict:
        pred = predict.predict(trace, params=args.params)
    if args.json:
        print(json.dumps(_clean(describe.as_json(trace, pred, derived)), indent=1, allow_nan=False))
    else:
        print(describe.summary_text(trace))
        print()
        print(describe.derived_text(derived))
        if pred is not None:
            print()
            print(describe.prediction_text(pred))
    return 0


def _clean(x):
    """Plain JSON: numpy scalars as numbers, NaN and infinities as null."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, (str, bytes)):
        x = x.item()
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return str(x)
