"""An installed costmodel (a wheel, not this checkout) finds its default and reference parameter
sets, and the report's page template, the way a checkout does: they are package data."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_wheel_ships_the_default_and_reference_sets_and_the_report_template(tmp_path):
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
                   check=True, cwd=tmp_path)
    (wheel,) = wheels.glob("costmodel-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, cwd=tmp_path)
    probe = ("import json, costmodel, costmodel.paramfile as p; from importlib import resources; "
             "print(json.dumps({'module': costmodel.__file__, 'default': str(p.default_params_path()), "
             "'sets': sorted(p.committed_sets()), 'name': p.load(p.default_params_path()).name, "
             "'report_template': sorted(f.name for f in (resources.files('costmodel') / 'templates' / 'report')"
             ".iterdir())}))")
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run([sys.executable, "-c", probe], check=True, cwd=tmp_path, env=env, capture_output=True,
                         text=True).stdout
    got = json.loads(out.strip().splitlines()[-1])
    assert got["module"].startswith(str(target)), "the installed copy, not the checkout, was imported"
    assert got["default"].startswith(str(target))
    shipped = sorted(f"{d}/{p.stem}" for d in ("params", "reference") for p in (ROOT / "data" / d).glob("*.json"))
    assert got["sets"] == shipped
    # the page the report fills in (costmodel.report.template reads these)
    assert got["report_template"] == sorted(f.name for f in (ROOT / "costmodel" / "templates" / "report").iterdir())
    assert {"page.html", "report.css", "page.js"} <= set(got["report_template"])
