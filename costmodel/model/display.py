"""The model's equations for people: LaTeX with the registry's short symbols."""

from __future__ import annotations

import sympy as sp

from ..registry import NUMERIC
from . import costs
from .outputs import policy_outputs
from .residency import expected_occupancy, j, position_weight, residency, residency_given_adds_to_flush

_NAMES = {e.symbol: e.tex for e in NUMERIC.values()}


def to_latex(expr: sp.Expr) -> str:
    return sp.latex(expr, symbol_names=_NAMES)


def equations(gap_model: str, position_model: str, shootdown_model: str, policy: str = "drain_local") -> list[tuple[str, str]]:
    """(label, LaTeX) pairs for the named sub-expressions that make up ``policy``'s cost."""
    n = sp.Symbol("n", integer=True, nonnegative=True)
    out = policy_outputs(policy, gap_model, position_model, shootdown_model)
    return [
        ("stationary position P(J=j)", to_latex(position_weight(j))),
        (f"residency given n adds to flush ({gap_model})", to_latex(residency_given_adds_to_flush(gap_model, n))),
        (f"residency R ({gap_model}, {position_model})", to_latex(residency(gap_model, position_model))),
        ("expected batch occupancy", to_latex(expected_occupancy())),
        (f"shootdown ({shootdown_model})", to_latex(costs.shootdown_ns(shootdown_model))),
        ("local drain", to_latex(costs.local_drain_ns())),
        ("drain all", to_latex(costs.drain_all_ns())),
        (f"P(copy), {policy}", to_latex(out["p_copy"])),
        (f"P(unnecessary copy), {policy}", to_latex(out["p_unnecessary_copy"])),
    ]
