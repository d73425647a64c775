"""The report in a real browser (headless Chromium through Playwright): every chart draws, nothing
is fetched, no console error, and a slider recomputes the model in the page."""

from __future__ import annotations

import pytest
from helpers import chromium, chromium_missing

pytestmark = pytest.mark.browser

if chromium_missing():
    pytest.skip(chromium_missing(), allow_module_level=True)
pytest.importorskip("vl_convert")

from costmodel import presets, registry  # noqa: E402
from costmodel.evaluate import evaluate_point  # noqa: E402
from costmodel.model import POLICIES  # noqa: E402
from costmodel.report import write_report  # noqa: E402

#: JavaScript: the live cost rows (remote_cpus, policy, expected_ns) from the page's Vega view
_COST_ROWS = """() => {
  const v = window.costmodelViews.explore;
  let best = null;  // the largest such table (others are its subsets: the marked point, the hover)
  for (const name of Object.keys(v.getState({data: () => true, signals: () => false}).data)) {
    let d; try { d = v.data(name); } catch (e) { continue; }
    if (d && d.length && 'expected_ns' in d[0] && 'policy' in d[0] && 'remote_cpus' in d[0] && !('part_ns' in d[0])
        && (!best || d.length > best.length)) best = d;
  }
  return best && best.map(r => [r.remote_cpus, r.policy, r.expected_ns]);
}"""


@pytest.fixture(scope="module")
def point():
    """The default parameter set (calibrated on this project's machine, with its fits) where it is
    committed, else the registry defaults."""
    values, paramset, _ = presets.default_values()
    return values, paramset


@pytest.fixture(scope="module")
def report_url(tmp_path_factory, point):
    out = tmp_path_factory.mktemp("browser") / "report.html"
    write_report(point[0], out, paramset=point[1], simulate_points=2)
    return out.resolve().as_uri()


@pytest.fixture(scope="module")
def browser():
    yield from chromium()


@pytest.fixture(scope="module")
def page_state(report_url, browser):
    """Open the report once; record console messages, page errors and every request."""
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    state = {"console": [], "errors": [], "requests": [], "blocked": []}
    page.on("console", lambda m: state["console"].append((m.type, m.text)))
    page.on("pageerror", lambda e: state["errors"].append(str(e)))

    def route(r):
        url = r.request.url
        state["requests"].append(url)
        if url.startswith(("file:", "data:", "blob:")):
            r.continue_()
        else:
            state["blocked"].append(url)
            r.abort()

    page.route("**/*", route)
    try:
        page.goto(report_url)
        page.evaluate("window.costmodelReady")
        yield page, state
    finally:
        page.close()


def test_no_request_leaves_the_file(page_state):
    _, state = page_state
    assert state["blocked"] == []
    assert all(u.startswith("file:") for u in state["requests"])


def test_every_chart_rendered(page_state, point):
    page, _ = page_state
    ids = page.evaluate("Array.from(document.querySelectorAll('div.chart')).map(d => d.id)")
    assert set(ids) >= {"explore", "residency"}
    if point[1] is not None and point[1].fit:
        assert "calibration" in ids
    for chart_id in ids:
        info = page.evaluate(f"""() => {{
            const el = document.querySelector('#{chart_id} svg, #{chart_id} canvas');
            if (!el) return null;
            const b = el.getBoundingClientRect();
            const marks = el.tagName === 'svg' ? el.querySelectorAll('path, rect, line, text').length : null;
            return {{w: b.width, h: b.height, marks}};
        }}""")
        assert info is not None, f"{chart_id}: nothing drawn"
        assert info["w"] > 100 and info["h"] > 100, (chart_id, info)
        if info["marks"] is not None:
            assert info["marks"] > 50, (chart_id, info)


def _canvas(page) -> str:
    return page.evaluate("document.querySelector('#explore canvas').toDataURL()")


