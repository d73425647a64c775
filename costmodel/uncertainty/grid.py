"""The draws carried through the model at many points at once (sweeps, bands, the probability
map), cut into chunks that run in this process or on a Dask cluster with the same numbers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from .. import registry
from ..errors import UserError
from ..evaluate import evaluate_arrays, policy_or_error
from ..model import POLICIES
from .draws import UncertainParameter, draw, uncertain_parameters
from .propagate import CONFIDENCE, candidates_among, cheapest_shares


#: array elements (points x draws) evaluated at once on a grid: bounds memory, keeps caches warm
CHUNK_ELEMENTS = 1 << 17


# ---- over many points ------------------------------------------------------------------------


@dataclass
class GridUncertainty:
    """Outputs' intervals and each candidate's P(cheapest) at every point of a grid."""

    candidates: tuple[str, ...]
    #: (candidate, point): probability that it is the cheapest
    p_cheapest: np.ndarray
    #: (policy, output) -> (low, high) arrays over the points
    intervals: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]
    #: draws that kept every rule, per point
    draws_kept: np.ndarray
    draws: int
    seed: int
    parameters: list[UncertainParameter]


@dataclass(frozen=True)
class _GridTask:
    values: dict
    policies: tuple[str, ...]
    candidates: tuple[str, ...]
    keys: tuple[str, ...]
    confidence: float
    sample: dict


def _grid_chunk(task: _GridTask, axes: dict) -> tuple:
    """P(cheapest) counts and intervals for the points of one chunk: the axes as columns
    (points, 1), the draws as rows (1, draws), so what depends on the point alone is computed
    once per point and what depends on the draws alone once per draw."""
    point = dict(task.values)
    point.update({n: np.asarray(a, dtype=float)[:, None] for n, a in axes.items()})
    point.update({n: a[None, :] for n, a in task.sample.items()})
    npts = len(next(iter(axes.values())))
    ndraw = len(next(iter(task.sample.values()))) if task.sample else 1
    shape = (npts, ndraw)
    ok = np.broadcast_to(registry.feasible(point), shape)
    out = evaluate_arrays(point, task.policies)
    shares = cheapest_shares(np.stack([np.broadcast_to(out[(p, "expected_ns")], shape) for p in task.candidates]))
    kept = ok.sum(axis=1)
    wins = np.where(ok[None], shares, 0.0).sum(axis=2)
    q = (1 - task.confidence) / 2
    intervals = {}
    for p in task.policies:
        for k in task.keys:
            arr = np.broadcast_to(out[(p, k)], shape)
            if not ok.all():
                arr = np.where(ok, arr, np.nan)
                with np.errstate(all="ignore"):
                    lo, hi = np.nanquantile(arr, [q, 1 - q], axis=1) if ok.any() else (np.full(npts, np.nan),) * 2
            else:
                lo, hi = np.quantile(arr, [q, 1 - q], axis=1)
            intervals[(p, k)] = (lo, hi)
    return wins, kept, intervals


def propagate_grid(values: Mapping[str, object], axes: Mapping[str, Sequence[float]],
                   params: Sequence[UncertainParameter] | None = None, *, draws: int = 1000, seed: int = 0,
                   policies: Iterable[str] | None = None, keys: Sequence[str] = ("expected_ns",),
                   confidence: float = CONFIDENCE, paramset=None, scheduler=None) -> GridUncertainty:
    """:func:`propagate` at every point of ``axes`` (name -> values, one per point; a parameter
    on an axis is not drawn), with the same draws at every point. The points are cut into chunks
    of about :data:`CHUNK_ELEMENTS` evaluations; ``scheduler``: a dask.distributed address or
    Client to run them on (the numbers do not change)."""
    pols = tuple(policy_or_error(p) for p in (policies or POLICIES))
    cands = candidates_among(pols)
    if params is None:
        params = uncertain_parameters(values, paramset)
    ax = {n: np.asarray(v, dtype=float).ravel() for n, v in axes.items()}
    if not ax:
        raise ValueError("propagate_grid needs at least one axis; use propagate at one point")
    npts = len(next(iter(ax.values())))
    for n, a in ax.items():
        if a.shape != (npts,):
            raise ValueError(f"axis {n}: {a.shape} values, expected {npts}")
    drawn = [p for p in params if p.varies and p.name not in ax]
    sample, _ = draw(drawn, values, draws, seed)
    task = _GridTask(dict(values), pols, cands, tuple(keys), float(confidence), sample)
    per = max(1, CHUNK_ELEMENTS // max(1, draws if sample else 1))
    chunks = [{n: a[s:s + per] for n, a in ax.items()} for s in range(0, npts, per)]
    results = _run(task, chunks, scheduler)
    wins = np.concatenate([r[0] for r in results], axis=1)
    kept = np.concatenate([r[1] for r in results])
    intervals = {key: (np.concatenate([r[2][key][0] for r in results]), np.concatenate([r[2][key][1] for r in results]))
                 for key in results[0][2]}
    with np.errstate(all="ignore"):
        p = np.where(kept > 0, wins / np.maximum(kept, 1), np.nan)
    return GridUncertainty(cands, p, intervals, kept, int(draws), int(seed), drawn)


def _run(task: _GridTask, chunks: list[dict], scheduler) -> list:
    if scheduler is None:
        return [_grid_chunk(task, c) for c in chunks]
    try:  # dask: optional (costmodel[dask]), needed only with --scheduler
        from distributed import Client
    except ImportError:
        raise UserError("--scheduler needs dask.distributed; install costmodel[dask]") from None
    own = not isinstance(scheduler, Client)
    try:
        client = Client(scheduler, timeout="10s", set_as_default=False) if own else scheduler
    except (OSError, TimeoutError, ValueError) as exc:
        raise UserError(f"scheduler {scheduler!r}: cannot connect ({exc}); give a running dask scheduler's address") from None
    try:
        [shared] = client.scatter([task], broadcast=True)
        futures = client.map(_grid_chunk, [shared] * len(chunks), chunks, pure=False)
        return client.gather(futures)
    finally:
        if own:
            client.close()
