"""The standalone report: one HTML file that needs no kernel, server or network.

It holds the verdict in words and tables (which policy is cheapest where, the break-even values,
where each parameter came from) and the charts of :mod:`costmodel.charts`. The cost and
decision-map charts compute the model in the browser (:mod:`costmodel.live`) from sliders bound
to Vega-Lite parameters, so a reader can still explore; the residency and calibration charts
are drawn from data computed here. Vega, Vega-Lite and vega-embed are inlined from the
``vl-convert-python`` package; nothing is fetched when the file is opened.

:func:`write_report` is the entry point (``costmodel report`` and ``make demo`` call it);
:func:`build_report` returns the pieces for tests and notebooks.
"""

from __future__ import annotations

import html
import importlib.util
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from . import __version__, charts, live, registry, uncertainty
from .atomic import refuse_overwrite, write_atomic
from .breakeven import breakeven
from .errors import UserError
from .evaluate import cheapest_candidate, evaluate_point
from .model import CANDIDATES, POLICIES, model_hash

#: Vega-Lite version the bundle and the PNG/SVG export use (altair's; one constant, in charts)
VL_VERSION = charts.VL_VERSION
#: cells per side of the decision map (browser-computed in the report; drawn static for PNG)
REPORT_MAP_N = 60
PNG_MAP_N = 120
#: draws behind the verdict's probability, the bands and the probability map (seed 0; shown with them)
VERDICT_DRAWS = 10_000
BAND_DRAWS = 1000
MAP_DRAWS = 300
#: parameters whose flip values the report looks up (the first of the sensitivity ranking)
FLIPS_FOR = 4

#: break-even questions the verdict answers: (policy, against, parameter)
BREAKEVEN_QUESTIONS: tuple[tuple[str, str, str], ...] = (
    ("drain_remote", "drain_local", "remote_cpus"),
    ("drain_remote", "drain_local", "remote_drain_ns"),
    ("drain_local", "copy_if_referenced", "remote_cpus"),
    ("drain_local", "copy_if_referenced", "wp_gap_s"),
    ("drain_all", "drain_local", "remote_cpus"),
    ("drain_all", "drain_remote", "drain_all_base_ns"),
)


@dataclass
class Report:
    html: str
    #: name -> static Vega-Lite spec (for --png) of each chart
    static_specs: dict[str, dict] = field(default_factory=dict)
    #: the live spec the page embeds, and the names of its slider inputs
    live_spec: dict = field(default_factory=dict)
    sliders: list[str] = field(default_factory=list)
    verdict: list[str] = field(default_factory=list)


@lru_cache(maxsize=1)
def vega_bundle() -> str:
    """vega, vega-lite and vega-embed as one script, from the installed vl-convert-python."""
    try:
        import vl_convert as vlc
    except ImportError:  # pragma: no cover - a base install without the notebooks extra
        raise UserError("the report needs vl-convert-python (pip install 'costmodel[notebooks]')") from None
    return vlc.javascript_bundle(vl_version=VL_VERSION)


# ---- the verdict ------------------------------------------------------------------------------


def _fmt(x: float, unit: str = "") -> str:
    if isinstance(x, str):
        return x
    if x == 0:
        s = "0"
    elif abs(x) >= 1e7 or abs(x) < 1e-3:
        s = f"{x:.3g}"
    elif float(x).is_integer():
        s = f"{int(x):,}"
    elif abs(x) >= 1e3:
        s = f"{x:,.0f}"
    else:
        s = f"{x:,.4g}"
    return f"{s} {unit}".strip()


