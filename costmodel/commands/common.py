"""Options shared by every command that takes parameters, and their resolution."""

from __future__ import annotations

import argparse

from .. import presets, registry


def add_param_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", metavar="FILE", help="parameter file (JSON) to start from")
    parser.add_argument("--workload", metavar="NAME", choices=list(presets.WORKLOAD_PRESETS),
                        help="workload preset, applied over the parameter file: "
                             + ", ".join(presets.WORKLOAD_PRESETS))
    parser.add_argument("--preset", metavar="NAME", choices=list(registry.KERNEL_PRESETS),
                        help="kernel preset, applied over the workload: " + ", ".join(registry.KERNEL_PRESETS))
    parser.add_argument("--set", metavar="NAME=VALUE", action="append", default=[],
                        help="override one parameter, applied last; repeatable (see `costmodel params`)")


def load_paramset(args: argparse.Namespace):
    """The ``--params`` file as a ParamSet, or None; read once (a migration note prints once)."""
    if not args.params:
        return None
    from ..paramfile import load

    return load(args.params)


def resolve_params(args: argparse.Namespace, paramset=None) -> tuple[dict, str | None]:
    """Registry defaults < parameter file < workload preset < kernel preset < --set, by
    :func:`presets.compose`. ``paramset``: the ``--params`` file if the caller has read it already.
    Returns the values and the kernel preset's policy (or None)."""
    if paramset is None:
        paramset = load_paramset(args)
    file_values = paramset.values() if paramset is not None else None
    return presets.compose(file_values, args.workload, args.preset, registry.parse_assignments(args.set))


def add_output_options(parser: argparse.ArgumentParser, metavar: str = "FILE", what: str = "the file to write",
                       required: bool = True) -> None:
    """``-o/--out`` (``-`` for standard output), ``--force`` and ``--parents``, the same for
    every command that writes a file; check with :func:`check_out` before any work and write
    with :func:`costmodel.atomic.write_output`."""
    parser.add_argument("-o", "--out", required=required, metavar=metavar,
                        help=f"{what}; - writes it to standard output")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")
    parser.add_argument("--parents", action="store_true",
                        help="create the output's directory if it does not exist (otherwise that is an error)")


def check_out(args: argparse.Namespace) -> None:
    """The ``-o`` of :func:`add_output_options`, checked before any work (see
    :func:`costmodel.atomic.check_output`)."""
    from ..atomic import check_output

    check_output(args.out, force=args.force, parents=args.parents)



def check_measurement_dir(raw: str) -> None:
    """A measurement directory argument, checked before any work so the message says what is
    wrong with the path itself: missing, a file, or a directory that `costmodel bench` did not write."""
    from pathlib import Path

    from ..bench.runner import PROVENANCE_NAME
    from ..errors import UserError

    path = Path(raw)
    hint = "give the directory `costmodel bench` wrote (data/measurements/<machine>)"
    if not path.exists():
        raise UserError(f"{path}: no such file or directory; {hint}")
    if not path.is_dir():
        extra = (" (a will-it-scale CSV goes to --will-it-scale, after the directory)"
                 if path.suffix.lower() == ".csv" else "")
        raise UserError(f"{path} is a file, not a measurement directory; {hint}{extra}")
    if not (path / PROVENANCE_NAME).exists():
        raise UserError(f"{path}: has no {PROVENANCE_NAME}, so `costmodel bench` did not write it; {hint}")