def test_no_console_errors(page_state):
    _, state = page_state
    assert state["errors"] == []
    bad = [t for kind, t in state["console"] if kind in ("error", "warning")]
    assert bad == []


def _costs(page) -> dict[tuple[int, str], float]:
    rows = page.evaluate(_COST_ROWS)
    assert rows, "no cost rows in the page"
    return {(int(r), p): v for r, p, v in rows}


def test_page_computes_the_models_numbers(page_state, point):
    page, _ = page_state
    got = _costs(page)
    values = point[0]
    for r in (1, 7, 64, 256):
        direct = evaluate_point(registry.resolve(dict(values, remote_cpus=r, cpus=max(values["cpus"], r + 1))))
        for p, out in direct.items():
            assert got[(r, p)] == pytest.approx(out["expected_ns"], rel=1e-9)


def test_moving_a_slider_changes_the_chart(page_state, point):
    page, _ = page_state
    slider = page.locator("#ctl-shootdown_per_cpu_ns input[type=range]")
    assert slider.count() == 1
    before_img = _canvas(page)
    before = _costs(page)
    new_pos = float(slider.input_value()) + 0.5  # half a decade up
    slider.evaluate("(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); }",
                    str(new_pos))
    page.evaluate("() => window.costmodelViews.explore.runAsync().then(() => true)")
    after_img = _canvas(page)
    after = _costs(page)
    assert after_img != before_img
    assert after[(64, "copy_if_referenced")] > before[(64, "copy_if_referenced")]
    # and the new numbers are the model's at the new value
    pos = float(page.evaluate("window.costmodelViews.explore.signal('shootdown_per_cpu_ns__log10')"))
    value = page.evaluate("window.costmodelViews.explore.signal('shootdown_per_cpu_ns')")
    assert value == pytest.approx(10 ** pos, rel=1e-12)
    moved = registry.resolve(dict(point[0], shootdown_per_cpu_ns=value, remote_cpus=64,
                                  cpus=max(point[0]["cpus"], 65)))
    for p, out in evaluate_point(moved).items():
        assert after[(64, p)] == pytest.approx(out["expected_ns"], rel=1e-9)
    # put it back for the tests after this one
    slider.evaluate("(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); }",
                    str(new_pos - 0.5))
    page.evaluate("() => window.costmodelViews.explore.signal('map_detail', true).runAsync().then(() => true)")


# ---- the notebook chart widget's JavaScript, driven by a stand-in for the widget model ----------

_WIDGET_DRIVER = """async ([esm, spec, d1, d2]) => {
  const toDV = (d) => { for (const s of Object.values(d)) for (const c of Object.values(s.columns)) {
      const b = Uint8Array.from(atob(c.buffer), ch => ch.charCodeAt(0)); c.buffer = new DataView(b.buffer); }
    return d; };
  const state = {spec, data: toDV(d1)}, handlers = {};
  const model = {get: k => state[k], on: (e, cb) => { handlers[e] = cb; }};
  const mod = await import(URL.createObjectURL(new Blob([esm], {type: 'text/javascript'})));
  await mod.default.render({model, el: document.getElementById('w')});
  const paths = () => Array.from(document.querySelectorAll('#w path')).map(p => p.getAttribute('d')).join('|');
  const before = paths();
  state.data = toDV(d2);
  await handlers['change:data']();
  return {before: before.length, changed: before !== paths(), svgs: document.querySelectorAll('#w svg').length};
}"""


