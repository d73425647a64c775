"""Altair charts of the model: what each drain policy costs, which one is cheapest where, how
long a page stays in its batch, and how well the calibration fits.

Each chart builder (``*_chart``) turns a tidy frame from :mod:`costmodel.chartdata`, or a *live
source* (an ``alt.Chart`` whose transforms compute the same columns in the browser, see
:mod:`costmodel.live`), into an Altair chart. They read columns only; they never evaluate the
model. The colours, dashes and time labels of every chart live here too.
"""

from __future__ import annotations

import importlib.util
import textwrap
from typing import Sequence

import altair as alt
import numpy as np
import pandas as pd

from . import palette, registry
from .axes import CPU_RANGE, axis_is_log
from .chartdata import DEFAULT_AGAINST, PART_COLUMNS, POLICY_ORDER, PROBE_SOURCES, DecisionMap
from .model import BREAKDOWN, CANDIDATES


#: Vega-Lite version of the specs altair writes (altair.SCHEMA_VERSION without the patch level):
#: the report's inlined bundle, its PNG/SVG export and the notebook chart widget all use this one
VL_VERSION = "6.4"
_POLICY_COLORS = palette.colors(len(POLICY_ORDER))
_POLICY_DASHES = palette.dashes(len(POLICY_ORDER))
_PART_BASE = ("#c7c7c7", "#aec7e8", "#ffbb78", "#d62728", "#98df8a", "#9467bd", "#c5b0d5",
              "#1f77b4", "#2ca02c", "#ff7f0e")
_PART_COLORS = palette.colors(len(BREAKDOWN), base=_PART_BASE)


def chart_title(text: str, subtitle=None, width: int = 90):
    """A chart title anchored at the plot's left edge, its subtitle wrapped to ``width``
    characters a line (a long title centred over a narrow plot pushes the plot sideways)."""
    lines = [subtitle] if isinstance(subtitle, str) else list(subtitle or [])
    wrapped = [w for line in lines for w in textwrap.wrap(line, width)] or None
    return alt.Title(text, subtitle=wrapped, anchor="start")


def policy_color(policy: str) -> str:
    """The colour of ``policy`` in every chart (``#rrggbb``), one per policy however many."""
    return _POLICY_COLORS[POLICY_ORDER.index(policy)]


def policy_dash(policy: str) -> list[int]:
    """The stroke dash of ``policy``'s line (solid for the first), one per policy however many:
    lines that lie on each other (drain_local and drain_local_always where the local drain is
    nearly free) stay told apart."""
    return list(_POLICY_DASHES[POLICY_ORDER.index(policy)]) or [1, 0]


def policy_scale(domain: Sequence[str] = POLICY_ORDER):
    return alt.Scale(domain=list(domain), range=[policy_color(p) for p in domain])


def policy_width(policy: str) -> float:
    """The stroke width of ``policy``'s line: wide and narrow in turn along :data:`POLICY_ORDER`,
    so two neighbouring policies whose costs nearly coincide (drain_local and drain_local_always
    differ by one local drain, about 1 %) show as a wide line with a narrow one inside, not as one."""
    i = POLICY_ORDER.index(policy) if policy in POLICY_ORDER else len(POLICY_ORDER)
    return 5.0 if i % 2 == 0 else 2.0


def policy_width_scale(domain: Sequence[str] = POLICY_ORDER):
    return alt.Scale(domain=list(domain), range=[policy_width(p) for p in domain])


def policy_dash_scale(domain: Sequence[str] = POLICY_ORDER):
    return alt.Scale(domain=list(domain), range=[policy_dash(p) for p in domain])


def cpu_ticks(lo: float, hi: float) -> list[float]:
    """Ticks of a CPU-count axis: the powers of two from 1 within ``lo`` .. ``hi`` (never below 1:
    there is no fraction of a CPU)."""
    out, v = [], 1.0
    while v <= hi:
        if v >= lo:
            out.append(v)
        v *= 2
    return out


# ---- chart builders -----------------------------------------------------------------------------


def _base(source):
    return source if isinstance(source, alt.Chart) else alt.Chart(source)


def _fmt_tooltip(columns: Sequence[str]):
    tips = []
    for c in columns:
        if c == "policy":
            tips.append(alt.Tooltip("policy:N"))
        elif c.endswith(("_ns", "_ns_low", "_ns_high")):
            tips.append(alt.Tooltip(f"{c}:Q", format=",.0f"))
        elif c.startswith("p_"):
            tips.append(alt.Tooltip(f"{c}:Q", format=".4f"))
        else:
            tips.append(alt.Tooltip(f"{c}:Q", format=",.4~g"))
    return tips


