"""The model's expressions as numpy code: every lambdify of the project goes through here.

The model's own functions (``PoissonBelow``, ``Clamp``) get their numpy implementations, and
And/Or/Max/Min print as elementwise binary calls that accept any mix of arrays and scalars.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.numpy import SciPyPrinter

from .special import NUMPY_IMPLEMENTATIONS


class _Printer(SciPyPrinter):
    """sympy's SciPy printer, but And/Or/Max/Min as nested binary ufunc calls: its
    ``logical_and.reduce((a, b))`` and ``amax((a, b))`` stack their operands and fail when one is
    an array and the other a scalar, as happens when only some parameters are swept."""

    def _print_fold(self, expr, ufunc):
        args = [self._print(a) for a in expr.args]
        out = args[0]
        for arg in args[1:]:
            out = f"{self._module_format('numpy.' + ufunc)}({out}, {arg})"
        return out

    def _print_Max(self, expr):  # elementwise, whatever mix of arrays and scalars
        return self._print_fold(expr, "maximum")

    def _print_Min(self, expr):
        return self._print_fold(expr, "minimum")

    def _print_And(self, expr):
        return self._print_fold(expr, "logical_and")

    def _print_Or(self, expr):
        return self._print_fold(expr, "logical_or")


def lambdify(args, expr, **kw):
    printer = _Printer({"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": True,
                        "user_functions": {}})
    return sp.lambdify(args, expr, modules=[NUMPY_IMPLEMENTATIONS, "scipy", "numpy"], printer=printer, **kw)
