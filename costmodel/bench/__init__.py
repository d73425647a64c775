"""Measure the real kernel: C probes, their runner, and readers for what they write.

Python API (the rest of the project calls only these):

``run_suite(out_dir, quick=False, probes=None, force=False, resume=False, progress=True) -> SuiteResult``
    Compile (cached) and run the probes — all of :data:`PROBES`, or the names given — and write
    ``out_dir``: ``measurements/<probe>.csv`` (tidy, one row per measured configuration; each probe's
    table has its own configuration keys),
    ``provenance.json`` (allowlisted machine facts, batch size found, per-probe status),
    ``skipped.json`` and ``raw/<probe>.tsv.gz`` (every raw sample). Probe by probe, atomically;
    ``resume`` continues an interrupted directory, ``force`` starts one over.

``read_measurements(directory) -> (pandas.DataFrame, dict)``
    The summary and provenance of a measurement directory, validated (UserError otherwise): every
    probe's rows in one frame with every probe's configuration keys (:data:`SUMMARY_COLUMNS`). A set
    written before a column was added to the catalog reads with that column empty; one written as a
    single wide ``measurements.csv`` (before the per-probe tables) reads as before, with a note.

``resummarise(directory, force=False) -> ResummaryResult``
    Rebuild a directory's tables (and batch_size_found, per-probe counts and skips) from its raw
    files with the current summary code; a summary it would change (or a wide one it would replace
    by tables) needs ``force``.

``read_raw(directory, probe) -> pandas.DataFrame``
    One probe's raw samples from a measurement directory: configuration columns, measure, value.

``read_will_it_scale(path, tasks=None, mode=None) -> pandas.DataFrame``
    will-it-scale results: a test binary's log (its ``average:`` lines) or runtest.py's CSV.

``parse_probe_output(text, expected=None) -> ProbeOutput``
    Parse and validate one probe's raw output (the format is documented in probes/harness.h).

``infer_batch_size(summary) -> int | None``
    The per-CPU LRU batch size read off the unnecessary-copy step.

Tables: :data:`PROBES` (one entry per probe, declaring its configuration keys), :data:`SUMMARY_COLUMNS`
and :data:`CONFIG_COLUMNS` (every probe's keys, as the in-memory summary has them).
Columns are described in ``costmodel/bench/README.md``.
"""

from .catalog import CONFIG_COLUMNS, PROBES, RESULT_COLUMNS, SUMMARY_COLUMNS, ProbeSpec
from .parse import ProbeOutput, parse_probe_output, read_probe_file
from .runner import ResummaryResult, SuiteResult, read_measurements, read_raw, resummarise, run_suite
from .summary import infer_batch_size
from .willitscale import read_will_it_scale

__all__ = [
    "CONFIG_COLUMNS", "PROBES", "RESULT_COLUMNS", "SUMMARY_COLUMNS", "ProbeOutput", "ProbeSpec",
    "ResummaryResult", "SuiteResult", "infer_batch_size", "parse_probe_output", "read_measurements",
    "read_probe_file", "read_raw", "read_will_it_scale", "resummarise", "run_suite",
]
