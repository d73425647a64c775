"""Build hook: the shipped parameter sets travel inside the package.

``data/params`` (sets calibrated by this project) and ``data/reference`` (sets built from
published figures, with their CSVs) are copied into ``costmodel/_data`` of the built package, so an
installed costmodel finds its default set and reference sets the way a checkout does
(``costmodel.paramfile.DATA_DIR``). Measurement directories stay in the repository.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SHIPPED = ("params", "reference")


class BuildWithData(build_py):
    def run(self):
        super().run()
        root = Path(__file__).resolve().parent / "data"
        target = Path(self.build_lib) / "costmodel" / "_data"
        for sub in SHIPPED:
            src = root / sub
            if src.is_dir():
                dst = target / sub
                dst.mkdir(parents=True, exist_ok=True)
                for f in sorted(src.iterdir()):
                    if f.is_file() and f.suffix in (".json", ".csv", ".md"):
                        shutil.copy2(f, dst / f.name)


setup(cmdclass={"build_py": BuildWithData})