def test_notebook_widget_redraws_from_new_data(browser):
    import base64

    widgets = pytest.importorskip("costmodel.widgets")
    from costmodel.vegawidget import vega_widget_class

    cls = vega_widget_class()
    if cls is None:
        pytest.skip("anywidget is not installed: the explorer falls back to redrawing charts in an Output")
    from costmodel import chartdata, charts

    chart = widgets.LiveChart(lambda s: charts.cost_vs_cpus_chart(s["cost"]), ("cost",))
    chart.rebuild()
    spec = dict(chart.widget.spec, usermeta={"embedOptions": {"renderer": "svg"}})

    def encoded(values):
        payload = chart.update({"cost": chartdata.cost_vs_cpus_data(values)})
        return {n: {"n": p["n"], "columns": {c: dict(col, buffer=base64.b64encode(bytes(col["buffer"])).decode())
                                             for c, col in p["columns"].items()}} for n, p in payload.items()}

    values = registry.resolve()
    d1, d2 = encoded(values), encoded(dict(values, shootdown_per_cpu_ns=2000.0))
    page = browser.new_page()
    errors, blocked = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route("**/*", lambda r: (blocked.append(r.request.url), r.abort()))
    try:
        page.set_content("<html><body><div id='w'></div></body></html>")
        out = page.evaluate(_WIDGET_DRIVER, [cls._esm, spec, d1, d2])
    finally:
        page.close()
    assert errors == [] and blocked == []
    assert out["svgs"] == 1 and out["before"] > 1000 and out["changed"]


# ---- sliders that a rule between parameters ties together ----------------------------------------

_P_ROWS = """() => {
  const v = window.costmodelViews.explore;
  let best = null;
  for (const name of Object.keys(v.getState({data: () => true, signals: () => false}).data)) {
    let d; try { d = v.data(name); } catch (e) { continue; }
    if (d && d.length && 'p_copy' in d[0] && 'policy' in d[0] && !('part_ns' in d[0])
        && (!best || d.length > best.length)) best = d;
  }
  return best && best.map(r => [r.remote_cpus, r.policy, r.p_copy, r.p_unnecessary_copy]);
}"""


def _move(page, name: str, value) -> None:
    """Move the slider of parameter ``name`` (its input sits in the controls, ``#ctl-<name>``)."""
    slider = page.locator(f"#ctl-{name} input[type=range]")
    assert slider.count() == 1, name
    slider.evaluate("(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); }", str(value))
    page.evaluate("() => window.costmodelViews.explore.runAsync().then(() => true)")


def test_batch_position_slider_past_batch_size(tmp_path, browser):
    """With position_model=fixed, batch_position and batch_size are two sliders; moving the
    position past the batch must not show a probability outside [0, 1]."""
    values = registry.resolve({"position_model": "fixed", "batch_position": 4, "p_same_cpu": 0.1})
    out = tmp_path / "fixed.html"
    write_report(values, out, simulate_points=0)
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(out.resolve().as_uri())
        page.evaluate("window.costmodelReady")
        _move(page, "batch_size", 15)
        _move(page, "batch_position", 20)
        view = "window.costmodelViews.explore"
        assert page.evaluate(f"{view}.signal('batch_position__raw')") == 20
        assert page.evaluate(f"{view}.signal('batch_position')") == 14  # what the formulas read
        rows = page.evaluate(_P_ROWS)
    finally:
        page.close()
    assert errors == []
    assert rows and len(rows) == 256 * len(POLICIES)
    bad = [r for r in rows if not (0 <= r[2] <= 1 and 0 <= r[3] <= 1)]
    assert bad == []
    got = {(int(r), p): pc for r, p, pc, _ in rows}
    moved = dict(values, batch_size=15, batch_position=14)
    for r in (1, 64):
        direct = evaluate_point(registry.resolve(dict(moved, remote_cpus=r, cpus=max(values["cpus"], r + 1))))
        for p, o in direct.items():
            assert got[(r, p)] == pytest.approx(o["p_copy"], rel=1e-9, abs=1e-12)


# ---- what a reader sees: layout, lines told apart, readouts, choices, the map's two resolutions ----


