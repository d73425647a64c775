"""Fit machine parameters to measurements, and build the reference sets from published figures.

What each probe identifies (``costmodel bench`` writes the tidy rows this module reads):

================================  ==============================================================
parameters                        from
================================  ==============================================================
``fault_entry_ns + reuse_ns``     ``fault_cost`` op=reuse_after_fork (median). Only the **sum** is
                                  identifiable; it is split in the ratio of the registry defaults
                                  (the split is assumed, said in each note; every model output
                                  depends on the sum alone when the copy costs keep their sum)
``copy_bandwidth_gbps``           ``copy_bandwidth`` op=copy_4k cache_state=cold: bytes / median ns
``alloc_ns + local_flush_ns       ``fault_cost`` op=copy_child_alive minus fault_entry_ns minus the
+ free_ns``                       cold 4 KiB copy time. Only the **sum** is identifiable; split in
                                  the ratio of the registry defaults (assumed, said in each note)
``shootdown_*``                   ``shootdown`` op=mprotect_ro: siblings spinning minus siblings
                                  asleep, per target count. With >= 3 target counts the shape
                                  (linear, log2, broadcast) is chosen by an information criterion;
                                  with fewer it is assumed, and said so
``drain_base_ns``,                ``drain_cost``: median ns against the folios in the local batch,
``drain_per_folio_ns``            a straight line
``batch_size``                    ``unnecessary_copy``, cross-CPU writes of small pages: binomial
                                  likelihood of the copy fractions, profiled over integer B
================================  ==============================================================

Least squares is scipy's ``least_squares`` with the ``soft_l1`` loss (outliers are expected:
host-side reclaim, stray interrupts), residuals weighted by each point's standard error (taken
from its confidence interval). Intervals are 95 % parametric bootstrap intervals with a fixed seed,
drawn from the fitted curve with each point's standard error, inflated by the (robust) Birge ratio when
the points scatter more than their errors say. Calibrating the same directory twice gives the same
file, byte for byte.

Parameters no probe measures (``remote_drain_ns``, ``drain_all_*``) keep their registry defaults
marked ``assumed``. A fit that cannot be made stops with a message naming what is missing, or,
with ``allow_defaults``, leaves its parameters at the defaults marked ``assumed``.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from . import registry, stats
from .errors import UserError
from .paramfile import REFERENCE_DIR, Entry, ParamSet, numeric_entry, save

#: bootstrap seed (the date of the seed report) and replicate count; fixed so runs reproduce
SEED = 20211013
N_BOOT = 400
LEVEL = 0.95
#: significant digits written to parameter files
DIGITS = 5
#: an assumed value without a better range is given this factor either way as its interval
PRIOR_FACTOR = 3.0
#: fewer distinct target counts than this: the shootdown shape is assumed, not chosen
MIN_SHAPE_COUNTS = 3
_Z = stats.Z95


def _r(x: float, digits: int = DIGITS) -> float:
    """Round to ``digits`` significant digits (what the files store)."""
    x = float(x)
    return x if x == 0 or not math.isfinite(x) else float(f"{x:.{digits}g}")


# ---- estimates -----------------------------------------------------------------------------


@dataclass
class Estimate:
    """One parameter's value as a fit (or a default) gives it."""

    value: float | int | str
    source: str
    note: str
    ci_low: float | None = None
    ci_high: float | None = None

    def entry(self, name: str) -> Entry:
        if name in registry.CATEGORICAL:
            return Entry(self.value, self.source, self.note)
        spec = registry.NUMERIC[name]
        tiny = 1e-12 * spec.high  # bootstrap percentiles at a bound of 0 come out as 1e-17

        def conv(v):
            if spec.integer:
                return int(round(v))
            return 0.0 if abs(v) < tiny else _r(v)

        lo = None if self.ci_low is None else max(spec.low, min(spec.high, conv(self.ci_low)))
        hi = None if self.ci_high is None else max(spec.low, min(spec.high, conv(self.ci_high)))
        return numeric_entry(name, conv(self.value), self.source, self.note, lo, hi)


@dataclass
class FitOutcome:
    """Estimates of one group of parameters and the record the file keeps about the fit."""

    estimates: dict[str, Estimate]
    record: dict


def prior_interval(value: float) -> tuple[float, float]:
    """The stated range of an assumed value: a factor :data:`PRIOR_FACTOR` either way."""
    return value / PRIOR_FACTOR, value * PRIOR_FACTOR


def assumed(name: str, reason: str = "", value=None) -> Estimate:
    """The registry default (or ``value``) marked assumed, with the reason and the default's basis."""
    spec = registry.PARAMS[name]
    v = spec.default if value is None else value
    basis = f"registry default (basis: {spec.source})" if value is None else "assumed"
    note = f"{reason}; {basis}" if reason else basis
    if isinstance(spec, registry.Categorical):
        return Estimate(v, "assumed", note)
    lo, hi = prior_interval(v)
    if spec.integer:
        lo, hi = max(spec.low, math.floor(lo)), min(spec.high, math.ceil(hi))
    return Estimate(v, "assumed", note + f"; interval: a factor {PRIOR_FACTOR:g} either way (a stated range, not a measurement)",
                    max(spec.low, lo), min(spec.high, hi))


def _percentiles(draws: np.ndarray) -> tuple[float, float]:
    a = (1 - LEVEL) / 2 * 100
    lo, hi = np.percentile(draws, [a, 100 - a])
    return float(lo), float(hi)


def _default_ratio(names: Sequence[str]) -> np.ndarray:
    d = np.array([float(registry.NUMERIC[n].default) for n in names])
    return d / d.sum()


# ---- generic weighted robust curve fitting with a parametric bootstrap ---------------------


@dataclass
class CurveFit:
    params: np.ndarray
    fitted: np.ndarray
    residuals: np.ndarray          # observed - fitted
    chi2: float                    # sum of squared weighted residuals (weights 1 when se unknown)
    n: int
    k: int
    se_known: bool
    f_scale: float

    @property
    def dof(self) -> int:
        return self.n - self.k

    weights: np.ndarray | None = None

    @property
    def scatter(self) -> float:
        """Spread of the weighted residuals: robust (1.4826 MAD, corrected for the fitted
        parameters) with at least 3 degrees of freedom, so one outlier does not widen every
        interval; otherwise sqrt(chi2/dof)."""
        if self.dof <= 0:
            return math.nan
        if self.dof >= 3 and self.weights is not None:
            r = self.residuals * self.weights
            mad = 1.4826 * float(np.median(np.abs(r - np.median(r))))
            return mad * math.sqrt(self.n / self.dof)
        return math.sqrt(self.chi2 / self.dof)

    @property
    def noise_scale(self) -> float:
        """Factor on the per-point errors for the bootstrap: the (robust) Birge ratio when the
        points scatter more than their errors say (never below 1); with unknown errors, the
        residual standard deviation."""
        if self.dof <= 0:
            return 1.0 if self.se_known else 0.0
        return max(1.0, self.scatter) if self.se_known else self.scatter


