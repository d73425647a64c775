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
import json
import math
import re
import string
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Callable, Mapping, Sequence

import altair as alt
import numpy as np
import pandas as pd
import vl_convert as vlc

from . import (__version__, axes, chartdata, charts, live, paramfile, prediction, proposals, registry, textfmt,
               uncertainty)
from .atomic import refuse_overwrite, write_atomic
from .breakeven import breakeven, breakeven_row
from .errors import UserError
from .evaluate import cheapest_candidate, cpu_overload, evaluate_point
from .model import CANDIDATES, POLICIES, model_hash
from .trace.section import report_section
from .validate import residency_simulated

#: Vega-Lite version the bundle and the PNG/SVG export use (altair's; one constant, in charts)
VL_VERSION = charts.VL_VERSION
#: cells per side of the decision map (browser-computed in the report; drawn static for PNG); while a
#: slider is dragged the browser draws it at live.DRAG_MAP_N a side
REPORT_MAP_N = 200
PNG_MAP_N = 120
#: what every table computed at the point says of itself
AT_POINT = "At the shipped point (the parameter set as written), not at the sliders' values"
#: draws behind the verdict's probability, the bands and the probability map (seed 0; shown with them)
VERDICT_DRAWS = 10_000
BAND_DRAWS = 1000
MAP_DRAWS = 300
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
    return vlc.javascript_bundle(vl_version=VL_VERSION)


# ---- the page template ------------------------------------------------------------------------

#: the page's skeleton, style and script, apart from the words: costmodel/templates/report/
TEMPLATE_DIR = resources.files("costmodel") / "templates" / "report"


@lru_cache(maxsize=None)
def template(name: str) -> str:
    """A file of the page template: ``page.html`` (the skeleton, ``${...}`` fields),
    ``report.css`` (the style) or ``page.js`` (the page script: it embeds the charts, shows each
    control's value in its unit, dims the controls that do not matter for the chosen models,
    shows the warnings of choices the browser cannot follow, and draws the map coarse while a
    slider moves)."""
    return (TEMPLATE_DIR / name).read_text(encoding="utf-8")


def page_html(*, title: str, body: str, specs: Mapping[str, dict], page: Mapping[str, object]) -> str:
    """The whole page: the template's skeleton around ``body`` (the report's sections, HTML), with
    the style, the inlined Vega bundle, the charts' specs by element id and the page script's data
    (``costmodelSpecs``, ``costmodelPage``)."""
    return string.Template(template("page.html")).substitute(
        title=html.escape(title), css=template("report.css"), vega=vega_bundle(), body=body,
        specs=_script_json(specs), page=_script_json(page), script=template("page.js"))


# ---- the verdict ------------------------------------------------------------------------------


def _fmt(x, unit: str = "") -> str:
    """Every number of the report, in one style (:func:`textfmt.format_value`): times in ns below
    10 us, then us, ms and s; whole numbers in full; no exponents."""
    return textfmt.format_value(x, unit)


_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[+-]?\d+)?(?![\w.])")


_EXPONENT = re.compile(r"(?<![\w.])(-?\d+(?:\.\d+)?e[+-]?\d+)(?: (ns|s)\b)?")


def _prose(text: str) -> str:
    """Words from a parameter file or a fit record with any number in exponent form (and its
    time unit) written in the report's one style."""
    return _EXPONENT.sub(lambda m: _fmt(float(m.group(1)), m.group(2) or ""), text)


def _refmt(text: str, unit: str) -> str:
    """``text`` (a break-even answer's words) with each plain number written as :func:`_fmt`
    writes a value in ``unit``; a unit that follows a number is dropped (the value carries it)."""
    if not text:
        return text
    if unit not in ("ns", "s"):  # the unit stays where the words put it; only the digits change
        return _NUMBER.sub(lambda m: _fmt(float(m.group(0))), text)
    text = re.sub(rf"(\d) {re.escape(unit)}(?![\w/])", r"\1", text)
    return _NUMBER.sub(lambda m: _fmt(float(m.group(0)), unit), text)


def breakeven_rows(values: Mapping[str, object]) -> list[dict]:
    """The answers to :data:`BREAKEVEN_QUESTIONS` at ``values``, each the row of
    :func:`costmodel.breakeven.breakeven_row` (the answer ``costmodel breakeven`` gives; for an
    integer parameter the integer where the order changes) with its numbers in the report's one
    style. remote_cpus is asked over 1..256 with cpus following remote_cpus + 1 where the set has
    fewer (the charts' convention, ``--raise-cpus``); ``command`` is the command line that gives
    the same answer, and ``_raw`` the row as breakeven_row wrote it."""
    rows = []
    for a, b, param in BREAKEVEN_QUESTIONS:
        lo = hi = None
        follow = param == "remote_cpus"
        if follow:
            lo, hi = axes.CPU_RANGE
        row = breakeven_row(dict(values), a, b, param, low=lo, high=hi, raise_cpus=follow)
        unit = registry.NUMERIC[param].unit
        note = row["note"].split(";")[0] if row["note"] else ""
        if follow and int(values["cpus"]) < hi + 1:
            note += (f"; cpus = {values['cpus']} up to remote_cpus = {int(values['cpus']) - 1}, then remote_cpus + 1 "
                     "(the charts' convention)")
        command = (f"costmodel breakeven --policy {a} --against {b} --solve-for {param}"
                   + (f" --low {lo} --high {hi}" if lo is not None else "") + (" --raise-cpus" if follow else ""))
        rows.append({"policy": a, "against": b, "parameter": param,
                     "break_even": _refmt(row["break_even"], unit),
                     "curves cross at": _refmt(row.get("crossing", ""), unit),
                     "verdict": _refmt(row["verdict"], unit), "note": note, "same answer from": command,
                     "_raw": row})
    return rows


