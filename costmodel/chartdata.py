"""The data behind the charts: the model evaluated with numpy (:func:`evaluate_arrays`) into tidy
DataFrames, one row per point (and policy), units in the column names. No altair here: these
frames feed the altair charts (:mod:`costmodel.charts`), the report's tables and words, the
notebooks and the tests alike, and each can be tested and timed on its own.

Conventions shared by the charts: ``remote_cpus`` runs 1..256 and, where the parameter set has
fewer CPUs than that needs, ``cpus`` is raised to ``remote_cpus + 1`` point by point (a machine
running the mm on r other CPUs has at least r + 1: :func:`registry.raise_cpus`). The decision map
compares the policies that test the reference count (:data:`costmodel.model.CANDIDATES`);
``mapcount`` reuses regardless and is the reference floor, not an option for a current kernel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from . import registry
from .axes import CPU_RANGE, GAP_PARAM, axis_is_log, axis_values, view_range
from .errors import UserError
from .evaluate import evaluate_arrays, policy_or_error, residency_value
from .model import BREAKDOWN, CANDIDATES, POLICIES
from .stats import Z95
from .textfmt import format_value
from .uncertainty import propagate_grid


#: every policy, in declaration order (colours follow this order everywhere)
POLICY_ORDER: tuple[str, ...] = tuple(POLICIES)
#: breakdown columns of a tidy cost frame, in the model's order
PART_COLUMNS: tuple[str, ...] = tuple(f"breakdown_{p}_ns" for p in BREAKDOWN)
#: the pair whose break-even line the decision map draws by default
DEFAULT_AGAINST: tuple[str, str] = ("drain_remote", "drain_local")
#: draws behind the bands of the cost chart and the probability map (their seeds are shown with them)
BAND_DRAWS = 1000
MAP_DRAWS = 1000


# ---- axes (their values: costmodel.axes) ---------------------------------------------------


def cell_edges(vals: np.ndarray, log: bool) -> tuple[np.ndarray, np.ndarray]:
    """Edges of the cells centred on ``vals`` (midpoints; geometric midpoints on a log axis)."""
    v = np.asarray(vals, dtype=float)
    if v.size == 1:  # a single row or column: a cell of a twentieth of a decade, or one unit
        return (v / 1.12, v * 1.12) if log else (v - 0.5, v + 0.5)
    if log:
        lv = np.log(v)
        mid = np.exp((lv[1:] + lv[:-1]) / 2)
        first, last = v[0] ** 2 / mid[0], v[-1] ** 2 / mid[-1]
    else:
        mid = (v[1:] + v[:-1]) / 2
        first, last = 2 * v[0] - mid[0], 2 * v[-1] - mid[-1]
    return np.concatenate([[first], mid]), np.concatenate([mid, [last]])


def grid_point(values: Mapping[str, object], arrays: Mapping[str, object]) -> dict:
    """``values`` with the swept ``arrays`` put in, and ``cpus`` raised to ``remote_cpus + 1``
    where needed (:func:`registry.raise_cpus`) when remote_cpus is swept and cpus is not: the
    charts' convention."""
    point = dict(values, **arrays)
    if "remote_cpus" in arrays and "cpus" not in arrays:
        point = registry.raise_cpus(point)
    return point


# ---- cost per WP fault against remote_cpus -------------------------------------------------------