def fit_curve(model: Callable[[np.ndarray, np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray,
              se: np.ndarray | None, p0: Sequence[float], lower: Sequence[float], upper: Sequence[float],
              f_scale: float | None = None) -> CurveFit:
    """Weighted least squares with the soft_l1 loss. The loss scale is the robust (MAD) spread of
    the weighted residuals of a plain first fit, at least 1, unless given."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    w = np.ones_like(y) if se is None else 1.0 / np.asarray(se, float)
    p0 = np.clip(np.asarray(p0, float), lower, upper)

    def resid(p):
        return (model(p, x) - y) * w

    first = least_squares(resid, p0, bounds=(lower, upper), method="trf")
    if f_scale is None:
        r = first.fun
        mad = 1.4826 * float(np.median(np.abs(r - np.median(r)))) if r.size else 0.0
        f_scale = max(1.0, mad)
    fit = least_squares(resid, first.x, bounds=(lower, upper), method="trf", loss="soft_l1", f_scale=f_scale)
    fitted = model(fit.x, x)
    res = y - fitted
    chi2 = float(np.sum((res * w) ** 2))
    return CurveFit(fit.x, fitted, res, chi2, len(y), len(p0), se is not None, f_scale, w)


def bootstrap_curve(model, fit: CurveFit, x: np.ndarray, se: np.ndarray | None, lower, upper,
                    rng: np.random.Generator, n_boot: int = N_BOOT) -> np.ndarray:
    """Parameter draws (n_boot x k): refits to the fitted curve plus each point's error."""
    base_se = np.ones(fit.n) if se is None else np.asarray(se, float)
    scale = fit.noise_scale
    draws = np.empty((n_boot, fit.k))
    x = np.asarray(x, float)
    noise = rng.standard_normal((n_boot, fit.n))
    for b in range(n_boot):
        y_star = fit.fitted + noise[b] * base_se * scale
        w = 1.0 / base_se

        def resid(p, y_star=y_star, w=w):
            return (model(p, x) - y_star) * w

        r = least_squares(resid, fit.params, bounds=(lower, upper), method="trf", loss="soft_l1",
                          f_scale=fit.f_scale)
        draws[b] = r.x
    return draws


def information_criterion(fits: Mapping[str, CurveFit]) -> dict:
    """Compare shapes. With known point errors: QAIC = chi2/c + 2k, where c (>= 1) is the
    overdispersion chi2/dof of the best-fitting shape with the most parameters; with unknown
    errors: Gaussian AICc = n ln(RSS/n) + 2k + 2k(k+1)/(n-k-1) (the correction left out where
    n-k-1 <= 0). Lower is better."""
    any_fit = next(iter(fits.values()))
    if any_fit.se_known:
        kmax = max(f.k for f in fits.values())
        rich = [f for f in fits.values() if f.k == kmax and f.dof > 0]
        c = max(1.0, min(f.chi2 / f.dof for f in rich)) if rich else 1.0
        values = {s: f.chi2 / c + 2 * f.k for s, f in fits.items()}
        name, extra = "QAIC", {"overdispersion": _r(c, 4)}
    else:
        values = {}
        for s, f in fits.items():
            rss = max(f.chi2, 1e-300)
            corr = 2 * f.k * (f.k + 1) / (f.n - f.k - 1) if f.n - f.k - 1 > 0 else 0.0
            values[s] = f.n * math.log(rss / f.n) + 2 * f.k + corr
        name, extra = "AICc", {}
    chosen = min(values, key=values.get)
    return {"name": name, "values": {s: _r(v, 6) for s, v in values.items()}, "chosen": chosen, **extra}


# ---- shootdown -----------------------------------------------------------------------------

SHOOTDOWN_PARAMS = ("shootdown_base_ns", "shootdown_per_cpu_ns")


@lru_cache(maxsize=None)
def shootdown_shape(shape: str) -> tuple[Callable, int]:
    """The model's own shootdown cost (:func:`costmodel.model.forward.shootdown_at_ns`) for
    ``targets >= 1`` as ``f(params, targets)`` and its number of free parameters among
    :data:`SHOOTDOWN_PARAMS` (1 for ``broadcast``: base only). Any other parameter the expression
    comes to contain is held at its registry default."""
    from .model.forward import TARGETS, measurable
    from .model.numeric import lambdify

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

    ps = __import__("costmodel.paramfile", fromlist=["load"]).load(path, notes_to=io.StringIO())
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
    _finite_or_error("shootdown", x, y, se)
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
            lo, hi_ = _percentiles(draws[:, i])
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
                lo, hi_ = _percentiles(draws[:, i])
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
                d = _default_ratio(SHOOTDOWN_PARAMS)  # base : per in the registry defaults
                ratio_basis = "the registry defaults' ratio (assumed)"
            share_base = d[0] / (d[0] + d[1] * g)
            sums = total + total_se * rng.standard_normal(n_boot)
            lo, hi_ = _percentiles(sums)
            fit = _constant_fit(x, y, total)
            record["method"] = f"weighted mean at one target count; parametric bootstrap ({n_boot}, seed {SEED})"
            split = (f"only the sum shootdown_base_ns + shootdown_per_cpu_ns x {g:g} = {total * unit_scale:.4g} ns at"
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
        row = {xname: _r(x[i]) if not float(x[i]).is_integer() else int(x[i]),
               f"observed_{unit}": _r(y[i] * unit_scale), f"fitted_{unit}": _r(fitted[i] * unit_scale),
               f"residual_{unit}": _r((y[i] - fitted[i]) * unit_scale, 4)}
        if se is not None:
            row[f"se_{unit}"] = _r(se[i] * unit_scale, 4)
        rows.append(row)
    return rows


def _finite_or_error(what: str, *arrays) -> None:
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
    _finite_or_error("drain_cost", x, y, se)
    if np.unique(x).size < 2:
        raise UserError(f"drain_cost: needs at least 2 different batch fills to fit base and per-folio cost;"
                        f" got {np.unique(x).size}")

    def model(p, xx):
        return p[0] + p[1] * xx

    hi = float(np.max(np.abs(y))) * 10 + 1.0
    slope0 = max(float(np.polyfit(x, y, 1)[0]), 0.0)
    fit = fit_curve(model, x, y, se, [max(float(np.min(y)), 0.0), slope0], [0.0, 0.0], [hi, hi])
    draws = bootstrap_curve(model, fit, x, se, [0.0, 0.0], [hi, hi], rng, n_boot)
    ests = {}
    for i, name in enumerate(DRAIN_PARAMS):
        lo, hi_ = _percentiles(draws[:, i])
        ests[name] = Estimate(fit.params[i], "measured", f"straight line through {np.unique(x).size} batch fills; {data}",
                              lo, hi_)
    record = {"name": "drain", "parameters": list(DRAIN_PARAMS), "n_points": int(x.size), "data": data,
              "method": f"scipy least_squares, soft_l1 loss, weights 1/se; parametric bootstrap ({n_boot}, seed {SEED})",
              "residuals": _residual_rows("folios", x, y, fit.fitted, se)}
    return FitOutcome(ests, record)


# ---- fault entry, reuse, copy --------------------------------------------------------------

def measurable_parameters(*names: str) -> tuple[str, ...]:
    """The parameters (registry order) that the named measurables contain, page_bytes aside (the
    machine reports it)."""
    from .model.forward import measurable

    free = set().union(*(measurable(n).free_symbols for n in names))
    return tuple(n for n in registry.NUMERIC if registry.S[n] in free and n != "page_bytes")


#: what the reuse fault alone identifies (as a sum), and everything the fault/copy recipe fits
REUSE_SPLIT = measurable_parameters("reuse_fault_ns")
FAULT_AND_COPY_PARAMS = measurable_parameters("reuse_fault_ns", "page_copy_ns", "copy_fault_ns")


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

    from .model.forward import linear_terms
    from .model.numeric import lambdify

    names = _unknowns(expr, known)
    if not names:
        raise ValueError("the measurement identifies nothing new")
    syms = [registry.S[n] for n in names]
    known_names = [n for n in registry.NUMERIC if registry.S[n] in expr.free_symbols and n in known]
    kvals = [np.asarray(known[n], float) for n in known_names]
    ksyms = [registry.S[n] for n in known_names]
    y = sp.Symbol("observed")
    terms = linear_terms(expr, syms)
    if terms is not None and len(names) >= 1:
        coeffs, rest = terms
        defaults = {n: float(registry.NUMERIC[n].default) for n in names}
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


def fit_fault_and_copy(reuse: Obs, copy: Obs, copy_4k: Obs, copy_bytes: float, *, rng: np.random.Generator,
                       n_boot: int = N_BOOT) -> FitOutcome:
    """From three measurements, through the model's own expressions
    (:mod:`costmodel.model.forward`): the reuse fault, a cold page copy and the copy fault with no
    other CPU in the mm. Each fixes what it contains that the ones before did not; several
    parameters entering one measurement linearly are identifiable only as their sum, split in
    the ratio of the registry defaults (assumed, said in each note)."""
    from .model.forward import measurable

    for o in (reuse, copy, copy_4k):
        _finite_or_error(o.label or "fault_cost", [o.value, o.se])
        if o.value <= 0:
            raise UserError(f"{o.label}: {o.statistic} {o.value:g} ns is not positive; re-run the probe")
    steps = [(reuse, measurable("reuse_fault_ns")), (copy_4k, measurable("page_copy_ns")),
             (copy, measurable("copy_fault_ns"))]
    z = rng.standard_normal((n_boot, len(steps)))
    point: dict[str, object] = {"page_bytes": float(copy_bytes)}
    draws: dict[str, object] = {"page_bytes": np.full(n_boot, float(copy_bytes))}
    groups = []
    for i, (obs, expr) in enumerate(steps):
        values, shown = solve_measurement(expr, obs.value, point)
        if any(float(v) <= 0 for v in values.values()):
            raise UserError(f"{obs.label}: {obs.statistic} {obs.value:.4g} ns leaves {shown} at or below 0 once the"
                            " parameters measured before it are taken out; the measurements are inconsistent,"
                            " re-run fault_cost and copy_bandwidth")
        sample = np.maximum(obs.value + obs.se * z[:, i], obs.value * 1e-3)
        boot, _ = solve_measurement(expr, sample, draws)
        point.update({n: float(v) for n, v in values.items()})
        draws.update({n: np.maximum(np.asarray(v, float), 0.0) for n, v in boot.items()})
        groups.append((obs, shown, list(values)))
    ests = {}
    for obs, shown, names in groups:
        if len(names) > 1:
            ratio = ":".join(f"{registry.NUMERIC[n].default:g}" for n in names)
            note = (f"only the sum {shown} is identifiable from {obs.label} ({obs.statistic} {obs.value:.4g} ns, less the"
                    f" parameters measured before it); split {ratio} as the registry defaults (assumed)")
        else:
            note = f"from {obs.label} ({obs.statistic} {obs.value:.4g} ns) through the model's expression"
        for n in names:
            ests[n] = Estimate(point[n], "measured", note, *_percentiles(draws[n]))
    fitted = [float(_evaluate_measurable(expr, point)) for _, expr in steps]
    rows = [{"measurement": o.label, "statistic": o.statistic, "observed_ns": _r(o.value), "se_ns": _r(o.se, 4),
             "fitted_ns": _r(f), "residual_ns": _r(o.value - f, 4)} for (o, _), f in zip(steps, fitted)]
    names_all = [n for _, _, names in groups for n in names]
    record = {"name": "fault_and_copy", "parameters": names_all, "n_points": 3,
              "identifiable": "; ".join(shown for _, shown, _ in groups),
              "forward": ["reuse_fault_ns", "page_copy_ns", "copy_fault_ns"],
              "split_rule": "several parameters in one measurement: split in the ratio of the registry defaults",
              "statistic": "/".join(sorted({o.statistic for o in (reuse, copy, copy_4k)})),
              "method": f"exactly determined through the model's expressions; parametric bootstrap from each"
                        f" value's standard error ({n_boot}, seed {SEED})",
              "residuals": rows}
    return FitOutcome(ests, record)


def _evaluate_measurable(expr, values: Mapping[str, object], **free):
    """``expr`` at ``values`` (registry defaults for what they lack) and the free variables."""
    from .model.numeric import lambdify

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
    from .model.forward import measurable
    from .model.numeric import lambdify

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
_FLIP = 0.01


def fit_batch_size(adds_between, copies, n, drained, *, rng: np.random.Generator, n_boot: int = N_BOOT,
                   data: str = "") -> FitOutcome:
    """Maximum-likelihood integer batch size from cross-CPU copy counts (binomial, with a 1 %
    flip rate); the interval joins the set of equally likely sizes (a coarse grid of k cannot
    tell them apart) with a parametric bootstrap of the counts."""
    k = np.asarray(adds_between, float)
    c = np.asarray(copies, float)
    n = np.asarray(n, float)
    d = np.asarray(drained, bool)
    _finite_or_error("unnecessary_copy", k, c, n)
    if k.size == 0 or np.sum(n) == 0:
        raise UserError("unnecessary_copy: no cross-CPU small-page measurements to find the batch size from")
    spec = registry.NUMERIC["batch_size"]
    candidates = np.arange(int(spec.low), int(spec.high) + 1)
    p = _FLIP + (1 - 2 * _FLIP) * np.array([copy_fraction(B, k, d) for B in candidates])  # (B, rows)
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
                  "observed_fraction": _r(frac[i], 4), "fitted_fraction": _r(fitted[i], 4),
                  "residual": _r(frac[i] - fitted[i], 4)} for i in range(k.size)]
    record = {"name": "batch_size", "parameters": ["batch_size"], "n_points": int(k.size), "data": data,
              "method": (f"binomial maximum likelihood over integer batch sizes {int(spec.low)}..{int(spec.high)}, "
                         f"flip rate {_FLIP:g}; parametric bootstrap of the counts ({n_boot}, seed {SEED})"),
              "log_likelihood": _r(float(ll.max()), 6), "residuals": residuals}
    return FitOutcome({"batch_size": Estimate(B_hat, "measured", note, lo, hi)}, record)


# ---- from a measurement table to the fits --------------------------------------------------

_TRUE = {"1", "true", "yes", "1.0"}
_FALSE = {"0", "false", "no", "0.0"}


def _match(col: pd.Series, want) -> pd.Series:
    text = col.astype(str).str.strip().str.lower()
    if isinstance(want, bool):
        return text.isin(_TRUE if want else _FALSE)
    if isinstance(want, (int, float)):
        return pd.to_numeric(col, errors="coerce") == want
    if isinstance(want, (list, tuple, set)):
        return text.isin({str(w).lower() for w in want})
    return text == str(want).lower()


def select(df: pd.DataFrame, probe: str, **config) -> pd.DataFrame:
    """Rows of ``probe`` whose configuration columns match; a column that is absent matches
    nothing unless its wanted value is None."""
    if "probe" not in df.columns:
        raise UserError("measurement table has no 'probe' column; is this a costmodel bench directory?")
    rows = df[df["probe"].astype(str) == probe]
    for key, want in config.items():
        if want is None:
            continue
        if key not in rows.columns:
            return rows.iloc[0:0]
        rows = rows[_match(rows[key], want)]
    return rows


def _value_column(rows: pd.DataFrame, name: str, what: str) -> np.ndarray:
    if name not in rows.columns:
        raise UserError(f"{what}: column {name!r} is missing from the measurement table")
    return pd.to_numeric(rows[name], errors="coerce").to_numpy(float)


def standard_errors(rows: pd.DataFrame, what: str, value: str = "median_ns") -> np.ndarray:
    """Standard error of each row's summary value: from its 95 % interval where there is one,
    else from p10/p90 and n (normal approximation of the median's error), never below 0.1 % of
    the value (a median reported in timer steps is not infinitely precise)."""
    v = _value_column(rows, value, what)
    se = np.full(v.shape, np.nan)
    if {"ci_low", "ci_high"} <= set(rows.columns):
        lo = pd.to_numeric(rows["ci_low"], errors="coerce").to_numpy(float)
        hi = pd.to_numeric(rows["ci_high"], errors="coerce").to_numpy(float)
        se = (hi - lo) / (2 * _Z)
    if {"p10", "p90", "n"} <= set(rows.columns):
        p10 = pd.to_numeric(rows["p10"], errors="coerce").to_numpy(float)
        p90 = pd.to_numeric(rows["p90"], errors="coerce").to_numpy(float)
        n = pd.to_numeric(rows["n"], errors="coerce").to_numpy(float)
        alt = 1.2533 * (p90 - p10) / 2.5631 / np.sqrt(np.maximum(n, 1))
        se = np.where(np.isfinite(se) & (se > 0), se, alt)
    if not np.all(np.isfinite(se)):
        raise UserError(f"{what}: no usable spread (ci_low/ci_high or p10/p90 and n) for some rows")
    return np.maximum(se, np.maximum(np.abs(v) * 1e-3, 1e-9))


def _skip_reason(df: pd.DataFrame, probe: str) -> str:
    for col in _SKIP_COLUMNS:
        if col in df.columns:
            r = df[(df["probe"].astype(str) == probe) & df[col].notna()][col].astype(str)
            r = r[r.str.len() > 0]
            if len(r):
                return f" (the probe was skipped: {r.iloc[0]})"
    return ""


_SKIP_COLUMNS = ("skipped_reason",)


def _not_skipped(rows: pd.DataFrame) -> pd.DataFrame:
    """Drop rows that record a skipped configuration (a non-empty reason); a measured row whose
    value is NaN stays, so that the fit reports it."""
    for col in _SKIP_COLUMNS:
        if col in rows.columns:
            reason = rows[col].fillna("").astype(str).str.strip()
            rows = rows[(reason == "") | reason.str.lower().isin(_FALSE | {"nan", "none"})]
    return rows


def _need(df: pd.DataFrame, rows: pd.DataFrame, probe: str, what: str, needed_for: str) -> pd.DataFrame:
    rows = _not_skipped(rows)
    if len(rows) == 0:
        raise UserError(f"probe {probe}: no {what} measurement (needed for {needed_for}){_skip_reason(df, probe)};"
                        f" run `costmodel bench --probe {probe}` or pass --allow-defaults")
    return rows


#: the summary columns of each statistic: value, interval low, interval high
STATISTICS = {"mean": ("mean_ns", "mean_ci_low", "mean_ci_high"), "median": ("median_ns", "ci_low", "ci_high")}


def _statistic_columns(rows: pd.DataFrame, prefer: str) -> str:
    """``prefer`` where the rows carry it (every row a finite value and interval), else median:
    measurement sets written before the summary had means give medians."""
    cols = STATISTICS[prefer]
    if set(cols) <= set(rows.columns):
        vals = rows[list(cols)].apply(pd.to_numeric, errors="coerce")
        if len(vals) and np.isfinite(vals.to_numpy(float)).all():
            return prefer
    return "median"


def _obs(df: pd.DataFrame, probe: str, needed_for: str, statistic: str = "mean", **config) -> Obs:
    """One measured value: the mean (the model's expected cost is a mean) with its bootstrap
    interval where the set has it, else the median; rows that match are pooled by inverse
    variance."""
    what = " ".join(f"{k}={v}" for k, v in config.items() if k != "measure")
    rows = _need(df, select(df, probe, **config), probe, what, needed_for)
    stat = _statistic_columns(rows, statistic)
    value_col, lo_col, hi_col = STATISTICS[stat]
    v = _value_column(rows, value_col, f"{probe} {what}")
    if stat == "median":
        se = standard_errors(rows, f"{probe} {what}")
    else:
        lo = _value_column(rows, lo_col, f"{probe} {what}")
        hi = _value_column(rows, hi_col, f"{probe} {what}")
        se = np.maximum((hi - lo) / (2 * _Z), np.maximum(np.abs(v) * 1e-3, 1e-9))
    _finite_or_error(f"{probe} {what}", v, se)
    w = 1 / se ** 2
    return Obs(float(np.sum(w * v) / np.sum(w)), float(1 / math.sqrt(np.sum(w))), f"{probe} {what}", stat)


def _from_fault_and_copy(df, provenance, rng, n_boot) -> FitOutcome:
    need = "fault_entry_ns, reuse_ns, alloc_ns, local_flush_ns, free_ns, copy_bandwidth_gbps"
    reuse = _obs(df, "fault_cost", need, op="reuse_after_fork", measure="ns")
    copy = _obs(df, "fault_cost", need, op="copy_child_alive", measure="ns")
    cold = _need(df, select(df, "copy_bandwidth", op="copy_4k", cache_state="cold", measure="ns"), "copy_bandwidth",
                 "op=copy_4k cache_state=cold", "copy_bandwidth_gbps")
    size = 4096.0
    if "size_bytes" in cold.columns:
        sizes = pd.to_numeric(cold["size_bytes"], errors="coerce").dropna().unique()
        if len(sizes) == 1:
            size = float(sizes[0])
    copy4k = _obs(df, "copy_bandwidth", "copy_bandwidth_gbps", op="copy_4k", cache_state="cold", measure="ns")
    return fit_fault_and_copy(reuse, copy, copy4k, size, rng=rng, n_boot=n_boot)


#: the shootdown probe's operation that matches the copy's one-page ptep_clear_flush best
SHOOTDOWN_OP = "mprotect_ro"


def _from_shootdown(df, provenance, rng, n_boot) -> FitOutcome:
    need = "shootdown_base_ns, shootdown_per_cpu_ns, shootdown_model"
    spin = _need(df, select(df, "shootdown", op=SHOOTDOWN_OP, siblings="spinning", measure="ns"), "shootdown",
                 f"op={SHOOTDOWN_OP} siblings=spinning", need)
    sleep = _need(df, select(df, "shootdown", op=SHOOTDOWN_OP, siblings="asleep", measure="ns"), "shootdown",
                  f"op={SHOOTDOWN_OP} siblings=asleep", need)
    xs, ys, ses = [], [], []
    for t in sorted(set(pd.to_numeric(spin["target_cpus"], errors="coerce").dropna()) &
                    set(pd.to_numeric(sleep["target_cpus"], errors="coerce").dropna())):
        a = _obs(df, "shootdown", need, op=SHOOTDOWN_OP, siblings="spinning", target_cpus=t, measure="ns")
        b = _obs(df, "shootdown", need, op=SHOOTDOWN_OP, siblings="asleep", target_cpus=t, measure="ns")
        xs.append(t)
        ys.append(a.value - b.value)
        ses.append(math.hypot(a.se, b.se))
    if not xs:
        raise UserError(f"probe shootdown: no target count measured with siblings both spinning and asleep"
                        f" (needed for {need})")
    data = f"shootdown op={SHOOTDOWN_OP}: median with siblings spinning minus asleep, per target count"
    return fit_shootdown(xs, ys, ses, rng=rng, n_boot=n_boot, data=data)


def shootdown_from_will_it_scale(path: str | Path, *, rng: np.random.Generator, n_boot: int = N_BOOT) -> FitOutcome:
    """Shootdown cost from a will-it-scale ``tlb_flush2`` run (runtest.py's CSV, threads mode).

    Each op writes one page and MADV_DONTNEEDs it: one single-page flush on every CPU running a
    sibling thread. With n threads the CPU time per op is T(n) = n / (ops/s), and T(n) - T(1) is
    the shootdown to n - 1 targets plus whatever contention grows with the thread count, so the
    fit is an upper bound of the shootdown cost (said in the file). Gives as many target counts
    as the run had task counts, so the shape can be chosen.
    """
    from .bench import read_will_it_scale

    df = read_will_it_scale(path)
    if "ops_per_s" not in df.columns or "mode" not in df.columns:
        raise UserError(f"{path}: a tlb_flush2 runtest.py CSV is needed (tasks,processes,...,threads,...)")
    threads = df[(df["mode"] == "threads") & (df["ops_per_s"] > 0)].sort_values("tasks")
    if (threads["tasks"] == 1).sum() != 1 or len(threads) < 2:
        raise UserError(f"{path}: needs the threads run at 1 task and at least one more task count")
    n = threads["tasks"].to_numpy(float)
    t_ns = n / threads["ops_per_s"].to_numpy(float) * 1e9
    base = float(t_ns[n == 1][0])
    keep = n >= 2
    data = (f"will-it-scale {Path(path).name}: per-op CPU time at n threads minus at 1, n-1 targets"
            " (contention included: an upper bound)")
    return fit_shootdown(n[keep] - 1, t_ns[keep] - base, None, rng=rng, n_boot=n_boot, data=data)


#: candidate names of the drain probe's batch-fill column
_FOLIO_COLUMNS = ("folios", "batch_fill", "m", "folios_in_batch")


def _from_drain(df, provenance, rng, n_boot) -> FitOutcome:
    need = "drain_base_ns, drain_per_folio_ns"
    rows = _need(df, select(df, "drain_cost", measure="ns"), "drain_cost", "batch-fill", need)
    col = next((c for c in _FOLIO_COLUMNS if c in rows.columns and rows[c].notna().any()), None)
    if col is None:
        raise UserError(f"probe drain_cost: no batch-fill column ({', '.join(_FOLIO_COLUMNS)}) in the measurements")
    rows = rows[pd.to_numeric(rows[col], errors="coerce").notna()]
    x = pd.to_numeric(rows[col]).to_numpy(float)
    y = _value_column(rows, "median_ns", "drain_cost")
    se = standard_errors(rows, "drain_cost")
    op = ""
    if "op" in rows.columns and rows["op"].notna().any():
        op = f" op={'/'.join(sorted(rows['op'].dropna().astype(str).unique()))}"
    return fit_drain(x, y, se, rng=rng, n_boot=n_boot,
                     data=f"drain_cost{op}: median ns against {col} (a proxy: includes the syscall around the drain)")


def _from_batch(df, provenance, rng, n_boot) -> FitOutcome:
    rows = _need(df, select(df, "unnecessary_copy", op="wp_write", measure="copied", same_cpu=False), "unnecessary_copy",
                 "op=wp_write cross-CPU (same_cpu=0)", "batch_size")
    if "huge" in rows.columns:
        rows = rows[_match(rows["huge"], False)]
    if "pages" in rows.columns and (pd.to_numeric(rows["pages"], errors="coerce") == 1).any():
        rows = rows[pd.to_numeric(rows["pages"], errors="coerce") == 1]
    rows = _need(df, rows, "unnecessary_copy", "cross-CPU small-page single-target", "batch_size")
    k = _value_column(rows, "adds_between", "unnecessary_copy")
    n = _value_column(rows, "n", "unnecessary_copy")
    if "successes" in rows.columns:
        copies = _value_column(rows, "successes", "unnecessary_copy")
    else:
        copies = np.round(_value_column(rows, "fraction", "unnecessary_copy") * n)
    drained = _match(rows["drained_first"], True).to_numpy() if "drained_first" in rows.columns else np.zeros(k.size, bool)
    return fit_batch_size(k, copies, n, drained, rng=rng, n_boot=n_boot,
                          data="unnecessary_copy, cross-CPU writes of one small page")


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
    from .model.forward import measurable

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
                                         f"{base.label} minus {hole.label} ({base.statistic}s: {base.value:.4g} - "
                                         f"{hole.value:.4g} ns)", *_percentiles(draws["drain_all_base_ns"]))
    rows.append({"measurement": f"{base.label} - {hole.label}", "statistic": base.statistic, "observed_ns": _r(diff),
                 "se_ns": _r(math.hypot(base.se, hole.se), 4), "fitted_ns": _r(point["drain_all_base_ns"]),
                 "residual_ns": _r(diff - point["drain_all_base_ns"], 4)})
    for i, (state, (remote, control)) in enumerate(seals.items()):
        expr = measurable("drain_all_base_ns") + measurable(REMOTE_STATES[state])
        d = remote.value - control.value
        d_draw = (remote.value + remote.se * z[:, 2 + 2 * i]) - (control.value + control.se * z[:, 3 + 2 * i])
        v, shown = solve_measurement(expr, d, point)
        vb, _ = solve_measurement(expr, d_draw, draws)
        (name, value), = v.items()
        if value <= 0:
            raise UserError(f"{remote.label}: the seal with the folio in the other CPU's batch ({remote.value:.4g} ns) is"
                            f" not dearer than the control plus the drain-all base; re-run remote_drain")
        ests[name] = Estimate(float(value), "measured",
                              f"{remote.label} minus {control.label} ({remote.statistic}s), less drain_all_base_ns",
                              *_percentiles(np.maximum(np.asarray(vb[name], float), 0.0)))
        point[name] = float(value)
        draws[name] = np.asarray(vb[name], float)
        rows.append({"measurement": f"{remote.label} - {control.label}", "statistic": remote.statistic,
                     "observed_ns": _r(d), "se_ns": _r(math.hypot(remote.se, control.se), 4),
                     "fitted_ns": _r(float(_evaluate_measurable(expr, point))),
                     "residual_ns": _r(d - float(_evaluate_measurable(expr, point)), 4)})
    record = {"name": "remote_drain", "parameters": list(ests), "n_points": len(rows),
              "forward": ["drain_all_base_ns", *(REMOTE_STATES[s] for s in seals)],
              "statistic": base.statistic,
              "method": f"differences of means against controls; parametric bootstrap ({n_boot}, seed {SEED})",
              "residuals": rows}
    return FitOutcome(ests, record)


