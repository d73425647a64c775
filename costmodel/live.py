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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np
import sympy as sp

from . import charts, registry
from .evaluate import evaluate_point
from .model import BREAKDOWN, CANDIDATES, policy_outputs
from .vegaexpr import NotPrintable, printable, transforms

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
    from .model.numeric import lambdify

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
            point = charts.grid_point(values, {a: _typed(a, r[a]) for a in axes})
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
    import re

    text = " ".join(s["calculate"] for s in steps)
    used = set(re.findall(r"(?<![\w.])([a-z_][a-z0-9_]*)(?![\w(])", text))
    return {n for n in registry.NUMERIC if n in used and n not in axes}


def _used(exprs: Mapping[str, sp.Expr]) -> set[sp.Symbol]:
    return set().union(*(e.free_symbols for e in exprs.values()))


def _rule_steps(axes: Sequence[str], exprs: Mapping[str, sp.Expr]) -> tuple[list[dict], tuple[str, ...]]:
    """Per-row steps that keep a row feasible where a rule's partner is a chart axis and the
    parameter itself is not (:data:`VEGA_RULES`): cpus raised to remote_cpus + 1 along a
    remote_cpus axis, as :func:`charts.grid_point` does with :func:`registry.raise_cpus`. Returns
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
    import altair as alt

    c = alt.Chart(alt.InlineData(values=rows))
    if steps:
        c = c.transform_calculate(**{s["as"]: s["calculate"] for s in steps})
    return c


# ---- cost against remote_cpus ------------------------------------------------------------------


def cost_source(values: Mapping[str, object], policies: Sequence[str] = charts.POLICY_ORDER) -> LiveSource:
    """The columns of :func:`charts.cost_vs_cpus_data`, computed in the browser."""
    values = registry.resolve(values)
    axes = ("remote_cpus",)
    keys = ["expected_ns", "p_copy", "p_unnecessary_copy"] + [f"breakdown_ns.{b}" for b in BREAKDOWN]
    exprs, fixed, columns = _split_unprintable(values, _outputs(values, policies, keys), axes)
    lo, hi = charts.CPU_RANGE
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
               against: tuple[str, str] = charts.DEFAULT_AGAINST):
    """The columns of :attr:`charts.DecisionMap.cells` (first chart) and of its break-even
    line (two more charts: crossings found along x, and along y), computed in the browser.
    Returns the source, whether each axis is logarithmic, and the (x, y) domains of the cells."""
    values = registry.resolve(values)
    axes = (x, y)
    pols = tuple(candidates) + tuple(p for p in against if p not in candidates)
    exprs, fixed, columns = _split_unprintable(values, _outputs(values, pols, ["expected_ns"]), axes)
    xv, yv = charts.axis_values(x, n), charts.axis_values(y, n)
    x_log = charts.axis_is_log(x, float(xv.min()), float(xv.max())) and xv.min() > 0
    y_log = charts.axis_is_log(y, float(yv.min()), float(yv.max())) and yv.min() > 0
    x_lo, x_hi = charts.cell_edges(xv, x_log)
    y_lo, y_hi = charts.cell_edges(yv, y_log)
    # the grid as charts.decision_map_data lays it out (rows follow y), less the points that break
    # a rule between parameters at the set's values
    X, Y = np.meshgrid(xv, yv)
    ok = np.broadcast_to(registry.feasible(charts.grid_point(values, {x: X.ravel(), y: Y.ravel()})), X.size)
    rows = []
    for k in np.flatnonzero(ok):
        j, i = divmod(int(k), xv.size)
        rows.append({x: xv[i].item(), y: yv[j].item(), f"{x}_lo": x_lo[i].item(), f"{x}_hi": x_hi[i].item(),
                     f"{y}_lo": y_lo[j].item(), f"{y}_hi": y_hi[j].item()})
    extra = _precomputed(rows, columns, values, axes)
    rule_steps, row_fields = _rule_steps(axes, exprs)
    names = _names(axes + row_fields, extra)
    steps = rule_steps + transforms(exprs, names)
    for p in candidates:
        steps.append({"calculate": f"datum.{p}__expected_ns", "as": f"expected_{p}_ns"})
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


def _crossings(cells, move: str, keep: str, log: bool, along: str = "x"):
    """Where against_diff_ns changes sign between neighbours along ``move`` (per ``keep``),
    interpolated in ``move``'s own coordinate: the columns of :attr:`DecisionMap.line`."""
    import altair as alt

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
    (``<name>__log10``, with the parameter derived from it) where :func:`charts.slider_is_log`
    says so. On a log slider of a parameter whose lower bound is 0, the leftmost step is 0.

    The sliders are independent, the parameters are not: the signal the formulas read is kept
    feasible (:data:`VEGA_RULES`): ``batch_position`` is ``min(batch_position__raw,
    batch_size - 1)``, and ``cpus`` is raised to ``remote_cpus + 1`` where a remote_cpus slider
    asks for more. ``fixed``: parameters the charts hold at their value (no slider)."""
    values = registry.resolve(values)
    fixed = set(fixed)
    out = []
    for name in registry.NUMERIC:
        if name not in names:
            continue
        e = registry.NUMERIC[name]
        v = values[name]
        label = f"{name} ({e.unit}{', log' if charts.slider_is_log(name) else ''}) "
        if charts.slider_is_log(name):
            floor = charts.log_floor(name)
            if 0 < v < floor:
                floor = float(v)
            lo10, hi10 = math.log10(floor), math.log10(e.high)
            step = charts.LOG_STEP
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
    import altair as alt

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
