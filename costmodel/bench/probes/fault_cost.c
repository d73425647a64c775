/*
 * fault_cost: nanoseconds per page fault of each kind, each fault timed on its own.
 *
 *   first_touch            write to a never-touched page: allocate, zero, map, add to the batch
 *   zero_page_read         read of a never-touched page: map the shared zero page
 *   zero_page_then_write   write after that read: WP fault that replaces the zero page
 *   reuse_after_fork       WP fault on a page on the LRU after a fork+exit child: reuse
 *   reuse_drain_local      WP fault on a page still in this CPU's batch after fork+exit:
 *                          lru_add_drain() of that one folio, then reuse (Linux 5.18+ path)
 *   copy_child_alive       WP fault while a forked child still maps the page: copy
 *   copy_batch_ref         WP fault on another CPU than the one whose batch holds the page,
 *                          after fork+exit: the unnecessary copy
 * Where PFNs are visible (root), every reuse and copy sample is checked: a "copy" whose page
 * frame did not change, or a "reuse" whose did, is dropped and counted (meta mislabeled_dropped).
 * Sample: ns=<per fault, timer pair subtracted>.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

const char *const hx_probe_name = "fault_cost";

#define ROUND_PAGES 16   /* pages per round; below the batch size so they stay in the batch */

static int hold_cpu, other_cpu;
static double times[ROUND_PAGES];
static uint64_t pfn_before[ROUND_PAGES];
static int pfn_visible;
static long mislabeled;

enum op { FIRST_TOUCH, ZERO_READ, ZERO_WRITE, REUSE_FORK, REUSE_DRAIN, COPY_ALIVE, COPY_BATCH, NOPS };
static const char *const op_names[NOPS] = {
	"first_touch", "zero_page_read", "zero_page_then_write", "reuse_after_fork",
	"reuse_drain_local", "copy_child_alive", "copy_batch_ref",
};

static inline double timed_write(volatile char *p)
{
	uint64_t t0 = hx_now_ns();
	*p = 3;
	uint64_t t1 = hx_now_ns();
	return hx_elapsed_ns(t0, t1, 1);
}

static inline double timed_read(volatile char *p, volatile char *sink)
{
	uint64_t t0 = hx_now_ns();
	*sink = *p;
	uint64_t t1 = hx_now_ns();
	return hx_elapsed_ns(t0, t1, 1);
}

static pid_t fork_sleeping_child(int cpu)
{
	pid_t pid = fork();
	if (pid < 0)
		hx_die("fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		hx_pin(cpu);
		for (;;)
			pause();
	}
	return pid;
}

