#!/bin/sh
# How this trace was recorded (run as root from the repository root):
#   apt-get download linux-source-6.1 && dpkg-deb -x linux-source-6.1_*.deb x \
#     && tar -xJf x/usr/src/linux-source-6.1.tar.xz
#   make -C linux-source-6.1 ARCH=x86_64 tinyconfig && make -C linux-source-6.1 ARCH=x86_64 -j2 prepare
#   /work/bin/zram sh data/traces/kernel-build-memcg-zram/run.sh OUT_DIR linux-source-6.1
# A parallel build (make -j2) of the Linux 6.1 memory-management subsystem (mm/, Debian's
# linux-source-6.1) inside a v1 memory cgroup whose 96 MiB limit forces the compilers' memory
# out to swap on zram: the setting of the 2026 RFC's kernel build (1 GB memcg with zram), scaled
# to two CPUs. zram is set up only where no swap is active and /dev/zram0 is unused, and is reset
# afterwards, as the swap_cow probe does; the cgroup is removed on every exit path.
set -e
OUT=${1:?usage: run.sh OUT_DIR LINUX_SOURCE_DIR}
SRC=${2:?usage: run.sh OUT_DIR LINUX_SOURCE_DIR}
COSTMODEL=${COSTMODEL:-.venv/bin/costmodel}
LIMIT=${LIMIT:-96M}
ZRAM_SIZE=${ZRAM_SIZE:-1G}
CG=/sys/fs/cgroup/memory/costmodel-build-$$
[ -d /sys/fs/cgroup/memory ] || { echo "run.sh: no v1 memory cgroup at /sys/fs/cgroup/memory" >&2; exit 2; }
[ "$(tail -n +2 /proc/swaps | wc -l)" = 0 ] || { echo "run.sh: swap is already active; zram is set up only where none is" >&2; exit 2; }
[ "$(cat /sys/block/zram0/disksize)" = 0 ] || { echo "run.sh: /dev/zram0 is in use" >&2; exit 2; }
cleanup() {
  if [ -d "$CG" ]; then
    for p in $(cat "$CG/cgroup.procs" 2>/dev/null); do echo "$p" > /sys/fs/cgroup/memory/cgroup.procs 2>/dev/null || true; done
    rmdir "$CG" 2>/dev/null || true
  fi
  swapoff /dev/zram0 2>/dev/null || true
  for i in 1 2 3 4 5 6 7 8 9 10; do echo 1 > /sys/block/zram0/reset 2>/dev/null && break; sleep 0.2; done
}
trap cleanup EXIT INT TERM HUP
echo "$ZRAM_SIZE" > /sys/block/zram0/disksize
mkswap /dev/zram0 >/dev/null
swapon /dev/zram0
mkdir "$CG"
echo "$LIMIT" > "$CG/memory.limit_in_bytes"
find "$SRC/mm" -name '*.o' -delete
before=$(grep -E '^(pswpin|pswpout) ' /proc/vmstat | awk '{print $2}' | tr '\n' ' ')
"$COSTMODEL" trace -o "$OUT" --no-raw --buffer-mb 256 -- \
  sh -c 'echo $$ > "$1/cgroup.procs" && exec make -C "$2" ARCH=x86_64 -j2 mm/' sh "$CG" "$SRC"
after=$(grep -E '^(pswpin|pswpout) ' /proc/vmstat | awk '{print $2}' | tr '\n' ' ')
echo "swap pages in/out before: $before after: $after (pswpin pswpout, system-wide)"
cat "$CG/memory.max_usage_in_bytes" "$CG/memory.failcnt" | tr '\n' ' '; echo "(max usage bytes, failcnt)"
