"""Speed of the verdict's uncertainty: one point with intervals, and the probability map.

- ``eval`` with intervals at one point: 10^4 draws of every interval, all policies, every
  output's interval and P(cheapest) (:func:`costmodel.uncertainty.propagate`), in process after
  the model is compiled; beside it, the same draws evaluated one draw at a time through
  ``evaluate_point`` on a sample, extrapolated (what a loop over draws would cost). Target: under
  0.5 s.
- The probability map: 200 x 200 points x 10^3 draws (remote_cpus x wp_gap_s, the five
  candidates), in process, chunked; beside it, the same map computed point by point with
  ``propagate`` on a sample of points, extrapolated. Target: under 10 s. Then the same map on a
  Dask LocalCluster with the same seed, checked equal to the in-process one.

    .venv/bin/python benchmarks/bench_uncertainty.py [--no-dask] [--repeat N]

Other work on the machine slows every figure; the load average is printed beside them.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from costmodel import registry, uncertainty
from costmodel.evaluate import evaluate_point
from costmodel.model import CANDIDATES, POLICIES
from costmodel.presets import default_values

POINT_TARGET_S = 0.5
MAP_TARGET_S = 10.0
MAP_SIDE = 200
MAP_DRAWS = 1000


def _timed(fn, repeat: int) -> tuple[float, object]:
    out = fn()  # warm: compile caches
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-dask", action="store_true")
    args = ap.parse_args()
    values, paramset, where = default_values()
    params = uncertainty.uncertain_parameters(values, paramset)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}; point: {where}; {len(params)} parameters with an interval")

    # ---- one point, 10^4 draws, all policies
    point_s, prop = _timed(lambda: uncertainty.propagate(values, params, draws=10_000, seed=0, policies=POLICIES),
                           args.repeat)
    sample, _ = uncertainty.draw(params, values, 200, seed=0)
    t0 = time.perf_counter()
    for i in range(200):
        evaluate_point(registry.resolve(dict(values, **{k: float(v[i]) for k, v in sample.items()})), POLICIES)
    loop_s = (time.perf_counter() - t0) / 200 * 10_000
    print(f"eval with intervals, 10^4 draws x {len(POLICIES)} policies: {point_s:.3f} s "
          f"(target < {POINT_TARGET_S} s: {'met' if point_s < POINT_TARGET_S else 'MISSED'}); "
          f"baseline, one evaluate_point per draw: {loop_s:.1f} s (extrapolated from 200); ratio {loop_s / point_s:.0f}x")
    print(f"  P(cheapest): " + ", ".join(f"{p} {s:.4f}" for p, s in prop.p_cheapest.items()))

    # ---- the probability map
    x = np.unique(np.round(np.linspace(1, 256, MAP_SIDE)))
    y = np.geomspace(1e-7, 1e-1, MAP_SIDE)
    assert x.size == MAP_SIDE
    X, Y = np.meshgrid(x, y)
    axes = {"remote_cpus": X.ravel(), "wp_gap_s": Y.ravel(),
            "cpus": np.maximum(float(values["cpus"]), X.ravel() + 1)}

    def run_map(scheduler=None):
        return uncertainty.propagate_grid(values, axes, params, draws=MAP_DRAWS, seed=0, policies=CANDIDATES,
                                          keys=(), scheduler=scheduler)

    map_s, here = _timed(run_map, max(1, args.repeat // 3))
    idx = np.random.default_rng(0).choice(X.size, 20, replace=False)
    t0 = time.perf_counter()
    for i in idx:
        p = registry.resolve(dict(values, remote_cpus=int(axes["remote_cpus"][i]), wp_gap_s=float(axes["wp_gap_s"][i]),
                                  cpus=int(axes["cpus"][i])))
        uncertainty.propagate(p, params, draws=MAP_DRAWS, seed=0, policies=CANDIDATES)
    naive_s = (time.perf_counter() - t0) / idx.size * X.size
    print(f"probability map {MAP_SIDE}x{MAP_SIDE} points x {MAP_DRAWS} draws: {map_s:.2f} s in process "
          f"(target < {MAP_TARGET_S} s: {'met' if map_s < MAP_TARGET_S else 'MISSED'}); "
          f"baseline, propagate point by point: {naive_s:.0f} s (extrapolated from {idx.size}); ratio {naive_s / map_s:.0f}x")
    robust = np.nanmax(here.p_cheapest, axis=0)
    print(f"  cells where the most likely policy is cheapest in >= 95% of draws: {np.mean(robust >= 0.95):.1%}")

    if args.no_dask:
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        print("dask: not installed (pip install 'costmodel[dask]'); skipped")
        return
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as client:
        t0 = time.perf_counter()
        there = run_map(client)
        dask_s = time.perf_counter() - t0
    same = np.array_equal(here.p_cheapest, there.p_cheapest, equal_nan=True)
    print(f"same map on a Dask LocalCluster (2 worker processes): {dask_s:.2f} s; identical to in process: {same}")
    if not same:
        raise SystemExit("the Dask map differs from the in-process one")


if __name__ == "__main__":
    main()