static void kill_child(pid_t pid)
{
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

static void record_pfns(char *p, int pages)
{
	for (int i = 0; i < pages && pfn_visible; i++)
		pfn_before[i] = hx_pfn(p + i * HX_PAGE);
}

/* Keeps the samples whose page frame changed (want_copy) or stayed; returns how many are kept. */
static int keep_verified(char *p, int n, int want_copy)
{
	if (!pfn_visible)
		return n;
	int kept = 0;
	for (int i = 0; i < n; i++) {
		int copied = hx_pfn(p + i * HX_PAGE) != pfn_before[i];
		if (copied == want_copy)
			times[kept++] = times[i];
		else
			mislabeled++;
	}
	return kept;
}

/* One round of the given kind; returns how many entries of times[] it filled. */
static int run_round(enum op op)
{
	static volatile char sink;
	size_t bytes = ROUND_PAGES * HX_PAGE;
	int n = 0;
	hx_pin(hold_cpu);
	char *p = hx_map(bytes, 0);

	switch (op) {
	case FIRST_TOUCH:
		for (int i = 0; i < ROUND_PAGES; i++)
			times[n++] = timed_write(p + i * HX_PAGE);
		break;
	case ZERO_READ:
		for (int i = 0; i < ROUND_PAGES; i++)
			times[n++] = timed_read(p + i * HX_PAGE, &sink);
		break;
	case ZERO_WRITE:
		for (int i = 0; i < ROUND_PAGES; i++)
			sink = ((volatile char *)p)[i * HX_PAGE];
		for (int i = 0; i < ROUND_PAGES; i++)
			times[n++] = timed_write(p + i * HX_PAGE);
		break;
	case REUSE_FORK:
		hx_touch(p, bytes);
		hx_drain_local();          /* the pages are on the LRU now: no drain in the fault */
		record_pfns(p, ROUND_PAGES);
		hx_fork_exit_wait();
		for (int i = 0; i < ROUND_PAGES; i++)
			times[n++] = timed_write(p + i * HX_PAGE);
		n = keep_verified(p, n, 0);
		break;
	case REUSE_DRAIN:
		/* Only the first page's fault drains; one timed fault per round. */
		hx_drain_local();
		hx_touch(p, HX_PAGE);
		record_pfns(p, 1);
		hx_fork_exit_wait();
		times[n++] = timed_write(p);
		n = keep_verified(p, n, 0);
		break;
	case COPY_ALIVE: {
		hx_touch(p, bytes);
		hx_drain_local();
		record_pfns(p, ROUND_PAGES);
		pid_t child = fork_sleeping_child(other_cpu);
		for (int i = 0; i < ROUND_PAGES; i++)
			times[n++] = timed_write(p + i * HX_PAGE);
		kill_child(child);
		n = keep_verified(p, n, 1);
		break;
	}
	case COPY_BATCH:
		hx_drain_local();
		hx_touch(p, bytes);        /* positions 0..15 of this CPU's batch */
		record_pfns(p, ROUND_PAGES);
		hx_guard_hold(1);          /* nobody else drains or fills this CPU's batch meanwhile */
		hx_pin(other_cpu);
		hx_fork_exit_wait();
		for (int i = 0; i < ROUND_PAGES; i++)
			times[n++] = timed_write(p + i * HX_PAGE);
		hx_guard_hold(0);
		n = keep_verified(p, n, 1);
		break;
	default:
		break;
	}
	hx_unmap(p, bytes, 0);
	hx_pin(hold_cpu);
	return n;
}

int probe_main(void)
{
	int ncpu = hx_online_cpus();
	hold_cpu = 0;
	other_cpu = ncpu > 1 ? 1 : 0;
	hx_pin(hold_cpu);
	hx_realtime(1);
	{
		char *p = hx_map(HX_PAGE, 0);
		hx_touch(p, HX_PAGE);
		pfn_visible = hx_pfn(p) != 0;
		hx_unmap(p, HX_PAGE, 0);
	}
	if (ncpu > 1)
		hx_guard_start(hold_cpu);
	hx_meta("verified", "%s", pfn_visible ? "reuse and copy samples checked by PFN"
					      : "no: PFNs hidden (not root), reuse/copy samples unchecked");

	long samples_per_op = hx.reps > 0 ? hx.reps : (hx.quick ? 320 : 3200);
	long rounds[NOPS];
	int runnable[NOPS];
	long total = 0, nrounds = 0;
	for (int op = 0; op < NOPS; op++) {
		int per_round = op == REUSE_DRAIN ? 1 : ROUND_PAGES;
		rounds[op] = (samples_per_op + per_round - 1) / per_round;
		if (op == REUSE_DRAIN)
			rounds[op] = rounds[op] / 4 > 0 ? rounds[op] / 4 : 1;   /* one fault per round: fewer */
		runnable[op] = !(op == COPY_BATCH && ncpu < 2);
		if (!runnable[op]) {
			char cfg[64];
			snprintf(cfg, sizeof cfg, "op=%s", op_names[op]);
			hx_skip(cfg, "needs a second online CPU to write from");
			continue;
		}
		total += rounds[op] * per_round;
		nrounds += rounds[op];
	}
	int *order = malloc(sizeof(int) * (size_t)nrounds);
	if (!order)
		hx_die("out of memory");
	long n = 0;
	for (int op = 0; op < NOPS; op++)
		if (runnable[op])
			for (long r = 0; r < rounds[op]; r++)
				order[n++] = op;
	hx_shuffle(order, n);

	hx_meta("hold_cpu", "%d", hold_cpu);
	hx_meta("other_cpu", "%d", other_cpu);
	hx_meta("pages_per_round", "%d", ROUND_PAGES);
	hx_plan(total);

	long warm = hx.warmup >= 0 ? hx.warmup : (hx.quick ? 20 : 100);
	hx_warm_memory(256);
	for (long w = 0; w < warm; w++)
		for (int op = 0; op < NOPS; op++)
			if (runnable[op])
				run_round((enum op)op);
	hx_meta("warmup", "touched and freed 256 MiB; %ld untimed rounds of every kind", warm);

	long kept[NOPS] = { 0 };
	for (long i = 0; i < n; i++) {
		int m = run_round((enum op)order[i]);
		kept[order[i]] += m;
		char cfg[64];
		snprintf(cfg, sizeof cfg, "op=%s", op_names[order[i]]);
		for (int j = 0; j < m; j++)
			hx_sample(cfg, "ns=%.1f", times[j]);
		hx_progress();
	}
	hx_meta("mislabeled_dropped", "%ld", mislabeled);
	for (int op = 0; op < NOPS; op++)
		if (runnable[op] && !kept[op]) {
			char cfg[64];
			snprintf(cfg, sizeof cfg, "op=%s", op_names[op]);
			hx_skip(cfg, "every fault of this kind went the other way (copy vs reuse) here");
		}
	free(order);
	return 0;
}
