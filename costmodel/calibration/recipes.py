"""Fit recipes: each turns summarised measurements into parameters through the model's own
expressions (:mod:`costmodel.model.forward`), so a recipe never restates a formula."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from .. import registry, stats
from ..textfmt import format_ns
from ..errors import UserError
from ..paramfile import REFERENCE_DIR
from .fitting import (N_BOOT, SEED, MIN_SHAPE_COUNTS, CurveFit, Estimate, FitOutcome, default_ratio, percentile_interval,
                      round_to, bootstrap_curve, fit_curve, information_criterion)

# ---- shootdown -----------------------------------------------------------------------------

SHOOTDOWN_PARAMS = ("shootdown_base_ns", "shootdown_per_cpu_ns")


@lru_cache(maxsize=None)
def shootdown_shape(shape: str) -> tuple[Callable, int]:
    """The model's own shootdown cost (:func:`costmodel.model.forward.shootdown_at_ns`) for
    ``targets >= 1`` as ``f(params, targets)`` and its number of free parameters among
    :data:`SHOOTDOWN_PARAMS` (1 for ``broadcast``: base only). Any other parameter the expression
    comes to contain is held at its registry default."""
    from ..model.forward import TARGETS, measurable
    from ..model.numeric import lambdify

    expr = measurable("shootdown_ns", shape)
    base, per = registry.S["shootdown_base_ns"], registry.S["shootdown_per_cpu_ns"]
    others = sorted((sym for sym in expr.free_symbols if sym not in (base, per, TARGETS)), key=str)
    fn = lambdify((base, per, TARGETS, *others), expr)
    fixed = [float(registry.NUMERIC[str(sym)].default) for sym in others]
    nparams = 2 if per in expr.free_symbols else 1

    def model(p, x):
        out = fn(p[0], p[1] if nparams == 2 else 0.0, np.asarray(x, float), *fixed)
        return np.broadcast_to(np.asarray(out, float), np.shape(x)).astype(float)

    return model, nparams


PUBLISHED_SHOOTDOWN_SET = "milan72-ipi.json"


@lru_cache(maxsize=None)
def published_shootdown_shape(source_dir: str | Path = REFERENCE_DIR) -> dict | None:
    """Shape and base:per ratio of the published multi-CPU shootdown curve (the reference set built
    from the 72-CPU Milan tlb_flush2 sweep), to extend a measurement at too few target counts; None
    where the reference set is absent."""
    path = Path(source_dir) / PUBLISHED_SHOOTDOWN_SET
    if not path.is_file():
        return None
    import io

    from ..paramfile import load

    ps = load(path, notes_to=io.StringIO())
    p = ps.parameters
    return {"shape": p["shootdown_model"].value, "base_ns": float(p["shootdown_base_ns"].value),
            "per_cpu_ns": float(p["shootdown_per_cpu_ns"].value),
            "citation": f"reference set {path.stem}: Rik van Riel, INVLPGB series, kernel 6.15"}


def shootdown_shapes() -> tuple[str, ...]:
    return registry.CATEGORICAL["shootdown_model"].choices


def fit_shootdown(targets, cost_ns, se_ns=None, *, rng: np.random.Generator, n_boot: int = N_BOOT,
                  data: str = "", unit_scale: float = 1.0, min_counts: int = MIN_SHAPE_COUNTS) -> FitOutcome:
    """Shootdown base and per-CPU cost, and the shape, from the cost at each target count (>= 1).

    ``unit_scale`` multiplies values (and intervals) into ns when the data are in another unit.
    """
    x = np.asarray(targets, float)
    y = np.asarray(cost_ns, float)
    se = None if se_ns is None else np.asarray(se_ns, float)
    keep = x >= 1
    x, y = x[keep], y[keep]
    se = None if se is None else se[keep]
    if x.size == 0:
        raise UserError("shootdown: no measurement with at least one target CPU (needs a second online CPU)")
    finite_or_error("shootdown", x, y, se)
    counts = np.unique(x)
    weighting = "weights 1/se" if se is not None else "equal weights (no per-point errors)"
    hi = float(np.max(np.abs(y))) * 10 + 1.0
    ests: dict[str, Estimate] = {}
    record = {"name": "shootdown", "parameters": ["shootdown_model", *SHOOTDOWN_PARAMS], "n_points": int(x.size),
              "data": data}
    if counts.size >= min_counts:
        fits = {}
        for shape in shootdown_shapes():
            model, npar = shootdown_shape(shape)
            lower, upper = [0.0] * 2, [hi, hi]
            p0 = [max(float(np.min(y)), 0.0), max(float(np.ptp(y)) / max(float(np.ptp(x)), 1.0), 0.0)]
            fits[shape] = _fit2(model, npar, x, y, se, p0, lower, upper)
        ic = information_criterion({s: f for s, (f, _) in fits.items()})
        shape = ic["chosen"]
        fit, padded = fits[shape]
        model, npar = shootdown_shape(shape)
        draws = _boot2(model, npar, fit, x, se, [0.0, 0.0], [hi, hi], rng, n_boot)
        shape_note = (f"chosen by {ic['name']} among {', '.join(shootdown_shapes())} over {counts.size} target counts"
                      f" ({', '.join(f'{s} {v:g}' for s, v in ic['values'].items())})")
        ests["shootdown_model"] = Estimate(shape, "measured", shape_note)
        record["information_criterion"] = ic
        record["method"] = (f"scipy least_squares, soft_l1 loss, {weighting}; shape by "
                            f"{ic['name']}; parametric bootstrap ({n_boot}, seed {SEED})")
        names = SHOOTDOWN_PARAMS[:npar]
        for i, name in enumerate(names):
            lo, hi_ = percentile_interval(draws[:, i])
            ests[name] = Estimate(fit.params[i] * unit_scale, "measured", f"fitted ({shape} shape); {data}",
                                  lo * unit_scale, hi_ * unit_scale)
        if npar == 1:
            ests["shootdown_per_cpu_ns"] = Estimate(0.0, "assumed",
                                                    "0: the chosen broadcast shape has no per-CPU term")
    else:
        ref = published_shootdown_shape()
        shape = ref["shape"] if ref is not None else registry.CATEGORICAL["shootdown_model"].default
        model, _ = shootdown_shape(shape)
        basis = (f"the shape of the published multi-CPU curve ({ref['citation']}), anchored at the measured point"
                 if ref is not None else f"the registry default {shape!r}")
        ests["shootdown_model"] = Estimate(
            shape, "published" if ref is not None else "assumed",
            f"only {counts.size} target count(s) measured ({', '.join(f'{c:g}' for c in counts)}); at least"
            f" {min_counts} are needed to choose the shape, so {basis} is taken; linear, log2 and broadcast"
            " remain possible beyond the measured count (the interval of the per-CPU cost spans them)")
        record["information_criterion"] = {"name": "none", "chosen": shape,
                                           "note": f"fewer than {min_counts} target counts: shape assumed"}
        if counts.size == 2:
            fit, _ = _fit2(model, 2, x, y, se, [max(float(np.min(y)), 0.0), 0.0], [0.0, 0.0], [hi, hi])
            draws = _boot2(model, 2, fit, x, se, [0.0, 0.0], [hi, hi], rng, n_boot)
            record["method"] = f"scipy least_squares, soft_l1 loss, {weighting}; parametric bootstrap ({n_boot}, seed {SEED})"
            for i, name in enumerate(SHOOTDOWN_PARAMS):
                lo, hi_ = percentile_interval(draws[:, i])
                ests[name] = Estimate(fit.params[i] * unit_scale, "measured",
                                      f"fitted with the assumed {shape} shape through 2 target counts; {data}",
                                      lo * unit_scale, hi_ * unit_scale)
        else:
            # one target count: only base + per * g(k) is identifiable
            kk = float(counts[0])
            g = float(model(np.array([0.0, 1.0]), np.array([kk]))[0])
            w = np.ones_like(y) if se is None else 1.0 / se ** 2
            total = float(np.sum(w * y) / np.sum(w))
            total_se = float(1.0 / math.sqrt(np.sum(w))) if se is not None else 0.0
            ref = published_shootdown_shape()
            if ref is not None and ref["shape"] == shape:
                d = np.array([ref["base_ns"], ref["per_cpu_ns"]])  # base : per of the published curve
                ratio_basis = f"the published multi-CPU curve's ratio ({ref['citation']})"
            else:
                d = default_ratio(SHOOTDOWN_PARAMS)  # base : per in the registry defaults
                ratio_basis = "the registry defaults' ratio (assumed)"
            share_base = d[0] / (d[0] + d[1] * g)
            sums = total + total_se * rng.standard_normal(n_boot)
            lo, hi_ = percentile_interval(sums)
            fit = _constant_fit(x, y, total)
            record["method"] = f"weighted mean at one target count; parametric bootstrap ({n_boot}, seed {SEED})"
            split = (f"only the sum shootdown_base_ns + shootdown_per_cpu_ns x {g:g} = {format_ns(total * unit_scale)} at"
                     f" {kk:g} target CPU(s) is identifiable; split in {ratio_basis} {d[0]:.4g}:{d[1]:.4g};"
                     f" the interval spans the other shapes, from broadcast (all base, per-CPU 0) to this split; {data}")
            share_per = (1 - share_base) / g
            # the shape beyond the measured count is the uncertainty: broadcast puts the whole sum in the
            # base (per-CPU 0), the split puts share_base of it there
            ests["shootdown_base_ns"] = Estimate(total * share_base * unit_scale, "measured", split,
                                                 lo * share_base * unit_scale, hi_ * unit_scale)
            ests["shootdown_per_cpu_ns"] = Estimate(total * share_per * unit_scale, "measured", split,
                                                    0.0, hi_ * share_per * unit_scale)
            record["identifiable"] = "sum only (one target count)"
    record["residuals"] = _residual_rows("target_cpus", x, y, fit.fitted, se, unit_scale)
    record["measured_targets_max"] = int(counts.max())
    return FitOutcome(ests, record)


def _fit2(model, npar, x, y, se, p0, lower, upper):
    """fit_curve over the first ``npar`` parameters (the rest held at 0)."""
    def m(p, xx):
        return model(np.r_[p, np.zeros(2 - npar)], xx)

    f = fit_curve(m, x, y, se, p0[:npar], lower[:npar], upper[:npar])
    return f, m


def _boot2(model, npar, fit, x, se, lower, upper, rng, n_boot):
    def m(p, xx):
        return model(np.r_[p, np.zeros(2 - npar)], xx)

    return bootstrap_curve(m, fit, x, se, lower[:npar], upper[:npar], rng, n_boot)


def _constant_fit(x, y, value) -> CurveFit:
    fitted = np.full_like(y, value, dtype=float)
    return CurveFit(np.array([value]), fitted, y - fitted, float(np.sum((y - fitted) ** 2)), len(y), 1, False, 1.0,
                    np.ones_like(fitted))


def _residual_rows(xname: str, x, y, fitted, se, unit_scale: float = 1.0, unit: str = "ns") -> list[dict]:
    rows = []
    for i in range(len(y)):
        row = {xname: round_to(x[i]) if not float(x[i]).is_integer() else int(x[i]),
               f"observed_{unit}": round_to(y[i] * unit_scale), f"fitted_{unit}": round_to(fitted[i] * unit_scale),
               f"residual_{unit}": round_to((y[i] - fitted[i]) * unit_scale, 4)}
        if se is not None:
            row[f"se_{unit}"] = round_to(se[i] * unit_scale, 4)
        rows.append(row)
    return rows


def finite_or_error(what: str, *arrays) -> None:
    for a in arrays:
        if a is not None and not np.all(np.isfinite(np.asarray(a, float))):
            raise UserError(f"{what}: the measurements hold NaN or infinite values; re-run the probe")


# ---- local drain ---------------------------------------------------------------------------

DRAIN_PARAMS = ("drain_base_ns", "drain_per_folio_ns")


def fit_drain(folios, cost_ns, se_ns=None, *, rng: np.random.Generator, n_boot: int = N_BOOT,
              data: str = "") -> FitOutcome:
    """``lru_add_drain()`` cost against the folios it moves: a straight line."""
    x = np.asarray(folios, float)
    y = np.asarray(cost_ns, float)
    se = None if se_ns is None else np.asarray(se_ns, float)
    finite_or_error("drain_cost", x, y, se)
    if np.unique(x).size < 2:
        raise UserError(f"drain_cost: needs at least 2 different batch fills to fit base and per-folio cost;"
                        f" got {np.unique(x).size}")

    def model(p, xx):
        return p[0] + p[1] * xx

    hi = float(np.max(np.abs(y))) * 10 + 1.0
    slope0 = max(float(np.polyfit(x, y, 1)[0]), 0.0)
    # plain weighted least squares: the line through the means (a robust loss would follow the
    # medians' side of a heavy tail, which the expected cost must not)
    fit = fit_curve(model, x, y, se, [max(float(np.min(y)), 0.0), slope0], [0.0, 0.0], [hi, hi], loss="linear")
    draws = bootstrap_curve(model, fit, x, se, [0.0, 0.0], [hi, hi], rng, n_boot, loss="linear")
    ests = {}
    for i, name in enumerate(DRAIN_PARAMS):
        lo, hi_ = percentile_interval(draws[:, i])
        ests[name] = Estimate(fit.params[i], "measured", f"straight line through {np.unique(x).size} batch fills; {data}",
                              lo, hi_)
    record = {"name": "drain", "parameters": list(DRAIN_PARAMS), "n_points": int(x.size), "data": data,
              "intercept_ns": round_to(float(fit.params[0])),
              "method": f"scipy least_squares, linear loss (the means' line), weights 1/se; parametric bootstrap"
                        f" ({n_boot}, seed {SEED})",
              "residuals": _residual_rows("folios", x, y, fit.fitted, se)}
    return FitOutcome(ests, record)


# ---- fault entry, reuse, copy --------------------------------------------------------------

def measurable_parameters(*names: str) -> tuple[str, ...]:
    """The parameters (registry order) that the named measurables contain, page_bytes aside (the
    machine reports it)."""
    from ..model.forward import measurable

    free = set().union(*(measurable(n).free_symbols for n in names))
    return tuple(n for n in registry.NUMERIC if registry.S[n] in free and n != "page_bytes")


#: what the reuse fault alone identifies (as a sum), and everything the fault/copy recipe fits
#: the cold-path cost is fitted before (fit_cold) and known to the fault/copy recipe
COLD_PARAMS = ("cold_fault_ns",)
REUSE_SPLIT = tuple(n for n in measurable_parameters("reuse_fault_ns") if n not in COLD_PARAMS)
FAULT_AND_COPY_PARAMS = tuple(n for n in measurable_parameters("reuse_fault_ns", "page_copy_ns", "copy_fault_ns")
                              if n not in COLD_PARAMS)


@dataclass(frozen=True)
class Obs:
    """One summarised measurement: its value (a mean or a median), the standard error of that
    value, and which statistic it is."""

    value: float
    se: float
    label: str = ""
    statistic: str = "median"


def _unknowns(expr, known: Mapping[str, object]) -> list[str]:
    return [n for n in registry.NUMERIC if registry.S[n] in expr.free_symbols and n not in known]


def solve_measurement(expr, observed, known: Mapping[str, object]) -> tuple[dict, str]:
    """The parameters of ``expr`` not in ``known`` from one measurement ``observed`` of it
    (values or arrays of bootstrap draws). One unknown: solved exactly. Several, appearing
    linearly: only their weighted sum is identifiable, so it is split in the ratio of the
    registry defaults (said in the returned description). Returns (name -> value, description of
    what was identifiable)."""
    import sympy as sp

    from ..model.forward import linear_terms
    from ..model.numeric import lambdify

    names = _unknowns(expr, known)
    if not names:
        raise ValueError("the measurement identifies nothing new")
    workload = [n for n in names if registry.NUMERIC[n].kind == registry.WORKLOAD]
    if workload:   # a measurable must say what the probe's faults were (CONTRIBUTING, "Add a parameter")
        raise ValueError(f"a measured quantity holds the workload parameter(s) {', '.join(workload)}: pass the"
                         f" value the probe's faults had in its measurable (costmodel/model/forward.py)")
    syms = [registry.S[n] for n in names]
    known_names = [n for n in registry.NUMERIC if registry.S[n] in expr.free_symbols and n in known]
    kvals = [np.asarray(known[n], float) for n in known_names]
    ksyms = [registry.S[n] for n in known_names]
    y = sp.Symbol("observed")
    terms = linear_terms(expr, syms)
    if terms is not None and len(names) >= 1:
        coeffs, rest = terms
        defaults = {n: float(registry.NUMERIC[n].default) for n in names}
        if len(names) == 1 or not any(defaults.values()):
            # one unknown (or no default ratio to split by): solved directly, several split evenly
            defaults = {n: 1.0 for n in names}
        weight = sum(coeffs[registry.S[n]] * defaults[n] for n in names)
        scale = lambdify([y, *ksyms], (y - rest) / weight)(np.asarray(observed, float), *kvals)
        out = {n: np.asarray(scale, float) * defaults[n] for n in names}
        if len(names) == 1:
            return out, names[0]
        shown = " + ".join(n if coeffs[registry.S[n]] == 1 else f"{coeffs[registry.S[n]]} {n}" for n in names)
        return out, shown
    if len(names) == 1:
        sol = [r for r in sp.solve(sp.Eq(expr, y), syms[0]) if not r.is_number or r.is_positive]
        if len(sol) != 1:
            raise ValueError(f"cannot solve {expr} for {names[0]}")
        return {names[0]: np.asarray(lambdify([y, *ksyms], sol[0])(np.asarray(observed, float), *kvals), float)}, names[0]
    raise ValueError(f"{expr}: several unknowns ({', '.join(names)}) that do not enter linearly")


def zero_share_parts(names) -> list[str]:
    """The parts of a measured sum split in the ratio of the registry defaults (two or more names)
    whose default is 0: the split gives them no share, so it keeps them at 0 (assumed, with the
    interval the split allows: 0 to the whole sum) and never takes their 0 for an inconsistency.
    Where every default is 0 the sum is split evenly instead (:func:`solve_measurement`): none."""
    names = list(names)
    defaults = {n: float(registry.NUMERIC[n].default) for n in names}
    if len(names) < 2 or not any(defaults.values()):
        return []
    return [n for n in names if defaults[n] == 0]


def zero_share_note(name: str, shown: str, obs: "Obs", total: float, t_lo: float, t_hi: float, ratio: str) -> str:
    """What the split did with a part of default 0 (see :func:`zero_share_parts`)."""
    return (f"split of a measured sum, kept at 0: only {shown} = {format_ns(total)} [{format_ns(t_lo)},"
            f" {format_ns(t_hi)}] is identifiable from {obs.label} ({obs.statistic} {format_ns(obs.value)}, less the"
            f" parameters measured before it); split in the registry defaults' ratio ({ratio}), {name}'s default 0"
            f" takes no share (assumed, not measured); its interval is what the split allows: 0 to the whole sum")


def fit_fault_and_copy(reuse: Obs, copy: Obs, copy_4k: Obs, copy_bytes: float, *, rng: np.random.Generator,
                       n_boot: int = N_BOOT, known: Mapping[str, float] | None = None,
                       known_draws: Mapping[str, np.ndarray] | None = None) -> FitOutcome:
    """From three measurements, through the model's own expressions
    (:mod:`costmodel.model.forward`): the reuse fault, a cold page copy and the copy fault with no
    other CPU in the mm. Each fixes what it contains that the ones before did not; several
    parameters entering one measurement linearly are identifiable only as their sum, split in
    the ratio of the registry defaults (assumed, said in each note)."""
    from ..model.forward import measurable

    for o in (reuse, copy, copy_4k):
        finite_or_error(o.label or "fault_cost", [o.value, o.se])
        if o.value <= 0:
            raise UserError(f"{o.label}: {o.statistic} {o.value:g} ns is not positive; re-run the probe")
    steps = [(reuse, measurable("reuse_fault_ns")), (copy_4k, measurable("page_copy_ns")),
             (copy, measurable("copy_fault_ns"))]
    z = rng.standard_normal((n_boot, len(steps)))
    point: dict[str, object] = {"page_bytes": float(copy_bytes)}
    draws: dict[str, object] = {"page_bytes": np.full(n_boot, float(copy_bytes))}
    for n in COLD_PARAMS:   # fitted before (0 where the set has no cold measurement)
        v = float((known or {}).get(n, registry.NUMERIC[n].default))
        point[n] = v
        kd = (known_draws or {}).get(n)
        draws[n] = np.full(n_boot, v) if kd is None or len(kd) != n_boot else np.asarray(kd, float)
    groups = []
    for i, (obs, expr) in enumerate(steps):
        values, shown = solve_measurement(expr, obs.value, point)
        # a part of a split whose registry default is 0 is kept at 0 by the split (said in its
        # note): only the parts that take a share must come out above 0
        if any(float(v) <= 0 for n, v in values.items() if n not in zero_share_parts(values)):
            raise UserError(f"{obs.label}: {obs.statistic} {format_ns(obs.value)} leaves {shown} at or below 0 once the"
                            " parameters measured before it are taken out; the measurements are inconsistent,"
                            " re-run fault_cost and copy_bandwidth")
        sample = np.maximum(obs.value + obs.se * z[:, i], obs.value * 1e-3)
        boot, _ = solve_measurement(expr, sample, draws)
        point.update({n: float(v) for n, v in values.items()})
        draws.update({n: np.maximum(np.asarray(v, float), 0.0) for n, v in boot.items()})
        groups.append((obs, shown, list(values)))
    ests = {}
    splits = []
    for obs, shown, names in groups:
        if len(names) > 1:
            # a split of one measured sum: the sum is measured, the shares are the registry defaults'
            # ratio (assumed); each part can be anything from 0 to the whole sum, and that is its interval
            ratio = ":".join(f"{registry.NUMERIC[n].default:g}" for n in names)
            total = sum(point[n] for n in names)
            total_draw = sum(np.asarray(draws[n], float) for n in names)
            t_lo, t_hi = percentile_interval(total_draw)
            note = (f"split of a measured sum: only {shown} = {format_ns(total)} [{format_ns(t_lo)}, {format_ns(t_hi)}] is"
                    f" identifiable from {obs.label} ({obs.statistic} {format_ns(obs.value)}, less the parameters measured"
                    f" before it); this part is the registry defaults' share ({ratio}, assumed), and its interval is what"
                    f" the split allows: 0 to the whole sum")
            splits.append({"parameters": list(names), "sum_ns": round_to(total), "sum_ci_low": round_to(t_lo),
                           "sum_ci_high": round_to(t_hi), "shares": {n: round_to(point[n] / total, 4) for n in names}})
            zero = zero_share_parts(names)
            for n in names:
                if n in zero:
                    ests[n] = Estimate(0.0, "assumed", zero_share_note(n, shown, obs, total, t_lo, t_hi, ratio),
                                       0.0, max(t_hi, 0.0))
                else:
                    ests[n] = Estimate(point[n], "measured", note, 0.0, max(t_hi, point[n]))
            continue
        note = f"from {obs.label} ({obs.statistic} {format_ns(obs.value)}) through the model's expression"
        for n in names:
            ests[n] = Estimate(point[n], "measured", note, *percentile_interval(draws[n]))
    fitted = [float(evaluate_measurable(expr, point)) for _, expr in steps]
    rows = [{"measurement": o.label, "statistic": o.statistic, "observed_ns": round_to(o.value), "se_ns": round_to(o.se, 4),
             "fitted_ns": round_to(f), "residual_ns": round_to(o.value - f, 4)} for (o, _), f in zip(steps, fitted)]
    names_all = [n for _, _, names in groups for n in names]
    record = {"name": "fault_and_copy", "parameters": names_all, "n_points": 3,
              "identifiable": "; ".join((f"split: {shown}" if len(names) > 1 else shown) for _, shown, names in groups),
              "splits": splits,
              "forward": ["reuse_fault_ns", "page_copy_ns", "copy_fault_ns"],
              "split_rule": "several parameters in one measurement: split in the ratio of the registry defaults",
              "statistic": "/".join(sorted({o.statistic for o in (reuse, copy, copy_4k)})),
              "method": f"exactly determined through the model's expressions; parametric bootstrap from each"
                        f" value's standard error ({n_boot}, seed {SEED})",
              "residuals": rows}
    return FitOutcome(ests, record)


def evaluate_measurable(expr, values: Mapping[str, object], **free):
    """``expr`` at ``values`` (registry defaults for what they lack) and the free variables."""
    from ..model.numeric import lambdify

    syms = sorted(expr.free_symbols, key=str)
    args = []
    for sym in syms:
        name = str(sym)
        if name in free:
            args.append(np.asarray(free[name], float))
        elif name in values:
            args.append(np.asarray(values[name], float))
        else:
            args.append(np.asarray(registry.NUMERIC[name].default, float))
    return lambdify(syms, expr)(*args)


# ---- batch size ----------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _copy_fraction_fns():
    from ..model.forward import measurable
    from ..model.numeric import lambdify

    S = registry.S
    args = (S["batch_size"], S["adds_between"])
    return (lambdify(args, measurable("copy_fraction_after_drain")),
            lambdify(args, measurable("copy_fraction_unknown_position")))


def copy_fraction(batch_size: int, adds_between: np.ndarray, drained: np.ndarray) -> np.ndarray:
    """Expected copy fraction of a cross-CPU write of a single target page, from the model's
    residency (:mod:`costmodel.model.forward`): at position 0 after a drain, or at the stationary
    (uniform, without drains) position."""
    k = np.asarray(adds_between, float)
    after, unknown = _copy_fraction_fns()
    B = np.full(k.shape, float(batch_size))
    at_zero = np.broadcast_to(np.asarray(after(B, k), float), k.shape)
    uniform = np.broadcast_to(np.asarray(unknown(B, k), float), k.shape)
    return np.where(np.asarray(drained, bool), at_zero, uniform)


#: a copy seen where the model says none (or none where it says one): stray drains, migrations
FLIP_RATE = 0.01


def fit_batch_size(adds_between, copies, n, drained, *, rng: np.random.Generator, n_boot: int = N_BOOT,
                   data: str = "") -> FitOutcome:
    """Maximum-likelihood integer batch size from cross-CPU copy counts (binomial, with a 1 %
    flip rate); the interval joins the set of equally likely sizes (a coarse grid of k cannot
    tell them apart) with a parametric bootstrap of the counts."""
    k = np.asarray(adds_between, float)
    c = np.asarray(copies, float)
    n = np.asarray(n, float)
    d = np.asarray(drained, bool)
    finite_or_error("unnecessary_copy", k, c, n)
    if k.size == 0 or np.sum(n) == 0:
        raise UserError("unnecessary_copy: no cross-CPU small-page measurements to find the batch size from")
    spec = registry.NUMERIC["batch_size"]
    candidates = np.arange(int(spec.low), int(spec.high) + 1)
    p = FLIP_RATE + (1 - 2 * FLIP_RATE) * np.array([copy_fraction(B, k, d) for B in candidates])  # (B, rows)
    log_p, log_q = np.log(p), np.log1p(-p)

    def loglik(counts):  # counts: (..., rows) -> (..., candidates)
        return counts @ log_p.T + (n - counts) @ log_q.T

    ll = loglik(c)
    ties = candidates[ll >= ll.max() - 1e-9]
    B_hat = int(ties.min())
    frac = np.clip(c / np.maximum(n, 1), 0, 1)
    cb = rng.binomial(n.astype(int), frac, size=(n_boot, k.size)).astype(float)
    llb = loglik(cb)
    boots = candidates[np.argmax(llb >= llb.max(axis=1, keepdims=True) - 1e-9, axis=1)]  # smallest best
    lo = min(int(ties.min()), int(np.percentile(boots, 2.5)))
    hi = max(int(ties.max()), int(np.percentile(boots, 97.5)))
    fitted = copy_fraction(B_hat, k, d)
    note = (f"maximum likelihood over integer sizes from {int(np.sum(n))} cross-CPU writes at {np.unique(k).size}"
            f" values of adds_between; {data}")
    if ties.size > 1:
        note += f"; sizes {ties.min()}..{ties.max()} fit equally well (the grid of adds_between has gaps), the smallest is given"
    residuals = [{"adds_between": int(k[i]), "drained_first": bool(d[i]), "n": int(n[i]),
                  "observed_fraction": round_to(frac[i], 4), "fitted_fraction": round_to(fitted[i], 4),
                  "residual": round_to(frac[i] - fitted[i], 4)} for i in range(k.size)]
    record = {"name": "batch_size", "parameters": ["batch_size"], "n_points": int(k.size), "data": data,
              "method": (f"binomial maximum likelihood over integer batch sizes {int(spec.low)}..{int(spec.high)}, "
                         f"flip rate {FLIP_RATE:g}; parametric bootstrap of the counts ({n_boot}, seed {SEED})"),
              "log_likelihood": round_to(float(ll.max()), 6), "residuals": residuals}
    return FitOutcome({"batch_size": Estimate(B_hat, "measured", note, lo, hi)}, record)



def clamped_difference(d: float, se: float) -> tuple[float, str]:
    """A cost that cannot be negative, measured as a difference ``d`` with standard error ``se``:
    the upper end of its 95% interval where it is clamped to 0 (what noise of that size could hide,
    1.96 se), and what the note should add: nothing above 0, else whether the difference was within
    noise of 0 or clearly below it (then the two sides differ in something else)."""
    z = stats.Z95
    if d > 0:
        return d + z * se, ""
    if d + z * se >= 0:
        return z * se, f"; {format_ns(d)}, within noise of 0: 0"
    return z * se, (f"; {format_ns(d)} [{format_ns(d - z * se)}, {format_ns(d + z * se)}], clearly below 0: the two sides differ in "
                    f"something besides this cost (another CPU, another moment of the host); 0, up to what noise "
                    f"of this size could hide")


def _fit_difference(forward: tuple[str, str], there: Obs, here: Obs, d_draw: np.ndarray, point: dict, draws: dict,
                    less: str = "") -> tuple[str, Estimate, dict]:
    """One non-negative cost from the difference of two measured quantities (``forward``: the
    measurables of ``there`` and of ``here``), through the model's expressions, given what
    ``point`` and ``draws`` already know; both are updated with it. Returns (its name, its
    estimate, its residual row); ``less`` names what was taken out besides ``here``."""
    from ..model.forward import measurable

    expr = measurable(forward[0]) - measurable(forward[1])
    d = there.value - here.value
    se = math.hypot(there.se, here.se)
    v, _ = solve_measurement(expr, d, point)
    vb, _ = solve_measurement(expr, d_draw, draws)
    (name, value), = v.items()
    upper, below = clamped_difference(float(value), se)
    value = max(float(value), 0.0)
    point[name] = value
    draws[name] = np.maximum(np.asarray(vb[name], float), 0.0)
    fitted = float(evaluate_measurable(expr, point))
    low, high = percentile_interval(draws[name])
    est = Estimate(value, "measured",
                   f"{there.label} minus {here.label} ({there.statistic}s: {format_ns(there.value)} - "
                   f"{format_ns(here.value)})" + (f", less {less}" if less else "") + below,
                   low, high if value > 0 else max(high, upper))
    row = {"measurement": f"{there.label} - {here.label}", "statistic": there.statistic, "observed_ns": round_to(d),
           "se_ns": round_to(se, 4), "fitted_ns": round_to(fitted), "residual_ns": round_to(d - fitted, 4), "forward": list(forward)}
    return name, est, row


def fit_sibling(plain: Obs, spinning: Obs, *, rng: np.random.Generator, n_boot: int = N_BOOT) -> FitOutcome:
    """``sibling_fault_ns`` from the same reuse fault with and without a sibling thread spinning on
    the other CPU, through the model's expressions (their difference). A difference within noise of
    0 or below gives 0 (the interval says how far it reaches)."""
    forward = ("reuse_fault_sibling_ns", "reuse_fault_ns")
    d_draw = spinning.value - plain.value + math.hypot(plain.se, spinning.se) * rng.standard_normal(n_boot)
    name, est, row = _fit_difference(forward, spinning, plain, d_draw, {}, {})
    record = {"name": "sibling", "parameters": [name], "n_points": 1, "forward": list(forward),
              "method": f"difference of two {spinning.statistic}s; parametric bootstrap ({n_boot}, seed {SEED})",
              "residuals": [row]}
    return FitOutcome({name: est}, record)


def fit_cold(first: Obs, round_mean: Obs, *, rng: np.random.Generator, n_boot: int = N_BOOT) -> FitOutcome:
    """``cold_fault_ns`` from the first reuse fault after a fork, timed alone, against the mean of
    fault_cost's rounds of 16 reuses after a fork (one cold, 15 following a fault), through the
    model's expressions (their difference is 15/16 of the cold cost). A difference within noise of
    0 or below gives 0 (the interval says how far it reaches)."""
    forward = ("reuse_fault_cold_ns", "reuse_fault_ns")
    d_draw = first.value - round_mean.value + math.hypot(first.se, round_mean.se) * rng.standard_normal(n_boot)
    draws: dict = {}
    name, est, row = _fit_difference(forward, first, round_mean, d_draw, {}, draws)
    record = {"name": "cold", "parameters": [name], "n_points": 1, "forward": list(forward),
              "method": f"difference of two {first.statistic}s; parametric bootstrap ({n_boot}, seed {SEED})",
              "residuals": [row]}
    return FitOutcome({name: est}, record)


FAULT_DRAIN_PARAMS = ("drain_base_ns",)


def fit_fault_drain(drained: Obs, first: Obs, *, per_folio_ns: float, rng: np.random.Generator,
                    n_boot: int = N_BOOT) -> FitOutcome:
    """``drain_base_ns`` as a fault pays it: fault_cost's cold reuse that drains the one folio of
    its CPU's batch, less the same cold reuse with the batch empty, less the one folio the drain
    moves (``drain_per_folio_ns``, from drain_cost's line), through the model's expressions.
    drain_cost's own line starts at madvise(MADV_COLD), whose system call and page walk a fault
    does not pay. A difference within noise of 0 or below gives 0 (the interval says how far it
    reaches)."""
    forward = ("reuse_drain_cold_ns", "reuse_fault_cold_ns")
    d_draw = drained.value - first.value + math.hypot(drained.se, first.se) * rng.standard_normal(n_boot)
    known = {"drain_per_folio_ns": float(per_folio_ns)}
    draws = {"drain_per_folio_ns": np.full(n_boot, float(per_folio_ns))}
    name, est, row = _fit_difference(forward, drained, first, d_draw, dict(known), draws,
                                     less=f"one folio at drain_per_folio_ns ({format_ns(per_folio_ns)})")
    record = {"name": "fault_drain", "parameters": [name], "n_points": 1, "forward": list(forward),
              "method": f"difference of two {drained.statistic}s less the drain line's per-folio cost (held at its"
                        f" value); parametric bootstrap ({n_boot}, seed {SEED})",
              "residuals": [row]}
    return FitOutcome({name: est}, record)


SWAP_CACHE_PARAMS = ("swap_free_ns", "swap_shared_copy_ns")


def fit_swap_cache(reuse_swapped: Obs, reuse: Obs, copy_shared: Obs, copy: Obs, *, rng: np.random.Generator,
                   n_boot: int = N_BOOT) -> FitOutcome:
    """What the swap cache adds to a fault, from swap_cow's rounds of each kind, shuffled together:
    a reuse of a folio read back through the swap cache (the fault frees its swap entry) less the
    same reuse of a page that stayed in memory gives ``swap_free_ns``; a copy of a swapped-in folio
    whose entry a live child holds less the copy of a page the child maps gives
    ``swap_shared_copy_ns``. Through the model's expressions (their differences). A difference within
    noise of 0 or below gives 0 (the interval says how far it reaches)."""
    z = rng.standard_normal((n_boot, 4))
    pairs = [(("reuse_fault_swapcache_ns", "reuse_fault_ns"), reuse_swapped, reuse),
             (("copy_fault_swap_shared_ns", "copy_fault_ns"), copy_shared, copy)]
    ests, rows = {}, []
    for k, (forward, there, here) in enumerate(pairs):
        d_draw = (there.value + there.se * z[:, 2 * k]) - (here.value + here.se * z[:, 2 * k + 1])
        name, est, row = _fit_difference(forward, there, here, d_draw, {}, {})
        ests[name] = est
        rows.append(row)
    record = {"name": "swap_cache", "parameters": list(SWAP_CACHE_PARAMS), "n_points": len(rows),
              "forward": [r["forward"] for r in rows],
              "method": f"differences of {reuse.statistic}s in the same rounds; parametric bootstrap ({n_boot},"
                        f" seed {SEED})",
              "residuals": rows}
    return FitOutcome(ests, record)


CROSS_CPU_PARAMS = ("cross_cpu_fault_ns", "cross_cpu_copy_ns")


def fit_cross_cpu(reuse: Obs, reuse_other: Obs, copy: Obs, copy_other: Obs, *, rng: np.random.Generator,
                  n_boot: int = N_BOOT) -> FitOutcome:
    """What a WP fault on another CPU than the page's installer adds: the reuse written there less
    the same reuse on the installing CPU gives ``cross_cpu_fault_ns``; the copy a live child forces
    there (the page on the LRU, so no drain in the fault), less the same copy on the installing
    CPU, less that, gives ``cross_cpu_copy_ns``.
    Through the model's expressions (their differences). A difference within noise of 0 or below
    gives 0 (the interval says how far it reaches)."""
    z = rng.standard_normal((n_boot, 4))
    pairs = [(("reuse_fault_other_cpu_ns", "reuse_fault_ns"), reuse_other, reuse, ""),
             (("copy_fault_other_cpu_ns", "copy_fault_ns"), copy_other, copy, "cross_cpu_fault_ns")]
    point: dict = {}
    draws: dict = {}
    ests, rows = {}, []
    for k, (forward, there, here, less) in enumerate(pairs):
        d_draw = (there.value + there.se * z[:, 2 * k]) - (here.value + here.se * z[:, 2 * k + 1])
        name, est, row = _fit_difference(forward, there, here, d_draw, point, draws, less)
        ests[name] = est
        rows.append(row)
    record = {"name": "cross_cpu", "parameters": list(CROSS_CPU_PARAMS), "n_points": len(rows),
              "forward": [r["forward"] for r in rows],
              "method": f"differences of {reuse.statistic}s on the two CPUs; parametric bootstrap ({n_boot}, seed {SEED})",
              "residuals": rows}
    return FitOutcome(ests, record)


def fit_receive(lost: Obs, *, rng: np.random.Generator, n_boot: int = N_BOOT) -> FitOutcome:
    """``shootdown_receive_ns`` from what a sibling spinning in user space loses per shootdown IPI
    it receives (its spin rate during the sender's flushes against its rate alone), through the
    model's expression."""
    from ..model.forward import measurable

    expr = measurable("shootdown_receive_ns")
    if not lost.value > 0:
        raise UserError(f"{lost.label}: the sibling lost {format_ns(lost.value)} per IPI, not more than 0; "
                        f"re-run `costmodel bench --probe shootdown` on a quiet machine")
    v, _ = solve_measurement(expr, lost.value, {})
    vb, _ = solve_measurement(expr, np.maximum(lost.value + lost.se * rng.standard_normal(n_boot), 0.0), {})
    (name, value), = v.items()
    est = Estimate(float(value), "measured", f"{lost.label} ({lost.statistic} per IPI received)",
                   *percentile_interval(np.asarray(vb[name], float)))
    rows = [{"measurement": lost.label, "statistic": lost.statistic, "observed_ns": round_to(lost.value),
             "se_ns": round_to(lost.se, 4), "fitted_ns": round_to(float(value)), "residual_ns": round_to(lost.value - float(value), 4),
             "forward": ["shootdown_receive_ns"]}]
    record = {"name": "shootdown_receive", "parameters": [name], "n_points": 1, "forward": ["shootdown_receive_ns"],
              "method": f"one {lost.statistic}, pooled over target counts; parametric bootstrap ({n_boot}, seed {SEED})",
              "residuals": rows}
    return FitOutcome({name: est}, record)


LOCK_PARAMS = ("cacheline_transfer_ns", "drain_per_remote_folio_ns")


def fit_lock_transfer(handoff: Obs, local: Obs, remote_full: Obs, local_full: Obs, known: Mapping[str, float], *,
                      rng: np.random.Generator, n_boot: int = N_BOOT) -> FitOutcome:
    """What another CPU's lines cost: ``cacheline_transfer_ns`` from a lock handed between the two
    CPUs less the same lock on one (one modified line moved), and ``drain_per_remote_folio_ns``
    from a local drain of batch_size - 1 folios whose lines the other CPU wrote last less the same
    drain with them local, through the model's expressions with the local per-folio cost and the
    batch size ``known``. Differences of means; a difference below 0 within noise gives its floor."""
    from ..model.forward import measurable

    z = rng.standard_normal((n_boot, 4))
    ests, rows = {}, []
    pairs = [("lock_transfer_ns", handoff, local, z[:, 0], z[:, 1]),
             ("remote_refs_drain_extra_ns", remote_full, local_full, z[:, 2], z[:, 3])]
    for forward, there, here, z1, z2 in pairs:
        expr = measurable(forward)
        d = there.value - here.value
        se = math.hypot(there.se, here.se)
        point = {n: known[n] for n in ("drain_per_folio_ns", "batch_size") if n in known}
        v, _ = solve_measurement(expr, d, point)
        vb, _ = solve_measurement(expr, (there.value + there.se * z1) - (here.value + here.se * z2), point)
        (name, value), = v.items()
        value = max(float(value), 0.0)
        draws = np.maximum(np.asarray(vb[name], float), 0.0)
        low, high = percentile_interval(draws)
        fitted = float(evaluate_measurable(expr, dict(point, **{name: value})))
        ests[name] = Estimate(value, "measured", f"{there.label} minus {here.label} ({there.statistic}s: "
                              f"{format_ns(there.value)} - {format_ns(here.value)})", low, high)
        rows.append({"measurement": f"{there.label} - {here.label}", "statistic": there.statistic,
                     "observed_ns": round_to(d), "se_ns": round_to(se, 4), "fitted_ns": round_to(fitted),
                     "residual_ns": round_to(d - fitted, 4), "forward": [forward]})
    record = {"name": "lock_transfer", "parameters": list(LOCK_PARAMS), "n_points": len(rows),
              "forward": [r["forward"] for r in rows],
              "method": f"differences of {handoff.statistic}s; parametric bootstrap ({n_boot}, seed {SEED})",
              "residuals": rows}
    return FitOutcome(ests, record)


REMOTE_PARAMS = ("drain_all_base_ns", "remote_drain_ns", "remote_drain_busy_ns", "remote_drain_rt_ns")
#: remote CPU state -> the measurable that prices it
REMOTE_STATES = {"idle": "remote_drain_idle_ns", "busy": "remote_drain_busy_ns", "rt": "remote_drain_rt_ns"}


def fit_remote_drain(base: Obs, hole: Obs, seals: Mapping[str, tuple[Obs, Obs]], *, rng: np.random.Generator,
                     n_boot: int = N_BOOT) -> FitOutcome:
    """lru_add_drain_all() with no CPU needing a drain (``base`` less the ``hole`` control: the same
    fadvise call that needs no drain-all), then per remote CPU state the drain-all with one CPU
    needing a drain (a sealed memfd whose folio sits in that CPU's batch, less the seal whose
    folio the local drain frees), less that base: the remote drain. Means: the cost has a heavy
    tail and the model prices the expected cost. Through the model's expressions."""
    from ..model.forward import measurable

    z = rng.standard_normal((n_boot, 2 + 2 * len(seals)))
    diff = base.value - hole.value
    diff_draw = (base.value + base.se * z[:, 0]) - (hole.value + hole.se * z[:, 1])
    point, draws = {}, {}
    ests, rows = {}, []
    v, _ = solve_measurement(measurable("drain_all_base_ns"), max(diff, 0.0), point)
    vb, _ = solve_measurement(measurable("drain_all_base_ns"), np.maximum(diff_draw, 0.0), draws)
    point.update({k: float(x) for k, x in v.items()})
    draws.update({k: np.asarray(x, float) for k, x in vb.items()})
    ests["drain_all_base_ns"] = Estimate(point["drain_all_base_ns"], "measured",
                                         f"{base.label} minus {hole.label} ({base.statistic}s: {format_ns(base.value)} - "
                                         f"{format_ns(hole.value)})", *percentile_interval(draws["drain_all_base_ns"]))
    rows.append({"measurement": f"{base.label} - {hole.label}", "statistic": base.statistic, "observed_ns": round_to(diff),
                 "se_ns": round_to(math.hypot(base.se, hole.se), 4), "fitted_ns": round_to(point["drain_all_base_ns"]),
                 "residual_ns": round_to(diff - point["drain_all_base_ns"], 4)})
    for i, (state, (remote, control)) in enumerate(seals.items()):
        expr = measurable("drain_all_base_ns") + measurable(REMOTE_STATES[state])
        d = remote.value - control.value
        d_draw = (remote.value + remote.se * z[:, 2 + 2 * i]) - (control.value + control.se * z[:, 3 + 2 * i])
        v, shown = solve_measurement(expr, d, point)
        vb, _ = solve_measurement(expr, d_draw, draws)
        (name, value), = v.items()
        if value <= 0:
            raise UserError(f"{remote.label}: the seal with the folio in the other CPU's batch ({format_ns(remote.value)}) is"
                            f" not dearer than the control plus the drain-all base; re-run remote_drain")
        ests[name] = Estimate(float(value), "measured",
                              f"{remote.label} minus {control.label} ({remote.statistic}s), less drain_all_base_ns",
                              *percentile_interval(np.maximum(np.asarray(vb[name], float), 0.0)))
        point[name] = float(value)
        draws[name] = np.asarray(vb[name], float)
        rows.append({"measurement": f"{remote.label} - {control.label}", "statistic": remote.statistic,
                     "observed_ns": round_to(d), "se_ns": round_to(math.hypot(remote.se, control.se), 4),
                     "fitted_ns": round_to(float(evaluate_measurable(expr, point))),
                     "residual_ns": round_to(d - float(evaluate_measurable(expr, point)), 4)})
    record = {"name": "remote_drain", "parameters": list(ests), "n_points": len(rows),
              "forward": ["drain_all_base_ns", *(REMOTE_STATES[s] for s in seals)],
              "statistic": base.statistic,
              "method": f"differences of means against controls; parametric bootstrap ({n_boot}, seed {SEED})",
              "residuals": rows}
    return FitOutcome(ests, record)

