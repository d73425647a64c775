"""The standalone report: self-contained, written atomically, never clobbered; its browser-side
formulas give the numbers the package gives."""

from __future__ import annotations

import os
import re
from html.parser import HTMLParser

import pytest

from costmodel.errors import UserError

pytest.importorskip("altair")
pytest.importorskip("vl_convert")

from costmodel import live, registry  # noqa: E402
from costmodel.cli import main  # noqa: E402
from costmodel.evaluate import evaluate_point  # noqa: E402
from costmodel.model import CANDIDATES, POLICIES  # noqa: E402
from costmodel.report import VL_VERSION, write_report  # noqa: E402

#: URLs that appear as plain strings inside the inlined libraries and the spec's $schema; none is
#: fetched by the page (the browser test blocks and records every request to prove it)
_INERT_URLS = {
    "http://www.w3.org/2000/svg", "http://www.w3.org/2000/xmlns/", "http://www.w3.org/1999/xlink",
    "https://vega.github.io/schema/vega/v6.json", "https://vega.github.io/editor/",
    "https://github.com/vega/vega-lite/issues/2415", "https://vega.github.io/schema/vega-lite/v6.4.1.json",
}


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self.script_src: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            if k in ("src", "href", "action", "data", "poster", "srcset", "formaction") and v:
                self.refs.append((tag, k, v))
            if tag == "script" and k == "src":
                self.script_src.append(v or "")


@pytest.fixture(scope="module")
def report_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    write_report(registry.resolve(), out, simulate_points=2)
    return out


def test_self_contained(report_file):
    text = report_file.read_text(encoding="utf-8")
    p = _Collect()
    p.feed(text)
    assert not p.script_src, "every script is inline"
    external = [r for r in p.refs if re.match(r"^\s*(https?:)?//", r[2], re.I)]
    assert not external, external
    assert "link" not in p.tags and "iframe" not in p.tags and "img" not in p.tags
    urls = set(re.findall(r"https?://[^\s\"'`<>)\\]+", text))
    assert urls <= _INERT_URLS, urls - _INERT_URLS
    assert "import(" not in re.sub(r"<script>.*?</script>", "", text, flags=re.S)
    for lib in ("vegaEmbed", "vega-lite", "vega"):
        assert lib in text


def test_report_has_verdict_tables_and_charts(report_file):
    text = report_file.read_text(encoding="utf-8")
    values = registry.resolve()
    direct = evaluate_point(values, CANDIDATES)
    best = min(direct, key=lambda p: direct[p]["expected_ns"])
    assert f"<b>{best}</b>" in text  # the verdict names the policy the model finds cheapest
    for heading in ("Verdict", "Break-even values", "Explore", "Residency", "Calibration and provenance", "Parameters"):
        assert f">{heading}<" in text
    for div in ("explore", "residency"):
        assert f"id='{div}'" in text
    for name in registry.PARAMS:  # the parameter table lists every parameter
        assert f"<td>{name}</td>" in text


def test_verdict_says_how_sure_and_what_would_flip_it(report_file):
    """The verdict's uncertainty, in words and numbers, from the same propagation as `eval
    --uncertainty` at the registry point (seed 0), and that it describes the shipped point."""
    from costmodel import uncertainty
    from costmodel.report import VERDICT_DRAWS, kernel_today

    text = report_file.read_text(encoding="utf-8")
    values = registry.resolve()
    prop = uncertainty.propagate(values, draws=VERDICT_DRAWS, seed=0)
    share = prop.p_cheapest[prop.cheapest]
    assert f"<b>{prop.cheapest}</b> is the cheapest candidate in <b>" in text
    shown = "100%" if share >= 1 else f"{min(100 * share, 99.9):.1f}%"
    assert f"<b>{shown}</b> of the draws" in text
    assert f"{VERDICT_DRAWS:,} draws, seed 0" in text
    kernel = kernel_today(None)
    assert kernel.policy in text and kernel.name in text  # compared with the kernel's own policy today
    assert "describe the shipped point" in text
    sens = uncertainty.sensitivity(values, draws=VERDICT_DRAWS, seed=0, flips_for=1)
    top = sens.table.iloc[0]
    if top["gain"] >= 1e-3 or top["flip_in_interval"]:
        assert f"It hangs most on <b>{top['parameter']}</b>" in text
    for div in ("cost_bands", "probability_map", "tornado"):
        assert f"id='{div}'" in text
    assert ">How sure is the verdict?<" in text