def solved_breakeven(values: Mapping[str, object], dm: chartdata.DecisionMap):
    """The break-even of the map's two policies along its x axis at the point, solved (not read
    off the map's grid), over the map's x range, with cpus following remote_cpus as on the map;
    None where the question has no answer there."""
    lo, hi = float(dm.cells[f"{dm.x}_lo"].min()), float(dm.cells[f"{dm.x}_hi"].max())
    if registry.NUMERIC[dm.x].integer:
        lo, hi = math.ceil(lo), math.floor(hi)
    try:
        return breakeven(dict(values), dm.against[0], dm.against[1], dm.x, low=lo, high=hi,
                         raise_cpus=dm.x == "remote_cpus")
    except UserError:
        return None


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
                      dm: chartdata.DecisionMap, preset_policy: str | None) -> list[str]:
    best = cheapest_candidate(point)
    cands = {p: point[p]["expected_ns"] for p in CANDIDATES if p in point}
    ranked = sorted(cands, key=cands.get)
    out = [f"At this parameter point (remote_cpus = {values['remote_cpus']}, cpus = {values['cpus']}, "
           f"gap_model = {values['gap_model']}), the cheapest policy that tests the reference count is "
           f"<b>{best}</b> at {_fmt(cands[best], 'ns')} per WP fault; next is {ranked[1]} at "
           f"{_fmt(cands[ranked[1]], 'ns')} ({100 * (cands[ranked[1]] / cands[best] - 1):.1f}% dearer). "
           f"The map-count floor (no unnecessary copy, the Linux &le; 5.8 rule) is "
           f"{_fmt(point['mapcount']['expected_ns'], 'ns')}."]
    overload = cpu_overload(values, {p: out["cpu_us_per_s"] for p, out in point.items()})
    if overload:
        out.append("<b>Warning</b>: " + html.escape(overload.removeprefix("warning: ")) + ".")
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
        out.append(f"Over the decision map ({map_range_words(dm)}), the cheapest policy by share of the map: {desc}."
                   + _own_cpus_share(values, dm))
    be = solved_breakeven(values, dm)
    a, b = dm.against
    if be is not None and be.roots:
        cross = (be.crossings or be.roots)[0]
        after = next((who for lo_, _, who in be.regions if lo_ >= be.roots[0]), "")
        words = (f"{_fmt(cross)}" + (f" ({after} cheaper from {be.fmt(be.roots[0])} {be.unit} on)"
                                     if be.integer and after else ""))
        out.append(f"{a} and {b} cost the same at {dm.x} &asymp; {words} at this point, solved as "
                   f"<code>costmodel breakeven</code> does (the break-even table below); the dashed line on the "
                   f"map follows it across {dm.y}.")
    elif not dm.line.empty:
        out.append(f"{a} and {b} do not change order along {dm.x} at this point; the dashed line on the map "
                   f"shows where they do at other values of {dm.y}.")
    else:
        out.append(f"{a} and {b} do not change order anywhere on the map.")
    return out


def map_range_words(dm: chartdata.DecisionMap) -> str:
    """The map's axes and their ranges in words: '1&ndash;256 remote_cpus &times; wp_gap_s 100 ns&ndash;100 ms'."""
    parts = []
    for name in (dm.x, dm.y):
        unit = registry.NUMERIC[name].unit if name in registry.NUMERIC else ""
        lo, hi = float(dm.cells[name].min()), float(dm.cells[name].max())
        parts.append(f"{name} {_fmt(lo, '' if unit == 'CPUs' else unit)}&ndash;{_fmt(hi, unit)}")
    return " &times; ".join(parts)


def _own_cpus_share(values: Mapping[str, object], dm: chartdata.DecisionMap) -> str:
    """Where the map's x is remote_cpus and reaches past the set's own CPUs: the shares within
    them, since the rest of the map is another machine (cpus raised)."""
    if dm.x != "remote_cpus":
        return ""
    own = int(values["cpus"]) - 1
    cells = dm.cells
    if cells["remote_cpus"].max() <= own:
        return ""
    mine = cells[cells["remote_cpus"] <= own]
    if mine.empty:
        return ""
    shares = mine["cheapest"].value_counts(normalize=True)
    desc = ", ".join(f"{p} {100 * v:.0f}%" if v >= 0.005 else f"{p} under 1%" for p, v in shares.items())
    return (f" Past remote_cpus = {own} the map describes machines with more CPUs than this set's {values['cpus']} "
            f"(cpus raised to remote_cpus + 1); within its own CPUs (remote_cpus up to {own}): {desc}.")


# ---- HTML pieces -------------------------------------------------------------------------------


class Cell(str):
    """Text already formatted as a number (right-aligned in a table)."""


def _head(c: str) -> str:
    # long parameter-like headers may break after an underscore
    return html.escape(str(c)).replace("_", "_<wbr>")


