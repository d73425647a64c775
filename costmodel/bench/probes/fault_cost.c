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
 *   copy_child_alive_spinning   copy_child_alive with a sibling thread of this process spinning
 *                          on the other CPU (in mm_cpumask, not lazy, as in shootdown), so the
 *                          copy's TLB flush must interrupt it: the shootdown inside the fault
 *   reuse_after_fork_spinning   reuse_after_fork with that sibling spinning: what a running
 *                          sibling costs a fault that flushes nothing remotely
 *   reuse_other_cpu        reuse_after_fork (fork and exit on this CPU too), the write made on the
 *                          other CPU: what a fault pays when the page, its struct page and its PTE
 *                          were last touched elsewhere
 *   copy_child_alive_other_cpu  copy_child_alive, the child asleep on this CPU and the write made on
 *                          the other: the copy's source lines come from this CPU's cache
 *   reuse_first_after_fork reuse_after_fork, but only the first write after the fork is timed (one
 *                          per round; the stack's own faults taken first, as the workload probe does):
 *                          a fault that comes alone, against the rounds' 15 faults that follow a fault
 *   reuse_drain_first      reuse_drain_local timed as reuse_first_after_fork (the stack's own faults
 *                          taken first): the two differ by the in-fault drain of one folio alone
 *   copy_first_child_alive copy_child_alive, only the first write after the fork timed
 *   copy_first_child_alive_spinning  the same with the sibling spinning (a *_spinning op); its counting
 *                          rounds count the TLB IPIs each CPU takes during that one write
 * The sibling exists only in the blocks of the *_spinning ops: each pass runs one block of the
 * other ops (shuffled; the process single-threaded as before) and then one block of the two
 * spinning ops (shuffled), the sibling created for it, seen spinning and settled, and joined after.
 * It spins the way shootdown's does (a tight loop bumping a counter, no PAUSE), its words in a
 * MAP_SHARED page so that it takes no fault after our forks. Untimed rounds at the end of every
 * block count the TLB IPIs the other CPU takes during the 16 writes alone (meta tlb_ipis_per_fault_*).
 * Where PFNs are visible (root), every reuse and copy sample is checked: a "copy" whose page
 * frame did not change, or a "reuse" whose did, is dropped and counted (meta mislabeled_dropped).
 * Sample: ns=<per fault, timer pair subtracted>.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

const char *const hx_probe_name = "fault_cost";

#define ROUND_PAGES 16   /* pages per round; below the batch size so they stay in the batch */
#define COUNT_SINGLE_ROUNDS 32   /* untimed counting rounds per block of a one-write op */
#define SPIN_SETTLE_US 100000   /* as shootdown: a vCPU just woken may be parked by the host a while */

static int hold_cpu, other_cpu;
static double times[ROUND_PAGES];
static uint64_t pfn_before[ROUND_PAGES];
static int pfn_visible;
static long mislabeled;

enum op { FIRST_TOUCH, ZERO_READ, ZERO_WRITE, REUSE_FORK, REUSE_DRAIN, COPY_ALIVE, COPY_BATCH,
	  COPY_ALIVE_SPIN, REUSE_FORK_SPIN, REUSE_OTHER, COPY_OTHER, REUSE_FIRST, COPY_FIRST,
	  COPY_FIRST_SPIN, REUSE_DRAIN_FIRST, NOPS };
static const char *const op_names[NOPS] = {
	"first_touch", "zero_page_read", "zero_page_then_write", "reuse_after_fork",
	"reuse_drain_local", "copy_child_alive", "copy_batch_ref",
	"copy_child_alive_spinning", "reuse_after_fork_spinning", "reuse_other_cpu",
	"copy_child_alive_other_cpu", "reuse_first_after_fork", "copy_first_child_alive",
	"copy_first_child_alive_spinning", "reuse_drain_first",
};

/* one timed fault per round: the first write after the fork */
static int is_single_op(int op)
{
	return op == REUSE_DRAIN || op == REUSE_FIRST || op == COPY_FIRST || op == COPY_FIRST_SPIN ||
	       op == REUSE_DRAIN_FIRST;
}

static int is_spinning_op(int op)
{
	return op == COPY_ALIVE_SPIN || op == REUSE_FORK_SPIN || op == COPY_FIRST_SPIN;
}

/* ---- the spinning sibling ----
 * Its words live in a MAP_SHARED page: a fork does not write-protect a shared mapping, so the
 * sibling's counter bumps never fault, while our forks write-protect every private page. */
enum { SIB_SPIN = 0, SIB_EXIT = 1 };
struct sib_words {
	volatile int mode;
	volatile uint64_t spins;
};
static struct sib_words *sib;
static pthread_t sib_thread;
static int sib_running;

static void *sibling_main(void *arg)
{
	(void)arg;
	hx_pin(other_cpu);
	hx_realtime(1);
	while (sib->mode == SIB_SPIN) {
		sib->spins++;
		__asm__ volatile("" ::: "memory");
	}
	return NULL;
}

/* Creates the sibling on other_cpu, waits until it is seen spinning, lets it settle. */
static void sibling_start(void)
{
	if (!sib) {
		sib = mmap(NULL, HX_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (sib == MAP_FAILED)
			hx_die("mmap (sibling words): %s", strerror(errno));
	}
	sib->mode = SIB_SPIN;
	uint64_t s0 = sib->spins;
	/* Created on other_cpu already: born on ours, it could not run until this thread blocks. */
	pthread_attr_t attr;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(other_cpu, &set);
	pthread_attr_init(&attr);
	pthread_attr_setaffinity_np(&attr, sizeof set, &set);
	int err = pthread_create(&sib_thread, &attr, sibling_main, NULL);
	pthread_attr_destroy(&attr);
	if (err)
		hx_die("pthread_create: %s", strerror(err));
	sib_running = 1;
	uint64_t t0 = hx_now_ns();
	while (sib->spins == s0)
		if (hx_now_ns() - t0 > 2000000000ULL)
			hx_die("the sibling on cpu %d does not run", other_cpu);
	usleep(SPIN_SETTLE_US);
}

static void sibling_stop(void)
{
	if (!sib_running)
		return;
	sib->mode = SIB_EXIT;
	pthread_join(sib_thread, NULL);
	sib_running = 0;
}

/* Writes to the current stack page(s), so that after a fork the WP faults on our own stack are
 * taken here and not inside the timed write (as the workload probe does). */
__attribute__((noinline)) static void touch_stack(void)
{
	volatile char pad[3 * 1024];
	for (size_t i = 0; i < sizeof pad; i += 256)
		pad[i] = (char)i;
}

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

/* TLB IPIs the other CPU took during the timed writes of counting rounds (ipi_ops: writes). */
static long long ipi_total[NOPS], ipi_ops[NOPS], ipi_hold_total[NOPS], ipi_hold_start;
static int counting, ipi_visible;

/* Call with start = -1 before the writes (returns the count), then with that count after them.
 * After a fork every private page we write faults (and, with a live child, copies and flushes);
 * so before the window opens, times[]'s page and the stack pages the counter's parsing uses are
 * written once, and the window holds the 16 target faults alone. */
static inline long long ipi_mark(enum op op, long long start)
{
	if (!counting)
		return -1;
	if (start < 0) {
		times[0] = 0;
		(void)hx_tlb_ipis(other_cpu, other_cpu);
		(void)hx_tlb_ipis(hold_cpu, hold_cpu);
		ipi_hold_start = hx_tlb_ipis(hold_cpu, hold_cpu);
	}
	long long v = hx_tlb_ipis(other_cpu, other_cpu);
	if (start >= 0 && v >= 0) {
		long long h = hx_tlb_ipis(hold_cpu, hold_cpu);
		ipi_total[op] += v - start;
		ipi_hold_total[op] += h - ipi_hold_start;
		ipi_ops[op] += is_single_op(op) ? 1 : ROUND_PAGES;
	}
	return v;
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
	case REUSE_FORK_SPIN: {        /* the same; the sibling spins on other_cpu throughout */
		hx_touch(p, bytes);
		hx_drain_local();          /* the pages are on the LRU now: no drain in the fault */
		record_pfns(p, ROUND_PAGES);
		hx_fork_exit_wait();
		long long ipi0 = ipi_mark(op, -1);
		for (int i = 0; i < ROUND_PAGES; i++)
			times[n++] = timed_write(p + i * HX_PAGE);
		ipi_mark(op, ipi0);
		n = keep_verified(p, n, 0);
		break;
	}
	case REUSE_OTHER:
		hx_touch(p, bytes);
		hx_drain_local();          /* on the LRU: the write on the other CPU reuses */
		record_pfns(p, ROUND_PAGES);
		hx_fork_exit_wait();       /* here, as reuse_after_fork: only the write moves */
		hx_pin(other_cpu);
		for (int i = 0; i < ROUND_PAGES; i++)
			times[n++] = timed_write(p + i * HX_PAGE);
		n = keep_verified(p, n, 0);
		break;
	case COPY_OTHER: {
		hx_touch(p, bytes);
		hx_drain_local();          /* on the LRU: the copy is the live child's doing, no drain */
		record_pfns(p, ROUND_PAGES);
		pid_t child = hx_fork_sleeper(hold_cpu, -1);
		hx_pin(other_cpu);
		for (int i = 0; i < ROUND_PAGES; i++)
			times[n++] = timed_write(p + i * HX_PAGE);
		hx_kill_child(child);
		n = keep_verified(p, n, 1);
		break;
	}
	case REUSE_DRAIN:
	case REUSE_DRAIN_FIRST:
		/* Only the first page's fault drains; one timed fault per round. REUSE_DRAIN_FIRST takes
		 * the stack's own faults first, as REUSE_FIRST does, so that the two differ by the drain. */
		hx_drain_local();
		hx_touch(p, HX_PAGE);
		record_pfns(p, 1);
		hx_fork_exit_wait();
		if (op == REUSE_DRAIN_FIRST)
			touch_stack();
		times[n++] = timed_write(p);
		n = keep_verified(p, n, 0);
		break;
	case REUSE_FIRST: {
		hx_touch(p, bytes);
		hx_drain_local();          /* on the LRU: no drain in the fault */
		record_pfns(p, 1);
		hx_fork_exit_wait();
		touch_stack();
		long long ipi0 = ipi_mark(op, -1);
		times[n++] = timed_write(p);
		ipi_mark(op, ipi0);
		n = keep_verified(p, n, 0);
		break;
	}
	case COPY_FIRST:
	case COPY_FIRST_SPIN: {
		hx_touch(p, bytes);
		hx_drain_local();
		record_pfns(p, 1);
		pid_t child = hx_fork_sleeper(other_cpu, -1);
		touch_stack();
		long long ipi0 = ipi_mark(op, -1);
		times[n++] = timed_write(p);
		ipi_mark(op, ipi0);
		hx_kill_child(child);
		n = keep_verified(p, n, 1);
		break;
	}
	case COPY_ALIVE:
	case COPY_ALIVE_SPIN: {        /* the same; the sibling spins on other_cpu throughout */
		hx_touch(p, bytes);
		hx_drain_local();
		record_pfns(p, ROUND_PAGES);
		pid_t child = hx_fork_sleeper(other_cpu, -1);
		long long ipi0 = ipi_mark(op, -1);
		for (int i = 0; i < ROUND_PAGES; i++)
			times[n++] = timed_write(p + i * HX_PAGE);
		ipi_mark(op, ipi0);
		hx_kill_child(child);
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
	pfn_visible = hx_fresh_pfn(NULL) != 0;
	if (ncpu > 1)
		hx_guard_start(hold_cpu);
	hx_meta("verified", "%s", pfn_visible ? "reuse and copy samples checked by PFN"
					      : "no: PFNs hidden (not root), reuse/copy samples unchecked");

	long samples_per_op = hx.reps > 0 ? hx.reps : hx_scaled(hx.quick ? 320 : 3200);
	int passes = hx.quick ? 2 : 4;
	long rounds[NOPS];
	int runnable[NOPS];
	long total = 0, nrounds = 0;
	for (int op = 0; op < NOPS; op++) {
		int per_round = is_single_op(op) ? 1 : ROUND_PAGES;
		rounds[op] = (samples_per_op + per_round - 1) / per_round;
		if (op == REUSE_DRAIN)
			rounds[op] = rounds[op] / 4 > 0 ? rounds[op] / 4 : 1;   /* one fault per round: fewer */
		/* The cold fault and the in-fault drain are differences of these single-write ops: four
		 * times the samples (a round is one fork, about 0.1 ms), so that one interrupted sample
		 * (the vCPU descheduled for 0.2 ms) moves their means by 15 ns rather than 60. */
		if (op == REUSE_FIRST || op == REUSE_DRAIN_FIRST)
			rounds[op] *= 4;
		int writes_elsewhere = op == COPY_BATCH || op == REUSE_OTHER || op == COPY_OTHER;
		runnable[op] = !((writes_elsewhere || is_spinning_op(op)) && ncpu < 2);
		if (!runnable[op]) {
			char cfg[64];
			snprintf(cfg, sizeof cfg, "op=%s", op_names[op]);
			hx_skip(cfg, "%s", writes_elsewhere ? "needs a second online CPU to write from"
							  : "needs a second online CPU for the spinning sibling");
			continue;
		}
		total += rounds[op] * per_round;
		nrounds += rounds[op];
	}
	int any_spinning = runnable[COPY_ALIVE_SPIN] || runnable[REUSE_FORK_SPIN];
	int *order = malloc(sizeof(int) * (size_t)nrounds);
	if (!order)
		hx_die("out of memory");
	ipi_visible = hx_tlb_ipis(0, ncpu - 1) >= 0;

	hx_meta("hold_cpu", "%d", hold_cpu);
	hx_meta("other_cpu", "%d", other_cpu);
	hx_meta("pages_per_round", "%d", ROUND_PAGES);
	if (any_spinning)
		hx_meta("sibling", "*_spinning ops: a thread of this process, SCHED_FIFO, spins on cpu %d (a counter "
			"in a MAP_SHARED page, no PAUSE, as in shootdown); created per block, seen spinning, "
			"settled %d ms, joined after the block; the other ops run with no sibling",
			other_cpu, SPIN_SETTLE_US / 1000);
	hx_meta("blocks", "%d passes, each a block of the other ops then a block of the *_spinning ops, "
		"rounds shuffled within a block", passes);
	hx_plan(total);

	long warm = hx.warmup >= 0 ? hx.warmup : (hx.quick ? 20 : 100);
	hx_warm_memory(256);
	for (long w = 0; w < warm; w++)
		for (int op = 0; op < NOPS; op++)
			if (runnable[op] && !is_spinning_op(op))
				run_round((enum op)op);
	if (any_spinning) {
		sibling_start();
		for (long w = 0; w < warm; w++)
			for (int op = 0; op < NOPS; op++)
				if (runnable[op] && is_spinning_op(op))
					run_round((enum op)op);
		sibling_stop();
	}
	hx_meta("warmup", "touched and freed 256 MiB; %ld untimed rounds of every kind (the *_spinning ones "
		"with the sibling spinning); in each spinning block, one more untimed round of each after "
		"the settle", warm);

	long kept[NOPS] = { 0 };
	for (int pass = 0; pass < passes; pass++) {
		for (int spin = 0; spin <= 1; spin++) {
			long n = 0;
			for (int op = 0; op < NOPS; op++)
				if (runnable[op] && is_spinning_op(op) == spin)
					for (long r = pass; r < rounds[op]; r += passes)
						order[n++] = op;
			if (!n)
				continue;
			hx_shuffle(order, n);
			if (spin) {
				sibling_start();
				for (int op = 0; op < NOPS; op++)
					if (runnable[op] && is_spinning_op(op))
						run_round((enum op)op);
			}
			for (long i = 0; i < n; i++) {
				int m = run_round((enum op)order[i]);
				kept[order[i]] += m;
				char cfg[64];
				snprintf(cfg, sizeof cfg, "op=%s", op_names[order[i]]);
				for (int j = 0; j < m; j++)
					hx_sample(cfg, "ns=%.1f", times[j]);
				hx_progress();
			}
			/* Untimed counting rounds: the other CPU's TLB IPIs around the writes alone. */
			if (ipi_visible && ncpu > 1) {
				counting = 1;
				static const enum op counted[2][2] = { { REUSE_FORK, COPY_ALIVE },
								       { REUSE_FORK_SPIN, COPY_ALIVE_SPIN } };
				for (int k = 0; k < 2; k++)
					if (runnable[counted[spin][k]])
						run_round(counted[spin][k]);
				/* single-write ops: more rounds, so that a count per write means something */
				enum op single = spin ? COPY_FIRST_SPIN : COPY_FIRST;
				for (int k = 0; k < COUNT_SINGLE_ROUNDS && runnable[single]; k++)
					run_round(single);
				counting = 0;
			}
			if (spin)
				sibling_stop();
		}
	}
	hx_meta("mislabeled_dropped", "%ld", mislabeled);
	if (!ipi_visible)
		hx_meta("tlb_ipis", "no TLB row in /proc/interrupts: IPIs not counted");
	for (int op = 0; op < NOPS; op++)
		if (ipi_ops[op]) {
			char key[64];
			snprintf(key, sizeof key, "tlb_ipis_per_fault_%s", op_names[op]);
			hx_meta(key, "%.3f (%lld TLB IPIs to cpu %d during %lld writes of untimed counting rounds)",
				(double)ipi_total[op] / (double)ipi_ops[op], ipi_total[op], other_cpu, ipi_ops[op]);
			snprintf(key, sizeof key, "tlb_ipis_writer_per_fault_%s", op_names[op]);
			hx_meta(key, "%.3f (%lld TLB IPIs to the writing cpu %d during the same writes)",
				(double)ipi_hold_total[op] / (double)ipi_ops[op], ipi_hold_total[op], hold_cpu);
		}
	for (int op = 0; op < NOPS; op++)
		if (runnable[op] && !kept[op]) {
			char cfg[64];
			snprintf(cfg, sizeof cfg, "op=%s", op_names[op]);
			hx_skip(cfg, "every fault of this kind went the other way (copy vs reuse) here");
		}
	free(order);
	return 0;
}