def test_written_atomically(tmp_path, monkeypatch):
    out = tmp_path / "r.html"

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(UserError, match="cannot write there"):
        write_report(registry.resolve(), out, simulate_points=0)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no half-written file, no temp file left


def test_refuses_overwrite_without_force(tmp_path, capsys):
    out = tmp_path / "r.html"
    out.write_text("mine")
    assert main(["report", "-o", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert out.read_text() == "mine"


def test_force_and_png(tmp_path, capsys):
    out, png = tmp_path / "r.html", tmp_path / "png"
    out.write_text("old")
    assert main(["report", "-o", str(out), "--force", "--png", str(png), "--no-simulation",
                 "--set", "remote_cpus=16", "--set", "cpus=32"]) == 0
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    names = sorted(p.name for p in png.iterdir())
    for chart in ("cost_vs_cpus", "cost_breakdown", "decision_map", "residency", "cost_bands", "probability_map",
                  "tornado"):
        assert f"{chart}.png" in names and f"{chart}.svg" in names
        assert (png / f"{chart}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "<svg" in (png / f"{chart}.svg").read_text()[:500]
    # the images exist now: a second run without --force refuses them too
    assert main(["report", "-o", str(tmp_path / "other.html"), "--png", str(png)]) == 2


def test_bad_input_is_one_line(tmp_path, capsys):
    assert main(["report", "-o", str(tmp_path / "r.html"), "--set", "remote_cpus=__import__('os')"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "remote_cpus" in err


# ---- the browser-side formulas, evaluated by vl-convert's JavaScript engine ------------------


def _texts(spec: dict) -> list[str]:
    import vl_convert as vlc

    out = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("marktype") == "text":
                out.extend(str(i.get("text")) for i in node.get("items", []))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(vlc.vegalite_to_scenegraph(spec, vl_version=VL_VERSION))
    return out


def _browser_costs(values: dict, remote: list[int], fields: tuple[str, ...] = ("expected_ns",),
                   moved: dict | None = None) -> dict[tuple[int, str], tuple[float, ...]]:
    """Evaluate the live cost source in vl-convert: text marks 'remote|policy|field|...'.
    ``moved``: slider signals set to other values than the set's, as a reader would move them."""
    src = live.cost_source(values)
    shown = " + '|' + ".join(f"format(datum.{f}, '.12e')" for f in fields)
    chart = src.charts[0].transform_filter(
        {"field": "remote_cpus", "oneOf": remote}
    ).transform_calculate(
        label=f"datum.remote_cpus + '|' + datum.policy + '|' + {shown}"
    ).mark_text().encode(text="label:N", y="label:N")
    spec = chart.to_dict()
    params = live.slider_params(sorted(src.signals), values, fixed=src.fixed)
    moved = moved or {}
    assert set(moved) <= set(live.slider_inputs(params)), "move only what a reader can move"
    spec["params"] = [dict(p, value=moved[p["name"]]) if p["name"] in moved else p for p in params]
    out = {}
    for t in _texts(spec):
        parts = t.split("|")
        if len(parts) == 2 + len(fields):
            out[(int(parts[0]), parts[1])] = tuple(float(v.replace("\u2212", "-")) for v in parts[2:])  # d3: U+2212 minus
    return out


@pytest.mark.parametrize("over", [
    {},
    {"gap_model": "fixed_count", "adds_between": 7, "shootdown_model": "log2"},
    {"gap_model": "fixed_time", "wp_gap_s": 3e-5, "position_model": "stationary"},
    {"gap_model": "exponential_time", "position_model": "fixed", "batch_position": 4,
     "explicit_drains_per_s": 0, "drain_all_per_s": 0, "shootdown_model": "broadcast", "p_exclusive": 0.3},
])
def test_browser_formulas_equal_the_package(over):
    values = registry.resolve(over)
    remote = [1, 7, 100, 256]
    got = _browser_costs(values, remote)
    assert len(got) == len(remote) * len(POLICIES)
    for r in remote:
        point = registry.resolve(dict(values, remote_cpus=r, cpus=max(values["cpus"], r + 1)))
        direct = evaluate_point(point)
        for p, out in direct.items():
            assert got[(r, p)][0] == pytest.approx(out["expected_ns"], rel=1e-9), (r, p)


def test_batch_position_past_batch_size_stays_a_probability():
    """The sliders are independent: with position_model=fixed, moving batch_position past
    batch_size once gave the formulas an impossible point (residency -10.4, p_copy -5.1 at 20 and
    15). The formulas read batch_position held at batch_size - 1."""
    values = registry.resolve({"position_model": "fixed", "batch_position": 4, "p_same_cpu": 0.1})
    moved = {"batch_size": 15, "batch_position" + live.RAW_SUFFIX: 20}
    remote = [1, 7, 100]
    got = _browser_costs(values, remote, ("p_copy", "p_unnecessary_copy", "expected_ns"), moved)
    assert len(got) == len(remote) * len(POLICIES)
    for (r, p), (p_copy, p_unnecessary, ns) in got.items():
        assert 0 <= p_copy <= 1 and 0 <= p_unnecessary <= 1, (r, p, p_copy, p_unnecessary)
        # what the formulas use: the last position of a 15-folio batch
        direct = evaluate_point(registry.resolve(dict(values, batch_size=15, batch_position=14, remote_cpus=r,
                                                      cpus=max(values["cpus"], r + 1))))[p]
        assert (p_copy, p_unnecessary, ns) == pytest.approx(
            (direct["p_copy"], direct["p_unnecessary_copy"], direct["expected_ns"]), rel=1e-9, abs=1e-12), (r, p)


def test_every_rule_between_parameters_is_kept_in_the_browser():
    """live.VEGA_RULES restates registry.CONSTRAINTS in Vega form: a new registry rule fails here
    until the browser keeps it too."""
    assert {frozenset((n, partner)) for n, (partner, _) in live.VEGA_RULES.items()} == \
        {frozenset(c.names) for c in registry.CONSTRAINTS}


def test_live_sources_take_checked_values_only():
    """A value is data: a string holding code is refused, never handed to sympy."""
    for build in (live.cost_source, live.map_source):
        with pytest.raises(UserError, match="wp_gap_s"):
            build(dict(registry.resolve(), wp_gap_s="__import__('os').getpid()"))


def test_log_slider_maps_to_the_value():
    values = registry.resolve({"drain_all_per_s": 0.0})
    params = {p["name"]: p for p in live.slider_params(["drain_all_per_s", "wp_gap_s", "remote_drain_ns"], values)}
    assert "bind" in params["wp_gap_s__log10"] and "expr" in params["wp_gap_s"]
    assert params["drain_all_per_s__log10"]["value"] == params["drain_all_per_s__log10"]["bind"]["min"]
    lo = params["remote_drain_ns__log10"]["bind"]
    assert lo["max"] == pytest.approx(9.0)  # registry bound 1e9 ns


# ---- parameters on the command line: one layering for every command ----------------------------


@pytest.mark.parametrize("command", ["eval", "sweep", "breakeven", "simulate", "report"])
def test_every_parameter_command_takes_a_workload(command):
    from costmodel.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    options = sub.choices[command]._option_string_actions
    assert {"--params", "--workload", "--preset", "--set"} <= set(options)


def test_layering_file_workload_kernel_set(tmp_path, capsys):
    """defaults < parameter file < workload preset < kernel preset < --set."""
    import json

    from costmodel.paramfile import default_params_path

    doc = json.loads(default_params_path().read_text())
    doc["parameters"]["p_exclusive"] = {"value": 0.25, "unit": "probability", "ci_low": None, "ci_high": None,
                                        "source": "assumed", "note": "test"}
    f = tmp_path / "set.json"
    f.write_text(json.dumps(doc))

    def params(*argv):
        assert main(["eval", "--json", "--params", str(f), *argv]) == 0
        return json.loads(capsys.readouterr().out)["params"]

    assert params()["p_exclusive"] == 0.25  # the file over the defaults
    assert params("--workload", "swap-fast-device")["p_exclusive"] == 0.5  # the workload over the file
    got = params("--workload", "swap-fast-device", "--preset", "linux-5.13")
    assert got["p_exclusive"] == 0.0 and got["batch_size"] == 15 and got["p_same_cpu"] == 0.8  # kernel over workload
    got = params("--workload", "swap-fast-device", "--preset", "linux-5.13", "--set", "p_exclusive=0.1")
    assert got["p_exclusive"] == 0.1  # --set over everything


def test_report_reads_the_parameter_file_once(tmp_path, capsys, monkeypatch):
    """A migration note is printed once, not once per reader of --params."""
    import json

    from costmodel import paramfile

    monkeypatch.setitem(paramfile.MIGRATIONS, 0, paramfile.Migration(0, 1, lambda d: d, "test step"))
    doc = json.loads(paramfile.default_params_path().read_text())
    doc["schema_version"] = 0
    f = tmp_path / "old.json"
    f.write_text(json.dumps(doc))
    assert main(["report", "--params", str(f), "-o", str(tmp_path / "r.html"), "--no-simulation"]) == 0
    assert capsys.readouterr().err.count("migrated schema_version 0 -> 1") == 1


# ---- what a reader reads: one number style, captions, provenance, break-even, new sections -------


@pytest.fixture(scope="module")
def shipped_report(tmp_path_factory):
    """The report of the shipped default set (with its fits, provenance and, where committed, its
    machine's whole-workload measurements)."""
    from costmodel import presets

    values, paramset, _ = presets.default_values()
    out = tmp_path_factory.mktemp("shipped") / "report.html"
    write_report(values, out, paramset=paramset, simulate_points=0)
    return out.read_text(encoding="utf-8"), values, paramset


def _cells(text: str) -> list[str]:
    body = re.sub(r"<script>.*?</script>", "", text, flags=re.S)
    return [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", body, flags=re.S)]


def test_tables_use_one_number_style(shipped_report):
    """No exponents anywhere in the tables, and each time in the unit of its size: ns below
    10 us, then us, ms and s, never more than 9,999 of a unit."""
    text, _, _ = shipped_report
    cells = _cells(text)
    assert cells
    exp = [c for c in cells if re.search(r"(?<![\w.])-?\d+(\.\d+)?e[+-]?\d+(?![\w.])", c)]
    assert exp == []
    times = re.findall(r"(-?[\d,]+(?:\.\d+)?) (ns|\u00b5s|ms|s)\b", " ".join(cells))
    assert times
    for number, unit in times:
        v = abs(float(number.replace(",", "")))
        assert v < 10_000, (number, unit)
        if unit in ("\u00b5s", "ms"):
            assert v >= 10 or v == 0, (number, unit)  # below 10 of a unit the smaller unit is used


def test_every_table_says_what_it_describes(shipped_report):
    """Every table at the point says it describes the shipped point, not the sliders."""
    text, _, _ = shipped_report
    body = re.sub(r"<script>.*?</script>", "", text, flags=re.S)
    tables = re.findall(r"<div class='table'><table[^>]*>(.*?)</table></div>", body, flags=re.S)
    assert len(tables) >= 6
    for t in tables:
        cap = re.search(r"<caption>(.*?)</caption>", t, flags=re.S)
        assert cap, t[:200]
    point_tables = [t for t in tables if "<th>cost per WP fault</th>" in t or "parameter</th>" in t
                    or "break-even</th>" in t or "cheapest</th>" in t]
    assert point_tables
    for t in point_tables:
        assert "shipped point" in re.search(r"<caption>(.*?)</caption>", t, flags=re.S).group(1)
    assert "describe the shipped point" in text  # the verdict's own sentence stays


def test_provenance_probes_are_a_table(shipped_report):
    text, _, paramset = shipped_report
    if paramset is None or not isinstance(paramset.provenance.get("probes"), dict):
        pytest.skip("no probes in the provenance")
    assert '{"status"' not in text and "&quot;status&quot;" not in text
    probes = re.search(r"<table class='probes'>(.*?)</table>", text, flags=re.S)
    assert probes
    for name in paramset.provenance["probes"]:
        assert f"<td>{name}</td>" in probes.group(1)


def _first_cheaper(values, a, b, top=256):
    """The first remote_cpus at which ``a`` is cheaper than ``b``, pricing every integer with cpus
    raised to remote_cpus + 1 only where the set has fewer (the charts' convention); None if never."""
    for r in range(1, top + 1):
        d = evaluate_point(registry.resolve(dict(values, remote_cpus=r, cpus=max(values["cpus"], r + 1))), [a, b])
        if d[a]["expected_ns"] < d[b]["expected_ns"]:
            return r
    return None


def _breakeven_line(text, a, b, param):
    table = re.search(r"<table class='breakeven'>(.*?)</table>", text, flags=re.S).group(1)
    return next(r for r in re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)
                if f"<td>{a}</td><td>{b}</td><td>{param}</td>" in r)


@pytest.mark.parametrize("a, b", [("drain_remote", "drain_local"), ("drain_all", "drain_local")])
def test_break_even_rows_are_the_break_even_commands_answer(shipped_report, a, b):
    """The integer at which ``a`` becomes cheaper than ``b`` as remote_cpus grows, found here by
    pricing every integer with the charts' cpus, is the report's break-even (breakeven_row's, and
    the command's the row names). The table used to price every remote_cpus at cpus = 257, which
    put drain_all's break-even at 20 for a set of 8 CPUs, where the charts show 7."""
    from costmodel.breakeven import breakeven_row

    text, values, _ = shipped_report
    values = registry.resolve(values)
    first = _first_cheaper(values, a, b)
    row = breakeven_row(dict(values), a, b, "remote_cpus", low=1, high=256, raise_cpus=True)
    if first is None or first == 1:
        assert row["break_even"] == "none"
        return
    assert row["break_even"] == f"{first} CPUs"
    line = _breakeven_line(text, a, b, "remote_cpus")
    assert f">{first} CPUs<" in line
    assert f"costmodel breakeven --policy {a} --against {b} --solve-for remote_cpus --low 1 --high 256 --raise-cpus" in line
    assert main(["breakeven", "--policy", a, "--against", b, "--solve-for", "remote_cpus", "--low", "1",
                 "--high", "256", "--raise-cpus", "--json"]) == 0


def test_the_verdict_and_the_table_give_one_break_even(shipped_report):
    """the verdict read remote_cpus ~ 5.683 off the map's grid while the table
    and `costmodel breakeven` solved 5.703. The verdict now gives the solved crossing, the same
    number as the table, and the integer from which the order changes, found here by pricing."""
    text, values, _ = shipped_report
    values = registry.resolve(values)
    first = _first_cheaper(values, "drain_remote", "drain_local")
    assert first is not None and first > 1
    cross = re.search(r"<td>drain_remote</td><td>drain_local</td><td>remote_cpus</td><td[^>]*>[^<]*</td>"
                      r"<td[^>]*>([^<]+)</td>", _breakeven_line(text, "drain_remote", "drain_local", "remote_cpus"))
    crossing = cross.group(1)
    # the continuous crossing lies between the last integer where drain_local wins and the first where it loses
    assert first - 1 < float(crossing.replace(",", "")) < first
    sentence = re.search(r"drain_remote and drain_local cost the same at remote_cpus &asymp; ([^ ]+) "
                         r"\(drain_remote cheaper from (\d+) CPUs on\)", text)
    assert sentence, "the verdict states the solved break-even"
    assert sentence.group(1) == crossing and int(sentence.group(2)) == first


def test_the_map_share_says_what_range_it_counts(shipped_report):
    """The map's shares count remote_cpus 1-256 for a set of a few CPUs: the sentence names the
    range and gives the shares within the set's own CPUs, counted here from the cells' policies."""
    text, values, _ = shipped_report
    m = re.search(r"Over the decision map \(remote_cpus 1&ndash;256 CPUs &times; wp_gap_s [^)]*\)", text)
    assert m, "the map's range is stated"
    own = values["cpus"] - 1
    assert f"within its own CPUs (remote_cpus up to {own})" in text


def test_sections_across_machines_and_whole_workloads(shipped_report):
    from costmodel import paramfile

    text, _, _ = shipped_report
    assert ">Across machines<" in text
    if paramfile.committed_sets():
        assert "id='machines'" in text
        assert f"of the {len(paramfile.committed_sets())} committed parameter sets" in text
    assert ">The model against whole workloads<" in text
    default = paramfile.load(paramfile.default_params_path())
    directory = paramfile.DATA_DIR / "measurements" / default.provenance.get("dataset_id", "")
    if not directory.is_dir():
        assert "Skipped" in text
        return
    from costmodel.bench import read_measurements

    frame, _ = read_measurements(directory)
    if not (frame["probe"] == "swap_cow").any():
        return
    assert "id='workloads'" in text
    sw = frame[(frame["probe"] == "swap_cow") & (frame["op"] == "swap_write")]
    copied = sw[sw["measure"] == "copied"]
    # copies happen only where the page is still shared with a live child: then the answer is No
    copies_elsewhere = copied[(copied["sharing"] != "child_alive") & (copied["successes"] > 0)]
    answer = "No" if copies_elsewhere.empty else "Yes"
    assert f"Does the unnecessary copy happen on swap-in (zram, SWP_SYNCHRONOUS_IO)? {answer}, on this machine" in text
    child = copied[copied["sharing"] == "child_alive"]
    assert f"{int(child['successes'].sum()):,} of {int(child['n'].sum()):,} writes copied" in text


def test_report_builds_where_the_data_are_absent(tmp_path, monkeypatch):
    """An installed package carries no data directory: the two data sections say they are
    skipped, and the report is still written."""
    from costmodel import paramfile

    monkeypatch.setattr(paramfile, "committed_sets", lambda: {})
    monkeypatch.setattr(paramfile, "DATA_DIR", tmp_path / "no-data")
    monkeypatch.setattr(paramfile, "PARAMS_DIR", tmp_path / "no-data" / "params")
    out = tmp_path / "r.html"
    write_report(registry.resolve(), out, simulate_points=0)
    text = out.read_text(encoding="utf-8")
    assert ">Across machines<" in text and "nothing to compare" in text
    assert ">The model against whole workloads<" in text and "Skipped" in text
    assert "id='machines'" not in text and "id='workloads'" not in text


# ---- the explore view's formulas for every choice, evaluated by vl-convert's JavaScript engine ----


def test_explore_formulas_equal_the_package_for_every_choice():
    """The selects switch the formulas: for every combination of gap_model, position_model and
    shootdown_model, the page's cost columns are the package's."""
    import itertools

    values = registry.resolve({"batch_position": 3})
    ex = live.explore(values, map_n=8, drag_n=4)
    remote = [1, 7, 100]
    shown = "datum.remote_cpus + '|' + datum.policy + '|' + format(datum.expected_ns, '.12e')"
    chart = ex.cost.transform_filter({"field": "remote_cpus", "oneOf": remote}).transform_calculate(
        label=shown).mark_text().encode(text="label:N", y="label:N")
    base = chart.to_dict()
    cats = {c: registry.CATEGORICAL[c].choices for c in live.CHOICES}
    for combo in itertools.product(*cats.values()):
        choice = dict(zip(cats, combo))
        spec = dict(base, params=[dict(p, value=choice[p["name"]]) if p["name"] in choice else p for p in ex.params])
        got = {}
        for t in _texts(spec):
            parts = t.split("|")
            if len(parts) == 3:
                got[(int(parts[0]), parts[1])] = float(parts[2].replace("\u2212", "-"))
        assert len(got) == len(remote) * len(POLICIES), choice
        for r in remote:
            direct = evaluate_point(registry.resolve(dict(values, **choice, remote_cpus=r,
                                                          cpus=max(values["cpus"], r + 1))))
            for p, out in direct.items():
                assert got[(r, p)] == pytest.approx(out["expected_ns"], rel=1e-9), (choice, r, p)


def test_report_prints_progress_and_checks_the_destination_first(tmp_path, capsys, monkeypatch):
    """`make demo` showed nothing during the report's tens of seconds; a
    read-only destination was reported only after them."""
    import tempfile

    from costmodel import report as R

    out = tmp_path / "r.html"
    assert main(["report", "--params", "none", "-o", str(out), "--no-simulation"]) == 0
    err = capsys.readouterr().err
    steps = [l for l in err.splitlines() if l.startswith("report [")]
    assert len(steps) >= 4 and any("draws" in l for l in steps)
    assert main(["report", "--params", "none", "-o", str(tmp_path / "q.html"), "--no-simulation",
                 "--no-progress"]) == 0
    assert "report [" not in capsys.readouterr().err

    def no_place(*_a, **_k):
        raise PermissionError(13, "Permission denied")

    def too_late(*_a, **_k):
        raise AssertionError("the report was built before the destination was checked")

    monkeypatch.setattr(tempfile, "mkstemp", no_place)
    monkeypatch.setattr(R, "build_report", too_late)
    assert main(["report", "--params", "none", "-o", str(tmp_path / "ro.html")]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and err.count("\n") == 1