def cost_vs_cpus_chart(source, title: str | None = None, width: int = 560, height: int = 320,
                       measured_up_to: int | None = None, measured_note: str = "", draws: int | None = None,
                       seed: int | None = None, point_param: str | None = None):
    """Lines of ``expected_ns`` against ``remote_cpus``, one per policy; hovering a CPU count
    shows every policy's breakdown there. ``source``: a tidy frame from :func:`cost_vs_cpus_data`
    or a live source with the same columns. Where the frame has ``expected_ns_low`` ..
    ``expected_ns_high`` (its ``bands``), each line gets its 95% band (``draws``/``seed``: named
    in the subtitle). ``measured_up_to``: the most shootdown targets the parameter set measured
    (:func:`costmodel.uncertainty.measured_targets`): the range beyond is shaded as extrapolated
    and ``measured_note`` says so; None marks nothing. ``point_param``: the name of a signal
    holding a remote_cpus to mark, with each policy's cost there written beside its line."""
    base = _base(source)
    hover = alt.selection_point(name="hover_cpus", nearest=True, on="pointerover", fields=["remote_cpus"],
                                empty=False, clear="pointerout")
    legend = alt.Legend(symbolType="stroke", symbolStrokeWidth=2.5, symbolSize=300, symbolOpacity=1)
    color = alt.Color("policy:N", scale=policy_scale(), title="policy", legend=legend)
    x = alt.X("remote_cpus:Q", scale=alt.Scale(type="log", base=2, domain=list(CPU_RANGE)),
              title="remote_cpus (other CPUs running the mm)", axis=alt.Axis(values=cpu_ticks(*CPU_RANGE)))
    y = alt.Y("expected_ns:Q", scale=alt.Scale(type="log"), title="expected cost per WP fault",
              axis=alt.Axis(labelExpr=LOG_TIME_LABEL_EXPR))
    banded = isinstance(source, pd.DataFrame) and "expected_ns_low" in source.columns
    layers = []
    subtitle = ["cpus raised to remote_cpus + 1 where the set has fewer; hover for the breakdown"]
    if measured_up_to is not None and measured_up_to < CPU_RANGE[1]:
        shade = alt.Chart(pd.DataFrame({"from": [max(float(measured_up_to), CPU_RANGE[0])],
                                        "to": [float(CPU_RANGE[1])],
                                        "label": [f"extrapolated beyond {measured_up_to} measured target CPU"
                                                  + ("s" if measured_up_to != 1 else "")]}))
        layers.append(shade.mark_rect(color="#000000", opacity=0.06).encode(
            x=alt.X("from:Q", scale=alt.Scale(type="log", base=2, domain=list(CPU_RANGE))), x2="to:Q",
            tooltip=[alt.Tooltip("label:N")]))
        layers.append(shade.mark_text(align="right", baseline="top", dx=-4, dy=4, color="#555", fontSize=11).encode(
            x=alt.X("to:Q", scale=alt.Scale(type="log", base=2, domain=list(CPU_RANGE))), y=alt.value(0),
            text="label:N"))
        subtitle.append(f"shaded: extrapolated ({measured_note})" if measured_note else "shaded: extrapolated")
    if banded:
        layers.append(base.mark_area(opacity=0.18).encode(
            x=x, y=alt.Y("expected_ns_low:Q", scale=alt.Scale(type="log")), y2="expected_ns_high:Q",
            color=color))  # one legend with the lines; its swatches at full opacity (symbolOpacity)
        how = f" from {draws:,} draws (seed {seed})" if draws else ""
        subtitle.append(f"bands: 95% interval of each policy's cost{how} over the parameters' intervals")
    dash = alt.StrokeDash("policy:N", scale=policy_dash_scale(), title="policy", legend=legend)
    lines = base.mark_line().encode(x=x, y=y, color=color, strokeDash=dash,
                                    strokeWidth=alt.StrokeWidth("policy:N", scale=policy_width_scale(), legend=legend,
                                                                sort=list(POLICY_ORDER)))
    cols = ["policy", "remote_cpus", "cpus", "expected_ns"]
    if banded:
        cols += ["expected_ns_low", "expected_ns_high", "p_cheapest"]
    # a live source re-encodes every tooltip on every slider move: the breakdown is in its own chart
    tips = _fmt_tooltip([*cols, "p_copy", "p_unnecessary_copy", *PART_COLUMNS] if isinstance(source, pd.DataFrame)
                        else [*cols, "p_copy"])
    quiet = color  # one legend, drawn with the lines' dashes
    if isinstance(source, pd.DataFrame):
        points = base.mark_point(filled=True, size=50).encode(
            x=x, y=y, color=quiet, tooltip=tips,
            opacity=alt.condition(hover, alt.value(1), alt.value(0))).add_params(hover)
        rule = base.mark_rule(color="#888").encode(x=x).transform_filter(hover)
    else:
        # a live source: the pointer is tracked on a fixed grid of CPU counts (its nearest-point
        # cells are computed once, not on every slider move); the points and the costs there follow
        grid = alt.Chart(pd.DataFrame({"remote_cpus": np.arange(CPU_RANGE[0], CPU_RANGE[1] + 1)}))
        points = alt.layer(
            grid.mark_point(opacity=0).encode(x=x).add_params(hover),
            base.mark_point(filled=True, size=50).encode(x=x, y=y, color=quiet,
                                                         opacity=alt.condition(hover, alt.value(1), alt.value(0))))
        rule = grid.mark_rule(color="#888").encode(x=x).transform_filter(hover)
        subtitle[0] = "cpus raised to remote_cpus + 1 where the set has fewer"
    marks = []
    if point_param:
        at = base.transform_filter(f"datum.remote_cpus === {point_param}")
        cost_text = TIME_LABEL_EXPR.replace("datum.value", "datum.expected_ns")
        ranked = at.transform_window(rank="row_number()", sort=[alt.SortField("expected_ns", order="ascending")])
        table_y = 150
        marks = [
            at.mark_rule(color="#444", strokeDash=[3, 3]).encode(x=x),
            at.mark_point(filled=True, size=45).encode(x=x, y=y, color=quiet),
            # the costs at that point, cheapest first, beside the chart (under its legend)
            ranked.transform_calculate(label=f"datum.policy + '  ' + ({cost_text})",
                                       py=f"{table_y + 15} + 15 * datum.rank").mark_text(
                align="left", baseline="middle", fontSize=11).encode(
                x=alt.value(width + 18), y=alt.Y("py:Q", scale=None), color=quiet, text="label:N"),
            ranked.transform_filter("datum.rank === 1").transform_calculate(
                label="'at remote_cpus = ' + datum.remote_cpus").mark_text(
                align="left", baseline="middle", fontSize=11, fontWeight="bold").encode(
                x=alt.value(width + 18), y=alt.value(table_y), text="label:N"),
            ranked.transform_filter("datum.rank === 1").transform_calculate(
                label="'(cpus ' + datum.cpus + '):'").mark_text(
                align="left", baseline="middle", fontSize=11, fontWeight="bold").encode(
                x=alt.value(width + 18), y=alt.value(table_y + 14), text="label:N"),
        ]
        subtitle.append("dashed rule: the remote_cpus of the slider; right: each policy's cost there, cheapest first")
    chart = alt.layer(*layers, lines, points, rule, *marks).properties(width=width, height=height)
    return chart.properties(title=chart_title(title or "Cost per WP fault against the CPUs running the mm",
                                              subtitle))


def cost_breakdown_chart(source, policies: Sequence[str] = POLICY_ORDER, width: int = 170, height: int = 150,
                         columns: int = 3, long: bool = False):
    """Stacked areas of the breakdown of ``expected_ns`` against ``remote_cpus``, one panel per
    policy: which term dominates where. ``long``: ``source`` already has one row per part
    (``part``, ``part_order``, ``part_ns``: a live source computing each part once)."""
    base = _base(source).transform_filter(alt.FieldOneOfPredicate(field="policy", oneOf=list(policies)))
    parts = [p for p in BREAKDOWN]
    if long:
        folded = base
    else:
        folded = base.transform_fold(list(PART_COLUMNS), as_=["part_column", "part_ns"]).transform_calculate(
            part="replace(replace(datum.part_column, 'breakdown_', ''), '_ns', '')",
        ).transform_calculate(part_order="indexof(" + str(parts).replace("'", '"') + ", datum.part)")
    tips = [alt.Tooltip("policy:N"), alt.Tooltip("remote_cpus:Q"), alt.Tooltip("part:N"),
            alt.Tooltip("part_ns:Q", format=",.0f")] if isinstance(source, pd.DataFrame) else alt.Undefined
    chart = folded.mark_area().encode(
        x=alt.X("remote_cpus:Q", scale=alt.Scale(type="log", base=2, domain=list(CPU_RANGE)), title="remote_cpus",
                axis=alt.Axis(values=cpu_ticks(*CPU_RANGE), labelOverlap=True)),
        y=alt.Y("part_ns:Q", stack="zero", title="per WP fault", axis=alt.Axis(labelExpr=TIME_LABEL_EXPR)),
        color=alt.Color("part:N", scale=alt.Scale(domain=parts, range=_PART_COLORS), sort=parts, title="part",
                        legend=alt.Legend(orient="bottom", columns=5)),
        order=alt.Order("part_order:Q"),
        tooltip=tips,
    ).properties(width=width, height=height)
    # each panel on its own scale: the cheapest policy's parts are a sliver on the dearest one's axis
    return chart.facet(facet=alt.Facet("policy:N", sort=list(policies), title=None), columns=columns).resolve_scale(
        y="independent").properties(
        title=chart_title("Where the cost goes", "breakdown of the expected cost per WP fault, stacked; "
                                                 "each panel on its own scale"))