def cost_vs_cpus_data(values: Mapping[str, object], remote_cpus: Iterable[float] | None = None,
                      policies: Iterable[str] | None = None, bands: Sequence | None = None,
                      draws: int = BAND_DRAWS, seed: int = 0) -> pd.DataFrame:
    """Expected cost per WP fault for each policy against ``remote_cpus``.

    One row per (remote_cpus, policy): ``remote_cpus``, ``cpus`` (raised to remote_cpus + 1 where
    the set has fewer), ``policy``, ``expected_ns``, ``p_copy``, ``p_unnecessary_copy`` and each
    ``breakdown_<part>_ns``. With ``bands`` (the uncertain parameters of the point, from
    :func:`costmodel.uncertainty.uncertain_parameters`): also ``expected_ns_low`` and
    ``expected_ns_high``, the 95% interval from ``draws`` draws (the same draws at every CPU
    count), and ``p_cheapest``, each candidate's probability of being the cheapest there (NaN for
    the others).
    """
    pols = tuple(policy_or_error(p) for p in (policies or POLICY_ORDER))
    x = np.arange(CPU_RANGE[0], CPU_RANGE[1] + 1, dtype=float) if remote_cpus is None \
        else np.asarray(list(remote_cpus), dtype=float)
    point = grid_point(values, {"remote_cpus": x})
    out = evaluate_arrays(point, pols)
    n, k = x.size, len(pols)
    cols = {
        "remote_cpus": np.tile(x, k).astype(int),
        "cpus": np.tile(np.broadcast_to(point["cpus"], x.shape), k).astype(int),
        "policy": pd.Categorical(np.repeat(pols, n), categories=list(pols)),
    }
    for key in ("expected_ns", "p_copy", "p_unnecessary_copy"):
        cols[key] = np.concatenate([out[(p, key)] for p in pols])
    for part, colname in zip(BREAKDOWN, PART_COLUMNS):
        cols[colname] = np.concatenate([out[(p, f"breakdown_ns.{part}")] for p in pols])
    if bands is not None:
        grid = propagate_grid(values, {"remote_cpus": x, "cpus": np.broadcast_to(point["cpus"], x.shape)}, bands,
                              draws=draws, seed=seed, policies=pols)
        cols["expected_ns_low"] = np.concatenate([grid.intervals[(p, "expected_ns")][0] for p in pols])
        cols["expected_ns_high"] = np.concatenate([grid.intervals[(p, "expected_ns")][1] for p in pols])
        shares = {c: grid.p_cheapest[i] for i, c in enumerate(grid.candidates)}
        cols["p_cheapest"] = np.concatenate([shares.get(p, np.full(n, np.nan)) for p in pols])
    return pd.DataFrame(cols)


def cheapest_along(df: pd.DataFrame, x: str = "remote_cpus", candidates: Sequence[str] = CANDIDATES) -> list[dict]:
    """Runs of the x axis over which one candidate is cheapest, from a tidy cost frame:
    ``[{"from": x0, "to": x1, "policy": name, "margin_pct_min": ..}]`` (ties go to the earlier
    candidate in declaration order)."""
    wide = df[df["policy"].isin(candidates)].pivot(index=x, columns="policy", values="expected_ns")
    wide = wide[[c for c in candidates if c in wide.columns]]
    costs = wide.to_numpy().T
    order = np.argsort(costs, axis=0, kind="stable")
    best = order[0]
    margin = (np.take_along_axis(costs, order[1:2], 0)[0] - np.take_along_axis(costs, order[:1], 0)[0])
    margin_pct = 100 * margin / np.take_along_axis(costs, order[:1], 0)[0]
    runs, start = [], 0
    xs = wide.index.to_numpy()
    for i in range(1, len(xs) + 1):
        if i == len(xs) or best[i] != best[start]:
            runs.append({"from": xs[start].item(), "to": xs[i - 1].item(), "policy": wide.columns[best[start]],
                         "margin_pct_min": float(margin_pct[start:i].min())})
            start = i
    return runs


# ---- decision map -------------------------------------------------------------------------------


