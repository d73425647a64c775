"""Real programs: record a running workload with the kernel's tracepoints, count what the kernel
did (WP faults, copies, the copies an add batch caused, in-fault drains, shootdowns), derive the
model's workload parameters with intervals, and predict the counts with every declared policy.

record (tracefs) -> ingest (raw pages to columns) -> count (per WP fault, per batch move) ->
dataset (tidy tables + provenance) -> derive (parameters with intervals) -> predict (the model
over the measured distribution) -> report section / notebook.
"""
