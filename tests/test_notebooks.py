"""The notebooks run top to bottom from a clean checkout, on this interpreter's kernel, and are
stored without outputs; a copy converted to HTML and opened without a network draws every chart
and reads every equation; what they show is readable (whole tables, whole numbers as integers,
slider readouts equal to the model's values)."""

from __future__ import annotations

import html
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sympy as sp

from costmodel import chartdata, charts, notebook, presets, registry
from helpers import chromium, chromium_missing

pytestmark = pytest.mark.notebook

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: each notebook should finish well inside this on a 2-core machine
BUDGET_S = 60
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


@pytest.fixture(scope="module")
def defaults():
    return registry.resolve()


def _kernel_name() -> str:
    """The kernel of the interpreter running the tests (jupyter_client maps 'python3' to
    sys.executable when the kernelspec says plain 'python'); fail loudly if there is none."""
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().find_kernel_specs()
    if "python3" not in specs:
        pytest.fail("no python3 kernel: pip install ipykernel in this environment")
    return "python3"


_EXECUTED: dict[Path, tuple] = {}


def executed(path: Path):
    """The notebook run once per test session (a cell printing sys.prefix appended): the
    executed notebook, with the widget state nbclient stores, and the seconds it took."""
    if path not in _EXECUTED:
        nb = nbformat.read(path, as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.prefix)"))
        client = nbclient.NotebookClient(nb, kernel_name=_kernel_name(), timeout=180,
                                         resources={"metadata": {"path": str(path.parent)}})
        started = time.perf_counter()
        client.execute()
        _EXECUTED[path] = (nb, time.perf_counter() - started)
    return _EXECUTED[path]


