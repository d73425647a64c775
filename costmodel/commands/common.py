"""Options shared by every command that takes parameters, and their resolution."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import paramfile, presets, registry
from ..atomic import check_output
from ..bench import provenance
from ..bench.runner import PROVENANCE_NAME
from ..errors import UserError
from ..model import model_hash
from ..paramfile import DEFAULT_SET, default_params_path, load, sets_for_cpu
from ..prediction import no_set_message


#: ``--params none``: start from the registry defaults alone, not from the default set
NO_PARAMS = "none"


def add_param_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", metavar="FILE",
                        help=f"parameter file (JSON) to start from; default: the shipped default set {DEFAULT_SET}"
                             f" (the one `make demo` uses); `{NO_PARAMS}`: the registry defaults alone")
    parser.add_argument("--workload", metavar="NAME|FILE",
                        help="workload, applied over the parameter file: a preset ("
                             + ", ".join(presets.WORKLOAD_PRESETS) + ") or your own workload file (JSON of "
                             "workload parameters with optional ranges; `costmodel params workload -o FILE` "
                             "writes one to edit)")
    parser.add_argument("--preset", metavar="NAME", choices=list(registry.KERNEL_PRESETS),
                        help="kernel preset, applied over the workload: " + ", ".join(registry.KERNEL_PRESETS))
    parser.add_argument("--set", metavar="NAME=VALUE", action="append", default=[],
                        help="override one parameter, applied last; repeatable (see `costmodel params`)")


def load_paramset(args: argparse.Namespace):
    """The parameter set a command starts from, read once (a migration note prints once): the
    ``--params`` file, by default the shipped default set, or None with ``--params none``. Its
    description for the output is left in ``args.params_label``; a stale formula hash is warned
    about on standard error."""
    if getattr(args, "_paramset_loaded", False):
        return args._paramset
    raw = getattr(args, "params", None)
    if raw == NO_PARAMS:
        ps, label = None, "the registry defaults (--params none)"
    else:
        path = default_params_path() if not raw else _set_path(raw)
        ps = load(path)
        label = f"{ps.name} ({path}{'' if raw else ', the default set'})"
        if ps.model_hash != model_hash():
            print(f"warning: {path}: made for other formulas (model hash {ps.model_hash}, this model {model_hash()});"
                  " recalibrate it with `costmodel calibrate`", file=sys.stderr)
        if not raw:
            label += _machine_hint(path)
    args._paramset, args._paramset_loaded, args.params_label = ps, True, label
    return ps


def _machine_hint(default_path) -> str:
    """Names a committed set measured on this machine's CPU when it is not the default; where no
    committed set comes from this CPU, says so on standard error in one line with the two commands
    that make one."""
    try:
        facts = provenance.machine_facts()
        ours = sets_for_cpu(facts)
        mine = [p for p in ours if p.resolve() != default_path.resolve()]
    except Exception:  # facts of an unusual machine: no hint rather than an error
        return ""
    if not ours and facts.get("cpu_family") is not None:
        print(f"note: {no_set_message(facts)}", file=sys.stderr)
    return f"; measured on this machine's CPU: --params {mine[0]}" if mine else ""


def params_label(args: argparse.Namespace) -> str:
    """One line naming the parameter set the command used."""
    return f"parameter set: {getattr(args, 'params_label', 'the registry defaults')}"


def _set_path(raw: str):
    """``--params``: a file, or the name of a committed set (the name every command prints)."""
    if Path(raw).exists():
        return raw
    sets = paramfile.committed_sets()
    for name, path in sets.items():
        if raw in (name, Path(path).stem, Path(path).name):
            return path
    return raw


def resolve_params(args: argparse.Namespace, paramset=None) -> tuple[registry.Point, str | None]:
    """Registry defaults < parameter set < workload preset < kernel preset < --set, by
    :func:`presets.compose`: the command's one checked :class:`registry.Point`, which it passes
    along (nothing after checks it again). ``paramset``: the set if the caller has read it already
    (else :func:`load_paramset`). Returns the point (each value's origin: "default", the set's
    name, "workload NAME", "preset NAME" or "--set") and the kernel preset's policy (or None)."""
    if paramset is None:
        paramset = load_paramset(args)
    file_values = paramset.values() if paramset is not None else None
    return presets.compose(file_values, args.workload, args.preset, registry.parse_assignments(args.set),
                           paramfile_origin=paramset.name if paramset is not None else "parameter set")


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
    check_output(args.out, force=args.force, parents=args.parents)



def check_measurement_dir(raw: str, command: str = "") -> None:
    """A measurement directory argument, checked before any work so the message says what is
    wrong with the path itself: missing, a file, or a directory that `costmodel bench` did not write."""
    path = Path(raw)
    hint = "give the directory `costmodel bench` wrote (data/measurements/<machine>)"
    if not path.exists():
        raise UserError(f"{path}: no such file or directory; {hint}")
    if not path.is_dir():
        extra = (" (a will-it-scale CSV goes to `costmodel calibrate DIR --will-it-scale FILE.csv`)"
                 if path.suffix.lower() == ".csv" and command != "calibrate" else
                 " (a will-it-scale CSV goes to --will-it-scale, after the directory)"
                 if path.suffix.lower() == ".csv" else "")
        raise UserError(f"{path} is a file, not a measurement directory; {hint}{extra}")
    if not (path / PROVENANCE_NAME).exists():
        raise UserError(f"{path}: has no {PROVENANCE_NAME}, so `costmodel bench` did not write it; {hint}")
