"""Speed of the numeric model: all policies over a 10^6-point grid, against sympy subs/evalf.

Prints points per second for the lambdified path and for the naive symbolic path (on a
sample, measured in the same run), and their ratio. Targets: the full sweep under 1 s on a
2-core machine and at least 1000x the naive path.
"""

from __future__ import annotations

import platform
import time

import numpy as np
import sympy as sp

from costmodel import registry
from costmodel.evaluate import compile_model, evaluate_arrays
from costmodel.model import POLICIES, policy_outputs

N_SIDE = 100  # 100^3 = 10^6 points
NAIVE_SAMPLE = 5


def grid_values():
    base = registry.resolve({"cpus": 256})
    r, g, s = np.meshgrid(np.arange(N_SIDE, dtype=float) * 2, np.geomspace(1e-7, 1e-2, N_SIDE),
                          np.linspace(0, 1, N_SIDE), indexing="ij")
    return dict(base, remote_cpus=r.ravel(), wp_gap_s=g.ravel(), p_same_cpu=s.ravel()), base


def main() -> None:
    values, base = grid_values()
    n = values["remote_cpus"].size
    cats = tuple(base[c] for c in registry.CATEGORICAL)
    t0 = time.perf_counter()
    compile_model(*cats)
    compile_s = time.perf_counter() - t0
    evaluate_arrays(values)  # warm
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        out = evaluate_arrays(values)
        runs.append(time.perf_counter() - t0)
    fast_s = min(runs)
    assert all(np.isfinite(v).all() for v in out.values())

    exprs = {p: policy_outputs(p, *cats) for p in POLICIES}
    rng = np.random.default_rng(1)
    idx = rng.choice(n, NAIVE_SAMPLE, replace=False)
    t0 = time.perf_counter()
    for i in idx:
        subs = {registry.S[name]: (values[name][i] if np.ndim(values[name]) else values[name]) for name in registry.NUMERIC}
        for p in POLICIES:
            for key, e in exprs[p].items():
                e.subs(subs).evalf()
    naive_per_point = (time.perf_counter() - t0) / NAIVE_SAMPLE

    fast_rate = n / fast_s
    naive_rate = 1 / naive_per_point
    print(f"machine: {platform.machine()} {platform.processor() or ''} {__import__('os').cpu_count()} CPUs, python {platform.python_version()}")
    print(f"compile (sympy -> numpy, all {len(POLICIES)} policies): {compile_s:.3f} s")
    print(f"lambdified: {n:,} points x {len(POLICIES)} policies in {fast_s:.3f} s = {fast_rate:,.0f} points/s (best of 5)")
    print(f"sympy subs/evalf: {naive_per_point * 1e3:.1f} ms/point = {naive_rate:,.1f} points/s (sample of {NAIVE_SAMPLE})")
    print(f"ratio: {fast_rate / naive_rate:,.0f}x   target: full sweep < 1 s ({'met' if fast_s < 1 else 'MISSED'}), "
          f">= 1000x ({'met' if fast_rate / naive_rate >= 1000 else 'MISSED'})")


if __name__ == "__main__":
    main()