def _from_remote_drain(df, provenance, rng, n_boot) -> FitOutcome:
    need = ", ".join(REMOTE_PARAMS)
    base = _obs(df, "remote_drain", need, op="fadvise_base", remote_state="idle", measure="ns")
    hole = _obs(df, "remote_drain", need, op="fadvise_hole", remote_state="idle", measure="ns")
    seals = {}
    for state in REMOTE_STATES:
        rows = _not_skipped(select(df, "remote_drain", op="seal_remote", remote_state=state, measure="ns"))
        if not len(rows):
            continue
        seals[state] = (_obs(df, "remote_drain", need, op="seal_remote", remote_state=state, measure="ns"),
                        _obs(df, "remote_drain", need, op="seal_local", remote_state=state, measure="ns"))
    if "idle" not in seals:
        raise UserError(f"probe remote_drain: no seal_remote measurement with the other CPU idle (needed for {need});"
                        " run `costmodel bench --probe remote_drain` or pass --allow-defaults")
    return fit_remote_drain(base, hole, seals, rng=rng, n_boot=n_boot)


#: (fit name, parameters it sets, function) in the order they run; each has its own random stream
FIT_GROUPS: list[tuple[str, tuple[str, ...], Callable]] = [
    ("fault_and_copy", FAULT_AND_COPY_PARAMS, _from_fault_and_copy),
    ("shootdown", ("shootdown_model", *SHOOTDOWN_PARAMS), _from_shootdown),
    ("drain", DRAIN_PARAMS, _from_drain),
    ("batch_size", ("batch_size",), _from_batch),
    ("remote_drain", REMOTE_PARAMS, _from_remote_drain),
]


