"""``costmodel eval``: every policy (or the chosen ones) at one parameter point; with
``--uncertainty``, each output's interval and each candidate's probability of being the cheapest."""

from __future__ import annotations

import argparse
import json
import sys

from .. import proposals, uncertainty
from ..evaluate import cheapest_candidate, cpu_overload, evaluate_point, policy_or_error
from ..model import OUTPUT_DECLARATIONS, POLICIES
from ..presets import workload_intervals
from ..textfmt import format_value
from .common import add_param_options, params_label
from .sensitivity_cmd import add_uncertainty_options, params_and_point, uncertainty_settings, wants_uncertainty


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_param_options(parser)
    parser.add_argument("--policy", action="append", metavar="NAME",
                        help="policy to show; repeatable (default: all; a preset's policy is starred)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    parser.add_argument("--proposals", action="store_true",
                        help="the 2026 proposals beside the kernel's policy: drains saved, copies changed, ns per WP "
                             "fault and CPU time with intervals, P(cheapest), where each wins, and the paragraph")
    add_uncertainty_options(parser, uncertainty.DRAWS)


def run(args) -> int:
    values, preset_policy, paramset = params_and_point(args)
    if args.proposals:
        return _proposals(args, values, paramset)
    if args.policy:
        policies = [policy_or_error(p) for p in args.policy]
    else:
        policies = list(POLICIES)
    result = evaluate_point(values, policies)
    overload = cpu_overload(values, {p: out["cpu_us_per_s"] for p, out in result.items()})
    if overload:
        print(overload, file=sys.stderr)
    prop = None
    if wants_uncertainty(args):
        draws, seed, vary = uncertainty_settings(args, uncertainty.DRAWS)
        params = uncertainty.uncertain_parameters(values, paramset, vary)
        prop = uncertainty.propagate(values, params, draws=draws, seed=seed, policies=policies)
    if args.json:
        doc = {"parameter_set": getattr(args, "params_label", None), "params": values, "policies": result}
        if prop is not None:
            doc["uncertainty"] = prop.to_dict()
        print(json.dumps(doc, indent=2))
        return 0
    print(format_table(values, result, highlight=preset_policy))
    print(params_label(args))
    if prop is not None:
        print()
        print(format_uncertainty(prop))
    else:
        params = uncertainty.uncertain_parameters(values, paramset, workload_intervals(args.workload))
        # counted as `costmodel calibrate` and `params show` count: the set's entries marked assumed
        assumed = ([n for n, e in paramset.parameters.items() if e.source == "assumed"] if paramset is not None
                   else [p.name for p in params if not p.measured])
        if params:
            print(f"these costs rest on {len(params)} parameters known only to an interval; "
                  + (f"{len(assumed)} of the set's parameters are assumed, not measured: {', '.join(assumed)}"
                     if assumed else "none of the set's parameters is assumed")
                  + "; --uncertainty gives each cost's interval and how likely each policy is to be the cheapest")
    return 0


def _proposals(args, values, paramset) -> int:
    draws, seed, _ = uncertainty_settings(args, proposals.DRAWS)
    c = proposals.compare(values, paramset, draws=draws, seed=seed)
    same_other, holders = proposals.decision_map(values), proposals.holder_map(values)
    if args.json:
        print(json.dumps({"parameter_set": getattr(args, "params_label", None),
                          "comparison": c.table.to_dict("records"),
                          "decision_map_p_same_cpu_p_other_ref": same_other.to_dict("records"),
                          "decision_map_remote_cpus_holder": holders.to_dict("records"),
                          "paragraph": proposals.paragraph(c, same_other, holders, paramset)}, indent=2))
        return 0
    print(proposals.text_table(c))
    print(params_label(args))
    print(f"uncertainty: {c.propagation.summary()}")
    print()
    print("cheapest by CPUs in the mm (columns) and the holder's state:")
    print(holders.pivot(index="holder", columns="remote_cpus", values="cheapest").to_string())
    print()
    print(proposals.paragraph(c, same_other, holders, paramset))
    return 0


