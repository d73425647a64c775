"""The model's equations as a person reads them, derived from the model's own expressions.

:func:`costmodel.model.equations` prints the expressions the evaluator compiles: they carry
numerical guards (``expm1``/``log1p`` to keep ``1 - p^B`` accurate, ``clamp`` against rounding
below 0, Piecewise branches for tiny drain shares) and spell every intermediate out. Here the same
sympy expressions (from :mod:`costmodel.model.residency`, ``costs`` and ``outputs``) are rewritten
for reading, never rebuilt by hand:

- ``clamp(x)`` becomes ``x`` (the closed forms are exact; the clamp only catches rounding);
- ``expm1(m log1p(y))`` becomes ``(1 + y)^m - 1``, other ``expm1``/``log1p`` their plain forms;
- Piecewise branches whose condition is only a floating-point threshold are dropped;
- the model's recurring sub-expressions get the names of the residency module's notation:
  ``λ'`` (small-folio add rate), ``δ`` (rate of events that empty the batch), ``p`` (the chance
  the next batch event is an add), ``a`` (with an exponential gap: an add comes before the WP
  fault and before any drain), ``R`` (residency), ``F̄`` (mean batch fill), ``π(j)`` and ``r(n)``.

Each :class:`Equation` has a LaTeX form (for MathJax) and a plain-text form (sympy's Unicode
pretty printer), so it reads the same with or without a maths renderer. If the model changes,
these change with it: a sub-expression that no longer matches its name is simply left spelled
out, and :func:`equations` says which names it could not place.
"""

from __future__ import annotations

import importlib
import re
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from .model import costs
from .model.outputs import policy_outputs
from .model.special import Clamp, PoissonBelow
from .registry import NUMERIC

#: the residency module (``costmodel.model`` re-exports a function of the same name)
_res = importlib.import_module(".model.residency", __package__)

#: names for the model's recurring sub-expressions: (symbol, LaTeX, what it is)
LAM_SMALL = sp.Symbol("λ'", nonnegative=True)
DELTA = sp.Symbol("δ", nonnegative=True)
P_ADD = sp.Symbol("p", nonnegative=True)
A_RATIO = sp.Symbol("a", nonnegative=True)
R_RES = sp.Symbol("R", nonnegative=True)
FILL = sp.Symbol("F̄", nonnegative=True)


def _pi_latex(self, printer, exp=None):
    tex = rf"\pi({printer._print(self.args[0])})"
    return tex if exp is None else rf"{tex}^{{{exp}}}"


#: the stationary position law P(J = j), by its name
PI = type("π", (sp.Function,), {"nargs": 1, "_latex": _pi_latex})
#: P(N < n) for N ~ Poisson(x) (the model's PoissonBelow), as it is written: the regularized Q(n, x)
Q = sp.Function("Q")
RN = sp.Function("r")
N_FLUSH = sp.Symbol("n", integer=True, nonnegative=True)

#: the left-hand sides of the cost and probability equations
LHS = {name: sp.Symbol(name) for name in ("c_shootdown", "c_local_drain", "c_remote_drain", "c_drain_all",
                                           "P(copy)", "P(unnecessary copy)")}
_NEW_TEX = {LAM_SMALL: r"\lambda'", DELTA: r"\delta", P_ADD: "p", A_RATIO: "a", R_RES: "R", FILL: r"\bar{F}",
            N_FLUSH: "n", LHS["c_shootdown"]: r"c_{\mathrm{shootdown}}", LHS["c_local_drain"]: r"c_{\mathrm{local\ drain}}",
            LHS["c_remote_drain"]: r"c_{\mathrm{remote\ drain}}", LHS["c_drain_all"]: r"c_{\mathrm{drain\ all}}",
            LHS["P(copy)"]: r"P(\text{copy})", LHS["P(unnecessary copy)"]: r"P(\text{unnecessary copy})"}

_GREEK = {r"\lambda": "λ", r"\mu": "μ", r"\nu": "ν", r"\delta": "δ", r"\pi": "π"}


