"""``costmodel params``: the registry as a table; ``show`` and ``diff`` for parameter files."""

from __future__ import annotations

import argparse
import json

from .. import paramfile, presets, registry
from ..atomic import check_output, write_atomic
from ..errors import UserError
from ..generate import parameter_table_markdown
from ..paramfile import default_params_path, load
from ..textfmt import format_value

EPILOG = """\
examples:
  costmodel params                      # every parameter: unit, default, bounds, meaning
  costmodel params --json               # the same as JSON (numbers as numbers, choices as lists)
  costmodel params show data/params/SET.json
  costmodel params diff A.json B.json   # two sets, with B - A
  costmodel params diff data/params/*.json   # three or more: machines side by side
  costmodel params workload -o my-workload.json   # your own workload to edit, for --workload FILE
  costmodel params workload --workload fork-snapshot -o snap.json   # starting from a built-in one"""

#: files each action takes
_FILES = {"list": 0, "show": 1, "diff": 2, "workload": 0}
#: actions that take at least their count of files
_AT_LEAST = {"diff"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=list(_FILES), default="list",
                        help="list the registry (default), show FILE, diff A B [C ...], or workload: write the "
                             "workload parameters in force as a workload file to edit (for --workload FILE)")
    parser.add_argument("files", nargs="*", metavar="FILE")
    parser.add_argument("--workload", metavar="NAME|FILE", help="with workload: start from this workload")
    parser.add_argument("-o", "--out", metavar="FILE", help="with workload: the file to write (default: standard output)")
    parser.add_argument("--force", action="store_true", help="with workload: overwrite an existing file")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--markdown", action="store_true", help="the registry as a Markdown table")


def run(args) -> int:
    need = _FILES[args.action]
    if len(args.files) != need and not (args.action in _AT_LEAST and len(args.files) > need):
        if args.action == "list":
            raise UserError(f"params list takes no file, got {' '.join(args.files)!r};"
                            " to read a parameter file use `costmodel params show FILE`")
        more = " or more" if args.action in _AT_LEAST else ""
        raise UserError(f"params {args.action} takes {need}{more} file(s), got {len(args.files)}")
    if args.markdown and args.action != "list":
        raise UserError(f"--markdown is for `params list`; `params {args.action}` takes --json or nothing")
    if args.action != "workload" and (args.workload or args.out or args.force):
        raise UserError(f"--workload, -o and --force go with `params workload`, not `params {args.action}`")
    if args.action == "list":
        return _list(args)
    if args.action == "workload":
        return _workload(args)
    if args.action == "show":
        print(paramfile.show(args.files[0], as_json=args.json))
    elif len(args.files) == 2:
        print(paramfile.diff(args.files[0], args.files[1], as_json=args.json))
    else:
        print(paramfile.diff_many(args.files, as_json=args.json))
    return 0


def _number(entry: registry.Numeric, x):
    """A bound or default as JSON has it: an int for an integer parameter (or a whole float that
    is exact as an int), a float otherwise."""
    if entry.integer:
        return int(x)
    return float(x)


def number_text(entry: registry.Numeric, x) -> str:
    """A bound or value as the table prints it: integers in full, others to four significant
    digits, never an exponent (the project's number style)."""
    return format_value(int(x) if entry.integer else float(x))


def in_force() -> tuple[registry.Point, str, object]:
    """The values a command uses when given no --params, --workload, --preset or --set (the
    shipped default set over the registry's defaults, as a checked point whose origins are the
    set's name or "default"), its label, and the set (None if absent)."""
    try:
        path = default_params_path()
        ps = load(path)
    except (UserError, OSError):
        return registry.resolve(), "registry", None
    return ps.point(), ps.name, ps


def json_rows() -> list[dict]:
    """The registry as JSON-ready dicts: real numbers, separate low/high, choices as a list;
    ``default`` is the registry's, ``in_force`` the value a command uses by default and
    ``in_force_from`` where that comes from (the shipped set's name, or "registry")."""
    values, _, _ = in_force()
    rows = []
    for e in registry.PARAMS.values():
        row = {"name": e.name, "kind": e.kind, "unit": e.unit}
        origin = values.origin(e.name)
        if isinstance(e, registry.Numeric):
            row.update({"type": "integer" if e.integer else "number", "default": _number(e, e.default),
                        "in_force": _number(e, values[e.name]),
                        "low": _number(e, e.low), "high": _number(e, e.high)})
            if e.probability:
                row["probability"] = True
            if e.log_scale:
                row["log_scale"] = True
        else:
            row.update({"type": "choice", "default": e.default, "in_force": values[e.name],
                        "choices": list(e.choices), "meanings": dict(e.meanings)})
        row["in_force_from"] = "registry" if origin == registry.DEFAULT_ORIGIN else origin
        row.update({"description": e.description, "source": e.source})
        rows.append(row)
    return rows


def text_rows() -> list[dict[str, str]]:
    values, _, _ = in_force()
    rows = []
    for e in registry.PARAMS.values():
        if isinstance(e, registry.Numeric):
            default = number_text(e, e.default)
            now = number_text(e, values[e.name])
            bounds = f"{number_text(e, e.low)} .. {number_text(e, e.high)}"
        else:
            default, now, bounds = e.default, values[e.name], " | ".join(e.choices)
        source = "registry" if values.origin(e.name) == registry.DEFAULT_ORIGIN else "set"
        rows.append({"name": e.name, "kind": e.kind, "unit": e.unit, "in force": now, "from": source,
                     "default": default, "bounds": bounds, "description": e.description, "source": e.source})
    return rows


def _workload(args) -> int:
    """The workload parameters in force (the default set's, or a workload's) as a workload file."""
    if args.out:
        check_output(args.out, force=args.force)
    values, _, _ = in_force()
    name, source, intervals = "my-workload", "", {}
    if args.workload:
        w = presets.workload_preset(args.workload)
        values = presets.compose(values, args.workload)[0]
        name, source, intervals = f"{w.title} (edited)", w.source, w.intervals
    text = json.dumps(presets.workload_document(values, name, intervals, source), indent=2) + "\n"
    if args.out:
        write_atomic(args.out, text, force=args.force)
        print(f"wrote {args.out}: edit the values (a value may be {{\"value\": v, \"low\": lo, \"high\": hi}} to "
              f"give its range), then use it with --workload {args.out}")
    else:
        print(text, end="")
    return 0


def _list(args) -> int:
    if args.json:
        print(json.dumps(json_rows(), indent=2))
        return 0
    if args.markdown:
        print(parameter_table_markdown())
        return 0
    rows = text_rows()
    _, label, ps = in_force()
    widths = {k: max(len(k), *(len(r[k]) for r in rows)) for k in ("name", "unit", "in force", "from", "bounds")}
    header = "  ".join(k.ljust(widths[k]) for k in widths) + "  description"
    print(header)
    print("-" * len(header))
    for r in rows:
        print("  ".join(r[k].ljust(widths[k]) for k in widths) + "  " + r["description"])
    print()
    print(f"in force: what every command uses unless told otherwise; from 'set': the default parameter set {label}"
          if ps is not None else "in force: the registry's defaults (no default parameter set was found)")
    print("  (--params FILE, --workload, --preset and --set change it; --params none gives the registry's defaults; "
          "`costmodel params --json` lists both)")
    return 0