def _table(rows: Sequence[Mapping[str, object]], columns: Sequence[str] | None = None, cls: str = "",
           units: Mapping[str, str] | None = None, caption: str | None = None) -> str:
    """An HTML table; numbers in the report's one style (``units``: column -> unit of its numbers),
    ``caption`` saying what the table describes."""
    cap = f"<caption>{caption}</caption>" if caption else ""
    if not rows:
        return f"<table class='{cls}'>{cap}<tbody><tr><td><i>none</i></td></tr></tbody></table>"
    cols = list(columns or [k for k in rows[0].keys() if not str(k).startswith("_")])
    units = units or {}
    head = "".join(f"<th>{_head(c)}</th>" for c in cols)
    body = []
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, "")
            if isinstance(v, Cell):
                cells.append(f"<td class='num'>{html.escape(v)}</td>")
            elif isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
                cells.append(f"<td class='num'>{html.escape(_fmt(v, units.get(c, '')))}</td>")
            elif isinstance(v, _Raw):
                cells.append(f"<td>{v}</td>")
            else:
                cells.append(f"<td>{html.escape(_prose(str(v)))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<div class='table'><table class='{cls}'>{cap}<thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>")


class _Raw(str):
    """HTML that a table cell holds as it is (a small table inside a cell)."""


def _policy_table(point: dict, best: str, preset_policy: str | None) -> str:
    rows = []
    for p, out in point.items():
        top = max(((k, v) for k, v in out["breakdown_ns"].items() if k != "fault_entry"), key=lambda kv: kv[1])
        mark = (" (cheapest)" if p == best else "") + (" (preset)" if p == preset_policy else "")
        rows.append({"policy": p + mark, "cost per WP fault": out["expected_ns"],
                     "p_copy": out["p_copy"], "p_unnecessary_copy": out["p_unnecessary_copy"],
                     "p_local_drain": out["p_local_drain"], "p_remote_drain": out["p_remote_drain"],
                     "p_drain_all": out["p_drain_all"],
                     "CPU time per second": Cell(_fmt(out["cpu_us_per_s"] * 1e3, "ns") + "/s"),
                     "largest part": f"{top[0]} {_fmt(top[1], 'ns')}", "kernels": POLICIES[p].kernels})
    probs = {c: "probability" for c in ("p_copy", "p_unnecessary_copy", "p_local_drain", "p_remote_drain",
                                        "p_drain_all")}
    return _table(rows, cls="policies", units={"cost per WP fault": "ns", **probs},
                  caption=f"{AT_POINT}: every policy's expected cost per WP fault and how often each step happens.")


def _params_table(values: Mapping[str, object], paramset=None) -> str:
    rows = []
    for name, e in registry.PARAMS.items():
        entry = paramset.parameters.get(name) if paramset is not None else None
        unit = getattr(e, "unit", "")
        interval = ""
        if entry is not None and getattr(entry, "ci_low", None) is not None:
            interval = f"{_fmt(entry.ci_low, unit)} .. {_fmt(entry.ci_high, unit)}"
        source = entry.source if entry is not None else ("registry default" if values[name] == e.default else "set")
        note = entry.note if entry is not None else e.source
        v = values[name]
        rows.append({"parameter": name, "value": v if isinstance(v, str) else Cell(_fmt(v, unit)),
                     "interval": interval, "source": source, "note": note})
    return _table(rows, cls="params", caption=f"{AT_POINT}: every parameter's value, interval and source.")


def _fact_unit(name: str) -> str:
    for suffix, unit in (("_kib", "KiB"), ("_bytes", "bytes"), ("_ns", "ns"), ("_cpus", "CPUs")):
        if name.endswith(suffix):
            return unit
    return ""


def _probes_table(probes: Mapping[str, object]) -> str:
    """The provenance's probe runs, one row each: what ran, how long, how many samples."""
    rows = []
    for name, info in probes.items():
        if not isinstance(info, Mapping):
            rows.append({"probe": name, "status": str(info)})
            continue
        skips = info.get("skips") or []
        rows.append({"probe": name, "status": info.get("status", ""),
                     "arguments": " ".join(str(a) for a in info.get("args") or []),
                     "run time": float(info["seconds"]) if isinstance(info.get("seconds"), (int, float)) else "",
                     "samples": info.get("samples", ""),
                     "skipped": "; ".join(str(x) for x in skips) if skips else "none"})
    return _table(rows, cls="probes", units={"run time": "s"})


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
        rows = []
        for k, v in paramset.provenance.items():
            if k == "probes" and isinstance(v, Mapping):
                rows.append({"fact": "probes", "value": _Raw(_probes_table(v))})
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                rows.append({"fact": k, "value": Cell(_fmt(v, _fact_unit(k)))})
            # facts as recorded: not read as prose (a hash such as ...815e39996... is no number)
            elif isinstance(v, (str, bool)) or v is None:
                rows.append({"fact": k, "value": _Raw(html.escape(str(v)))})
            else:
                rows.append({"fact": k, "value": _Raw(html.escape(json.dumps(v)))})
        out.append(_table(rows, cls="facts", caption="The machine the set was measured on (provenance of the "
                                                     "measurements); the probes' own details are in its directory."))
    if paramset.fit:
        rows = [{"fit": f.get("name", ""), "parameters": ", ".join(f.get("parameters", [])),
                 "points": f.get("n_points", ""), "method": f.get("method", ""), "note": f.get("note", "")}
                for f in paramset.fit]
        out.append(_table(rows, caption="How each group of parameters was fitted (fit records of the set)."))
    return "\n".join(out)


def _script_json(obj) -> str:
    """JSON safe inside a <script> element."""
    return json.dumps(obj, allow_nan=False).replace("</", "<\\/").replace("<!--", "<\\!--")


