"""Speed of the explorer: time from a slider change to updated chart data.

"Updated chart data" is what the notebook's explorer does after a control moves: read the panel,
evaluate the model (numpy), build the tidy frame, turn it into the payload handed to the chart
widget, and serialise that payload as the kernel sends it. Two charts:

- cost per WP fault against remote_cpus (256 CPU counts x 6 policies, with the breakdown);
- the decision map on a 200 x 200 grid (remote_cpus x wp_gap_s, 5 candidate policies).

Baselines measured in the same run: the same numbers through ``costmodel.evaluate.sweep`` (the
general tidy sweep, then the cheapest policy by pandas for the map), and through sympy
``subs``/``evalf`` of the outputs each chart shows, on a sample of points, extrapolated to the
chart's size. Targets: under 50 ms
and under 200 ms on a 2-core machine.
"""

from __future__ import annotations

import os
import platform
import statistics
import time

import numpy as np
from costmodel import axes, chartdata, charts, registry
from costmodel.evaluate import sweep
from costmodel.model import BREAKDOWN, CANDIDATES, POLICIES, policy_outputs

try:
    from costmodel import widgets
except ImportError:  # pragma: no cover
    widgets = None

MAP_SIDE = 200
REPEATS = 15
NAIVE_SAMPLE = 4


def _median_s(fn, repeats=REPEATS) -> float:
    fn()  # warm: compile caches
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main() -> None:
    if widgets is None:
        raise SystemExit("needs the notebooks extra (ipywidgets)")
    panel = widgets.ParameterPanel()
    slider = panel.controls["shootdown_per_cpu_ns"].slider
    cost_chart = widgets.LiveChart(lambda s: charts.cost_vs_cpus_chart(s["cost"]), ("cost",))
    map_chart = widgets.LiveChart(lambda s: None, ("cells", "line"))
    x_vals = np.unique(np.round(np.linspace(1, 256, MAP_SIDE)))
    y_vals = axes.axis_values("wp_gap_s", MAP_SIDE)
    assert x_vals.size == MAP_SIDE and y_vals.size == MAP_SIDE
    positions = iter(np.tile([2.5, 2.7, 2.9], 1000))

    def cost_path():
        slider.value = 10 ** next(positions)  # the slider change
        values = panel.values()
        frame = chartdata.cost_vs_cpus_data(values)
        payload = cost_chart.update({"cost": frame})
        widgets.payload_message(payload)

    def map_path():
        slider.value = 10 ** next(positions)
        values = panel.values()
        dm = chartdata.decision_map_data(values, "remote_cpus", "wp_gap_s", x_values=x_vals, y_values=y_vals)
        payload = map_chart.update({"cells": widgets.map_frame(dm), "line": dm.line})
        widgets.payload_message(payload)

    base = dict(registry.resolve(), cpus=257)

    def cost_sweep():
        sweep({"remote_cpus": list(range(1, 257))}, base=base)

    def map_sweep():
        df = sweep({"remote_cpus": x_vals.tolist(), "wp_gap_s": y_vals.tolist()}, base=base,
                   policies=CANDIDATES)
        df.loc[df.groupby(["remote_cpus", "wp_gap_s"])["expected_ns"].idxmin(), ["remote_cpus", "wp_gap_s", "policy"]]

    values = registry.resolve()
    cats = tuple(values[c] for c in registry.CATEGORICAL)

    def naive_point_s(policies, keys) -> float:
        exprs = {p: [e for k, e in policy_outputs(p, *cats).items() if k in keys] for p in policies}
        rng = np.random.default_rng(0)
        t0 = time.perf_counter()
        for _ in range(NAIVE_SAMPLE):
            point = dict(base, remote_cpus=int(rng.integers(1, 257)))
            subs = {registry.S[n]: point[n] for n in registry.NUMERIC}
            for p in policies:
                for e in exprs[p]:
                    e.subs(subs).evalf()
        return (time.perf_counter() - t0) / NAIVE_SAMPLE

    cost_s = _median_s(cost_path)
    map_s = _median_s(map_path, repeats=7)
    cost_sweep_s = _median_s(cost_sweep, repeats=7)
    map_sweep_s = _median_s(map_sweep, repeats=3)
    cost_keys = {"expected_ns", "p_copy", "p_unnecessary_copy"} | {f"breakdown_ns.{b}" for b in BREAKDOWN}
    naive_cost = naive_point_s(tuple(POLICIES), cost_keys) * 256
    naive_map = naive_point_s(CANDIDATES, {"expected_ns"}) * MAP_SIDE * MAP_SIDE

    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, python {platform.python_version()}")
    print("slider change -> chart data handed over (panel read, numpy model, tidy frame, payload, message), median:")
    for label, fig, target, sw, naive in (
            (f"cost vs remote_cpus (256 x {len(POLICIES)} policies)", cost_s, 0.050, cost_sweep_s, naive_cost),
            (f"decision map {MAP_SIDE}x{MAP_SIDE} ({len(CANDIDATES)} policies)", map_s, 0.200, map_sweep_s,
             naive_map)):
        print(f"  {label}: {fig * 1e3:.1f} ms  target < {target * 1e3:.0f} ms "
              f"({'met' if fig < target else 'MISSED'})")
        print(f"      baseline evaluate.sweep (same data, tidy): {sw * 1e3:.1f} ms  -> {sw / fig:.1f}x")
        print(f"      baseline sympy subs/evalf (sample of {NAIVE_SAMPLE}, extrapolated): {naive:.1f} s "
              f"-> {naive / fig:,.0f}x")


if __name__ == "__main__":
    main()
