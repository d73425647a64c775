"""The report in a real browser (headless Chromium through Playwright): every chart draws, nothing
is fetched, no console error, and a slider recomputes the model in the page."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing (make test installs Debian's chromium as root)", allow_module_level=True)
try:
    from playwright.sync_api import sync_playwright
except ImportError:
    pytest.skip("playwright is not installed (pip install 'costmodel[test]')", allow_module_level=True)
pytest.importorskip("vl_convert")

from costmodel import registry  # noqa: E402
from costmodel.evaluate import evaluate_point  # noqa: E402
from costmodel.report import write_report  # noqa: E402

#: JavaScript: the live cost rows (remote_cpus, policy, expected_ns) from the page's Vega view
_COST_ROWS = """() => {
  const v = window.costmodelViews.explore;
  for (const name of Object.keys(v.getState({data: () => true, signals: () => false}).data)) {
    let d; try { d = v.data(name); } catch (e) { continue; }
    if (d && d.length && 'expected_ns' in d[0] && 'policy' in d[0] && 'remote_cpus' in d[0] && !('part_ns' in d[0]))
      return d.map(r => [r.remote_cpus, r.policy, r.expected_ns]);
  }
  return null;
}"""


@pytest.fixture(scope="module")
def report_url(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser") / "report.html"
    write_report(registry.resolve(), out, simulate_points=2)
    return out.resolve().as_uri()


@pytest.fixture(scope="module")
def page_state(report_url):
    """Open the report once; record console messages, page errors and every request."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            state = {"console": [], "errors": [], "requests": [], "blocked": []}
            page.on("console", lambda m: state["console"].append((m.type, m.text)))
            page.on("pageerror", lambda e: state["errors"].append(str(e)))

            def route(r):
                url = r.request.url
                state["requests"].append(url)
                if url.startswith("file:") or url.startswith("data:") or url.startswith("blob:"):
                    r.continue_()
                else:
                    state["blocked"].append(url)
                    r.abort()

            page.route("**/*", route)
            page.goto(report_url)
            page.evaluate("window.costmodelReady")
            yield page, state
        finally:
            browser.close()


def test_no_request_leaves_the_file(page_state):
    _, state = page_state
    assert state["blocked"] == []
    assert all(u.startswith("file:") for u in state["requests"])


def test_every_chart_rendered(page_state):
    page, _ = page_state
    ids = page.evaluate("Array.from(document.querySelectorAll('div.chart')).map(d => d.id)")
    assert set(ids) >= {"explore", "residency"}
    for chart_id in ids:
        info = page.evaluate(f"""() => {{
            const svg = document.querySelector('#{chart_id} svg');
            if (!svg) return null;
            const b = svg.getBoundingClientRect();
            return {{w: b.width, h: b.height, marks: svg.querySelectorAll('path, rect, line, text').length}};
        }}""")
        assert info is not None, f"{chart_id}: no SVG"
        assert info["w"] > 100 and info["h"] > 100 and info["marks"] > 50, (chart_id, info)


def test_no_console_errors(page_state):
    _, state = page_state
    assert state["errors"] == []
    bad = [t for kind, t in state["console"] if kind in ("error", "warning")]
    assert bad == []


def _costs(page) -> dict[tuple[int, str], float]:
    rows = page.evaluate(_COST_ROWS)
    assert rows, "no cost rows in the page"
    return {(int(r), p): v for r, p, v in rows}


def test_page_computes_the_models_numbers(page_state):
    page, _ = page_state
    got = _costs(page)
    values = registry.resolve()
    for r in (1, 7, 64, 256):
        direct = evaluate_point(registry.resolve(dict(values, remote_cpus=r, cpus=max(values["cpus"], r + 1))))
        for p, out in direct.items():
            assert got[(r, p)] == pytest.approx(out["expected_ns"], rel=1e-9)


def test_moving_a_slider_changes_the_chart(page_state):
    page, _ = page_state
    label = "shootdown_per_cpu_ns"
    sel = f"#explore .vega-bind:has(.vega-bind-name:text-is('{label} (ns, log) ')) input[type=range]"
    slider = page.locator(sel)
    assert slider.count() == 1
    before_svg = page.evaluate("document.querySelector('#explore svg').outerHTML")
    before = _costs(page)
    new_pos = float(slider.input_value()) + 0.5  # half a decade up: 400 ns -> ~1265 ns
    slider.evaluate("(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); }",
                    str(new_pos))
    page.evaluate("() => window.costmodelViews.explore.runAsync().then(() => true)")
    after_svg = page.evaluate("document.querySelector('#explore svg').outerHTML")
    after = _costs(page)
    assert after_svg != before_svg
    assert after[(64, "copy_if_referenced")] > before[(64, "copy_if_referenced")]
    # and the new numbers are the model's at the new value
    pos = float(page.evaluate("window.costmodelViews.explore.signal('shootdown_per_cpu_ns__log10')"))
    value = page.evaluate("window.costmodelViews.explore.signal('shootdown_per_cpu_ns')")
    assert value == pytest.approx(10 ** pos, rel=1e-12)
    point = registry.resolve(dict(registry.resolve(), shootdown_per_cpu_ns=value, remote_cpus=64, cpus=65))
    for p, out in evaluate_point(point).items():
        assert after[(64, p)] == pytest.approx(out["expected_ns"], rel=1e-9)