def _axis(name: str, log: bool, domain: Sequence[float] | None = None):
    e = registry.NUMERIC[name]
    kw = {"domain": [float(d) for d in domain]} if domain is not None else {}
    scale = alt.Scale(type="log", nice=False, **kw) if log else alt.Scale(zero=False, nice=False, **kw)
    # a time axis writes its unit on every tick (100 ns, 20 us, 5 ms): a "(s)" title would contradict them
    return scale, (name if e.unit in ("s", "ns") else f"{name} ({e.unit})")


def _axis_format(name: str, domain: Sequence[float] | None):
    """An axis of ``name``: CPU counts ticked at whole powers of two (none below 1), times in the
    report's one time format."""
    e = registry.NUMERIC[name]
    if e.unit == "CPUs" and domain is not None:
        return alt.Axis(values=cpu_ticks(max(1.0, float(domain[0])), float(domain[1])))
    if e.unit in ("ns", "s"):
        expr = TIME_LABEL_EXPR if e.unit == "ns" else TIME_LABEL_EXPR.replace("datum.value", "(datum.value * 1e9)")
        return alt.Axis(labelExpr=log_labels(expr) if axis_is_log(name) else expr)
    return alt.Axis()


#: the shade of a decision-map cell whose cheapest policy wins by nothing (1: by the cap or more)
_FAINTEST = 0.2
#: the probability of the cheapest below which a decision-map cell is drawn faintest: a coin toss
_COIN_TOSS = 0.5


def _map_fill(candidates: Sequence[str], margin_cap_pct: float, shade: str = "margin") -> dict[str, str]:
    """Vega ``calculate`` expressions for a map cell's opaque colour: the cheapest candidate's
    colour mixed with white, from :data:`_FAINTEST` of it to all of it: by its margin over the
    runner-up (0 .. ``margin_cap_pct``) or, with ``shade="probability"``, by the probability that
    it is the cheapest (:data:`_COIN_TOSS` .. 1)."""
    if shade == "probability":
        field, lo, span = "datum.p_cheapest", _COIN_TOSS, 1 - _COIN_TOSS
    else:
        field, lo, span = "datum.margin_pct", 0.0, float(margin_cap_pct)
    shade_expr = (f"(isValid({field}) && !isNaN({field}) ? clamp({_FAINTEST} + "
                  f"{1 - _FAINTEST} * ({field} - {lo!r}) / {span!r}, {_FAINTEST}, 1) : {_FAINTEST})")
    fill = "'#ffffff'"
    for p in reversed(list(candidates)):
        rgb = [int(policy_color(p)[i:i + 2], 16) for i in (1, 3, 5)]
        mixed = " + ',' + ".join(f"round(255 - datum._shade * {255 - c})" for c in rgb)
        fill = f"(datum.cheapest === '{p}' ? 'rgb(' + {mixed} + ')' : {fill})"
    return {"_shade": shade_expr, "_fill": fill}


def decision_map_chart(cells, lines: Sequence = (), *, x: str, y: str, x_log: bool, y_log: bool,
                       x_domain: Sequence[float] | None = None, y_domain: Sequence[float] | None = None,
                       candidates: Sequence[str] = CANDIDATES, against: tuple[str, str] = DEFAULT_AGAINST,
                       width: int = 480, height: int = 360, margin_cap_pct: float = 50.0, shade: str = "margin",
                       draws: int | None = None, seed: int | None = None, measured_up_to: int | None = None):
    """Cells coloured by the cheapest candidate and shaded by its margin over the runner-up
    (faint: the choice barely matters), with the break-even line of ``against`` drawn on top.
    ``shade="probability"``: shaded instead by the probability that the cell's cheapest policy is
    the cheapest over the parameters' intervals (faint: a coin toss; full: robust), from the
    cells' ``p_cheapest`` (``draws``/``seed`` named in the subtitle). ``measured_up_to``: on a
    ``remote_cpus`` axis, a rule where the measured shootdown target counts end.

    ``cells``: :attr:`DecisionMap.cells` or a live source with those columns; ``lines``: sources
    with the columns of :attr:`DecisionMap.line`.
    """
    if shade not in ("margin", "probability"):
        raise ValueError(f"shade={shade!r}: 'margin' or 'probability'")
    prob = shade == "probability"
    xs, xt = _axis(x, x_log, x_domain)
    ys, yt = _axis(y, y_log, y_domain)
    base = _base(cells)
    edges = dict(x=alt.X(f"{x}_lo:Q", scale=xs, title=xt, axis=_axis_format(x, x_domain)), x2=f"{x}_hi:Q",
                 y=alt.Y(f"{y}_lo:Q", scale=ys, title=yt, axis=_axis_format(y, y_domain)), y2=f"{y}_hi:Q")
    tips = [alt.Tooltip(f"{x}:Q", format=",.4~g"), alt.Tooltip(f"{y}:Q", format=",.4~g"),
            alt.Tooltip("cheapest:N"), alt.Tooltip("cheapest_ns:Q", format=",.0f"),
            alt.Tooltip("runner_up:N"), alt.Tooltip("margin_ns:Q", format=",.0f"),
            alt.Tooltip("margin_pct:Q", format=".1f")]
    if not isinstance(cells, pd.DataFrame):  # live cells: every tooltip is re-encoded on every move
        tips = [alt.Tooltip("cheapest:N"), alt.Tooltip("runner_up:N")]
    if prob:
        tips += [alt.Tooltip("p_cheapest:Q", format=".3f", title="P(cheapest is cheapest)"),
                 alt.Tooltip("most_likely:N", title="most often cheapest")]
    # Each cell is opaque, its colour already mixed with white by the margin, and stroked in that
    # same colour: neighbouring cells overlap by a hairline, so no seam of background (or axis
    # grid) shows between them. Translucent cells could not overlap without darker seams instead.
    # the fill is computed once in the cells' own pipeline, which every layer below reads
    base = base.transform_calculate(**_map_fill(candidates, margin_cap_pct, shade))
    rect = base.mark_rect(
        strokeWidth=1, clip=True).encode(
        **edges,
        color=alt.Color("_fill:N", scale=None), stroke=alt.Stroke("_fill:N", scale=None),
        tooltip=tips,
    )
    layers = [rect]
    for src in lines:
        layers.append(_base(src).mark_line(color="black", strokeDash=[6, 3], strokeWidth=2).encode(
            x=alt.X(f"{x}:Q", scale=xs), y=alt.Y(f"{y}:Q", scale=ys), detail="along:N", order="order:Q"))
    # where the two policies never change order there is no dashed line: say so on the map
    layers.append(base.transform_aggregate(lo="min(against_diff_ns)", hi="max(against_diff_ns)").transform_calculate(
        msg=f"datum.lo < 0 && datum.hi > 0 ? '' : 'no dashed line: {against[0]} and {against[1]} do not change "
            f"order on this map (' + (datum.hi <= 0 ? '{against[0]}' : '{against[1]}') + ' is cheaper everywhere)'"
    ).mark_text(align="center", baseline="top", fontSize=11, color="#222", dy=6).encode(
        x=alt.value(width / 2), y=alt.value(0), text="msg:N"))
    layers += _map_key(candidates, margin_cap_pct, shade, width)
    subtitle = [f"colour: the cheapest of {', '.join(candidates)}", f"dashed: where {against[0]} = {against[1]}"]
    if prob:
        how = f" ({draws:,} draws, seed {seed})" if draws else ""
        subtitle.append(f"shade: probability that it is the cheapest over the parameters' intervals{how}: "
                        "faint = coin toss, full = robust")
    else:
        subtitle[1] += "; shade: the cheapest's margin over the runner-up"
    if measured_up_to is not None and x == "remote_cpus":
        mark = alt.Chart(pd.DataFrame({x: [float(max(measured_up_to, 1))],
                                       "label": [f"measured up to {measured_up_to} targets; extrapolated to the right"]}))
        layers.append(mark.mark_rule(color="#333", strokeDash=[2, 2], strokeWidth=1.5).encode(
            x=alt.X(f"{x}:Q", scale=xs), tooltip=["label:N"]))
        layers.append(mark.mark_text(align="left", baseline="bottom", dx=4, dy=-4, color="#333", fontSize=11).encode(
            x=alt.X(f"{x}:Q", scale=xs), y=alt.value(height), text=alt.value("extrapolated \u2192")))
        subtitle.append(f"dotted: the shootdown was measured at up to {measured_up_to} target CPUs; beyond it, extrapolated")
    return alt.layer(*layers).properties(width=width, height=height, title=chart_title(
        f"Cheapest policy over {x} and {y}", subtitle, width=100))