def plain_name(tex: str) -> str:
    """A registry symbol's LaTeX name as plain text: ``c_{\\mathrm{sd},0}`` -> ``c_sd,0``."""
    s = re.sub(r"\\mathrm\{([^}]*)\}", r"\1", tex)
    for k, v in _GREEK.items():
        s = s.replace(k, v)
    return s.replace("{", "").replace("}", "").replace("\\", "")


@lru_cache(maxsize=1)
def _display_symbols() -> tuple[dict, dict]:
    """registry symbol -> display symbol (plain-text name), and display symbol -> LaTeX."""
    to_display, tex = {}, {}
    for e in NUMERIC.values():
        d = sp.Symbol(plain_name(e.tex or e.name), **{k: v for k, v in e.symbol.assumptions0.items()
                                                       if k in ("integer", "nonnegative", "positive")})
        to_display[e.symbol] = d
        tex[d] = e.tex or e.name
    tex.update(_NEW_TEX)
    return to_display, tex


@dataclass(frozen=True)
class Equation:
    label: str
    lhs: sp.Expr
    rhs: sp.Expr

    @property
    def latex(self) -> str:
        tex = _display_symbols()[1]
        return f"{sp.latex(self.lhs, symbol_names=tex)} = {sp.latex(self.rhs, symbol_names=tex)}"

    @property
    def mathml(self) -> str:
        """Presentation MathML of the equation (a browser typesets it without any script)."""
        tex = _display_symbols()[1]
        side = lambda e: sp.mathml(e, printer="presentation", symbol_names=tex)  # noqa: E731
        return (f'<math display="block" xmlns="http://www.w3.org/1998/Math/MathML"><mrow>{side(self.lhs)}'
                f"<mo>=</mo>{side(self.rhs)}</mrow></math>")

    @property
    def text(self) -> str:
        """Plain text (Unicode, several lines for fractions), never wrapped."""
        return sp.pretty(sp.Eq(self.lhs, self.rhs, evaluate=False), use_unicode=True, wrap_line=False)


# ---- rewriting the compiled expressions for reading ------------------------------------------


def _tiny_threshold(cond) -> bool:
    """A condition that is only a floating-point guard (compares with a constant below 1e-3)."""
    return any(abs(f) < 1e-3 for f in cond.atoms(sp.Float))


def _drop_guards(expr: sp.Expr) -> sp.Expr:
    def piecewise(pw):
        kept = []
        for e, cond in pw.args:
            if cond is sp.true:
                kept.append((e, cond))
                break
            if isinstance(cond, sp.Or):
                parts = [c for c in cond.args if not _tiny_threshold(c)]
                if not parts:
                    continue
                cond = sp.Or(*parts)
            elif _tiny_threshold(cond):
                continue
            kept.append((e, cond))
        return kept[0][0] if len(kept) == 1 and kept[0][1] is sp.true else sp.Piecewise(*kept)

    return expr.replace(lambda x: isinstance(x, sp.Piecewise), piecewise)


def _definitions() -> dict:
    """The named sub-expressions spelled out (to test a case against the general branch)."""
    return {P_ADD: LAM_SMALL / (LAM_SMALL + DELTA), A_RATIO: _name_parts_basic(_res.exp_gap_add_ratio())}


def _drop_redundant_cases(expr: sp.Expr) -> sp.Expr:
    """A case ``(v, x = c)`` whose value the general branch also takes at ``x = c`` says nothing
    new (``p^k`` is 1 when there are no drains): it is dropped. A case where the general branch
    is 0/0 (the uniform 1/B of the position law) stays."""
    def piecewise(pw):
        *cases, (general, last) = pw.args
        if last is not sp.true:
            return pw
        kept = []
        for value, cond in cases:
            if isinstance(cond, sp.Eq) and cond.lhs.is_Symbol:
                at = general.xreplace(_definitions()).subs(cond.lhs, cond.rhs)
                if at.has(sp.nan, sp.zoo) or sp.simplify(at - value.xreplace(_definitions())) != 0:
                    kept.append((value, cond))
            else:
                kept.append((value, cond))
        return general if not kept else sp.Piecewise(*kept, (general, True))

    return expr.replace(lambda x: isinstance(x, sp.Piecewise), piecewise)


