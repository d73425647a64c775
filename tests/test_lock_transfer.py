"""What another CPU's lines cost: the lock_transfer recipe against a hand derivation, and the probe
on this machine's kernel (skipped, with the reason, where it cannot run)."""

from __future__ import annotations

import os
import platform

import numpy as np
import pytest

from costmodel.calibration.recipes import Obs, fit_lock_transfer


def test_recipe_recovers_the_line_and_the_remote_per_folio_cost_by_hand():
    """A lock handed over costs the line plus the local take; a drain of B - 1 remote folios
    costs the base plus B - 1 remote folio prices: the differences give the two parameters."""
    B, per_local, base, line, per_remote = 31, 100.0, 900.0, 80.0, 137.0
    handoff = Obs(line + 2.5, 0.5, "handoff", "mean")
    local = Obs(2.5, 0.01, "local", "mean")
    remote_full = Obs(base + per_remote * (B - 1), 5.0, "remote", "mean")
    local_full = Obs(base + per_local * (B - 1), 5.0, "local drain", "mean")
    out = fit_lock_transfer(handoff, local, remote_full, local_full, {"batch_size": B, "drain_per_folio_ns": per_local},
                            rng=np.random.default_rng(0), n_boot=400)
    est = out.estimates
    assert est["cacheline_transfer_ns"].value == pytest.approx(line, rel=1e-9)
    assert est["drain_per_remote_folio_ns"].value == pytest.approx(per_remote, rel=1e-9)
    assert est["cacheline_transfer_ns"].ci_low < line < est["cacheline_transfer_ns"].ci_high
    assert est["drain_per_remote_folio_ns"].ci_low < per_remote < est["drain_per_remote_folio_ns"].ci_high
    assert [row["forward"] for row in out.record["residuals"]] == [["lock_transfer_ns"], ["remote_refs_drain_extra_ns"]]


def _why_not() -> str | None:
    if platform.system() != "Linux":
        return "the probe needs Linux"
    if os.geteuid() != 0:
        return "not root: the drain trials are verified through /proc/kpageflags"
    if (os.cpu_count() or 1) < 2 or len(os.sched_getaffinity(0)) < 2:
        return "needs two CPUs this process may run on"
    from costmodel.bench import compile as comp
    from costmodel.errors import UserError

    try:
        comp.find_compiler()
    except UserError as exc:
        return str(exc)
    return None


@pytest.mark.kernel
def test_the_probe_on_this_kernel(tmp_path):
    """A lock handed between the two CPUs costs far more than the same lock on one; every drain
    trial checks out (the folio off the LRU before, on it after); a drain moves more with more
    folios, whichever CPU touched them last."""
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    from costmodel.bench import read_measurements, run_suite

    result = run_suite(tmp_path / "lt", quick=True, probes=["lock_transfer"], progress=False)
    assert not result.failed, result.reasons
    frame, _ = read_measurements(tmp_path / "lt")
    rows = frame[frame.probe == "lock_transfer"]
    ns = rows[rows.measure == "ns"]
    handoff = float(ns[ns.op == "lock_handoff"]["mean_ns"].iloc[0])
    local = float(ns[ns.op == "lock_local"]["mean_ns"].iloc[0])
    assert handoff > 5 * local, (handoff, local)
    verified = rows[rows.measure == "verified"]
    assert len(verified) == 14 and (verified["fraction"] >= 0.95).all()
    for op in ("drain_remote_refs", "drain_local_refs"):
        by_fill = ns[ns.op == op].set_index("folios")["mean_ns"]
        assert by_fill.index.max() >= 20 and by_fill.loc[by_fill.index.max()] > 2 * by_fill.loc[0], op
