"""A trace, its derived parameters and its prediction as text and as one JSON object."""

from __future__ import annotations

import math

from .dataset import Trace

COUNT_LABELS = (
    ("wp_faults", "WP faults"),
    ("copies", "copies"),
    ("batch_held_copies", "copies of a frame still in an add batch, no live sharer (the batch caused them)"),
    ("batch_held_copies_with_live_sharer", "  the same with a live sharer (necessary anyway)"),
    ("copies_with_live_sharer", "copies with a live sharer (a forked relative still maps the frame)"),
    ("copies_other_reference", "copies with neither a sharer nor a batch: another reference (pin, other batch)"),
    ("copies_not_anon_install", "copies of pages whose anonymous install was not traced"),
    ("copies_zero_or_file_page", "  of which the zero page or a file page"),
    ("in_fault_drains", "WP faults that drained the local batch (seen, or implied by the kernel's rule)"),
    ("in_fault_drains_seen", "  of which seen moving folios"),
    ("shootdowns", "copies that flushed other CPUs' TLBs (remote flush requested)"),
    ("shootdown_ipis", "shootdown IPIs sent by WP faults"),
    ("shootdown_ipi_targets", "  their target CPUs"),
    ("drain_all_calls", "lru_add_drain_all() calls that queued work"),
    ("drain_all_works", "  drain works queued"),
)


def _f(x, fmt="{:.4g}") -> str:
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return "-"
    return fmt.format(x)


def _interval(d: dict, fmt="{:.4g}") -> str:
    s = _f(d.get("value"), fmt)
    if d.get("low") is not None and d.get("high") is not None and d.get("low") != d.get("high"):
        s += f" [{_f(d['low'], fmt)}, {_f(d['high'], fmt)}]"
    return s


def summary_text(trace: Trace) -> str:
    r = trace.meta["recording"]
    prov = trace.provenance
    what = " ".join(r["command"]) if r.get("command") else (r.get("attached") or "?")
    lost = r["lost"]["total"]
    lines = [f"trace {trace.directory}: {what}",
             f"  {prov.get('cpu_model')} (family {prov.get('cpu_family')}, model {prov.get('cpu_model_number')}), "
             f"Linux {prov.get('kernel_release')}, {prov.get('online_cpus')} CPUs, {r['duration_s']:.2f} s, "
             f"{r['events_decoded']:,} events, batch size {trace.meta['batch_size']}",
             ("  complete: no events lost" if r["complete"] else
              f"  NOT complete: {_f(lost, '{:.0f}')} events lost (per-CPU overruns; a larger --buffer-mb helps)"
              if lost else "  NOT complete: stopped by Ctrl-C"),
             "", f"  {'counted':78s} {'count':>9s} {'per s':>10s} {'share of WP':>11s}"]
    c = trace.counts
    for key, label in COUNT_LABELS:
        v = c.get(key)
        if not v:
            continue
        lines.append(f"  {label[:78]:78s} {v['count']:9d} {_f(v['per_s'], '{:.4g}'):>10s} "
                     f"{_f(v['share_of_wp_faults'], '{:.3%}'):>11s}")
    moves = c.get("batch_moves", {})
    if moves:
        lines.append("  batch moves (all CPUs): " + ", ".join(f"{k} {v['count']}" for k, v in moves.items()))
    return "\n".join(lines)


def derived_text(derived: dict) -> str:
    lines = ["derived workload parameters (95% intervals):"]
    for name, d in derived.items():
        extra = ""
        if "median" in d:
            extra = f" median {_f(d['median'])}"
            if "p10" in d:
                extra += f", 10-90% {_f(d['p10'])} .. {_f(d['p90'])}"
        note = f"  ({d['note']})" if d.get("note") else ""
        lines.append(f"  {name:34s} {_interval(d):>40s}{extra}{note}")
    return "\n".join(lines)


