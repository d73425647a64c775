"""Speed the reader feels in the report: one slider move to redrawn explore charts, in headless
Chromium (Playwright, /usr/bin/chromium, offline).

Measured as a script in the page does it: ``view.signal(name, value)`` then ``await
view.runAsync()`` (the dataflow and the redraw), for every slider of the explore view, with the
decision map at 200 x 200 cells. Two figures for the report's own view:

- **drag**: what a reader sees while a slider moves: the page draws the map at
  ``live.DRAG_MAP_N`` cells a side until the slider rests (the page script clears the
  ``map_detail`` signal on every input event; here it is cleared once, as during a drag);
- **settle**: the full 200 x 200 map drawn a moment after the slider rests (``map_detail`` set
  again after a move).

Baseline, measured in the same run: the approach the report used before (``live.cost_source`` and
``live.map_source``: every output computed on every row, one row per remote_cpus and policy, the
map's cells each computing every formula), drawn by the same chart builders at the same 200 x 200
map. Target: drag under 50 ms median for every slider.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
MAP_N = 200
TARGET_MS = 50.0

_MEASURE = """async ([moves, detail]) => {
  const view = window.costmodelView;
  const out = {};
  if (detail !== null) { view.signal('map_detail', detail); await view.runAsync(); }
  for (const [name, values] of Object.entries(moves)) {
    const times = [], settle = [], start = view.signal(name);
    for (const v of values) {
      const t0 = performance.now();
      view.signal(name, v);
      await view.runAsync();
      times.push(performance.now() - t0);
      if (detail === false) {
        const t1 = performance.now();
        view.signal('map_detail', true);
        await view.runAsync();
        settle.push(performance.now() - t1);
        view.signal('map_detail', false);
        await view.runAsync();
      }
    }
    out[name] = {times, settle};
    view.signal(name, start);  // each slider is moved from the shipped point, the others left there
    await view.runAsync();
  }
  return out;
}"""


def _page(spec: dict, bundle: str) -> str:
    from costmodel.report import _script_json

    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><script>" + bundle + "</script></head><body>"
            "<div id='v'></div><script>window.costmodelReady = vegaEmbed('#v', " + _script_json(spec)
            + ", {actions: false, renderer: 'canvas'}).then(r => { window.costmodelView = r.view; });"
            "</script></body></html>")


def _moves(spec: dict, k: int) -> dict[str, list[float]]:
    """For each bound range input, ``k`` values across its range (not its current one)."""
    out = {}
    for p in spec["params"]:
        b = p.get("bind")
        if not b or b.get("input") != "range":
            continue
        lo, hi = float(b["min"]), float(b["max"])
        step = float(b.get("step") or (hi - lo) / 100)
        vals = []
        for i in range(k):
            v = lo + (hi - lo) * (0.2 + 0.6 * i / max(k - 1, 1))
            vals.append(round(round(v / step) * step, 6))
        out[p["name"]] = vals
    return out


def baseline_spec(values: dict, map_n: int = MAP_N) -> dict:
    """The explore view as the report built it before: the per-row sources of costmodel.live,
    every numeric slider and the table of current values, drawn by today's chart builders."""
    import altair as alt

    from costmodel import chartdata, charts, live

    dx, dy = chartdata.default_map_axes(values)
    cost = live.cost_source(values)
    msrc, x_log, y_log, (x_dom, y_dom) = live.map_source(values, dx, dy, n=map_n)
    spec = alt.vconcat(charts.cost_vs_cpus_chart(cost.charts[0]), charts.cost_breakdown_chart(cost.charts[0]),
                       charts.decision_map_chart(msrc.charts[0], msrc.charts[1:], x=dx, y=dy, x_log=x_log,
                                                 y_log=y_log, x_domain=x_dom, y_domain=y_dom),
                       live.values_panel(sorted(cost.signals | msrc.signals))).resolve_scale(
        color="independent", opacity="independent", strokeDash="independent").to_dict()
    spec["params"] = live.slider_params(sorted(cost.signals | msrc.signals), values,
                                        fixed=cost.fixed | msrc.fixed) + spec.get("params", [])
    return spec