#: how many shades of each policy the decision map's key shows
KEY_STEPS = 6


def _map_key(candidates: Sequence[str], margin_cap_pct: float, shade: str, width: int) -> list:
    """The decision map's key, drawn beside the plot with the cells' own colours: one row per
    candidate, one swatch per shade (margin over the runner-up, or the probability that it is the
    cheapest), so the key shows exactly the colours the map shows."""
    if shade == "probability":
        levels = [_COIN_TOSS + (1 - _COIN_TOSS) * i / (KEY_STEPS - 1) for i in range(KEY_STEPS)]
        field, head, fmt = "p_cheapest", "P(it is the cheapest)", lambda v: f"{v:.1f}"
    else:
        levels = [margin_cap_pct * i / (KEY_STEPS - 1) for i in range(KEY_STEPS)]
        field, head, fmt = "margin_pct", "margin over the runner-up", lambda v: f"{v:.0f}%"
    sw, gap, left = 16, 2, width + 18
    label_w = 118
    rows = []
    for i, p in enumerate(candidates):
        for k, v in enumerate(levels):
            rows.append({"cheapest": p, field: v, "px": left + label_w + k * (sw + gap), "py": 34 + i * (sw + gap)})
    key = alt.Chart(pd.DataFrame(rows))
    swatches = key.transform_calculate(**_map_fill(candidates, margin_cap_pct, shade)).mark_rect(
        width=sw, height=sw, strokeWidth=1).encode(
        x=alt.X("px:Q", scale=None), y=alt.Y("py:Q", scale=None), color=alt.Color("_fill:N", scale=None),
        stroke=alt.Stroke("_fill:N", scale=None))
    names = pd.DataFrame({"cheapest": list(candidates), "px": [left + label_w - 12] * len(candidates),
                          "py": [34 + i * (sw + gap) for i in range(len(candidates))]})
    labels = alt.Chart(names).mark_text(align="right", baseline="middle", fontSize=11).encode(
        x=alt.X("px:Q", scale=None), y=alt.Y("py:Q", scale=None), text="cheapest:N")
    ticks = pd.DataFrame({"t": [fmt(levels[0]), fmt(levels[-1])],
                          "px": [left + label_w, left + label_w + (KEY_STEPS - 1) * (sw + gap)],
                          "py": [34 + len(candidates) * (sw + gap) - 2] * 2})
    tick_text = alt.Chart(ticks).mark_text(baseline="top", fontSize=10, color="#444").encode(
        x=alt.X("px:Q", scale=None), y=alt.Y("py:Q", scale=None), text="t:N")
    title = alt.Chart(pd.DataFrame({"t": ["cheapest policy,", f"shaded by {head}"], "px": [left, left],
                                    "py": [4, 18]})).mark_text(
        align="left", baseline="middle", fontSize=11, fontWeight="bold").encode(
        x=alt.X("px:Q", scale=None), y=alt.Y("py:Q", scale=None), text="t:N")
    return [swatches, labels, tick_text, title]


def decision_map_figure(dm: DecisionMap, **kw):
    """:func:`decision_map_chart` of a computed :class:`DecisionMap` (with its probabilities, if
    it has them, given ``shade="probability"``)."""
    c = dm.cells
    if kw.get("shade") == "probability":
        if "p_cheapest" not in c.columns:
            raise ValueError("this decision map has no probabilities: build it with uncertain=...")
        kw.setdefault("draws", dm.draws)
        kw.setdefault("seed", dm.seed)
    return decision_map_chart(c, [dm.line], x=dm.x, y=dm.y, x_log=dm.x_log, y_log=dm.y_log,
                              x_domain=(c[f"{dm.x}_lo"].min(), c[f"{dm.x}_hi"].max()),
                              y_domain=(c[f"{dm.y}_lo"].min(), c[f"{dm.y}_hi"].max()),
                              candidates=dm.candidates, against=dm.against, **kw)


