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