#: fit groups added after the first measurement sets, by the probe they need: a set without any
#: row of that probe keeps their parameters assumed instead of failing
GROUP_PROBES = {"remote_drain": "remote_drain"}


def calibrate_frame(df: pd.DataFrame, provenance: Mapping | None = None, *, name: str,
                    description: str | None = None, allow_defaults: bool = False,
                    n_boot: int = N_BOOT, seed: int = SEED, will_it_scale: str | Path | None = None) -> ParamSet:
    """Every fit of :data:`FIT_GROUPS` on a tidy measurement table, assembled into a checked
    parameter set; machine parameters no probe measures keep their registry defaults (assumed).
    With ``will_it_scale`` (a tlb_flush2 runtest.py CSV) the shootdown comes from that run."""
    provenance = dict(provenance or {})
    estimates: dict[str, Estimate] = {}
    records: list[dict] = []
    for index, (group, params, func) in enumerate(FIT_GROUPS):
        rng = np.random.default_rng([seed, index])
        if group == "shootdown" and will_it_scale is not None:
            func = lambda df, provenance, rng, n_boot: shootdown_from_will_it_scale(will_it_scale, rng=rng, n_boot=n_boot)  # noqa: E731
            provenance["will_it_scale"] = Path(will_it_scale).name
        probe = GROUP_PROBES.get(group)
        predates = probe is not None and "probe" in df.columns and not (df["probe"].astype(str) == probe).any()
        try:
            outcome = func(df, provenance, rng, n_boot)
        except UserError as exc:
            if predates:  # a set recorded before the probe existed: its parameters stay assumed, said so
                reason = f"this measurement set has no {probe} probe (recorded before it existed)"
                for p in params:
                    estimates[p] = assumed(p, f"not fitted: {reason}")
                records.append({"name": group, "method": "not fitted; registry defaults kept",
                                "parameters": list(params), "n_points": 0, "residuals": [], "note": reason})
                continue
            if not allow_defaults:
                raise
            reason = str(exc).split("; run `costmodel bench")[0]
            for p in params:
                estimates[p] = assumed(p, f"not fitted: {reason}")
            records.append({"name": group, "method": "not fitted; registry defaults kept", "parameters": list(params),
                            "n_points": 0, "residuals": [], "note": reason})
            continue
        estimates.update(outcome.estimates)
        records.append(outcome.record)
    page = provenance.get("page_size_bytes")
    if isinstance(page, (int, float)) and not isinstance(page, bool) and page > 0:
        estimates["page_bytes"] = Estimate(int(page), "measured", "base page size reported by the machine (provenance)")
    for p in registry.PARAMS:
        if registry.PARAMS[p].kind == registry.MACHINE and p not in estimates:
            estimates[p] = assumed(p, "no probe measures this")
    parameters = {p: e.entry(p) for p, e in estimates.items()}
    ps = ParamSet(name=name, description=description or f"calibrated from data/measurements/{name}",
                  parameters=parameters, fit=records, provenance=_jsonable(provenance))
    return ps


