"""Atomic, non-clobbering file writes shared by every command that writes output."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import UserError


def refuse_overwrite(path: Path, force: bool) -> None:
    """Raise a UserError if ``path`` exists and ``force`` is not set, or is a directory."""
    if Path(path).is_dir():
        raise UserError(f"{path} is a directory; give a file name")
    if Path(path).exists() and not force:
        raise UserError(f"{path} already exists; pass --force to overwrite it")


def write_atomic(path: Path | str, data: str | bytes, force: bool = False) -> Path:
    """Write ``data`` to a temp file beside ``path``, then rename it into place."""
    path = Path(path)
    refuse_overwrite(path, force)
    mode = "wb" if isinstance(data, bytes) else "w"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UserError(f"{path}: cannot write there ({exc.strerror or exc}); choose another path") from None
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make shared outputs owner-only
    try:
        with os.fdopen(fd, mode) as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise UserError(f"{path}: cannot write there ({exc.strerror or exc}); choose another path") from None
        raise
    return path
