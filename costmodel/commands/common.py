"""Options shared by every command that takes parameters, and their resolution."""

from __future__ import annotations

import argparse

from .. import registry


def add_param_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", metavar="NAME", choices=list(registry.KERNEL_PRESETS),
                        help="kernel preset: " + ", ".join(registry.KERNEL_PRESETS))
    parser.add_argument("--params", metavar="FILE", help="parameter file (JSON) to start from")
    parser.add_argument("--set", metavar="NAME=VALUE", action="append", default=[],
                        help="override one parameter; repeatable (see `costmodel params`)")


def resolve_params(args: argparse.Namespace) -> tuple[dict, str | None]:
    """Defaults < parameter file < preset < --set. Returns the values and the preset's policy."""
    base: dict = {}
    if args.params:
        from ..paramfile import load_values

        base.update(load_values(args.params))
    preset_policy = None
    if args.preset:
        p = registry.preset(args.preset)
        base.update(p.values)
        preset_policy = p.policy
    return registry.resolve(registry.parse_assignments(args.set), base=base), preset_policy
