"""Chart sources that compute the model in the browser, for the standalone report.

Each ``*_source`` function returns Altair charts (data + transforms) whose columns are exactly
those of the matching data builder in :mod:`costmodel.charts`, so the same chart builders draw
them. The transforms are the model's own sympy expressions printed by :mod:`costmodel.vegaexpr`;
parameters are Vega-Lite signals, bound to sliders by :func:`slider_params`, so a reader moves a
slider and every live chart recomputes with no kernel behind it.

Where part of an expression cannot be printed (the fixed-time gap needs the incomplete gamma
function; some terms are sums over the batch position), that part is computed here in Python and
handed over as a number or, where a chart axis moves it, a column; the parameters it depends on
are then fixed in that chart (no slider), and :attr:`LiveSource.fixed` says which.

Two kinds of sources. ``cost_source`` and ``map_source`` are the plain ones: every output on every
row, at the set's categorical choices (the benchmark's baseline, and a second route in the tests).
:func:`explore` is what the report draws: selects for the categorical choices (the outputs are
one expression of a few parts, :data:`PARTS`, and the page computes each part for the chosen
combination), every sub-expression computed where it varies (once per slider move as a signal,
per row only what an axis moves, the map's gap-only parts once per grid row), and the map at
:data:`DRAG_MAP_N` cells a side while a slider moves.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Mapping, Sequence

import altair as alt
import numpy as np
import sympy as sp

from . import chartdata, registry
from .axes import CPU_RANGE, LOG_STEP, axis_is_log, axis_values, log_floor, slider_is_log
from .evaluate import evaluate_point
from .model import BREAKDOWN, CANDIDATES, policy_outputs
from .model import costs as _costs
from .model.numeric import lambdify
from .model.residency import fill_after_flush as _fill_after_flush
from .model.residency import held_batch_fill as _held_batch_fill
from .model.residency import residency as _residency
from .vegaexpr import NotPrintable, printable, to_vega, transforms

#: suffix of the slider signal of a log-scale parameter (the parameter's own signal derives from it)
LOG_SUFFIX = "__log10"
#: suffix of the slider signal of a parameter that a rule between parameters may hold back (the
#: parameter's own signal, the one the formulas read, is the feasible value derived from it)
RAW_SUFFIX = "__raw"

#: The rules between parameters as the browser keeps them, derived from :data:`registry.CONSTRAINTS`:
#: held parameter -> (its partner, the rule). Each rule's :meth:`~registry.Constraint.vega_clamp`
#: gives the Vega expression of the held parameter's feasible value (batch_position at most
#: batch_size - 1; cpus raised to remote_cpus + 1, the charts' convention, :func:`registry.raise_cpus`).
VEGA_RULES: dict[str, tuple[str, registry.Constraint]] = {
    c.held: (c.partners[0], c) for c in registry.CONSTRAINTS if len(c.partners) == 1
}


def _as_expr(e) -> sp.Expr:
    """A model expression, or a plain number made one; strings are refused, never parsed."""
    if isinstance(e, sp.Basic):
        return e
    if isinstance(e, bool) or not isinstance(e, (int, float)):
        raise TypeError(f"expected a sympy expression or a number, got {type(e).__name__}")
    return sp.Integer(e) if isinstance(e, int) else sp.Float(e)


def _rule_expr(name: str, value: str, partner_expr: str) -> str:
    """The feasible value of ``name`` (given as the Vega expression ``value``) against its partner,
    whose value is the Vega expression ``partner_expr``."""
    _, rule = VEGA_RULES[name]
    return rule.vega_clamp(name, value, lambda other: f"({partner_expr})")


@dataclass
class LiveSource:
    """Altair chart(s) computing one data builder's columns in the browser."""

    charts: list
    #: parameters the transforms read as signals (each needs a slider)
    signals: set[str] = field(default_factory=set)
    #: parameters fixed at their value in this source (residency computed in Python)
    fixed: set[str] = field(default_factory=set)


def _const(name: str, value) -> sp.Number:
    """A checked parameter value as a sympy number: an Integer for whole-number parameters, else a
    Float. Values are never sympified: a value is data, not an expression to parse."""
    return sp.Integer(int(value)) if registry.NUMERIC[name].integer else sp.Float(float(value))


def _categoricals(values) -> tuple[str, str, str]:
    return values["gap_model"], values["position_model"], values["shootdown_model"]


def _outputs(values, policies: Sequence[str], keys: Sequence[str]) -> dict[str, sp.Expr]:
    out = {}
    for p in policies:
        exprs = policy_outputs(p, *_categoricals(values))
        for k in keys:
            out[f"{p}__{k.replace('.', '_')}"] = exprs[k]
    return out


def _unprintable_atoms(e: sp.Basic) -> set[sp.Basic]:
    """The outermost sub-expressions of ``e`` that the Vega printer cannot handle (a symbolic
    ``Sum``, the incomplete gamma of the fixed-time gap, ...)."""
    if printable(e):
        return set()
    if isinstance(e, sp.Sum):
        return {e}
    if isinstance(e, sp.Function):
        stand_ins = [sp.Symbol(f"_arg{i}") for i in range(len(e.args))]
        try:
            shell_ok = printable(e.func(*stand_ins))
        except (TypeError, ValueError):
            shell_ok = False
        if not shell_ok:
            return {e}
    out: set[sp.Basic] = set()
    for a in e.args:
        out |= _unprintable_atoms(a)
    return out


