"""Chart data, the decision map, the widget panel and the sympy-to-Vega printer, each checked
against an independent route to the same numbers."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from costmodel import axes, chartdata, charts, presets, registry, textfmt, uncertainty
from costmodel.evaluate import evaluate_point
from costmodel.model import BREAKDOWN, CANDIDATES, POLICIES
from helpers import copy_price_ns


@pytest.fixture(scope="module")
def defaults():
    return registry.resolve()


# ---- cost against remote_cpus -------------------------------------------------------------------


def test_cost_frame_shape_and_columns(defaults):
    df = chartdata.cost_vs_cpus_data(defaults)
    assert len(df) == 256 * len(POLICIES)
    expected = {"remote_cpus", "cpus", "policy", "expected_ns", "p_copy", "p_unnecessary_copy"}
    expected |= {f"breakdown_{p}_ns" for p in BREAKDOWN}
    assert set(df.columns) == expected
    assert sorted(df["remote_cpus"].unique()) == list(range(1, 257))
    # cpus is raised to remote_cpus + 1 only where the set has fewer
    assert (df["cpus"] == np.maximum(defaults["cpus"], df["remote_cpus"] + 1)).all()


def test_cost_frame_breakdown_adds_up(defaults):
    df = chartdata.cost_vs_cpus_data(defaults)
    parts = df[[f"breakdown_{p}_ns" for p in BREAKDOWN]].sum(axis=1)
    assert np.allclose(parts, df["expected_ns"], rtol=1e-12)


def test_cost_frame_matches_direct_evaluation(defaults):
    df = chartdata.cost_vs_cpus_data(defaults).set_index(["remote_cpus", "policy"])
    for r in (1, 7, 100, 256):
        point = registry.resolve(dict(defaults, remote_cpus=r, cpus=max(defaults["cpus"], r + 1)))
        direct = evaluate_point(point)
        for p in POLICIES:
            assert df.loc[(r, p), "expected_ns"] == pytest.approx(direct[p]["expected_ns"], rel=1e-12)


def test_cheapest_along_covers_the_axis_and_is_cheapest(defaults):
    df = chartdata.cost_vs_cpus_data(defaults)
    runs = chartdata.cheapest_along(df)
    assert runs[0]["from"] == 1 and runs[-1]["to"] == 256
    for a, b in zip(runs, runs[1:]):
        assert b["from"] == a["to"] + 1 and a["policy"] != b["policy"]
    for run in runs:
        for r in {run["from"], run["to"]}:
            sub = df[(df["remote_cpus"] == r) & df["policy"].isin(CANDIDATES)]
            assert sub.loc[sub["expected_ns"].idxmin(), "policy"] == run["policy"]


# ---- decision map -------------------------------------------------------------------------------


def _check_cells(dm, values, samples, rng):
    idx = rng.choice(len(dm.cells), size=min(samples, len(dm.cells)), replace=False)
    for i in idx:
        cell = dm.cells.iloc[i]
        point = dict(values)
        for name in (dm.x, dm.y):
            point[name] = int(cell[name]) if registry.NUMERIC[name].integer else float(cell[name])
        if "remote_cpus" in (dm.x, dm.y) and "cpus" not in (dm.x, dm.y):
            point["cpus"] = max(values["cpus"], point["remote_cpus"] + 1)
        direct = evaluate_point(registry.resolve(point), dm.candidates)
        costs = {p: direct[p]["expected_ns"] for p in dm.candidates}
        best = min(costs.values())
        assert cell["cheapest_ns"] == pytest.approx(best, rel=1e-9)
        # the named policy is one of those at the minimum (ties: any of them)
        assert costs[cell["cheapest"]] == pytest.approx(best, rel=1e-9)
        second = sorted(costs.values())[1]
        assert cell["margin_ns"] == pytest.approx(second - best, rel=1e-6, abs=1e-6)


def test_decision_map_cheapest_equals_direct_evaluation(defaults):
    dm = chartdata.decision_map_data(defaults, "remote_cpus", "wp_gap_s", n=40)
    _check_cells(dm, defaults, 30, np.random.default_rng(7))


@pytest.mark.parametrize("x,y,over", [
    ("p_same_cpu", "remote_drain_ns", {}),
    ("remote_cpus", "wp_gap_s", {"gap_model": "fixed_time", "batch_size": 15}),
    ("remote_cpus", "adds_between", {"gap_model": "fixed_count", "shootdown_model": "log2"}),
])
def test_decision_map_other_axes_and_models(defaults, x, y, over):
    values = registry.resolve(over)
    dm = chartdata.decision_map_data(values, x, y, n=25)
    assert len(dm.cells) == len(axes.axis_values(x, 25)) * len(axes.axis_values(y, 25))
    _check_cells(dm, values, 15, np.random.default_rng(3))


def test_decision_map_columns(defaults):
    dm = chartdata.decision_map_data(defaults, n=20)
    cols = set(dm.cells.columns)
    for c in ("remote_cpus", "wp_gap_s", "remote_cpus_lo", "remote_cpus_hi", "wp_gap_s_lo", "wp_gap_s_hi",
              "cheapest", "cheapest_ns", "runner_up", "margin_ns", "margin_pct", "against_diff_ns"):
        assert c in cols
    assert {f"expected_{p}_ns" for p in CANDIDATES} <= cols
    assert "mapcount" not in CANDIDATES  # the floor, not a choice
    assert (dm.cells["remote_cpus_lo"] < dm.cells["remote_cpus"]).all()
    assert (dm.cells["remote_cpus"] < dm.cells["remote_cpus_hi"]).all()
    assert set(dm.line.columns) == {"remote_cpus", "wp_gap_s", "along", "order"}


def test_breakeven_line_where_the_hand_derivation_puts_it(defaults):
    """drain_remote - drain_local = s * R (1 - p_same) [remote_drain - (1 - o)(copy step - reuse)]:
    the sign does not depend on the gap, so the line is vertical at the remote_cpus where the
    copy step (linear shootdown) costs remote_drain / (1 - o) + reuse."""
    v = defaults
    copy_step_wo_shootdown = copy_price_ns(v, targets=0)
    target = v["remote_drain_ns"] / (1 - v["p_other_ref"]) + v["reuse_ns"]
    r_star = (target - copy_step_wo_shootdown - v["shootdown_base_ns"]) / v["shootdown_per_cpu_ns"]
    dm = chartdata.decision_map_data(v, n=60)
    along_x = dm.line[dm.line["along"] == "x"]
    assert len(along_x) == len(axes.axis_values("wp_gap_s", 60))  # one crossing per gap row
    assert along_x["remote_cpus"].to_numpy() == pytest.approx(r_star, abs=0.05)
    assert (dm.line["along"] == "y").sum() == 0


def test_decision_map_rejects_same_axis_and_categorical(defaults):
    from costmodel.errors import UserError

    with pytest.raises(UserError):
        chartdata.decision_map_data(defaults, "wp_gap_s", "wp_gap_s")
    with pytest.raises(UserError):
        chartdata.decision_map_data(defaults, "gap_model", "wp_gap_s")


# ---- residency ----------------------------------------------------------------------------------


def test_residency_frame_and_known_values():
    values = registry.resolve({"explicit_drains_per_s": 0, "drain_all_per_s": 0, "batch_size": 15})
    df = chartdata.residency_data(values, n=20)
    assert set(df.columns) == {"gap_model", "gap_param", "gap", "gap_unit", "residency", "source", "ci_low", "ci_high"}
    assert set(df["gap_model"]) == set(registry.CATEGORICAL["gap_model"].choices)
    assert df["residency"].between(0, 1).all()
    # no drains, uniform position: after k adds the page is resident with probability (B-1-k)/B
    count = df[df["gap_model"] == "fixed_count"]
    B = 15
    for k, r in zip(count["gap"], count["residency"]):
        assert r == pytest.approx(max(B - 1 - k, 0) / B, abs=1e-12)
    for g in ("fixed_time", "exponential_time"):
        r = df[df["gap_model"] == g].sort_values("gap")["residency"].to_numpy()
        assert (np.diff(r) <= 1e-12).all()  # falls as the gap grows


def test_residency_simulated_points_bracket_the_closed_form(defaults):
    from costmodel.validate import residency_simulated

    sim = residency_simulated(defaults, points=3, faults=50_000, gap_models=("exponential_time",))
    assert (sim["source"] == "simulation").all()
    for r in sim.itertuples():
        from costmodel.evaluate import residency_value

        closed = residency_value(dict(defaults, wp_gap_s=r.gap))
        assert r.ci_low <= closed <= r.ci_high


# ---- charts build ------------------------------------------------------------------------------


def test_every_chart_builds_to_a_vega_lite_spec(defaults):
    import altair as alt

    cost = chartdata.cost_vs_cpus_data(defaults)
    dm = chartdata.decision_map_data(defaults, n=15)
    res = chartdata.residency_data(defaults, n=10)
    def mark(view):
        m = view["mark"]
        return m if isinstance(m, str) else m["type"]

    def fields(view):
        return {ch: enc.get("field") for ch, enc in view["encoding"].items() if isinstance(enc, dict)}

    with alt.data_transformers.disable_max_rows():
        specs = {name: build().to_dict() for name, build in (
            ("cost", lambda: charts.cost_vs_cpus_chart(cost)), ("breakdown", lambda: charts.cost_breakdown_chart(cost)),
            ("map", lambda: charts.decision_map_figure(dm)), ("residency", lambda: charts.residency_chart(res)))}
    for spec in specs.values():  # the Vega-Lite the report bundles and exports with
        assert f"/vega-lite/v{charts.VL_VERSION}." in spec["$schema"]
    lines = specs["cost"]["layer"][0]
    assert mark(lines) == "line"
    assert fields(lines) == {"x": "remote_cpus", "y": "expected_ns", "color": "policy", "strokeDash": "policy",
                             "strokeWidth": "policy"}
    area = specs["breakdown"]["spec"]
    assert mark(area) == "area" and specs["breakdown"]["facet"]["field"] == "policy"
    assert {"x": "remote_cpus", "y": "part_ns", "color": "part"}.items() <= fields(area).items()
    assert area["encoding"]["y"]["stack"] == "zero"
    cells = specs["map"]["layer"][0]
    assert mark(cells) == "rect"
    assert {"x": "remote_cpus_lo", "x2": "remote_cpus_hi", "y": "wp_gap_s_lo", "y2": "wp_gap_s_hi"}.items() \
        <= fields(cells).items()
    assert fields(cells)["color"] == fields(cells)["stroke"]  # opaque cells in their own colour
    assert mark(specs["map"]["layer"][1]) == "line"  # the break-even line on the cells
    closed = specs["residency"]["hconcat"][0]["layer"][0]
    assert mark(closed) == "line" and fields(closed) == {"x": "gap", "y": "residency", "color": "gap_model"}


def test_calibration_data_from_fit_records():
    from costmodel.paramfile import ParamSet

    rec = {"name": "drain", "parameters": ["drain_base_ns"], "n_points": 3, "method": "m",
           "residuals": [{"folios": f, "observed_ns": 200 + 40 * f + d, "fitted_ns": 200 + 40 * f,
                          "residual_ns": d, "se_ns": 5.0} for f, d in ((0, 3.0), (8, -2.0), (16, 1.0))]}
    ps = ParamSet("t", "test", {}, fit=[rec, {"name": "none", "residuals": []}])
    df = chartdata.calibration_data(ps)
    assert list(df["x"]) == [0, 8, 16] and set(df["fit"]) == {"drain"}
    assert list(df["residual"]) == [3.0, -2.0, 1.0]
    assert df["ci_high"].iloc[0] - df["ci_low"].iloc[0] == pytest.approx(2 * 1.96 * 5.0, rel=1e-3)
    charts.calibration_chart(df).to_dict()


# ---- the widget panel -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def panel():
    widgets = pytest.importorskip("costmodel.widgets")
    return widgets.ParameterPanel()


def test_panel_covers_every_registry_parameter(panel):
    """A control for every parameter some policy output depends on (read off the expressions
    here); the swap loop's, which no policy output reads, keep their values without one."""
    from costmodel.model.outputs import policy_outputs
    from costmodel.model import POLICIES

    used = set(registry.CATEGORICAL)
    for policy in POLICIES:
        for g in registry.CATEGORICAL["gap_model"].choices:
            for pos in registry.CATEGORICAL["position_model"].choices:
                for expr in policy_outputs(policy, g, pos, "log2").values():
                    used |= {s.name for s in expr.free_symbols}
    assert list(panel.controls) == [n for n in registry.PARAMS if n in used]
    hidden = [n for n in registry.PARAMS if n not in used]
    assert set(hidden) == {"swap_loop_base_ns", "loop_peers", "pageout_tlb_flushes", "shootdown_receive_ns"}
    assert all(panel.values()[n] == registry.defaults()[n] for n in hidden)
    for name, ctrl in panel.controls.items():
        entry = registry.PARAMS[name]
        assert ctrl.slider.description == name
        if isinstance(entry, registry.Categorical):
            assert tuple(ctrl.slider.options) == entry.choices
            continue
        assert ctrl.unit.value == entry.unit
        s = ctrl.slider
        if entry.log_scale:
            assert ctrl.log, f"{name} is declared log_scale"
        if ctrl.log:
            assert type(s).__name__ == "FloatLogSlider"
            assert 10 ** s.max == pytest.approx(entry.high)
            assert 10 ** s.min <= max(entry.low, axes.log_floor(name)) * (1 + 1e-9)
        else:
            assert (s.min, s.max) == (entry.low, entry.high)
            assert type(s).__name__ == ("IntSlider" if entry.integer else "FloatSlider")