def residency_chart(source, width: int = 320, height: int = 240):
    """Residency against the gap: closed-form lines per gap model, simulation points with their
    intervals on top. Time gaps and the fixed add count get a panel each. ``source``: a frame
    from :func:`residency_data` (plus :func:`costmodel.validate.residency_simulated` rows) or a named source."""
    is_frame = isinstance(source, pd.DataFrame)
    panels = []
    for param, title in (("wp_gap_s", "gap between install and WP fault (s)"),
                         ("adds_between", "adds between install and WP fault (folios)")):
        if is_frame and not (source["gap_param"] == param).any():
            continue
        base = _base(source).transform_filter(f"datum.gap_param == '{param}'")
        scale = alt.Scale(type="log") if param == "wp_gap_s" else alt.Scale(zero=True)
        axis = alt.Axis(labelExpr=log_labels(TIME_LABEL_EXPR.replace("datum.value", "(datum.value * 1e9)")),
                        labelOverlap="greedy", labelSeparation=6) if param == "wp_gap_s" else alt.Axis()
        color = alt.Color("gap_model:N", title="gap model",
                          scale=alt.Scale(domain=["fixed_count", "fixed_time", "exponential_time"],
                                          range=["#8c564b", "#1f77b4", "#ff7f0e"]))
        x = alt.X("gap:Q", scale=scale, title=title, axis=axis)
        y = alt.Y("residency:Q", scale=alt.Scale(domain=[0, 1]), title="P(page still in its batch)")
        line = base.transform_filter("datum.source == 'closed form'").mark_line().encode(
            x=x, y=y, color=color, tooltip=[alt.Tooltip("gap_model:N"), alt.Tooltip("gap:Q", format=".4~g"),
                                            alt.Tooltip("residency:Q", format=".4f")])
        layers = [line]
        if not is_frame or (source["source"] == "simulation").any():
            sim = base.transform_filter("datum.source == 'simulation'")
            layers.append(sim.mark_rule().encode(x=x, y="ci_low:Q", y2="ci_high:Q", color=color))
            layers.append(sim.mark_point(filled=True, size=40, shape="diamond").encode(
                x=x, y=y, color=color,
                tooltip=[alt.Tooltip("gap_model:N"), alt.Tooltip("gap:Q", format=".4~g"),
                         alt.Tooltip("residency:Q", format=".4f", title="simulated"),
                         alt.Tooltip("ci_low:Q", format=".4f"), alt.Tooltip("ci_high:Q", format=".4f")]))
        panels.append(alt.layer(*layers).properties(width=width, height=height))
    return alt.hconcat(*panels).properties(title=alt.Title(
        "Residency: is the page still in its CPU's add batch at the WP fault?",
        subtitle="lines: closed form; diamonds with bars: simulation and its confidence interval"))


def _symlog_ticks(lo: float, hi: float, constant: float = 100.0) -> list[float]:
    """Ticks of a symmetric-log axis over ``lo`` .. ``hi``: 0 and each power of ten from
    ``constant`` up, either side as the range needs, thinned so that at most about seven remain
    (the labels of an axis ticked at every power of ten run together)."""
    out = [0.0]
    for sign, end in ((1.0, hi), (-1.0, -lo)):
        if end <= constant / 2:
            continue
        k_hi = int(np.ceil(np.log10(end)))
        out += [sign * 10.0 ** k for k in range(int(np.log10(constant)), k_hi + 1) if 10.0 ** k <= end * 1.0001]
    step = max(1, int(np.ceil((len(out) - 1) / 6)))
    pos = sorted(v for v in out if v > 0)[::step]
    neg = sorted((v for v in out if v < 0), reverse=True)[::step]
    return sorted([0.0, *pos, *neg])


def tornado_chart(df: pd.DataFrame, cheapest: str | None = None, width: int = 480):
    """Tornado of the verdict: for each parameter (most decisive on top), the bar spans the cost
    of the runner-up that can overtake as that parameter alone crosses its interval (named on the
    row: a candidate that costs the verdict's plus a constant never is) minus the verdict's; the
    dot is the point itself; a bar reaching left of the zero line flips the verdict. The x axis
    is symmetric-log (ns), so bars of tens of ns and of milliseconds both show."""
    df = df.copy()
    df["row"] = [f"{p}  vs {r}" if r else f"{p}  (moves all alike)"
                 for p, r in zip(df["parameter"], df.get("rival", [""] * len(df)))]
    lo = min(0.0, float(df["margin_min"].min())) if len(df) else 0.0
    hi = max(0.0, float(df["margin_max"].max())) if len(df) else 1.0
    scale = alt.Scale(type="symlog", constant=100)
    base = alt.Chart(df)
    y = alt.Y("row:N", sort=list(df["row"]), title=None, axis=alt.Axis(labelLimit=320))
    x = alt.X("margin_min:Q", scale=scale,
              title="cost of the runner-up named on the row minus the verdict's; below 0: the verdict flips",
              axis=alt.Axis(labelExpr=TIME_LABEL_EXPR, values=_symlog_ticks(lo, hi), labelOverlap=True,
                            labelFlush=False))
    tips = [alt.Tooltip("parameter:N"), alt.Tooltip("rival:N", title="against"), alt.Tooltip("interval:N"),
            alt.Tooltip("flip:N"), alt.Tooltip("margin_min:Q", format=",.0f"),
            alt.Tooltip("margin_max:Q", format=",.0f"),
            alt.Tooltip("gain:Q", format=".4f", title="gain in P(verdict) if known")]
    color = alt.Color("origin:N", scale=alt.Scale(domain=["measured", "assumed or varied"],
                                                  range=["#2ca02c", "#ff7f0e"]), title="interval",
                      legend=alt.Legend(orient="bottom"))
    bars = base.mark_bar(height=12).encode(x=x, x2="margin_max:Q", y=y, color=color, tooltip=tips)
    dots = base.mark_point(filled=True, color="black", size=30).encode(
        x=alt.X("margin_at_value:Q", scale=scale), y=y, tooltip=tips)
    zero = alt.Chart(pd.DataFrame({"zero": [0.0]})).mark_rule(color="#b00", strokeWidth=1.5).encode(x="zero:Q")
    text = base.mark_text(align="left", dx=6, fontSize=10, color="#444").encode(
        x=alt.X("margin_max:Q", scale=scale), y=y, text="flip:N")
    who = f" ({cheapest})" if cheapest else ""
    return alt.layer(bars, dots, zero, text).properties(
        width=width, height=alt.Step(22), title=alt.Title(
            f"What would flip the verdict{who}",
            subtitle=["each parameter alone across its interval, the others at their values, against the "
                      "candidate that could overtake;",
                      "ranked by how much knowing it would raise P(verdict); text: where a flip lies"]))


#: what a calibration record's observed values are, by the unit in their column name
_MEASURED_AS = {"ns": "measured time", "fraction": "measured fraction of trials that copied"}


def _measured_axis(unit: str, residual: bool = False, log: bool = False):
    """The y axis of a calibration panel, named by what was measured (its unit), not by the
    parameter fitted: times in the report's time format (``log``: a logarithmic axis)."""
    what = _MEASURED_AS.get(unit, f"measured ({unit})")
    title = f"residual ({'time' if unit == 'ns' else unit})" if residual else what
    if unit != "ns":
        return alt.Axis(title=title)
    if log:  # ticked at the powers of ten only: a log axis over decades is otherwise a comb
        return alt.Axis(title=title + " (log)", labelExpr=TIME_LABEL_EXPR, values=[10.0 ** k for k in range(0, 13)],
                        grid=True)
    return alt.Axis(title=title, labelExpr=TIME_LABEL_EXPR)


