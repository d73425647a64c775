"""``costmodel calibrate``: fit machine parameters from a measurement directory into a parameter file."""

from __future__ import annotations

import argparse
import sys

from ..atomic import is_stdout, write_output
from ..bench.willitscale import read_tlb_flush2
from ..calibrate import calibrate, calibrate_to_file
from ..paramfile import loads
from .common import add_output_options, check_measurement_dir, check_out

EPILOG = """\
examples:
  costmodel calibrate data/measurements/MACHINE -o data/params/MACHINE.json
  costmodel calibrate data/measurements/MACHINE -o - | less
  costmodel calibrate data/measurements/MACHINE -o new/MACHINE.json --parents
  costmodel calibrate data/measurements/MACHINE -o p.json --will-it-scale tlb_flush2.csv

--will-it-scale takes a tlb_flush2 thread sweep: runtest.py's CSV, named after the test
(./runtest.py tlb_flush2 > tlb_flush2.csv), or a published curve in this project's CSV
(flush,threads,ops_per_s,citation; of several curves the 'ipi' one is taken). Another test
(page_fault2) or a binary's log (no thread counts) is refused."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", help="a measurement directory written by `costmodel bench`")
    add_output_options(parser, metavar="FILE.json", what="the parameter file to write")
    parser.add_argument("--allow-defaults", action="store_true",
                        help="where a fit cannot be made, keep the registry default marked assumed instead of stopping")
    parser.add_argument("--will-it-scale", metavar="TLB_FLUSH2.csv",
                        help="take the shootdown from a will-it-scale tlb_flush2 thread sweep instead of the probe:"
                             " one target count per thread count, so the shape can be chosen (see below)")


def run(args) -> int:
    check_measurement_dir(args.directory, "calibrate")
    check_out(args)
    if args.will_it_scale is not None:
        read_tlb_flush2(args.will_it_scale)  # refuse another test or a log before the fits
    if is_stdout(args.out):
        ps = calibrate(args.directory, allow_defaults=args.allow_defaults, will_it_scale=args.will_it_scale)
        text = ps.to_json()
        loads(text, "calibrated parameter set (about to be written)")
        write_output(args.out, text)
        where, stream = "standard output", sys.stderr
    else:
        ps = calibrate_to_file(args.directory, args.out, force=args.force, allow_defaults=args.allow_defaults,
                               will_it_scale=args.will_it_scale)
        where, stream = args.out, sys.stdout
    counts = {s: sum(1 for e in ps.parameters.values() if e.source == s) for s in ("measured", "published", "assumed")}
    print(f"wrote {where}: {counts['measured']} measured, {counts['assumed']} assumed"
          + (f" (see `costmodel params show {args.out}`)" if where == args.out else ""), file=stream)
    return 0
