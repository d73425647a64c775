#!/bin/sh
# How this trace was recorded (run as root from the repository root):
#   sh data/traces/redis-bgsave/run.sh OUT_DIR
# Debian's redis-server 7.0 (the program traced, with its BGSAVE children) under Debian's
# redis-benchmark (SET, 256-byte values over 200,000 keys, pipelined 16 deep), with a BGSAVE
# every 1.5 s (six fork snapshots), then SHUTDOWN NOSAVE, which ends the trace.
set -e
OUT=${1:?usage: run.sh OUT_DIR}
COSTMODEL=${COSTMODEL:-.venv/bin/costmodel}
PORT=${PORT:-7379}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
(
  until redis-cli -p "$PORT" ping >/dev/null 2>&1; do sleep 0.1; done
  redis-benchmark -p "$PORT" -t set -n 1500000 -r 200000 -d 256 -P 16 -q >/dev/null &
  bench=$!
  for i in 1 2 3 4 5 6; do
    sleep 1.5
    redis-cli -p "$PORT" bgsave >/dev/null
  done
  wait "$bench"
  while redis-cli -p "$PORT" info persistence | grep -q 'rdb_bgsave_in_progress:1'; do sleep 0.2; done
  redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
) &
"$COSTMODEL" trace -o "$OUT" --no-raw -- \
  redis-server --port "$PORT" --save '' --appendonly no --dir "$WORK" --daemonize no --loglevel warning
