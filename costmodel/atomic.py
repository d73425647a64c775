"""Output files shared by every command that writes one: atomic, never clobbering, never
creating a directory unasked, and ``-`` for standard output.

``check_output(path, force, parents)`` before any work, then ``write_output(path, data, force,
parents)`` at the end; :func:`write_atomic` underneath for a file.

What an existing output path is decides how it is written (:func:`output_target`): a regular file
is replaced atomically (a temporary file beside it, renamed into place); a symbolic link writes
its target the same way and stays a link; a character device (``/dev/null``) or a named pipe is
a stream, written through (nothing is replaced, so nothing can be atomic); a block device, a
socket or a directory is refused. Replacing any existing path, a stream included, needs
``--force``.
"""

from __future__ import annotations

import os
import stat
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


#: how :func:`output_target` classes an output path
REGULAR, STREAM = "regular", "stream"


def output_target(path: Path | str) -> tuple[str, Path]:
    """How ``path`` is written, and where: ``(REGULAR, file)`` for a new or regular file (a
    symbolic link resolved to the file it names, so the link survives the rename), ``(STREAM,
    path)`` for a character device or a named pipe (written through). A UserError for a
    directory, a block device or a socket, which an output must never replace."""
    path = Path(path)
    try:
        st = os.stat(path)  # follows links
    except FileNotFoundError:
        if path.is_symlink():  # a dangling link: write the file it names
            return REGULAR, Path(os.path.realpath(path))
        return REGULAR, path
    except OSError as exc:
        raise UserError(f"{path}: cannot inspect it ({exc.strerror or exc}); choose another path") from None
    mode = st.st_mode
    if stat.S_ISREG(mode):
        return REGULAR, Path(os.path.realpath(path)) if path.is_symlink() else path
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return STREAM, path
    if stat.S_ISDIR(mode):
        raise UserError(f"{path} is a directory; give a file name")
    kind = "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file"
    raise UserError(f"{path} is {kind}; an output is written only to a regular file, a character device "
                    f"or a named pipe: give a file name")


def refuse_overwrite(path: Path, force: bool) -> None:
    """Raise a UserError if ``path`` exists and ``force`` is not set, or if it is something an
    output must never replace (:func:`output_target`)."""
    output_target(path)
    if (Path(path).exists() or Path(path).is_symlink()) and not force:
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
    kind, target = output_target(path)
    if kind == REGULAR:
        ensure_directory(target.parent, parents, what=f"output {path.name}")


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
    must exist; ``parents`` creates it. A link's target is replaced (the link stays); a
    character device or a named pipe is written through (:func:`output_target`)."""
    path = Path(path)
    refuse_overwrite(path, force)
    kind, target = output_target(path)
    if kind == STREAM:
        _write_through(path, data)
        return path
    ensure_directory(target.parent, parents, what=f"output {path.name}")
    mode = "wb" if isinstance(data, bytes) else "w"
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
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
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise UserError(f"{path}: cannot write there ({exc.strerror or exc}); choose another path") from None
        raise
    return path


def _write_through(path: Path, data: str | bytes) -> None:
    """``data`` into a character device or a named pipe, as a shell's ``>`` would (a pipe with no
    reader waits for one)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOCTTY)
        try:
            view = memoryview(raw)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        finally:
            os.close(fd)
    except OSError as exc:
        raise UserError(f"{path}: cannot write there ({exc.strerror or exc}); choose another path") from None