def _power_of_log1p(arg: sp.Expr):
    """``m * log1p(y)`` -> ``(1 + y)^m``, or None when ``arg`` is not of that form."""
    if not isinstance(arg, sp.Mul):
        return None
    logs = [f for f in arg.args if isinstance(f, log1p)]
    if len(logs) != 1:
        return None
    rest = sp.Mul(*[f for f in arg.args if f is not logs[0]])
    return (1 + logs[0].args[0]) ** rest


def _plain_functions(expr: sp.Expr) -> sp.Expr:
    expr = expr.replace(lambda x: isinstance(x, Clamp), lambda x: x.args[0])
    expr = expr.replace(lambda x: isinstance(x, PoissonBelow), lambda x: Q(*x.args))
    expr = expr.replace(lambda x: isinstance(x, expm1) and _power_of_log1p(x.args[0]) is not None,
                        lambda x: _power_of_log1p(x.args[0]) - 1)
    expr = expr.replace(lambda x: isinstance(x, log1p), lambda x: sp.log(1 + x.args[0]))
    return expr.replace(lambda x: isinstance(x, expm1), lambda x: sp.exp(x.args[0]) - 1)


def _name_parts(expr: sp.Expr) -> sp.Expr:
    """The residency module's sub-expressions by their names (λ', δ, p, 1 - p, a)."""
    expr = expr.subs(_res.LAM, LAM_SMALL).subs(_res.drain_rate().subs(_res.LAM, LAM_SMALL), DELTA)
    expr = expr.subs(LAM_SMALL / (LAM_SMALL + DELTA), P_ADD).subs(DELTA / (LAM_SMALL + DELTA), 1 - P_ADD)
    a = _name_parts_basic(_res.exp_gap_add_ratio())
    return expr.subs(a, A_RATIO)


def _name_parts_basic(expr: sp.Expr) -> sp.Expr:
    return expr.subs(_res.LAM, LAM_SMALL).subs(_res.drain_rate().subs(_res.LAM, LAM_SMALL), DELTA)


def _tidy_signs(expr: sp.Expr) -> sp.Expr:
    """``c x / (y - 1)`` -> ``-c x / (1 - y)``: the sign a reader expects of ``1 - p^B``."""
    def minus_one_plus(base) -> bool:
        return isinstance(base, sp.Add) and len(base.args) == 2 and sp.S.NegativeOne in base.args

    def fix(m):
        coeff, rest = m.as_coeff_mul()
        for i, f in enumerate(rest):
            if isinstance(f, sp.Pow) and f.exp == -1 and minus_one_plus(f.base):
                others = rest[:i] + rest[i + 1:]
                return sp.Mul(-coeff, *others, sp.Pow(-f.base, -1))
        return m

    return expr.replace(lambda x: isinstance(x, sp.Mul), fix)


def readable(expr: sp.Expr) -> sp.Expr:
    """One of the model's expressions in the form a person reads (see the module docstring)."""
    to_display = _display_symbols()[0]
    out = _drop_redundant_cases(_name_parts(_drop_guards(_plain_functions(expr))))
    return _tidy_signs(out.xreplace({k: v for k, v in to_display.items()}))


def _spelled(expr: sp.Expr) -> sp.Expr:
    """An expression with the display names of the registry's symbols, nothing else named."""
    return expr.xreplace(_display_symbols()[0])


def display_symbol(name: str) -> sp.Symbol:
    """The symbol a registry parameter has in :func:`equations` (its short name)."""
    return _display_symbols()[0][NUMERIC[name].symbol]


# ---- the equations ---------------------------------------------------------------------------


