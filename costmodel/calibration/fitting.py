"""Generic robust fitting with a parametric bootstrap, and the estimates a fit gives.

Least squares is scipy's ``least_squares`` with the ``soft_l1`` loss (outliers are expected:
host-side reclaim, stray interrupts), residuals weighted by each point's standard error. Intervals
are 95 % parametric bootstrap intervals with a fixed seed, drawn from the fitted curve with each
point's standard error, inflated by the (robust) Birge ratio when the points scatter more than
their errors say. Nothing here knows the model or the probes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
from scipy.optimize import least_squares

from .. import registry, stats
from ..paramfile import Entry, numeric_entry

#: bootstrap seed (the date of the seed report) and replicate count; fixed so runs reproduce
SEED = 20211013
N_BOOT = 400
LEVEL = 0.95
#: significant digits written to parameter files
DIGITS = 5
#: an assumed value without a better range is given this factor either way as its interval
PRIOR_FACTOR = registry.PRIOR_FACTOR
#: fewer distinct target counts than this: the shootdown shape is assumed, not chosen
MIN_SHAPE_COUNTS = 3
Z95_FIT = stats.Z95


def round_to(x: float, digits: int = DIGITS) -> float:
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
            return 0.0 if abs(v) < tiny else round_to(v)

        value = conv(self.value)
        lo = None if self.ci_low is None else max(spec.low, min(spec.high, conv(self.ci_low)))
        hi = None if self.ci_high is None else max(spec.low, min(spec.high, conv(self.ci_high)))
        if lo is not None:  # a percentile interval of a skewed bootstrap may miss the point: widen it
            lo, hi = min(lo, value), max(hi, value)
        return numeric_entry(name, value, self.source, self.note, lo, hi)


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
    iv = registry.default_interval(name, v)
    if iv is not None and iv[0] <= v <= iv[1]:
        lo, hi, why = iv
        why = f"interval: {why} (a stated range, not a measurement)"
    else:
        lo, hi = prior_interval(v)
        why = f"interval: a factor {PRIOR_FACTOR:g} either way (a stated range, not a measurement)"
    if spec.integer:
        lo, hi = max(spec.low, math.floor(lo)), min(spec.high, math.ceil(hi))
    return Estimate(v, "assumed", f"{note}; {why}", max(spec.low, lo), min(spec.high, hi))


def percentile_interval(draws: np.ndarray) -> tuple[float, float]:
    a = (1 - LEVEL) / 2 * 100
    lo, hi = np.percentile(draws, [a, 100 - a])
    return float(lo), float(hi)


def default_ratio(names: Sequence[str]) -> np.ndarray:
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
              f_scale: float | None = None, loss: str = "soft_l1") -> CurveFit:
    """Weighted least squares with the soft_l1 loss (``loss="linear"``: plain weighted least
    squares, the line through the means). The loss scale is the robust (MAD) spread of the weighted
    residuals of a plain first fit, at least 1, unless given."""
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
    fit = first if loss == "linear" else least_squares(resid, first.x, bounds=(lower, upper), method="trf",
                                                       loss=loss, f_scale=f_scale)
    fitted = model(fit.x, x)
    res = y - fitted
    chi2 = float(np.sum((res * w) ** 2))
    return CurveFit(fit.x, fitted, res, chi2, len(y), len(p0), se is not None, f_scale, w)


def bootstrap_curve(model, fit: CurveFit, x: np.ndarray, se: np.ndarray | None, lower, upper,
                    rng: np.random.Generator, n_boot: int = N_BOOT, loss: str = "soft_l1") -> np.ndarray:
    """Parameter draws (n_boot x k): refits to the fitted curve plus each point's error (with the
    fit's own ``loss``)."""
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

        r = least_squares(resid, fit.params, bounds=(lower, upper), method="trf", loss=loss,
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
        name, extra = "QAIC", {"overdispersion": round_to(c, 4)}
    else:
        values = {}
        for s, f in fits.items():
            rss = max(f.chi2, 1e-300)
            corr = 2 * f.k * (f.k + 1) / (f.n - f.k - 1) if f.n - f.k - 1 > 0 else 0.0
            values[s] = f.n * math.log(rss / f.n) + 2 * f.k + corr
        name, extra = "AICc", {}
    chosen = min(values, key=values.get)
    return {"name": name, "values": {s: round_to(v, 6) for s, v in values.items()}, "chosen": chosen, **extra}

