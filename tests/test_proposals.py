"""The 2026 proposals beside the kernel's policy: the comparison's figures against hand
derivations from the event tree, the maps against the model point by point, the command."""

import json

import numpy as np
import pytest

from costmodel import proposals, registry
from costmodel.cli import main
from costmodel.evaluate import evaluate_point, residency_value
from costmodel.textfmt import format_ns


@pytest.fixture(scope="module")
def point():
    return registry.resolve({"p_other_ref": 0.2, "p_same_cpu": 0.3, "p_swapcache": 0.1, "p_more_refs": 0.25})


@pytest.fixture(scope="module")
def comparison(point):
    return proposals.compare(point, draws=400, seed=3)


def test_drains_saved_and_copies_changed_by_hand(point, comparison):
    """From the event tree: a small, non-exclusive folio held (R) in another CPU's batch (1 - s)
    gets a useless local drain under drain_local unless it is copied at once (refcount > 3: two
    other references, or one with the swap cache's); drain_local_if_here skips exactly those. The
    RFC skips the drains of held folios with any other reference that escape the early copy. The
    lock-based drain removes the unnecessary copies: held elsewhere, no other reference."""
    v = point
    t = comparison.table.set_index("policy")
    R, s = residency_value(v), v["p_same_cpu"]
    shared = (1 - v["p_exclusive"]) * (1 - v["p_large_folio"])
    po, pm, pc = v["p_other_ref"], v["p_more_refs"], v["p_swapcache"]
    no_early = 1 - (po * pm + po * (1 - pm) * pc)      # held: refcount <= 3
    assert t.loc["drain_local_if_here", "local_drains_saved"] == pytest.approx(shared * R * (1 - s) * no_early, rel=1e-9)
    rfc = shared * R * po * (1 - pm) * (1 - pc)          # held, exactly one other reference, no swap cache
    assert t.loc["drain_local_sole_ref", "local_drains_saved"] == pytest.approx(rfc, rel=1e-9)
    unnecessary = shared * R * (1 - s) * (1 - po)
    assert t.loc["drain_remote_lock", "copies_changed"] == pytest.approx(-unnecessary, rel=1e-9)
    assert t.loc["drain_remote", "copies_changed"] == pytest.approx(-unnecessary, rel=1e-9)
    for p in ("drain_local_sole_ref", "drain_local_if_here", "remove_folio_local"):
        assert t.loc[p, "copies_changed"] == pytest.approx(0.0, abs=1e-15)


def test_costs_intervals_and_shares(point, comparison):
    t = comparison.table.set_index("policy")
    direct = evaluate_point(point, proposals.COMPARED)
    for p, row in t.iterrows():
        assert row.expected_ns == pytest.approx(direct[p]["expected_ns"], rel=1e-12)
        assert row.cpu_us_per_s == pytest.approx(direct[p]["expected_ns"] * point["wp_faults_per_s"] / 1e3, rel=1e-12)
        assert row.saved_ns == pytest.approx(direct["drain_local"]["expected_ns"] - direct[p]["expected_ns"], rel=1e-9)
        assert row.expected_low_ns <= row.expected_high_ns and row.saved_low_ns <= row.saved_high_ns
    assert t.loc["drain_local", "saved_ns"] == 0.0
    assert t["p_cheapest"].sum() == pytest.approx(1.0)


def test_maps_name_the_cheapest_of_the_model(point):
    cells = proposals.decision_map(point, n=5)
    assert len(cells) == 25
    for _, c in cells.sample(6, random_state=1).iterrows():
        out = evaluate_point(dict(point, p_same_cpu=c.p_same_cpu, p_other_ref=c.p_other_ref), proposals.COMPARED)
        costs = {p: out[p]["expected_ns"] for p in proposals.COMPARED}
        assert c.cheapest_ns == pytest.approx(min(costs.values()), rel=1e-9)
        assert costs[c.cheapest] == pytest.approx(min(costs.values()), rel=1e-9)
        assert c.margin_ns >= 0


def test_the_holders_state_moves_the_queued_drain_and_not_the_lock(point):
    """Per cell, the lock-based drain's cost is the same whatever the holder does; the queued
    drain's grows from idle to busy to real-time."""
    out = {}
    for label, busy, rt in proposals.HOLDER_STATES:
        out[label] = evaluate_point(dict(point, p_holder_busy=busy, p_holder_rt=rt), ["drain_remote", "drain_remote_lock"])
    lock = [out[s]["drain_remote_lock"]["expected_ns"] for s in out]
    queued = [out[s]["drain_remote"]["expected_ns"] for s in ("idle", "busy", "real-time")]
    assert np.ptp(lock) == 0.0
    assert queued[0] < queued[1] < queued[2]
    cells = proposals.holder_map(point, remote_cpus=(1, 8))
    assert set(cells["holder"]) == {"idle", "busy", "real-time"} and len(cells) == 6
    assert not (cells[cells["holder"] == "real-time"]["cheapest"] == "drain_remote").any()


def test_paragraph_quotes_the_table(point, comparison):
    same_other, holders = proposals.decision_map(point, n=5), proposals.holder_map(point, remote_cpus=(1, 8))
    text = proposals.paragraph(comparison, same_other, holders)
    k = comparison.table.set_index("policy").loc["drain_local"]
    assert format_ns(k.expected_ns) in text
    lock, queued = proposals.lock_drain_ns(point)
    assert f"at {format_ns(lock)} per drain instead of {format_ns(queued)}" in text
    assert lock < queued
    for p in ("drain_local_sole_ref", "drain_local_if_here", "remove_folio_local", "drain_remote_lock"):
        assert p in text
    assert "assumed registry defaults" in text   # no parameter set: the lock path's parts are assumed


def test_eval_proposals_command(capsys):
    code = main(["eval", "--params", "none", "--proposals", "--draws", "200"])
    out = capsys.readouterr().out
    assert code == 0 and "What" not in out and "drain_remote_lock" in out and "P(cheapest)" in out
    code = main(["eval", "--params", "none", "--proposals", "--draws", "200", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and {r["policy"] for r in doc["comparison"]} == set(proposals.COMPARED)
    assert doc["paragraph"].startswith("At this point")


def test_report_section_has_its_heading_and_tables(point):
    html = "".join(proposals.report_section(point, draws=200))
    assert "<h2>What the 2026 proposals change</h2>" in html and html.count("<table>") == 3
