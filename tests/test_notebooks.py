"""The notebooks run top to bottom from a clean checkout, on this interpreter's kernel, and are
stored without outputs."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.notebook

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: each notebook should finish well inside this on a 2-core machine
BUDGET_S = 60


def _kernel_name() -> str:
    """The kernel of the interpreter running the tests (jupyter_client maps 'python3' to
    sys.executable when the kernelspec says plain 'python'); fail loudly if there is none."""
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().find_kernel_specs()
    if "python3" not in specs:
        pytest.fail("no python3 kernel: pip install ipykernel in this environment")
    return "python3"


def test_all_three_are_there():
    assert {p.name for p in NOTEBOOKS} == {"explorer.ipynb", "calibration.ipynb", "validation.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} holds outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_executes(path):
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.prefix)"))
    client = nbclient.NotebookClient(nb, kernel_name=_kernel_name(), timeout=120,
                                     resources={"metadata": {"path": str(path.parent)}})
    started = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - started
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []
    assert nb.cells[-1].outputs[0]["text"].strip() == sys.prefix  # ran on this environment's interpreter
    assert elapsed < BUDGET_S * 1.5, f"{path.name} took {elapsed:.0f} s"
