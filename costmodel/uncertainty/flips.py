"""Where one parameter alone, the others held, makes another candidate the cheapest
(:func:`costmodel.breakeven.breakeven` along that parameter), and the margin to the runner-up
that can overtake."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .. import registry
from ..errors import UserError
from ..evaluate import evaluate_arrays, evaluate_point, policy_or_error
from ..model import CANDIDATES
from ..breakeven import EQUAL, breakeven
from .gradients import categoricals_of, expected_ns_expr


@dataclass(frozen=True)
class Flip:
    """Where moving one parameter alone changes the cheapest candidate, each side of its value."""

    parameter: str
    value: float
    cheapest: str
    #: the value at which another candidate becomes cheaper below / above the point (None: it
    #: does not within the registry bounds), and which candidate that is
    below: float | None = None
    below_to: str = ""
    above: float | None = None
    above_to: str = ""


def flip_values(values: Mapping[str, object], names: Sequence[str], candidates: Sequence[str] = CANDIDATES,
                rtol: float | None = None) -> list[Flip]:
    """For each parameter of ``names``, the nearest values each side of the point at which the
    cheapest of ``candidates`` changes, every other parameter held: from the break-evens of the
    cheapest against each other candidate (:func:`costmodel.breakeven.breakeven`). For an integer
    parameter ``above`` is the first integer at which another candidate is cheaper, and ``below``
    the last one below the point (the break-even is then ``below + 1``)."""
    values = registry.as_point(values)
    cands = tuple(policy_or_error(p) for p in candidates)
    at = evaluate_point(values, cands)
    best = min(cands, key=lambda p: at[p]["expected_ns"])
    kw = {} if rtol is None else {"rtol": rtol}
    out = []
    for name in names:
        x = float(values[name])
        below, below_to, above, above_to = None, "", None, ""
        sym = registry.S[name]
        for other in cands:
            # a parameter in neither cost cannot change their order: no break-even to look for
            if other == best or not any(sym in expected_ns_expr(p, categoricals_of(values)).free_symbols for p in (best, other)):
                continue
            try:
                be = breakeven(values, best, other, name, **kw)
            except UserError:
                continue
            for lo, hi, who in be.regions:
                if who != other or who == EQUAL:
                    continue
                if lo > x and (above is None or lo < above):
                    above, above_to = float(lo), other
                if hi < x and (below is None or hi > below):
                    below, below_to = float(hi), other
        out.append(Flip(name, x, best, below, below_to, above, above_to))
    return out


def _margins(values, best, cands, name, xs) -> dict[str, np.ndarray]:
    """Each other candidate's cost minus ``best``'s as ``name`` takes the values ``xs``
    (negative: that candidate has overtaken the verdict)."""
    out = evaluate_arrays(dict(values, **{name: np.asarray(xs, dtype=float)}), cands)
    c = {p: np.broadcast_to(np.asarray(out[(p, "expected_ns")], dtype=float), np.shape(xs)) for p in cands}
    return {p: c[p] - c[best] for p in cands if p != best}


def _moves(m: np.ndarray) -> bool:
    """Whether a margin changes over the scan (more than rounding): a candidate whose margin to the
    verdict does not move with the parameter cannot overtake it by that parameter alone."""
    return bool(np.ptp(m) > 1e-9 * max(1.0, float(np.max(np.abs(m)))))


def rival_margin(values, best, cands, name, xs, flip: "Flip | None" = None) -> tuple[str, np.ndarray, bool]:
    """The runner-up that can actually overtake ``best`` as ``name`` alone moves over ``xs``, and
    its cost minus ``best``'s at each of ``xs``. It is the candidate a flip search found
    (``flip``: the nearer flip where there is one each side), else, of the candidates whose margin
    moves with the parameter, the one that comes closest; only when none moves (the parameter
    shifts every candidate alike) the cheapest other candidate, whose margin is then constant
    (the third value, whether the rival's margin moves, is then False).
    A candidate that differs from the verdict by a constant (``drain_local_always`` beside
    ``drain_local``) is thus never the bar: it could not overtake whatever the value."""
    ms = _margins(values, best, cands, name, xs)
    x = float(values[name])
    if flip is not None and (flip.below_to or flip.above_to):
        sides = [(x - flip.below, flip.below_to) if flip.below_to else None,
                 (flip.above - x, flip.above_to) if flip.above_to else None]
        who = min((s for s in sides if s is not None), key=lambda s: s[0])[1]
        return who, ms[who], True
    movers = [p for p, m in ms.items() if _moves(m)]
    pool = movers or list(ms)
    who = min(pool, key=lambda p: float(np.min(ms[p])))
    return who, ms[who], bool(movers)