def test_panel_values_round_trip(panel):
    assert panel.values() == registry.resolve()
    for name in presets.WORKLOAD_PRESETS:
        values, _ = presets.compose(workload=name, kernel="linux-6.18")
        panel.set_values(values)
        assert panel.values() == values
    panel.set_values(registry.resolve())


def test_every_control_moves_its_parameter():
    widgets = pytest.importorskip("costmodel.widgets")
    p = widgets.ParameterPanel()
    for name, ctrl in p.controls.items():
        before = ctrl.get()
        s = ctrl.slider
        if hasattr(s, "options"):
            s.value = next(o for o in s.options if o != before)
        else:
            s.value = s.min if math.isclose(float(before), registry.PARAMS[name].high) else s.max
        assert ctrl.get() != before, name
        registry.parse_value(name, ctrl.get())  # always a valid value for the registry


def test_log_slider_leftmost_step_is_zero():
    widgets = pytest.importorskip("costmodel.widgets")
    p = widgets.ParameterPanel()
    ctrl = p.controls["drain_all_per_s"]
    ctrl.slider.value = 10 ** ctrl.slider.min
    assert ctrl.get() == 0.0
    p.set_values(dict(registry.resolve(), drain_all_per_s=0.0))
    assert p.values()["drain_all_per_s"] == 0.0


