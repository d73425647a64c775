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


def _poisson_below_numpy(n, x):
    n = np.asarray(n, dtype=float)
    return np.where(n >= 1, _sc.gammaincc(np.maximum(n, 1.0), x), 0.0)


#: extra names for ``sympy.lambdify``'s module list
NUMPY_IMPLEMENTATIONS = {"PoissonBelow": _poisson_below_numpy}
