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
never in a batch), another transient reference (``p_other_ref``), writer on the holder's CPU
(``p_same_cpu``). Each fault is summarised by these five bits and the writer's batch fill; every
policy in :data:`costmodel.model.POLICIES` is then applied to that summary from its fields alone
(``refcount_test``, ``local_drain``, ``still_held``), so a new policy needs no change here. A
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

import csv
import math
import os
import sys
import time
from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import Iterable, Mapping, Sequence

import numpy as np

from . import registry, stats
from .errors import UserError
from .model import BREAKDOWN, POLICIES, Policy
from .model.numeric import lambdify
from .model.policies import ALWAYS, COPY, DRAIN_ALL, DRAIN_REMOTE, IF_NOT_ON_LRU, NEVER

#: faults per seeded chunk; part of what a seed means (changing it changes the numbers)
CHUNK_FAULTS = 1 << 16
CONFIDENCE = 0.999
#: warm-up since boot, in mean inter-add times: 4 B^2 + U B (see the module docstring)
_WARMUP_B2 = 4.0
_MAX_FAULTS = 10**12
#: stands for batch_adds_per_s = 0 (see _simulate_chunk); 4 B^2 / rate stays finite for B <= 512
_VANISHING_RATE = 1e-250

# fault summary bits
_EXCL, _LARGE, _OTHER, _SAME, _RES = 1, 2, 4, 8, 16
_CODES = 32
#: numpy's default bit generator; part of what a seed means, like CHUNK_FAULTS
_BIT_GENERATOR = np.random.PCG64


# ---- arrival processes -------------------------------------------------------------------------


@dataclass(frozen=True)
class Poisson:
    """Adds as a Poisson process: the model's assumption."""

    name = "poisson"

    def validate(self) -> None:
        pass


@dataclass(frozen=True)
class Periodic:
    """Adds exactly every 1/batch_adds_per_s (a steady stream of faults)."""

    name = "periodic"

    def validate(self) -> None:
        pass


@dataclass(frozen=True)
class MMPP:
    """Markov-modulated Poisson adds: a share ``p_burst`` of the time is spent in a burst state,
    in spells of mean ``mean_burst_s``, where folios arrive ``burst_ratio`` times faster than in
    the quiet state. The mean rate stays ``batch_adds_per_s``."""

    burst_ratio: float = 10.0
    p_burst: float = 0.1
    mean_burst_s: float = 1.0e-3
    name = "mmpp"

    def validate(self) -> None:
        _check_field("mmpp", "burst_ratio", self.burst_ratio, 1.0, 1e9, "at least 1 (burst rate / quiet rate)")
        _check_field("mmpp", "p_burst", self.p_burst, 0.0, 1.0, "strictly between 0 and 1",
                     open_low=True, open_high=True)
        _check_field("mmpp", "mean_burst_s", self.mean_burst_s, 0.0, 1e6, "a positive time in s", open_low=True)


@dataclass(frozen=True)
class BatchPoisson:
    """Adds in bursts: bursts arrive as a Poisson process, each bringing a geometric number of
    folios with mean ``mean_batch`` at one instant. The mean rate stays ``batch_adds_per_s``."""

    mean_batch: float = 8.0
    name = "batch_poisson"

    def validate(self) -> None:
        _check_field("batch_poisson", "mean_batch", self.mean_batch, 1.0, 1e9, "at least 1 folio per burst")


ARRIVALS: dict[str, type] = {c.name: c for c in (Poisson, Periodic, MMPP, BatchPoisson)}


def _check_field(proc, name, value, low, high, allowed, open_low=False, open_high=False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if open_low else value >= low) and (value < high if open_high else value <= high)
    if not ok:
        raise UserError(f"arrivals {proc}: {name}={value!r} is not allowed; give {allowed}")


def arrival_process(arrivals="poisson", params: Mapping[str, object] | None = None):
    """An arrival-process object from a name (and ``NAME=VALUE`` style field values, parsed as
    numbers, never evaluated) or an instance. Raises UserError on anything unknown."""
    if isinstance(arrivals, str):
        if arrivals not in ARRIVALS:
            raise UserError(f"arrivals: {arrivals!r} is not known; choose one of {', '.join(ARRIVALS)}")
        cls = ARRIVALS[arrivals]
        known = {f.name for f in fields(cls)}
        kwargs = {}
        for key, raw in (params or {}).items():
            if key not in known:
                hint = f"; {arrivals} takes {', '.join(sorted(known))}" if known else f"; {arrivals} takes none"
                raise UserError(f"arrivals {arrivals}: unknown parameter {key!r}{hint}")
            kwargs[key] = _parse_float(f"arrivals {arrivals}: {key}", raw)
        proc = cls(**kwargs)
    elif type(arrivals) in ARRIVALS.values():
        if params:
            raise UserError("arrivals: give parameters either in the object or as params, not both")
        proc = arrivals
    else:
        raise UserError(f"arrivals: expected one of {', '.join(ARRIVALS)}, got {type(arrivals).__name__}")
    proc.validate()
    return proc