# ---- assembling -------------------------------------------------------------------------------


def live_spec(values: Mapping[str, object], map_n: int = REPORT_MAP_N, x: str | None = None,
              y: str | None = None, drag_n: int = live.DRAG_MAP_N, measured_up_to: int | None = None,
              measured_note: str = "") -> tuple[dict, "live.Explore"]:
    """The interactive part: cost chart, breakdown and decision map computed in the browser from
    one set of controls (:func:`costmodel.live.explore`). Returns the spec and the sources (their
    inputs, what the browser cannot follow)."""
    ex = live.explore(values, x, y, map_n=map_n, drag_n=drag_n)
    cost_chart = charts.cost_vs_cpus_chart(ex.cost, measured_up_to=measured_up_to, measured_note=measured_note,
                                           point_param=live.POINT_SIGNAL)
    breakdown = charts.cost_breakdown_chart(ex.breakdown, long=True)
    dmap = charts.decision_map_chart(ex.cells, ex.lines, x=ex.x, y=ex.y, x_log=ex.x_log, y_log=ex.y_log,
                                     x_domain=ex.domains[0], y_domain=ex.domains[1],
                                     measured_up_to=measured_up_to if ex.x == "remote_cpus" else None)
    spec = alt.vconcat(cost_chart, breakdown, dmap, spacing=28).resolve_scale(
        color="independent", opacity="independent", strokeDash="independent").to_dict()
    spec["align"] = "none"  # each chart from the left edge, not aligned on the widest axis
    # no ARIA description per mark item: it formats every field of every cell on every move (the
    # canvas has no such descriptions to read anyway)
    spec.setdefault("config", {})["aria"] = False
    params = []
    for p in ex.params:
        if "bind" in p:
            p = dict(p, bind=dict(p["bind"], element=f"#ctl-{_control_of(p['name'])}"))
        params.append(p)
    spec["params"] = params + spec.get("params", [])
    return spec, ex


def _control_of(signal: str) -> str:
    """The parameter a bound signal sets (``x__log10`` and ``x__raw`` set ``x``)."""
    for suffix in (live.LOG_SUFFIX, live.RAW_SUFFIX):
        if signal.endswith(suffix):
            return signal[: -len(suffix)]
    return signal


def _controls_html(ex: "live.Explore", values: Mapping[str, object]) -> tuple[str, dict]:
    """The controls of the explore view: one row per choice and parameter (name and unit, the
    input, its value in its unit), and what the page script needs to keep them honest."""
    bound = {_control_of(n) for n in ex.inputs}
    groups = [("Choices", list(live.CHOICES)),
              ("Where the charts' point is (marked on the cost chart)", [live.POINT_SIGNAL]),
              ("Workload", [n for n in ex.numeric if registry.NUMERIC[n].kind == registry.WORKLOAD]),
              ("Machine", [n for n in ex.numeric if registry.NUMERIC[n].kind == registry.MACHINE])]
    rows, readouts = [], {}
    for title, names in groups:
        names = [n for n in names if n in bound]
        if not names:
            continue
        rows.append(f"<h4>{html.escape(title)}</h4>")
        for n in names:
            if n in registry.CATEGORICAL:
                label, unit = n, ""
            elif n == live.POINT_SIGNAL:
                label, unit = "remote_cpus (CPUs)", "CPUs"
            else:
                unit = registry.NUMERIC[n].unit
                label = f"{n} ({unit})" if unit else n
            why = ""
            if n in ex.matters_when:
                why = f"<span class='why'>matters only with {html.escape(' or '.join(ex.matters_when[n]['words']))}</span>"
            rows.append(f"<div class='ctl' id='row-{n}'><label for='ctl-{n}'>{html.escape(label)}</label>"
                        f"<div id='ctl-{n}'></div><output id='val-{n}'></output>{why}</div>")
            if n not in registry.CATEGORICAL:
                readouts[n] = unit
    warns = []
    for i, (label, (params, what)) in enumerate(sorted(ex.frozen.items())):
        warns.append({"id": f"warn-{i}", "when": label})
        rows.append(f"<p class='warn' id='warn-{i}' hidden>With {html.escape(label)}, the {html.escape(what)} "
                    f"cannot be computed in the browser (the incomplete gamma function of the fixed-time gap, or a "
                    f"sum over the batch position): it is computed at the shipped values of "
                    f"{html.escape(', '.join(params))}, and their sliders do not move it.</p>")
    for i, (axis, info) in enumerate(sorted(ex.axis_matters.items())):
        warns.append({"id": f"axis-{i}", "unless": info["keys"]})
        rows.append(f"<p class='warn' id='axis-{i}' hidden>The decision map's axis {html.escape(axis)} does not "
                    f"enter the model with these choices (it matters only with "
                    f"{html.escape(' or '.join(info['words']))}): the map does not change along it.</p>")
    page = {"readouts": readouts, "choices": list(live.CHOICES), "warnings": warns,
            "matters": {n: m["keys"] for n, m in ex.matters_when.items()}, "detail": live.DETAIL_SIGNAL}
    return "<div id='controls'>" + "".join(rows) + "</div>", page


