"""Command line: argument parsing and error reporting only.

Each sub-command lives in the module that owns its arguments, as a pair of functions
``add_arguments(parser)`` and ``run(args) -> int``, and optionally ``EPILOG``, examples shown
under its ``--help``; the logic they call lives in the package. This file only lists them, so
adding a command is one line in :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from . import __version__
from .errors import UserError
from .model import model_hash

#: (command name, module holding add_arguments/run, one-line help)
COMMANDS: list[tuple[str, str, str]] = [
    # model
    ("params", "costmodel.commands.params_cmd", "list the parameter registry, or show/diff parameter files"),
    ("policies", "costmodel.commands.policies_cmd", "list the drain policies the model compares"),
    ("presets", "costmodel.commands.presets_cmd", "list the kernel and workload presets"),
    ("eval", "costmodel.commands.eval_cmd", "evaluate every drain policy at one parameter point"),
    ("sweep", "costmodel.commands.sweep_cmd", "evaluate the policies over a grid and write a tidy CSV"),
    ("breakeven", "costmodel.commands.breakeven_cmd", "find where two policies cost the same"),
    ("sensitivity", "costmodel.commands.sensitivity_cmd",
     "which parameters the verdict rests on: elasticities, flip values, what to measure next"),
    ("simulate", "costmodel.commands.simulate_cmd", "simulate the batches event by event and compare with the model"),
    # measurement and calibration
    ("bench", "costmodel.commands.bench_cmd", "run the kernel probes and write tidy measurements with provenance"),
    ("calibrate", "costmodel.commands.calibrate_cmd", "fit machine parameters from a measurement directory"),
    ("validate", "costmodel.commands.validate_cmd", "compare the model's copy probability with measured unnecessary copies"),
    ("predict", "costmodel.commands.predict_cmd",
     "predict whole workloads (the end-to-end probes) from the same machine's calibrated set, against the measurements"),
    ("trace", "costmodel.commands.trace_cmd",
     "trace a real program: count its WP faults, copies and drains, derive its workload, predict it"),
    # exploration
    ("report", "costmodel.commands.report_cmd", "write the standalone interactive HTML report"),
    # maintenance
    ("regenerate", "costmodel.commands.regenerate_cmd",
     "rebuild every generated file of a checkout (schema, README table, shipped sets); --check: say which are stale"),
]

DESCRIPTION = """\
When a write-protect fault finds its page still held in a per-CPU LRU batch, the kernel can
copy the page or drain the batch first. costmodel prices each policy per fault from the
workload and the machine (a symbolic model), finds where two policies cost the same, measures
the machine's costs with kernel probes, fits them, and writes an interactive report."""

EPILOG = """\
examples:
  costmodel eval --workload uffd-live-migration
  costmodel breakeven --policy drain_remote --against drain_local --solve-for remote_cpus --set cpus=64
  costmodel policies
  costmodel params

Each command has its own --help. Errors are one line on standard error with exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit status 2 like every other user error."""

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message}\n")


class _Version(argparse.Action):
    """``--version``: the package version and the hash of the model's formulas, computed only
    when asked (building the formulas takes a few seconds)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit(0)


def version_text() -> str:
    return f"costmodel {__version__} (model {model_hash()})"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="costmodel", description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_Version, help="print the version and the model's formula hash")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, module_name, help_text in COMMANDS:
        module = importlib.import_module(module_name)
        epilog = getattr(module, "EPILOG", None)
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def _silence_stdout() -> None:
    """After standard output failed, point it at /dev/null so the interpreter's final flush of
    what is still buffered cannot fail (and print) a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (a test's capture): nothing buffered there
        pass


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    prefix = f"costmodel {args.command}"
    try:
        code = int(args._run(args) or 0)
        sys.stdout.flush()  # an output error shows here, not at exit as an ignored exception
        return code
    except UserError as exc:
        print(f"{prefix}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): nothing to say
        _silence_stdout()
        return 0
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        if exc.filename:
            print(f"{prefix}: error: {exc.filename}: {reason}", file=sys.stderr)
        else:  # a stream: in practice standard output (a full disk, a device that refuses writes)
            _silence_stdout()
            print(f"{prefix}: error: cannot write the output ({reason}); send it elsewhere", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