def parse_arrival_params(items: Sequence[str] | None) -> dict[str, float]:
    """``["burst_ratio=20", ...]`` from the command line."""
    out = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--arrival-param {item!r}: expected NAME=VALUE, e.g. burst_ratio=20")
        out[key.strip()] = raw
    return out


def _parse_float(what: str, raw) -> float:
    if isinstance(raw, bool):
        raise UserError(f"{what}: expected a number, got {raw!r}")
    try:
        value = float(raw.strip() if isinstance(raw, str) else raw)
    except (TypeError, ValueError):
        raise UserError(f"{what}: {raw!r} is not a number; give a plain number") from None
    if not math.isfinite(value):
        raise UserError(f"{what}: {raw!r} is not a finite number")
    return value


# ---- the gap from a measured histogram ---------------------------------------------------------


@dataclass(frozen=True, eq=False)
class GapHistogram:
    """A measured gap law: ``count`` observations at ``gap_s`` (point masses), or spread
    uniformly over ``[gap_s, gap_s + width_s)`` where widths are given."""

    gap_s: np.ndarray
    count: np.ndarray
    width_s: np.ndarray | None = None
    source: str = "given"

    def __post_init__(self):
        gap = np.asarray(self.gap_s, dtype=float).ravel()
        cnt = np.asarray(self.count, dtype=float).ravel()
        where = f"gap histogram ({self.source})"
        if gap.size == 0 or gap.size != cnt.size:
            raise UserError(f"{where}: give as many counts as gaps, at least one")
        if not np.all(np.isfinite(gap)) or np.any(gap < 0):
            raise UserError(f"{where}: gap_s must be finite and >= 0")
        if not np.all(np.isfinite(cnt)) or np.any(cnt < 0) or cnt.sum() <= 0:
            raise UserError(f"{where}: counts must be finite, >= 0 and not all 0")
        object.__setattr__(self, "gap_s", gap)
        object.__setattr__(self, "count", cnt)
        if self.width_s is not None:
            w = np.asarray(self.width_s, dtype=float).ravel()
            if w.size != gap.size or not np.all(np.isfinite(w)) or np.any(w < 0):
                raise UserError(f"{where}: bin widths must be finite, >= 0, one per row")
            object.__setattr__(self, "width_s", w)

    @classmethod
    def from_csv(cls, path) -> "GapHistogram":
        """CSV with a header: ``gap_s,count`` (point masses) or ``gap_lo_s,gap_hi_s,count`` (bins)."""
        try:
            with open(path, newline="") as fh:
                rows = list(csv.reader(fh))
        except OSError as exc:
            raise UserError(f"gap histogram {path}: cannot read ({exc.strerror})") from None
        rows = [r for r in rows if r and any(c.strip() for c in r)]
        if not rows:
            raise UserError(f"gap histogram {path}: empty; expected a header gap_s,count")
        header = [c.strip() for c in rows[0]]
        body = rows[1:]
        if header == ["gap_s", "count"]:
            cols = 2
        elif header == ["gap_lo_s", "gap_hi_s", "count"]:
            cols = 3
        else:
            raise UserError(f"gap histogram {path}: header {','.join(header)!r} not understood;"
                            " use gap_s,count or gap_lo_s,gap_hi_s,count")
        data = []
        for lineno, row in enumerate(body, start=2):
            if len(row) != cols:
                raise UserError(f"gap histogram {path} line {lineno}: expected {cols} columns")
            data.append([_parse_float(f"gap histogram {path} line {lineno}: {header[i]}", c)
                         for i, c in enumerate(row)])
        if not data:
            raise UserError(f"gap histogram {path}: no rows after the header")
        arr = np.array(data)
        if cols == 2:
            return cls(arr[:, 0], arr[:, 1], source=str(path))
        if np.any(arr[:, 1] < arr[:, 0]):
            raise UserError(f"gap histogram {path}: gap_hi_s must not be below gap_lo_s")
        return cls(arr[:, 0], arr[:, 2], arr[:, 1] - arr[:, 0], source=str(path))

    @property
    def mean_s(self) -> float:
        centre = self.gap_s + (0.5 * self.width_s if self.width_s is not None else 0.0)
        return float(np.dot(centre, self.count) / self.count.sum())

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        cum = np.cumsum(self.count)
        idx = np.searchsorted(cum, rng.random(n) * cum[-1], side="right")
        idx = np.minimum(idx, cum.size - 1)
        gap = self.gap_s[idx]
        if self.width_s is not None:
            gap = gap + rng.random(n) * self.width_s[idx]
        return gap

    def to_dict(self) -> dict:
        return {"source": self.source, "rows": int(self.gap_s.size), "mean_s": self.mean_s}