def calibration_chart(df: pd.DataFrame, width: int = 205, height: int = 180, columns: int = 3):
    """Per fit: measured points with their 95 % intervals and the fitted values joined as a
    curve (top), residuals (bottom); ``columns`` fits to a row, so the figure stays as wide as a
    page."""
    panels = []
    for fit, sub in df.groupby("fit", sort=False):
        unit = sub["unit"].iloc[0]
        x_name = sub["x_name"].iloc[0]
        nominal = sub["x_kind"].iloc[0] == "nominal"
        base = alt.Chart(sub)
        x_title = f"{x_name} ({registry.NUMERIC[x_name].unit})" if x_name in registry.NUMERIC else x_name
        if x_name == "target_cpus":
            x_title = "target CPUs"
        # long measurement names in short lines (short_measurement_label) and shown whole
        x = alt.X("x_label:N", title=x_title, axis=alt.Axis(
            labelAngle=-50, labelLimit=200, labelFontSize=9, labelAlign="right", labelBaseline="top",
            labelExpr="split(datum.label, '\\n')")) if nominal \
            else alt.X("x:Q", title=x_title, scale=alt.Scale(zero=False))
        has_series = sub["series"].ne("").any()
        color = alt.Color("series:N", title=None, legend=alt.Legend(orient="bottom")) if has_series \
            else alt.value("#1f77b4")
        spread = sub[["observed", "fitted"]].to_numpy(dtype=float)
        spread = spread[np.isfinite(spread)]
        # measured times three or more decades apart (60 us and 950 ms): on a linear axis the small
        # ones sit at 0, so the panel goes logarithmic
        log_y = unit == "ns" and spread.size > 1 and spread.min() > 0 and spread.max() / spread.min() >= 1e3
        y = alt.Y("observed:Q", axis=_measured_axis(unit, log=log_y),
                  scale=alt.Scale(type="log") if log_y else alt.Undefined)
        layers = []
        if sub["ci_low"].notna().any():
            layers.append(alt.Chart(sub[sub["ci_low"].notna()]).mark_rule().encode(
                x=x, y=alt.Y("ci_low:Q", scale=alt.Scale(type="log") if log_y else alt.Undefined), y2="ci_high:Q",
                color=color))
        layers.append(base.mark_point(filled=True).encode(
            x=x, y=y, color=color,
            tooltip=[alt.Tooltip("x_label:N", title=x_name), "series:N", alt.Tooltip("observed:Q", format=",.4~g"),
                     alt.Tooltip("fitted:Q", format=",.4~g"), alt.Tooltip("residual:Q", format=",.3~g")]))
        if nominal:  # named measurements: the fitted value of each, as a tick, not a curve
            layers.append(base.mark_tick(color="black", thickness=2).encode(x=x, y="fitted:Q"))
        else:
            layers.append(base.mark_line(color="black").encode(x=x, y="fitted:Q", detail="series:N"))
        top = alt.layer(*layers).properties(width=width, height=height, title=fit)
        resid = base.mark_point(filled=True).encode(x=x, y=alt.Y("residual:Q", axis=_measured_axis(unit, True)),
                                                    color=color).properties(width=width, height=70)
        zero = alt.Chart(pd.DataFrame({"y": [0.0]})).mark_rule(color="#888").encode(y="y:Q")
        panels.append(alt.vconcat(top, alt.layer(resid, zero)))
    return alt.concat(*panels, columns=columns).resolve_scale(color="independent").properties(title=alt.Title(
        "Calibration fits", subtitle="points: the measured statistic of each fit with its 95% interval; line or "
                                     "tick: the fit; below: residuals"))


def parameter_sets_chart(df: pd.DataFrame, width: int = 420):
    """Each machine parameter's value and interval per set, on a log axis: a calibrated set beside
    the reference sets."""
    d = df[df["value"] > 0]
    base = alt.Chart(d).encode(y=alt.Y("set:N", title=None))
    x = alt.X("value:Q", scale=alt.Scale(type="log"), title="value")
    bars = base.transform_filter("isValid(datum.ci_low) && datum.ci_low > 0").mark_rule().encode(
        x=alt.X("ci_low:Q", scale=alt.Scale(type="log")), x2="ci_high:Q", color="source:N")
    pts = base.mark_point(filled=True, size=50).encode(
        x=x, color=alt.Color("source:N", scale=alt.Scale(domain=["measured", "published", "assumed"],
                                                         range=["#2ca02c", "#1f77b4", "#999999"])),
        tooltip=["set:N", "parameter:N", alt.Tooltip("value:Q", format=",.4~g"), "unit:N",
                 alt.Tooltip("ci_low:Q", format=",.4~g"), alt.Tooltip("ci_high:Q", format=",.4~g"), "source:N"])
    return alt.layer(bars, pts).properties(width=width, height=alt.Step(14)).facet(
        row=alt.Row("parameter:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left"))
    ).resolve_scale(x="independent").properties(title="Parameter sets side by side")


def probe_validation_chart(df: pd.DataFrame, width: int = 420, height: int = 260):
    """The unnecessary-copy probe's copy fraction against adds_between: model (line), simulation
    (diamonds with intervals) and, where measured, the kernel (circles with Wilson intervals),
    one panel per ``drained_first``."""
    d = df.copy()
    d["drained_first"] = d["drained_first"].map({True: "drained first (page at position 0)",
                                                 False: "no drain first (stationary position)"})
    base = alt.Chart(d)
    x = alt.X("adds_between:Q", title="adds between install and write (folios)")
    layers = [base.mark_line(color="black").encode(x=x, y=alt.Y("model:Q", title="P(copy), cross-CPU write")),
              base.mark_rule(color="#ff7f0e").encode(x=x, y="sim_low:Q", y2="sim_high:Q"),
              base.mark_point(shape="diamond", filled=True, color="#ff7f0e", size=50).encode(
                  x=x, y="sim:Q", tooltip=["adds_between:Q", alt.Tooltip("model:Q", format=".4f"),
                                           alt.Tooltip("sim:Q", format=".4f")])]
    if "measured" in d.columns and d["measured"].notna().any():
        layers += [base.mark_rule(color="#2ca02c").encode(x=x, y="measured_low:Q", y2="measured_high:Q"),
                   base.mark_circle(color="#2ca02c", size=60).encode(
                       x=x, y="measured:Q", tooltip=["adds_between:Q", "n:Q", alt.Tooltip("measured:Q", format=".4f")])]
    return alt.layer(*layers).properties(width=width, height=height).facet(
        column=alt.Column("drained_first:N", title=None)).properties(title=alt.Title(
            "Unnecessary copies of a cross-CPU write: model, simulation, kernel",
            subtitle="line: model (drain_local); diamonds: simulation; circles: the probe on a real kernel"))


# ---- machines side by side, and the model against whole workloads ------------------------------

#: Vega expression formatting a time in ns the way the report's tables do (:func:`format_ns`):
#: ns below 10 us, then us, ms and s, four significant digits, never an exponent
TIME_LABEL_EXPR = (
    "datum.value == 0 ? '0' : abs(datum.value) < 1e4 ? format(datum.value, ',.4~r') + ' ns'"
    " : abs(datum.value) < 1e7 ? format(datum.value / 1e3, ',.4~r') + ' \u00b5s'"
    " : abs(datum.value) < 1e10 ? format(datum.value / 1e6, ',.4~r') + ' ms'"
    " : format(datum.value / 1e9, ',.4~r') + ' s'")


def log_labels(expr: str) -> str:
    """``expr`` (a label expression of ``datum.value``) shown only at 1, 2 and 5 times a power of
    ten: a log axis ticked at every digit stays readable."""
    m = "(datum.value / pow(10, floor(log(datum.value) / LN10 + 1e-9)))"
    return f"datum.value > 0 && abs({m} - round({m})) < 1e-6 && indexof([1, 2, 5], round({m})) >= 0 ? ({expr}) : ''"


