"""'Your workload': tables and a chart of one trace, for the notebook and the report.

The notebook arranges :func:`derived_frame`, :func:`comparison_frame`, :func:`policies_frame` and
:func:`comparison_chart`; ``costmodel report --trace DIR`` adds :func:`report_section`.
"""

from __future__ import annotations

import html
import math

import altair as alt
import pandas as pd

from .. import registry
from ..errors import UserError
from . import dataset, predict
from .dataset import Trace
from .derive import derive
from .describe import COUNT_LABELS

#: derived parameters shown beside the registry's defaults (the registry's names)
SHOWN = ("wp_faults_per_s", "batch_adds_per_s", "batch_adds_per_s_wall", "explicit_drains_per_s",
         "explicit_drains_per_s_wall", "drain_all_per_s", "drain_all_per_s_wall", "wp_gap_s", "adds_between",
         "p_same_cpu", "p_other_ref", "p_large_folio", "p_large_add", "p_large_add_wall", "p_cold_fault",
         "remote_cpus", "cpus", "p_exclusive")
QUANTITY_TITLES = {
    "copy_share": "WP faults that copy (model pages)",
    "batch_held_copy_share": "WP faults that copy because of the batch",
    "in_fault_drain_share": "WP faults that drain in the fault",
    "shootdown_ipis_per_wp_fault": "shootdown IPIs per WP fault (model pages)",
}


def _num(x, fmt="{:.4g}") -> str:
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return "-"
    return fmt.format(x)


def derived_frame(trace: Trace, derived: dict | None = None) -> pd.DataFrame:
    """Each derived parameter with its interval, beside the registry's default and unit."""
    derived = derived or derive(trace)
    rows = []
    for name in SHOWN:
        d = derived.get(name)
        if d is None:
            continue
        spec = registry.PARAMS.get(name.removesuffix("_wall"))
        rows.append({"parameter": name, "derived": _num(d.get("value")),
                     "95% interval": (f"{_num(d.get('low'))} .. {_num(d.get('high'))}"
                                      if d.get("low") is not None and d.get("low") != d.get("high") else ""),
                     "median": _num(d.get("median")) if "median" in d else "",
                     "registry default": _num(spec.default) if spec is not None and hasattr(spec, "unit") else "",
                     "unit": getattr(spec, "unit", "") if spec is not None else "",
                     "note": d.get("note", "")})
    return pd.DataFrame(rows)


def counts_frame(trace: Trace) -> pd.DataFrame:
    rows = []
    for key, label in COUNT_LABELS:
        v = trace.counts.get(key)
        if v:
            rows.append({"counted": label.strip(), "count": int(v["count"]), "per s": _num(v["per_s"]),
                         "share of WP faults": _num(v["share_of_wp_faults"], "{:.3%}")})
    return pd.DataFrame(rows)


def comparison_frame(pred: dict) -> pd.DataFrame:
    rows = []
    for view, items in (("gap as adds", pred["comparison"]), ("gap as time", pred.get("comparison_gap_as_time", [])),
                        ("gap as adds, position measured", pred.get("comparison_position_measured", []))):
        for c in items:
            p, k = c["predicted"], c["counted"]
            rows.append({"quantity": QUANTITY_TITLES.get(c["quantity"], c["quantity"]), "model's gap": view,
                         "predicted": _num(p["value"]), "predicted 95%": f"{_num(p['low'])} .. {_num(p['high'])}",
                         "counted": _num(k["value"]), "counted 95%": f"{_num(k['low'])} .. {_num(k['high'])}",
                         "counted events": int(k.get("count", 0)),
                         "error": _num(c["relative_error"], "{:+.0%}"), "agrees": "yes" if c["agrees"] else "no"})
    return pd.DataFrame(rows)


def policies_frame(pred: dict) -> pd.DataFrame:
    rows = []
    for p in pred["policies"]:
        rows.append({"policy": p["policy"] + (" (kernel)" if p["kernel"] else "") + ("" if p["candidate"] else " (floor)"),
                     "ns per WP fault": round(p["expected_ns"]),
                     "95%": f"{p['expected_ns_low']:.0f} .. {p['expected_ns_high']:.0f}",
                     "CPU us per s": round(p["cpu_us_per_s"]),
                     "P(copy)": _num(p["p_copy"]), "P(copy, batch)": _num(p["p_unnecessary_copy"]),
                     "P(drain)": _num(p["p_local_drain"] + p["p_remote_drain"] + p["p_drain_all"]),
                     "P(cheapest)": _num(p["p_cheapest"], "{:.2f}") if p["p_cheapest"] is not None else "-"})
    return pd.DataFrame(rows)


def comparison_data(pred: dict) -> pd.DataFrame:
    rows = []
    for c in pred["comparison"]:
        title = QUANTITY_TITLES.get(c["quantity"], c["quantity"])
        for who, d in (("predicted", c["predicted"]), ("counted", c["counted"])):
            rows.append({"quantity": title, "source": who, "value": d["value"], "low": d["low"], "high": d["high"]})
    return pd.DataFrame(rows)


