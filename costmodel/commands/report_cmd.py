"""``costmodel report``: the standalone interactive HTML report (and, optionally, PNG/SVG charts)."""

from __future__ import annotations

import argparse
import importlib.util
import errno
import os
import sys
import tempfile
import time
from pathlib import Path

from ..atomic import ensure_directory, is_stdout, refuse_overwrite, write_output
from ..errors import UserError
from ..presets import workload_intervals
from ..trace import dataset as _traces
from .common import add_output_options, add_param_options, check_out, load_paramset, resolve_params

EPILOG = """\
examples:
  costmodel report -o report.html
  costmodel report --workload uffd-live-migration --preset linux-6.8 -o uffd.html
  costmodel report --params data/params/SET.json -o out/report.html --png out/charts --parents
  costmodel report --no-simulation -o - > report.html

The page is self-contained (no network); open it in a browser."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_param_options(parser)
    add_output_options(parser, metavar="FILE.html", what="the report to write")
    parser.add_argument("--png", metavar="DIR", help="also write each chart as PNG and SVG into DIR (made if"
                                                     " missing; a missing directory above it needs --parents)")
    parser.add_argument("--title", help="title of the report (default: names the parameter set)")
    parser.add_argument("--trace", metavar="DIR", action="append", default=[],
                        help="add a 'Your workload' section for a trace dataset (costmodel trace); repeatable")
    parser.add_argument("--no-simulation", action="store_true",
                        help="leave the simulation points off the residency chart (faster)")
    parser.add_argument("--no-progress", action="store_true",
                        help="print no progress lines (each step with its elapsed time, on standard error)")


def run(args) -> int:
    missing = [m for m in ("altair", "vl_convert") if importlib.util.find_spec(m) is None]
    if missing:  # before the report module, which draws with altair, is imported
        raise UserError(f"the report needs altair and vl-convert-python ({missing[0]} is missing): "
                        "pip install 'costmodel[notebooks]'")
    # altair (the notebooks extra): imported once checked; and not for every command's parser
    from ..report import build_report, write_images, write_report

    check_out(args)
    if not is_stdout(args.out):
        writable(Path(args.out).parent, f"-o {args.out}")
    if args.png is not None:  # DIR itself is the output, made like a file; the directories above it are not
        png = Path(args.png)
        ensure_directory(png.parent, args.parents, what=f"charts directory {png.name}")
        ensure_directory(png, True, what="charts (--png)")
    for d in args.trace:   # a bad directory is one line before the long build
        _traces.load(d)
    paramset = load_paramset(args)  # once: the report shows its provenance and fits too
    values, _ = resolve_params(args, paramset)
    vary = workload_intervals(args.workload)
    simulate_points = 0 if args.no_simulation else 4
    progress = None if args.no_progress else _progress()
    if is_stdout(args.out):
        report = build_report(values, paramset=paramset, preset=args.preset, title=args.title,
                              simulate_points=simulate_points, vary=vary, progress=progress,
                              traces=args.trace)
        if args.png is not None:
            for name in report.static_specs:
                for ext in ("png", "svg"):
                    refuse_overwrite(Path(args.png) / f"{name}.{ext}", args.force)
            write_images(report.static_specs, args.png, force=args.force)
        write_output(args.out, report.html)
        stream = sys.stderr
    else:
        write_report(values, args.out, paramset=paramset, preset=args.preset, png_dir=args.png, force=args.force,
                     title=args.title, simulate_points=simulate_points, vary=vary, progress=progress,
                     traces=args.trace)
        stream = sys.stdout
    where = "standard output" if is_stdout(args.out) else args.out
    print(f"wrote {where}" + (f" and the charts as PNG/SVG in {args.png}" if args.png else ""), file=stream)
    return 0


def writable(directory: Path, option: str) -> None:
    """Before the tens of seconds of work: a file can be made in ``directory`` (a read-only
    place was reported only once the report was built)."""
    if not directory.is_dir():
        return  # check_out has said what to do about a missing directory
    try:
        fd, name = tempfile.mkstemp(dir=directory, prefix=".costmodel-write-check-")
    except OSError as exc:
        why = "read-only" if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else exc.strerror
        raise UserError(f"{option}: cannot write in {directory or '.'} ({why}); choose a writable place") from None
    os.close(fd)
    os.unlink(name)


def _progress():
    """A progress callback: one line per step on standard error, with the seconds since the start
    (the report takes tens of seconds; `make demo` would otherwise show nothing meanwhile)."""
    start = time.monotonic()

    def say(step: str) -> None:
        print(f"report [{time.monotonic() - start:5.1f} s] {step} ...", file=sys.stderr, flush=True)

    return say
