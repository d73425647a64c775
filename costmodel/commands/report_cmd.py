"""``costmodel report``: the standalone interactive HTML report (and, optionally, PNG/SVG charts)."""

from __future__ import annotations

import argparse

from .common import add_param_options, resolve_params


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_param_options(parser)
    parser.add_argument("--workload", metavar="NAME",
                        help="workload preset applied before --preset and --set (see costmodel.presets)")
    parser.add_argument("-o", "--out", required=True, metavar="FILE.html", help="the report to write")
    parser.add_argument("--png", metavar="DIR", help="also write each chart as PNG and SVG into DIR")
    parser.add_argument("--force", action="store_true", help="overwrite existing output files")
    parser.add_argument("--title", help="title of the report (default: names the parameter set)")
    parser.add_argument("--no-simulation", action="store_true",
                        help="leave the simulation points off the residency chart (faster)")


def run(args) -> int:
    from .. import presets, registry
    from ..atomic import refuse_overwrite
    from ..report import write_report

    refuse_overwrite(args.out, args.force)
    paramset = None
    if args.params:
        from ..paramfile import load

        paramset = load(args.params)
    if args.workload:
        file_values = paramset.values() if paramset is not None else {}
        values, _ = presets.compose(file_values, args.workload, args.preset, registry.parse_assignments(args.set))
    else:
        values, _ = resolve_params(args)
    write_report(values, args.out, paramset=paramset, preset=args.preset, png_dir=args.png, force=args.force,
                 title=args.title, simulate_points=0 if args.no_simulation else 4)
    print(f"wrote {args.out}" + (f" and the charts as PNG/SVG in {args.png}" if args.png else ""))
    return 0
