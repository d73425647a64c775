/*
 * Shared harness for the costmodel kernel probes.
 *
 * A probe is one C file that defines `hx_probe_name` and `probe_main()`; it measures one thing
 * and reports it through the functions below. The harness owns everything else: option parsing,
 * pinning (and restoring the original affinity), warm-up helpers, the timer and the cost of an
 * empty timer pair, and the line format the Python runner reads.
 *
 * Output (stdout), one record per line, fields separated by TAB, each field `key=value`
 * after the record type:
 *   probe   name=<probe> format=<n>          first line
 *   meta    key=<k> value=<text>             facts about how the probe ran (warm-up, timer cost)
 *   plan    samples=<n>                      how many sample lines to expect (for progress)
 *   sample  <config fields> <measure>=<num>  one raw observation
 *   counter <config fields> name=<k> total=<num> ops=<n>   a counted event over a block of ops
 *   skip    [<config fields>] reason=<text>  a configuration (or the whole probe) that cannot run
 *   end     samples=<n>                      last line; its absence means the output was cut
 * Errors go to stderr and the exit status is non-zero.
 */
#ifndef COSTMODEL_HARNESS_H
#define COSTMODEL_HARNESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#define HX_FORMAT 1
#define HX_PAGE 4096UL
#define HX_HUGE (2UL << 20)

struct hx_options {
	int quick;          /* --quick: fewer repetitions, same configurations */
	long reps;          /* --reps N: override the probe's repetition count (0 = probe default) */
	long warmup;        /* --warmup N: untimed rounds before measuring (-1 = probe default) */
	long max_folios;    /* --max-folios N: largest batch fill a probe should try (0 = default) */
	uint64_t seed;      /* --seed N: shuffling seed */
	long share;         /* --share N: this run is one round of N (bench --repeat N): 1/N of the repetitions */
};

extern struct hx_options hx;
extern double hx_timer_overhead_ns;
/* A default repetition count for this run: reps / share (at least 1). */
long hx_scaled(long reps);   /* median cost of an empty hx_now_ns() pair */

/* Defined by each probe. */
extern const char *const hx_probe_name;
int probe_main(void);

/* ---- machine ---- */
int hx_online_cpus(void);
void hx_pin(int cpu);                 /* pin the calling thread; dies if the kernel refuses */
int hx_current_cpu(void);
int hx_is_root(void);
/* SCHED_FIFO at `priority` (1 for measuring threads; the guard runs at 1) for the calling thread,
 * so other tasks cannot run on its CPU in the middle of a trial (the kernel's RT throttling still
 * leaves them 5%). Returns 1 on success; the first call records the outcome as meta "realtime". */
int hx_realtime(int priority);

/* ---- time ---- */
static inline uint64_t hx_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}
/* t1 - t0 minus the empty timer pair; divide by ops for a batched timing. */
double hx_elapsed_ns(uint64_t t0, uint64_t t1, long ops);

/* ---- output ---- */
void hx_meta(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hx_plan(long samples);
void hx_sample(const char *config, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hx_counter(const char *config, const char *name, double total, long ops);
void hx_skip(const char *config, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hx_progress(void);               /* flushes at most about once a second */
_Noreturn void hx_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- memory ---- */
void *hx_map(size_t bytes, int huge);        /* private anon; NOHUGEPAGE, or a 2 MiB aligned HUGEPAGE span */
void hx_unmap(void *p, size_t bytes, int huge);
void hx_touch(void *p, size_t bytes);        /* write one byte per 4 KiB page */
uint64_t hx_pagemap(const void *addr);       /* raw /proc/self/pagemap entry; 0 when unreadable */
uint64_t hx_pfn(const void *addr);           /* 0 when not present or hidden (not root) */
uint64_t hx_kpageflags(uint64_t pfn);        /* 0 when unreadable */
/* Maps, touches and unmaps one page: its PFN (0 when hidden), and its kpageflags (read while it
 * is still mapped) into *flags unless flags is NULL. */
uint64_t hx_fresh_pfn(uint64_t *flags);
/* 1 when PFNs are visible; otherwise reports the whole probe skipped (needs root) and returns 0. */
int hx_need_pfns(void);
void hx_drain_local(void);                   /* MADV_COLD on a resident page: empties this CPU's LRU batches */
void hx_warm_memory(size_t mib);             /* touch then free, so first touches below are not host faults */

/* ---- processes ---- */
long hx_fork_exit_wait(void);                /* raw clone(CLONE_VFORK) child that exits at once, raw wait */
/* A forked child pinned to `cpu` that sleeps until killed (SIGKILL when we die, too); it first
 * closes close_fd unless that is -1. */
pid_t hx_fork_sleeper(int cpu, int close_fd);
void hx_kill_child(pid_t pid);               /* SIGKILL, then reap */
void hx_reap(pid_t pid);                     /* waitpid, again after EINTR */
/* A helper process: this binary exec'd afresh (so it holds none of our pages) with argv
 * "costmodel-<what>" <flag> <cpu> <fd>, fd a memfd page shared with us. Returns that page, zeroed,
 * once the helper has set the int at byte ready_offset of it (dies after 5 s); *pid_out is set
 * before the wait. `what` names the helper in errors. */
void *hx_helper_start(const char *what, const char *flag, int cpu, size_t ready_offset, pid_t *pid_out);
/* In the helper: maps the shared page, pins to `cpu` and takes SCHED_FIFO 1 where allowed;
 * _exit(1) when it cannot. */
void *hx_helper_attach(int cpu, int fd);

/* ---- guard ----
 * A helper process (not a thread: it must not share our mm, or TLB flushes would have to reach
 * its CPU too) pinned to one CPU at SCHED_FIFO. While held, it spins there, so no other task runs
 * on that CPU and adds pages to, or drains, its LRU batch; released, it sleeps. Hold it only
 * while none of our own threads needs that CPU. */
void hx_guard_start(int cpu);
void hx_guard_hold(int on);
void hx_guard_stop(void);

/* ---- sibling ----
 * A thread of this process (SCHED_FIFO 1 where allowed) that either sleeps in a futex or spins
 * reading memory only, so it takes no faults of its own; while it spins, a TLB flush of our mm
 * must reach its CPU. */
void hx_sibling_start(int cpu);              /* creates it, asleep, on `cpu` */
void hx_sibling_to(int cpu);                 /* moves it (nothing to do when it is there) */
/* on: moves it to `cpu`, wakes it and waits until it spins; off: sends it to sleep. Either way
 * then lets it settle for 20 ms. */
void hx_sibling_spin(int on, int cpu);
void hx_sibling_stop(void);                  /* ends and joins it */

/* ---- counters ---- */
long long hx_tlb_ipis(int first_cpu, int last_cpu);  /* TLB row of /proc/interrupts, summed; -1 if absent */

/* ---- randomness ---- */
uint64_t hx_rand(void);
void hx_shuffle(int *a, long n);
/* Every configuration c with runnable[c] set, reps[c] times, shuffled: a malloc'd array (free it)
 * of *n indices. */
int *hx_trial_order(int nconf, const int *runnable, const long *reps, long *n);

#endif
