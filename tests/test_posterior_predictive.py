"""Posterior-predictive check of every shipped calibrated set: the model, evaluated at the set,
reproduces each measured figure the set was fitted from (read afresh from its measurement
directory), within the measurement's own interval. This is the test that catches a calibration
that restates a formula by hand, or a silent bias."""

from pathlib import Path

import pytest

from costmodel import calibrate, paramfile

ROOT = Path(__file__).resolve().parents[1]
MEASUREMENTS = ROOT / "data" / "measurements"


def calibrated_sets():
    out = []
    for path in sorted((ROOT / "data" / "params").glob("*.json")):
        ps = paramfile.load(path)
        directory = MEASUREMENTS / ps.provenance.get("dataset_id", path.stem)
        if directory.is_dir():
            out.append(pytest.param(path, directory, id=path.stem))
    return out


@pytest.mark.parametrize("path,directory", calibrated_sets())
def test_calibrated_set_reproduces_its_measurements(path, directory):
    ps = paramfile.load(path)
    rows = calibrate.posterior_predictive(ps, directory)
    fitted = {f["name"] for f in ps.fit if f.get("n_points", 0) > 0}
    assert fitted and set(rows["fit"]) == fitted, "every fit of the set is checked"
    outside = rows[~rows["inside"]]
    assert outside.empty, outside.to_string()


@pytest.mark.parametrize("path,directory", calibrated_sets())
def test_a_biased_set_fails_the_check(path, directory):
    """The check can fail: shift one calibrated cost by twice the copy fault's tolerance (as a
    formula restated by hand with a missing term would) and the figure it came from is no longer
    reproduced; the other figures still are."""
    ps = paramfile.load(path)
    rows = calibrate.posterior_predictive(ps, directory)
    copy = rows[rows["measurement"].str.contains("copy_child_alive")].iloc[0]
    ps.parameters["alloc_ns"].value += 2 * copy["tolerance"]
    rows = calibrate.posterior_predictive(ps, directory)
    bad = rows[~rows["inside"]]
    assert list(bad["measurement"]) == [copy["measurement"]]