def static_specs(values: Mapping[str, object], cost_df: pd.DataFrame, dm: chartdata.DecisionMap,
                 res_df: pd.DataFrame, calib=None, uncertain: Mapping[str, object] | None = None,
                 measured_up_to: int | None = None, measured_note: str = "") -> dict[str, dict]:
    """Each chart as a static Vega-Lite spec; ``uncertain``: the charts of the verdict's
    uncertainty, already built (``cost_bands``, ``probability_map``, ``tornado``); charts
    against the CPUs mark the range beyond ``measured_up_to`` as extrapolated."""
    with alt.data_transformers.disable_max_rows():
        specs = {
            "cost_vs_cpus": charts.cost_vs_cpus_chart(cost_df, measured_up_to=measured_up_to,
                                                      measured_note=measured_note).to_dict(),
            "cost_breakdown": charts.cost_breakdown_chart(cost_df).to_dict(),
            "decision_map": charts.decision_map_figure(dm, measured_up_to=measured_up_to).to_dict(),
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
    bands = chartdata.cost_vs_cpus_data(values, bands=params, draws=band_draws, seed=0)
    pmap = chartdata.decision_map_data(values, *chartdata.default_map_axes(values), n=map_n, uncertain=params,
                                    draws=map_draws, seed=0)
    return {
        "cost_bands": charts.cost_vs_cpus_chart(bands, title="Cost per WP fault with its uncertainty",
                                                measured_up_to=measured, measured_note=measured_note,
                                                draws=band_draws, seed=0),
        "probability_map": charts.decision_map_figure(pmap, shade="probability", measured_up_to=measured),
        "tornado": charts.tornado_chart(chartdata.tornado_data(sens), sens.cheapest),
    }, measured_note


def machines_section(sets: Mapping[str, object] | None = None) -> tuple[list[str], dict | None]:
    """'Across machines': every committed parameter set's machine costs side by side (HTML
    pieces, and the chart's spec, None where no set is committed)."""
    if sets is None:
        sets = {name: paramfile.load(path) for name, path in paramfile.committed_sets().items()}
    head = ["<h2>Across machines</h2>"]
    if not sets:
        return head + ["<p class='note'>No parameter sets are committed in this installation (an installed "
                       "package carries no data directory), so there is nothing to compare.</p>"], None
    df = chartdata.machine_comparison_data(sets)
    measured = df[df["measured"]]
    counts = ", ".join(f"{m} {int((measured['machine'] == m).sum())} of {int((df['machine'] == m).sum())}"
                       for m in dict.fromkeys(df["machine"]))
    text = (f"<p class='note'>Every machine cost of the {len(sets)} committed parameter sets (data/params: "
            f"calibrated on a machine; data/reference: from published figures), each with its interval. "
            f"Measured costs per set: {html.escape(counts)}. The axis is symmetric-log, so a cost of 0 (or an "
            f"interval reaching 0) stays on it.</p>")
    return head + [text, "<div id='machines' class='chart'></div>"], charts.machine_comparison_chart(df).to_dict()


def _swap_sentence(rows: pd.DataFrame) -> str:
    """Does the unnecessary copy happen on swap-in? In numbers, from the swap_cow rows."""
    sw = rows[(rows["probe"] == "swap_cow")].copy()
    if sw.empty:
        return ""

    def count(frame, col):
        n = frame["copied_n"].fillna(0).astype(int)
        return int((frame[col].fillna(0) * n).round().sum()), int(n.sum())

    no_fault = sw[sw["faulted"].fillna(1) == 0]
    reused = sw[(sw["faulted"].fillna(0) > 0) & (sw["copied"].fillna(0) == 0)]
    copied = sw[sw["copied"].fillna(0) > 0]
    unnecessary = copied[copied["sharing"] != "child_alive"]

    def which(frame):
        kinds = sorted({f"{r.sharing} page, {r.swap_path} swap-in" for r in frame.itertuples()})
        return "; ".join(kinds)

    f0, n0 = count(no_fault, "faulted")
    parts = []
    if len(no_fault):
        parts.append(f"after {n0:,} writes to pages swapped in with their exclusive marker ({which(no_fault)}) "
                     f"{f0:,} took a WP fault: the swap-in mapped them writable")
    if len(reused):
        f1, n1 = count(reused, "faulted")
        c1, _ = count(reused, "copied")
        parts.append(f"{f1:,} of {n1:,} writes to pages that lost exclusivity and came back through the swap "
                     f"cache ({which(reused)}) faulted and reused the page ({c1:,} copies)")
    if len(copied):
        c2, n2 = count(copied, "copied")
        parts.append(f"{c2:,} of {n2:,} writes copied, all of them to pages still shared with a live child "
                     f"({which(copied)})" if unnecessary.empty else
                     f"{c2:,} of {n2:,} writes copied ({which(copied)})")
    answer = "No" if unnecessary.empty else "Yes"
    return (f"<b>Does the unnecessary copy happen on swap-in (zram, SWP_SYNCHRONOUS_IO)? {answer}, on this "
            f"machine:</b> " + "; ".join(parts) + ".")


def _loop_sentence(summary: Mapping) -> str:
    """The original report's loop (swap-out, swap-in, write one page) with a second thread or a
    spinning sibling, against one thread: measured and predicted ratios, in one sentence."""
    names = {"threads=2 siblings=looping": "two threads", "threads=1 siblings=spinning": "a spinning sibling"}
    parts = [f"{names.get(r['against'], r['against'])} ({r['swap_path']}) {r['ratio']:.2f}× measured, {r['predicted_ratio']:.2f}× predicted "
             f"({r['ratio_error']:+.1%})" for r in summary["loop_ratios"]]
    flushes = summary["loop_ratios"][0]["pageout_tlb_flushes"]
    return ("<b>The original report's swap-out/swap-in/write loop</b> against one thread alone: "
            + "; ".join(parts) + f". {summary['loop_within']} of {summary['loop_rows']} within "
            f"{summary['loop_ratio_tolerance']:.0%}. The model takes the one-thread time as given and adds "
            f"{flushes} TLB shootdowns per pageout, each a wait for the other CPU and, where that CPU runs the "
            f"loop too, the time its shootdowns take on this one: the slowdown is shootdowns, not copies.")


def workloads_section(paramset=None) -> tuple[list[str], dict | None]:
    """'The model against whole workloads': the held-out prediction of the committed dataset of
    the default set's machine, where its measurements hold workload or swap_cow rows."""
    head = ["<h2>The model against whole workloads</h2>"]
    try:
        default = paramfile.load(paramfile.default_params_path())
    except UserError as exc:
        return head + [f"<p class='note'>Skipped: {html.escape(str(exc))}.</p>"], None
    dataset = (default.provenance or {}).get("dataset_id") or paramfile.DEFAULT_SET
    directory = paramfile.DATA_DIR / "measurements" / str(dataset)
    if not directory.is_dir():
        return head + [f"<p class='note'>Skipped: the measurements of the default set's machine "
                       f"(data/measurements/{html.escape(str(dataset))}) are not in this installation (an "
                       f"installed package carries none).</p>"], None
    try:
        rows, summary = prediction.predict(directory)
    except UserError as exc:
        return head + [f"<p class='note'>Skipped: {html.escape(str(exc))}.</p>"], None
    s = summary
    lacking = [m for m in s["model_lacks"] if m.get("lacks")]
    text = [f"<p class='note'>A held-out test (calibration reads neither probe): every configuration the "
            f"<code>workload</code> and <code>swap_cow</code> probes ran on {html.escape(s['cpu'])}, kernel "
            f"{html.escape(str(s['kernel_release']))}, mapped to a parameter point and priced with the kernel's "
            f"policy ({html.escape(s['policy'])}, preset {html.escape(s['preset'])}) and the parameter set "
            f"{html.escape(s['param_set'])}.</p>",
            "<ul class='verdict'>"
            f"<li>Cost: {s['cost_within']} of {s['priced']} priced configurations lie within "
            f"{s['cost_tolerance']:.0%} of the measured mean; {s['configurations'] - s['priced']} took no WP fault "
            f"at all (the model prices a fault, so they are shown hollow and left out).</li>"
            + (f"<li>Intervals: the predicted 95% interval (the set's parameter intervals, the host's drift "
               f"between the rounds of its recording, the model's own error on like faults and the measured "
               f"mean's noise, each named in <code>costmodel predict</code>) holds the measured mean in "
               f"{s['interval_holds']} of {s['priced']} priced configurations.</li>" if "interval_holds" in s else "")
            + f"<li>Copies: {s['copy_inside']} of {s['copy_rows']} measured copy fractions hold the model's P(copy) "
            f"in their {s['fraction_confidence']:.0%} Wilson interval"
            + (f"; faults: {s['fault_inside']} of {s['fault_rows']}" if s["fault_rows"] else "") + ".</li>"
            + (f"<li>Where the model lacks a concept ({len(lacking)} configurations), the rows say so: "
               f"{html.escape('; '.join(sorted({m['lacks'] for m in lacking})))}.</li>" if lacking else "")
            + (f"<li>{_swap_sentence(rows)}</li>" if (rows["probe"] == "swap_cow").any() else "")
            + (f"<li>{_loop_sentence(s)}</li>" if s.get("loop_ratios") else "")
            + "</ul>",
            "<div id='workloads' class='chart'></div>"]
    return head + text, charts.prediction_chart(chartdata.prediction_data(rows), tolerance=s["cost_tolerance"]).to_dict()


def _embed_id(pieces: Sequence[str]) -> str:
    """The chart id a section's HTML leaves room for (its ``<div id='...' class='chart'>``)."""
    for piece in pieces:
        m = re.search(r"<div id='([\w-]+)' class='chart'>", piece)
        if m:
            return m.group(1)
    raise ValueError("the section has no chart")


def build_report(values: Mapping[str, object], *, paramset=None, preset: str | None = None,
                 title: str | None = None, simulate_points: int = 4, simulate_faults: int = 100_000,
                 map_n: int = REPORT_MAP_N, png_map_n: int = PNG_MAP_N, verdict_draws: int = VERDICT_DRAWS,
                 machines: Mapping[str, object] | None = None, workloads: bool = True,
                 vary: Mapping[str, tuple[float, float]] | None = None,
                 progress: Callable[[str], None] | None = None,
                 traces: Sequence[str | Path] = ()) -> Report:
    """Every piece of the report for the checked parameter point ``values``. ``machines``: the
    sets to compare across machines (default: every committed set); ``workloads``: with the
    prediction of the whole-workload probes where their measurements are present; ``vary``:
    ranges drawn for the verdict's uncertainty beside the set's intervals (a workload file's);
    ``progress``: told, in words, each step as it starts (the command prints them)."""
    say = progress or (lambda _step: None)
    values = registry.as_point(values)
    preset_policy = registry.preset(preset).policy if preset else None
    point = evaluate_point(values)
    say("the costs at the point, along remote_cpus and over the decision map")
    cost_df = chartdata.cost_vs_cpus_data(values)
    runs = chartdata.cheapest_along(cost_df)
    dm = chartdata.decision_map_data(values, *chartdata.default_map_axes(values), n=png_map_n)
    shares = chartdata.map_shares(dm)
    res_df = chartdata.residency_data(values, n=50)
    sim_note = ""
    if simulate_points:
        say(f"the event simulation ({simulate_points} points per gap model, {simulate_faults:,} WP faults each)")
        sim = residency_simulated(values, points=simulate_points, faults=simulate_faults)
        res_df = pd.concat([res_df, sim], ignore_index=True)
        sim_note = (f"Diamonds: event simulation ({simulate_faults:,} WP faults per point, "
                    "costmodel.simulate) with its confidence interval.")
    calib_chart = None
    if paramset is not None and paramset.fit:
        cal = chartdata.calibration_data(paramset)
        if not cal.empty:
            calib_chart = charts.calibration_chart(cal)
    measured, measured_note = uncertainty.measured_targets(paramset)
    say("the page's live charts")
    spec, ex = live_spec(values, map_n=map_n, measured_up_to=measured, measured_note=measured_note)
    params = uncertainty.uncertain_parameters(values, paramset, vary)
    say(f"how sure the verdict is ({verdict_draws:,} draws) and what would flip it")
    sens = uncertainty.sensitivity(values, params, draws=verdict_draws, seed=0)
    say("the uncertainty bands and the probability map")
    unc_charts, measured_note = uncertainty_charts(values, sens, params, paramset, map_n=png_map_n)
    statics = static_specs(values, cost_df, dm, res_df, calib_chart, unc_charts, measured_up_to=measured,
                           measured_note=measured_note)
    extra_html = []
    for section in (machines_section(machines), workloads_section(paramset) if workloads else ([], None),
                    *(report_section(d, index=i) for i, d in enumerate(traces))):
        pieces, chart_spec = section
        extra_html += pieces
        if chart_spec is not None:
            statics[_embed_id(pieces)] = chart_spec
    best = cheapest_candidate(point)
    verdict = verdict_sentences(values, point, runs, shares, dm, preset_policy)
    verdict = verdict[:1] + uncertainty_sentences(sens, preset) + verdict[1:]
    say("the break-even table and the page")
    be = breakeven_rows(values)
    doc = _html(values, title=title, paramset=paramset, preset=preset, point=point, best=best,
                preset_policy=preset_policy, verdict=verdict, runs=runs, shares=shares, be=be, spec=spec,
                ex=ex, statics=statics, sim_note=sim_note, sens=sens, measured_note=measured_note,
                extra_html=extra_html, dm=dm)
    return Report(doc, statics, spec, ex.inputs, verdict)


def _sensitivity_rows(sens: uncertainty.Sensitivity) -> list[dict]:
    rows = []
    for r in sens.table.to_dict("records"):
        unit = r["unit"]
        rows.append({"parameter": r["parameter"], "value": Cell(_fmt(r["value"], unit)),
                     "interval": f"{_fmt(r['low'], unit)} .. {_fmt(r['high'], unit)}",
                     "origin (distribution)": f"{r['origin']} ({r['distribution']})",
                     "elasticity": round(r["elasticity"], 4),
                     "flips (this parameter alone)": chartdata.flip_words(r, _fmt),
                     "gain in P(verdict) if known": round(r["gain"], 4), "basis": r["basis"]})
    return rows


def _html(values, *, title, paramset, preset, point, best, preset_policy, verdict, runs, shares, be, spec, ex,
          statics, sim_note, sens=None, measured_note="", extra_html=(), dm=None) -> str:
    name = paramset.name if paramset is not None else "registry defaults"
    title = title or f"Write-protect faults and LRU batch drains: {name}"
    cats = ", ".join(f"{n} = {values[n]}" for n in registry.CATEGORICAL)
    controls, page = _controls_html(ex, values)
    embeds = {"explore": spec, "residency": statics["residency"]}
    for key in ("cost_bands", "probability_map", "tornado", "calibration", "machines", "workloads",
                *(k for k in statics if k.startswith("trace-"))):
        if key in statics:
            embeds[key] = statics[key]
    x, y = (dm.x, dm.y) if dm is not None else ("x", "y")
    xu = registry.NUMERIC[x].unit if x in registry.NUMERIC else ""
    yu = registry.NUMERIC[y].unit if y in registry.NUMERIC else ""
    shares_rows = []
    for r in (shares.to_dict("records") if not shares.empty else []):
        shares_rows.append({"cheapest": r["policy"], "share of the map": Cell(f"{r['share_pct']:.1f}%"),
                            f"{x} from": Cell(_fmt(r[f"{x}_min"], xu)), "to": Cell(_fmt(r[f"{x}_max"], xu)),
                            f"{y} from": Cell(_fmt(r[f"{y}_min"], yu)), f"{y} to": Cell(_fmt(r[f"{y}_max"], yu)),
                            "median margin over the runner-up": Cell(f"{r['median_margin_pct']:.1f}%")})
    runs_rows = [{"remote_cpus from": r["from"], "to": r["to"], "cheapest": r["policy"],
                  "smallest margin over the runner-up": Cell(f"{r['margin_pct_min']:.2f}%")} for r in runs]
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='note'>costmodel {__version__}, model hash <code>{model_hash()}</code>. {html.escape(cats)}."
        + (f" Kernel preset: {html.escape(preset)} (policy {html.escape(preset_policy)})." if preset else "")
        + " This file is self-contained: it needs no kernel, server or network.</p>",
        "<h2>Verdict</h2>", "<ul class='verdict'>" + "".join(f"<li>{s}</li>" for s in verdict) + "</ul>",
        "<h3>Every policy at this point</h3>", _policy_table(point, best, preset_policy),
        "<h3>Cheapest policy along remote_cpus</h3>",
        _table(runs_rows, caption=f"{AT_POINT}: remote_cpus from 1 to 256, cpus raised to remote_cpus + 1 where the "
                                  f"set has fewer."),
        "<h3>Cheapest policy over the decision map</h3>",
        _table(shares_rows, caption=f"{AT_POINT}: the share of the map's {x} &times; {y} grid where each policy "
                                    f"is the cheapest, and the ranges it covers."),
        "<h3>Break-even values</h3>",
        _table([{"policy": r["policy"], "against": r["against"], "moving": r["parameter"],
                 "break-even": Cell(r["break_even"]), "curves cross at": Cell(r["curves cross at"]),
                 "cheaper where": r["verdict"], "method": r["note"],
                 "same answer from": _Raw(f"<code class='cmd'>{html.escape(r['same answer from'])}</code>")}
                for r in be], cls="breakeven",
               caption=f"{AT_POINT}: where two policies cost the same as one parameter moves and every other "
                       f"stays at the point (for a whole-number parameter, the value from which the order "
                       f"changes); each row is the answer of the command in its last column."),
        *(_uncertainty_section(sens, measured_note) if sens is not None else []),
        *proposals.report_section(values, paramset, table_html=lambda rows: _table(rows, caption=AT_POINT)),
        "<h2>Explore</h2>",
        "<p class='note'>Everything above describes the shipped point (the parameter set as written); the "
        "controls below move only the charts of this section, which recompute in the browser from the model's "
        "own formulas. Each control shows its value in its unit; the selects switch the formulas to the chosen "
        "model. The parameters are kept consistent: batch_position at most batch_size &minus; 1, cpus raised to "
        "remote_cpus + 1 where an axis asks for more CPUs than the set has (as the static charts do). While a "
        f"slider moves, the decision map is drawn at {live.DRAG_MAP_N} cells a side; a moment after, in full "
        f"({REPORT_MAP_N} a side).</p>",
        controls,
        "<div id='explore' class='chart'></div>",
        "<h2>Residency</h2>",
        f"<p class='note'>At the shipped point: the probability that the page is still in its CPU's add batch at "
        f"the WP fault, for each gap model. Lines: closed form. {html.escape(sim_note)}</p>",
        "<div id='residency' class='chart'></div>",
        *extra_html,
        "<h2>Calibration and provenance</h2>", _provenance(paramset),
    ]
    if "calibration" in embeds:
        parts.append("<div id='calibration' class='chart'></div>")
    parts += ["<h3>Parameters</h3>", _params_table(values, paramset)]
    return page_html(title=title, body="\n".join(parts), specs=embeds, page=page)