@pytest.mark.parametrize("width", [1024, 1400])
def test_no_horizontal_overflow(report_url, browser, width):
    """Nothing is wider than the window: the page does not scroll sideways, and no table or
    chart is cut (none needs its own horizontal scroll bar)."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:", "blob:")) else r.abort())
    try:
        page.goto(report_url)
        page.evaluate("window.costmodelReady")
        scroll, inner = page.evaluate("[document.scrollingElement.scrollWidth, window.innerWidth]")
        assert scroll <= inner, (width, scroll, inner)
        cut = page.evaluate("""() => Array.from(document.querySelectorAll('div.table, div.chart'))
            .filter(d => d.scrollWidth > d.clientWidth + 1)
            .map(d => (d.id || d.querySelector('caption')?.textContent || '?').slice(0, 60) + ' ' + d.scrollWidth + '>' + d.clientWidth)""")
        assert cut == []
    finally:
        page.close()


_LINES = """() => {
  const out = {};
  const walk = (node) => {
    if (!node) return;
    if (node.marktype === 'line') {
      for (const item of node.items || []) {
        const d = item.datum;
        if (d && d.policy !== undefined && d.remote_cpus !== undefined && !(d.policy in out))
          out[d.policy] = {dash: JSON.stringify(item.strokeDash || null), stroke: item.stroke};
      }
    }
    for (const item of node.items || []) if (item.items) for (const m of item.items) walk(m);
  };
  walk(window.costmodelViews.explore.scenegraph().root);
  return out;
}"""


def test_overlapping_policy_lines_are_told_apart(page_state):
    """drain_local lies on drain_local_always where the local drain is nearly free: each policy's
    line has its own dash pattern (generated, so every policy gets one)."""
    page, _ = page_state
    lines = page.evaluate(_LINES)
    from costmodel.model import POLICIES

    assert set(lines) == set(POLICIES)
    assert lines["drain_local"]["dash"] != lines["drain_local_always"]["dash"]
    assert len({v["dash"] for v in lines.values()}) == len(POLICIES)


def _readout(page, name: str) -> str:
    return page.evaluate(f"document.getElementById('val-{name}').textContent")


def test_each_slider_shows_its_value_in_its_unit(page_state, point):
    page, _ = page_state
    assert _readout(page, "cpus") == f"{point[0]['cpus']} CPUs"
    assert _readout(page, "p_same_cpu") == f"{point[0]['p_same_cpu']:g}"
    before = page.locator("#ctl-remote_drain_ns input[type=range]").input_value()
    _move(page, "remote_drain_ns", 4.5)  # log10 of 31,622.8 ns
    try:
        assert _readout(page, "remote_drain_ns") == "31.62 \u00b5s"
        _move(page, "remote_drain_ns", 7.3)  # 19,952,623 ns
        assert _readout(page, "remote_drain_ns") == "19.95 ms"
        _move(page, "remote_drain_ns", 2.0)
        assert _readout(page, "remote_drain_ns") == "100 ns"
    finally:
        _move(page, "remote_drain_ns", before)
    # the log10 a range input holds is not what a reader reads
    assert "4.5" not in page.evaluate("document.getElementById('controls').innerText")


def _select(page, name: str, value: str) -> None:
    sel = page.locator(f"#ctl-{name} select")
    assert sel.count() == 1, name
    sel.select_option(value)
    page.evaluate("() => window.costmodelViews.explore.runAsync().then(() => true)")


@pytest.mark.parametrize("choice", [{"shootdown_model": "log2"}, {"shootdown_model": "broadcast"},
                                    {"gap_model": "fixed_count"}, {"position_model": "fixed"},
                                    {"gap_model": "fixed_count", "position_model": "fixed"}])
def test_selects_switch_the_formulas(page_state, point, choice):
    """A select changes which of the model's expressions the page computes: the costs are the
    package's for that choice."""
    page, _ = page_state
    values = point[0]
    try:
        for k, v in choice.items():
            _select(page, k, v)
        got = _costs(page)
        for r in (1, 7, 64):
            direct = evaluate_point(registry.resolve(dict(values, **choice, remote_cpus=r,
                                                          cpus=max(values["cpus"], r + 1))))
            for p, out in direct.items():
                assert got[(r, p)] == pytest.approx(out["expected_ns"], rel=1e-9), (choice, r, p)
    finally:
        for k in choice:
            _select(page, k, values[k])
    got = _costs(page)
    direct = evaluate_point(registry.resolve(dict(values, remote_cpus=7, cpus=max(values["cpus"], 8))))
    assert got[(7, "drain_local")] == pytest.approx(direct["drain_local"]["expected_ns"], rel=1e-9)


