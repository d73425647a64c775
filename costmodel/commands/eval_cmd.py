"""``costmodel eval``: every policy (or the chosen ones) at one parameter point."""

from __future__ import annotations

import argparse
import json

from ..evaluate import cheapest_candidate, evaluate_point, policy_or_error
from ..model import POLICIES
from .common import add_param_options, resolve_params


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_param_options(parser)
    parser.add_argument("--policy", action="append", metavar="NAME",
                        help="policy to show; repeatable (default: all; a preset's policy is starred)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of a table")


def run(args) -> int:
    values, preset_policy = resolve_params(args)
    if args.policy:
        policies = [policy_or_error(p) for p in args.policy]
    else:
        policies = list(POLICIES)
    result = evaluate_point(values, policies)
    if args.json:
        print(json.dumps({"params": values, "policies": result}, indent=2))
        return 0
    print(format_table(values, result, highlight=preset_policy))
    return 0


def format_table(values: dict, result: dict, highlight: str | None = None) -> str:
    cols = [("p_copy", "p_copy", "{:.4f}"), ("p_unnecessary_copy", "p_unneeded", "{:.4f}"),
            ("p_local_drain", "p_drain_loc", "{:.4f}"), ("p_remote_drain", "p_drain_rem", "{:.4f}"),
            ("p_drain_all", "p_drain_all", "{:.4f}"), ("expected_ns", "expected_ns", "{:.1f}"),
            ("cpu_us_per_s", "cpu_us_per_s", "{:.0f}")]
    name_w = max(len(p) for p in result) + 2
    lines = [f"{'policy'.ljust(name_w)}" + "".join(h.rjust(13) for _, h, _ in cols) + "  largest part"]
    lines.append("-" * len(lines[0]))
    cheapest = cheapest_candidate(result)
    for pol, out in result.items():
        mark = "*" if pol == highlight else " "
        top = max(out["breakdown_ns"].items(), key=lambda kv: kv[1] if kv[0] != "fault_entry" else -1)
        lines.append(f"{mark}{pol.ljust(name_w - 1)}" + "".join(fmt.format(out[k]).rjust(13) for k, _, fmt in cols)
                     + f"  {top[0]} {top[1]:.0f} ns")
    gap = values["gap_model"]
    lines.append("")
    lines.append(f"cheapest policy that tests the refcount: {cheapest} ({result[cheapest]['expected_ns']:.0f} ns)"
                 + (f"; mapcount, the <= 5.8 reference, {result['mapcount']['expected_ns']:.0f} ns" if "mapcount" in result else ""))
    lines.append(f"  at gap_model={gap}, position_model={values['position_model']}, "
                 f"shootdown_model={values['shootdown_model']}, remote_cpus={values['remote_cpus']}")
    if highlight:
        lines.append("* the preset's policy")
    return "\n".join(lines)
