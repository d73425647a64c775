"""Command line: argument parsing and error reporting only.

Each sub-command lives in the module that owns its arguments, as a pair of functions
``add_arguments(parser)`` and ``run(args) -> int``; the logic they call lives in the package.
This file only lists them, so adding a command is one line in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import UserError

#: (command name, module holding add_arguments/run, one-line help)
COMMANDS: list[tuple[str, str, str]] = [
    # model
    ("params", "costmodel.commands.params_cmd", "list the parameter registry, or show/diff parameter files"),
    ("eval", "costmodel.commands.eval_cmd", "evaluate every drain policy at one parameter point"),
    ("sweep", "costmodel.commands.sweep_cmd", "evaluate the policies over a grid and write a tidy CSV"),
    ("breakeven", "costmodel.commands.breakeven_cmd", "find where two policies cost the same"),
    ("simulate", "costmodel.commands.simulate_cmd", "simulate the batches event by event and compare with the model"),
    # measurement and calibration
    ("bench", "costmodel.commands.bench_cmd", "run the kernel probes and write tidy measurements with provenance"),
    ("calibrate", "costmodel.commands.calibrate_cmd", "fit machine parameters from a measurement directory"),
    ("validate", "costmodel.commands.validate_cmd", "compare the model's copy probability with measured unnecessary copies"),
    # exploration
    ("report", "costmodel.commands.report_cmd", "write the standalone interactive HTML report"),
]


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit status 2 like every other user error."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="costmodel", description=__doc__.splitlines()[0])
    from . import __version__

    parser.add_argument("--version", action="version", version=f"costmodel {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, module_name, help_text in COMMANDS:
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        print(f"costmodel {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"costmodel {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
