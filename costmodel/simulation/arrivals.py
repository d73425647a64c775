"""Arrival processes of the adds into a batch, the gap from a measured histogram, and the
samplers that count one CPU's adds in the windows around a WP fault."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, fields
from typing import Mapping, Sequence

import numpy as np

from ..errors import UserError

#: stands for batch_adds_per_s = 0 (see the chunk kernel); 4 B^2 / rate stays finite for B <= 512
VANISHING_RATE = 1e-250

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


def make_sampler(proc, rate: float):
    if rate <= VANISHING_RATE:  # no adds: every process is the same (and its limit is Poisson's)
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