def _split_unprintable(values, exprs: dict[str, sp.Expr], axes: Sequence[str]):
    """Make ``exprs`` printable: unchanged when they are; else each sub-expression the browser
    cannot compute is computed here: a number when no axis moves it (its parameters are then
    fixed in the chart: no slider), or a per-row column ``_pre<i>`` when an axis does.

    Returns (exprs, fixed parameter names, {column: function of the axis values})."""
    atoms: set[sp.Basic] = set()
    for e in exprs.values():
        atoms |= _unprintable_atoms(e)
    if not atoms:
        return exprs, set(), {}
    atoms_list = sorted(atoms, key=sp.default_sort_key)
    axis_syms = {registry.S[a] for a in axes}
    # first choice: a sum whose bounds no axis moves is written out term by term at the set's
    # bounds (only the bounds' parameters, e.g. batch_size, are then fixed)
    limit_params = {s.name for A in atoms_list if isinstance(A, sp.Sum)
                    for lim in A.limits[0][1:] for s in lim.free_symbols} - set(axes)
    limit_subs = {registry.S[n]: _const(n, values[n]) for n in limit_params}
    expanded = {}
    for A in atoms_list:
        if isinstance(A, sp.Sum) and not ({s for lim in A.limits[0][1:] for s in lim.free_symbols} & axis_syms):
            terms = A.xreplace(limit_subs).doit()
            if printable(terms):
                expanded[A] = terms
    if expanded:
        exprs = {k: e.xreplace(expanded).xreplace(limit_subs) for k, e in exprs.items()}
        inner_fixed, inner_columns = set(limit_params), {}
        atoms = set()
        for e in exprs.values():
            atoms |= _unprintable_atoms(e)
        if not atoms:
            _check_at_point(values, exprs, {})
            return exprs, inner_fixed, inner_columns
        atoms_list = sorted(atoms, key=sp.default_sort_key)
    else:
        limit_params = set()
    # otherwise: computed here
    fixed = ({s.name for A in atoms_list for s in A.free_symbols if s.name in registry.NUMERIC} - set(axes)) \
        | limit_params
    fixed_subs = {registry.S[n]: _const(n, values[n]) for n in fixed}
    replace, columns = {}, {}
    for i, A in enumerate(atoms_list):
        a_fixed = A.xreplace(fixed_subs)
        if isinstance(a_fixed, sp.Sum):
            a_fixed = a_fixed.doit() if all(lim.is_number for lim in a_fixed.limits[0][1:]) else a_fixed
        moving = sorted(a_fixed.free_symbols & axis_syms, key=lambda s: s.name)
        if not moving:
            replace[A] = sp.Float(float(sp.N(a_fixed, 17)), 17)
            continue
        sym = sp.Symbol(f"_pre{i}")
        fn = lambdify(moving, a_fixed)
        columns[sym] = ([s.name for s in moving], fn)
        replace[A] = sym
    out = {}
    for k, e in exprs.items():
        g = e.xreplace(replace).xreplace(fixed_subs)
        if not printable(g):
            raise NotPrintable(f"{k}: part of the model could not be separated for the browser")
        out[k] = g
    _check_at_point(values, out, columns)
    return out, fixed, columns


def _check_at_point(values, exprs: dict[str, sp.Expr], columns) -> None:
    """The separated expressions must give back the model at the current point."""
    check = {registry.S[n]: _const(n, values[n]) for n in registry.NUMERIC}
    for sym, (names, fn) in columns.items():
        check[sym] = sp.Float(float(fn(*[values[n] for n in names])), 17)
    direct = evaluate_point(values)
    for k, g in exprs.items():
        pol, key = k.split("__", 1)
        want = direct[pol][key] if not key.startswith("breakdown_ns_") else \
            direct[pol]["breakdown_ns"][key[len("breakdown_ns_"):]]
        got = float(g.xreplace(check).evalf())
        if not math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9):
            raise NotPrintable(f"{k}: separated wrongly ({got} != {want})")


def _precomputed(rows: list[dict], columns, values, axes: Sequence[str]) -> dict[sp.Symbol, str]:
    """Fill the per-row columns into ``rows``; returns their names for the printer."""
    names = {}
    for sym, (args, fn) in columns.items():
        for r in rows:
            point = chartdata.grid_point(values, {a: _typed(a, r[a]) for a in axes})
            r[sym.name] = float(fn(*[point[n] for n in args]))
        names[sym] = f"datum.{sym.name}"
    return names


def _names(axes: Sequence[str], extra: Mapping[sp.Symbol, str] | None = None) -> dict[sp.Symbol, str]:
    names = {registry.S[n]: n for n in registry.NUMERIC}
    for a in axes:
        names[registry.S[a]] = f"datum.{a}"
    names.update(extra or {})
    return names


def _signals(steps: Sequence[dict], axes: Sequence[str]) -> set[str]:
    text = " ".join(s["calculate"] for s in steps)
    used = set(re.findall(r"(?<![\w.])([a-z_][a-z0-9_]*)(?![\w(])", text))
    return {n for n in registry.NUMERIC if n in used and n not in axes}


def _used(exprs: Mapping[str, sp.Expr]) -> set[sp.Symbol]:
    return set().union(*(e.free_symbols for e in exprs.values()))


def _rule_steps(axes: Sequence[str], exprs: Mapping[str, sp.Expr]) -> tuple[list[dict], tuple[str, ...]]:
    """Per-row steps that keep a row feasible where a rule's partner is a chart axis and the
    parameter itself is not (:data:`VEGA_RULES`): cpus raised to remote_cpus + 1 along a
    remote_cpus axis, as :func:`chartdata.grid_point` does with :func:`registry.raise_cpus`. Returns
    the steps and the parameters they turn into row fields."""
    used = _used(exprs)
    steps, fields = [], []
    for name, (partner, _) in VEGA_RULES.items():
        if partner in axes and name not in axes and registry.S[name] in used:
            steps.append({"calculate": _rule_expr(name, name, f"datum.{partner}"), "as": name})
            fields.append(name)
    return steps, tuple(fields)


def _rule_filter(axes: Sequence[str], exprs: Mapping[str, sp.Expr]) -> str | None:
    """Where a rule's parameter is a chart axis and its partner a slider, the rows that break the
    rule at the slider's value are left out, as the static map leaves out infeasible cells: a row
    is kept when keeping it feasible (:data:`VEGA_RULES`) would not change it."""
    used = _used(exprs)
    conds = [f"{_rule_expr(name, f'datum.{name}', partner)} === datum.{name}"
             for name, (partner, _) in VEGA_RULES.items()
             if name in axes and partner not in axes and registry.S[partner] in used]
    return " && ".join(conds) or None


def _chart(rows, steps):
    c = alt.Chart(alt.InlineData(values=rows))
    if steps:
        c = c.transform_calculate(**{s["as"]: s["calculate"] for s in steps})
    return c


# ---- cost against remote_cpus ------------------------------------------------------------------


def cost_source(values: Mapping[str, object], policies: Sequence[str] = chartdata.POLICY_ORDER) -> LiveSource:
    """The columns of :func:`chartdata.cost_vs_cpus_data`, computed in the browser."""
    values = registry.as_point(values)
    axes = ("remote_cpus",)
    keys = ["expected_ns", "p_copy", "p_unnecessary_copy"] + [f"breakdown_ns.{b}" for b in BREAKDOWN]
    exprs, fixed, columns = _split_unprintable(values, _outputs(values, policies, keys), axes)
    lo, hi = CPU_RANGE
    rows = [{"remote_cpus": r, "policy": p} for p in policies for r in range(lo, hi + 1)]
    rule_steps, row_fields = _rule_steps(axes, exprs)
    names = _names(axes + row_fields, _precomputed(rows, columns, values, axes))
    steps = rule_steps + transforms(exprs, names)
    # one row per (remote_cpus, policy): pick the policy's own fields
    cols = {"expected_ns": "expected_ns", "p_copy": "p_copy", "p_unnecessary_copy": "p_unnecessary_copy"}
    cols.update({f"breakdown_ns.{b}": f"breakdown_{b}_ns" for b in BREAKDOWN})
    for key, col in cols.items():
        k = key.replace(".", "_")
        expr = "null"
        for p in reversed(policies):
            expr = f"(datum.policy === '{p}' ? datum.{p}__{k} : {expr})"
        steps.append({"calculate": expr, "as": col})
    return LiveSource([_chart(rows, steps)], _signals(steps, axes), fixed)


