"""``costmodel regenerate``: rebuild every generated file of a checkout (schema, README table,
reference and calibrated sets), or with ``--check`` only say which are stale."""

from __future__ import annotations

import argparse

from ..generate import COMMAND, KEYS, regenerate, relative_path

EPILOG = """\
examples:
  costmodel regenerate                       # after a new parameter: schema, README table, every set
  costmodel regenerate --check               # exit 1 naming each stale file (writes nothing)
  costmodel regenerate --only schema,readme  # the quick ones (calibrating the sets takes about half a minute)

Progress goes to standard error, one line per file."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true",
                        help="write nothing: list what is stale and exit 1 if anything is")
    parser.add_argument("--only", metavar="WHAT[,WHAT]",
                        help=f"only some of: {', '.join(KEYS)} (default: all, in that order)")


def run(args) -> int:
    only = None if args.only is None else [k.strip() for k in args.only.split(",") if k.strip()]
    stale = regenerate(check=args.check, only=only)
    names = ", ".join(relative_path(p) for p in stale)
    if args.check:
        if stale:
            print(f"{len(stale)} stale: {names}; run `{COMMAND}`")
            return 1
        print("everything generated is up to date")
        return 0
    print(f"rewrote {len(stale)} file(s): {names}" if stale else "everything generated was up to date")
    return 0
