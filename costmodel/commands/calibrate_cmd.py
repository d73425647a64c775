"""``costmodel calibrate``: fit machine parameters from a measurement directory into a parameter file."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", help="a measurement directory written by `costmodel bench`")
    parser.add_argument("-o", "--out", required=True, metavar="FILE.json", help="the parameter file to write")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")
    parser.add_argument("--allow-defaults", action="store_true",
                        help="where a fit cannot be made, keep the registry default marked assumed instead of stopping")
    parser.add_argument("--will-it-scale", metavar="TLB_FLUSH2.csv",
                        help="take the shootdown from a will-it-scale tlb_flush2 run (runtest.py CSV) instead of the probe:"
                             " one target count per thread count, so the shape can be chosen")


def run(args) -> int:
    from ..calibrate import calibrate_to_file

    ps = calibrate_to_file(args.directory, args.out, force=args.force, allow_defaults=args.allow_defaults,
                           will_it_scale=args.will_it_scale)
    counts = {s: sum(1 for e in ps.parameters.values() if e.source == s) for s in ("measured", "published", "assumed")}
    print(f"wrote {args.out}: {counts['measured']} measured, {counts['assumed']} assumed"
          f" (see `costmodel params show {args.out}`)")
    return 0
