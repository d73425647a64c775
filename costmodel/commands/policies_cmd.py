"""``costmodel policies``: the drain policies the model compares, from their declarations."""

from __future__ import annotations

import argparse
import json

from ..model import CANDIDATES, POLICIES

EPILOG = """\
examples:
  costmodel policies
  costmodel policies --json
  costmodel eval --policy drain_local --policy drain_remote"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="one JSON list instead of a table")


def rows() -> list[dict]:
    """One dict per policy of :data:`costmodel.model.POLICIES`, in declaration order."""
    return [{"name": p.name, "summary": p.summary, "kernels": p.kernels, "refcount_test": p.refcount_test,
             "local_drain": p.local_drain, "still_held": p.still_held, "only_if_sole_ref": p.only_if_sole_ref,
             "early_copy": p.early_copy, "swapcache": p.swapcache, "source": p.source,
             "candidate": p.name in CANDIDATES}
            for p in POLICIES.values()]


def run(args) -> int:
    table = rows()
    if args.json:
        print(json.dumps(table, indent=2))
        return 0
    name_w = max(len("policy"), *(len(r["name"]) for r in table))
    kern_w = max(len("kernels"), *(len(r["kernels"]) for r in table))
    print(f"{'policy'.ljust(name_w)}  {'kernels'.ljust(kern_w)}  what the WP fault does with a small folio")
    print("-" * (name_w + kern_w + 46))
    for r in table:
        mark = "" if r["candidate"] else " [reference only: not a candidate]"
        print(f"{r['name'].ljust(name_w)}  {r['kernels'].ljust(kern_w)}  {r['summary']}{mark}")
        if r["source"]:
            print(f"{''.ljust(name_w)}  {''.ljust(kern_w)}  source: {r['source']}")
    print()
    print("each is: refcount test (or map count), when to drain the local batch, and what to do if another"
          " CPU's batch still holds the folio; whether it drains only at refcount == 2 + swapcache, copies at once"
          " above 3, and how it counts the swap cache's reference; --json lists these fields")
    return 0