def _jsonable(obj):
    """Provenance as plain JSON (numpy scalars to Python numbers; non-finite to None)."""
    return json.loads(json.dumps(obj, default=lambda o: o.item() if hasattr(o, "item") else str(o)),
                      parse_constant=lambda c: None)


def read_measurements(directory: str | Path) -> tuple[pd.DataFrame, dict]:
    """The tidy table and provenance of a ``costmodel bench`` output directory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"{directory}: no such measurement directory")
    try:
        from .bench import read_measurements as bench_reader  # the bench owns its format
    except ImportError:  # pragma: no cover - only while costmodel.bench is being written
        raise UserError("this costmodel has no measurement reader (costmodel.bench.read_measurements)") from None

    return bench_reader(directory)


def calibrate(directory: str | Path, *, allow_defaults: bool = False, name: str | None = None,
              n_boot: int = N_BOOT, seed: int = SEED, will_it_scale: str | Path | None = None) -> ParamSet:
    """Fit a parameter set from a measurement directory written by ``costmodel bench``."""
    directory = Path(directory)
    df, provenance = read_measurements(directory)
    name = name or directory.resolve().name
    return calibrate_frame(df, provenance, name=name, description=f"calibrated from data/measurements/{directory.resolve().name}",
                           allow_defaults=allow_defaults, n_boot=n_boot, seed=seed, will_it_scale=will_it_scale)


def calibrate_to_file(directory: str | Path, out: str | Path, *, force: bool = False,
                      allow_defaults: bool = False, will_it_scale: str | Path | None = None) -> ParamSet:
    """``costmodel calibrate``: refuse an existing output before any work, fit, write atomically."""
    from .atomic import refuse_overwrite

    refuse_overwrite(Path(out), force)
    ps = calibrate(directory, allow_defaults=allow_defaults, will_it_scale=will_it_scale)
    save(ps, out, force=force)
    return ps


# ---- reference sets from published figures -------------------------------------------------
#
# Every number below the assumptions comes from data/reference/*.csv (each row cites its source,
# as in shared/REFERENCES.md); the code holds only the derivations and the stated assumptions.

FIGURES_CSV = "published_figures.csv"
MILAN_CURVE_CSV = "milan72_tlb_flush2.csv"


@dataclass(frozen=True)
class Figures:
    """The published figures, by key, with their citations."""

    rows: Mapping[str, Mapping]
    path: str

    def __getitem__(self, key: str) -> float:
        try:
            return float(self.rows[key]["value"])
        except KeyError:
            raise UserError(f"{self.path}: no figure {key!r}") from None

    def cite(self, *keys: str) -> str:
        cites = []
        for k in keys:
            c = str(self.rows[k]["citation"])
            if c not in cites:
                cites.append(c)
        return "; ".join(cites)


def read_figures(source_dir: str | Path = REFERENCE_DIR) -> Figures:
    path = Path(source_dir) / FIGURES_CSV
    if not path.is_file():
        raise UserError(f"{path}: the published figures are missing")
    df = pd.read_csv(path, dtype={"key": str})
    if df["key"].duplicated().any():
        raise UserError(f"{path}: key {df['key'][df['key'].duplicated()].iloc[0]!r} appears twice")
    return Figures({r["key"]: r for r in df.to_dict("records")}, str(path))


@dataclass(frozen=True)
class Assumption:
    """A value a reference set needs but no figure gives: a point and the range it is meant to cover."""

    value: float
    low: float
    high: float
    note: str


def _factor_range(value: float, note: str) -> Assumption:
    lo, hi = prior_interval(value)
    return Assumption(value, lo, hi, f"{note}; range a factor {PRIOR_FACTOR:g} either way")


def haswell_assumptions(fig: Figures) -> dict[str, Assumption]:
    """What the Haswell-guest set assumes, each with the range it is meant to cover."""
    sd_low = fig["haswell_remote_shootdown_cycles_low"] + (fig["guest_ipi_cycles_x2apic"] - fig["guest_ipi_cycles_x2apic_ipiv"])
    sd_high = fig["haswell_remote_shootdown_cycles_high"] * fig["ipi_one_to_one_total_guest"] / fig["ipi_one_to_one_total_host"]
    reuse_share = float(_default_ratio(REUSE_SPLIT)[1])
    return {
        "guest_shootdown_cycles": Assumption(
            math.sqrt(sd_low * sd_high), sd_low, sd_high,
            "one remote shootdown inside the KVM guest, not published: at least the bare-metal Haswell shootdown"
            " plus the sender's VM exit (x2APIC guest IPI without minus with IPI virtualisation), at most the"
            " bare-metal shootdown scaled by the guest/host IPI cost ratio (ThunderX2); the value is the"
            " geometric midpoint"),
        "clock_ghz": Assumption(2.3, 1.6, 4.0, "clock of the Haswell host, to turn cycles into ns: not published;"
                                "Haswell parts span about 1.6-4 GHz"),
        "reuse_share": Assumption(reuse_share, reuse_share / PRIOR_FACTOR, min(1.0, reuse_share * PRIOR_FACTOR),
                                  "share of reuse_ns in the reported reuse cost: the registry defaults' ratio, a factor"
                                  f" {PRIOR_FACTOR:g} either way"),
        "alloc_ns": _factor_range(float(registry.NUMERIC["alloc_ns"].default), "registry default"),
        "free_ns": _factor_range(float(registry.NUMERIC["free_ns"].default), "registry default"),
        "copy_bandwidth_gbps": _factor_range(fig["epyc9655_copy_4k_cold_gbps"],
                                             "the cold 4 KiB copy bandwidth of a 2-socket EPYC 9655 (another machine)"),
    }


def _haswell_values(fig: Figures, a: Mapping[str, float]) -> dict[str, tuple]:
    """name -> (value, source, note) of the Haswell-guest set for one choice of the assumptions."""
    ghz = a["clock_ghz"]
    reuse_cycles = fig["haswell_guest_reuse_cycles_per_op"]
    flushes = (fig["haswell_guest_remote_flushes_per_100k_ops_copy"]
               - fig["haswell_guest_remote_flushes_per_100k_ops_reuse"]) / 1e5
    threads = int(fig["haswell_guest_threads"])
    sd_ratio = _default_ratio(SHOOTDOWN_PARAMS)
    c_reuse = fig.cite("haswell_guest_reuse_cycles_per_op")
    c_sd = fig.cite("haswell_remote_shootdown_cycles_low", "guest_ipi_cycles_x2apic", "ipi_one_to_one_total_guest")
    at_clock = f"at an assumed {ghz:g} GHz"
    sum_note = (f"the whole reported reuse cost, {reuse_cycles:g} cycles/op ({c_reuse}), {at_clock}, is"
                f" fault_entry_ns + reuse_ns; split with reuse share {a['reuse_share']:.3g} (assumed)")
    sd_note = (f"one remote shootdown in the guest, {a['guest_shootdown_cycles']:.0f} cycles {at_clock}, derived from"
               f" {c_sd}; only base + per_cpu x 1 is known, split in the registry defaults' ratio (assumed)")
    v = {
        "fault_entry_ns": (reuse_cycles * (1 - a["reuse_share"]) / ghz, "published", sum_note),
        "reuse_ns": (reuse_cycles * a["reuse_share"] / ghz, "published", sum_note),
        "alloc_ns": (a["alloc_ns"], "assumed", "registry default; not published for this machine"),
        "page_bytes": (4096, "assumed", "x86-64 base page (architecture fact, no figure row)"),
        "copy_bandwidth_gbps": (a["copy_bandwidth_gbps"], "assumed",
                                f"not published for Haswell; the figure of another machine ({fig.cite('epyc9655_copy_4k_cold_gbps')})"),
        "local_flush_ns": (fig["haswell_invlpg_single_page_cycles"] / ghz, "published",
                           f"single-page INVLPG on a Haswell Xeon, {fig['haswell_invlpg_single_page_cycles']:g} cycles"
                           f" ({fig.cite('haswell_invlpg_single_page_cycles')}), {at_clock}"),
        "free_ns": (a["free_ns"], "assumed", "registry default; not published for this machine"),
        "shootdown_model": ("linear", "assumed", "one target CPU only: the shape cannot be told; registry default"),
        "shootdown_base_ns": (a["guest_shootdown_cycles"] * sd_ratio[0] / ghz, "published", sd_note),
        "shootdown_per_cpu_ns": (a["guest_shootdown_cycles"] * sd_ratio[1] / ghz, "published", sd_note),
        # the scenario of the report
        "batch_size": (15, "assumed", "PAGEVEC_SIZE before Linux 6.9 (kernel source, no figure row); both kernels compared are older"),
        "cpus": (threads, "published", f"{threads} threads in the guest ({c_reuse}); assumed one vCPU each"),
        "remote_cpus": (threads - 1, "published",
                        f"the other thread's CPU: the copy adds {flushes:.5f} remote flushes per op ({c_reuse}, derived)"),
        "gap_model": ("fixed_count", "assumed", "the WP fault follows the install fault with no other add in between"),
        "adds_between": (0, "assumed", "the WP fault follows the install fault with no other add in between"),
        "position_model": ("fixed", "assumed", "the page is still in the batch at the WP fault"),
        "batch_position": (0, "published", f"with the copy, {flushes:.5f} extra remote flushes per op ({c_reuse}, derived):"
                           " nearly every WP fault copied, so the page was always still in a batch"),
        "p_exclusive": (0.0, "assumed", "no exclusive marker in v5.8 or 5.13 (PageAnonExclusive came in 5.19)"),
        "p_large_folio": (0.0, "assumed", "swapped-in pages are small"),
    }
    for name in ("drain_base_ns", "drain_per_folio_ns", "remote_drain_ns", "drain_all_base_ns", "drain_all_per_cpu_ns"):
        v[name] = (float(registry.NUMERIC[name].default), "assumed",
                   f"not used by the policies compared here; registry default (basis: {registry.NUMERIC[name].source})")
    return v


def _set_from_corners(build: Callable[[Mapping[str, float]], dict], assumptions: Mapping[str, Assumption]
                      ) -> dict[str, Estimate]:
    """Values at the assumptions' points; each numeric interval spans the values over every
    corner of the assumptions' ranges (what the assumptions allow, not a measurement)."""
    point = build({k: a.value for k, a in assumptions.items()})
    corners = [build(dict(zip(assumptions, c)))
               for c in itertools.product(*[(a.low, a.high) for a in assumptions.values()])]
    out = {}
    for name, (value, source, note) in point.items():
        if isinstance(value, str):
            out[name] = Estimate(value, source, note)
            continue
        vals = [c[name][0] for c in corners] + [value]
        lo, hi = min(vals), max(vals)
        if lo == hi == value and source == "assumed" and name in registry.NUMERIC and not registry.NUMERIC[name].integer \
                and registry.NUMERIC[name].kind == registry.MACHINE:
            lo, hi = prior_interval(value)
            note += f"; interval: a factor {PRIOR_FACTOR:g} either way (a stated range, not a measurement)"
        elif lo == hi:
            lo = hi = None
        else:
            note += "; interval: the range the stated assumptions allow"
        out[name] = Estimate(value, source, note, lo, hi)
    return out