def comparison_chart(pred: dict):
    """Predicted beside counted, one row per quantity, each on its own axis (with intervals)."""
    data = comparison_data(pred)
    base = alt.Chart(data).encode(
        y=alt.Y("source:N", title=None),
        color=alt.Color("source:N", scale=alt.Scale(domain=["counted", "predicted"], range=["#4c78a8", "#e45756"]),
                        legend=alt.Legend(title=None, orient="top")))
    rules = base.mark_rule(strokeWidth=2).encode(x=alt.X("low:Q", title="share (per WP fault)"), x2="high:Q")
    points = base.mark_point(filled=True, size=70).encode(
        x="value:Q", tooltip=["quantity", "source", alt.Tooltip("value:Q", format=".4g"),
                              alt.Tooltip("low:Q", format=".4g"), alt.Tooltip("high:Q", format=".4g")])
    return (rules + points).properties(width=520, height=50).facet(
        row=alt.Row("quantity:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left", labelLimit=320)),
    ).resolve_scale(x="independent").properties(title="predicted (model over the measured faults) and counted")


def _table(df: pd.DataFrame, caption: str) -> str:
    return (f"<div class='table'><table class='trace'><caption>{html.escape(caption)}</caption>"
            + df.to_html(index=False, border=0, escape=True).split("<table", 1)[1].split(">", 1)[1].rsplit("</table>", 1)[0]
            + "</table></div>")


def report_section(directory, params=None, index: int = 0) -> tuple[list[str], dict | None]:
    """The report's 'Your workload' section for one trace dataset: HTML pieces and the chart spec
    (its div id is ``trace-<index>``)."""
    head = [f"<h2>Your workload: {html.escape(str(directory))}</h2>"]
    try:
        trace = dataset.load(directory)
        derived = derive(trace)
        pred = predict.predict(trace, params=params, warn=False)
    except UserError as exc:
        return head + [f"<p class='note'>Skipped: {html.escape(str(exc))}.</p>"], None
    r = trace.meta["recording"]
    what = " ".join(r["command"]) if r.get("command") else (r.get("attached") or "?")
    h = pred["headline"]
    bp = h["batch_held_copies_predicted"]
    pieces = head + [
        f"<p class='note'>Traced: <code>{html.escape(what)}</code>, {r['duration_s']:.1f} s on "
        f"{html.escape(str(trace.provenance.get('cpu_model')))} (family {trace.provenance.get('cpu_family')}, model "
        f"{trace.provenance.get('cpu_model_number')}), Linux {html.escape(str(trace.provenance.get('kernel_release')))}; "
        + ("no events lost." if r["complete"] else "<b>events were lost: the counts are lower bounds</b>.")
        + f" Predicted with {html.escape(pred['param_set_chosen'])}"
        + ("" if pred["param_set_same_cpu"] else " <b>(not this CPU's set: its costs are another CPU's)</b>")
        + f", kernel policy {html.escape(pred['policy'])}.</p>",
        "<ul class='verdict'>"
        f"<li>The batch caused {h['batch_held_copies_counted']} copies (model: {bp['count']:.1f}, "
        f"95% {bp['low'] * pred['wp_faults']:.1f} .. {bp['high'] * pred['wp_faults']:.1f}); "
        f"{h['in_fault_drains_counted']} WP faults drained in the fault (model: "
        f"{h['in_fault_drains_predicted']['count']:.1f}).</li>"
        f"<li>What the batch costs this program under {html.escape(pred['policy'])}: "
        f"{h['batch_cost_ns_per_wp_fault']:.1f} ns per WP fault on a model page, {h['batch_cost_us']:.0f} us over "
        f"the trace ({h['drain_cost_us']:.0f} us of it in-fault drains).</li>"
        + (f"<li>Of the {pred['drains_in_gap']['faults']} faults whose page the adds alone would have left in its "
           f"batch, {pred['drains_in_gap']['measured']['value']:.1%} saw the batch moved by a drain or a large add "
           f"in the gap; the model's Poisson drains give {pred['drains_in_gap']['model']:.1%} at the rates per second "
           f"of waiting ({pred['drains_in_gap'].get('model_wall_rates', float('nan')):.1%} at the wall-time "
           f"rates).</li>"
           if pred.get("drains_in_gap") else "") + "</ul>",
        _table(counts_frame(trace), "What the kernel did (counted)"),
        _table(derived_frame(trace, derived), "Derived workload parameters, beside the registry's defaults"),
        _table(comparison_frame(pred), "Predicted beside counted (agrees: within 20% or intervals overlap)"),
        f"<div id='trace-{index}' class='chart'></div>",
        _table(policies_frame(pred), "Every declared policy for this workload (machine costs drawn from the set's "
                                     "intervals; P(cheapest) among the candidates)"),
    ]
    return pieces, comparison_chart(pred).to_dict()