def breakeven_rows(values: Mapping[str, object]) -> list[dict]:
    """The answers to :data:`BREAKEVEN_QUESTIONS` at ``values``; remote_cpus is asked over
    1..256 with cpus raised to 257 where the set has fewer (the charts' convention)."""
    rows = []
    for a, b, param in BREAKEVEN_QUESTIONS:
        point = dict(values)
        lo = hi = None
        note = ""
        if param == "remote_cpus":
            lo, hi = charts.CPU_RANGE
            point["cpus"] = registry.raise_cpus(dict(values, remote_cpus=hi))["cpus"]
            if point["cpus"] != values["cpus"]:
                note = f"cpus = {point['cpus']} (raised from {values['cpus']})"
        try:
            be = breakeven(point, a, b, param, low=lo, high=hi)
        except UserError as exc:
            rows.append({"policy": a, "against": b, "parameter": param, "break_even": "-", "verdict": str(exc),
                         "note": note})
            continue
        unit = registry.NUMERIC[param].unit
        roots = ", ".join(_fmt(r, unit) for r in be.roots) or "none"
        parts = []
        for lo_, hi_, who in be.regions:
            parts.append(f"{who} cheaper for {_fmt(lo_)} .. {_fmt(hi_)}" if who != "equal"
                         else f"equal for {_fmt(lo_)} .. {_fmt(hi_)}")
        rows.append({"policy": a, "against": b, "parameter": param, "break_even": roots,
                     "verdict": "; ".join(parts), "note": note or be.method})
    return rows


def kernel_today(preset: str | None) -> registry.KernelPreset:
    """The kernel the verdict is compared with: the preset given, else the newest kernel preset."""
    if preset:
        return registry.preset(preset)
    return max(registry.KERNEL_PRESETS.values(), key=lambda k: k.since)


def _pct(p: float) -> str:
    """A probability in words-friendly percent: '100%' only when it is exactly 1."""
    if p >= 1.0:
        return "100%"
    if p <= 0.0:
        return "0%"
    return f"{min(100 * p, 99.9):.1f}%" if p > 0.001 else f"{100 * p:.2g}%"


def _origin_words(r, limit: int = 160) -> str:
    """'assumed: 4,000 ns, interval 1,000-100,000 ns; <the start of its basis>' (the whole basis
    is in the table below the charts)."""
    what = {"measured": "measured", "published": "published", "varied": "a range given"}.get(r["origin"], "assumed")
    basis = str(r["basis"])
    if len(basis) > limit:
        basis = basis[:limit].rsplit(" ", 1)[0] + " &hellip;"
    return (f"{what}: {_fmt(r['value'], r['unit'])}, interval {_fmt(r['low'])}&ndash;{_fmt(r['high'], r['unit'])}; "
            f"{html.escape(basis).replace('&amp;hellip;', '&hellip;')}")