# ---- samplers: adds of one CPU in windows around a reference point ------------------------------
#
# palm(rng, back, g, e): the reference point (time 0) is an add: the install, or for fixed_count
# the k-th add after it. Returns
#   n_back  the adds in [-back, 0) (None when back is None),
#   n_gap   the adds in (0, g]   (None when g is None; needed only where no drain fell in the gap),
#   n_last  the adds in (g - e, g] for the faults whose last drain fell in the gap (e < g), in
#           their order: what the batch holds at the WP fault.
# stationary(rng, back): the adds in [-back, 0) before a typical time (not an add).


class _PoissonSampler:
    def __init__(self, rate: float):
        self.rate = rate

    def palm(self, rng, back, g=None, e=None):
        nb = None if back is None else rng.poisson(self.rate * back)
        if g is None:
            return nb, None, None
        n_gap = rng.poisson(self.rate * g)
        n_last = rng.poisson(self.rate * e[e < g])
        return nb, n_gap, n_last

    def stationary(self, rng, back):
        return rng.poisson(self.rate * back)


class _PeriodicSampler:
    """Palm: adds at multiples of 1/rate from the reference add. Typical time: a uniform phase."""

    def __init__(self, rate: float):
        self.rate = rate

    def palm(self, rng, back, g=None, e=None):
        nb = None if back is None else np.floor(self.rate * back).astype(np.int64)
        if g is None:
            return nb, None, None
        n_gap = np.floor(self.rate * g).astype(np.int64)
        d = e < g
        n_last = n_gap[d] - np.floor(self.rate * (g[d] - e[d])).astype(np.int64)
        return nb, n_gap, n_last

    def stationary(self, rng, back):
        x = self.rate * back - rng.random(back.shape)
        return np.where(x >= 0, np.floor(x) + 1, 0).astype(np.int64)


class _BatchPoissonSampler:
    """Bursts at rate/mean_batch with geometric sizes (each folio ends its burst with q = 1/mean).
    The reference folio's own burst puts folios just before it and just after it, at time 0."""

    def __init__(self, rate: float, mean_batch: float):
        self.q = 1.0 / mean_batch
        self.burst_rate = rate / mean_batch

    def _compound(self, rng, length):
        bursts = rng.poisson(self.burst_rate * length)
        out = bursts.copy()
        m = bursts > 0
        if self.q < 1.0 and m.any():
            out[m] += rng.negative_binomial(bursts[m], self.q)
        return out

    def _mates(self, rng, shape):
        if self.q >= 1.0:
            return np.zeros(shape, dtype=np.int64)
        return rng.geometric(self.q, size=shape).astype(np.int64) - 1

    def palm(self, rng, back, g=None, e=None):
        nb = None if back is None else self._compound(rng, back) + self._mates(rng, back.shape)
        if g is None:
            return nb, None, None
        n_gap = self._compound(rng, g) + self._mates(rng, g.shape)
        n_last = self._compound(rng, e[e < g])  # the last drain came after the burst at time 0
        return nb, n_gap, n_last

    def stationary(self, rng, back):
        return self._compound(rng, back)