# ---- decision map -----------------------------------------------------------------------------


def map_source(values: Mapping[str, object], x: str = "remote_cpus", y: str = "wp_gap_s", n: int = 60,
               candidates: Sequence[str] = CANDIDATES,
               against: tuple[str, str] = chartdata.DEFAULT_AGAINST):
    """The columns of :attr:`chartdata.DecisionMap.cells` (first chart) and of its break-even
    line (two more charts: crossings found along x, and along y), computed in the browser.
    Returns the source, whether each axis is logarithmic, and the (x, y) domains of the cells."""
    values = registry.as_point(values)
    axes = (x, y)
    pols = tuple(candidates) + tuple(p for p in against if p not in candidates)
    exprs, fixed, columns = _split_unprintable(values, _outputs(values, pols, ["expected_ns"]), axes)
    xv, yv = axis_values(x, n), axis_values(y, n)
    x_log = axis_is_log(x, float(xv.min()), float(xv.max())) and xv.min() > 0
    y_log = axis_is_log(y, float(yv.min()), float(yv.max())) and yv.min() > 0
    x_lo, x_hi = chartdata.cell_edges(xv, x_log)
    y_lo, y_hi = chartdata.cell_edges(yv, y_log)
    # the grid as chartdata.decision_map_data lays it out (rows follow y), less the points that break
    # a rule between parameters at the set's values
    X, Y = np.meshgrid(xv, yv)
    ok = np.broadcast_to(registry.feasible(chartdata.grid_point(values, {x: X.ravel(), y: Y.ravel()})), X.size)
    rows = []
    for k in np.flatnonzero(ok):
        j, i = divmod(int(k), xv.size)
        rows.append({x: xv[i].item(), y: yv[j].item(), f"{x}_lo": x_lo[i].item(), f"{x}_hi": x_hi[i].item(),
                     f"{y}_lo": y_lo[j].item(), f"{y}_hi": y_hi[j].item()})
    extra = _precomputed(rows, columns, values, axes)
    rule_steps, row_fields = _rule_steps(axes, exprs)
    names = _names(axes + row_fields, extra)
    steps = rule_steps + transforms(exprs, names) + _verdict_steps(candidates, against)
    cells = _chart(rows, steps)
    keep = _rule_filter(axes, exprs)
    if keep:
        cells = cells.transform_filter(keep)
    lines = [_crossings(cells, x, y, x_log), _crossings(cells, y, x, y_log, along="y")]
    domains = ((float(x_lo.min()), float(x_hi.max())), (float(y_lo.min()), float(y_hi.max())))
    return LiveSource([cells, *lines], _signals(steps, axes), fixed), x_log, y_log, domains


def _typed(name, v):
    return int(round(v)) if registry.NUMERIC[name].integer else float(v)


def _first_match(candidates, cond) -> str:
    expr = "null"
    for p in reversed(candidates):
        expr = f"({cond(p)} ? '{p}' : {expr})"
    return expr


def _verdict_steps(candidates, against) -> list[dict]:
    """The steps that follow each cell's per-policy costs: the cheapest candidate and its cost, the
    runner-up, the margin between them, and the difference of the ``against`` pair."""
    steps = [{"calculate": f"datum.{p}__expected_ns", "as": f"expected_{p}_ns"} for p in candidates]
    cost = {p: f"datum.expected_{p}_ns" for p in candidates}
    steps.append({"calculate": f"min({', '.join(cost.values())})", "as": "cheapest_ns"})
    steps.append({"calculate": _first_match(candidates, lambda p: f"{cost[p]} === datum.cheapest_ns"),
                  "as": "cheapest"})
    others = ", ".join(f"(datum.cheapest === '{p}' ? 1 / 0 : {cost[p]})" for p in candidates)
    steps.append({"calculate": f"min({others})" if len(candidates) > 1 else "datum.cheapest_ns", "as": "runner_up_ns"})
    steps.append({"calculate": _first_match(candidates, lambda p: f"datum.cheapest !== '{p}' && "
                                                                  f"{cost[p]} === datum.runner_up_ns"),
                  "as": "runner_up"})
    steps.append({"calculate": "datum.runner_up_ns - datum.cheapest_ns", "as": "margin_ns"})
    steps.append({"calculate": "100 * datum.margin_ns / datum.cheapest_ns", "as": "margin_pct"})
    steps.append({"calculate": f"datum.{against[0]}__expected_ns - datum.{against[1]}__expected_ns",
                  "as": "against_diff_ns"})
    return steps


def _crossings(cells, move: str, keep: str, log: bool, along: str = "x"):
    """Where against_diff_ns changes sign between neighbours along ``move`` (per ``keep``),
    interpolated in ``move``'s own coordinate: the columns of :attr:`DecisionMap.line`."""
    c = f"log(datum.{move})" if log else f"datum.{move}"
    cp = "log(datum._prev_pos)" if log else "datum._prev_pos"
    t = "datum._prev_diff / (datum._prev_diff - datum.against_diff_ns)"
    at = f"{cp} + ({t}) * ({c} - {cp})"
    return cells.transform_window(
        window=[alt.WindowFieldDef(op="lag", field="against_diff_ns", **{"as": "_prev_diff"}),
                alt.WindowFieldDef(op="lag", field=move, **{"as": "_prev_pos"})],
        groupby=[keep], sort=[alt.SortField(move, order="ascending")],
    ).transform_filter(
        "isValid(datum._prev_diff) && datum._prev_diff * datum.against_diff_ns < 0"
    ).transform_calculate(
        **{move: f"exp({at})" if log else at, "along": f"'{along}'", "order": f"datum.{keep}"}
    )


# ---- sliders ----------------------------------------------------------------------------------