def format_table(values: dict, result: dict, highlight: str | None = None) -> str:
    """Every policy's outputs under the names the sweep's CSV uses, then what each column means."""
    cols = [o for o in OUTPUT_DECLARATIONS if o.kind != "count"]
    name_w = max(len(p) for p in result) + 2
    width = {o.name: max(12, len(o.name)) + 2 for o in cols}
    lines = [f"{'policy'.ljust(name_w)}" + "".join(o.name.rjust(width[o.name]) for o in cols) + "  largest_part"]
    lines.append("-" * len(lines[0]))
    cheapest = cheapest_candidate(result)
    for pol, out in result.items():
        mark = "*" if pol == highlight else " "
        top = max(out["breakdown_ns"].items(), key=lambda kv: kv[1])
        lines.append(f"{mark}{pol.ljust(name_w - 1)}" + "".join(o.fmt.format(out[o.name]).rjust(width[o.name])
                                                              for o in cols)
                     + f"  {top[0]} {format_value(top[1], 'ns')}")
    gap = values["gap_model"]
    lines.append("")
    lines.append(f"cheapest policy that tests the refcount: {cheapest} ({format_value(result[cheapest]['expected_ns'], 'ns')})"
                 + (f"; mapcount, the <= 5.8 reference, {format_value(result['mapcount']['expected_ns'], 'ns')}"
                    if "mapcount" in result else ""))
    lines.append(f"  at gap_model={gap}, position_model={values['position_model']}, "
                 f"shootdown_model={values['shootdown_model']}, remote_cpus={values['remote_cpus']}")
    if highlight:
        lines.append("* the preset's policy")
    lines.append("")
    lines.append("columns (the same names as `costmodel sweep`'s CSV; p_: the share of WP faults in which):")
    for o in cols:
        what = o.description
        if o.name == "cpu_us_per_s":
            what = (f"CPU time per second, in us, at wp_faults_per_s = {format_value(values['wp_faults_per_s'])} "
                    f"across the machine's {values['cpus']} CPUs: expected_ns x wp_faults_per_s, every fault at the "
                    "expected cost, no queueing or contention (above cpus x 1,000,000 no machine sustains the rate)")
        lines.append(f"  {o.name}: {what}" + (f" ({o.unit})" if o.unit in ("ns",) else ""))
    lines.append("  largest_part: the largest part of expected_ns (the sweep's breakdown_<part>_ns columns)")
    return "\n".join(lines)


def format_uncertainty(prop: uncertainty.Propagation) -> str:
    """Each policy's expected cost with its interval and P(cheapest), and the verdict in words."""
    pct = round(100 * prop.confidence)
    name_w = max(len(p) for p in prop.policies) + 2
    head = f"{'policy'.ljust(name_w)}{'expected_ns':>13}{'median':>12}{f'{pct}% interval':>26}{'P(cheapest)':>13}"
    lines = [f"uncertainty: {prop.summary()}", head, "-" * len(head)]
    for p in prop.policies:
        e = prop.outputs[p]["expected_ns"]
        share = f"{prop.p_cheapest[p]:.4f}" if p in prop.p_cheapest else "-"
        span = f"{e['low']:.1f} .. {e['high']:.1f}"
        lines.append(f" {p.ljust(name_w - 1)}{e['value']:13.1f}{e['median']:12.1f}{span:>26}{share:>13}")
    best = prop.cheapest
    lines.append("")
    lines.append(f"verdict: {best} is the cheapest candidate at the point, and in {100 * prop.p_cheapest[best]:.1f}% "
                 f"of the draws; P(cheapest) over the candidates {', '.join(prop.candidates)} (ties split)")
    if prop.redrawn:
        lines.append(f"  ({prop.redrawn:,} draws broke a rule between parameters and were drawn again)")
    lines.append("  `costmodel sensitivity` ranks which parameter's interval the verdict hangs on")
    return "\n".join(lines)