def _ratio(values: Mapping[str, object], num: str, den: str) -> float:
    from .evaluate import evaluate_point

    point = registry.resolve(base=values)
    res = evaluate_point(point, [num, den])
    return res[num]["expected_ns"] / res[den]["expected_ns"]


def haswell_ratio_check(source_dir: str | Path = REFERENCE_DIR) -> dict:
    """The model's reuse-vs-copy cost ratio with the Haswell-guest set (``copy_if_referenced``
    over ``mapcount``) against the reported one, and how far each assumption moves it."""
    fig = read_figures(source_dir)
    assumptions = haswell_assumptions(fig)

    def ratio(a):
        return _ratio({n: v[0] for n, v in _haswell_values(fig, a).items()}, "copy_if_referenced", "mapcount")

    point = {k: a.value for k, a in assumptions.items()}
    model = ratio(point)
    swings = {}
    for k, a in assumptions.items():
        swings[k] = (ratio({**point, k: a.low}), ratio({**point, k: a.high}))
    corners = [ratio(dict(zip(assumptions, c)))
               for c in itertools.product(*[(a.low, a.high) for a in assumptions.values()])]
    reported = fig["haswell_guest_copy_cycles_per_op"] / fig["haswell_guest_reuse_cycles_per_op"]
    dominant = max(swings, key=lambda k: abs(swings[k][1] - swings[k][0]))
    return {"reported": reported, "model": model, "relative_error": model / reported - 1,
            "low": min(corners), "high": max(corners), "within": min(corners) <= reported <= max(corners),
            "swings": swings, "dominant": dominant}