def _held(name: str, expr: str, names: Sequence[str], values: Mapping[str, object],
          fixed: Iterable[str]) -> str | None:
    """``expr`` (a parameter's value as its slider gives it) kept feasible against its partner
    (:data:`VEGA_RULES`): the partner's signal where it has a slider, its value where it is fixed in
    the charts; None where no rule applies (or the partner is a chart axis: then per row)."""
    if name not in VEGA_RULES:
        return None
    partner, _ = VEGA_RULES[name]
    if partner in names:
        return _rule_expr(name, expr, partner)
    if partner in fixed:
        return _rule_expr(name, expr, repr(float(values[partner])))
    return None


def slider_params(names: Sequence[str], values: Mapping[str, object], fixed: Iterable[str] = ()) -> list[dict]:
    """Vega-Lite parameters bound to range inputs, one per numeric parameter in ``names`` (in
    registry order), labelled with name and unit, within the registry's bounds; logarithmic
    (``<name>__log10``, with the parameter derived from it) where :func:`slider_is_log`
    says so. On a log slider of a parameter whose lower bound is 0, the leftmost step is 0.

    The sliders are independent, the parameters are not: the signal the formulas read is kept
    feasible (:data:`VEGA_RULES`): ``batch_position`` is ``min(batch_position__raw,
    batch_size - 1)``, and ``cpus`` is raised to ``remote_cpus + 1`` where a remote_cpus slider
    asks for more. ``fixed``: parameters the charts hold at their value (no slider)."""
    values = registry.as_point(values)
    fixed = set(fixed)
    out = []
    for name in registry.NUMERIC:
        if name not in names:
            continue
        e = registry.NUMERIC[name]
        v = values[name]
        label = f"{name} ({e.unit}{', log' if slider_is_log(name) else ''}) "
        if slider_is_log(name):
            floor = log_floor(name)
            if 0 < v < floor:
                floor = float(v)
            lo10, hi10 = math.log10(floor), math.log10(e.high)
            step = LOG_STEP
            zero = e.low == 0
            smin = lo10 - step if zero else lo10
            # the slider starts on its grid (a short readout); the signal keeps the exact value
            # until the slider moves off that starting step
            pos = round(round(math.log10(v) / step) * step, 6) if v > 0 else smin
            sig = name + LOG_SUFFIX
            out.append({"name": sig, "value": pos,
                        "bind": {"input": "range", "min": round(smin, 6), "max": round(hi10, 6), "step": step,
                                 "name": label}})
            value = f"pow(10, {sig})"
            if e.integer:
                value = f"round({value})"
            if zero:
                value = f"({sig} < {lo10 - step / 2!r} ? 0 : {value})"
            expr = f"clamp({value}, {float(e.low)!r}, {float(e.high)!r})"
            if v > 0:
                expr = f"(abs({sig} - {pos!r}) < {step / 4!r} ? {v!r} : {expr})"
            out.append({"name": name, "expr": _held(name, expr, names, values, fixed) or expr})
        else:
            step = 1 if e.integer else (0.001 if e.probability else (e.high - e.low) / 1000)
            bind = {"input": "range", "min": e.low, "max": e.high, "step": step, "name": label}
            held = _held(name, name + RAW_SUFFIX, names, values, fixed)
            if held is None:
                out.append({"name": name, "value": v, "bind": bind})
            else:
                out += [{"name": name + RAW_SUFFIX, "value": v, "bind": bind}, {"name": name, "expr": held}]
    return out


