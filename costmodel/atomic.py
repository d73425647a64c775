"""Output files shared by every command that writes one: atomic, never clobbering, never
creating a directory unasked, and ``-`` for standard output.

``check_output(path, force, parents)`` before any work, then ``write_output(path, data, force,
parents)`` at the end; :func:`write_atomic` underneath for a file.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from .errors import UserError

#: the output name that means standard output
STDOUT = "-"


def is_stdout(path) -> bool:
    """True when ``path`` is ``-``: the output goes to standard output."""
    return path is not None and str(path) == STDOUT


def describe_output(path) -> str:
    """``path`` as a message names it: 'standard output' for ``-``."""
    return "standard output" if is_stdout(path) else str(path)


def refuse_overwrite(path: Path, force: bool) -> None:
    """Raise a UserError if ``path`` exists and ``force`` is not set, or is a directory."""
    if Path(path).is_dir():
        raise UserError(f"{path} is a directory; give a file name")
    if Path(path).exists() and not force:
        raise UserError(f"{path} already exists; pass --force to overwrite it")


def ensure_directory(directory: Path | str, parents: bool, what: str = "directory") -> Path:
    """``directory`` must exist (and be a directory); with ``parents`` it is created first, as
    ``mkdir -p`` would. A UserError names it otherwise."""
    directory = Path(directory)
    if directory.is_dir():
        return directory
    if directory.exists():
        raise UserError(f"{directory}: exists and is not a directory; give a directory for the {what}")
    if not parents:
        raise UserError(f"{directory}: no such directory; create it first, or pass --parents to create it")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{directory}: cannot create it ({exc.strerror or exc}); choose another path") from None
    return directory


def check_output(path, force: bool = False, parents: bool = False) -> None:
    """Before any work: ``-`` is fine; a file must not exist unless ``force``, must not be a
    directory, and its directory must exist (or, with ``parents``, is created now)."""
    if is_stdout(path):
        return
    path = Path(path)
    refuse_overwrite(path, force)
    ensure_directory(path.parent, parents, what=f"output {path.name}")


def write_output(path, data: str | bytes, force: bool = False, parents: bool = False) -> str:
    """``data`` to standard output when ``path`` is ``-``, else atomically to the file
    (:func:`write_atomic`). Returns how a message names the output."""
    if is_stdout(path):
        if isinstance(data, bytes):
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            sys.stdout.write(data)
            sys.stdout.flush()
        return describe_output(path)
    return str(write_atomic(path, data, force=force, parents=parents))


def write_atomic(path: Path | str, data: str | bytes, force: bool = False, parents: bool = False) -> Path:
    """Write ``data`` to a temp file beside ``path``, then rename it into place. The directory
    must exist; ``parents`` creates it."""
    path = Path(path)
    refuse_overwrite(path, force)
    ensure_directory(path.parent, parents, what=f"output {path.name}")
    mode = "wb" if isinstance(data, bytes) else "w"
    try:
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
