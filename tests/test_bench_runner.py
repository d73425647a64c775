"""Ctrl-C while a probe is running: the probe and its own children are killed and reaped."""

import os
from pathlib import Path
import signal
import stat
import threading
import time

import pytest

from costmodel.bench.runner import _run_binary


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_interrupt_mid_output_kills_and_reaps_the_probe_group(tmp_path):
    pids = tmp_path / "pids"
    fake = tmp_path / "fake_probe"
    fake.write_text(
        "#!/bin/sh\n"
        "sleep 60 &\n"                      # a child of the probe, in its process group
        f"echo $$ $! > {pids}\n"
        "echo 'plan\tsamples=100'\n"
        "for i in 1 2 3; do echo 'sample\t1'; done\n"
        "sleep 60\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)

    def interrupt_when_started():
        for _ in range(200):
            if pids.exists() and pids.read_text().strip():
                break
            time.sleep(0.02)
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_when_started, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        _run_binary(fake, [], "fake", timeout_s=30, progress=False)
    probe_pid, child_pid = (int(x) for x in pids.read_text().split())
    deadline = time.time() + 5
    while (_alive(probe_pid) or _alive(child_pid)) and time.time() < deadline:
        time.sleep(0.05)
    assert not _alive(probe_pid), "the probe survived Ctrl-C"
    assert not _alive(child_pid), "the probe's child survived Ctrl-C"


def _sample_writer(tmp_path, samples: int):
    fake = tmp_path / "fake_probe"
    fake.write_text(
        "#!/bin/sh\n"
        f"echo 'plan\tsamples={samples}'\n"
        f"i=0; while [ $i -lt {samples} ]; do echo 'sample\tx=1'; i=$((i+1)); done\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return fake


def test_progress_off_a_terminal_is_plain_lines(tmp_path, capsys, monkeypatch):
    from costmodel.bench import runner

    monkeypatch.setattr(runner._Progress, "LINE_EVERY_S", 0.0)   # a line at every update
    text, rc, _ = _run_binary(_sample_writer(tmp_path, 600), [], "fake", timeout_s=30, progress=True)
    assert rc == 0 and text.count("sample\t") == 600
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b" not in err
    lines = err.strip().splitlines()
    assert lines[0].startswith("fake: started") and lines[-1] == lines[-1].strip()
    assert any("running, 256/600 samples" in line for line in lines)
    assert "fake: finished, 600/600 samples" in lines[-1]


def test_no_progress_prints_nothing(tmp_path, capsys):
    _run_binary(_sample_writer(tmp_path, 10), [], "fake", timeout_s=30, progress=False)
    assert capsys.readouterr().err == ""


def test_progress_on_a_terminal_is_a_bar():
    import io

    from costmodel.bench.runner import _Progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    bar = _Progress("fake", enabled=True, stream=stream)
    bar.set_total(10)
    bar.update(10)
    bar.close()
    assert "\r" in stream.getvalue() and "10/10" in stream.getvalue()


def test_repeat_interleaves_rounds_and_measures_their_spread(tmp_path, monkeypatch):
    """bench --repeat 3: round 1 of every probe before round 2 of any, each with --share 3 and its
    own seed (seed + k - 1), one raw file per round, and the summary pools every sample with the
    spread between the rounds' means (computed here from the samples the fake wrote)."""
    import gzip
    import json as _json

    import numpy as np
    import pandas as pd

    from costmodel.bench import runner

    log = tmp_path / "calls.log"
    fakes = {}
    for name, config in (("drain_cost", "op=madv_cold\\tfolios=%d"), ("copy_bandwidth",
                                                                       "op=copy_4k\\tcache_state=hot\\tsize_bytes=%d")):
        # samples 100 * (seed mod 7) + x + r, 5 per x in 1, 2
        fake = tmp_path / f"fake_{name}"
        fake.write_text(
            "#!/bin/sh\n"
            f"echo \"$@\" >> {log}\n"
            "seed=0; while [ $# -gt 0 ]; do [ \"$1\" = --seed ] && seed=$2; shift; done\n"
            "base=$(( (seed % 7) * 100 ))\n"
            f"printf 'probe\\tname={name}\\tformat=1\\n'\n"
            "n=0; for f in 1 2; do for r in 1 2 3 4 5; do "
            f"printf 'sample\\t{config}\\tns=%d\\n' $f $((base + f + r)); n=$((n+1)); done; done\n"
            "printf 'end\\tsamples=%d\\n' $n\n")
        fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
        fakes[name] = fake
    monkeypatch.setattr(runner._compile, "find_compiler", lambda: "cc")
    monkeypatch.setattr(runner._compile, "compile_probe", lambda name, compiler=None: fakes[name])
    facts = {"cpu_model": "test", "kernel_release": "6.18", "online_cpus": 2, "dataset_id": "test"}
    monkeypatch.setattr(runner, "machine_facts", lambda: dict(facts))
    out = tmp_path / "m"
    runner.run_suite(out, probes=["drain_cost", "copy_bandwidth"], progress=False, repeat=3, seed=40)
    calls = log.read_text().splitlines()
    assert len(calls) == 6
    assert [c.split()[1] for c in calls] == ["40", "40", "41", "41", "42", "42"]   # interleaved rounds
    assert all("--share 3" in c for c in calls)
    assert sorted(p.name for p in (out / "raw").iterdir()) == sorted(
        f"{n}.round{k}.tsv.gz" for n in ("drain_cost", "copy_bandwidth") for k in (1, 2, 3))
    prov = _json.loads((out / "provenance.json").read_text())
    assert prov["seed"] == 40 and prov["repeat"] == 3
    frame = pd.read_csv(out / "measurements" / "drain_cost.csv")   # the probe's own table
    row = frame[frame["folios"] == 1].iloc[0]
    per_round = [np.mean([(s % 7) * 100 + 1 + r for r in range(1, 6)]) for s in (40, 41, 42)]
    assert row["n"] == 15 and row["rounds"] == 3
    assert row["mean_ns"] == pytest.approx(np.mean(per_round))
    assert row["round_sd"] == pytest.approx(np.std(per_round, ddof=1))
    with gzip.open(out / "raw" / "drain_cost.round2.tsv.gz", "rt") as fh:
        assert "ns=" + str(41 % 7 * 100 + 1 + 1) in fh.read()


def test_a_single_round_set_reads_as_before(tmp_path):
    """A recording of one round keeps raw/<probe>.tsv.gz and leaves rounds/round_sd empty."""
    import pandas as pd

    from costmodel.bench import read_measurements

    fixture = Path(__file__).parent / "fixtures" / "prediction" / "quick-amd"
    frame, _ = read_measurements(fixture)
    assert frame["rounds"].isna().all() and frame["round_sd"].isna().all()


def test_an_interrupted_probe_does_not_say_finished(tmp_path, capsys):
    # the probe is stopped by SIGINT after 3 of its 100 planned samples (as Ctrl-C stops it)
    fake = tmp_path / "fake_probe"
    fake.write_text(
        "#!/bin/sh\n"
        "echo 'plan\tsamples=100'\n"
        "for i in 1 2 3; do echo 'sample\tx=1'; done\n"
        "kill -INT $$\n"
        "sleep 5\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    text, rc, _ = _run_binary(fake, [], "fake", timeout_s=30, progress=True)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == -signal.SIGINT
    assert "finished" not in last and "fake: interrupted, 3/100 samples" in last


def test_a_failing_probe_says_so(tmp_path, capsys):
    fake = tmp_path / "fake_probe"
    fake.write_text("#!/bin/sh\necho 'plan\tsamples=5'\necho 'sample\tx=1'\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    text, rc, _ = _run_binary(fake, [], "fake", timeout_s=30, progress=True)
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 3 and "fake: failed (exit status 3), 1/5 samples" in last