def test_all_three_are_there():
    assert {p.name for p in NOTEBOOKS} == {"explorer.ipynb", "calibration.ipynb", "validation.ipynb",
                                          "your_workload.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} holds outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_executes(path):
    nb, elapsed = executed(path)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    assert nb.cells[-1].outputs[0]["text"].strip() == sys.prefix  # ran on this environment's interpreter
    assert elapsed < BUDGET_S * 1.5, f"{path.name} took {elapsed:.0f} s"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_result_is_a_raw_dict_or_list(path):
    """Results are tables or sentences, never a Python dict or list printed as it is."""
    nb, _ = executed(path)
    for cell in nb.cells:
        for o in getattr(cell, "outputs", []):
            if o.output_type == "execute_result" and set(o.data) == {"text/plain"}:
                text = o.data["text/plain"].lstrip()
                assert not text.startswith(("{", "[")), f"{path.name}: raw result {text[:60]!r}"


# ---- the static copy: every chart drawn, equations readable, offline ------------------------------


def _charts_in(output, widget_state: dict) -> int:
    """Charts an output holds: a Vega-Lite bundle, or the chart widgets (a model with a Vega-Lite
    spec) under a widget view, found by walking the widget tree's model references."""
    data = output.get("data", {})
    if any(k.startswith("application/vnd.vegalite") for k in data):
        return 1
    if WIDGET_VIEW not in data:
        return 0
    seen, stack, n = set(), [data[WIDGET_VIEW]["model_id"]], 0
    while stack:
        mid = stack.pop()
        if mid in seen or mid not in widget_state:
            continue
        seen.add(mid)
        state = widget_state[mid]["state"]
        n += isinstance(state.get("spec"), dict) and "$schema" in state["spec"]

        def refs(v):
            if isinstance(v, str) and v.startswith("IPY_MODEL_"):
                yield v[len("IPY_MODEL_"):]
            elif isinstance(v, (list, tuple)):
                for x in v:
                    yield from refs(x)
            elif isinstance(v, dict):
                for x in v.values():
                    yield from refs(x)

        stack.extend(refs(state))
    return n


def chart_cells(nb) -> dict[str, int]:
    """cell id -> number of charts its outputs hold."""
    state = nb.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    out = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            n = sum(_charts_in(o, state) for o in cell.outputs)
            if n:
                out[cell.id] = n
    return out


@pytest.fixture(scope="module")
def browser():
    reason = chromium_missing()
    if reason:
        pytest.skip(reason)
    yield from chromium()


def _offline_page(browser, html_path: Path):
    """The page opened with every request off this file blocked (no network, as on a plane)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    blocked = []

    def route(r):
        if r.request.url.startswith(("file:", "data:", "blob:")):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(html_path.as_uri())
    page.wait_for_load_state("load")
    return page, blocked


#: JavaScript: images and SVGs drawn and visible in a cell's outputs (a broken image, a hidden
#: one or an empty SVG does not count)
_DRAWN = """(cell) => {
  const out = cell.querySelector('.jp-Cell-outputWrapper') || cell;
  const visible = e => { const r = e.getBoundingClientRect(); return e.offsetParent !== null && r.width > 20 && r.height > 20; };
  const imgs = [...out.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth > 20 && visible(i));
  const svgs = [...out.querySelectorAll('svg')].filter(s => visible(s) && s.querySelector('path, rect, line, text'));
  return imgs.length + svgs.length;
}"""


@pytest.fixture(scope="module")
def static_copies(tmp_path_factory):
    """Each notebook executed and converted to HTML as `make notebooks` (`jupyter nbconvert
    --config jupyter_nbconvert_config.py --to html`) does."""
    out = {}
    folder = tmp_path_factory.mktemp("static")
    for path in NOTEBOOKS:
        nb, _ = executed(path)
        body, _ = notebook.html_exporter().from_notebook_node(nb)
        target = folder / f"{path.stem}.html"
        target.write_text(body, encoding="utf-8")
        out[path.stem] = (nb, target)
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_static_copy_draws_every_chart_offline(path, static_copies, browser):
    nb, html_path = static_copies[path.stem]
    cells = chart_cells(nb)
    assert cells, f"{path.name} shows no chart"
    page, _blocked = _offline_page(browser, html_path)
    try:
        for cell_id, n in cells.items():
            cell = page.locator(f'[id="cell-id={cell_id}"]')
            assert cell.count() == 1, cell_id
            drawn = cell.evaluate(_DRAWN)
            source = next(c.source for c in nb.cells if c.get("id") == cell_id)
            assert drawn >= n, f"{path.name}: {drawn} drawn images for {n} charts in the cell\n{source}"
    finally:
        page.close()


def test_static_images_give_way_to_live_charts(static_copies, browser):
    """Where a live chart drew in a cell (vega-embed's element), its static copy is hidden, so a
    reader of the running notebook sees each chart once."""
    nb, html_path = static_copies["explorer"]
    cell_id = next(iter(chart_cells(nb)))
    page, _ = _offline_page(browser, html_path)
    try:
        cell = page.locator(f'[id="cell-id={cell_id}"]')
        assert cell.evaluate(_DRAWN) > 0
        cell.evaluate("c => { const d = document.createElement('div'); d.className = 'vega-embed';"
                      " c.querySelector('.jp-Cell-outputWrapper').appendChild(d); }")
        assert cell.evaluate(_DRAWN) == 0
    finally:
        page.close()


def test_static_copy_reads_the_equations(static_copies, browser):
    """Without MathJax (fetched from the network) the explorer's equations are typeset MathML,
    the ones a person reads (no compiled helpers), with their plain text and TeX folded away."""
    nb, html_path = static_copies["explorer"]
    page, _ = _offline_page(browser, html_path)
    try:
        box = page.locator(".costmodel-equations").first
        plain = "\n".join(box.locator("pre").all_text_contents())
        maths = " ".join(box.locator("math").all_text_contents())
        shown = box.inner_text()
    finally:
        page.close()
    for expected in ("λ' = λ⋅(1 - p_La)", "δ = p_La⋅λ + μ + ν", "P(copy) =", "R ="):
        assert expected in plain
    for expected in ("λ", "δ", "P(copy)"):
        assert expected in maths
    text = maths + shown
    for detail in ("expm1", "log1p", "clamp", "$$", "\\frac", "10^{-280}"):
        assert detail not in text


# ---- what the notebooks show, readable ---------------------------------------------------------


def _html_of(nb) -> str:
    return "\n".join(o.get("data", {}).get("text/html", "") for c in nb.cells if c.cell_type == "code"
                     for o in c.outputs)


def test_explorer_shows_the_workload_table_whole():
    nb, _ = executed(ROOT / "notebooks" / "explorer.ipynb")
    shown = _html_of(nb)
    for p in presets.WORKLOAD_PRESETS.values():
        assert html.escape(p.source) in shown, p.name


def test_validation_lists_misses_only_when_there_are_some():
    from costmodel import validate

    nb, _ = executed(ROOT / "notebooks" / "validation.ipynb")
    values, _, _ = presets.default_values()
    every = validate.model_vs_simulation(values, faults=200_000)   # the notebook's own call, same seed
    agreement = validate.simulation_agreement(every)
    listed = "outputs whose simulated interval misses the model" in _html_of(nb)
    assert listed == (agreement["model_inside_interval"] < agreement["outputs"])


def test_simulation_outside_ignores_outputs_the_simulation_does_not_estimate():
    every = pd.DataFrame({"policy": ["a", "b", "c", "d"], "output": ["x"] * 4, "model": [0.0, 1.0, 2.0, 3.0],
                          "sim": [np.nan, 1.0, 2.5, 3.0], "low": [np.nan, 0.9, 2.4, 2.9],
                          "high": [np.nan, 1.1, 2.6, 3.1], "inside": [False, True, False, True]})
    outside = notebook.simulation_outside(every)
    assert list(outside["policy"]) == ["c"]


@pytest.mark.parametrize("x, text", [(0, "0"), (3, "3"), (3.0, "3"), (200000.0, "200,000"), (0.5, "0.5"),
                                     (1e-7, "10⁻⁷"), (2.5e-4, "2.5×10⁻⁴"), (7815.6, "7,816"), (0.9677419, "0.9677"),
                                     (-0.5, "-0.5"), (1e9, "1,000,000,000"), (float("nan"), "-"), (None, "-")])
def test_numbers_read_as_written(x, text):
    assert notebook.format_number(x) == text


def test_tables_show_every_row_and_all_text():
    long_text = "word " * 80
    frame = pd.DataFrame({"n": np.arange(150, dtype=float), "text": [long_text] * 150})
    shown = notebook.table(frame)._repr_html_()
    assert shown.count("<tr>") == 151 and shown.count(html.escape(long_text)) == 150
    assert ">149<" in shown and "149.0" not in shown


def test_facts_reads_a_summary():
    shown = notebook.facts({"points": 15, "max_abs_difference": 0.00212})._repr_html_()
    assert "max abs difference" in shown and ">15<" in shown and ">0.00212<" in shown


# ---- the explorer's controls and equations -------------------------------------------------------


@pytest.fixture()
def panel():
    widgets = pytest.importorskip("costmodel.widgets")
    return widgets.ParameterPanel()


def test_every_readout_equals_the_model_value(panel):
    widgets = pytest.importorskip("costmodel.widgets")
    for name, ctrl in panel.controls.items():
        entry = registry.PARAMS[name]
        if isinstance(entry, registry.Categorical):
            continue
        s = ctrl.slider
        for pos in (s.min, s.max, s.min + (s.max - s.min) * 0.37, s.min + (s.max - s.min) * 0.5):
            s.value = pos
            got = ctrl.get()
            assert ctrl.readout.value == widgets.format_value(entry, got), name
            assert registry.parse_value(name, ctrl.readout.value) == pytest.approx(got, rel=1e-5), name
            if entry.integer:
                assert "." not in ctrl.readout.value and "e" not in ctrl.readout.value, (name, ctrl.readout.value)


def test_integer_and_zero_readouts(panel):
    panel.set_values(dict(registry.resolve(), remote_cpus=3))
    assert panel.controls["remote_cpus"].readout.value == "3"
    adds = panel.controls["adds_between"]
    adds.slider.value = adds.slider.min  # the log slider's leftmost step means 0
    assert adds.get() == 0 and adds.readout.value == "0"


def test_a_typed_value_is_the_model_value(panel):
    seen = []
    panel.observe(lambda p: seen.append(p.values()["p_same_cpu"]))
    box = panel.controls["p_same_cpu"].readout
    box.value = "0.123"
    assert panel.values()["p_same_cpu"] == 0.123 and seen[-1] == 0.123 and box.value == "0.123"
    for bad in ("nonsense", "2"):  # not a number; outside the probability's bounds
        box.value = bad
        assert box.value == "0.123" and panel.values()["p_same_cpu"] == 0.123
    cpus = panel.controls["remote_cpus"].readout
    cpus.value = "5"
    assert panel.values()["remote_cpus"] == 5 and cpus.value == "5"


def test_explorer_residency_draws_its_simulation_points(defaults):
    widgets = pytest.importorskip("costmodel.widgets")
    ex = widgets.Explorer(map_n=10, residency_points=5, simulated_points=3, simulated_faults=4000)
    sent = widgets.decode_payload(ex.residency_chart.payload["residency"])
    sim = sent[sent["source"] == "simulation"]
    assert set(sim["gap_model"]) == set(registry.CATEGORICAL["gap_model"].choices)
    assert (sim["ci_low"] <= sim["residency"]).all() and (sim["residency"] <= sim["ci_high"]).all()
    quiet = widgets.Explorer(map_n=10, residency_points=5, simulated_points=0)
    sent = widgets.decode_payload(quiet.residency_chart.payload["residency"])
    assert (sent["source"] == "closed form").all()


def test_residency_chart_follows_every_parameter_of_the_batch():
    widgets = pytest.importorskip("costmodel.widgets")
    inputs = widgets.residency_inputs()
    assert {"batch_size", "batch_adds_per_s", "p_large_add", "position_model"} <= set(inputs)
    assert "wp_gap_s" not in inputs and "adds_between" not in inputs  # the chart's own axes
    ex = widgets.Explorer(map_n=10, residency_points=5, simulated_points=0)
    before = widgets.decode_payload(ex.residency_chart.payload["residency"])["residency"].to_numpy()
    ex.panel.controls["p_large_add"].set(0.5, notify=True)
    after = widgets.decode_payload(ex.residency_chart.payload["residency"])["residency"].to_numpy()
    assert not np.allclose(before, after)


def test_explorer_static_copy_holds_its_charts_and_equations():
    widgets = pytest.importorskip("costmodel.widgets")
    pytest.importorskip("vl_convert")
    ex = widgets.Explorer(map_n=10, residency_points=5, simulated_points=2, simulated_faults=2000)
    shown = ex.static_html()
    assert shown.count('<img src="data:image/png;base64,') == len(ex.static_charts()) == 4
    assert notebook.STATIC_CLASS in shown and notebook.HIDE_RULE in shown
    assert "costmodel-equations" in shown and "expm1" not in shown


# ---- the equations a person reads ----------------------------------------------------------------

COMBOS = [(g, pos, sd) for g in registry.CATEGORICAL["gap_model"].choices
          for pos in registry.CATEGORICAL["position_model"].choices
          for sd in registry.CATEGORICAL["shootdown_model"].choices]


@pytest.mark.parametrize("combo", COMBOS, ids=lambda c: "-".join(c))
def test_equations_hold_no_implementation_details(combo):
    from costmodel import readable

    eqs = readable.equations(*combo)
    assert readable.unplaced(eqs) == []
    for e in eqs:
        for detail in ("expm1", "log1p", "clamp", "Clamp", "PoissonBelow", "10^{-280}", "e-06"):
            assert detail not in e.latex and detail not in e.text, (e.label, detail)


def _evaluate_equations(eqs, values):
    """Every equation's value at ``values``, in order, each from the ones before it (π and r as
    the functions their own equations define)."""
    from costmodel import readable

    known = {readable.display_symbol(n): v for n, v in values.items() if n in registry.NUMERIC}
    funcs = {}
    out = {}
    for e in eqs:
        rhs = e.rhs
        for f, (arg, body) in funcs.items():
            rhs = rhs.replace(f, lambda x, arg=arg, body=body: body.subs(arg, x))
        rhs = rhs.subs(known)
        if isinstance(e.lhs, sp.Symbol):
            # Q(n, x) = P(Poisson(x) < n), the regularized upper incomplete gamma (0 for n <= 0)
            rhs = rhs.doit().replace(readable.Q, lambda n, x: sp.uppergamma(n, x) / sp.gamma(n) if n > 0 else sp.S.Zero)
            v = float(sp.N(rhs))
            known[e.lhs] = v
            out[e.label] = v
        else:
            funcs[e.lhs.func] = (e.lhs.args[0], rhs)
    return out


POINTS = [
    {},
    {"gap_model": "fixed_count", "adds_between": 7},
    {"gap_model": "fixed_time", "wp_gap_s": 3e-5, "p_large_add": 0.2},
    {"gap_model": "exponential_time", "position_model": "fixed", "batch_position": 5, "wp_gap_s": 4e-5},
    {"gap_model": "fixed_count", "adds_between": 3, "position_model": "fixed", "batch_position": 9},
    {"explicit_drains_per_s": 2e4, "drain_all_per_s": 50.0, "p_same_cpu": 0.2, "p_other_ref": 0.05},
]


@pytest.mark.parametrize("overrides", POINTS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "defaults")
def test_equations_give_the_models_numbers(overrides):
    """The readable equations, evaluated one after another, give the model's residency, mean
    fill and copy probabilities at the same point: they are the model, only written for reading."""
    from costmodel import readable
    from costmodel.evaluate import evaluate_point, residency_value
    from costmodel.model import expected_occupancy

    values = registry.resolve(dict(overrides, batch_size=12))
    eqs = readable.equations(values["gap_model"], values["position_model"], values["shootdown_model"])
    got = _evaluate_equations(eqs, values)
    R = next(v for k, v in got.items() if k.startswith("residency:"))
    assert R == pytest.approx(residency_value(values), rel=1e-9, abs=1e-12)
    subs = {e.symbol: values[n] for n, e in registry.NUMERIC.items()}
    fill = float(sp.N(expected_occupancy().subs(subs)))
    assert got["mean fill of a batch (what a local drain moves)"] == pytest.approx(fill, rel=1e-9, abs=1e-12)
    model = evaluate_point(values, ["drain_local"])["drain_local"]
    assert got["P(copy), drain_local"] == pytest.approx(model["p_copy"], rel=1e-9, abs=1e-12)
    assert got["P(unnecessary copy), drain_local"] == pytest.approx(model["p_unnecessary_copy"], rel=1e-9, abs=1e-12)


def test_explorer_equations_panel_is_readable_maths(defaults):
    from costmodel import readable

    widgets = pytest.importorskip("costmodel.widgets")
    shown = widgets.equations_html(defaults)
    eqs = readable.equations(defaults["gap_model"], defaults["position_model"], defaults["shootdown_model"])
    assert shown.count("$$") == 2 * len(eqs)
    assert "overflow-x:auto" in shown  # a long equation scrolls in its box instead of being cut off
    assert "expm" not in shown and "log1p" not in shown and "clamp" not in shown


# ---- statements derived from the data ------------------------------------------------------------


def _swap_rows(copied_unshared: float = 0.0) -> pd.DataFrame:
    rows = []
    for sharing, path, faulted, copied in (("exclusive", "direct", 0.0, 0.0), ("forked", "readahead", 1.0, copied_unshared),
                                           ("child_alive", "direct", 1.0, 1.0)):
        rows.append({"probe": "swap_cow", "sharing": sharing, "swap_path": path, "faulted": faulted,
                     "copied": copied, "copied_n": 100})
    rows.append({"probe": "workload", "sharing": None, "swap_path": None, "faulted": None, "copied": 1.0,
                 "copied_n": 100})
    return pd.DataFrame(rows)


def test_swap_answer_counts_what_was_measured():
    summary = {"kernel_release": "6.18.0", "loop_ratios": []}
    none = notebook.swap_answer(_swap_rows(0.0), summary)
    assert "3 swap_cow configurations" in none and "1 took no WP fault" in none
    assert "0 of 200 writes" in none and "no unnecessary copy" in none
    some = notebook.swap_answer(_swap_rows(0.25), summary)
    assert "25 of 200 writes" in some and "unnecessary copies do happen" in some
    assert notebook.swap_answer(_swap_rows().query("probe == 'workload'"), summary) == ""


def test_swap_answer_of_the_committed_measurements():
    values, paramset, _ = presets.default_values()
    whole = notebook.whole_workloads(paramset)
    if isinstance(whole, str):
        pytest.skip(whole)
    rows, summary = whole
    sw = rows[rows["probe"] == "swap_cow"]
    if sw.empty:
        pytest.skip("the default set's measurements have no swap_cow rows")
    answer = notebook.swap_answer(rows, summary)
    assert f"{int((sw['faulted'] == 0).sum())} took no WP fault" in answer
    assert f"{int((sw['copied'] > 0).sum())} copied" in answer


def test_calibrated_sets_are_the_measured_machines():
    sets = presets.parameter_sets()
    machines = notebook.calibrated(sets)
    assert all(n.startswith("params/") for n in machines)
    assert set(sets) - set(machines) == {n for n in sets if not n.startswith("params/")}


def test_sets_table_keeps_every_value_and_zero():
    from costmodel.paramfile import committed_sets

    names = list(committed_sets())
    if len(names) < 2:
        pytest.skip("fewer than two parameter sets are committed")
    table = notebook.sets_table(names)
    sets = presets.parameter_sets()
    machine = [n for n, e in registry.PARAMS.items() if e.kind == registry.MACHINE]
    assert set(table["parameter"]) == {n for n in machine if any(n in sets[s].parameters for s in names)}
    for r in table.itertuples(index=False):
        for i, name in enumerate(names):
            e = sets[name].parameters.get(r.parameter)
            cell = r[2 + i]
            if e is not None and not isinstance(e.value, str):
                assert cell.startswith(notebook.format_number(e.value)), (r.parameter, name, cell)


def test_probe_chart_tells_the_sources_apart():
    from costmodel import validate

    values = registry.resolve()
    probe = validate.unnecessary_copy_validation(values, adds_between=[0, 10], faults=2000)
    measured = probe.assign(measured=probe["model"], measured_low=probe["model"] - 0.01,
                            measured_high=probe["model"] + 0.01)
    long = chartdata.probe_chart_data(measured, "drain_local", kernel="some-set")
    assert set(long["source"]) == {"model", "simulation", "kernel"}
    spec = charts.probe_chart(long).to_dict()
    encodings = [layer["encoding"] for layer in spec["spec"]["layer"]]
    color = next(e["color"] for e in encodings if "color" in e and "legend" in e["color"])
    assert color["legend"] is not None and len(set(color["scale"]["range"])) == 3
    shapes = next(e["shape"] for e in encodings if "shape" in e)
    assert len(set(shapes["scale"]["range"])) == 3
    vlc = pytest.importorskip("vl_convert")
    from costmodel.charts import VL_VERSION

    svg = vlc.vegalite_to_svg(spec, vl_version=VL_VERSION)
    for label in long["label"].unique():
        assert html.escape(label) in svg  # the legend names each source


def test_explorer_never_freezes_after_an_inconsistent_value():
    """typing remote_cpus 16 with cpus 8 froze every chart for good (each later
    change failed the same check). The explorer draws with cpus raised to remote_cpus + 1, as
    the report does, and says so; a later change of another parameter is drawn. A value no such
    rule can repair greys the charts with the reason, and they come back once it is fixed."""
    widgets = pytest.importorskip("costmodel.widgets")

    ex = widgets.Explorer(registry.resolve({"cpus": 8, "remote_cpus": 3}), map_n=8, residency_points=5,
                          simulated_points=0)
    ex.panel.controls["remote_cpus"].readout.value = "16"
    assert "cpus = 17" in ex.status.value and "raised from 8" in ex.status.value
    assert widgets.STALE_CLASS not in ex.charts_box._dom_classes
    ex.panel.controls["p_same_cpu"].readout.value = "0.9"
    want = chartdata.cost_vs_cpus_data(registry.resolve(dict(ex.panel.raw_values(), cpus=17)))
    sent = widgets.decode_payload(ex.cost_chart.payload["cost"])
    assert ex.panel.raw_values()["p_same_cpu"] == 0.9 and ex.panel.raw_values()["cpus"] == 8  # the control kept
    assert np.allclose(sent["expected_ns"].to_numpy(), want["expected_ns"].to_numpy())
    # a rule raising cpus cannot repair: greyed, with the reason; fixed: drawn again
    ex.panel.controls["p_holder_busy"].readout.value = "0.7"
    ex.panel.controls["p_holder_rt"].readout.value = "0.5"
    assert widgets.STALE_CLASS in ex.charts_box._dom_classes and "must be at most 1" in ex.status.value
    assert "greyed" in ex.status.value
    ex.panel.controls["p_holder_rt"].readout.value = "0.2"
    assert widgets.STALE_CLASS not in ex.charts_box._dom_classes and "cheapest along" in ex.status.value


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_static_copy_asks_nothing_of_a_network(path, static_copies, browser):
    """the static copies loaded require.js and MathJax from a CDN (three console
    errors offline, equations as ASCII). Opened with the network blocked, a copy asks for nothing
    outside the file and logs no error; the explorer's equations are typeset MathML."""
    _nb, html_path = static_copies[path.stem]
    text = html_path.read_text(encoding="utf-8")
    assert "require.min.js" not in text and "MathJax.Hub" not in text
    page = browser.new_page()
    errors, blocked = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        if r.request.url.startswith(("file:", "data:", "blob:")):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    try:
        page.goto(html_path.as_uri())
        page.wait_for_load_state("load")
        page.wait_for_timeout(300)
        assert not blocked, blocked[:3]
        assert not errors, errors[:3]
        if path.stem == "explorer":
            math = page.locator(".costmodel-equations math")
            assert math.count() >= 5
            box = math.first.bounding_box()
            assert box and box["height"] > 10  # drawn as maths, not collapsed text
    finally:
        page.close()


def test_nbconvert_config_uses_the_offline_template():
    """The config `make notebooks` hands nbconvert selects the same template."""
    from traitlets.config import Config

    c = Config()
    exec(compile((Path(__file__).resolve().parent.parent / "jupyter_nbconvert_config.py").read_text(),
                 "jupyter_nbconvert_config.py", "exec"), {"c": c})
    assert c.HTMLExporter.template_name == notebook.OFFLINE_TEMPLATE