@dataclass
class DecisionMap:
    """The cheapest candidate policy over a grid of two parameters.

    ``cells``: one row per grid point: the two parameters, their cell edges (``<name>_lo``,
    ``<name>_hi``), ``cheapest``, ``cheapest_ns``, ``runner_up``, ``margin_ns`` (runner-up minus
    cheapest), ``margin_pct`` (the same relative to the cheapest), ``expected_<policy>_ns`` per
    candidate, and ``against_diff_ns`` (first minus second policy of ``against``).
    ``line``: points where the two policies of ``against`` cost the same, found along each
    axis of the grid and interpolated: the two parameters, ``along`` ("x" or "y") and ``order``.
    With uncertainty, each cell also has ``p_cheapest`` (the probability that its cheapest policy
    is the cheapest, over the parameters' intervals), ``p_cheapest_<policy>`` per candidate and
    ``most_likely`` (the candidate most often cheapest).
    """

    x: str
    y: str
    candidates: tuple[str, ...]
    against: tuple[str, str]
    cells: pd.DataFrame
    line: pd.DataFrame
    x_log: bool = False
    y_log: bool = False
    infeasible: int = 0
    notes: list[str] = field(default_factory=list)
    #: with uncertainty: the draws and seed behind the cells' ``p_cheapest`` (0 and None without)
    draws: int = 0
    seed: int | None = None


def decision_map_data(values: Mapping[str, object], x: str = "remote_cpus", y: str = "wp_gap_s", n: int = 200,
                      x_values: Sequence[float] | None = None, y_values: Sequence[float] | None = None,
                      candidates: Sequence[str] = CANDIDATES,
                      against: tuple[str, str] = DEFAULT_AGAINST, uncertain: Sequence | None = None,
                      draws: int = MAP_DRAWS, seed: int = 0, scheduler=None) -> DecisionMap:
    """Evaluate every candidate over an ``n`` x ``n`` grid of ``x`` and ``y`` (or given values).
    ``uncertain``: the point's uncertain parameters (:func:`costmodel.uncertainty.uncertain_parameters`);
    each cell's probabilities then come from ``draws`` draws of them, the same draws in every
    cell (``scheduler``: a dask.distributed address or Client to compute the cells on; the same
    numbers)."""
    if x == y:
        raise UserError(f"the decision map needs two different parameters, got {x} twice")
    cands = tuple(policy_or_error(p) for p in candidates)
    ag = tuple(policy_or_error(p) for p in against)
    xv = np.asarray(x_values, dtype=float) if x_values is not None else axis_values(x, n)
    yv = np.asarray(y_values, dtype=float) if y_values is not None else axis_values(y, n)
    for name, vals in ((x, xv), (y, yv)):
        for v in (vals.min(), vals.max()):
            registry.parse_value(name, float(v))
    X, Y = np.meshgrid(xv, yv)  # shape (ny, nx): rows follow y
    point = grid_point(values, {x: X.ravel(), y: Y.ravel()})
    ok = np.broadcast_to(registry.feasible(point), X.size)
    pols = cands + tuple(p for p in ag if p not in cands)
    out = evaluate_arrays(point, pols)
    costs = np.stack([out[(p, "expected_ns")] for p in cands])
    order = np.argsort(costs, axis=0, kind="stable")
    best, second = order[0], order[1] if len(cands) > 1 else order[0]
    idx = np.arange(costs.shape[1])
    best_ns, second_ns = costs[best, idx], costs[second, idx]
    names = np.asarray(cands)
    x_log = axis_is_log(x, float(xv.min()), float(xv.max())) and xv.min() > 0
    y_log = axis_is_log(y, float(yv.min()), float(yv.max())) and yv.min() > 0
    x_lo, x_hi = cell_edges(xv, x_log)
    y_lo, y_hi = cell_edges(yv, y_log)
    cols = {
        x: point[x], y: point[y],
        f"{x}_lo": np.tile(x_lo, yv.size), f"{x}_hi": np.tile(x_hi, yv.size),
        f"{y}_lo": np.repeat(y_lo, xv.size), f"{y}_hi": np.repeat(y_hi, xv.size),
        "cheapest": pd.Categorical(names[best], categories=list(cands)),
        "cheapest_ns": best_ns,
        "runner_up": pd.Categorical(names[second], categories=list(cands)),
        "margin_ns": second_ns - best_ns,
        "margin_pct": 100 * (second_ns - best_ns) / best_ns,
    }
    for p, c in zip(cands, costs):
        cols[f"expected_{p}_ns"] = c
    diff = out[(ag[0], "expected_ns")] - out[(ag[1], "expected_ns")]
    cols["against_diff_ns"] = diff
    if "cpus" not in (x, y) and np.ndim(point["cpus"]):  # raised per point
        cols["cpus"] = point["cpus"]
    if uncertain is not None:
        axes = {x: X.ravel(), y: Y.ravel()}
        if "cpus" not in axes and np.ndim(point["cpus"]):
            axes["cpus"] = np.broadcast_to(point["cpus"], X.size)
        grid = propagate_grid(values, axes, uncertain, draws=draws, seed=seed, policies=cands, keys=(),
                              scheduler=scheduler)
        cols["p_cheapest"] = grid.p_cheapest[best, idx]
        for i, p in enumerate(cands):
            cols[f"p_cheapest_{p}"] = grid.p_cheapest[i]
        likely = np.argmax(np.nan_to_num(grid.p_cheapest, nan=-1.0), axis=0)
        cols["most_likely"] = pd.Categorical(names[likely], categories=list(cands))
    cells = pd.DataFrame(cols)
    for name in (x, y):
        if registry.NUMERIC[name].integer:
            cells[name] = cells[name].astype(int)
    infeasible = int((~ok).sum())
    if infeasible:
        cells = cells[ok].reset_index(drop=True)
    line = _zero_crossings(x, y, xv, yv, np.where(ok, diff, np.nan).reshape(yv.size, xv.size), x_log, y_log)
    notes = []
    if infeasible:
        notes.append(f"{infeasible} grid points break a rule between parameters and are left out")
    if uncertain is not None:
        notes.append(f"P(cheapest) from {draws:,} draws (seed {seed}) of the parameters' intervals, the same in every cell")
    return DecisionMap(x, y, cands, ag, cells, line, x_log, y_log, infeasible, notes,
                       draws if uncertain is not None else 0, seed if uncertain is not None else None)