#: :data:`TIME_LABEL_EXPR` for a log axis (labels at 1, 2 and 5 times a power of ten)
LOG_TIME_LABEL_EXPR = log_labels(TIME_LABEL_EXPR)


def _log_ticks(lo: float, hi: float) -> list[float]:
    """1, 2 and 5 times each power of ten from ``lo`` to ``hi``: the ticks of a log axis."""
    out = []
    for k in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1):
        out += [m * 10.0 ** k for m in (1, 2, 5) if lo <= m * 10.0 ** k <= hi]
    return out


def _time_ticks(high: float) -> list[float]:
    """0 and the powers of ten up to ``high`` (ns): the ticks of a symmetric-log time axis."""
    top = max(1, int(np.ceil(np.log10(max(high, 10.0)))))
    return [0.0] + [10.0 ** k for k in range(1, top + 1)]


#: how an interval's source is drawn wherever sets are compared
SOURCE_ORDER = ("measured", "published", "assumed")
_SOURCE_SHAPES = ("circle", "diamond", "triangle-down")


def machine_comparison_chart(df: pd.DataFrame, width: int = 520, title: str | None = None):
    """Each machine cost per machine: a point at the value and a rule across its interval, one
    row per parameter, the machines side by side within it. Measured values are filled circles
    on solid rules; published and assumed ones are hollow on dashed rules. The axis is
    symmetric-log (ns), so a value or an interval end of 0 stays on the chart."""
    machines = list(dict.fromkeys(df["machine"]))
    params = list(dict.fromkeys(df["parameter"]))
    high = float(np.nanmax(df[["value_ns", "ci_high_ns"]].to_numpy())) if len(df) else 10.0
    scale = alt.Scale(type="symlog", constant=1, domain=[0, 10.0 ** np.ceil(np.log10(max(high, 10.0)))], nice=False)
    x_axis = alt.Axis(values=_time_ticks(high), labelExpr=TIME_LABEL_EXPR, grid=True, labelFlush=False)
    y = alt.Y("parameter:N", sort=params, title=None, axis=alt.Axis(labelLimit=300))
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    color = alt.Color("machine:N", sort=machines, title="machine (parameter set)",
                      scale=alt.Scale(domain=machines, range=[colors[i % len(colors)] for i in range(len(machines))]),
                      legend=alt.Legend(orient="bottom", columns=1, labelLimit=400))
    y_off = alt.YOffset("machine:N", sort=machines)
    src = alt.Shape("source:N", scale=alt.Scale(domain=list(SOURCE_ORDER), range=list(_SOURCE_SHAPES)),
                    title="value", legend=alt.Legend(orient="bottom"))
    tips = [alt.Tooltip("machine:N"), alt.Tooltip("parameter:N"), alt.Tooltip("source:N"),
            alt.Tooltip("value_ns:Q", format=",.4~r", title="value (ns)"),
            alt.Tooltip("ci_low_ns:Q", format=",.4~r", title="interval low (ns)"),
            alt.Tooltip("ci_high_ns:Q", format=",.4~r", title="interval high (ns)")]
    base = alt.Chart(df)
    rules = base.transform_filter("isValid(datum.ci_low_ns) && isFinite(datum.ci_low_ns)").mark_rule(
        strokeWidth=2).encode(
        x=alt.X("ci_low_ns:Q", scale=scale, axis=x_axis, title="cost (symmetric log: 0 stays on the axis)"),
        x2="ci_high_ns:Q", y=y, yOffset=y_off, color=color,
        strokeDash=alt.StrokeDash("measured:N", scale=alt.Scale(domain=[True, False], range=[[1, 0], [4, 3]]),
                                  legend=None), tooltip=tips)
    # measured: filled; published or assumed: hollow (two layers, so each legend symbol is drawn plainly)
    points = [base.transform_filter("datum.measured" if filled else "!datum.measured").mark_point(
        size=60, strokeWidth=1.5, filled=filled, opacity=0.9).encode(
        x=alt.X("value_ns:Q", scale=scale, axis=x_axis), y=y, yOffset=y_off, color=color, shape=src, tooltip=tips)
        for filled in (True, False)]
    return alt.layer(rules, *points).properties(
        width=width, height=alt.Step(9),  # per machine within a parameter's row
        title=alt.Title(title or "Machine costs across the parameter sets",
                        subtitle=["point: the value; rule: its interval; filled on a solid rule: measured, "
                                  "hollow on a dashed rule: published or assumed",
                                  "copy_ns is page_bytes / copy_bandwidth_gbps; axis symmetric-log, so 0 shows"]))