def haswell_guest_set(source_dir: str | Path = REFERENCE_DIR) -> ParamSet:
    fig = read_figures(source_dir)
    assumptions = haswell_assumptions(fig)
    ests = _set_from_corners(lambda a: _haswell_values(fig, a), assumptions)
    check = haswell_ratio_check(source_dir)
    dom = assumptions[check["dominant"]]
    summary = (f"copy_if_referenced / mapcount = {check['model']:.2f} against the reported {check['reported']:.2f}"
               f" ({check['relative_error']:+.0%}); the stated assumptions allow {check['low']:.2f} to {check['high']:.2f};"
               f" the dominant assumption is {check['dominant']} (alone it moves the ratio from"
               f" {min(check['swings'][check['dominant']]):.2f} to {max(check['swings'][check['dominant']]):.2f})")
    record = {
        "name": "reuse_vs_copy_ratio",
        "method": "model evaluation at the set's values; the range is the minimum and maximum over every corner of"
                  " the assumptions' ranges; swings move one assumption at a time",
        "parameters": [],
        "n_points": 1,
        "residuals": [{"reported_ratio": _r(check["reported"]), "model_ratio": _r(check["model"]),
                       "relative_error": _r(check["relative_error"], 3)}],
        "range": [_r(check["low"]), _r(check["high"])],
        "swings": {k: [_r(lo), _r(hi)] for k, (lo, hi) in check["swings"].items()},
        "assumptions": {k: {"value": _r(a.value), "low": _r(a.low), "high": _r(a.high), "note": a.note}
                        for k, a in assumptions.items()},
        "note": summary + f"; {check['dominant']}: {dom.note}",
    }
    return ParamSet(
        name="haswell-kvm-guest",
        description=("The KVM guest on Haswell of the original report (Nadav Amit, linux-mm, 2021-11-10), with its"
                     " scenario: two threads, the page still in the batch at every WP fault. " + summary + "."),
        parameters={n: e.entry(n) for n, e in ests.items()},
        fit=[record],
        provenance={"machine": "KVM guest on Haswell", "kernels": "v5.8 (reuse) and 5.13-era mainline (copy)",
                    "source": fig.cite("haswell_guest_reuse_cycles_per_op"), "data": f"data/reference/{FIGURES_CSV}"},
    )


def read_milan_curve(source_dir: str | Path = REFERENCE_DIR) -> pd.DataFrame:
    path = Path(source_dir) / MILAN_CURVE_CSV
    if not path.is_file():
        raise UserError(f"{path}: the Milan tlb_flush2 curve is missing")
    df = pd.read_csv(path)
    for col in ("flush", "threads", "ops_per_s", "citation"):
        if col not in df.columns:
            raise UserError(f"{path}: column {col!r} is missing")
    return df


def milan_shootdown_fit(source_dir: str | Path = REFERENCE_DIR, n_boot: int = N_BOOT) -> dict:
    """Shootdown cost on the 72-CPU Milan from will-it-scale tlb_flush2_threads.

    Each op of tlb_flush2 writes one page and MADV_DONTNEEDs it, so it flushes one page on every
    CPU running a sibling thread. With n threads, the CPU time per op is T(n) = n / (ops/s). It
    holds work W, contention C(n) that grows with threads, and the flush F(n-1). Contention is
    common to both kernels, so the difference D(n) = T_ipi(n) - T_invlpgb(n) = F_ipi(n-1) -
    F_invlpgb(n-1) is what the two curves identify: with a broadcast flush of constant cost b, the
    IPI shootdown's shape and per-CPU cost, and its base less b. The broadcast cost b itself is
    bounded by the curve: C(n) >= 0 gives b <= min over n >= 2 of T_invlpgb(n) - T_invlpgb(1).
    A throughput includes the IPI handling on the target CPUs, so the per-CPU cost is the system's
    CPU time per target, not only the initiator's wait.
    """
    df = read_milan_curve(source_dir)
    t = {}
    for flush in ("ipi", "invlpgb"):
        part = df[df["flush"] == flush].sort_values("threads")
        t[flush] = pd.Series(part["threads"].to_numpy(float) / part["ops_per_s"].to_numpy(float) * 1e6,
                             index=part["threads"].to_numpy(int))  # us per op per thread
    threads = sorted(set(t["ipi"].index) & set(t["invlpgb"].index))
    n = np.array([x for x in threads if x >= 2], float)
    d = np.array([t["ipi"][int(x)] - t["invlpgb"][int(x)] for x in n])
    rng = np.random.default_rng([SEED, 100])
    fit = fit_shootdown(n - 1, d, None, rng=rng, n_boot=n_boot, unit_scale=1000.0,
                        data="tlb_flush2: per-op CPU time with IPI flush minus with INVLPGB, threads - 1 targets")
    bcast = t["invlpgb"]
    growth = {int(x): bcast[int(x)] - bcast[1] for x in threads if x >= 2}
    at = min(growth, key=growth.get)
    bound_ns = max(growth[at], 0.0) * 1000.0
    fig = read_figures(source_dir)
    n36 = 36.0
    d36 = (n36 / fig["milan36_tlb_flush2_ops_ipi_no_drain"] - n36 / fig["milan36_tlb_flush2_ops_invlpgb_no_drain"]) * 1e9
    model, npar = shootdown_shape(fit.estimates["shootdown_model"].value)
    p = [fit.estimates["shootdown_base_ns"].value, fit.estimates["shootdown_per_cpu_ns"].value]
    pred36 = float(model(np.array(p), np.array([n36 - 1]))[0])
    return {"fit": fit, "broadcast_bound_ns": bound_ns, "bound_threads": at, "citation": str(df["citation"].iloc[0]),
            "check36": {"observed_ns": d36, "predicted_ns": pred36, "citation": fig.cite("milan36_tlb_flush2_ops_ipi_no_drain")}}


def _milan_common(fig: Figures, cite: str) -> dict[str, Estimate]:
    out = {}
    for name in ("fault_entry_ns", "reuse_ns", "alloc_ns", "free_ns", "drain_base_ns", "drain_per_folio_ns",
                 "remote_drain_ns", "drain_all_base_ns", "drain_all_per_cpu_ns"):
        out[name] = assumed(name, "not in the published figures for this machine")
    out["copy_bandwidth_gbps"] = assumed("copy_bandwidth_gbps", "not published for Milan")
    out["local_flush_ns"] = Estimate(fig["x86_single_flush_ns"], "published",
                                     f"x86 in general, not Milan in particular: {fig.cite('x86_single_flush_ns')}")
    out["page_bytes"] = Estimate(4096, "assumed", "x86-64 base page (architecture fact, no figure row)")
    out["batch_size"] = Estimate(31, "assumed", "PAGEVEC_SIZE 31 since Linux 6.9 (kernel source, no figure row); the series is for 6.15")
    out["cpus"] = Estimate(int(fig["milan_cpus"]), "published", f"72-CPU AMD Milan ({fig.cite('milan_cpus')})")
    return out


