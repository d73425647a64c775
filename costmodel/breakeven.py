"""Break-even: where two policies' expected costs per WP fault are equal, as one parameter moves.

With every other parameter fixed, the cost difference is often a low-degree polynomial of the
free parameter (costs are linear in the machine costs, probabilities are polynomial in the
p_ parameters); sympy ``solve`` answers those exactly. Otherwise the difference is scanned over
the parameter's bounded range (log-spaced where the registry says so, every integer for integer
parameters with a modest range) and each sign change is refined with scipy's ``brentq``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy as sp
from scipy.optimize import brentq

from . import registry
from .errors import UserError
from .evaluate import NUMERIC_NAMES, evaluate_arrays, policy_or_error
from .model import policy_outputs
from .model.special import Clamp

_SCAN_POINTS = 4001
_MAX_POLY_DEGREE = 4


@dataclass
class BreakEven:
    policy: str
    against: str
    parameter: str
    low: float
    high: float
    roots: list[float] = field(default_factory=list)
    method: str = ""
    #: (interval low, interval high, cheaper policy or "equal") between consecutive roots
    regions: list[tuple[float, float, str]] = field(default_factory=list)

    def describe(self) -> str:
        unit = registry.NUMERIC[self.parameter].unit
        if len(self.regions) == 1:
            who = self.regions[0][2]
            if who == "equal":
                return (f"{self.policy} and {self.against} cost the same over the whole range "
                        f"{self.parameter} = {self.low:g} .. {self.high:g} {unit}")
            return (f"{who} is cheaper over the whole range {self.parameter} = {self.low:g} .. "
                    f"{self.high:g} {unit}; no break-even")
        parts = [f"break-even of {self.policy} against {self.against} in {self.parameter} ({self.method}):"]
        if not self.roots:
            parts.append("  no crossing; the costs only meet where the difference vanishes")
        for r in self.roots:
            parts.append(f"  {self.parameter} = {r:.6g} {unit}")
        for lo, hi, who in self.regions:
            parts.append(f"  {lo:.6g} .. {hi:.6g}: {who} cheaper" if who != "equal" else f"  {lo:.6g} .. {hi:.6g}: equal")
        return "\n".join(parts)

    def as_dict(self) -> dict:
        return {"policy": self.policy, "against": self.against, "parameter": self.parameter,
                "low": self.low, "high": self.high, "roots": self.roots, "method": self.method,
                "regions": [{"low": a, "high": b, "cheaper": w} for a, b, w in self.regions]}


def breakeven(values: dict, policy: str, against: str, solve_for: str,
              low: float | None = None, high: float | None = None) -> BreakEven:
    policy_or_error(policy)
    policy_or_error(against)
    if solve_for not in registry.NUMERIC:
        if solve_for in registry.CATEGORICAL:
            raise UserError(f"--solve-for {solve_for}: a categorical parameter has no break-even; pick a numeric one")
        raise registry._unknown(solve_for)
    entry = registry.NUMERIC[solve_for]
    lo = entry.low if low is None else registry.parse_value(solve_for, low)
    hi = entry.high if high is None else registry.parse_value(solve_for, high)
    lo, hi = _feasible_range(values, solve_for, lo, hi)
    result = BreakEven(policy, against, solve_for, float(lo), float(hi))

    roots = _solve_symbolically(values, policy, against, solve_for, lo, hi)
    xs = _grid(solve_for, lo, hi)
    d = _difference(values, policy, against, solve_for, xs)
    if roots is not None:
        result.method = "sympy solve"
    else:
        roots = _refine_sign_changes(values, policy, against, solve_for, xs, d)
        result.method = "integer scan" if entry.integer else "scan + brentq"
    result.roots = sorted(roots)
    result.regions = _regions(xs, d, result.roots, policy, against)
    return result


def _signs(d: np.ndarray) -> np.ndarray:
    """-1 / 0 / +1 per grid point; 0 where the two costs agree to 1e-9 of their size."""
    tol = 1e-9 * (np.abs(d).max() + 1.0)
    return np.where(np.abs(d) <= tol, 0, np.sign(d)).astype(int)


def _regions(xs, d, roots, policy, against) -> list[tuple[float, float, str]]:
    """Runs of the same sign over the scan, cut at the refined roots."""
    sign = _signs(d)
    names = {-1: policy, 0: "equal", 1: against}
    regions: list[tuple[float, float, str]] = []
    start = float(xs[0])
    cuts = iter(sorted(roots))
    next_cut = next(cuts, None)
    for i in range(1, len(xs)):
        if sign[i] != sign[i - 1]:
            edge = float((xs[i - 1] + xs[i]) / 2)
            while next_cut is not None and next_cut <= xs[i]:
                if next_cut >= xs[i - 1]:
                    edge = float(next_cut)
                next_cut = next(cuts, None)
            regions.append((start, edge, names[sign[i - 1]]))
            start = edge
    regions.append((start, float(xs[-1]), names[sign[-1]]))
    return regions


def _feasible_range(values, name, lo, hi):
    """Narrow the range by the registry's cross-parameter rules."""
    if name == "remote_cpus":
        hi = min(hi, values["cpus"] - 1)
    if name == "cpus":
        lo = max(lo, values["remote_cpus"] + 1)
    if name == "batch_size":
        lo = max(lo, values["batch_position"] + 1)
    if name == "batch_position":
        hi = min(hi, values["batch_size"] - 1)
    if lo > hi:
        raise UserError(f"{name}: no value in {lo:g} .. {hi:g} is consistent with the other parameters")
    return lo, hi


