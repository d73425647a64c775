"""Interval arithmetic shared by the probes' summary, the simulation, calibration and charts.

A leaf module: it imports nothing of ours, so the measurement side and the model side can both
use it without importing each other.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import numpy as np


def z_value(confidence: float) -> float:
    """The two-sided normal quantile: 1.96 for 0.95."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return statistics.NormalDist().inv_cdf(0.5 + confidence / 2)


Z95 = z_value(0.95)


def wilson_interval(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion; exact 0 and 1 at the ends; NaN if n = 0."""
    if n <= 0:
        return math.nan, math.nan
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


# ---- a value with its interval ----------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """An estimated value with its confidence interval [low, high] and how it was made."""

    value: float
    low: float
    high: float
    method: str

    def contains(self, x: float, rel_tol: float = 1e-9) -> bool:
        """Whether x lies in the interval (allowing float rounding of exactly-known values)."""
        slack = rel_tol * max(1.0, abs(x), abs(self.value))
        return self.low - slack <= x <= self.high + slack

    def to_dict(self) -> dict:
        def clean(v):
            return None if v is None or not math.isfinite(v) else float(v)

        return {"sim": clean(self.value), "low": clean(self.low), "high": clean(self.high)}


def wilson_estimate(k: float, n: float, z: float) -> Estimate:
    """k successes in n trials with the Wilson score interval."""
    low, high = wilson_interval(k, n, z)
    return Estimate(k / n if n > 0 else math.nan, low, high, "wilson")


def mean_estimate(weights, x, z: float) -> Estimate:
    """Mean of samples ``x`` with multiplicities ``weights`` and the interval mean +- z sd/sqrt(n).

    The variance is regularised as in Agresti-Coull: z^2 pseudo-samples at each of the smallest
    and largest value ``x`` can take (every entry of ``x``, observed or not). A run in which a
    rare, dear branch never happened then still gets a width close to the Wilson bound of that
    branch's probability instead of zero; with many samples the pseudo-samples do not matter.
    """
    weights, x = np.asarray(weights, float), np.asarray(x, float)
    n = float(weights.sum())
    if n <= 0:
        return Estimate(math.nan, math.nan, math.nan, "normal")
    mean = float((weights * x).sum() / n)
    lo, hi = float(np.min(x)), float(np.max(x))
    pseudo = z * z
    ss = float((weights * (x - mean) ** 2).sum()) + pseudo * ((lo - mean) ** 2 + (hi - mean) ** 2)
    n_aug = n + 2 * pseudo
    half = z * math.sqrt(ss / (n_aug - 1) / n_aug)
    return Estimate(mean, mean - half, mean + half, "normal")


def scaled(e: Estimate, c: float) -> Estimate:
    """``e`` times a constant."""
    lo, hi = sorted((e.low * c, e.high * c))
    return Estimate(e.value * c, lo, hi, e.method)
