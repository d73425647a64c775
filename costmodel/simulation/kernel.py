"""One seeded chunk of WP faults, summarised as integer counts (so results do not depend on
where chunks run), and running the chunks here or on a dask.distributed cluster."""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ..errors import UserError
from .arrivals import VANISHING_RATE, GapHistogram, Poisson, make_sampler

#: faults per seeded chunk; part of what a seed means (changing it changes the numbers)
CHUNK_FAULTS = 1 << 16
#: warm-up since boot, in mean inter-add times: 4 B^2 + U B (see costmodel.simulate)
_WARMUP_B2 = 4.0
# fault summary bits: exclusive, large, another reference, written on the holder's CPU, still held,
# in the swap cache, a second other reference (given one), its swap entry held by another process
# (given the swap cache)
FLAG_EXCL, FLAG_LARGE, FLAG_OTHER, FLAG_SAME, FLAG_RES, FLAG_SWAP, FLAG_MORE, FLAG_SHARED = 1, 2, 4, 8, 16, 32, 64, 128
CODE_BASE = 256
#: numpy's default bit generator; part of what a seed means, like CHUNK_FAULTS
_BIT_GENERATOR = np.random.PCG64


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
    thresholds: tuple[int, ...]  # 32-bit thresholds: exclusive, large, other_ref, same_cpu, swapcache, more_refs,
    #                              swap_shared
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
    """Independent coin flips per fault from the 32-bit halves of raw draws (bias < 2^-32): four
    from two raw draws, the swap-cache and second-reference coins from a third only where either
    can come up, and the shared-swap-entry coin from a fourth only where it can (so a run without
    them draws what it drew before they existed)."""
    halves = rng.bit_generator.random_raw(2 * n).view(np.uint32).reshape(n, 4)
    if any(t > 0 for t in thresholds[4:6]) or thresholds[6] > 0:
        halves = np.concatenate([halves, rng.bit_generator.random_raw(n).view(np.uint32).reshape(n, 2)], axis=1)
    if thresholds[6] > 0:
        halves = np.concatenate([halves, rng.bit_generator.random_raw(n).view(np.uint32).reshape(n, 2)], axis=1)
    out = []
    for col, t in enumerate(thresholds):
        if t <= 0:
            out.append(np.zeros(n, dtype=bool))
        elif t >= 2**32:
            out.append(np.ones(n, dtype=bool))
        else:
            out.append(halves[:, col] < np.uint32(t))
    return out


def simulate_chunk(setup: _Setup, seed: int, index: int, n: int) -> np.ndarray:
    """Chunk ``index`` of the run seeded ``seed``, ``n`` faults: counts of faults by
    (summary bits, writer's batch fill), shape (codes, B), then two columns per code: the sum of
    the holding CPU's batch fill at the WP fault and of its square; int64."""
    rng = np.random.Generator(_BIT_GENERATOR(np.random.SeedSequence(seed, spawn_key=(index,))))
    B = setup.B
    # batch_adds_per_s = 0 is taken as its limit from above, as the model's closed forms take it:
    # adds so rare that none falls in any drain interval or gap, yet the batch has had time to
    # mix since boot when nothing ever drains it.
    add_rate = setup.add_rate if setup.add_rate > 0 else VANISHING_RATE
    sampler = make_sampler(setup.arrivals, add_rate)
    warm_adds = _WARMUP_B2 * B * B
    inv_rate = 1.0 / add_rate
    stationary = setup.fixed_position is None

    # the fault's coin flips
    excl, large, other, same, swapcache, more, shared = _bernoullis(rng, n, setup.thresholds)

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

    # the holder's fill, kept for what a drain of the holder's batch from elsewhere moves
    holder_fill = occ_holder.astype(np.float64)
    # a writer on another CPU sees that CPU's own batch: its adds and local drains, the same drain-all
    occ = occ_holder
    other_cpu = np.flatnonzero(~same)
    if other_cpu.size:
        m = other_cpu.size
        e_writer = np.minimum(_exp_back(rng, setup.local_drain_rate, m), all_back[other_cpu])
        e_writer = _cap_at_boot(rng, e_writer, warm_adds * inv_rate, B * inv_rate)
        occ[other_cpu] = np.remainder(sampler.stationary(rng, e_writer), B)

    code = resident.view(np.uint8) << 4
    for bit, flag in ((0, excl), (1, large), (2, other), (3, same), (5, swapcache), (6, more & other),
                      (7, shared & swapcache)):
        code |= flag.view(np.uint8) << bit
    code = code.astype(np.int64)
    index = code * B
    index += occ
    by_fill = np.bincount(index, minlength=CODE_BASE * B).reshape(CODE_BASE, B)
    # per code: the sum of the holder's fills and of their squares (whole numbers below 2^53: exact)
    sums = np.stack([np.bincount(code, weights=holder_fill, minlength=CODE_BASE),
                     np.bincount(code, weights=holder_fill * holder_fill, minlength=CODE_BASE)], axis=1)
    return np.concatenate([by_fill, sums.astype(np.int64)], axis=1)