def test_explorer_update_hands_each_chart_its_data(defaults):
    widgets = pytest.importorskip("costmodel.widgets")
    ex = widgets.Explorer(map_n=20, residency_points=10)
    ex.panel.controls["shootdown_per_cpu_ns"].set(800.0)
    ex.update()
    sent = widgets.decode_payload(ex.cost_chart.payload["cost"])
    row = sent[(sent["remote_cpus"] == 64) & (sent["policy"] == "drain_local")]
    point = registry.resolve(dict(defaults, shootdown_per_cpu_ns=800.0, remote_cpus=64, cpus=65))
    assert row["expected_ns"].item() == pytest.approx(evaluate_point(point)["drain_local"]["expected_ns"], rel=1e-12)
    cells = widgets.decode_payload(ex.map_chart.payload["cells"])
    assert len(cells) == len(ex._dm.cells)
    assert (cells["cheapest"].to_numpy() == ex._dm.cells["cheapest"].astype(str).to_numpy()).all()
    text, buffers = widgets.payload_message(ex.map_chart.payload)
    line = widgets.decode_payload(ex.map_chart.payload["line"])
    assert len(buffers) == len(cells.columns) + len(line.columns) and "NaN" not in text
    assert "$$" in ex.equations.value  # the equations are rendered beside the controls