def _coord(v: np.ndarray, log: bool) -> np.ndarray:
    return np.log(v) if log else v


def _uncoord(c: np.ndarray, log: bool) -> np.ndarray:
    return np.exp(c) if log else c


def _zero_crossings(x: str, y: str, xv: np.ndarray, yv: np.ndarray, d: np.ndarray,
                    x_log: bool, y_log: bool) -> pd.DataFrame:
    """Where the sign of ``d`` (shape ny x nx) flips between neighbouring cells, interpolated
    linearly in each axis' own coordinate (log for log axes)."""
    frames = []
    # along x: neighbours in one row (fixed y)
    a, b = d[:, :-1], d[:, 1:]
    iy, ix = np.nonzero(a * b < 0)
    if iy.size:
        t = a[iy, ix] / (a[iy, ix] - b[iy, ix])
        cx = _coord(xv, x_log)
        xs = _uncoord(cx[ix] + t * (cx[ix + 1] - cx[ix]), x_log)
        frames.append(pd.DataFrame({x: xs, y: yv[iy], "along": "x", "order": yv[iy]}))
    a, b = d[:-1, :], d[1:, :]
    iy, ix = np.nonzero(a * b < 0)
    if iy.size:
        t = a[iy, ix] / (a[iy, ix] - b[iy, ix])
        cy = _coord(yv, y_log)
        ys = _uncoord(cy[iy] + t * (cy[iy + 1] - cy[iy]), y_log)
        frames.append(pd.DataFrame({x: xv[ix], y: ys, "along": "y", "order": xv[ix]}))
    if not frames:
        return pd.DataFrame({x: pd.Series(dtype=float), y: pd.Series(dtype=float),
                             "along": pd.Series(dtype=str), "order": pd.Series(dtype=float)})
    return pd.concat(frames, ignore_index=True)


