"""Print the model's sympy expressions as Vega expressions, so a browser evaluates the same
formulas the package does (the report's sliders recompute every chart with no Python behind it).

Only what the Vega expression language can say is printed: arithmetic, powers, exp/log (with
``expm1``/``log1p`` written to stay accurate near zero), min/max, and ``Piecewise`` as nested
ternaries. Anything else (a symbolic ``Sum``, the incomplete gamma of the fixed-time gap) raises
:class:`NotPrintable`; the caller then keeps that part in Python.

:func:`transforms` turns a set of named expressions into a chain of Vega-Lite ``calculate``
transforms with common sub-expressions computed once per row.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from .model.special import Clamp

#: below this |x| the series is used (its error is below 1e-16 relative there)
_SERIES_BELOW = 1e-5


class NotPrintable(ValueError):
    """The expression holds something the Vega expression language cannot compute."""


def _num(x) -> str:
    v = float(x)
    if math.isnan(v) or math.isinf(v):
        raise NotPrintable(f"non-finite constant {x}")
    text = repr(v)
    return f"({text})" if v < 0 else text


_REL = {sp.Eq: "==", sp.Ne: "!=", sp.Lt: "<", sp.Le: "<=", sp.Gt: ">", sp.Ge: ">="}
_FUNC = {sp.exp: "exp", sp.log: "log", sp.Abs: "abs", sp.floor: "floor", sp.ceiling: "ceil",
         sp.sin: "sin", sp.cos: "cos", sp.tan: "tan"}


def to_vega(expr: sp.Basic, names: Mapping[sp.Symbol, str]) -> str:
    """``expr`` as a Vega expression; ``names`` maps each free symbol to what stands for it
    there (a signal name such as ``p_same_cpu`` or a field such as ``datum.remote_cpus``)."""
    if isinstance(expr, bool) or not isinstance(expr, (sp.Basic, int, float)):
        raise TypeError(f"to_vega takes a sympy expression or a number, not {type(expr).__name__}")
    if not isinstance(expr, sp.Basic):  # a plain number; strings never get here
        expr = sp.Integer(expr) if isinstance(expr, int) else sp.Float(expr)
    return _print(expr, names)


def _print(e: sp.Basic, names) -> str:  # noqa: C901 - one branch per node type
    p = lambda x: _print(x, names)  # noqa: E731
    if e is sp.true or e == sp.true:
        return "true"
    if e is sp.false or e == sp.false:
        return "false"
    if isinstance(e, (sp.Symbol, sp.Dummy)):
        try:
            return names[e]
        except KeyError:
            raise NotPrintable(f"no name given for symbol {e}") from None
    if e.is_Number or isinstance(e, sp.NumberSymbol):
        return _num(e)
    if isinstance(e, sp.Add):
        return "(" + " + ".join(p(a) for a in e.args) + ")"
    if isinstance(e, sp.Mul):
        return "(" + " * ".join(p(a) for a in e.args) + ")"
    if isinstance(e, sp.Pow):
        base, ex = e.args
        if ex == -1:
            return f"(1 / {p(base)})"
        if ex == sp.Rational(1, 2):
            return f"sqrt({p(base)})"
        if ex == -sp.Rational(1, 2):
            return f"(1 / sqrt({p(base)}))"
        if ex == 2:
            b = p(base)
            return f"({b} * {b})"
        return f"pow({p(base)}, {p(ex)})"
    if isinstance(e, expm1):
        x = p(e.args[0])
        return f"(abs({x}) < {_SERIES_BELOW} ? ({x} + {x} * {x} / 2 + {x} * {x} * {x} / 6) : (exp({x}) - 1))"
    if isinstance(e, log1p):
        x = p(e.args[0])
        return f"(abs({x}) < {_SERIES_BELOW} ? ({x} - {x} * {x} / 2 + {x} * {x} * {x} / 3) : log(1 + {x}))"
    if isinstance(e, sp.log) and len(e.args) == 1:
        return f"log({p(e.args[0])})"
    for cls, fname in _FUNC.items():
        if isinstance(e, cls):
            return f"{fname}({', '.join(p(a) for a in e.args)})"
    if isinstance(e, Clamp):
        return f"clamp({', '.join(p(a) for a in e.args)})"
    if isinstance(e, (sp.Max, sp.Min)):
        fname = "max" if isinstance(e, sp.Max) else "min"
        return f"{fname}({', '.join(p(a) for a in e.args)})"
    if isinstance(e, sp.Piecewise):
        out = "(0 / 0)"  # no branch matched: NaN, as numpy's select default
        for value, cond in reversed(e.args):
            if cond == sp.true:
                out = p(value)
            else:
                out = f"({p(cond)} ? {p(value)} : {out})"
        return out
    for cls, op in _REL.items():
        if isinstance(e, cls):
            return f"({p(e.lhs)} {op} {p(e.rhs)})"
    if isinstance(e, sp.And):
        return "(" + " && ".join(p(a) for a in e.args) + ")"
    if isinstance(e, sp.Or):
        return "(" + " || ".join(p(a) for a in e.args) + ")"
    if isinstance(e, sp.Not):
        return f"(!{p(e.args[0])})"
    raise NotPrintable(f"{type(e).__name__} cannot be written as a Vega expression")


def printable(expr: sp.Basic) -> bool:
    """True when :func:`to_vega` can print ``expr`` (given names for its symbols)."""
    try:
        to_vega(expr, {s: "x" for s in expr.free_symbols})
    except NotPrintable:
        return False
    return True


def transforms(outputs: Mapping[str, sp.Expr], names: Mapping[sp.Symbol, str],
               prefix: str = "_cse") -> list[dict]:
    """Vega-Lite ``calculate`` transforms computing each of ``outputs`` as a field of that name.

    Common sub-expressions are computed once per row as fields ``<prefix>0``, ``<prefix>1``, ...
    ``names`` maps the free symbols to signals or ``datum`` fields (see :func:`to_vega`).
    """
    keys = list(outputs)
    subs, reduced = sp.cse([outputs[k] for k in keys], symbols=sp.numbered_symbols(prefix, cls=sp.Dummy),
                           order="none")
    all_names = dict(names)
    steps = []
    for sym, sub in subs:
        field = f"{prefix}{len(steps)}"
        steps.append({"calculate": to_vega(sub, all_names), "as": field})
        all_names[sym] = f"datum.{field}"
    for key, expr in zip(keys, reduced):
        steps.append({"calculate": to_vega(expr, all_names), "as": key})
    return steps


def helper_fields(steps: Iterable[dict], prefix: str = "_cse") -> list[str]:
    """The intermediate fields :func:`transforms` added (to drop them from tooltips or exports)."""
    return [s["as"] for s in steps if s["as"].startswith(prefix)]