def uncertainty_sentences(sens: uncertainty.Sensitivity, preset: str | None) -> list[str]:
    """The verdict's uncertainty in words: how likely the cheapest policy is to be the cheapest,
    how it compares with the kernel's own policy, and the parameters that would flip it."""
    prop = sens.propagation
    best = prop.cheapest
    e = prop.outputs[best]["expected_ns"]
    pct = round(100 * prop.confidence)
    out = [f"How sure: over the parameters' intervals ({prop.draws:,} draws, seed {prop.seed}; "
           f"{len(prop.measured)} measured, {len(prop.assumed)} assumed or published without measurement here), "
           f"<b>{best}</b> is the cheapest candidate in <b>{_pct(prop.p_cheapest[best])}</b> of the draws; its cost "
           f"per WP fault lies in {_fmt(e['low'], 'ns')}&ndash;{_fmt(e['high'], 'ns')} ({pct}% interval)."
           + ("" if max(prop.p_cheapest.values()) == prop.p_cheapest[best] else
              f" More often cheapest is {max(prop.p_cheapest, key=prop.p_cheapest.get)} "
              f"({_pct(max(prop.p_cheapest.values()))}).")]
    kp = kernel_today(preset)
    mine = kp.policy
    if mine in prop.samples and mine != best:
        med, lo, hi = prop.ratio_interval(best, mine)
        k = prop.outputs[mine]["expected_ns"]
        out.append(f"Against the kernel's own policy ({mine}, {kp.name}{'' if preset else ', the newest kernel preset'}: "
                   f"{_fmt(k['value'], 'ns')}, interval {_fmt(k['low'])}&ndash;{_fmt(k['high'], 'ns')}): {best} is "
                   f"cheaper in {_pct(prop.p_cheaper(best, mine))} of the draws, at {med:.2g} times its cost "
                   f"({lo:.2g}&ndash;{hi:.2g}).")
    elif mine == best:
        out.append(f"That is the kernel's own policy ({kp.name}{'' if preset else ', the newest kernel preset'}).")
    table = sens.table
    # a parameter worth naming: knowing it would move P(verdict) by a tenth of a point, or alone it can flip
    movers = table[(table["gain"] >= 1e-3) | (table["flip_in_interval"].astype(bool))].head(2)
    if movers.empty:
        out.append("No single parameter's interval can flip it: with every other parameter at its value, none "
                   "reaches a value at which another candidate becomes the cheapest.")
    for i, r in enumerate(movers.to_dict("records")):
        flips = []
        if r["flip_below"] is not None:
            flips.append(f"below {_fmt(r['flip_below'], r['unit'])} {r['flips_to_below']} becomes the cheapest")
        if r["flip_above"] is not None:
            flips.append(f"above {_fmt(r['flip_above'], r['unit'])} {r['flips_to_above']} becomes the cheapest")
        lead = "It hangs most on" if i == 0 else "Next is"
        out.append(f"{lead} <b>{r['parameter']}</b> ({_origin_words(r)}): "
                   + ("; ".join(flips) if flips else "alone it flips nothing within its bounds")
                   + f"; knowing it exactly would raise P(verdict) by {100 * r['gain']:.1f} points on average"
                   + (f" (P that it alone lies beyond a flip: {_pct(r['p_flip_alone'])})."
                      if r["p_flip_alone"] == r["p_flip_alone"] and r["p_flip_alone"] is not None else "."))
    out.append("These numbers describe the shipped point (the parameter set as written); the sliders below move "
               "the charts, not this paragraph.")
    return out


def verdict_sentences(values: Mapping[str, object], point: dict, runs: list[dict], shares: pd.DataFrame,
                      dm: charts.DecisionMap, preset_policy: str | None) -> list[str]:
    best = cheapest_candidate(point)
    cands = {p: point[p]["expected_ns"] for p in CANDIDATES if p in point}
    ranked = sorted(cands, key=cands.get)
    out = [f"At this parameter point (remote_cpus = {values['remote_cpus']}, cpus = {values['cpus']}, "
           f"gap_model = {values['gap_model']}), the cheapest policy that tests the reference count is "
           f"<b>{best}</b> at {_fmt(cands[best], 'ns')} per WP fault; next is {ranked[1]} at "
           f"{_fmt(cands[ranked[1]], 'ns')} ({100 * (cands[ranked[1]] / cands[best] - 1):.1f}% dearer). "
           f"The map-count floor (no unnecessary copy, the Linux &le; 5.8 rule) is "
           f"{_fmt(point['mapcount']['expected_ns'], 'ns')}."]
    if preset_policy and preset_policy in point:
        mine = point[preset_policy]["expected_ns"]
        out.append(f"The kernel preset's policy, {preset_policy}, costs {_fmt(mine, 'ns')}: "
                   + ("it is the cheapest here." if preset_policy == best else
                      f"{100 * (mine / cands[best] - 1):.1f}% more than {best}."))
    parts = [f"{r['policy']} for remote_cpus {r['from']}&ndash;{r['to']}" for r in runs]
    out.append("Against the CPUs running the mm (1&ndash;256, cpus raised to remote_cpus + 1 where needed), "
               "the cheapest is " + "; ".join(parts) + ".")
    if not shares.empty:
        top = shares.sort_values("share_pct", ascending=False)
        desc = ", ".join(f"{r.policy} {r.share_pct:.0f}%" for r in top.itertuples())
        out.append(f"Over the decision map ({dm.x} &times; {dm.y}), the cheapest policy by share of the map: {desc}.")
    if not dm.line.empty:
        along = dm.line[dm.line["along"] == "x"]
        if not along.empty:
            xs = along[dm.x]
            out.append(f"{dm.against[0]} and {dm.against[1]} cost the same at {dm.x} &asymp; "
                       f"{_fmt(float(xs.min()))}" + (f"&ndash;{_fmt(float(xs.max()))}" if xs.max() - xs.min() > 1e-6 * abs(xs.max()) else "")
                       + " (the dashed line on the map).")
    else:
        out.append(f"{dm.against[0]} and {dm.against[1]} do not change order anywhere on the map.")
    return out


