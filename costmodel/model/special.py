"""Special functions the model needs that sympy lacks in a numerically safe form.

``PoissonBelow(n, x)`` is P(N < n) for N ~ Poisson(x): the regularized upper incomplete gamma
Q(n, x) for n >= 1 and 0 for n <= 0. Symbolically it rewrites to sympy's ``uppergamma``; for
numpy it maps to ``scipy.special.gammaincc``, which stays finite where ``uppergamma/gamma``
would overflow (n above ~170).
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from scipy import special as _sc


class PoissonBelow(sp.Function):
    """P(N < n), N ~ Poisson(x)."""

    nargs = 2

    @classmethod
    def eval(cls, n, x):
        if n.is_number and (n <= 0) == sp.true:
            return sp.S.Zero
        if x.is_zero and n.is_positive:
            return sp.S.One
        if n.is_Integer and x.is_Number and n <= 400:
            return sp.Add(*[sp.exp(-x) * x**i / sp.factorial(i) for i in range(int(n))])
        return None

    def _eval_rewrite_as_uppergamma(self, n, x, **kwargs):
        return sp.Piecewise((sp.S.Zero, n <= 0), (sp.uppergamma(n, x) / sp.gamma(n), True))

    def _eval_evalf(self, prec):
        return self.rewrite(sp.uppergamma)._eval_evalf(prec)

    def _latex(self, printer, exp=None):
        n, x = (printer._print(a) for a in self.args)
        tex = rf"Q\!\left({n},\, {x}\right)"
        return tex if exp is None else rf"{tex}^{{{exp}}}"


class Clamp(sp.Function):
    """``x`` limited to [lo, hi]. Unlike sympy's Max/Min it never reasons about its arguments
    (which makes building and substituting into large expressions slow); it evaluates only when
    ``x`` is a number."""

    nargs = 3

    @classmethod
    def eval(cls, x, lo, hi):
        if x.is_Number and lo.is_Number and hi.is_Number:
            return sp.Min(sp.Max(x, lo), hi)
        return None

    def _eval_evalf(self, prec):
        x, lo, hi = (a.evalf(prec) for a in self.args)
        return Clamp(x, lo, hi)

    def _latex(self, printer, exp=None):
        x, lo, hi = (printer._print(a) for a in self.args)
        tex = rf"\operatorname{{clamp}}_{{[{lo},\,{hi}]}}\!\left({x}\right)"
        return tex if exp is None else rf"{tex}^{{{exp}}}"


def _poisson_below_numpy(n, x):
    n = np.asarray(n, dtype=float)
    return np.where(n >= 1, _sc.gammaincc(np.maximum(n, 1.0), x), 0.0)


#: extra names for ``sympy.lambdify``'s module list
NUMPY_IMPLEMENTATIONS = {"PoissonBelow": _poisson_below_numpy, "Clamp": np.clip}