def current_spec(values: dict, map_n: int = MAP_N) -> dict:
    from costmodel import report

    spec, _ = report.live_spec(values, map_n=map_n)
    for p in spec["params"]:  # no controls panel on this page: the inputs go into the view's own
        if "bind" in p:
            p["bind"] = {k: v for k, v in p["bind"].items() if k != "element"}
    return spec


def _run(page, html: str, moves, detail) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".html", delete=False, encoding="utf-8") as f:
        f.write(html)
    try:
        page.goto(Path(f.name).as_uri())
        page.evaluate("window.costmodelReady")
        return page.evaluate(_MEASURE, [moves, detail])
    finally:
        os.unlink(f.name)


def _median(xs):
    return statistics.median(xs) if xs else math.nan


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--moves", type=int, default=5, help="moves per slider (default 5)")
    ap.add_argument("--baseline-moves", type=int, default=2, help="moves per slider for the baseline (default 2)")
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args(argv)
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing")
    from playwright.sync_api import sync_playwright

    from costmodel import presets
    from costmodel.report import vega_bundle

    values = presets.default_values()[0]   # a checked point already
    bundle = vega_bundle()
    t0 = time.perf_counter()
    cur = current_spec(values)
    build_cur = time.perf_counter() - t0
    t0 = time.perf_counter()
    base = None if args.no_baseline else baseline_spec(values)
    build_base = time.perf_counter() - t0
    results = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)

        def fresh_page():   # one renderer per view, so the baseline's memory is its own
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:", "blob:"))
                       else r.abort())
            return page

        page = fresh_page()
        results["current"] = _run(page, _page(cur, bundle), _moves(cur, args.moves), False)
        page.close()
        if base is not None:
            page = fresh_page()
            try:
                results["baseline"] = _run(page, _page(base, bundle), _moves(base, args.baseline_moves), None)
            except Exception as exc:   # the old view can exhaust a renderer: say so, keep the figure measured
                print(f"baseline: not measured, the renderer failed ({str(exc).splitlines()[0]}); "
                      f"rerun with --no-baseline to skip it", file=sys.stderr)
        browser.close()
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, python {platform.python_version()}; "
          f"Chromium headless, canvas renderer; decision map {MAP_N} x {MAP_N}")
    print(f"spec build: current {build_cur:.1f} s ({len(json.dumps(cur)) / 1e6:.2f} MB)"
          + (f", baseline {build_base:.1f} s ({len(json.dumps(base)) / 1e6:.2f} MB)" if base else ""))
    cur_r = results["current"]
    base_r = results.get("baseline", {})

    def control(name):
        return name.replace("__log10", "").replace("__raw", "")

    base_by = {control(k): v for k, v in base_r.items()}
    print(f"{'slider':30s} {'drag ms':>9s} {'settle ms':>10s} {'baseline ms':>12s}")
    drags, settles, bases = [], [], []
    for name, r in cur_r.items():
        d, st = _median(r["times"]), _median(r["settle"])
        b = _median(base_by.get(control(name), {}).get("times", []))
        drags.append(d)
        settles.append(st)
        if b == b:
            bases.append(b)
        print(f"{control(name):30s} {d:9.1f} {st:10.1f} {b:12.1f}")
    print(f"median over sliders: drag {statistics.median(drags):.1f} ms (worst {max(drags):.1f}), "
          f"settle {statistics.median(settles):.1f} ms (worst {max(settles):.1f})"
          + (f", baseline {statistics.median(bases):.1f} ms (worst {max(bases):.1f}) -> "
             f"{statistics.median(bases) / statistics.median(drags):.1f}x while dragging, "
             f"{statistics.median(bases) / statistics.median(settles):.1f}x settled" if bases else ""))
    worst = max(drags)
    print(f"target: drag < {TARGET_MS:.0f} ms median for every slider: "
          f"{'met' if all(d < TARGET_MS for d in drags) else 'MISSED'} (worst slider {worst:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
