"""Event-by-event simulation of per-CPU LRU add batches, to check the model's closed forms and to
reach the cases they cannot (bursty or periodic adds, a measured gap histogram).

What is simulated, per write-protect (WP) fault
-----------------------------------------------
Each fault is an independent replicate of a stationary system of ``cpus`` CPUs (the model treats
faults as independent too; the WP faults' own drains are the policy's business, not part of the
batch dynamics). On every CPU folios enter the add batch (capacity B = ``batch_size``) by the
chosen arrival process at mean rate ``batch_adds_per_s``; the add that fills the batch moves it to
the LRU; local ``lru_add_drain()`` calls hit each CPU at ``explicit_drains_per_s`` and
system-wide ``lru_add_drain_all()`` events hit all CPUs at once at ``drain_all_per_s`` (both
Poisson). The target page is one of the adds of the CPU that installs it (the *holder*).

Only event counts matter to a batch: it empties at every drain and at every B-th add after the
last drain, so its fill at any instant is (adds since its last drain) mod B. The simulation draws,
for each fault, the time back to the holder's last drain (local or system-wide, whichever came
last), the gap to the WP fault, and the adds of the holder's arrival process in the windows those
times cut out; from them follow

- the page's position J: the fill seen by the install, i.e. the adds since the last drain, mod B
  (``position_model=stationary``: nothing about the law of J is assumed; it comes out of the
  dynamics) or ``batch_position`` right after a drain (``fixed``);
- residency at the WP fault: no drain in the gap, and J + (adds in the gap) < B - 1;
- the fill of the *writer's* batch at the WP fault (what a local drain has to move): the holder's,
  when the writer runs there (``p_same_cpu``), or else that of another CPU with its own adds and
  local drains and the shared drain-all events.

When no drain came for a long time the batch is traced back to a boot of the system with an
empty batch ``4 B^2 + U B`` mean inter-add times earlier (U uniform): long enough that the fill
mod B has forgotten the boot for every mixing arrival process (the error is of order
exp(-8 pi^2)), and with a random phase so that periodic adds, which never mix, are stationary too.
The other ``cpus - 2`` CPUs influence no output of one fault (drain-all's cost is the model's
per-CPU formula), so they are not drawn.

Then the fault's own coin flips: exclusive (``p_exclusive``), large folio (``p_large_folio``,
never in a batch), another transient reference (``p_other_ref``; a second one, ``p_more_refs``),
writer on the holder's CPU (``p_same_cpu``), in the swap cache (``p_swapcache``; its swap entry
held by another process, ``p_swap_shared``). Each fault is summarised by these eight bits and the
writer's batch fill; every policy in
:data:`costmodel.model.POLICIES` is then applied to that summary from its fields alone
(``refcount_test``, ``local_drain``, ``still_held``, ``only_if_sole_ref``, ``early_copy``,
``swapcache``), so a new policy needs no change here. A drain of the holder's batch by its lock
(``drain_remote_lock``) moves the holder's fill: each chunk also sums the holder's fill at the
WP fault (and its square) per summary, and the lock drain is priced at those fills. A
policy whose ``local_drain`` is ``never`` escalates (``still_held``) whenever the folio is still in
any batch, as the model does.

Costs per fault are the model's own expressions (:mod:`costmodel.model.costs`) evaluated at the
registry values; the local drain's per-folio term is evaluated at the *simulated* fill of the
writer's batch, where the model uses the stationary mean (:func:`expected_occupancy`).

Confidence intervals (99.9 % by default): Wilson score intervals for every proportion and for the
breakdown parts that are a proportion times a constant cost; for ``expected_ns`` (and
``cpu_us_per_s``), the local-drain part and the mean fill a local drain moves, the normal interval
from the per-fault samples' mean and standard deviation (mean +- z sd / sqrt(n)), its variance
regularised by z^2 pseudo-faults at the cheapest and at the dearest cost the policy can incur, so
that a rare dear branch that never occurred in the run still widens the interval (as Wilson's
does for a proportion with no successes).

Chunks, seeds, Dask
-------------------
The faults are cut into chunks of ``chunk_faults``; chunk i draws from its own generator seeded by
``SeedSequence(seed).spawn(...)[i]`` (built directly as ``SeedSequence(seed, spawn_key=(i,))``, so
a worker needs only the chunk's number), and each chunk returns integer counts only, so the result
is the same bit for bit whether the chunks run one after another, on threads, or on a
dask.distributed cluster (``scheduler="ADDRESS"``; dask is imported only then).
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field, fields
from typing import Iterable, Mapping

import numpy as np

from . import registry, stats
from .errors import UserError
from .model import POLICIES
from .simulation.arrivals import (ARRIVALS, MMPP, BatchPoisson, GapHistogram, Periodic, Poisson, arrival_process,
                                  parse_arrival_params)
from .simulation.kernel import (CODE_BASE, FLAG_EXCL, FLAG_LARGE, FLAG_MORE, FLAG_OTHER, FLAG_RES, FLAG_SAME, FLAG_SHARED, FLAG_SWAP, CHUNK_FAULTS,
                                make_setup, run_dask, run_local, simulate_chunk, simulate_chunks, chunk_ranges)
from .simulation.pricing import cost_table, policy_result, policy_decisions
from .stats import Estimate, wilson_estimate as wilson

CONFIDENCE = 0.999
MAX_FAULTS = 10**12


def _z(confidence: float) -> float:
    return stats.z_value(confidence)


# ---- the public entry point --------------------------------------------------------------------


@dataclass
class SimulationResult:
    values: dict
    policies_run: tuple[str, ...]
    faults: int
    seed: int
    arrivals: object
    gap_histogram: GapHistogram | None
    confidence: float
    counts: np.ndarray = field(repr=False)  # faults by (summary code, writer's batch fill)
    #: per summary code: the sum of the holding CPU's batch fill at the WP fault and of its square
    holder_fill_sums: np.ndarray | None = field(default=None, repr=False)
    residency: Estimate = None
    policies: dict = None
    model_occupancy: float = math.nan
    elapsed_s: float = math.nan

    @property
    def faults_per_s(self) -> float:
        return self.faults / self.elapsed_s if self.elapsed_s > 0 else math.inf

    def to_dict(self) -> dict:
        pols = {}
        for name, out in self.policies.items():
            entry = {k: v.to_dict() for k, v in out.items() if k != "breakdown_ns"}
            entry["breakdown_ns"] = {k: v.to_dict() for k, v in out["breakdown_ns"].items()}
            pols[name] = entry
        return {
            "faults": self.faults,
            "seed": self.seed,
            "confidence": self.confidence,
            "arrivals": _arrivals_dict(self.arrivals),
            "gap_histogram": self.gap_histogram.to_dict() if self.gap_histogram is not None else None,
            "residency": self.residency.to_dict(),
            "policies": pols,
        }


def _arrivals_dict(proc) -> dict:
    return {"process": proc.name, **{f.name: getattr(proc, f.name) for f in fields(proc)}}



def _check_inputs(values, faults, seed, chunk_faults):
    if isinstance(faults, bool) or not isinstance(faults, (int, np.integer)) or not 1 <= faults <= MAX_FAULTS:
        raise UserError(f"faults={faults!r}: give a whole number of WP faults from 1 to {MAX_FAULTS:,}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserError(f"seed={seed!r}: give a whole number >= 0")
    if isinstance(chunk_faults, bool) or not isinstance(chunk_faults, (int, np.integer)) or not 1 <= chunk_faults <= 1 << 24:
        raise UserError(f"chunk_faults={chunk_faults!r}: give a whole number from 1 to {1 << 24}")


def simulate(values: Mapping[str, object], policies: Iterable[str] | None = None, *,
             faults: int = 1_000_000, seed: int = 0, arrivals="poisson",
             arrival_params: Mapping[str, object] | None = None,
             gap_histogram: GapHistogram | str | os.PathLike | None = None,
             scheduler: str | None = None, workers: int | None = None,
             chunk_faults: int = CHUNK_FAULTS, confidence: float = CONFIDENCE,
             progress: bool | None = None) -> SimulationResult:
    """Simulate ``faults`` WP faults at the parameter point ``values`` (checked against the
    registry) and estimate every output of the model for each policy, with intervals.

    ``arrivals``: ``"poisson"`` (the model's assumption), ``"periodic"``, ``"mmpp"`` or
    ``"batch_poisson"``, or an instance of :class:`Poisson`, :class:`Periodic`, :class:`MMPP`,
    :class:`BatchPoisson`; ``arrival_params`` sets fields by name. ``gap_histogram``: a
    :class:`GapHistogram` or a CSV path; it replaces ``gap_model``/``wp_gap_s``. ``scheduler``: a
    dask.distributed scheduler address; otherwise the chunks run in this process on ``workers``
    threads (default: the CPU count). ``progress``: a tqdm bar on stderr (default: on for runs of
    2e7 faults or more when stderr is a terminal). The same seed gives the same numbers whichever way the chunks run.
    """
    values = registry.as_point(values)
    pols = tuple(policies) if policies else tuple(POLICIES)
    for p in pols:
        if p not in POLICIES:
            raise UserError(f"unknown policy {p!r}; choose one of {', '.join(POLICIES)}")
    _check_inputs(values, faults, seed, chunk_faults)
    if not 0 < confidence < 1:
        raise UserError(f"confidence={confidence!r}: give a probability strictly between 0 and 1")
    proc = arrival_process(arrivals, arrival_params)
    if gap_histogram is not None and not isinstance(gap_histogram, GapHistogram):
        gap_histogram = GapHistogram.from_csv(gap_histogram)

    setup = make_setup(values, proc, gap_histogram)
    faults, seed, chunk_faults = int(faults), int(seed), int(chunk_faults)
    show = progress if progress is not None else (faults >= 20_000_000 and sys.stderr.isatty())

    started = time.perf_counter()
    if scheduler:
        counts = run_dask(scheduler, setup, seed, faults, chunk_faults, show)
    else:
        counts = run_local(setup, seed, faults, chunk_faults, workers, show)
    elapsed = time.perf_counter() - started
    return summarise(values, pols, counts, faults=faults, seed=seed, arrivals=proc,
                     gap_histogram=gap_histogram, confidence=confidence, elapsed_s=elapsed)


def summarise(values, policies, counts, *, faults, seed, arrivals, gap_histogram, confidence=CONFIDENCE,
              elapsed_s=math.nan) -> SimulationResult:
    """Every output from the fault counts by (summary code, writer's batch fill), followed (as the
    chunks return them) by two columns of the holder's fill sums; counts without them are priced
    with the model's mean fill of a batch that holds the page for a drain by the holder's lock."""
    z = _z(confidence)
    costs = cost_table(values)
    B = int(values["batch_size"])
    holder = None
    if counts.shape[1] == B + 2:
        counts, holder = counts[:, :B], counts[:, B:]
    by_code = counts.sum(axis=1)
    resident = (np.arange(CODE_BASE) & FLAG_RES) != 0
    result = SimulationResult(dict(values), tuple(policies), faults, seed, arrivals, gap_histogram, confidence,
                              counts, holder, model_occupancy=costs.model_occupancy, elapsed_s=elapsed_s)
    result.residency = wilson(float(by_code[resident].sum()), float(by_code.sum()), z)
    result.policies = {p: policy_result(POLICIES[p], counts, costs, float(values["wp_faults_per_s"]), z,
                                         bool(values["large_folio_cow_reuse"]), holder)
                       for p in policies}
    return result



__all__ = ["ARRIVALS", "CHUNK_FAULTS", "CONFIDENCE", "MMPP", "BatchPoisson", "Estimate", "GapHistogram", "Periodic", "Poisson",
           "SimulationResult", "CODE_BASE", "FLAG_EXCL", "FLAG_LARGE", "FLAG_MORE", "FLAG_OTHER", "FLAG_RES", "FLAG_SAME", "FLAG_SHARED", "FLAG_SWAP", "chunk_ranges", "cost_table",
           "simulate_chunk", "simulate_chunks", "arrival_process", "parse_arrival_params", "policy_decisions",
           "simulate", "summarise", "wilson"]