# ---- HTML pieces -------------------------------------------------------------------------------


def _table(rows: Sequence[Mapping[str, object]], columns: Sequence[str] | None = None, cls: str = "") -> str:
    if not rows:
        return "<p><i>none</i></p>"
    cols = list(columns or rows[0].keys())
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = []
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, "")
            text = _fmt(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else html.escape(str(v))
            num = isinstance(v, (int, float)) and not isinstance(v, bool)
            cells.append(f"<td class='num'>{text}</td>" if num else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table class='{cls}'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _policy_table(point: dict, best: str, preset_policy: str | None) -> str:
    rows = []
    for p, out in point.items():
        top = max(((k, v) for k, v in out["breakdown_ns"].items() if k != "fault_entry"), key=lambda kv: kv[1])
        mark = (" (cheapest)" if p == best else "") + (" (preset)" if p == preset_policy else "")
        rows.append({"policy": p + mark, "expected_ns": round(out["expected_ns"], 1),
                     "p_copy": round(out["p_copy"], 4), "p_unnecessary_copy": round(out["p_unnecessary_copy"], 4),
                     "p_local_drain": round(out["p_local_drain"], 4), "p_remote_drain": round(out["p_remote_drain"], 4),
                     "p_drain_all": round(out["p_drain_all"], 4), "cpu_us_per_s": round(out["cpu_us_per_s"], 0),
                     "largest part": f"{top[0]} {top[1]:,.0f} ns", "kernels": POLICIES[p].kernels})
    return _table(rows)


def _params_table(values: Mapping[str, object], paramset=None) -> str:
    rows = []
    for name, e in registry.PARAMS.items():
        entry = paramset.parameters.get(name) if paramset is not None else None
        interval = ""
        if entry is not None and getattr(entry, "ci_low", None) is not None:
            interval = f"[{_fmt(entry.ci_low)}, {_fmt(entry.ci_high)}]"
        source = entry.source if entry is not None else ("registry default" if values[name] == e.default else "set")
        note = entry.note if entry is not None else e.source
        rows.append({"parameter": name, "value": values[name] if not isinstance(values[name], str) else values[name],
                     "unit": e.unit, "interval": interval, "source": source, "note": note})
    return _table(rows, cls="params")


def _provenance(paramset) -> str:
    if paramset is None:
        return ("<p>No parameter file was given: every value is the registry default or was set on the command "
                "line. Machine costs are assumptions with the sources listed below, not measurements of this "
                "machine.</p>")
    out = [f"<p>Parameter set <b>{html.escape(paramset.name)}</b>: {html.escape(paramset.description)}. "
           f"Model hash of the file: <code>{html.escape(paramset.model_hash)}</code>"
           + (" (matches this model)." if paramset.model_hash == model_hash() else
              f" (this model is <code>{model_hash()}</code>: the set was made for other formulas).") + "</p>"]
    counts: dict[str, int] = {}
    for e in paramset.parameters.values():
        counts[e.source] = counts.get(e.source, 0) + 1
    out.append("<p>Sources: " + ", ".join(f"{n} {html.escape(s)}" for s, n in sorted(counts.items())) + ".</p>")
    if paramset.provenance:
        rows = [{"fact": k, "value": v if isinstance(v, (str, int, float)) else json.dumps(v)}
                for k, v in paramset.provenance.items()]
        out.append(_table(rows))
    if paramset.fit:
        rows = [{"fit": f.get("name", ""), "parameters": ", ".join(f.get("parameters", [])),
                 "points": f.get("n_points", ""), "method": f.get("method", ""), "note": f.get("note", "")}
                for f in paramset.fit]
        out.append(_table(rows))
    return "\n".join(out)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;margin:1.5em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}th,td{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f4f4f4}
table.params td:nth-child(6){font-size:.85em;color:#555}
.verdict li{margin:.3em 0}.note{color:#555;font-size:.9em}
.vega-bindings{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:2px 18px;font-size:.85em;margin-top:.8em}
.vega-bind{display:flex;align-items:center}.vega-bind-name{min-width:15em;display:inline-block}
.vega-bind input[type=range]{flex:1}
"""


def _script_json(obj) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(obj, allow_nan=False).replace("</", "<\\/").replace("<!--", "<\\!--")


# ---- assembling -------------------------------------------------------------------------------


def live_spec(values: Mapping[str, object], map_n: int = REPORT_MAP_N, x: str | None = None,
              y: str | None = None) -> tuple[dict, list[str], set[str]]:
    """The interactive part: cost chart, breakdown and decision map computed in the browser,
    with one shared set of sliders. Returns the spec, the slider inputs and the fixed parameters."""
    import altair as alt

    dx, dy = charts.default_map_axes(values)
    x, y = x or dx, y or dy
    cost = live.cost_source(values)
    msrc, x_log, y_log, (x_dom, y_dom) = live.map_source(values, x, y, n=map_n)
    cost_chart = charts.cost_vs_cpus_chart(cost.charts[0])
    breakdown = charts.cost_breakdown_chart(cost.charts[0])
    dmap = charts.decision_map_chart(msrc.charts[0], msrc.charts[1:], x=x, y=y, x_log=x_log, y_log=y_log,
                                     x_domain=x_dom, y_domain=y_dom)
    signals = sorted(cost.signals | msrc.signals)
    fixed = cost.fixed | msrc.fixed
    panel = live.values_panel(signals)
    spec = alt.vconcat(cost_chart, breakdown, dmap, panel).resolve_scale(color="independent", opacity="independent") \
        .to_dict()
    params = live.slider_params(signals, values, fixed=fixed)
    spec["params"] = params + spec.get("params", [])
    return spec, live.slider_inputs(params), fixed


def static_specs(values: Mapping[str, object], cost_df: pd.DataFrame, dm: charts.DecisionMap,
                 res_df: pd.DataFrame, calib=None, uncertain: Mapping[str, object] | None = None) -> dict[str, dict]:
    """Each chart as a static Vega-Lite spec; ``uncertain``: the charts of the verdict's
    uncertainty, already built (``cost_bands``, ``probability_map``, ``tornado``)."""
    import altair as alt

    with alt.data_transformers.disable_max_rows():
        specs = {
            "cost_vs_cpus": charts.cost_vs_cpus_chart(cost_df).to_dict(),
            "cost_breakdown": charts.cost_breakdown_chart(cost_df).to_dict(),
            "decision_map": charts.decision_map_figure(dm).to_dict(),
            "residency": charts.residency_chart(res_df).to_dict(),
        }
        for name, chart in (uncertain or {}).items():
            specs[name] = chart.to_dict()
        if calib is not None:
            specs["calibration"] = calib.to_dict()
    return specs


def uncertainty_charts(values: Mapping[str, object], sens: uncertainty.Sensitivity, params, paramset,
                       band_draws: int = BAND_DRAWS, map_draws: int = MAP_DRAWS, map_n: int = PNG_MAP_N) -> dict:
    """The cost with bands, the decision map shaded by P(cheapest) and the tornado, at the point."""
    measured, measured_note = uncertainty.measured_targets(paramset)
    bands = charts.cost_vs_cpus_data(values, bands=params, draws=band_draws, seed=0)
    pmap = charts.decision_map_data(values, *charts.default_map_axes(values), n=map_n, uncertain=params,
                                    draws=map_draws, seed=0)
    return {
        "cost_bands": charts.cost_vs_cpus_chart(bands, title="Cost per WP fault with its uncertainty",
                                                measured_up_to=measured, measured_note=measured_note,
                                                draws=band_draws, seed=0),
        "probability_map": charts.decision_map_figure(pmap, shade="probability", measured_up_to=measured),
        "tornado": charts.tornado_chart(charts.tornado_data(sens), sens.cheapest),
    }, measured_note


def build_report(values: Mapping[str, object], *, paramset=None, preset: str | None = None,
                 title: str | None = None, simulate_points: int = 4, simulate_faults: int = 100_000,
                 map_n: int = REPORT_MAP_N, png_map_n: int = PNG_MAP_N, verdict_draws: int = VERDICT_DRAWS) -> Report:
    """Every piece of the report for the checked parameter point ``values``."""
    missing = [m for m in ("altair", "vl_convert") if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"the report needs altair and vl-convert-python ({missing[0]} is missing): "
                        "pip install 'costmodel[notebooks]'")
    values = registry.resolve(values)
    preset_policy = registry.preset(preset).policy if preset else None
    point = evaluate_point(values)
    cost_df = charts.cost_vs_cpus_data(values)
    runs = charts.cheapest_along(cost_df)
    dm = charts.decision_map_data(values, *charts.default_map_axes(values), n=png_map_n)
    shares = charts.map_shares(dm)
    res_df = charts.residency_data(values, n=50)
    sim_note = ""
    if simulate_points:
        try:
            from .validate import residency_simulated

            sim = residency_simulated(values, points=simulate_points, faults=simulate_faults)
            res_df = pd.concat([res_df, sim], ignore_index=True)
            sim_note = (f"Diamonds: event simulation ({simulate_faults:,} WP faults per point, "
                        "costmodel.simulate) with its confidence interval.")
        except ImportError:
            sim_note = "No simulation points: costmodel.simulate is not available in this installation."
    calib_chart = None
    if paramset is not None and paramset.fit:
        cal = charts.calibration_data(paramset)
        if not cal.empty:
            calib_chart = charts.calibration_chart(cal)
    spec, sliders, fixed = live_spec(values, map_n=map_n)
    params = uncertainty.uncertain_parameters(values, paramset)
    sens = uncertainty.sensitivity(values, params, draws=verdict_draws, seed=0, flips_for=FLIPS_FOR)
    unc_charts, measured_note = uncertainty_charts(values, sens, params, paramset, map_n=png_map_n)
    statics = static_specs(values, cost_df, dm, res_df, calib_chart, unc_charts)
    best = cheapest_candidate(point)
    verdict = verdict_sentences(values, point, runs, shares, dm, preset_policy)
    verdict = verdict[:1] + uncertainty_sentences(sens, preset) + verdict[1:]
    be = breakeven_rows(values)
    doc = _html(values, title=title, paramset=paramset, preset=preset, point=point, best=best,
                preset_policy=preset_policy, verdict=verdict, runs=runs, shares=shares, be=be, spec=spec,
                fixed=fixed, statics=statics, sim_note=sim_note, sens=sens, measured_note=measured_note)
    return Report(doc, statics, spec, sliders, verdict)


def _sensitivity_rows(sens: uncertainty.Sensitivity) -> list[dict]:
    rows = []
    for r in sens.table.to_dict("records"):
        flips = []
        if r["flip_below"] is not None:
            flips.append(f"{r['flips_to_below']} below {_fmt(r['flip_below'])}")
        if r["flip_above"] is not None:
            flips.append(f"{r['flips_to_above']} above {_fmt(r['flip_above'])}")
        looked = r["p_flip_alone"] == r["p_flip_alone"]
        rows.append({"parameter": r["parameter"], "value": r["value"], "unit": r["unit"],
                     "interval": f"{_fmt(r['low'])} .. {_fmt(r['high'])}", "origin": r["origin"],
                     "distribution": r["distribution"], "elasticity": round(r["elasticity"], 4),
                     "flips (this parameter alone)": "; ".join(flips) or ("none within its bounds" if looked
                                                                         else "not looked up"),
                     "gain in P(verdict) if known": round(r["gain"], 4), "basis": r["basis"]})
    return rows


def _html(values, *, title, paramset, preset, point, best, preset_policy, verdict, runs, shares, be, spec, fixed,
          statics, sim_note, sens=None, measured_note="") -> str:
    name = paramset.name if paramset is not None else "registry defaults"
    title = title or f"Write-protect faults and LRU batch drains: {name}"
    cats = ", ".join(f"{n} = {values[n]}" for n in registry.CATEGORICAL)
    fixed_note = ""
    if fixed:
        fixed_note = (f"<p class='note'>With gap_model = {values['gap_model']} the browser cannot compute the "
                      f"residency, so it is computed here and {', '.join(sorted(fixed))} stay fixed in the "
                      f"interactive charts (no slider).</p>")
    embeds = {"explore": spec, "residency": statics["residency"]}
    for name in ("cost_bands", "probability_map", "tornado"):
        if name in statics:
            embeds[name] = statics[name]
    if "calibration" in statics:
        embeds["calibration"] = statics["calibration"]
    shares_rows = shares.to_dict("records") if not shares.empty else []
    runs_rows = [{"remote_cpus from": r["from"], "to": r["to"], "cheapest": r["policy"],
                  "smallest margin over runner-up (%)": round(r["margin_pct_min"], 2)} for r in runs]
    parts = [
        "<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<style>{_CSS}</style>",
        f"<script>{vega_bundle()}</script>",
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='note'>costmodel {__version__}, model hash <code>{model_hash()}</code>. {html.escape(cats)}."
        + (f" Kernel preset: {html.escape(preset)} (policy {html.escape(preset_policy)})." if preset else "")
        + " This file is self-contained: it needs no kernel, server or network.</p>",
        "<h2>Verdict</h2>", "<ul class='verdict'>" + "".join(f"<li>{s}</li>" for s in verdict) + "</ul>",
        "<h3>Every policy at this point</h3>", _policy_table(point, best, preset_policy),
        "<h3>Cheapest policy along remote_cpus</h3>", _table(runs_rows),
        "<h3>Cheapest policy over the decision map</h3>", _table(shares_rows),
        "<h3>Break-even values</h3>",
        "<p class='note'>Where two policies cost the same as one parameter moves and every other stays at this "
        "point (costmodel breakeven).</p>", _table(be),
        *(_uncertainty_section(sens, measured_note) if sens is not None else []),
        "<h2>Explore</h2>",
        "<p class='note'>The sliders below the charts set the model's parameters; the charts recompute in the "
        "browser from the model's own formulas. Log sliders show log10 of the value; where a parameter's lower "
        "bound is 0, the leftmost step is 0. Hover the lines for the breakdown.</p>",
        "<p class='note'>The sliders move independently, the parameters do not: the formulas hold batch_position "
        "at batch_size &minus; 1 at most, and raise cpus to remote_cpus + 1 where the sliders (or a chart's "
        "remote_cpus axis) ask for more CPUs than the set has, as the static charts do. The list of current "
        "values shows what the formulas use.</p>", fixed_note,
        "<div id='explore' class='chart'></div>",
        "<h2>Residency</h2>",
        f"<p class='note'>The probability that the page is still in its CPU's add batch at the WP fault, for each "
        f"gap model (other parameters as above). Lines: closed form. {html.escape(sim_note)}</p>",
        "<div id='residency' class='chart'></div>",
        "<h2>Calibration and provenance</h2>", _provenance(paramset),
    ]
    if "calibration" in embeds:
        parts.append("<div id='calibration' class='chart'></div>")
    parts += ["<h3>Parameters</h3>", _params_table(values, paramset)]
    parts.append("<script>\nconst costmodelSpecs = " + _script_json(embeds) + ";\n"
                 "window.costmodelViews = {};\n"
                 "window.costmodelReady = Promise.all(Object.entries(costmodelSpecs).map(([id, spec]) =>\n"
                 "  vegaEmbed('#' + id, spec, {actions: false, renderer: 'svg'}).then(r => {\n"
                 "    window.costmodelViews[id] = r.view; })));\n"
                 "</script>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _uncertainty_section(sens: uncertainty.Sensitivity, measured_note: str) -> list[str]:
    prop = sens.propagation
    return [
        "<h2>How sure is the verdict?</h2>",
        f"<p class='note'>At the shipped point only: these charts are computed here, not in the browser, and do not "
        f"follow the sliders. Every parameter with an interval is drawn ({prop.draws:,} draws for the verdict, seed "
        f"{prop.seed}): a measured interval as a 95% interval around its value, an assumption over its stated "
        f"range (see costmodel.uncertainty for the distributions); workload parameters and the categorical choices "
        f"({html.escape(', '.join(f'{k} = {v}' for k, v in prop.fixed_categoricals().items()))}) stay fixed. "
        f"{html.escape(measured_note)}.</p>",
        "<div id='cost_bands' class='chart'></div>",
        "<div id='probability_map' class='chart'></div>",
        "<h3>What the verdict rests on</h3>",
        "<p class='note'>elasticity: d ln(expected_ns of the cheapest policy) / d ln(parameter), from the sympy "
        "model; flips: the value at which that parameter alone changes the cheapest candidate (costmodel "
        "breakeven); gain: how much knowing it exactly would raise the probability of the verdict, on average: "
        "the ranking of what to measure next.</p>",
        "<div id='tornado' class='chart'></div>",
        _table(_sensitivity_rows(sens), cls="params"),
    ]


# ---- writing ----------------------------------------------------------------------------------


def write_report(values: Mapping[str, object], out_path: str | Path, *, paramset=None, preset: str | None = None,
                 png_dir: str | Path | None = None, force: bool = False, title: str | None = None,
                 simulate_points: int = 4) -> Path:
    """Write the standalone HTML report for ``values`` to ``out_path`` (atomically; refusing to
    overwrite without ``force``), and with ``png_dir`` each chart as PNG and SVG there."""
    out_path = Path(out_path)
    refuse_overwrite(out_path, force)
    if png_dir is not None:
        png_dir = Path(png_dir)
        if png_dir.exists() and not png_dir.is_dir():
            raise UserError(f"--png {png_dir}: exists and is not a directory")
    report = build_report(values, paramset=paramset, preset=preset, title=title, simulate_points=simulate_points)
    if png_dir is not None:
        for name in report.static_specs:
            for ext in ("png", "svg"):
                refuse_overwrite(png_dir / f"{name}.{ext}", force)
        write_images(report.static_specs, png_dir, force=force)
    write_atomic(out_path, report.html, force=force)
    return out_path


def write_images(specs: Mapping[str, dict], directory: str | Path, force: bool = False) -> list[Path]:
    """Each spec as ``<name>.png`` (2x scale) and ``<name>.svg`` in ``directory``."""
    import vl_convert as vlc

    directory = Path(directory)
    out = []
    for name, spec in specs.items():
        out.append(write_atomic(directory / f"{name}.svg", vlc.vegalite_to_svg(spec, vl_version=VL_VERSION), force=force))
        out.append(write_atomic(directory / f"{name}.png", vlc.vegalite_to_png(spec, vl_version=VL_VERSION, scale=2),
                                force=force))
    return out