def prediction_text(pred: dict) -> str:
    h = pred["headline"]
    lines = [f"prediction: kernel policy {pred['policy']} (preset {pred['preset']}) with {pred['param_set_chosen']}",
             f"  {pred['model_wp_faults']} of {pred['wp_faults']} WP faults are on pages whose install was traced; the "
             f"model is evaluated at each of them (its gap as the adds its batch took, its CPUs, its sharer) and averaged",
             "",
             f"  {'quantity':30s} {'of':26s} {'predicted [95%]':>30s} {'counted [95%]':>30s} {'error':>7s}"]
    for view, rows in (("", pred["comparison"]), (" (gap as time)", pred.get("comparison_gap_as_time", [])),
                       (" (position measured)", pred.get("comparison_position_measured", []))):
        for c in rows:
            mark = " " if c["agrees"] else "*"
            lines.append(f"  {(c['quantity'] + view)[:30]:30s} {c['of'][:26]:26s} {_interval(c['predicted']):>30s} "
                         f"{_interval(c['counted']):>30s} {_f(c['relative_error'], '{:+.0%}'):>7s}{mark}")
    m = pred["at_derived_means"]
    lines.append(f"  at the derived means with an exponential gap: copy share {m['p_copy']:.4g}, batch-caused "
                 f"{m['batch_held_copy_share']:.4g}, in-fault drains {m['in_fault_drain_share']:.4g}")
    lines.append(f"  (* outside {pred['tolerance']:.0%} and the intervals do not overlap)")
    g = pred.get("drains_in_gap") or {}
    if g:
        lines.append(f"  of the {g['faults']} faults whose page the adds alone would have left in its batch, "
                     f"{g['measured']['value']:.1%} [{g['measured']['low']:.1%}, {g['measured']['high']:.1%}] saw "
                     f"their batch moved by a drain or a large add in the gap; the model (Poisson drains at the "
                     f"CPU's rates per second of waiting) says {g['model']:.1%} (at the wall-time rates "
                     f"{g.get('model_wall_rates', float('nan')):.1%}): held {g['held_counted']['value']:.1%} counted, "
                     f"{g['held_model']:.1%} modelled")
        if g.get("no_adds_in_gap"):
            na, mn = g["no_adds_in_gap"], g["measured_no_adds_in_gap"]
            lines.append(f"  of those, {na['value']:.1%} took no add in their gap (a gap of 0 adds: the model, counting "
                         f"the gap in adds, cannot drain them); {_f(mn['value'], '{:.1%}')} of these were moved")
    labels = [p["policy"] + (" (kernel)" if p["kernel"] else (" (reference)" if not p["candidate"] else ""))
              for p in pred["policies"]]
    width = max([20, *map(len, labels)])   # the whole name: two policies may share a prefix
    lines += ["", f"  {'policy':{width}s} {'ns per WP fault [95%]':>28s} {'CPU us/s':>10s} {'p_copy':>7s} "
                  f"{'p_unneeded':>10s} {'p_drain':>8s} {'P(cheapest)':>11s}"]
    for p, label in zip(pred["policies"], labels):
        cost = f"{p['expected_ns']:.0f} [{p['expected_ns_low']:.0f}, {p['expected_ns_high']:.0f}]"
        lines.append(f"  {label:{width}s} {cost:>28s} {p['cpu_us_per_s']:10.0f} {p['p_copy']:7.4f} "
                     f"{p['p_unnecessary_copy']:10.4f} {p['p_local_drain']:8.4f} "
                     f"{_f(p['p_cheapest'], '{:.2f}'):>11s}")
    bp = h["batch_held_copies_predicted"]
    lines += ["",
              f"  the batch caused {h['batch_held_copies_counted']} copies (model: {bp['count']:.1f}); "
              f"{h['in_fault_drains_counted']} WP faults drained in the fault (model: "
              f"{h['in_fault_drains_predicted']['count']:.1f}); under {h['policy']} the in-fault drains cost "
              f"{h['drain_cost_us']:.0f} us and the batch altogether (its copies and drains, against the same faults "
              f"with the page gone from its batch) {_f(h['batch_cost_us'], '{:.0f}')} us over the trace",
              "  (a live sharer is priced as another reference, p_other_ref = 1: mapcount would copy there too, "
              "so its row is a floor, not the cost of reusing those pages)"]
    return "\n".join(lines)


def as_json(trace: Trace, pred: dict | None, derived: dict) -> dict:
    c = trace.counts
    out = {
        "directory": str(trace.directory),
        "command": trace.meta["recording"].get("command"),
        "duration_s": trace.duration_s,
        "complete": trace.meta["recording"]["complete"],
        "lost_events": trace.meta["recording"]["lost"]["total"],
        "provenance": trace.provenance,
        "counts": c,
        "wp_faults": c["wp_faults"]["count"],
        "copies": c["copies"]["count"],
        "batch_held_copies": c["batch_held_copies"]["count"],
        "in_fault_drains": c["in_fault_drains"]["count"],
        "shootdown_ipis": c["shootdown_ipis"]["count"],
        "derived": derived,
    }
    if pred is not None:
        comp = {x["quantity"]: x for x in pred["comparison"]}
        out["predicted"] = {
            "batch_held_copies": _count_interval(comp["batch_held_copy_share"], pred["wp_faults"]),
            "in_fault_drains": _count_interval(comp["in_fault_drain_share"], pred["wp_faults"]),
            "comparison": pred["comparison"],
            "comparison_gap_as_time": pred.get("comparison_gap_as_time"),
            "comparison_position_measured": pred.get("comparison_position_measured"),
            "drains_in_gap": pred.get("drains_in_gap"),
            "at_derived_means": pred["at_derived_means"],
            "policies": pred["policies"],
            "headline": pred["headline"],
            "param_set": pred["param_set"],
            "param_set_chosen": pred["param_set_chosen"],
            "param_set_same_cpu": pred["param_set_same_cpu"],
            "policy": pred["policy"],
        }
    return out


def _count_interval(c: dict, n: int) -> dict:
    p = c["predicted"]
    return {"value": p["value"] * n, "low": p["low"] * n, "high": p["high"] * n}