def test_committed_sets_found_once_for_notebooks_and_explorer():
    """One discovery of the committed parameter files (paramfile.committed_sets): the calibration
    notebook's sets and the explorer's picker list the same, params before reference."""
    from costmodel.paramfile import committed_sets, default_params_path

    found = committed_sets()
    if not found:
        pytest.skip("no parameter files are committed (an installed wheel)")
    names = list(found)
    assert names == sorted(n for n in names if n.startswith("params/")) + \
        sorted(n for n in names if n.startswith("reference/"))
    sets = presets.parameter_sets()
    assert list(sets) == names
    assert all(sets[n].name == found[n].stem for n in names)
    widgets = pytest.importorskip("costmodel.widgets")
    values, paramset, _ = presets.default_values()
    ex = widgets.Explorer(values, paramset=paramset, map_n=10, residency_points=5)
    assert list(ex.set_picker.options)[1:] == names
    if paramset is not None:
        assert found[ex.set_picker.value] == default_params_path()
    ex.set_picker.value = names[-1]  # picking a set loads it into the controls
    assert ex.panel.values() == presets.compose(sets[names[-1]].values())[0]


def test_decision_map_cells_are_opaque_and_abut(defaults):
    """The map is a clean field: each cell opaque (its colour mixed with white by the margin, no
    opacity over the axis grid) and stroked in its own fill, so no seam shows between cells."""
    vlc = pytest.importorskip("vl_convert")
    dm = chartdata.decision_map_data(defaults, n=8)
    sg = vlc.vegalite_to_scenegraph(charts.decision_map_figure(dm).to_dict(), vl_version=charts.VL_VERSION)
    marks = _map_cell_marks(sg)
    assert len(marks) == len(dm.cells)
    for item in marks:
        assert item["fill"] == item["stroke"] and item["strokeWidth"] > 0
        assert item.get("opacity", 1) == 1 and item.get("fillOpacity", 1) == 1
    # each fill is the cheapest policy's colour mixed with white by the margin (0.2 .. 1 over 0 .. 50 %)
    want = [_mix(p, min(max(0.2 + 0.8 * m / 50.0, 0.2), 1.0))
            for p, m in zip(dm.cells["cheapest"], dm.cells["margin_pct"])]
    assert sorted(item["fill"] for item in marks) == sorted(want)
    # neighbours share their edges: each cell starts where the one before it ends
    lo, hi = dm.cells[f"{dm.x}_lo"].to_numpy(), dm.cells[f"{dm.x}_hi"].to_numpy()
    row = dm.cells[dm.y] == dm.cells[dm.y].iloc[0]
    assert np.allclose(lo[row][1:], hi[row][:-1])


def test_vega_printer_refuses_strings():
    from costmodel.vegaexpr import to_vega

    with pytest.raises(TypeError):
        to_vega("__import__('os').system('true')", {})
    assert to_vega(2, {}) in ("2", "2.0")


# ---- uncertainty: bands, probability map, tornado, extrapolation ----------------------------------


def test_cost_bands_are_each_points_own_propagation(defaults):
    from costmodel import uncertainty

    params = uncertainty.uncertain_parameters(defaults)
    df = chartdata.cost_vs_cpus_data(defaults, remote_cpus=[1, 16, 200], bands=params, draws=400, seed=3)
    assert {"expected_ns_low", "expected_ns_high", "p_cheapest"} <= set(df.columns)
    assert (df["expected_ns_low"] <= df["expected_ns_high"]).all()
    for r in (16, 200):
        point = registry.resolve(dict(defaults, remote_cpus=r, cpus=max(defaults["cpus"], r + 1)))
        one = uncertainty.propagate(point, uncertainty.uncertain_parameters(point), draws=400, seed=3)
        for p in CANDIDATES:
            row = df[(df["remote_cpus"] == r) & (df["policy"] == p)].iloc[0]
            assert row["expected_ns_high"] == pytest.approx(one.outputs[p]["expected_ns"]["high"], rel=1e-9)
            assert row["p_cheapest"] == pytest.approx(one.p_cheapest[p], abs=1e-12)
    sums = df[df["policy"].isin(CANDIDATES)].groupby("remote_cpus")["p_cheapest"].sum()
    assert np.allclose(sums, 1.0)


