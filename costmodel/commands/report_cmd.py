"""``costmodel report``: the standalone interactive HTML report (and, optionally, PNG/SVG charts)."""

from __future__ import annotations

import argparse

from .common import add_param_options, load_paramset, resolve_params


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_param_options(parser)
    parser.add_argument("-o", "--out", required=True, metavar="FILE.html", help="the report to write")
    parser.add_argument("--png", metavar="DIR", help="also write each chart as PNG and SVG into DIR")
    parser.add_argument("--force", action="store_true", help="overwrite existing output files")
    parser.add_argument("--title", help="title of the report (default: names the parameter set)")
    parser.add_argument("--no-simulation", action="store_true",
                        help="leave the simulation points off the residency chart (faster)")


def run(args) -> int:
    from ..atomic import refuse_overwrite
    from ..report import write_report

    refuse_overwrite(args.out, args.force)
    paramset = load_paramset(args)  # once: the report shows its provenance and fits too
    values, _ = resolve_params(args, paramset)
    write_report(values, args.out, paramset=paramset, preset=args.preset, png_dir=args.png, force=args.force,
                 title=args.title, simulate_points=0 if args.no_simulation else 4)
    print(f"wrote {args.out}" + (f" and the charts as PNG/SVG in {args.png}" if args.png else ""))
    return 0