def prediction_chart(df: pd.DataFrame, width: int = 360, height: int = 320, tolerance: float | None = None):
    """Left: the model's expected cost per WP fault against the measured mean, one point per
    configuration, with the measured 95% interval (vertical) and the predicted one from the
    machine parameters' intervals (horizontal), on log axes with the line y = x (and, given
    ``tolerance``, its band). Right: the model's copy probability against the measured copy
    fraction with its Wilson interval, and y = x. Hollow grey: configurations where the write
    took no WP fault, which the model does not price."""
    kinds = list(dict.fromkeys([k for k in ("workload", "swap_cow") if (df["kind"] == k).any()]
                               + [k for k in df["kind"] if k not in ("workload", "swap_cow")]))
    palette = {"workload": "#1f77b4", "swap_cow": "#d62728"}
    color = alt.Color("kind:N", title=None, sort=kinds,
                      scale=alt.Scale(domain=kinds, range=[palette.get(k, "#999999") for k in kinds]),
                      legend=alt.Legend(orient="bottom", columns=1))
    cost_vals = df[["measured_ci_low", "measured_ci_high", "predicted_ci_low", "predicted_ci_high",
                    "measured_ns", "predicted_ns"]].to_numpy(dtype=float)
    cost_vals = cost_vals[np.isfinite(cost_vals) & (cost_vals > 0)]
    lo = 10.0 ** np.floor(np.log10(cost_vals.min())) if cost_vals.size else 10.0
    hi = 10.0 ** np.ceil(np.log10(cost_vals.max())) if cost_vals.size else 1e5
    scale = alt.Scale(type="log", domain=[lo, hi], nice=False)
    axis = alt.Axis(labelExpr=TIME_LABEL_EXPR, values=_log_ticks(lo, hi))
    tips = [alt.Tooltip("label:N", title="configuration"), alt.Tooltip("kind:N"),
            alt.Tooltip("measured_ns:Q", format=",.0f", title="measured mean (ns)"),
            alt.Tooltip("measured_ci_low:Q", format=",.0f"), alt.Tooltip("measured_ci_high:Q", format=",.0f"),
            alt.Tooltip("predicted_ns:Q", format=",.0f", title="predicted (ns)"),
            alt.Tooltip("predicted_ci_low:Q", format=",.0f"), alt.Tooltip("predicted_ci_high:Q", format=",.0f"),
            alt.Tooltip("within_tolerance:N")]
    base = alt.Chart(df)
    x = alt.X("predicted_ns:Q", scale=scale, axis=axis, title="predicted cost per WP fault (model)")
    y = alt.Y("measured_ns:Q", scale=scale, axis=axis, title="measured mean cost per WP fault")
    diag = pd.DataFrame({"a": [lo, hi]})
    layers = []
    if tolerance:
        band = pd.DataFrame({"a": [lo, hi], "lo": [lo / (1 + tolerance), hi / (1 + tolerance)],
                             "hi": [lo / (1 - tolerance), hi / (1 - tolerance)]})
        layers.append(alt.Chart(band).mark_area(color="#2ca02c", opacity=0.12).encode(
            x=alt.X("a:Q", scale=scale), y=alt.Y("lo:Q", scale=scale), y2="hi:Q"))
    layers += [
        alt.Chart(diag).mark_line(color="#333", strokeDash=[5, 3]).encode(x=alt.X("a:Q", scale=scale),
                                                                          y=alt.Y("a:Q", scale=scale)),
        base.mark_rule(opacity=0.7).encode(x=x, y=alt.Y("measured_ci_low:Q", scale=scale), y2="measured_ci_high:Q",
                                           color=color),
        base.mark_rule(opacity=0.7).encode(x=alt.X("predicted_ci_low:Q", scale=scale), x2="predicted_ci_high:Q",
                                           y=y, color=color),
        *[base.transform_filter("datum.priced" if filled else "!datum.priced").mark_point(
            size=45, strokeWidth=1.5, filled=filled, opacity=0.9).encode(x=x, y=y, color=color, tooltip=tips)
          for filled in (True, False)],
    ]
    sub = ["dashed: y = x; vertical: measured 95% interval",
           "horizontal: predicted 95% interval (parameters, drift, model error, measured noise)"]
    if tolerance:
        sub = [*sub, f"green band: within {tolerance:.0%} of the measured mean"]
    cost = alt.layer(*layers).properties(width=width, height=height, title=alt.Title(
        "Cost per WP fault: model against measurement", subtitle=sub))
    unit = pd.DataFrame({"a": [0.0, 1.0]})
    pscale = alt.Scale(domain=[-0.02, 1.02], nice=False)
    px = alt.X("model_p_copy:Q", scale=pscale, title="model: P(copy)")
    py = alt.Y("copied:Q", scale=pscale, title="measured copy fraction")
    ptips = [alt.Tooltip("label:N", title="configuration"), alt.Tooltip("model_p_copy:Q", format=".3f"),
             alt.Tooltip("copied:Q", format=".3f"), alt.Tooltip("copied_ci_low:Q", format=".3f"),
             alt.Tooltip("copied_ci_high:Q", format=".3f"), alt.Tooltip("copy_inside:N")]
    copies = alt.layer(
        alt.Chart(unit).mark_line(color="#333", strokeDash=[5, 3]).encode(x=alt.X("a:Q", scale=pscale),
                                                                          y=alt.Y("a:Q", scale=pscale)),
        base.transform_filter("isValid(datum.copied)").mark_rule(opacity=0.7).encode(
            x=px, y=alt.Y("copied_ci_low:Q", scale=pscale), y2="copied_ci_high:Q", color=color),
        *[base.transform_filter(f"isValid(datum.copied) && {'' if filled else '!'}datum.priced").mark_point(
            size=45, strokeWidth=1.5, filled=filled, opacity=0.9).encode(x=px, y=py, color=color, tooltip=ptips)
          for filled in (True, False)],
    ).properties(width=int(width * 0.75), height=height, title=alt.Title(
        "Copies: model against measurement", subtitle="vertical: the measured fraction's Wilson interval"))
    return alt.hconcat(cost, copies).resolve_scale(x="independent", y="independent")


# ---- the probe's copies: model, simulation, kernel, with a legend --------------------------------


def probe_chart(long: pd.DataFrame, width: int = 400, height: int = 240):
    """Copy fraction of the probe's cross-CPU write against adds_between, one panel per
    drained_first: the model as a black line, the simulation as orange diamonds and the kernel as
    larger pale green circles under them, each with its interval, and a legend naming them."""
    present = [s for s in PROBE_SOURCES if (long["source"] == s).any()]
    labels = [long.loc[long["source"] == s, "label"].iloc[0] for s in present]
    style = {"model": ("#000000", "stroke"), "simulation": ("#ff7f0e", "diamond"), "kernel": ("#2ca02c", "circle")}
    color = alt.Color("label:N", title=None, sort=labels,
                      scale=alt.Scale(domain=labels, range=[style[s][0] for s in present]),
                      legend=alt.Legend(orient="bottom", direction="vertical", labelLimit=500))
    shape = alt.Shape("label:N", sort=labels, scale=alt.Scale(domain=labels, range=[style[s][1] for s in present]),
                      legend=None)
    x = alt.X("adds_between:Q", title="adds between install and write (folios)")
    y = alt.Y("value:Q", title="P(copy) of a cross-CPU write", scale=alt.Scale(domain=[0, 1]))
    tips = [alt.Tooltip("label:N", title="source"), alt.Tooltip("adds_between:Q"),
            alt.Tooltip("value:Q", format=".4f"), alt.Tooltip("low:Q", format=".4f"), alt.Tooltip("high:Q", format=".4f")]
    base = alt.Chart(long)
    line = base.transform_filter("datum.source == 'model'").mark_line(strokeWidth=1.5).encode(
        x=x, y=y, color=color, tooltip=tips)
    marks = base.transform_filter("datum.source != 'model'")
    rules = marks.mark_rule(strokeWidth=1.5).encode(x=x, y="low:Q", y2="high:Q", color=color)
    # the kernel's circles large and pale under the simulation's small diamonds: where they agree
    # the diamond sits inside its circle, and both stay visible
    kernel = marks.transform_filter("datum.source == 'kernel'").mark_point(filled=True, size=120, opacity=0.45).encode(
        x=x, y=y, color=color, shape=shape, tooltip=tips)
    sim = marks.transform_filter("datum.source == 'simulation'").mark_point(filled=True, size=40, opacity=1).encode(
        x=x, y=y, color=color, shape=shape, tooltip=tips)
    return alt.layer(line, rules, kernel, sim).properties(width=width, height=height).facet(
        column=alt.Column("drained_first:N", title=None, sort="descending")).properties(title=alt.Title(
            "Unnecessary copies of a cross-CPU write: model, simulation, kernel",
            subtitle="each with its interval; the legend names the sources"))


def notebook_setup() -> str:
    """Render charts in notebooks without the network: altair's offline Jupyter renderer (its
    vega libraries come from vl-convert-python) where anywidget is installed; also lifts the
    row limit for the larger maps. Returns the renderer in use."""
    alt.data_transformers.disable_max_rows()
    if importlib.util.find_spec("anywidget") is None:
        return alt.renderers.active
    alt.renderers.enable("jupyter", offline=True)
    return "jupyter (offline)"