def test_a_choice_the_browser_cannot_follow_is_said(page_state, point):
    """With the fixed-time gap the residency needs the incomplete gamma function: the page says
    which sliders then do not move that part, and only while that choice is selected."""
    page, _ = page_state
    warned = "() => Array.from(document.querySelectorAll('p.warn')).filter(p => !p.hidden).map(p => p.textContent)"
    if point[0]["gap_model"] != "fixed_time":
        assert not any("fixed_time" in t for t in page.evaluate(warned))
    try:
        _select(page, "gap_model", "fixed_time")
        shown = [t for t in page.evaluate(warned) if "gap_model = fixed_time" in t]
        assert shown and "batch_adds_per_s" in shown[0]
        # adds_between does not enter with a time gap: its control is dimmed
        assert "idle" in page.evaluate("document.getElementById('row-adds_between').className")
    finally:
        _select(page, "gap_model", point[0]["gap_model"])


_CELLS = """() => {
  const v = window.costmodelViews.explore;
  let best = null;
  for (const name of Object.keys(v.getState({data: () => true, signals: () => false}).data)) {
    let d; try { d = v.data(name); } catch (e) { continue; }
    if (d && d.length && 'cheapest' in d[0] && 'margin_pct' in d[0] && (!best || d.length > best.length)) best = d;
  }
  return best && best.map(r => [r.remote_cpus, r.wp_gap_s, r.cheapest, r.cheapest_ns]);
}"""


def test_map_is_coarse_while_dragging_and_the_models_after(page_state, point):
    """While a slider moves the page draws the map at live.DRAG_MAP_N a side; at rest at the
    report's full resolution. Both are the package's decision map at those grid points."""
    from costmodel import axes, chartdata, live
    from costmodel.report import REPORT_MAP_N

    page, _ = page_state
    values = point[0]
    x, y = chartdata.default_map_axes(values)
    view = "window.costmodelViews.explore"
    for detail, n in ((False, live.DRAG_MAP_N), (True, REPORT_MAP_N)):
        page.evaluate(f"() => {view}.signal('map_detail', {str(detail).lower()}).runAsync().then(() => true)")
        cells = page.evaluate(_CELLS)
        xv, yv = axes.axis_values(x, n), axes.axis_values(y, n)
        assert len(cells) == len(xv) * len(yv)
        dm = chartdata.decision_map_data(values, x, y, x_values=xv, y_values=yv)
        want = {(int(r[x]), round(float(r[y]), 15)): (str(r["cheapest"]), float(r["cheapest_ns"]))
                for r in dm.cells.to_dict("records")}
        for cx, cy, cheapest, ns in cells[:: max(1, len(cells) // 400)]:
            w = want[(int(cx), round(float(cy), 15))]
            assert ns == pytest.approx(w[1], rel=1e-9)
            assert cheapest == w[0] or ns == pytest.approx(w[1], rel=1e-12)
    # a slider's input event puts the map in drag mode; it returns to full a moment later
    page.locator("#ctl-p_same_cpu input[type=range]").evaluate(
        "(el) => { el.dispatchEvent(new Event('input', {bubbles: true})); }")
    assert page.evaluate(f"{view}.signal('map_detail')") is False
    page.wait_for_function(f"{view}.signal('map_detail') === true", timeout=5000)