def milan_sets(source_dir: str | Path = REFERENCE_DIR) -> list[ParamSet]:
    """The 72-CPU Milan with IPI shootdowns and with INVLPGB broadcast flushes."""
    fig = read_figures(source_dir)
    m = milan_shootdown_fit(source_dir)
    fit: FitOutcome = m["fit"]
    cite = m["citation"]
    bound = m["broadcast_bound_ns"]
    b_note = (f"INVLPGB flush cost per op: the curve bounds it to 0..{bound:.4g} ns (the rise of the INVLPGB per-op time"
              f" from 1 to {m['bound_threads']} threads, contention being >= 0; {cite}); the value is the middle of"
              " that bound (assumed)")
    c36 = m["check36"]
    check = (f"at 36 threads the fit gives {c36['predicted_ns']:.4g} ns between the two flushes; the 36-core figures"
             f" without lru_add_drain give {c36['observed_ns']:.4g} ns ({c36['citation']})")
    bounds_record = {"name": "broadcast_flush_bound", "method": "minimum over n >= 2 of T_invlpgb(n) - T_invlpgb(1)",
                     "parameters": ["shootdown_base_ns"], "n_points": 7, "residuals": [],
                     "bound_ns": _r(bound), "at_threads": m["bound_threads"], "note": b_note}
    fit_record = dict(fit.record)
    fit_record["note"] = ("per-op CPU time T(n) = threads / (ops/s); D(n) = T_ipi(n) - T_invlpgb(n) for n >= 2 against"
                          " n - 1 target CPUs (contention common to both kernels cancels); " + check)
    sets = []

    ipi = _milan_common(fig, cite)
    shape = fit.estimates["shootdown_model"]
    ipi["shootdown_model"] = Estimate(shape.value, "published", f"{shape.note}, on the difference of the two curves ({cite})")
    per = fit.estimates["shootdown_per_cpu_ns"]
    ipi["shootdown_per_cpu_ns"] = Estimate(per.value, "published" if per.source == "measured" else per.source,
                                           f"fitted to the difference of the IPI and INVLPGB curves ({cite}); includes"
                                           " the IPI handling on each target (a throughput)", per.ci_low, per.ci_high)
    base = fit.estimates["shootdown_base_ns"]
    ipi["shootdown_base_ns"] = Estimate(
        max(base.value + bound / 2, 0.0), "published",
        f"fitted intercept {base.value:.4g} ns of the difference of the curves ({cite}) plus the INVLPGB flush"
        f" cost {bound / 2:.4g} ns it is measured against ({b_note}); interval: the fit's plus the bound's",
        max(base.ci_low + 0.0, 0.0), base.ci_high + bound)
    sets.append(ParamSet(
        name="milan72-ipi",
        description=("72-CPU AMD Milan, TLB shootdown by IPI, fitted to will-it-scale tlb_flush2_threads (Rik van Riel,"
                     f" INVLPGB series, kernel 6.15): {shape.value} shape, {per.value:.4g} ns per target CPU; " + check
                     + ". Parameters the series does not give are assumed."),
        parameters={n: e.entry(n) for n, e in ipi.items()},
        fit=[fit_record, bounds_record],
        provenance={"machine": "72-CPU AMD Milan", "kernel": "6.15 INVLPGB series, IPI flush", "source": cite,
                    "data": f"data/reference/{MILAN_CURVE_CSV}"}))

    bc = _milan_common(fig, cite)
    bc["shootdown_model"] = Estimate("broadcast", "assumed",
                                     "INVLPGB flushes every CPU with one broadcast, whatever the number of targets; the"
                                     " curve cannot show the shape because contention grows with threads")
    bc["shootdown_base_ns"] = Estimate(bound / 2, "published", b_note, 0.0, bound)
    bc["shootdown_per_cpu_ns"] = Estimate(0.0, "assumed", "0: the broadcast shape has no per-CPU term")
    sets.append(ParamSet(
        name="milan72-invlpgb",
        description=("72-CPU AMD Milan, TLB flush by INVLPGB broadcast (Rik van Riel, INVLPGB series, kernel 6.15):"
                     f" broadcast shape, flush cost bounded by the tlb_flush2_threads curve to 0..{bound:.4g} ns."
                     " Parameters the series does not give are assumed."),
        parameters={n: e.entry(n) for n, e in bc.items()},
        fit=[bounds_record],
        provenance={"machine": "72-CPU AMD Milan", "kernel": "6.15 INVLPGB series, INVLPGB flush", "source": cite,
                    "data": f"data/reference/{MILAN_CURVE_CSV}"}))
    return sets


def build_reference_sets(out_dir: str | Path = REFERENCE_DIR, source_dir: str | Path | None = None,
                         force: bool = False) -> list[Path]:
    """Regenerate every reference parameter set from the CSVs of ``source_dir``."""
    source_dir = Path(source_dir) if source_dir is not None else Path(out_dir)
    if source_dir == Path(out_dir) and not (source_dir / FIGURES_CSV).is_file():
        source_dir = REFERENCE_DIR
    sets = [haswell_guest_set(source_dir), *milan_sets(source_dir)]
    return [save(ps, Path(out_dir) / f"{ps.name}.json", force=force) for ps in sets]


if __name__ == "__main__":  # pragma: no cover - maintenance entry point
    import sys

    if sys.argv[1:2] == ["build-reference"]:
        for p in build_reference_sets(sys.argv[2] if len(sys.argv) > 2 else REFERENCE_DIR, force=True):
            print(f"wrote {p}")
    else:
        print("usage: python -m costmodel.calibrate build-reference [OUT_DIR]", file=sys.stderr)
        sys.exit(2)


# ---- posterior-predictive check ------------------------------------------------------------

#: a calibrated set passes when every measured figure lies within this many standard errors of
#: the model's prediction at the set (99.9 %), its errors widened by the fit's robust scatter
PREDICTIVE_Z = 3.29
#: parameter files store 5 significant digits: a prediction may differ by that rounding
_ROUNDING = 2e-4


def _robust_scale(r: np.ndarray) -> float:
    """Robust spread of weighted residuals around their median (1.4826 MAD), at least 1: points
    that scatter more than their errors widen the band, a common offset does not."""
    r = r[np.isfinite(r)]
    if r.size < 3:
        return 1.0
    return max(1.0, 1.4826 * float(np.median(np.abs(r - np.median(r)))))


def posterior_predictive(paramset: ParamSet, directory: str | Path) -> pd.DataFrame:
    """Every figure the set's fits were made from, read afresh from the measurement directory,
    beside the model's prediction at the set's values (through the forward expressions of
    :mod:`costmodel.model.forward`). One row per figure: fit, measurement, observed, predicted,
    tolerance, inside. Fits the set did not make (assumed parameters) contribute nothing."""
    from .model.forward import measurable

    df, provenance = read_measurements(directory)
    values = registry.resolve(base=paramset.values())
    fitted = {f["name"] for f in paramset.fit if f.get("n_points", 0) > 0}
    rng = np.random.default_rng(0)
    rows: list[dict] = []

    def add(fit, label, observed, predicted, tol):
        rows.append({"fit": fit, "measurement": label, "observed": float(observed), "predicted": float(predicted),
                     "tolerance": float(tol), "inside": bool(abs(observed - predicted) <= tol)})

    def tol_of(obs_value, se, scale=1.0):
        return PREDICTIVE_Z * se * scale + _ROUNDING * abs(obs_value) + 1e-9

    for group, _params, func in FIT_GROUPS:
        if group not in fitted:
            continue
        outcome = func(df, provenance, rng, 2)
        res = outcome.record["residuals"]
        if group == "fault_and_copy":
            for row, name in zip(res, outcome.record["forward"]):
                pred = _evaluate_measurable(measurable(name), values)
                add(group, row["measurement"], row["observed_ns"], pred, tol_of(row["observed_ns"], row["se_ns"]))
        elif group == "remote_drain":
            exprs = [measurable("drain_all_base_ns")] + [measurable("drain_all_base_ns") + measurable(n)
                                                         for n in outcome.record["forward"][1:]]
            for row, expr in zip(res, exprs):
                add(group, row["measurement"], row["observed_ns"], _evaluate_measurable(expr, values),
                    tol_of(row["observed_ns"], row["se_ns"]))
        elif group in ("shootdown", "drain"):
            xname, mname = ("target_cpus", "shootdown_ns") if group == "shootdown" else ("folios", "local_drain_ns")
            expr = measurable(mname, values["shootdown_model"])
            x = np.array([r[xname] for r in res], float)
            y = np.array([r["observed_ns"] for r in res], float)
            se = np.array([r.get("se_ns", max(abs(r["observed_ns"]) * 0.01, 1.0)) for r in res], float)
            pred = np.broadcast_to(np.asarray(_evaluate_measurable(expr, values, **{
                "targets" if group == "shootdown" else "folios": x}), float), x.shape)
            scale = _robust_scale((y - pred) / se)
            for xi, yi, si, pi in zip(x, y, se, pred):
                add(group, f"{group} at {xname}={xi:g}", yi, pi, tol_of(yi, si, scale))
        elif group == "batch_size":
            k = np.array([r["adds_between"] for r in res], float)
            d = np.array([r["drained_first"] for r in res], bool)
            n = np.array([r["n"] for r in res], float)
            frac = np.array([r["observed_fraction"] for r in res], float)
            pred = copy_fraction(int(values["batch_size"]), k, d)
            z = stats.z_value(0.999)
            for ki, di, ni, fi, pi in zip(k, d, n, frac, pred):
                lo, hi = stats.wilson_interval(round(fi * ni), int(ni), z)
                # the fit allows a 1 % flip rate (stray drains): a prediction within it of the interval passes
                rows.append({"fit": group, "measurement": f"copy fraction k={ki:g} drained_first={int(di)}",
                             "observed": float(fi), "predicted": float(pi), "tolerance": float(max(hi - lo, 0) / 2),
                             "inside": bool(lo - _FLIP <= pi <= hi + _FLIP)})
    return pd.DataFrame(rows, columns=["fit", "measurement", "observed", "predicted", "tolerance", "inside"])