class _MMPPSampler:
    """Two-state Markov-modulated Poisson process; the state chain is reversible, so the past of a
    reference point is simulated with the same dynamics as its future."""

    MAX_SEGMENTS = 100_000

    def __init__(self, rate: float, proc: MMPP):
        f, r = proc.p_burst, proc.burst_ratio
        lo = rate / (f * r + 1 - f)
        self.rates = np.array([lo, r * lo])  # state 0 quiet, 1 burst
        q_burst = 1.0 / proc.mean_burst_s
        self.leave = np.array([q_burst * f / (1 - f), q_burst])
        self.p_burst_time = f
        self.p_burst_at_add = f * r * lo / rate

    def _counts(self, rng, state, edges):
        """Adds in consecutive windows [0, e1), [e1, e2), ... measured from the reference point.

        The state chain is run spell by spell; given its path the adds in a window are Poisson
        with mean the integral of the rate, so only the time spent in each state is tracked."""
        n, m = edges.shape
        integral = np.zeros((n, m))
        t = np.zeros(n)
        s = state.astype(np.int64)
        idx = np.flatnonzero(edges[:, -1] > 0)
        starts = np.concatenate([np.zeros((n, 1)), edges[:, :-1]], axis=1)
        steps = 0
        while idx.size:
            steps += 1
            if steps > self.MAX_SEGMENTS:
                raise UserError("arrivals mmpp: the state switches too often within one fault's window"
                                f" (over {self.MAX_SEGMENTS} spells); lengthen mean_burst_s or use arrivals=poisson")
            ss, tt = s[idx], t[idx]
            seg_end = tt + rng.standard_exponential(idx.size) / self.leave[ss]
            lam = self.rates[ss]
            for col in range(m):
                overlap = np.minimum(seg_end, edges[idx, col]) - np.maximum(tt, starts[idx, col])
                integral[idx, col] += lam * np.maximum(overlap, 0.0)
            t[idx] = seg_end
            s[idx] = 1 - ss
            idx = idx[seg_end < edges[idx, -1]]
        return rng.poisson(integral)

    def palm(self, rng, back, g=None, e=None):
        shape = (back if back is not None else g).shape
        state = (rng.random(shape) < self.p_burst_at_add).astype(np.int64)
        nb = None if back is None else self._counts(rng, state, back[:, None])[:, 0]
        if g is None:
            return nb, None, None
        d = e < g
        split = np.where(d, g - e, g)
        c = self._counts(rng, state, np.stack([split, g], axis=1))
        return nb, c[:, 0] + c[:, 1], c[d, 1]

    def stationary(self, rng, back):
        state = (rng.random(back.shape) < self.p_burst_time).astype(np.int64)
        return self._counts(rng, state, back[:, None])[:, 0]


def _sampler(proc, rate: float):
    if rate <= _VANISHING_RATE:  # no adds: every process is the same (and its limit is Poisson's)
        return _PoissonSampler(rate)
    if isinstance(proc, Poisson):
        return _PoissonSampler(rate)
    if isinstance(proc, Periodic):
        return _PeriodicSampler(rate)
    if isinstance(proc, BatchPoisson):
        return _BatchPoissonSampler(rate, proc.mean_batch)
    if isinstance(proc, MMPP):
        return _MMPPSampler(rate, proc)
    raise TypeError(proc)


# ---- one chunk ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Setup:
    """Everything a chunk needs, as plain picklable data."""

    B: int
    add_rate: float
    local_drain_rate: float
    drain_all_rate: float
    gap: str  # "count", "fixed", "exponential", "histogram"
    adds_between: int
    wp_gap_s: float
    fixed_position: int | None
    thresholds: tuple[int, int, int, int]  # 32-bit thresholds: exclusive, large, other_ref, same_cpu
    arrivals: object
    histogram: GapHistogram | None = None


def _exp_back(rng, rate: float, n: int) -> np.ndarray:
    if rate <= 0:
        return np.full(n, np.inf)
    return rng.standard_exponential(n) / rate


def _cap_at_boot(rng, E, base_s, phase_s):
    """min(E, time since boot) where boot is base_s + U phase_s back (U uniform)."""
    return np.minimum(E, base_s + rng.random(E.shape) * phase_s)


def _bernoullis(rng, n: int, thresholds) -> list[np.ndarray]:
    """Four independent coin flips per fault from the 32-bit halves of raw draws (bias < 2^-32)."""
    halves = rng.bit_generator.random_raw(2 * n).view(np.uint32).reshape(n, 4)
    out = []
    for col, t in enumerate(thresholds):
        if t <= 0:
            out.append(np.zeros(n, dtype=bool))
        elif t >= 2**32:
            out.append(np.ones(n, dtype=bool))
        else:
            out.append(halves[:, col] < np.uint32(t))
    return out


