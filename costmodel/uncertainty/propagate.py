"""The draws carried through the compiled model at one point: each output's median and interval,
and each candidate's probability of being the cheapest."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from .. import registry
from ..errors import UserError
from ..evaluate import evaluate_arrays, evaluate_point, policy_or_error
from ..model import CANDIDATES, POLICIES, output_names
from .draws import DRAW_BLOCK, DRAWS, UncertainParameter, draw, uncertain_parameters


CONFIDENCE = 0.95
#: two costs within this share of the cheapest count as a tie (each tied policy gets an equal share)
TIE_RTOL = 1e-12


# ---- who is cheapest -------------------------------------------------------------------------


def cheapest_shares(costs: np.ndarray) -> np.ndarray:
    """For costs of shape (candidates, ...), each candidate's share of being the cheapest at each
    position: 1 for the cheapest, ties within :data:`TIE_RTOL` split evenly."""
    costs = np.asarray(costs, dtype=float)
    low = np.min(costs, axis=0)
    tie = costs <= low + TIE_RTOL * np.abs(low)
    return tie / np.sum(tie, axis=0)


def candidates_among(policies: Sequence[str]) -> tuple[str, ...]:
    """The candidates among ``policies`` (see ``model.CANDIDATES``); all of them if none is."""
    return tuple(p for p in policies if p in CANDIDATES) or tuple(policies)


# ---- at one point ----------------------------------------------------------------------------


@dataclass
class Propagation:
    """Every output of the chosen policies at one point, with its interval from the parameters'."""

    values: dict
    policies: tuple[str, ...]
    candidates: tuple[str, ...]
    parameters: list[UncertainParameter]
    draws: int
    seed: int
    confidence: float
    #: policy -> output -> {"value", "median", "low", "high", "mean"} ("value": at the point itself)
    outputs: dict[str, dict[str, dict[str, float]]]
    #: candidate -> probability that it is the cheapest candidate
    p_cheapest: dict[str, float]
    #: the cheapest candidate at the point itself (every parameter at its value)
    cheapest: str
    redrawn: int = 0
    #: policy -> expected_ns at every draw (for pairwise questions; not written out)
    samples: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def measured(self) -> list[UncertainParameter]:
        return [p for p in self.parameters if p.measured]

    @property
    def assumed(self) -> list[UncertainParameter]:
        return [p for p in self.parameters if not p.measured]

    def p_cheaper(self, a: str, b: str) -> float:
        """P(``a`` costs less than ``b``), ties split."""
        return float(cheapest_shares(np.stack([self.samples[a], self.samples[b]]))[0].mean())

    def ratio_interval(self, a: str, b: str) -> tuple[float, float, float]:
        """Median and interval of cost(a) / cost(b) over the draws."""
        q = (1 - self.confidence) / 2
        r = self.samples[a] / self.samples[b]
        lo, med, hi = np.quantile(r, [q, 0.5, 1 - q])
        return float(med), float(lo), float(hi)

    def fixed_categoricals(self) -> dict[str, str]:
        return {n: self.values[n] for n in registry.CATEGORICAL}

    def summary(self) -> str:
        """One line: draws, seed, how many parameters vary and of which origin, what is fixed."""
        counts: dict[str, int] = {}
        for p in self.parameters:
            counts[p.origin] = counts.get(p.origin, 0) + 1
        origins = ", ".join(f"{n} {o}" for o, n in sorted(counts.items())) or "none"
        cats = ", ".join(f"{k}={v}" for k, v in self.fixed_categoricals().items())
        return (f"{self.draws:,} draws, seed {self.seed}; {len(self.parameters)} parameters vary ({origins}); "
                f"held fixed: workload parameters without a range, {cats}")

    def to_dict(self) -> dict:
        return {"draws": self.draws, "seed": self.seed, "confidence": self.confidence,
                "draw_block": DRAW_BLOCK, "redrawn": self.redrawn,
                "method": "Monte Carlo over the parameters' intervals (see costmodel.uncertainty)",
                "cheapest": self.cheapest, "candidates": list(self.candidates),
                "p_cheapest": self.p_cheapest, "parameters": [p.as_dict() for p in self.parameters],
                "fixed_categoricals": self.fixed_categoricals(), "outputs": self.outputs}


def propagate(values: Mapping[str, object], params: Sequence[UncertainParameter] | None = None, *,
              draws: int = DRAWS, seed: int = 0, policies: Iterable[str] | None = None,
              confidence: float = CONFIDENCE, paramset=None) -> Propagation:
    """Monte Carlo over the intervals of ``params`` (default: :func:`uncertain_parameters` of
    ``values`` and ``paramset``) at the point ``values``."""
    values = registry.as_point(values)
    pols = tuple(policy_or_error(p) for p in (policies or POLICIES))
    if not 0 < confidence < 1:
        raise UserError(f"confidence={confidence!r}: give a probability strictly between 0 and 1")
    if params is None:
        params = uncertain_parameters(values, paramset)
    params = [p for p in params if p.varies]
    sample, redrawn = draw(params, values, draws, seed)
    out = evaluate_arrays(dict(values, **sample), pols)
    at = evaluate_point(values, pols)
    q = (1 - confidence) / 2
    keys = output_names()
    stacked = np.stack([np.broadcast_to(out[(p, k)], (draws,)) for p in pols for k in keys])
    lo, med, hi = np.quantile(stacked, [q, 0.5, 1 - q], axis=1)
    mean = stacked.mean(axis=1)
    outputs: dict[str, dict[str, dict[str, float]]] = {}
    for i, (p, k) in enumerate((p, k) for p in pols for k in keys):
        point_value = at[p]["breakdown_ns"][k.split(".", 1)[1]] if k.startswith("breakdown_ns.") else at[p][k]
        outputs.setdefault(p, {})[k] = {"value": float(point_value), "median": float(med[i]), "low": float(lo[i]),
                                        "high": float(hi[i]), "mean": float(mean[i])}
    cands = candidates_among(pols)
    samples = {p: np.array(np.broadcast_to(out[(p, "expected_ns")], (draws,))) for p in pols}
    shares = cheapest_shares(np.stack([samples[p] for p in cands])).mean(axis=1)
    cheapest = min(cands, key=lambda p: at[p]["expected_ns"])
    return Propagation(dict(values), pols, cands, list(params), int(draws), int(seed), float(confidence), outputs,
                       {p: float(s) for p, s in zip(cands, shares)}, cheapest, redrawn, samples)