def equations(gap_model: str, position_model: str, shootdown_model: str,
              policy: str = "drain_local") -> list[Equation]:
    """The equations behind ``policy``'s cost for these categoricals, in reading order: the
    names used below, the batch position, the residency given n adds to flush and mixed over the
    position, the mean fill, the cost steps, and the copy probabilities in terms of R."""
    return list(_equations(gap_model, position_model, shootdown_model, policy))


@lru_cache(maxsize=64)
def _equations(gap_model: str, position_model: str, shootdown_model: str, policy: str) -> tuple[Equation, ...]:
    r_of = _res.residency_given_adds_to_flush
    eqs = [
        Equation("small-folio add rate", LAM_SMALL, _spelled(_res.LAM)),
        Equation("rate of events that empty the batch: local drains, drain-all, large-folio adds", DELTA,
                 _spelled(_res.drain_rate().subs(_res.LAM, LAM_SMALL))),
        Equation("chance that the next batch event is an add", P_ADD,
                 _spelled(_name_parts_basic(_res._share_when_draining()))),
    ]
    if gap_model == "exponential_time":
        eqs.append(Equation("an add comes before the WP fault and before any drain (exponential gap)", A_RATIO,
                            _spelled(_name_parts_basic(_res.exp_gap_add_ratio()))))
    if position_model == "stationary":
        eqs.append(Equation("stationary position of the page in its batch, P(J = j)", PI(_res.j),
                            readable(_res.position_weight(_res.j))))
    eqs.append(Equation(f"residency given n more adds flush the batch ({gap_model})", RN(N_FLUSH),
                        readable(r_of(gap_model, N_FLUSH))))
    # the residency as the model defines it, with the position law and r(n) left as names
    with _opaque(position_weight=PI, residency_given_adds_to_flush=lambda _gap, n: RN(n)):
        by_definition = _res.residency_by_definition(gap_model, position_model)
    label = "residency: the page is still in its batch at the WP fault"
    if position_model == "stationary":
        label += " (the closed form sums this)"
    eqs.append(Equation(label, R_RES, readable(by_definition)))
    occupancy = _res.expected_occupancy()
    eqs += [
        Equation("mean fill of a batch (what a local drain moves)", FILL, readable(occupancy)),
        Equation(f"TLB shootdown ({shootdown_model})", LHS["c_shootdown"],
                 readable(costs.shootdown_ns(shootdown_model))),
        Equation("local drain", LHS["c_local_drain"], readable(costs.local_drain_ns().subs(occupancy, FILL))),
        Equation("remote drain of the holding CPU", LHS["c_remote_drain"], readable(costs.remote_drain_ns())),
        Equation("drain all", LHS["c_drain_all"], readable(costs.drain_all_ns())),
    ]
    out = policy_outputs(policy, gap_model, position_model, shootdown_model)
    R = _res.residency(gap_model, position_model)
    for key, label in (("p_copy", "P(copy)"), ("p_unnecessary_copy", "P(unnecessary copy)")):
        eqs.append(Equation(f"{label}, {policy}", LHS[label], readable(out[key].subs(R, R_RES))))
    return tuple(eqs)


@contextmanager
def _opaque(**functions):
    """The residency module's functions replaced by opaque names while a definition is built."""
    saved = {name: getattr(_res, name) for name in functions}
    try:
        for name, f in functions.items():
            setattr(_res, name, f)
        yield
    finally:
        for name, f in saved.items():
            setattr(_res, name, f)


def unplaced(eqs: list[Equation]) -> list[str]:
    """Implementation details still visible in ``eqs`` (names of functions a reader should not
    see): empty when every guard and helper was rewritten."""
    bad = []
    for e in eqs:
        for f in e.rhs.atoms(sp.Function):
            if isinstance(f, (Clamp, expm1, log1p)):
                bad.append(f"{e.label}: {type(f).__name__}")
        if e.rhs.atoms(sp.Float):
            bad.append(f"{e.label}: a floating-point threshold")
    return bad
