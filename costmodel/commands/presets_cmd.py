"""``costmodel presets``: the kernel presets and the workload presets, from their declarations."""

from __future__ import annotations

import argparse
import json

from .. import presets, registry

EPILOG = """\
examples:
  costmodel presets
  costmodel presets --json
  costmodel eval --workload fork-snapshot --preset linux-6.8

Applied in the order: parameter file < workload preset < kernel preset < --set."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON object ({kernel: [...], workload: [...]})")


def _plain(values) -> dict:
    return {k: v for k, v in values.items()}


def rows() -> dict[str, list[dict]]:
    kernel = [{"name": p.name, "policy": p.policy, "since": ".".join(map(str, p.since)) if any(p.since) else None,
               "sets": _plain(p.values), "note": p.note} for p in registry.KERNEL_PRESETS.values()]
    workload = [{"name": p.name, "title": p.title, "sets": _plain(p.values), "source": p.source}
                for p in presets.WORKLOAD_PRESETS.values()]
    return {"kernel": kernel, "workload": workload}


def _sets(values: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def run(args) -> int:
    table = rows()
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    print("kernel presets (--preset NAME): the kernel's policy and the values it fixes")
    w = max(len(r["name"]) for r in table["kernel"])
    for r in table["kernel"]:
        since = f"from {r['since']}" if r["since"] else "earliest"
        print(f"  {r['name'].ljust(w)}  {r['policy']} ({since}); sets {_sets(r['sets'])}")
        print(f"  {''.ljust(w)}  {r['note']}")
    print()
    print("workload presets (--workload NAME): workload parameters only")
    w = max(len(r["name"]) for r in table["workload"])
    for r in table["workload"]:
        print(f"  {r['name'].ljust(w)}  {r['title']}; sets {_sets(r['sets'])}")
    print()
    print("`costmodel presets --json` adds where each workload's numbers come from")
    return 0