def test_probability_map_cells_and_shading(defaults):
    vlc = pytest.importorskip("vl_convert")
    from costmodel import uncertainty

    params = uncertainty.uncertain_parameters(defaults)
    dm = chartdata.decision_map_data(defaults, n=6, uncertain=params, draws=300, seed=1)
    c = dm.cells
    assert c["p_cheapest"].between(0, 1).all()
    assert np.allclose(c[[f"p_cheapest_{p}" for p in CANDIDATES]].sum(axis=1), 1.0)
    cell = c.iloc[len(c) // 2]
    point = registry.resolve(dict(defaults, remote_cpus=int(cell["remote_cpus"]), wp_gap_s=float(cell["wp_gap_s"]),
                                  cpus=max(defaults["cpus"], int(cell["remote_cpus"]) + 1)))
    one = uncertainty.propagate(point, params, draws=300, seed=1, policies=CANDIDATES)
    assert cell["p_cheapest"] == pytest.approx(one.p_cheapest[str(cell["cheapest"])], abs=1e-12)
    spec = charts.decision_map_figure(dm, shade="probability", measured_up_to=1).to_dict()
    sg = vlc.vegalite_to_scenegraph(spec, vl_version=charts.VL_VERSION)
    fills = [i["fill"] for i in _map_cell_marks(sg)]
    # 0.2 of the colour at a coin toss, all of it at 1
    want = [_mix(p, min(max(0.2 + 0.8 * (pr - 0.5) / 0.5, 0.2), 1.0)) for p, pr in zip(c["cheapest"], c["p_cheapest"])]
    assert sorted(fills) == sorted(want)
    assert any(layer.get("mark", {}).get("type") == "rule" for layer in spec["layer"][2:])  # the measured edge
    with pytest.raises(ValueError):
        charts.decision_map_figure(chartdata.decision_map_data(defaults, n=4), shade="probability")


def test_cost_chart_marks_bands_and_extrapolation(defaults):
    from costmodel import uncertainty

    df = chartdata.cost_vs_cpus_data(defaults, remote_cpus=[1, 2, 4], bands=uncertainty.uncertain_parameters(defaults),
                                  draws=50)
    spec = charts.cost_vs_cpus_chart(df, measured_up_to=3, measured_note="test").to_dict()
    marks = [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"] for layer in spec["layer"]]
    assert marks[:4] == ["rect", "text", "area", "line"]
    area = spec["layer"][2]["encoding"]
    assert area["y"]["field"] == "expected_ns_low" and area["y2"]["field"] == "expected_ns_high"
    plain = charts.cost_vs_cpus_chart(chartdata.cost_vs_cpus_data(defaults, remote_cpus=[1, 2])).to_dict()
    assert plain["layer"][0]["mark"]["type"] == "line"  # nothing measured, nothing marked


def test_tornado_chart_from_a_sensitivity(defaults):
    from costmodel import uncertainty

    v = registry.resolve({"remote_cpus": 15, "cpus": 32})
    sens = uncertainty.sensitivity(v, draws=800, gain_draws=400, flips_for=2)
    df = chartdata.tornado_data(sens, n=5)
    assert len(df) == 5 and list(df["parameter"]) == list(sens.table["parameter"][:5])
    assert (df["margin_min"] <= df["margin_at_value"] + 1e-9).all() and (df["margin_at_value"] <= df["margin_max"] + 1e-9).all()
    spec = charts.tornado_chart(df, sens.cheapest).to_dict()
    bar = spec["layer"][0]
    assert bar["mark"]["type"] == "bar" and bar["encoding"]["x"]["field"] == "margin_min"
    assert bar["encoding"]["x2"]["field"] == "margin_max"


# ---- machines side by side; the model against whole workloads -----------------------------------


def _walk_marks(sg, pred):
    """The items of every mark in the scenegraph ``sg`` for which ``pred(node)`` holds."""
    out = []

    def walk(node):
        if isinstance(node, dict):
            if pred(node):
                out.extend(node.get("items", []))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(sg)
    return out


def _map_cell_marks(sg):
    """The decision map's cells: the items of its first layer's rect marks."""
    return _walk_marks(sg, lambda n: n.get("marktype") == "rect" and n.get("name") == "layer_0_marks")


def _set(name, **values):
    from costmodel.paramfile import Entry, ParamSet

    params = {}
    for k, (v, lo, hi, src) in values.items():
        params[k] = Entry(v, src, "test", registry.NUMERIC[k].unit, lo, hi)
    return ParamSet(name, "test", params)


def test_machine_comparison_rows_and_copy_time():
    a = _set("a", reuse_ns=(150.0, 140.0, 160.0, "measured"), shootdown_per_cpu_ns=(0.0, None, None, "assumed"),
             page_bytes=(4096, None, None, "measured"), copy_bandwidth_gbps=(8.0, 4.0, 16.0, "measured"))
    b = _set("b", reuse_ns=(90.0, 30.0, 270.0, "assumed"))
    df = chartdata.machine_comparison_data({"m1": a, "m2": b})
    assert set(df["machine"]) == {"m1", "m2"}
    row = df[(df["machine"] == "m1") & df["parameter"].str.startswith("copy_ns")].iloc[0]
    # 4096 bytes at 8 bytes/ns: 512 ns; the interval from the bandwidth's, inverted
    assert (row["value_ns"], row["ci_low_ns"], row["ci_high_ns"]) == pytest.approx((512.0, 256.0, 1024.0))
    reuse = df[df["parameter"] == "reuse_ns"].set_index("machine")
    assert bool(reuse.loc["m1", "measured"]) and not bool(reuse.loc["m2", "measured"])
    assert reuse.loc["m2", "ci_high_ns"] == 270.0
    zero = df[df["parameter"] == "shootdown_per_cpu_ns"].iloc[0]
    assert zero["value_ns"] == 0.0 and math.isnan(zero["ci_low_ns"])
    assert not (df["parameter"] == "copy_bandwidth_gbps").any()  # a bandwidth is shown as its copy time


def test_machine_comparison_chart_keeps_zero_on_the_axis():
    """A cost of 0 is drawn (at the axis origin), measured points filled and the others hollow."""
    vlc = pytest.importorskip("vl_convert")
    a = _set("a", reuse_ns=(150.0, 140.0, 160.0, "measured"), shootdown_per_cpu_ns=(0.0, None, None, "assumed"))
    df = chartdata.machine_comparison_data({"m1": a})
    sg = vlc.vegalite_to_scenegraph(charts.machine_comparison_chart(df).to_dict(), vl_version=charts.VL_VERSION)
    pts = _walk_marks(sg, lambda n: n.get("marktype") == "symbol" and str(n.get("name", "")).startswith("layer_"))
    assert len(pts) == 2
    xs = sorted(p["x"] for p in pts)
    assert xs[0] == pytest.approx(0.0, abs=1e-6)  # the 0 at the origin, not dropped as on a log axis
    assert xs[1] > 100
    fills = {round(p["x"]) : p.get("fill") for p in pts}
    assert fills[0] in (None, "transparent")  # assumed: hollow
    assert fills[round(xs[1])] not in (None, "transparent")  # measured: filled


def _prediction_rows():
    import pandas as pd

    return pd.DataFrame({
        "probe": ["workload", "workload", "swap_cow"], "config": ["a=1", "a=2", "s=x"],
        "mean_ns": [1000.0, 5000.0, 50.0], "mean_ci_low": [900.0, 4500.0, 45.0],
        "mean_ci_high": [1100.0, 5600.0, 55.0], "predicted_ns": [1050.0, 4000.0, 900.0],
        "predicted_ci_low": [1000.0, 3900.0, 880.0], "predicted_ci_high": [1100.0, 4100.0, 920.0],
        "priced": [True, True, False], "within_tolerance": [True, False, False],
        "model_p_copy": [0.5, 1.0, 0.0], "copied": [0.48, 1.0, 0.0], "copied_ci_low": [0.4, 0.98, 0.0],
        "copied_ci_high": [0.56, 1.0, 0.02], "copy_inside": [True, True, True], "model_lacks": ["", "", "no fault"],
    })


def test_prediction_data_and_chart():
    vlc = pytest.importorskip("vl_convert")
    df = chartdata.prediction_data(_prediction_rows())
    assert list(df["measured_ns"]) == [1000.0, 5000.0, 50.0]
    assert list(df["kind"]) == ["workload", "workload", "no WP fault taken (not priced)"]
    assert list(df["label"]) == ["workload a=1", "workload a=2", "swap_cow s=x"]
    spec = charts.prediction_chart(df, tolerance=0.15).to_dict()
    sg = vlc.vegalite_to_scenegraph(spec, vl_version=charts.VL_VERSION)
    pts = _walk_marks(sg, lambda n: n.get("marktype") == "symbol" and str(n.get("name", "")).startswith("concat"))
    assert len(pts) == 6  # three configurations in each panel
    # the y = x line of the cost panel runs corner to corner: equal values at equal positions
    cost = spec["hconcat"][0]["layer"]
    diag = [l for l in cost if l.get("mark", {}).get("type") == "line"]
    assert diag and diag[0]["encoding"]["x"]["field"] == diag[0]["encoding"]["y"]["field"]
    lines = _walk_marks(sg, lambda n: n.get("marktype") == "line")
    assert lines, "no y = x line drawn"


def test_format_ns_one_style():
    assert textfmt.format_ns(0) == "0 ns"
    assert textfmt.format_ns(3371.0) == "3,371 ns"
    assert textfmt.format_ns(27420.0) == "27.42 \u00b5s"
    assert textfmt.format_ns(9_999.0) == "9,999 ns"
    assert textfmt.format_ns(2.1e6) == "2,100 \u00b5s"
    assert textfmt.format_ns(2.1e7) == "21 ms"
    assert textfmt.format_ns(9.4821e8) == "948.2 ms"
    assert textfmt.format_ns(5e10) == "50 s"


# ---- what a reader sees in the charts -------------------------------------------------------------


def _scenegraph(spec):
    vlc = pytest.importorskip("vl_convert")
    return vlc.vegalite_to_scenegraph(spec, vl_version=charts.VL_VERSION)


def _mix(policy, shade):
    """A policy's colour mixed with white (shade 1: all colour), rounded as JavaScript rounds."""
    rgb = [int(charts.policy_color(policy)[i:i + 2], 16) for i in (1, 3, 5)]
    return "rgb({},{},{})".format(*(math.floor(255 - shade * (255 - c) + 0.5) for c in rgb))


def test_map_key_shows_the_cells_own_colours(defaults):
    """The key beside the map is drawn in the colours the cells use (the policy's colour mixed
    with white by its margin), not in grey."""
    dm = chartdata.decision_map_data(defaults, n=6)
    sg = _scenegraph(charts.decision_map_figure(dm).to_dict())
    rects = _walk_marks(sg, lambda n: n.get("marktype") == "rect")
    fills = {i.get("fill") for i in rects}
    steps = charts.KEY_STEPS
    for p in CANDIDATES:
        for k in range(steps):
            shade = 0.2 + 0.8 * k / (steps - 1)  # margins 0 .. 50% over 0.2 .. 1 of the colour
            assert _mix(p, shade) in fills, (p, k)
    greys = [f for f in fills if f and f.startswith("rgb(") and len(set(f[4:-1].split(","))) == 1 and f != "rgb(255,255,255)"]
    assert greys == []


def _texts_of(sg):
    return [str(i.get("text")) for i in _walk_marks(sg, lambda n: n.get("marktype") == "text")]


def test_a_missing_break_even_line_is_said(defaults):
    with_line = chartdata.decision_map_data(defaults, n=12)
    assert not with_line.line.empty
    assert not any("no dashed line" in t for t in _texts_of(_scenegraph(charts.decision_map_figure(with_line).to_dict())))
    # a remote drain dearer than any copy: drain_remote never beats drain_local, so no line
    never = chartdata.decision_map_data(registry.resolve(dict(defaults, remote_drain_ns=1e9)), n=12)
    assert never.line.empty
    said = [t for t in _texts_of(_scenegraph(charts.decision_map_figure(never).to_dict())) if "no dashed line" in t]
    assert said and "drain_local is cheaper everywhere" in said[0]


def _axis_labels(sg, title_word):
    out = []

    def walk(node, in_axis=False, title=""):
        if isinstance(node, dict):
            role = node.get("role")
            if role == "axis":
                titles = [str(i.get("text")) for m in _walk_marks(node, lambda n: n.get("role") == "axis-title")
                          for i in [m]]
                title = " ".join(titles)
                in_axis = True
            if in_axis and node.get("role") == "axis-label" and title_word in title:
                out.extend(str(i.get("text")) for i in node.get("items", []))
            for v in node.values():
                walk(v, in_axis, title)
        elif isinstance(node, list):
            for v in node:
                walk(v, in_axis, title)

    walk(sg)
    return out


def test_cpu_axes_have_no_ticks_below_one(defaults):
    dm = chartdata.decision_map_data(defaults, n=10)
    for spec in (charts.decision_map_figure(dm).to_dict(),
                 charts.cost_vs_cpus_chart(chartdata.cost_vs_cpus_data(defaults)).to_dict()):
        labels = [t for t in _axis_labels(_scenegraph(spec), "remote_cpus") if t]
        assert labels, "no remote_cpus axis labels found"
        values = [float(t.replace(",", "")) for t in labels]
        assert min(values) >= 1 and all(v == int(v) for v in values)


def test_breakdown_panels_each_on_their_own_scale(defaults):
    """The cheapest policy's parts are a sliver on the dearest policy's axis: each panel has its
    own y scale, so every panel's stack reaches near its top."""
    spec = charts.cost_breakdown_chart(chartdata.cost_vs_cpus_data(defaults)).to_dict()
    assert spec["resolve"]["scale"]["y"] == "independent"
    sg = _scenegraph(spec)
    areas = _walk_marks(sg, lambda n: n.get("marktype") == "area")
    tops = {}
    for a in areas:  # each point of an area carries its datum in words: "...; policy: drain_local; ..."
        m = re.search(r"policy: (\w+)", str(a.get("description", "")))
        if m:
            tops[m.group(1)] = min(tops.get(m.group(1), 1e9), a.get("y", 1e9))
    assert set(tops) == set(POLICIES)
    height = 150
    assert all(t < 0.25 * height for t in tops.values()), tops


def test_calibration_axes_name_what_was_measured():
    _, ps, _ = presets.default_values()
    if ps is None or not ps.fit:
        pytest.skip("no calibrated set with fits")
    df = chartdata.calibration_data(ps)
    spec = charts.calibration_chart(df).to_dict()
    text = str(spec)
    assert "batch_size (fraction)" not in text
    if (df["unit"] == "fraction").any():
        assert "fraction of trials that copied" in text
    assert "concat" in spec and spec.get("columns") == 3  # wrapped, not one row as wide as every fit


def test_every_policy_has_its_own_dash():
    dashes = [tuple(charts.policy_dash(p)) for p in POLICIES]
    assert len(set(dashes)) == len(dashes)


def test_format_value_one_style():
    f = textfmt.format_value
    assert f(1e-7, "s") == "100 ns" and f(0.1, "s") == "100 ms" and f(1e9, "ns") == "1,000 ms"
    assert f(24_700_000.0, "KiB") == "24,700,000 KiB" and f(3, "CPUs") == "3 CPUs"
    assert f(0.457, "probability") == "0.457" and f(10.495, "GB/s") in ("10.49 GB/s", "10.5 GB/s")
    assert f(0.00001) == "0.00001" and "e" not in f(2.1e6) and f(2.1e6) == "2,100,000"


def test_explorer_map_sends_every_field_its_chart_reads(defaults):
    """The notebook's map widget sends only some columns of the cells: every field the chart's
    encodings and transforms name must be among them (the 'no dashed line' message reads the
    difference of the two policies, so without it the message shows over a map that has the line)."""
    import json
    import re

    from costmodel.widgets import map_frame

    dm = chartdata.decision_map_data(defaults, "remote_cpus", "wp_gap_s", n=12)
    spec = json.dumps(charts.decision_map_figure(dm).to_dict())
    sent = set(map_frame(dm).columns)
    for name in dm.cells.columns:
        if re.search(rf'"field": "{re.escape(name)}"|datum\.{re.escape(name)}\b|\({re.escape(name)}\)', spec):
            assert name in sent, name
    assert "against_diff_ns" in sent


# ---- what a reader sees --------------------------------------------------------


def _walk(node):
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def test_cost_chart_legend_is_full_strength_and_near_lines_differ():
    """The bands' 0.18 opacity washed out the legend's swatches; drain_local and
    drain_local_always (1 % apart) drew as one line; the readout beside the chart ran off it."""
    v = registry.resolve()
    bands = chartdata.cost_vs_cpus_data(v, bands=uncertainty.uncertain_parameters(v), draws=50, seed=0)
    spec = charts.cost_vs_cpus_chart(bands, point_param="rc").to_dict()
    legends = [n["legend"] for n in _walk(spec) if isinstance(n.get("legend"), dict) and "symbolOpacity" in n["legend"]]
    assert legends and all(l["symbolOpacity"] == 1 for l in legends)
    i = chartdata.POLICY_ORDER.index("drain_local")
    assert abs(charts.policy_width("drain_local") - charts.policy_width(chartdata.POLICY_ORDER[i + 1])) >= 2
    calcs = [t["calculate"] for n in _walk(spec) for t in (n.get("transform") or [])
             if isinstance(t, dict) and t.get("as") == "label"]
    # the point's CPU counts on two lines of their own: at the most CPUs a slider reaches each
    # stays within the legend's width (about 22 characters at this size)
    head = [c for c in calcs if "at remote_cpus" in c]
    cpus = [c for c in calcs if "(cpus " in c]
    assert head and cpus and not any("(cpus " in c for c in head)
    assert max(len("at remote_cpus = 4096"), len("(cpus 4097):")) <= 22


def test_time_axes_are_not_titled_in_seconds():
    """An axis whose ticks read 100 ns, 20 us, 5 ms was titled 'wp_gap_s (s)'."""
    _, title = charts._axis("wp_gap_s", log=True)
    assert "(s)" not in title
    _, title = charts._axis("p_same_cpu", log=False)
    assert title == "p_same_cpu (probability)"


def test_calibration_panel_spanning_decades_is_logarithmic():
    """The remote-drain fit's linear axis to 1,000 ms put its 60 us points at 0."""
    from costmodel import paramfile

    ps = paramfile.load(paramfile.default_params_path())
    cal = chartdata.calibration_data(ps)
    spec = charts.calibration_chart(cal).to_dict()
    for fit, sub in cal.groupby("fit"):
        vals = sub[["observed", "fitted"]].to_numpy(dtype=float)
        vals = vals[np.isfinite(vals)]
        spans = sub["unit"].iloc[0] == "ns" and vals.min() > 0 and vals.max() / vals.min() >= 1e3
        panel = next(n for n in _walk(spec) if n.get("title") == fit)
        types = {n["scale"].get("type") for n in _walk(panel) if isinstance(n.get("scale"), dict)
                 and n.get("field") == "observed"}
        assert ("log" in types) == bool(spans), fit
    assert any(True for _ in cal[cal["fit"] == "remote_drain"].itertuples())


def test_calibration_axis_labels_are_short_and_lose_nothing():
    """The calibration panels' measurement names fit their axis (each line at most 36 characters:
    at the 9 px labels about 180 px, under the 200 px limit; the remote drain's were cut off) and
    keep every setting of the measurement they name."""
    from pathlib import Path

    from costmodel import chartdata, paramfile

    for path in sorted((Path(__file__).resolve().parents[1] / "data" / "params").glob("*.json")):
        df = chartdata.calibration_data(paramfile.load(path))
        names = {}
        for rec in paramfile.load(path).fit:
            for r in rec.get("residuals") or []:
                for v in r.values():
                    if isinstance(v, str):
                        names[v] = True
        for label in df.loc[df["x_kind"] == "nominal", "x_label"]:
            for line in label.split("\n"):
                assert len(line) <= 36, (path.name, label)
        for full in names:
            short = chartdata.short_measurement_label(full)
            words = {w.removeprefix("op=") for w in full.replace(" - ", " ").split()}
            shown = short.replace("\n", " ").replace("- ", " ").replace("(", "").replace(")", "").split()
            assert words == set(shown), (full, short)
            assert (" - " in full) == ("\n- " in short), (full, short)  # a difference stays one
