"""What the verdict rests on: elasticities, flip values, and how much knowing each parameter
exactly would be expected to raise the probability of the verdict (the ranking of what to measure
next)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .. import registry
from ..evaluate import evaluate_arrays
from ..model import POLICIES
from .draws import DRAWS, UncertainParameter, draw, oriented_uniform, uncertain_parameters
from .flips import Flip, flip_values, rival_margin
from .gradients import elasticities
from .propagate import Propagation, cheapest_shares, propagate


def _certainty_if_known(values, params, cands, seed: int, quadrature: int, draws: int) -> tuple[dict, float]:
    """For each parameter: the probability of the verdict expected once that parameter is known
    exactly (E over its distribution of max_k P(k cheapest | it)), by ``quadrature`` equal-mass
    nodes of its distribution, the other parameters at the same draws (common random numbers);
    and the probability of the verdict now, from those same draws (so that a parameter the costs
    do not depend on gains exactly nothing)."""
    sample, _ = draw(params, values, draws, seed)

    def certainty(point, shape) -> float:
        ok = np.broadcast_to(registry.feasible(point), shape)
        out = evaluate_arrays(point, cands)
        shares = cheapest_shares(np.stack([np.broadcast_to(out[(c, "expected_ns")], shape) for c in cands]))
        kept = np.maximum(ok.sum(axis=-1), 1)
        p_given = np.where(ok[None], shares, 0.0).sum(axis=-1) / kept  # (candidate, node...)
        return float(np.mean(p_given.max(axis=0)))

    now = certainty(dict(values, **sample), (draws,))
    u = (np.arange(quadrature) + 0.5) / quadrature
    known = {}
    for p in params:
        nodes = p.truncated_ppf(u)
        point = dict(values, **{k: v[None, :] for k, v in sample.items()})
        # a sum group is known together: its members were split from one measurement
        for q in [q for q in params if p.group and q.group == p.group] or [p]:
            point[q.name] = (nodes if q is p else q.truncated_ppf(oriented_uniform(q, oriented_uniform(p, u))))[:, None]
        known[p.name] = certainty(point, (quadrature, draws))
    return known, now


@dataclass
class Sensitivity:
    """Which parameters the verdict rests on, and which measurement would settle it soonest."""

    propagation: Propagation
    #: one row per uncertain parameter, ranked (see :func:`sensitivity`)
    table: pd.DataFrame
    #: every policy's elasticity to every uncertain parameter (tidy, from :func:`elasticities`)
    elasticities: pd.DataFrame
    flips: list[Flip]

    @property
    def cheapest(self) -> str:
        return self.propagation.cheapest

    def top(self, n: int = 2) -> pd.DataFrame:
        return self.table.head(n)


def _el_of(el: pd.DataFrame, name: str, policy: str) -> float:
    mine = el[(el["parameter"] == name) & (el["policy"] == policy)] if not el.empty else el
    return float(mine["elasticity"].iloc[0]) if len(mine) else 0.0


def sensitivity(values: Mapping[str, object], params: Sequence[UncertainParameter] | None = None, *,
                paramset=None, draws: int = DRAWS, seed: int = 0, quadrature: int = 8,
                gain_draws: int = 2000, swing_points: int = 41, flips_for: int | None = None) -> Sensitivity:
    """Elasticities, flip values and the ranking of the uncertain parameters at ``values``.

    The ranking: ``gain`` is how much the probability of the verdict (that of the most probable
    cheapest candidate) is expected to rise once the parameter is known exactly, the others as
    uncertain as before: the expected value of perfect information about it, for the decision's
    confidence. Ties (parameters that gain nothing) are ordered by the size of the cheapest
    policy's elasticity. ``flip_below``/``flip_above`` (:func:`flip_values`) and
    ``p_flip_alone``, the probability that the parameter alone, within its interval, lies beyond
    one of them, for the first ``flips_for`` of the ranking (default: all; ``flip_searched``
    says which were searched: a row not searched is "not searched", never "no flip").
    ``margin_min`` .. ``margin_max`` (the tornado's bar): the cost of ``rival`` minus the
    verdict's, lowest and highest over the parameter's interval with the others at their values
    (``margin_at_low``/``_at_high`` at its ends, ``margin_at_value`` at the point); ``rival`` is
    the runner-up that can actually overtake the verdict as this parameter moves
    (:func:`rival_margin`; ``rival_moves`` False: the parameter shifts every candidate alike).
    Below zero the verdict has flipped, so a bar crosses zero exactly
    when ``flip_in_interval``."""
    values = registry.as_point(values)
    if params is None:
        params = uncertain_parameters(values, paramset)
    params = [p for p in params if p.varies]
    prop = propagate(values, params, draws=draws, seed=seed, policies=POLICIES)
    cands = prop.candidates
    best = prop.cheapest
    names = [p.name for p in params]
    el = elasticities(values, names, POLICIES) if names else pd.DataFrame(
        columns=["parameter", "policy", "value", "expected_ns", "d_expected_ns", "elasticity", "method"])
    known, now = _certainty_if_known(values, params, cands, seed, quadrature, min(gain_draws, draws)) \
        if params else ({}, max(prop.p_cheapest.values()))
    # what would flip it: searched for the first ``flips_for`` of the ranking, which is known only
    # after the gains, so the gains come first (the order does not depend on the flips)
    order = sorted(params, key=lambda p: (-(known.get(p.name, now) - now), -abs(_el_of(el, p.name, best))))
    searched = {fl.parameter: fl for fl in flip_values(values, [p.name for p in order][:flips_for], cands)}
    rows = []
    for p in order:
        xs = p.truncated_ppf(np.linspace(0.0, 1.0, swing_points))
        xs = np.unique(np.concatenate([xs, [p.low, p.high, p.value]]))
        xs = xs[(xs >= p.low) & (xs <= p.high)]
        fl = searched.get(p.name)
        if fl is not None:  # the scan also passes through the flips inside the interval
            xs = np.unique(np.concatenate([xs, [v for v in (fl.below, fl.above) if v is not None
                                                and p.low <= v <= p.high]]))
        rival, m, moves = rival_margin(values, best, cands, p.name, xs, fl)
        at_value = float(m[int(np.argmin(np.abs(xs - p.value)))])
        row = {
            "parameter": p.name, "unit": p.unit, "value": p.value, "low": p.low, "high": p.high,
            "origin": p.origin, "distribution": p.distribution, "basis": p.basis,
            "elasticity": _el_of(el, p.name, best), "flip_searched": fl is not None,
            "flip_below": None, "flips_to_below": "", "flip_above": None, "flips_to_above": "",
            "flip_in_interval": False, "p_flip_alone": np.nan, "rival": rival, "rival_moves": moves,
            "margin_at_value": at_value, "margin_at_low": float(m[0]), "margin_at_high": float(m[-1]),
            "margin_min": float(m.min()), "margin_max": float(m.max()),
            "certainty_if_known": known.get(p.name, now), "gain": known.get(p.name, now) - now,
        }
        if fl is not None:
            half = 0.5 if registry.NUMERIC[p.name].integer else 0.0  # an integer is a rounded draw
            lo_cdf = float(p.truncated_cdf(fl.below + half)) if fl.below is not None else 0.0
            hi_cdf = 1.0 - float(p.truncated_cdf(fl.above - half)) if fl.above is not None else 0.0
            row.update(flip_below=fl.below, flips_to_below=fl.below_to, flip_above=fl.above,
                       flips_to_above=fl.above_to,
                       flip_in_interval=bool((fl.below is not None and fl.below >= p.low)
                                             or (fl.above is not None and fl.above <= p.high)),
                       p_flip_alone=min(1.0, max(0.0, lo_cdf + hi_cdf)))
        rows.append(row)
    cols = ["parameter", "unit", "value", "low", "high", "origin", "distribution", "basis", "elasticity",
            "flip_searched", "flip_below", "flips_to_below", "flip_above", "flips_to_above", "flip_in_interval",
            "p_flip_alone", "rival", "rival_moves", "margin_at_value", "margin_at_low", "margin_at_high", "margin_min",
            "margin_max", "certainty_if_known", "gain"]
    table = pd.DataFrame(rows, columns=cols).astype({"flip_below": object, "flip_above": object})
    for c in ("flip_below", "flip_above"):  # "no flip" is None, never NaN
        table[c] = pd.Series([None if v is None or v != v else float(v) for v in table[c]], index=table.index,
                             dtype=object)
    flips = [searched[n] for n in table["parameter"] if n in searched]
    return Sensitivity(prop, table, el, flips)