def map_shares(dm: DecisionMap) -> pd.DataFrame:
    """Share of the map's cells where each candidate is cheapest, with the ranges it covers."""
    rows = []
    total = len(dm.cells)
    for p in dm.candidates:
        sub = dm.cells[dm.cells["cheapest"] == p]
        if sub.empty:
            continue
        rows.append({"policy": p, "share_pct": 100 * len(sub) / total,
                     f"{dm.x}_min": sub[dm.x].min(), f"{dm.x}_max": sub[dm.x].max(),
                     f"{dm.y}_min": sub[dm.y].min(), f"{dm.y}_max": sub[dm.y].max(),
                     "median_margin_pct": float(sub["margin_pct"].median())})
    return pd.DataFrame(rows)


# ---- residency ----------------------------------------------------------------------------------

#: the parameter that measures the gap under each gap model


def default_map_axes(values: Mapping[str, object]) -> tuple[str, str]:
    """remote_cpus against the parameter that measures the gap under the set's gap model."""
    return "remote_cpus", GAP_PARAM[values["gap_model"]]


def residency_data(values: Mapping[str, object], n: int = 60, gap_models: Sequence[str] | None = None) -> pd.DataFrame:
    """Closed-form residency against the gap for each gap model.

    One row per (gap_model, gap value): ``gap_model``, ``gap_param`` (``wp_gap_s`` or
    ``adds_between``), ``gap`` (its value), ``gap_unit``, ``residency`` (probability),
    ``source`` = "closed form", and ``ci_low``/``ci_high`` (NaN here; filled for simulation rows).
    """
    models = tuple(gap_models or registry.CATEGORICAL["gap_model"].choices)
    rows = []
    for g in models:
        param = GAP_PARAM[g]
        xs = axis_values(param, n)
        if param == "adds_between":
            xs = np.arange(0, min(2 * int(values["batch_size"]), int(view_range(param)[1])) + 1, dtype=float)
        for v in xs:
            point = dict(values, gap_model=g, **{param: int(v) if registry.NUMERIC[param].integer else float(v)})
            rows.append({"gap_model": g, "gap_param": param, "gap": float(v), "gap_unit": registry.NUMERIC[param].unit,
                         "residency": residency_value(point), "source": "closed form",
                         "ci_low": np.nan, "ci_high": np.nan})
    return pd.DataFrame(rows)


# ---- what flips the verdict ---------------------------------------------------------------------


def flip_words(r, fmt) -> str:
    """What the flip search found for one row of a sensitivity table, in words: where another
    candidate takes over, "no flip within its bounds" (searched over the parameter's whole
    registry range, not only its interval), "shifts every candidate alike" or "not searched"."""
    flips = []
    if r["flip_below"] is not None:
        flips.append(f"{r['flips_to_below']} below {fmt(r['flip_below'], r['unit'])}")
    if r["flip_above"] is not None:
        flips.append(f"{r['flips_to_above']} above {fmt(r['flip_above'], r['unit'])}")
    if flips:
        return "; ".join(flips)
    if not r.get("flip_searched", True):
        return "not searched"
    if not r.get("rival_moves", True):
        return "shifts every candidate alike: no flip"
    return "no flip within its bounds"