def _simulate_chunk(setup: _Setup, seed: int, index: int, n: int) -> np.ndarray:
    """Chunk ``index`` of the run seeded ``seed``, ``n`` faults: counts of faults by
    (summary bits, writer's batch fill), shape (32, B), int64."""
    rng = np.random.Generator(_BIT_GENERATOR(np.random.SeedSequence(seed, spawn_key=(index,))))
    B = setup.B
    # batch_adds_per_s = 0 is taken as its limit from above, as the model's closed forms take it:
    # adds so rare that none falls in any drain interval or gap, yet the batch has had time to
    # mix since boot when nothing ever drains it.
    add_rate = setup.add_rate if setup.add_rate > 0 else _VANISHING_RATE
    sampler = _sampler(setup.arrivals, add_rate)
    warm_adds = _WARMUP_B2 * B * B
    inv_rate = 1.0 / add_rate
    stationary = setup.fixed_position is None

    # the fault's coin flips
    excl, large, other, same = _bernoullis(rng, n, setup.thresholds)

    # times back from the WP fault to the last drain of the holder, and to the shared drain-all
    all_back = _exp_back(rng, setup.drain_all_rate, n)
    e_holder = np.minimum(_exp_back(rng, setup.local_drain_rate, n), all_back)

    if setup.gap == "count":
        k = setup.adds_between
        # reference point: the WP fault's add (the k-th after the install; the install if k = 0)
        e_holder = _cap_at_boot(rng, e_holder, (k + warm_adds) * inv_rate, B * inv_rate)
        n_back, _, _ = sampler.palm(rng, e_holder)
        occ_holder = np.remainder(n_back + 1, B)
        no_drain_in_gap = n_back >= k
        if stationary:
            resident = no_drain_in_gap & (np.remainder(n_back - k, B) + k < B - 1)
        else:
            position = setup.fixed_position
            occ_holder[no_drain_in_gap] = (position + 1 + k) % B
            resident = no_drain_in_gap & (position + k < B - 1)
    else:
        if setup.gap == "fixed":
            g = np.full(n, setup.wp_gap_s)
        elif setup.gap == "exponential":
            g = rng.standard_exponential(n)
            g *= setup.wp_gap_s
        else:
            g = setup.histogram.sample(rng, n)
        # reference point: the install, g before the WP fault
        if stationary:
            e_holder = _cap_at_boot(rng, e_holder, g + warm_adds * inv_rate, B * inv_rate)
            back = np.maximum(e_holder - g, 0.0)
        else:
            back = None
        n_back, n_gap, n_last = sampler.palm(rng, back, g, e_holder)
        drained = e_holder < g
        position = np.remainder(n_back, B) if stationary else setup.fixed_position
        n_gap += position
        resident = n_gap < B - 1
        resident &= ~drained
        n_gap += 1
        occ_holder = np.remainder(n_gap, B)
        occ_holder[drained] = np.remainder(n_last, B)

    # a writer on another CPU sees that CPU's own batch: its adds and local drains, the same drain-all
    occ = occ_holder
    other_cpu = np.flatnonzero(~same)
    if other_cpu.size:
        m = other_cpu.size
        e_writer = np.minimum(_exp_back(rng, setup.local_drain_rate, m), all_back[other_cpu])
        e_writer = _cap_at_boot(rng, e_writer, warm_adds * inv_rate, B * inv_rate)
        occ[other_cpu] = np.remainder(sampler.stationary(rng, e_writer), B)

    code = resident.view(np.uint8) << 4
    for bit, flag in ((0, excl), (1, large), (2, other), (3, same)):
        code |= flag.view(np.uint8) << bit
    index = code.astype(np.int64)
    index *= B
    index += occ
    return np.bincount(index, minlength=_CODES * B).reshape(_CODES, B)