def _difference(values, policy, against, name, xs: np.ndarray) -> np.ndarray:
    point = dict(values)
    point[name] = xs
    out = evaluate_arrays(point, (policy, against))
    return np.asarray(out[(policy, "expected_ns")] - out[(against, "expected_ns")], dtype=float)


def _solve_symbolically(values, policy, against, name, lo, hi):
    """Exact roots when the difference is a polynomial of low degree in the free parameter."""
    sym = registry.S[name]
    cats = [values[n] for n in registry.CATEGORICAL]
    diff = policy_outputs(policy, *cats)["expected_ns"] - policy_outputs(against, *cats)["expected_ns"]
    subs = {registry.S[n]: sp.Float(values[n]) if not registry.NUMERIC[n].integer else sp.Integer(values[n])
            for n in NUMERIC_NAMES if n != name}
    expr = diff.xreplace(subs)
    if expr.has(Clamp):  # the free parameter sits inside a clamped probability: not a polynomial
        return None
    if expr.has(sp.Sum) or expr.has(sp.Piecewise):
        expr = sp.piecewise_fold(expr)
        if expr.has(sp.Piecewise) or expr.has(sp.Sum):
            return None
    try:
        poly = sp.Poly(sp.expand(expr), sym)
    except sp.PolynomialError:
        return None
    if poly.degree() > _MAX_POLY_DEGREE:
        return None
    if poly.is_zero:
        return []
    roots = []
    for r in sp.Poly(poly.as_expr(), sym).nroots():
        if abs(sp.im(r)) < 1e-12:
            x = float(sp.re(r))
            if lo <= x <= hi:
                roots.append(x)
    if registry.NUMERIC[name].integer:
        return None  # an integer parameter needs the scan to say where the order flips
    return roots


def _grid(name, lo, hi) -> np.ndarray:
    entry = registry.NUMERIC[name]
    if entry.integer and hi - lo <= 20000:
        return np.arange(int(lo), int(hi) + 1, dtype=float)
    if entry.log_scale or (lo >= 0 and hi / max(lo, 1e-300) > 1e3):
        start = lo if lo > 0 else min(hi * 1e-9, 1e-12)
        g = np.geomspace(start, hi, _SCAN_POINTS)
        g = np.unique(np.concatenate([[lo], g]))
    else:
        g = np.linspace(lo, hi, _SCAN_POINTS)
    return np.unique(np.round(g)) if entry.integer else g


def _refine_sign_changes(values, policy, against, name, xs, d) -> list[float]:
    """Strict sign changes of the difference on the scan, refined by brentq (or, for integer
    parameters, the first integer at which the order has flipped)."""
    sign = _signs(d)
    integer = registry.NUMERIC[name].integer
    roots: list[float] = []
    for i in np.flatnonzero(sign[:-1] * sign[1:] < 0):
        if integer:
            roots.append(float(xs[i + 1]))
        else:
            f = lambda x: float(_difference(values, policy, against, name, np.array([x]))[0])
            roots.append(brentq(f, xs[i], xs[i + 1], xtol=1e-12 * max(1.0, abs(xs[i + 1]))))
    return roots
