"""Elasticities of each policy's expected cost from the sympy model: exact derivatives where the
model is smooth, a central difference where it is not."""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import sympy as sp

from .. import registry
from ..evaluate import NUMERIC_NAMES, evaluate_arrays, evaluate_point, policy_or_error
from ..model import POLICIES, policy_outputs
from ..model.numeric import lambdify
from ..model.special import Clamp, PoissonBelow


# ---- sensitivity -----------------------------------------------------------------------------


class _Inside(sp.Function):
    """1 where ``lo <= x <= hi``, else 0: the derivative of a clamp with respect to its argument."""

    nargs = 3

    def fdiff(self, argindex=1):
        return sp.S.Zero

    def _numpycode(self, printer):
        x, lo, hi = (printer._print(a) for a in self.args)
        where = printer._module_format("numpy.where")
        return f"{where}(({x} >= {lo}) & ({x} <= {hi}), 1.0, 0.0)"


class _DiffClamp(sp.Function):
    """The model's ``Clamp`` with a derivative (the model's own has none: it is never
    differentiated there); prints as numpy's clip."""

    nargs = 3

    def fdiff(self, argindex=1):
        x, lo, hi = self.args
        return _Inside(x, lo, hi) if argindex == 1 else sp.S.Zero

    def _numpycode(self, printer):
        x, lo, hi = (printer._print(a) for a in self.args)
        return f"{printer._module_format('numpy.clip')}({x}, {lo}, {hi})"


class _DiffPoissonBelow(sp.Function):
    """The model's ``PoissonBelow(n, x)`` with its derivative in x (the Poisson probability of
    n - 1, negated); in n it has none in closed form (that parameter falls back to differences)."""

    nargs = 2

    def fdiff(self, argindex=1):
        n, x = self.args
        if argindex == 2:
            return -sp.exp(-x) * x ** (n - 1) / sp.gamma(n)
        return sp.Derivative(self, n)

    def _numpycode(self, printer):
        n, x = (printer._print(a) for a in self.args)
        return f"PoissonBelow({n}, {x})"


def _differentiable(expr: sp.Expr) -> sp.Expr:
    return expr.replace(Clamp, _DiffClamp).replace(PoissonBelow, _DiffPoissonBelow)


@lru_cache(maxsize=64)
def expected_ns_expr(policy: str, categoricals: tuple[str, ...]) -> sp.Expr:
    """``policy``'s expected cost per WP fault as a sympy expression, the categorical choices fixed."""
    return policy_outputs(policy, *categoricals)["expected_ns"]


@lru_cache(maxsize=64)
def _gradient(policy: str, categoricals: tuple[str, ...], names: tuple[str, ...]):
    """d expected_ns / d name for each name, lambdified together; None where sympy leaves a
    derivative it cannot express, or a sum over the batch position, in the result."""
    f = _differentiable(expected_ns_expr(policy, categoricals))
    args = [registry.S[n] for n in NUMERIC_NAMES]
    exprs, ok = [], []
    for n in names:
        d = sp.diff(f, registry.S[n])
        good = not (d.has(sp.Derivative) or d.has(sp.Sum) or d.has(sp.Subs))
        exprs.append(d if good else sp.S.Zero)
        ok.append(good)
    fn = lambdify(args, exprs, cse=True)
    return fn, tuple(ok)


def categoricals_of(values) -> tuple[str, ...]:
    """The categorical choices of a point, in the registry's order."""
    return tuple(values[n] for n in registry.CATEGORICAL)


def _difference_gradient(values, policy: str, name: str) -> float:
    """Central (one-sided at a bound) difference of expected_ns in ``name``; integers step by 1."""
    spec = registry.NUMERIC[name]
    x = float(values[name])
    h = 1.0 if spec.integer else max(abs(x) * 1e-6, 1e-12 * max(1.0, spec.high))
    lo, hi = registry.feasible_range(name, values)
    a, b = max(lo, x - h), min(hi, x + h)
    if b <= a:
        return 0.0
    out = evaluate_arrays(dict(values, **{name: np.array([a, b])}), (policy,))[(policy, "expected_ns")]
    return float((out[1] - out[0]) / (b - a))


def elasticities(values: Mapping[str, object], names: Sequence[str] | None = None,
                 policies: Iterable[str] | None = None) -> pd.DataFrame:
    """d ln(expected_ns) / d ln(parameter) of each policy at ``values``: by sympy's derivative of
    the policy's expected cost, lambdified, where that has a closed form; by a central
    difference of the compiled model otherwise (``method`` says which). One row per (parameter,
    policy): ``parameter``, ``policy``, ``value``, ``expected_ns``, ``d_expected_ns`` (ns per
    unit of the parameter), ``elasticity``, ``method``. A parameter at 0 has elasticity 0."""
    values = registry.as_point(values)
    pols = tuple(policy_or_error(p) for p in (policies or POLICIES))
    names = tuple(names or NUMERIC_NAMES)
    at = evaluate_point(values, pols)
    rows = []
    args = [float(values[n]) for n in NUMERIC_NAMES]
    for p in pols:
        fn, ok = _gradient(p, categoricals_of(values), names)
        with np.errstate(all="ignore"):
            grads = [float(np.asarray(g)) for g in fn(*args)]
        for n, g, good in zip(names, grads, ok):
            method = "sympy"
            if not good or not math.isfinite(g):
                g, method = _difference_gradient(values, p, n), "central difference"
            f = at[p]["expected_ns"]
            x = float(values[n])
            rows.append({"parameter": n, "policy": p, "value": x, "expected_ns": f, "d_expected_ns": g,
                         "elasticity": g * x / f if f and x else 0.0, "method": method})
    return pd.DataFrame(rows)