def _chunks(faults: int, chunk_faults: int, first: int = 0, count: int | None = None):
    """(index, size) of chunks ``first`` .. ``first + count - 1`` of a run of ``faults``."""
    total = -(-faults // chunk_faults)
    last = total if count is None else min(total, first + count)
    for i in range(first, last):
        yield i, min(chunk_faults, faults - i * chunk_faults)


def _simulate_chunks(setup: _Setup, seed: int, faults: int, chunk_faults: int, first: int, count: int) -> np.ndarray:
    total = np.zeros((_CODES, setup.B), dtype=np.int64)
    for i, n in _chunks(faults, chunk_faults, first, count):
        total += _simulate_chunk(setup, seed, i, n)
    return total


# ---- estimates ---------------------------------------------------------------------------------


def _z(confidence: float) -> float:
    return stats.z_value(confidence)


@dataclass(frozen=True)
class Estimate:
    """A simulated value with its confidence interval [low, high]."""

    value: float
    low: float
    high: float
    method: str

    def contains(self, x: float, rel_tol: float = 1e-9) -> bool:
        """Whether x lies in the interval (allowing float rounding of exactly-known values)."""
        slack = rel_tol * max(1.0, abs(x), abs(self.value))
        return self.low - slack <= x <= self.high + slack

    def to_dict(self) -> dict:
        def clean(v):
            return None if v is None or not math.isfinite(v) else float(v)

        return {"sim": clean(self.value), "low": clean(self.low), "high": clean(self.high)}


def wilson(k: float, n: float, z: float) -> Estimate:
    """Wilson score interval for k successes in n trials."""
    low, high = stats.wilson_interval(k, n, z)
    return Estimate(k / n if n > 0 else math.nan, low, high, "wilson")


def _mean_estimate(weights: np.ndarray, x: np.ndarray, z: float) -> Estimate:
    """Mean of samples ``x`` with multiplicities ``weights`` and the interval mean +- z sd/sqrt(n).

    The variance is regularised as in Agresti-Coull: z^2 pseudo-samples at each of the smallest
    and largest value ``x`` can take (every entry of ``x``, observed or not). A run in which a
    rare, dear branch never happened then still gets a width close to the Wilson bound of that
    branch's probability instead of zero; with many samples the pseudo-samples do not matter.
    """
    n = float(weights.sum())
    if n <= 0:
        return Estimate(math.nan, math.nan, math.nan, "normal")
    mean = float((weights * x).sum() / n)
    lo, hi = float(np.min(x)), float(np.max(x))
    pseudo = z * z
    ss = float((weights * (x - mean) ** 2).sum()) + pseudo * ((lo - mean) ** 2 + (hi - mean) ** 2)
    n_aug = n + 2 * pseudo
    half = z * math.sqrt(ss / (n_aug - 1) / n_aug)
    return Estimate(mean, mean - half, mean + half, "normal")


def _scaled(e: Estimate, c: float) -> Estimate:
    lo, hi = sorted((e.low * c, e.high * c))
    return Estimate(e.value * c, lo, hi, e.method)


# ---- costs from the model's expressions --------------------------------------------------------


@dataclass(frozen=True)
class _Costs:
    fault_entry: float
    reuse: float
    copy_parts: dict  # part -> ns
    local_drain_by_fill: np.ndarray  # ns, indexed by the folios the drain moves (0..B-1)
    remote_drain: float
    drain_all: float
    model_occupancy: float


def _costs(values: Mapping[str, object]) -> _Costs:
    return _costs_at(tuple(float(values[n]) for n in registry.NUMERIC), values["shootdown_model"])


@lru_cache(maxsize=64)
def _costs_at(point: tuple, shootdown_model: str) -> _Costs:
    import sympy as sp

    from .model import costs, expected_occupancy

    S = registry.S
    args = [S[n] for n in registry.NUMERIC]
    values = dict(zip(registry.NUMERIC, point))

    point = [np.float64(x) for x in point]  # numpy floats: unused Piecewise branches give inf, not errors

    def num(expr) -> float:
        return float(lambdify(args, expr)(*point))

    fill = sp.Symbol("folios_in_batch", nonnegative=True)
    occ_expr = expected_occupancy()
    drain_expr = costs.local_drain_ns()
    by_fill = drain_expr.xreplace({occ_expr: fill})
    if fill not in by_fill.free_symbols:  # the model changed shape: fail loudly, do not guess
        raise RuntimeError("local_drain_ns() no longer contains expected_occupancy(); update simulate._costs")
    B = int(values["batch_size"])
    drain_fn = lambdify([*args, fill], by_fill)
    table = np.array([float(drain_fn(*point, np.float64(j))) for j in range(B)])
    with np.errstate(all="ignore"):
        return _Costs(
            fault_entry=float(values["fault_entry_ns"]),
            reuse=float(values["reuse_ns"]),
            copy_parts={part: num(expr) for part, expr in costs.copy_step_ns(shootdown_model).items()},
            local_drain_by_fill=table,
            remote_drain=num(costs.remote_drain_ns()),
            drain_all=num(costs.drain_all_ns()),
            model_occupancy=num(occ_expr),
        )


# ---- applying a policy to the fault summary ----------------------------------------------------


def _bits() -> dict[str, np.ndarray]:
    c = np.arange(_CODES)
    return {name: (c & bit) != 0 for name, bit in
            (("exclusive", _EXCL), ("large", _LARGE), ("other_ref", _OTHER), ("same_cpu", _SAME), ("resident", _RES))}


def policy_decisions(policy: Policy, large_folio_cow_reuse: bool = True) -> dict[str, np.ndarray]:
    """What ``policy`` does for each of the 32 fault summaries (boolean arrays by summary code).
    ``large_folio_cow_reuse``: whether the kernel reuses a non-exclusive large folio that nothing
    else references (else it always copies one)."""
    b = _bits()
    small_shared = ~b["exclusive"] & ~b["large"]  # takes the policy's path and may sit in a batch
    held = b["resident"] & ~b["large"]  # a large folio is never in a batch
    none = np.zeros(_CODES, dtype=bool)
    local = {NEVER: none, IF_NOT_ON_LRU: small_shared & held, ALWAYS: small_shared}[policy.local_drain]
    held_after_local = held & ~(local & b["same_cpu"])  # a local drain frees only this CPU's batch
    escalate = small_shared & held_after_local if policy.still_held != COPY else none
    held_at_test = held_after_local & ~escalate
    if policy.refcount_test:
        copy = ~b["exclusive"] & (b["other_ref"] | held_at_test | (b["large"] & (not large_folio_cow_reuse)))
    else:
        copy = none
    return {
        "copy": copy,
        "unnecessary_copy": copy & held_at_test & ~b["other_ref"],
        "orphaned": copy & held_at_test,
        "local_drain": local,
        "remote_drain": escalate if policy.still_held == DRAIN_REMOTE else none,
        "drain_all": escalate if policy.still_held == DRAIN_ALL else none,
    }


def _policy_result(policy: Policy, counts: np.ndarray, costs: _Costs, wp_faults_per_s: float, z: float,
                   large_folio_cow_reuse: bool = True) -> dict:
    d = policy_decisions(policy, large_folio_cow_reuse)
    by_code = counts.sum(axis=1)
    n = float(by_code.sum())

    def prop(mask):
        return wilson(float(by_code[mask].sum()), n, z)

    out = {
        "p_copy": prop(d["copy"]),
        "p_unnecessary_copy": prop(d["unnecessary_copy"]),
        "p_local_drain": prop(d["local_drain"]),
        "p_remote_drain": prop(d["remote_drain"]),
        "p_drain_all": prop(d["drain_all"]),
    }
    copy_total = sum(costs.copy_parts.values())
    local_cost = np.where(d["local_drain"][:, None], costs.local_drain_by_fill[None, :], 0.0)
    per_fault = (costs.fault_entry + np.where(d["copy"], copy_total, costs.reuse)
                 + d["remote_drain"] * costs.remote_drain + d["drain_all"] * costs.drain_all)[:, None] + local_cost
    expected = _mean_estimate(counts, per_fault, z)
    out["expected_ns"] = expected
    out["cpu_us_per_s"] = _scaled(expected, wp_faults_per_s / 1000)
    out["orphaned_pages_per_fault"] = prop(d["orphaned"])
    breakdown = {"fault_entry": Estimate(costs.fault_entry, costs.fault_entry, costs.fault_entry, "exact"),
                 "reuse": _scaled(prop(~d["copy"]), costs.reuse)}
    for part, ns in costs.copy_parts.items():
        breakdown[part] = _scaled(out["p_copy"], ns)
    breakdown["local_drain"] = _mean_estimate(counts, local_cost, z)
    breakdown["remote_drain"] = _scaled(out["p_remote_drain"], costs.remote_drain)
    breakdown["drain_all"] = _scaled(out["p_drain_all"], costs.drain_all)
    assert tuple(breakdown) == BREAKDOWN
    out["breakdown_ns"] = breakdown
    drains = counts[d["local_drain"]].sum(axis=0)
    out["mean_local_drain_folios"] = _mean_estimate(drains, np.arange(counts.shape[1], dtype=float), z)
    return out


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


def _threshold(p: float) -> int:
    return min(int(round(float(p) * 2**32)), 2**32)


def _check_inputs(values, faults, seed, chunk_faults):
    if isinstance(faults, bool) or not isinstance(faults, (int, np.integer)) or not 1 <= faults <= _MAX_FAULTS:
        raise UserError(f"faults={faults!r}: give a whole number of WP faults from 1 to {_MAX_FAULTS:.0e}")
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
    values = registry.resolve(values)
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

    setup = _make_setup(values, proc, gap_histogram)
    faults, seed, chunk_faults = int(faults), int(seed), int(chunk_faults)
    show = progress if progress is not None else (faults >= 20_000_000 and sys.stderr.isatty())

    started = time.perf_counter()
    if scheduler:
        counts = _run_dask(scheduler, setup, seed, faults, chunk_faults, show)
    else:
        counts = _run_local(setup, seed, faults, chunk_faults, workers, show)
    elapsed = time.perf_counter() - started
    return summarise(values, pols, counts, faults=faults, seed=seed, arrivals=proc,
                     gap_histogram=gap_histogram, confidence=confidence, elapsed_s=elapsed)


def summarise(values, policies, counts, *, faults, seed, arrivals, gap_histogram, confidence=CONFIDENCE,
              elapsed_s=math.nan) -> SimulationResult:
    """Every output from the fault counts by (summary code, writer's batch fill)."""
    z = _z(confidence)
    costs = _costs(values)
    by_code = counts.sum(axis=1)
    resident = (np.arange(_CODES) & _RES) != 0
    result = SimulationResult(dict(values), tuple(policies), faults, seed, arrivals, gap_histogram, confidence,
                              counts, model_occupancy=costs.model_occupancy, elapsed_s=elapsed_s)
    result.residency = wilson(float(by_code[resident].sum()), float(by_code.sum()), z)
    result.policies = {p: _policy_result(POLICIES[p], counts, costs, float(values["wp_faults_per_s"]), z,
                                         bool(values["large_folio_cow_reuse"]))
                       for p in policies}
    return result


def _make_setup(values, proc, histogram) -> _Setup:
    gap = {"fixed_count": "count", "fixed_time": "fixed", "exponential_time": "exponential"}[values["gap_model"]]
    if histogram is not None:
        gap = "histogram"
    # a large-folio add moves the whole batch to the LRU: split the adds into small ones that fill
    # the batch and large ones that empty it (independent Poisson streams: Poisson adds only)
    q = float(values["p_large_add"])
    if q > 0 and not isinstance(proc, Poisson):
        raise UserError(f"p_large_add={q:g} is simulated with poisson arrivals only (the large-folio adds are a"
                        f" thinning of the add stream); use --arrivals poisson or p_large_add=0")
    adds = float(values["batch_adds_per_s"])
    return _Setup(
        B=int(values["batch_size"]),
        add_rate=adds * (1 - q),
        local_drain_rate=float(values["explicit_drains_per_s"]) + adds * q,
        drain_all_rate=float(values["drain_all_per_s"]),
        gap=gap,
        adds_between=int(values["adds_between"]),
        wp_gap_s=float(values["wp_gap_s"]),
        fixed_position=int(values["batch_position"]) if values["position_model"] == "fixed" else None,
        thresholds=tuple(_threshold(values[n]) for n in ("p_exclusive", "p_large_folio", "p_other_ref", "p_same_cpu")),
        arrivals=proc,
        histogram=histogram,
    )


def _bar(total: int, show: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="fault", unit_scale=True, disable=not show, leave=False, desc="simulate")


def _run_local(setup, seed, faults, chunk_faults, workers, show) -> np.ndarray:
    workers = workers or os.cpu_count() or 1
    total = np.zeros((_CODES, setup.B), dtype=np.int64)
    with _bar(faults, show) as bar:
        if workers == 1 or faults <= chunk_faults:
            for i, n in _chunks(faults, chunk_faults):
                total += _simulate_chunk(setup, seed, i, n)
                bar.update(n)
            return total
        from concurrent.futures import ThreadPoolExecutor

        # numpy's generators and ufuncs release the GIL, so threads share the cores; a bounded
        # window of chunks in flight keeps memory flat however long the run
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending = []
            for i, n in _chunks(faults, chunk_faults):
                pending.append((n, pool.submit(_simulate_chunk, setup, seed, i, n)))
                if len(pending) >= 4 * workers:
                    n0, fut = pending.pop(0)
                    total += fut.result()
                    bar.update(n0)
            for n0, fut in pending:
                total += fut.result()
                bar.update(n0)
    return total


def _run_dask(address: str, setup, seed, faults, chunk_faults, show) -> np.ndarray:
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise UserError("--scheduler needs dask.distributed; install costmodel[dask]") from None
    try:
        client = Client(address, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise UserError(f"scheduler {address!r}: cannot connect ({exc}); give a running dask scheduler's address") from None
    total = np.zeros((_CODES, setup.B), dtype=np.int64)
    try:
        n_chunks = -(-faults // chunk_faults)
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        per_task = max(1, min(64, math.ceil(n_chunks / (4 * n_workers))))
        firsts = list(range(0, n_chunks, per_task))
        [setup_future] = client.scatter([setup], broadcast=True)
        futures = client.map(_simulate_chunks, [setup_future] * len(firsts), [seed] * len(firsts),
                             [faults] * len(firsts), [chunk_faults] * len(firsts), firsts,
                             [per_task] * len(firsts), pure=False)
        size = {f.key: sum(n for _, n in _chunks(faults, chunk_faults, first, per_task))
                for f, first in zip(futures, firsts)}
        with _bar(faults, show) as bar:
            for fut in as_completed(futures, loop=client.loop):
                total += fut.result()
                bar.update(size[fut.key])
    finally:
        client.close()
    return total