def chunk_ranges(faults: int, chunk_faults: int, first: int = 0, count: int | None = None):
    """(index, size) of chunks ``first`` .. ``first + count - 1`` of a run of ``faults``."""
    total = -(-faults // chunk_faults)
    last = total if count is None else min(total, first + count)
    for i in range(first, last):
        yield i, min(chunk_faults, faults - i * chunk_faults)


def simulate_chunks(setup: _Setup, seed: int, faults: int, chunk_faults: int, first: int, count: int) -> np.ndarray:
    total = np.zeros((CODE_BASE, setup.B + 2), dtype=np.int64)
    for i, n in chunk_ranges(faults, chunk_faults, first, count):
        total += simulate_chunk(setup, seed, i, n)
    return total


def _threshold(p: float) -> int:
    """A probability as a 32-bit threshold for the raw coin flips."""
    return min(int(round(float(p) * 2**32)), 2**32)


def make_setup(values, proc, histogram) -> _Setup:
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
        thresholds=tuple(_threshold(values[n]) for n in ("p_exclusive", "p_large_folio", "p_other_ref", "p_same_cpu",
                                                          "p_swapcache", "p_more_refs", "p_swap_shared")),
        arrivals=proc,
        histogram=histogram,
    )


def _bar(total: int, show: bool):
    return tqdm(total=total, unit="fault", unit_scale=True, disable=not show, leave=False, desc="simulate")


def run_local(setup, seed, faults, chunk_faults, workers, show) -> np.ndarray:
    workers = workers or os.cpu_count() or 1
    total = np.zeros((CODE_BASE, setup.B + 2), dtype=np.int64)
    with _bar(faults, show) as bar:
        if workers == 1 or faults <= chunk_faults:
            for i, n in chunk_ranges(faults, chunk_faults):
                total += simulate_chunk(setup, seed, i, n)
                bar.update(n)
            return total
        # numpy's generators and ufuncs release the GIL, so threads share the cores; a bounded
        # window of chunks in flight keeps memory flat however long the run
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending = []
            for i, n in chunk_ranges(faults, chunk_faults):
                pending.append((n, pool.submit(simulate_chunk, setup, seed, i, n)))
                if len(pending) >= 4 * workers:
                    n0, fut = pending.pop(0)
                    total += fut.result()
                    bar.update(n0)
            for n0, fut in pending:
                total += fut.result()
                bar.update(n0)
    return total


def run_dask(address: str, setup, seed, faults, chunk_faults, show) -> np.ndarray:
    try:  # dask: optional (costmodel[dask]), needed only with --scheduler
        from distributed import Client, as_completed
    except ImportError:
        raise UserError("--scheduler needs dask.distributed; install costmodel[dask]") from None
    try:
        client = Client(address, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise UserError(f"scheduler {address!r}: cannot connect ({exc}); give a running dask scheduler's address") from None
    total = np.zeros((CODE_BASE, setup.B + 2), dtype=np.int64)
    try:
        n_chunks = -(-faults // chunk_faults)
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        per_task = max(1, min(64, math.ceil(n_chunks / (4 * n_workers))))
        firsts = list(range(0, n_chunks, per_task))
        [setup_future] = client.scatter([setup], broadcast=True)
        futures = client.map(simulate_chunks, [setup_future] * len(firsts), [seed] * len(firsts),
                             [faults] * len(firsts), [chunk_faults] * len(firsts), firsts,
                             [per_task] * len(firsts), pure=False)
        size = {f.key: sum(n for _, n in chunk_ranges(faults, chunk_faults, first, per_task))
                for f, first in zip(futures, firsts)}
        with _bar(faults, show) as bar:
            for fut in as_completed(futures, loop=client.loop):
                total += fut.result()
                bar.update(size[fut.key])
    finally:
        client.close()
    return total