def tornado_data(sens, n: int | None = 12) -> pd.DataFrame:
    """The first ``n`` rows of a :class:`costmodel.uncertainty.Sensitivity` ranking, as the
    tornado chart reads them: ``label`` (parameter and origin), ``rank``, ``margin_min`` ..
    ``margin_max`` (the cost of ``rival``, the runner-up that can overtake as this parameter
    moves, minus the verdict's over the parameter's interval, ns), ``margin_at_value``,
    ``interval`` and ``flip`` (words), ``gain``, ``origin``."""
    t = sens.table.head(n) if n else sens.table
    rows = []
    for i, r in enumerate(t.to_dict("records")):
        rows.append({"label": f"{r['parameter']} ({r['origin']})", "parameter": r["parameter"], "rank": i,
                     "origin": "measured" if r["origin"] == "measured" else "assumed or varied",
                     "rival": r.get("rival", "") if r.get("rival_moves", True) else "",
                     "margin_min": r["margin_min"], "margin_max": r["margin_max"],
                     "margin_at_value": r["margin_at_value"],
                     "interval": f"{format_value(r['low'], r['unit'])} .. {format_value(r['high'], r['unit'])}",
                     "flip": flip_words(r, format_value), "gain": r["gain"]})
    return pd.DataFrame(rows, columns=["label", "parameter", "rank", "origin", "rival", "margin_min", "margin_max",
                                       "margin_at_value", "interval", "flip", "gain"])


# ---- calibration ------------------------------------------------------------------------------

_RESIDUAL_VALUE_PREFIXES = ("observed_", "fitted_", "residual", "se_")


def short_measurement_label(label: str, panel: str = "") -> str:
    """A measured quantity's name for an axis, in short lines (joined by newlines): the probe, then
    the operation with its own settings, a difference's second side after a minus sign (its probe
    name dropped where it repeats), and the settings both sides share said once, in parentheses
    ('remote_drain / seal_remote / - seal_local / (remote_state=idle)'); ``op=`` dropped, and the
    probe's own line where the panel bears its name."""
    parts = [p.split() for p in label.split(" - ")]
    if len(parts) > 2 or not all(parts):
        return label
    shared = [t for t in parts[0][1:] if t in parts[1][1:]] if len(parts) == 2 else []
    lines = []
    for i, tokens in enumerate(parts):
        probe, rest = tokens[0], [t for t in tokens[1:] if t not in shared]
        rest = [t[len("op="):] if t.startswith("op=") else t for t in rest]
        if i == 0 and probe != panel:
            lines.append(probe)
        elif probe != parts[0][0]:
            rest = [probe] + rest
        lines.extend(" ".join(rest[j:j + 1]) for j in range(len(rest)))
        if i == 1 and lines:
            first_of_second = len(lines) - len(rest)
            lines[first_of_second] = "- " + lines[first_of_second]
    if shared:
        lines.append(f"({' '.join(t[len('op='):] if t.startswith('op=') else t for t in shared)})")
    return "\n".join(l for l in lines if l)


def calibration_data(paramset) -> pd.DataFrame:
    """The measured points of every fit recorded in a parameter set, tidy.

    One row per measured point: ``fit``, ``x_name``, ``x``, ``x_label`` and ``x_kind``
    ("quantitative", or "nominal" where the fit's points are named measurements rather than a
    swept variable), ``series`` (a grouping column of the record such as ``drained_first``, else
    ""), ``unit``, ``observed``, ``fitted``, ``residual``,
    ``ci_low``/``ci_high`` (observed +- :data:`stats.Z95` standard errors where the record has them).
    Fits without residual rows (not fitted) are left out.
    """
    rows = []
    for rec in getattr(paramset, "fit", None) or []:
        res = rec.get("residuals") or []
        if not res:
            continue
        keys = list(res[0].keys())
        obs_key = next((k for k in keys if k.startswith("observed_")), None)
        fit_key = next((k for k in keys if k.startswith("fitted_")), None)
        if obs_key is None or fit_key is None:
            continue
        unit = obs_key[len("observed_"):]
        se_key = next((k for k in keys if k.startswith("se_")), None)
        x_key = next((k for k in keys if not k.startswith(_RESIDUAL_VALUE_PREFIXES) and k != "n"
                      and isinstance(res[0][k], (int, float)) and not isinstance(res[0][k], bool)), None)
        label_key = next((k for k in keys if isinstance(res[0][k], str)), None)
        series_key = next((k for k in keys if isinstance(res[0][k], bool)), None)
        for i, r in enumerate(res):
            obs, fitted = r[obs_key], r[fit_key]
            se = r.get(se_key) if se_key else None
            x = float(r[x_key]) if x_key else float(i)
            rows.append({
                "fit": rec.get("name", "?"), "x_name": x_key or label_key or "point", "x": x,
                "x_label": (short_measurement_label(str(r[label_key]), rec.get("name", ""))
                            if (label_key and not x_key) else f"{x:g}"),
                "x_kind": "quantitative" if x_key else "nominal",
                "series": f"{series_key}={r[series_key]}" if series_key else "", "unit": unit,
                "observed": obs, "fitted": fitted, "residual": obs - fitted,
                "ci_low": obs - Z95 * se if se is not None else np.nan,
                "ci_high": obs + Z95 * se if se is not None else np.nan,
            })
    return pd.DataFrame(rows, columns=["fit", "x_name", "x", "x_label", "x_kind", "series", "unit", "observed",
                                       "fitted", "residual", "ci_low", "ci_high"])


