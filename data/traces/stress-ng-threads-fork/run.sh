#!/bin/sh
# How this trace was recorded (run as root from the repository root):
#   sh data/traces/stress-ng-threads-fork/run.sh OUT_DIR
# Debian's stress-ng 0.15: two pthread workers (threads created and reaped, each touching its stack
# and memory on whichever CPU it lands), one fork worker (children that exit at once, so the
# parent's pages lose exclusivity) and one clone worker (clones sharing and not sharing the mm),
# for 8 s: threads writing pages another CPU faulted in, around fork.
set -e
OUT=${1:?usage: run.sh OUT_DIR}
COSTMODEL=${COSTMODEL:-.venv/bin/costmodel}
"$COSTMODEL" trace -o "$OUT" --no-raw -- \
  stress-ng --pthread 2 --fork 1 --clone 1 --timeout 8s --quiet
