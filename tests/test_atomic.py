"""Outputs that are not regular files: a device node, a named pipe or a symbolic link given to
``-o`` is written through (or refused), never replaced by a regular file.

Every node is made in a temporary directory (a clone of /dev/null or /dev/full by its device
numbers), never the system's own."""

import os
import stat
import threading
from pathlib import Path

import pytest

from costmodel.atomic import write_atomic, write_output
from costmodel.cli import main
from costmodel.errors import UserError
from costmodel.model import POLICIES

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="making device nodes needs root")
SET = str(Path(__file__).resolve().parents[1] / "data" / "measurements" / "kvm-amd-epyc-f26m2-2cpu-linux6.18")


def run(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def char_node(directory: Path, name: str, minor: int) -> Path:
    """A character device of the memory driver (major 1): minor 3 is null, 7 is full."""
    path = directory / name
    os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    return path


def is_char_device(path: Path) -> bool:
    return stat.S_ISCHR(os.lstat(path).st_mode)


class FifoReader:
    """Reads everything written into a named pipe, on a thread (a writer waits for a reader)."""

    def __init__(self, path: Path):
        self.data = b""
        self.thread = threading.Thread(target=self._read, args=(path,), daemon=True)
        self.thread.start()

    def _read(self, path):
        with open(path, "rb") as fh:
            self.data = fh.read()

    def result(self) -> bytes:
        self.thread.join(timeout=120)
        assert not self.thread.is_alive(), "the writer never closed the pipe"
        return self.data


SWEEP = ("sweep", "--vary", "remote_cpus=1:4:4")


@needs_root
def test_sweep_into_a_null_device_writes_through_and_keeps_the_node(capsys, tmp_path):
    null = char_node(tmp_path, "null", 3)
    code, out, err = run(capsys, *SWEEP, "-o", str(null), "--force")
    assert code == 0, err
    assert is_char_device(null) and os.stat(null).st_rdev == os.makedev(1, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["null"]  # no temporary file left beside it


@needs_root
def test_sweep_into_a_full_device_is_one_line_exit_2_and_keeps_the_node(capsys, tmp_path):
    full = char_node(tmp_path, "full", 7)
    code, out, err = run(capsys, *SWEEP, "-o", str(full), "--force")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0] and "Traceback" not in err
    assert is_char_device(full) and os.stat(full).st_rdev == os.makedev(1, 7)


@needs_root
def test_an_existing_device_still_needs_force(capsys, tmp_path):
    null = char_node(tmp_path, "null", 3)
    code, out, err = run(capsys, *SWEEP, "-o", str(null))
    assert code == 2 and "--force" in err
    assert is_char_device(null)


def test_sweep_into_a_fifo_reaches_its_reader(capsys, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = FifoReader(fifo)
    code, out, err = run(capsys, *SWEEP, "-o", str(fifo), "--force")
    data = reader.result()
    assert code == 0, err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    lines = data.decode().strip().splitlines()
    assert "remote_cpus" in lines[0].split(",")
    assert len(lines) == 1 + 4 * len(POLICIES)  # the header and a row per remote_cpus value and policy


def test_sweep_through_a_symlink_replaces_the_target_and_keeps_the_link(capsys, tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "sweep.csv"
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    code, out, err = run(capsys, *SWEEP, "-o", str(link), "--force")
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == str(target)
    text = target.read_text()
    assert text != "old\n" and len(text.strip().splitlines()) == 1 + 4 * len(POLICIES)
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["sweep.csv"]


def test_a_symlink_to_an_existing_file_still_needs_force(capsys, tmp_path):
    target = tmp_path / "kept.csv"
    target.write_text("keep me\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    code, out, err = run(capsys, *SWEEP, "-o", str(link))
    assert code == 2 and "--force" in err
    assert link.is_symlink() and target.read_text() == "keep me\n"


def test_a_dangling_symlink_writes_the_file_it_names(tmp_path):
    target = tmp_path / "new.csv"
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    write_atomic(link, "a,b\n", force=True)
    assert link.is_symlink() and target.read_text() == "a,b\n"


@needs_root
def test_a_block_device_is_refused_before_any_work(capsys, tmp_path):
    # a loop-device node whose number no loop device uses: refused without being opened
    block = tmp_path / "disk"
    os.mknod(block, stat.S_IFBLK | 0o600, os.makedev(7, 255))
    code, out, err = run(capsys, *SWEEP, "-o", str(block), "--force")
    assert code == 2 and "block device" in err and len(err.strip().splitlines()) == 1
    assert stat.S_ISBLK(os.lstat(block).st_mode)


def test_a_socket_is_refused(tmp_path):
    import socket

    path = tmp_path / "sock"
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(path))
        with pytest.raises(UserError, match="socket"):
            write_output(path, "x", force=True)
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
    finally:
        s.close()


@needs_root
@pytest.mark.parametrize("writer", ["write_output", "write_atomic"])
def test_every_writer_keeps_a_device_node(tmp_path, writer):
    null = char_node(tmp_path, "null", 3)
    {"write_output": write_output, "write_atomic": write_atomic}[writer](null, b"\x00" * 10, force=True)
    assert is_char_device(null)


@needs_root
def test_calibrate_into_a_full_device_is_one_line_and_keeps_it(capsys, tmp_path):
    full = char_node(tmp_path, "full", 7)
    code, out, err = run(capsys, "calibrate", SET, "-o", str(full), "--force")
    lines = [line for line in err.strip().splitlines() if not line.startswith("note: ")]   # an older set's layout
    assert code == 2 and "No space left on device" in err and len(lines) == 1
    assert is_char_device(full)


@needs_root
def test_sensitivity_chart_into_a_null_device_keeps_it(capsys, tmp_path):
    null = char_node(tmp_path, "null.html", 3)
    code, out, err = run(capsys, "sensitivity", "--chart", str(null), "--force")
    assert code == 0, err
    assert is_char_device(null)