def parameter_sets_data(sets: Mapping[str, object], names: Sequence[str] | None = None) -> pd.DataFrame:
    """Numeric machine parameters of several parameter sets side by side, tidy: ``set``,
    ``parameter``, ``unit``, ``value``, ``ci_low``, ``ci_high``, ``source``."""
    rows = []
    for set_name, ps in sets.items():
        for name, entry in ps.parameters.items():
            if name not in registry.NUMERIC or (names and name not in names):
                continue
            if registry.NUMERIC[name].kind != registry.MACHINE:
                continue
            rows.append({"set": set_name, "parameter": name, "unit": registry.NUMERIC[name].unit,
                         "value": float(entry.value),
                         "ci_low": np.nan if entry.ci_low is None else float(entry.ci_low),
                         "ci_high": np.nan if entry.ci_high is None else float(entry.ci_high),
                         "source": entry.source})
    return pd.DataFrame(rows, columns=["set", "parameter", "unit", "value", "ci_low", "ci_high", "source"])


def machine_comparison_data(sets: Mapping[str, object]) -> pd.DataFrame:
    """Every machine cost (a machine parameter in ns) of each parameter set, with its interval,
    tidy, one row per (machine, parameter): ``machine`` (the key of ``sets``), ``parameter``,
    ``value_ns``, ``ci_low_ns``, ``ci_high_ns`` (NaN where the set gives no interval),
    ``source`` (measured, published or assumed, as the set says), ``measured`` (bool), and
    ``copy_ns`` rows derived from the copy: ``page_bytes / copy_bandwidth_gbps`` (its interval
    from the bandwidth's, its source the bandwidth's), so a bandwidth is compared as a time."""
    rows = []
    for machine, ps in sets.items():
        params = ps.parameters
        for name, e in registry.NUMERIC.items():
            if e.kind != registry.MACHINE or e.unit != "ns" or name not in params:
                continue
            entry = params[name]
            rows.append({"machine": machine, "parameter": name, "value_ns": float(entry.value),
                         "ci_low_ns": np.nan if entry.ci_low is None else float(entry.ci_low),
                         "ci_high_ns": np.nan if entry.ci_high is None else float(entry.ci_high),
                         "source": str(entry.source)})
        bw, pb = params.get("copy_bandwidth_gbps"), params.get("page_bytes")
        if bw is not None and pb is not None and float(bw.value) > 0:
            b = float(pb.value)
            lo = np.nan if bw.ci_high is None or not float(bw.ci_high) > 0 else b / float(bw.ci_high)
            hi = np.nan if bw.ci_low is None or not float(bw.ci_low) > 0 else b / float(bw.ci_low)
            rows.append({"machine": machine, "parameter": "copy_ns (page_bytes / copy_bandwidth_gbps)",
                         "value_ns": b / float(bw.value), "ci_low_ns": lo, "ci_high_ns": hi,
                         "source": str(bw.source)})
    df = pd.DataFrame(rows, columns=["machine", "parameter", "value_ns", "ci_low_ns", "ci_high_ns", "source"])
    df["measured"] = df["source"] == "measured"
    return df