def values_panel(names: Sequence[str], columns: int = 3):
    """A text chart listing the current value and unit of each parameter in ``names``, read
    from the signals (log sliders show log10; this shows the value itself)."""
    names = [n for n in registry.NUMERIC if n in names]
    per = math.ceil(len(names) / columns)
    rows = [{"name": n, "unit": registry.NUMERIC[n].unit, "col": i // per, "row": i % per} for i, n in enumerate(names)]
    value = "null"
    for n in reversed(names):
        value = f"(datum.name === '{n}' ? {n} : {value})"
    return alt.Chart(alt.InlineData(values=rows)).transform_calculate(
        value=value, label="datum.name + ' = ' + format(datum.value, ',.4~g') + ' ' + datum.unit",
    ).mark_text(align="left", baseline="middle", fontSize=11, dx=-140).encode(
        x=alt.X("col:O", axis=None), y=alt.Y("row:O", axis=None), text="label:N",
    ).properties(width=alt.Step(300), height=alt.Step(15), view={"stroke": None},
                 title="Current values, as the formulas use them (set with the sliders below)")


def slider_inputs(params: Sequence[dict]) -> list[str]:
    """Names of the bound inputs (what a reader moves)."""
    return [p["name"] for p in params if "bind" in p]


# ---- the explore view: every choice live, each sub-expression computed where it varies --------
#
# The sources above compute every output on every row. The explore view splits the work by what
# each sub-expression depends on: a part that depends only on parameters is a Vega signal,
# computed once per slider move; a part that moves with a chart axis is a row field; on the
# decision map, what depends only on the gap axis is computed once per grid row before the rows
# are expanded into cells. The categorical choices are selects: each enters the outputs only
# through the sub-expressions in PARTS, which the browser computes for the chosen combination.

#: the categorical choices, in the order policy_outputs takes them
CHOICES: tuple[str, ...] = ("gap_model", "position_model", "shootdown_model")

#: The sub-expressions through which the choices enter the outputs: (name, the choices it
#: depends on, its builder). For every combination of choices the outputs are the same
#: expression of these parts; :func:`templates` checks that, and a model change that breaks it
#: raises NotPrintable rather than drawing something else.
PARTS: tuple[tuple[str, tuple[str, ...], object], ...] = (
    ("held_fill", ("gap_model", "position_model"), lambda c: _held_batch_fill(c["gap_model"], c["position_model"])),
    ("residency", ("gap_model", "position_model"), lambda c: _residency(c["gap_model"], c["position_model"])),
    ("fill_after_flush", ("gap_model",), lambda c: _fill_after_flush(c["gap_model"])),
    ("shootdown", ("shootdown_model",), lambda c: _costs.shootdown_ns(c["shootdown_model"])),
)
#: a sum over the batch position is written out term by term up to its registry bound, guarded
#: by its actual bound, when it has at most this many terms
MAX_TERMS = 64
#: CPU counts (log-spaced) at which the live breakdown is drawn
BREAKDOWN_POINTS = 40
#: the decision map while a slider is being dragged: this many cells a side (the full map after)
DRAG_MAP_N = 24
#: the signal that says whether the map is at full resolution (the page clears it while a slider moves)
DETAIL_SIGNAL = "map_detail"
#: prefix of the signal holding a choice's index (the formulas compare numbers, not words)
CHOICE_PREFIX = "_choice_"
#: the remote_cpus the cost chart marks (its slider moves the mark, not the formulas: every chart
#: has remote_cpus on an axis)
POINT_SIGNAL = "point_remote_cpus"


def _combos(names: Sequence[str] = CHOICES) -> list[dict[str, str]]:
    return [dict(zip(names, c)) for c in itertools.product(*(registry.CATEGORICAL[n].choices for n in names))]


@lru_cache(maxsize=8)
def templates(policies: tuple[str, ...], keys: tuple[str, ...]) -> tuple[dict, dict[str, sp.Symbol]]:
    """The outputs ``(policy, key)`` as expressions of the parameters and of one symbol per part
    of :data:`PARTS`, the same for every combination of choices (checked: put each
    combination's parts back and the model's own outputs for that combination come out)."""
    ref = {n: registry.CATEGORICAL[n].default for n in CHOICES}
    syms = {name: sp.Symbol(f"_part_{name}") for name, _, _ in PARTS}
    sub = {build(ref): syms[name] for name, _, build in PARTS}
    if len(sub) != len(PARTS):
        raise NotPrintable("two parts of the model are the same expression")
    out = {}
    for p in policies:
        exprs = policy_outputs(p, *(ref[c] for c in CHOICES))
        for k in keys:
            out[(p, k)] = exprs[k].xreplace(sub)
    for combo in _combos():
        back = {syms[name]: build(combo) for name, _, build in PARTS}
        for p in policies:
            exprs = policy_outputs(p, *(combo[c] for c in CHOICES))
            for k in keys:
                if out[(p, k)].xreplace(back) != exprs[k]:
                    raise NotPrintable(f"{p} {k}: with {combo} the outputs are not the same expression of the parts")
    return out, syms


def _upper_bound(e: sp.Expr) -> float | None:
    """The largest value of ``e`` over the registry bounds of its parameters (corners only: the
    limits of a sum are linear in them)."""
    names = [s.name for s in e.free_symbols]
    if any(n not in registry.NUMERIC for n in names):
        return None
    best = None
    for corner in itertools.product(*((registry.NUMERIC[n].low, registry.NUMERIC[n].high) for n in names)):
        v = float(e.xreplace({registry.S[n]: sp.Float(c) for n, c in zip(names, corner)}))
        best = v if best is None else max(best, v)
    return best


def _write_out_sums(e: sp.Expr) -> sp.Expr | None:
    """``e`` with each sum over the batch position written out to its registry bound, each term
    guarded by the sum's own bound; None where a sum is too long or not of that kind."""
    sums = sorted(e.atoms(sp.Sum), key=sp.default_sort_key)
    if not sums:
        return e
    rep = {}
    for s in sums:
        if len(s.limits) != 1:
            return None
        j, lo, hi = s.limits[0]
        top = _upper_bound(hi)
        if not lo.is_Integer or top is None or top - int(lo) + 1 > MAX_TERMS:
            return None
        terms = [sp.Piecewise((s.function.xreplace({j: sp.Integer(k)}), sp.Le(k, hi)), (0, True))
                 for k in range(int(lo), int(math.floor(top)) + 1)]
        rep[s] = sp.Add(*terms)
    return e.xreplace(rep)


class _Program:
    """Vega-Lite signals and per-level row steps computing a set of expressions.

    Level 0 is the parameters (signals); level k >= 1 are rows (``level_of`` says which row
    fields live where). Each expression is computed at the lowest level its symbols allow:
    :meth:`output` hoists every largest sub-expression of a lower level there, so the row work
    is only what truly varies by row."""

    def __init__(self, level_of: Mapping[sp.Symbol, int], names: Mapping[sp.Symbol, str], tag: str):
        self.level_of = dict(level_of)
        self.names = dict(names)
        self.tag = tag
        self.defs: dict[int, list[tuple[str, sp.Expr]]] = {}
        self._hoisted: dict[int, dict[sp.Expr, sp.Symbol]] = {}
        self._levels: dict[sp.Basic, int] = {}
        self._n = 0

    def level(self, e) -> int:
        got = self._levels.get(e)
        if got is None:
            if isinstance(e, sp.Symbol):
                got = self.level_of.get(e, 0)
            else:
                got = max((self.level(a) for a in e.args), default=0)
            self._levels[e] = got
        return got

    def _hoist(self, e: sp.Expr, lvl: int) -> sp.Symbol:
        seen = self._hoisted.setdefault(lvl, {})
        if e in seen:
            return seen[e]
        inner = self._visit(e, lvl)
        sym = sp.Symbol(f"_{self.tag}{lvl}_{self._n}")
        self._n += 1
        self.level_of[sym] = lvl
        self.names[sym] = sym.name if lvl == 0 else f"datum.{sym.name}"
        seen[e] = sym
        self.defs.setdefault(lvl, []).append((sym.name, inner))
        return sym

    def _visit(self, e, L: int):
        if not e.args:
            return e
        lvl = self.level(e)
        if lvl < L and isinstance(e, sp.Expr) and not isinstance(e, sp.Number):
            return self._hoist(e, lvl)
        if isinstance(e, (sp.Add, sp.Mul)):
            low = [a for a in e.args if self.level(a) < L]
            high = [self._visit(a, L) for a in e.args if self.level(a) >= L]
            if len(low) == 1 and (not low[0].args or isinstance(low[0], sp.Number)):
                return e.func(*low, *high)
            if low:
                return e.func(self._hoist(e.func(*low), max(self.level(a) for a in low)), *high)
            return e.func(*high)
        args = [self._visit(a, L) for a in e.args]
        if all(a is b for a, b in zip(args, e.args)):
            return e
        return e.func(*args)

    def output(self, name: str, e: sp.Expr, level: int, group: str = "") -> None:
        """Compute ``e`` as the field (level >= 1) or signal (0) ``name``; ``group``: which
        dataset's steps the field belongs to (rows of different tables share the signals)."""
        self.defs.setdefault(level if not group else (level, group), []).append(
            (name, self._visit(_as_expr(e), level)))

    def signals(self) -> list[dict]:
        """The level-0 definitions as Vega-Lite parameters, common sub-expressions once."""
        defs = self.defs.get(0, [])
        if not defs:
            return []
        subs, reduced = sp.cse([e for _, e in defs], symbols=sp.numbered_symbols(f"_{self.tag}g", cls=sp.Dummy),
                               order="none")
        names = dict(self.names)
        out = []
        for i, (sym, sub) in enumerate(subs):
            names[sym] = f"_{self.tag}g{i}"
            out.append({"name": names[sym], "expr": to_vega(sub, names)})
        for (name, _), e in zip(defs, reduced):
            out.append({"name": name, "expr": to_vega(e, names)})
        return out

    def steps(self, level: int, group: str = "", cse: bool = False) -> list[dict]:
        """The definitions of ``level`` as calculate steps, one field each; with ``cse``, common
        sub-expressions become fields of their own (worth it where few rows compute long formulas;
        elsewhere rows stay narrow, and what rows share is a signal already)."""
        defs = self.defs.get(level if not group else (level, group), [])
        if cse and defs:
            return transforms(dict(defs), self.names, prefix=f"_{self.tag}c{level}_")
        return [{"calculate": to_vega(e, self.names), "as": name} for name, e in defs]


@dataclass
class Explore:
    """The explore view's sources: charts computing the columns of the data builders, the
    parameters they read (sliders, selects and the derived signals), and what the browser
    cannot follow."""

    cost: object
    #: the breakdown's columns, long (``remote_cpus``, ``policy``, ``part``, ``part_order``, ``part_ns``)
    breakdown: object
    cells: object
    lines: list
    params: list[dict]
    inputs: list[str]
    x: str
    y: str
    x_log: bool
    y_log: bool
    domains: tuple
    #: choice (name=value) -> parameters whose sliders do not move that part, and why
    frozen: dict[str, tuple[list[str], str]] = field(default_factory=dict)
    #: numeric parameters that feed the charts (each has a slider)
    numeric: list[str] = field(default_factory=list)
    #: numeric parameter -> the choices under which it matters at all (absent: always), as
    #: {"keys": ["gap|position|shootdown", ...], "words": [...]}
    matters_when: dict[str, dict] = field(default_factory=dict)
    #: map axis -> the same, for an axis that does not enter the map under some choices
    axis_matters: dict[str, dict] = field(default_factory=dict)


def _choice_index(name: str) -> sp.Symbol:
    return sp.Symbol(CHOICE_PREFIX + name)


def _variant_condition(deps: Sequence[str], combo: Mapping[str, str]) -> sp.Boolean:
    return sp.And(*[sp.Eq(_choice_index(d), registry.CATEGORICAL[d].choices.index(combo[d])) for d in deps])


class _Parts:
    """Each part's expression for every combination of its choices, made printable: as is, with
    its sums written out, or, where neither works (the incomplete gamma of the fixed-time gap),
    computed here at the set's values (its parameters then do not follow the sliders in that
    part) as a constant or as a column over the axis that moves it."""

    def __init__(self, values, axes: Mapping[str, Sequence[np.ndarray]]):
        self.values = values
        #: axis name -> the arrays of its values per row table that carries it
        self.axes = axes
        self.columns: dict[str, dict[str, np.ndarray]] = {a: {} for a in axes}
        self.frozen: dict[str, tuple[set[str], list[str]]] = {}

    def variant(self, name: str, deps: Sequence[str], combo: Mapping[str, str], e: sp.Expr) -> sp.Expr:
        if printable(e):
            return e
        written = _write_out_sums(e)
        if written is not None and printable(written):
            return written
        label = ", ".join(f"{d} = {combo[d]}" for d in deps)
        # a sum whose bounds no axis moves: written out at the set's bounds (their parameters,
        # batch_size say, then do not follow their sliders in this part)
        limits = {s for A in e.atoms(sp.Sum) for lim in A.limits for b in lim[1:] for s in b.free_symbols}
        if limits and not limits & {registry.S[a] for a in self.axes}:
            at = {s: _const(s.name, self.values[s.name]) for s in limits}
            written = e.xreplace(at).doit()
            if printable(written):
                frozen_params, parts = self.frozen.setdefault(label, (set(), []))
                frozen_params.update(s.name for s in limits)
                parts.append(name.replace("_", " "))
                return written
        axis_syms = {registry.S[a] for a in self.axes}
        moving = sorted(e.free_symbols & axis_syms, key=lambda s: s.name)
        if len(moving) > 1:
            raise NotPrintable(f"{name}: moves with two chart axes and cannot be written for the browser")
        fixed = sorted(s.name for s in e.free_symbols if s.name in registry.NUMERIC and s not in axis_syms)
        subs = {registry.S[n]: _const(n, self.values[n]) for n in fixed}
        g = e.xreplace(subs)
        if isinstance(g, sp.Sum) or g.has(sp.Sum):
            g = g.doit()
        frozen_params, parts = self.frozen.setdefault(label, (set(), []))
        frozen_params.update(fixed)
        parts.append(name.replace("_", " "))
        if not moving:
            return sp.Float(float(sp.N(g, 17)), 17)
        fn = lambdify(moving, g)
        col = f"_pre_{name}_{'_'.join(combo[d] for d in deps)}"
        axis = moving[0].name
        with np.errstate(all="ignore"):
            self.columns[axis][col] = [np.broadcast_to(np.asarray(fn(v), dtype=float), np.shape(v))
                                       for v in self.axes[axis]]
        sym = sp.Symbol(col)
        return sym

    def expression(self, name: str, deps: Sequence[str], build) -> sp.Expr:
        combos = _combos(deps)
        pieces = []
        for i, combo in enumerate(combos):
            e = self.variant(name, deps, combo, build(combo))
            cond = sp.true if i == len(combos) - 1 else _variant_condition(deps, combo)
            pieces.append((e, cond))
        return pieces[0][0] if len(pieces) == 1 else sp.Piecewise(*pieces)


def _param_names() -> dict[sp.Symbol, str]:
    names = {registry.S[n]: n for n in registry.NUMERIC}
    names.update({_choice_index(c): _choice_index(c).name for c in CHOICES})
    return names


def _choice_params(values) -> list[dict]:
    out = []
    for c in CHOICES:
        e = registry.CATEGORICAL[c]
        out.append({"name": c, "value": values[c],
                    "bind": {"input": "select", "options": list(e.choices), "name": f"{c} "}})
        out.append({"name": _choice_index(c).name, "expr": f"indexof({list(e.choices)!r}, {c})".replace("'", '"')})
    return out


def _choice_key(combo: Mapping[str, str]) -> str:
    return "|".join(combo[c] for c in CHOICES)


def _words(where: list[dict[str, str]]) -> list[str]:
    """The combinations of choices ``where`` in few words: 'gap_model = fixed_count' when one
    choice alone decides, else each combination of the choices that do."""
    everything = _combos()
    for c in CHOICES:
        vals = sorted({w[c] for w in where}, key=registry.CATEGORICAL[c].choices.index)
        if len(where) == sum(1 for e in everything if e[c] in vals):
            return [f"{c} = {v}" for v in vals]
    deciding = [c for c in CHOICES if len({w[c] for w in where}) > 1 or len({w[c] for w in where}) <
                len(registry.CATEGORICAL[c].choices)]
    return sorted({", ".join(f"{c} = {w[c]}" for c in deciding) for w in where})


def _matters(names: Iterable[str], tmpl: Mapping, keys: Sequence[tuple[str, str]]) -> dict[str, dict]:
    """Parameters that enter the outputs ``keys`` under some combinations of choices only:
    name -> {"keys": those combinations (``gap|position|shootdown``), "words": the same in words}."""
    always = set().union(*(tmpl[k].free_symbols for k in keys))
    out = {}
    for n in names:
        sym = registry.S[n]
        if sym in always:
            continue
        where = [combo for combo in _combos()
                 if any(sym in build(combo).free_symbols for _, _, build in PARTS)]
        if len(where) < len(_combos()):
            out[n] = {"keys": [_choice_key(c) for c in where], "words": _words(where)}
    return out


_COST_KEYS = ("expected_ns", "p_copy", "p_unnecessary_copy") + tuple(f"breakdown_ns.{b}" for b in BREAKDOWN)


def _cost_program(values, policies: Sequence[str], parts_syms, tmpl) -> tuple[list[dict], list[dict], list[dict], _Parts]:
    """Rows, steps and signals of the cost chart's columns (one row per remote_cpus and policy)."""
    lo, hi = CPU_RANGE
    xs = np.arange(lo, hi + 1, dtype=float)
    parts = _Parts(values, {"remote_cpus": [xs]})
    level_of = {registry.S["remote_cpus"]: 1, sp.Symbol("_pi"): 1}
    names = _param_names()
    names[registry.S["remote_cpus"]] = "datum.remote_cpus"
    names[sp.Symbol("_pi")] = "datum._pi"
    pre_steps = []
    for name, (partner, _) in VEGA_RULES.items():
        if partner == "remote_cpus":
            level_of[registry.S[name]] = 1
            names[registry.S[name]] = f"datum.{name}"
            pre_steps.append({"calculate": _rule_expr(name, name, "datum.remote_cpus"), "as": name})
    prog = _Program(level_of, names, "k")
    part_exprs = {parts_syms[name]: parts.expression(name, deps, build) for name, deps, build in PARTS}
    for sym in [s for cols in parts.columns.values() for s in map(sp.Symbol, cols)]:
        prog.level_of[sym] = 1
        prog.names[sym] = f"datum.{sym.name}"
    pi, pj = sp.Symbol("_pi"), sp.Symbol("_pj")
    prog.level_of[pj] = 1
    prog.names[pj] = "datum._pj"
    # the breakdown, long: one row per (remote_cpus, policy, part), each computing only its own part
    pieces = []
    for i, p in enumerate(policies):
        inner = [(tmpl[(p, f"breakdown_ns.{b}")].xreplace(part_exprs), sp.Eq(pj, k) if k < len(BREAKDOWN) - 1 else sp.true)
                 for k, b in enumerate(BREAKDOWN)]
        pieces.append((sp.Piecewise(*inner), sp.Eq(pi, i) if i < len(policies) - 1 else sp.true))
    prog.output("part_ns", sp.Piecewise(*pieces), 1, group="parts")
    for key in _COST_KEYS:
        pieces = [(tmpl[(p, key)].xreplace(part_exprs), sp.Eq(pi, i) if i < len(policies) - 1 else sp.true)
                  for i, p in enumerate(policies)]
        col = key if not key.startswith("breakdown_ns.") else f"breakdown_{key.split('.', 1)[1]}_ns"
        prog.output(col, sp.Piecewise(*pieces), 1)
    # the breakdown's areas at fewer CPU counts, evenly spread on its log axis (the curves are smooth)
    sparse = set(np.unique(np.round(np.geomspace(lo, hi, BREAKDOWN_POINTS))).astype(int).tolist())
    rows, part_rows = [], []
    for i, p in enumerate(policies):
        for k, r in enumerate(range(lo, hi + 1)):
            row = {"remote_cpus": r, "policy": p, "_pi": i}
            for col, arrs in parts.columns["remote_cpus"].items():
                row[col] = float(arrs[0][k])
            rows.append(row)
            if r in sparse:
                for j, b in enumerate(BREAKDOWN):
                    part_rows.append(dict(row, _pj=j, part=b, part_order=j))
    return rows, pre_steps + prog.steps(1), prog.signals(), parts, part_rows, pre_steps + prog.steps(1, "parts")


def _map_program(values, x: str, y: str, n: int, drag_n: int, candidates, against, parts_syms, tmpl):
    """Grid rows (one per y value, at two resolutions), the steps that expand them into cells
    and compute the columns of :attr:`chartdata.DecisionMap.cells`, and the signals they read."""
    levels = []
    for side in (drag_n, n):
        xv, yv = axis_values(x, side), axis_values(y, side)
        x_log = axis_is_log(x, float(xv.min()), float(xv.max())) and xv.min() > 0
        y_log = axis_is_log(y, float(yv.min()), float(yv.max())) and yv.min() > 0
        levels.append((xv, yv, chartdata.cell_edges(xv, x_log), chartdata.cell_edges(yv, y_log), x_log, y_log))
    parts = _Parts(values, {x: [lv[0] for lv in levels], y: [lv[1] for lv in levels]})
    X, Y = registry.S[x], registry.S[y]
    level_of = {Y: 1, X: 2}
    names = _param_names()
    names[X], names[Y] = f"datum.{x}", f"datum.{y}"
    rule_steps = []
    for name, (partner, _) in VEGA_RULES.items():
        if partner in (x, y) and name not in (x, y):
            level_of[registry.S[name]] = 2 if partner == x else 1
            names[registry.S[name]] = f"datum.{name}"
            rule_steps.append((level_of[registry.S[name]],
                               {"calculate": _rule_expr(name, name, f"datum.{partner}"), "as": name}))
    prog = _Program(level_of, names, "m")
    part_exprs = {parts_syms[name]: parts.expression(name, deps, build) for name, deps, build in PARTS}
    for axis, cols in parts.columns.items():
        for col in cols:
            prog.level_of[sp.Symbol(col)] = 2 if axis == x else 1
            prog.names[sp.Symbol(col)] = f"datum.{col}"
    pols = tuple(candidates) + tuple(p for p in against if p not in candidates)
    for p in pols:
        prog.output(f"{p}__expected_ns", tmpl[(p, "expected_ns")].xreplace(part_exprs), 2)
    # the y rows of both resolutions; x arrays ride on signals and are flattened into cells
    rows = []
    for lvl, (xv, yv, _, (y_lo, y_hi), _, _) in enumerate(levels):
        for j in range(yv.size):
            row = {"_lvl": lvl, "_j": j, y: yv[j].item(), f"{y}_lo": y_lo[j].item(), f"{y}_hi": y_hi[j].item()}
            for col, arrs in parts.columns[y].items():
                row[col] = float(arrs[lvl][j])
            rows.append(row)
    arrays = []
    x_fields = {x: 0, f"{x}_lo": 1, f"{x}_hi": 2}
    for lvl, (xv, _, (x_lo, x_hi), _, _, _) in enumerate(levels):
        for fname, idx in x_fields.items():
            arrays.append({"name": f"_mx{lvl}_{idx}", "value": [float(v) for v in (xv, x_lo, x_hi)[idx]]})
        for col, arrs in parts.columns[x].items():
            arrays.append({"name": f"_mx{lvl}_{col}", "value": [float(v) for v in arrs[lvl]]})
    steps = [{"filter": f"datum._lvl === ({DETAIL_SIGNAL} ? 1 : 0)"}]
    steps += [s for lvl, s in rule_steps if lvl == 1]
    steps += prog.steps(1)
    flat = list(x_fields) + list(parts.columns[x])
    for fname in flat:
        idx = x_fields.get(fname)
        sig = [f"_mx{lvl}_{idx if idx is not None else fname}" for lvl in range(2)]
        steps.append({"calculate": f"datum._lvl ? {sig[1]} : {sig[0]}", "as": fname})
    tail = [s for lvl, s in rule_steps if lvl == 2] + prog.steps(2)
    return rows, steps, flat, tail, prog.signals(), arrays, parts, levels


def explore(values: Mapping[str, object], x: str | None = None, y: str | None = None, map_n: int = 200,
            drag_n: int = DRAG_MAP_N, policies: Sequence[str] = chartdata.POLICY_ORDER,
            candidates: Sequence[str] = CANDIDATES, against: tuple[str, str] = chartdata.DEFAULT_AGAINST) -> Explore:
    """The explore view's live sources at the checked point ``values``: the cost chart's columns
    (:func:`chartdata.cost_vs_cpus_data`) and the decision map's cells and break-even line, with
    selects for the choices and the map computed at ``drag_n`` cells a side while a slider is
    dragged (:data:`DETAIL_SIGNAL` false) and ``map_n`` otherwise."""
    values = registry.as_point(values)
    dx, dy = chartdata.default_map_axes(values)
    x, y = x or dx, y or dy
    pols = tuple(policies)
    map_pols = tuple(candidates) + tuple(p for p in against if p not in candidates)
    tmpl, syms = templates(tuple(dict.fromkeys(pols + map_pols)), _COST_KEYS)
    # the cost chart
    rows, steps, sig_cost, cost_parts, part_rows, part_steps = _cost_program(values, pols, syms, tmpl)
    cost = _chart(rows, steps)
    breakdown = _chart(part_rows, part_steps)
    # the map
    mrows, msteps, flat, tail, sig_map, arrays, map_parts, levels = _map_program(
        values, x, y, map_n, drag_n, candidates, against, syms, tmpl)
    cells = alt.Chart(alt.InlineData(values=mrows))
    for s in msteps:
        cells = cells.transform_filter(s["filter"]) if "filter" in s else \
            cells.transform_calculate(**{s["as"]: s["calculate"]})
    cells = cells.transform_flatten(flat)
    tail = list(tail) + _verdict_steps(candidates, against)
    for s in tail:
        cells = cells.transform_calculate(**{s["as"]: s["calculate"]})
    keep = _rule_filter((x, y), {k: tmpl[(p, "expected_ns")] for k, p in enumerate(map_pols)})
    if keep:
        cells = cells.transform_filter(keep)
    xv, yv, (x_lo, x_hi), (y_lo, y_hi), x_log, y_log = levels[-1]
    lines = [_crossings(cells, x, y, x_log), _crossings(cells, y, x, y_log, along="y")]
    # the parameters: the choices, the sliders of every numeric parameter the formulas read
    text = " ".join([s["calculate"] for s in steps + part_steps + msteps[1:] + tail if "calculate" in s]
                    + [p["expr"] for p in sig_cost + sig_map])
    used = set(re.findall(r"(?<![\w.])([a-z_][a-z0-9_]*)(?![\w(])", text))
    numeric = [n for n in registry.NUMERIC if n in used]
    frozen = {}
    for src in (cost_parts, map_parts):
        for label, (params, what) in src.frozen.items():
            have = frozen.setdefault(label, (set(), set()))
            have[0].update(params)  # the map's own axes are never among them (it computes along them)
            have[1].update(what)
    frozen = {k: (sorted(v[0]), ", ".join(sorted(v[1]))) for k, v in frozen.items()}
    sliders = slider_params(numeric, values)
    lo, hi = CPU_RANGE
    at = min(max(int(values["remote_cpus"]), lo), hi)
    point = [{"name": POINT_SIGNAL + LOG_SUFFIX, "value": round(math.log10(at), 6),
              "bind": {"input": "range", "min": 0, "max": round(math.log10(hi), 6), "step": LOG_STEP,
                       "name": "remote_cpus (CPUs, log) "}},
             {"name": POINT_SIGNAL, "expr": f"clamp(round(pow(10, {POINT_SIGNAL + LOG_SUFFIX})), {lo}, {hi})"}]
    detail = [{"name": DETAIL_SIGNAL, "value": True}]
    params = _choice_params(values) + sliders + point + detail + arrays + _dedupe_signals(sig_cost + sig_map)
    domains = ((float(x_lo.min()), float(x_hi.max())), (float(y_lo.min()), float(y_hi.max())))
    keys = [(p, k) for p in pols for k in _COST_KEYS]
    axes = _matters([a for a in (x, y) if a in registry.NUMERIC], tmpl, [(p, "expected_ns") for p in map_pols])
    return Explore(cost, breakdown, cells, lines, params, slider_inputs(params), x, y, x_log, y_log, domains, frozen,
                   numeric, _matters(numeric, tmpl, keys), axes)


def _dedupe_signals(params: list[dict]) -> list[dict]:
    seen, out = {}, []
    for p in params:
        if p["name"] in seen:
            if seen[p["name"]] != p["expr"]:
                raise NotPrintable(f"signal {p['name']} defined twice")
            continue
        seen[p["name"]] = p["expr"]
        out.append(p)
    return out
