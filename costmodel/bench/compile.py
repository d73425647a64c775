"""Compile probes with the system C compiler into a per-user cache keyed by the source hash."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

from ..errors import UserError

CFLAGS = ("-O2", "-std=gnu11", "-Wall", "-pthread")
HARNESS_FILES = ("harness.c", "harness.h")
COMPILERS = ("cc", "gcc", "clang")


def probe_dir() -> Path:
    """Where the probe sources are installed."""
    return Path(str(resources.files("costmodel.bench") / "probes"))


def cache_dir() -> Path:
    """Per-user cache: $XDG_CACHE_HOME/costmodel/probes, else ~/.cache/costmodel/probes."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "costmodel" / "probes"


def find_compiler() -> str:
    """Path of the C compiler ($CC if set, else cc, gcc or clang); UserError when there is none."""
    wanted = os.environ.get("CC")
    candidates = [wanted] if wanted else list(COMPILERS)
    for name in candidates:
        path = shutil.which(name)
        if path:
            return path
    looked = wanted if wanted else ", ".join(COMPILERS)
    raise UserError(f"no C compiler found (looked for {looked}); install gcc (apt-get install gcc) "
                    f"or set CC to a compiler")


def compiler_version(compiler: str) -> str:
    try:
        out = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return "unknown"
    first = (out.stdout or out.stderr).strip().splitlines()
    return first[0] if first else "unknown"


def sources_hash(probe: str | None = None) -> str:
    """SHA-256 over the harness and one probe's source (all probes when ``probe`` is None)."""
    root = probe_dir()
    names = list(HARNESS_FILES)
    if probe is None:
        names += sorted(p.name for p in root.glob("*.c") if p.name not in HARNESS_FILES)
    else:
        names.append(f"{probe}.c")
    h = hashlib.sha256()
    for name in names:
        path = root / name
        if not path.exists():
            raise UserError(f"probe source {path} is missing; reinstall costmodel")
        h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def compile_probe(probe: str, compiler: str | None = None) -> Path:
    """The path of the compiled probe, compiling it first unless the cache has it."""
    compiler = compiler or find_compiler()
    version = compiler_version(compiler)
    key = hashlib.sha256(
        (sources_hash(probe) + "|" + compiler + "|" + version + "|" + " ".join(CFLAGS)).encode()
    ).hexdigest()[:20]
    target = cache_dir() / key / probe
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    root = probe_dir()
    fd, tmp = tempfile.mkstemp(prefix=f".{probe}.", dir=target.parent)
    os.close(fd)
    cmd = [compiler, *CFLAGS, "-o", tmp, str(root / "harness.c"), str(root / f"{probe}.c")]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
            raise UserError(f"compiling probe {probe} with {compiler} failed: {' | '.join(tail)}; "
                            f"check that the C library and Linux headers are installed (linux-libc-dev)")
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