def _uncertainty_section(sens: uncertainty.Sensitivity, measured_note: str) -> list[str]:
    prop = sens.propagation
    return [
        "<h2>How sure is the verdict?</h2>",
        f"<p class='note'>At the shipped point only: these charts are computed here, not in the browser, and do not "
        f"follow the controls. Every parameter with an interval is drawn ({prop.draws:,} draws for the verdict, seed "
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
        _table(_sensitivity_rows(sens), cls="params sens",
               caption=f"{AT_POINT}: each parameter's interval and what it would take to flip the verdict."),
    ]


# ---- writing ----------------------------------------------------------------------------------


def write_report(values: Mapping[str, object], out_path: str | Path, *, paramset=None, preset: str | None = None,
                 png_dir: str | Path | None = None, force: bool = False, title: str | None = None,
                 simulate_points: int = 4, vary: Mapping[str, tuple[float, float]] | None = None,
                 progress: Callable[[str], None] | None = None,
                 traces: Sequence[str | Path] = ()) -> Path:
    """Write the standalone HTML report for ``values`` to ``out_path`` (atomically; refusing to
    overwrite without ``force``), and with ``png_dir`` each chart as PNG and SVG there."""
    out_path = Path(out_path)
    refuse_overwrite(out_path, force)
    if png_dir is not None:
        png_dir = Path(png_dir)
        if png_dir.exists() and not png_dir.is_dir():
            raise UserError(f"--png {png_dir}: exists and is not a directory")
    report = build_report(values, paramset=paramset, preset=preset, title=title, simulate_points=simulate_points,
                          vary=vary, progress=progress, traces=traces)
    if png_dir is not None:
        for name in report.static_specs:
            for ext in ("png", "svg"):
                refuse_overwrite(png_dir / f"{name}.{ext}", force)
        if progress:
            progress(f"{len(report.static_specs)} charts as PNG and SVG")
        write_images(report.static_specs, png_dir, force=force)
    write_atomic(out_path, report.html, force=force)
    return out_path


def write_images(specs: Mapping[str, dict], directory: str | Path, force: bool = False) -> list[Path]:
    """Each spec as ``<name>.png`` (2x scale) and ``<name>.svg`` in ``directory``."""
    directory = Path(directory)
    out = []
    for name, spec in specs.items():
        out.append(write_atomic(directory / f"{name}.svg", vlc.vegalite_to_svg(spec, vl_version=VL_VERSION), force=force))
        out.append(write_atomic(directory / f"{name}.png", vlc.vegalite_to_png(spec, vl_version=VL_VERSION, scale=2),
                                force=force))
    return out
