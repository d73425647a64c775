"""``costmodel params``: the registry as a table; ``show`` and ``diff`` for parameter files."""

from __future__ import annotations

import argparse
import json

from .. import registry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["list", "show", "diff"], default="list",
                        help="list the registry (default), show FILE, or diff A B")
    parser.add_argument("files", nargs="*", metavar="FILE")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--markdown", action="store_true", help="the registry as a Markdown table")


def run(args) -> int:
    if args.action == "list":
        return _list(args)
    from .. import paramfile
    from ..errors import UserError

    need = {"show": 1, "diff": 2}[args.action]
    if len(args.files) != need:
        raise UserError(f"params {args.action} takes {need} file(s), got {len(args.files)}")
    if args.action == "show":
        print(paramfile.show(args.files[0], as_json=args.json))
    else:
        print(paramfile.diff(args.files[0], args.files[1], as_json=args.json))
    return 0


def _list(args) -> int:
    rows = registry.table_rows()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if args.markdown:
        print("| name | kind | unit | default | bounds | description |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print(f"| `{r['name']}` | {r['kind']} | {r['unit']} | {r['default']} | {r['bounds']} | {r['description']} |")
        return 0
    widths = {k: max(len(k), *(len(r[k]) for r in rows)) for k in ("name", "unit", "default", "bounds")}
    header = "  ".join(k.ljust(widths[k]) for k in widths) + "  description"
    print(header)
    print("-" * len(header))
    for r in rows:
        print("  ".join(r[k].ljust(widths[k]) for k in widths) + "  " + r["description"])
    return 0