def prediction_data(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`costmodel.prediction.predict` as the prediction chart reads them: one
    per configuration with ``probe``, ``config``, ``label`` (probe and configuration),
    ``measured_ns`` (the mean) with ``measured_ci_low``/``measured_ci_high``, ``predicted_ns``
    with its interval, ``priced`` (False where no WP fault was taken, so the model prices
    nothing that was timed), ``within_tolerance``, ``kind`` (words for the colour: the probe,
    or that nothing was priced), ``model_p_copy``, ``copied`` with its interval, and
    ``copy_inside``."""
    r = rows
    out = pd.DataFrame({
        "probe": r["probe"].astype(str), "config": r["config"].astype(str),
        "measured_ns": pd.to_numeric(r["mean_ns"], errors="coerce"),
        "measured_ci_low": pd.to_numeric(r["mean_ci_low"], errors="coerce"),
        "measured_ci_high": pd.to_numeric(r["mean_ci_high"], errors="coerce"),
        "predicted_ns": pd.to_numeric(r["predicted_ns"], errors="coerce"),
        "predicted_ci_low": pd.to_numeric(r["predicted_ci_low"], errors="coerce"),
        "predicted_ci_high": pd.to_numeric(r["predicted_ci_high"], errors="coerce"),
        "priced": r["priced"].astype(bool),
        "within_tolerance": r["within_tolerance"].astype(bool),
        "model_p_copy": pd.to_numeric(r["model_p_copy"], errors="coerce"),
        "copied": pd.to_numeric(r["copied"], errors="coerce"),
        "copied_ci_low": pd.to_numeric(r["copied_ci_low"], errors="coerce"),
        "copied_ci_high": pd.to_numeric(r["copied_ci_high"], errors="coerce"),
        "copy_inside": r["copy_inside"].map(lambda v: None if v is None or v != v else bool(v)),
    })
    out["label"] = out["probe"] + " " + out["config"]
    out["kind"] = np.where(out["priced"], out["probe"], "no WP fault taken (not priced)")
    return out.reset_index(drop=True)


def concat_rows(*frames: pd.DataFrame) -> pd.DataFrame:
    """Stack tidy frames of the same columns (closed-form and simulated rows, say)."""
    return pd.concat([f for f in frames if f is not None and not f.empty], ignore_index=True)


# ---- the probe's copies: model, simulation, kernel, with a legend --------------------------------

PROBE_SOURCES = ("model", "simulation", "kernel")


def probe_chart_data(df: pd.DataFrame, policy: str = "drain_local", kernel: str = "kernel") -> pd.DataFrame:
    """:func:`costmodel.validate.unnecessary_copy_validation`'s frame, long: one row per
    (adds_between, drained_first, source) with ``value``, ``low``, ``high`` and ``label`` (the
    legend's words: the model and its policy, the simulation, the measurement set)."""
    labels = {"model": f"model ({policy})", "simulation": "simulation (95% interval)",
              "kernel": f"kernel: {kernel} (95% Wilson interval)"}
    cols = {"model": ("model", None, None), "simulation": ("sim", "sim_low", "sim_high"),
            "kernel": ("measured", "measured_low", "measured_high")}
    out = []
    for src, (v, lo, hi) in cols.items():
        if v not in df.columns or df[v].isna().all():
            continue
        part = pd.DataFrame({"adds_between": df["adds_between"].astype(int),
                             "drained_first": np.where(df["drained_first"].astype(bool),
                                                       "drained first (page at position 0)",
                                                       "no drain first (stationary position)"),
                             "source": src, "label": labels[src], "value": df[v].astype(float),
                             "low": df[lo].astype(float) if lo else np.nan,
                             "high": df[hi].astype(float) if hi else np.nan})
        out.append(part.dropna(subset=["value"]))
    return pd.concat(out, ignore_index=True)
