/*
 * lock_transfer: what draining another CPU's batch by its lock would pay for the lines that sit in
 * that CPU's cache (the 2026 "PW locks" proposal; no Linux release has the path, so its parts are
 * measured apart).
 *
 *   lock_handoff   a lock word handed back and forth between a thread on CPU 0 and one on CPU 1:
 *                  each side spins until the word names it, takes it with an atomic compare-and-
 *                  exchange (as a spinlock's fast path) and hands it over; 2000 handoffs timed
 *                  together on CPU 0, ns per handoff (one modified line moved, plus the spin)
 *   lock_local     the same take and release on CPU 0 alone (the line stays here), ns per pair
 *   drain_remote_refs  (folios=m) CPU 0 empties its batch (MADV_COLD), first-touches m fresh
 *                  pages (its batch then holds them), a thread on CPU 1 reads one byte of each
 *                  through process_vm_readv (its pin and unpin write each folio's refcount, so
 *                  the struct folio lines end modified in CPU 1's cache), then one MADV_COLD on
 *                  CPU 0 is timed: lru_add_drain() moving m folios whose lines are remote
 *   drain_local_refs   control: the same read done by CPU 0 itself (the lines stay local)
 * The slope of drain_remote_refs over m is the per-folio price of draining a batch whose folios
 * another CPU touched last; against drain_local_refs, what the remote lines add. Each drain
 * sample is verified (measure `verified`): the first page was off the LRU before the timed call
 * and on it after (/proc/kpageflags; root), and the read returned every byte.
 * Samples: ns=<per op>.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef MADV_COLD
#define MADV_COLD 20
#endif
#define KPF_LRU 5
#define HANDOFFS 2000
#define LOCAL_PAIRS 2000
#define MAX_FOLIOS 30

const char *const hx_probe_name = "lock_transfer";

static _Alignas(64) _Atomic int turn;         /* whose turn: 0 or 1; 2 = stop */
static _Alignas(64) _Atomic int lock_word;    /* the lock taken by compare-and-exchange */
static _Alignas(64) _Atomic long request;     /* reader thread: sequence of read requests */
static _Alignas(64) _Atomic long done;
static _Atomic int mode;                      /* 0 handoff, 1 read pages, 2 stop */
static char *read_base;
static int read_pages;
static long read_ok;

static inline void cpu_relax(void)
{
#if defined(__x86_64__)
	__asm__ volatile("pause");
#endif
}

static inline void take_and_pass(int me)
{
	int expect = 0;
	while (!atomic_compare_exchange_weak_explicit(&lock_word, &expect, 1, memory_order_acquire,
						      memory_order_relaxed)) {
		expect = 0;
		cpu_relax();
	}
	atomic_store_explicit(&lock_word, 0, memory_order_release);
	atomic_store_explicit(&turn, 1 - me, memory_order_release);
}

static long read_all(void)
{
	char buf[MAX_FOLIOS];
	struct iovec local = { buf, (size_t)read_pages };
	struct iovec remote[MAX_FOLIOS];
	for (int i = 0; i < read_pages; i++) {
		remote[i].iov_base = read_base + (size_t)i * HX_PAGE;
		remote[i].iov_len = 1;
	}
	if (read_pages == 0)
		return 0;
	return process_vm_readv(getpid(), &local, 1, remote, (unsigned long)read_pages, 0);
}

static void *other_cpu(void *arg)
{
	(void)arg;
	hx_pin(1);
	long seen = 0;
	for (;;) {
		int m = atomic_load(&mode);
		if (m == 2)
			return NULL;
		if (m == 0) {
			int t = atomic_load_explicit(&turn, memory_order_acquire);
			if (t == 1)
				take_and_pass(1);
			else
				cpu_relax();
			continue;
		}
		long r = atomic_load_explicit(&request, memory_order_acquire);
		if (r != seen) {
			seen = r;
			read_ok = read_all();
			atomic_store_explicit(&done, r, memory_order_release);
		} else {
			usleep(50);   /* idle between drain samples: off the CPU, so not a flush target */
		}
	}
}

static double handoff_sample(void)
{
	atomic_store(&turn, 0);
	uint64_t t0 = hx_now_ns();
	for (int i = 0; i < HANDOFFS; i += 2) {
		while (atomic_load_explicit(&turn, memory_order_acquire) != 0)
			cpu_relax();
		take_and_pass(0);
	}
	while (atomic_load_explicit(&turn, memory_order_acquire) != 0)
		cpu_relax();
	uint64_t t1 = hx_now_ns();
	return hx_elapsed_ns(t0, t1, HANDOFFS);
}

static double local_sample(void)
{
	uint64_t t0 = hx_now_ns();
	for (int i = 0; i < LOCAL_PAIRS; i++) {
		int expect = 0;
		while (!atomic_compare_exchange_weak_explicit(&lock_word, &expect, 1, memory_order_acquire,
							      memory_order_relaxed))
			expect = 0;
		atomic_store_explicit(&lock_word, 0, memory_order_release);
	}
	uint64_t t1 = hx_now_ns();
	return hx_elapsed_ns(t0, t1, LOCAL_PAIRS);
}

static char *resident;
static long seq;

/* One drain sample with m folios whose refcount was last written on CPU 1 (remote) or 0. */
static double drain_sample(int m, int remote, int *verified)
{
	size_t bytes = (size_t)(m ? m : 1) * HX_PAGE;
	char *p = hx_map(bytes, 0);
	madvise(resident, HX_PAGE, MADV_COLD);
	hx_touch(p, (size_t)m * HX_PAGE);
	read_base = p;
	read_pages = m;
	long got;
	if (remote) {
		atomic_store_explicit(&request, ++seq, memory_order_release);
		while (atomic_load_explicit(&done, memory_order_acquire) != seq)
			cpu_relax();
		got = read_ok;
	} else {
		got = read_all();
	}
	uint64_t pfn = m ? hx_pfn(p) : 0;
	int before = pfn ? (int)((hx_kpageflags(pfn) >> KPF_LRU) & 1) : 0;
	uint64_t t0 = hx_now_ns();
	madvise(resident, HX_PAGE, MADV_COLD);
	uint64_t t1 = hx_now_ns();
	int after = pfn ? (int)((hx_kpageflags(pfn) >> KPF_LRU) & 1) : 1;
	*verified = got == m && before == 0 && after == 1;
	if (m == 0)
		*verified = 1;
	hx_unmap(p, bytes, 0);
	return hx_elapsed_ns(t0, t1, 1);
}

static const int folio_counts[] = { 0, 5, 10, 15, 20, 25, 30 };
#define NCOUNTS ((int)(sizeof folio_counts / sizeof folio_counts[0]))

int probe_main(void)
{
	if (hx_online_cpus() < 2) {
		hx_skip("", "needs two online CPUs");
		return 0;
	}
	hx_pin(0);
	hx_realtime(1);   /* no other task adds to this CPU's batch between the drain and the timing */
	resident = hx_map(HX_PAGE, 0);
	hx_touch(resident, HX_PAGE);
	if (madvise(resident, HX_PAGE, MADV_COLD) != 0) {
		hx_skip("", "madvise(MADV_COLD) unavailable: %s (needs Linux 5.4 or later)", strerror(errno));
		return 0;
	}
	int mmax = hx.max_folios > 0 && hx.max_folios < MAX_FOLIOS ? (int)hx.max_folios : MAX_FOLIOS;
	long lock_reps = hx.reps > 0 ? hx.reps : (hx.quick ? 100 : 1000);
	long drain_reps = hx.reps > 0 ? hx.reps : (hx.quick ? 40 : 300);

	/* configurations: 0 handoff, 1 local lock, then (m, remote) pairs */
	int nconf = 2 + 2 * NCOUNTS;
	int runnable[2 + 2 * NCOUNTS];
	long reps[2 + 2 * NCOUNTS];
	for (int c = 0; c < nconf; c++) {
		runnable[c] = c < 2 || folio_counts[(c - 2) / 2] <= mmax;
		reps[c] = c < 2 ? lock_reps : drain_reps;
	}
	long n;
	int *order = hx_trial_order(nconf, runnable, reps, &n);
	long drains = 0;
	for (long i = 0; i < n; i++)
		drains += order[i] >= 2;
	hx_plan(n + drains);   /* drain trials give ns and verified */

	/* started on CPU 1 itself: created on CPU 0 it would inherit our SCHED_FIFO there and never
	 * run while we spin */
	pthread_t th;
	pthread_attr_t attr;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(1, &set);
	atomic_store(&mode, 0);
	atomic_store(&turn, 2);
	pthread_attr_init(&attr);
	pthread_attr_setaffinity_np(&attr, sizeof set, &set);
	int err = pthread_create(&th, &attr, other_cpu, NULL);
	pthread_attr_destroy(&attr);
	if (err)
		hx_die("pthread_create: %s", strerror(err));

	hx_warm_memory(64);
	long warm = hx.warmup >= 0 ? hx.warmup : (hx.quick ? 20 : 100);
	for (long w = 0; w < warm; w++) {
		int v;
		atomic_store(&mode, 0);
		handoff_sample();
		local_sample();
		atomic_store(&mode, 1);
		drain_sample(folio_counts[hx_rand() % NCOUNTS] % (mmax + 1), (int)(hx_rand() & 1), &v);
	}
	hx_meta("warmup", "touched and freed 64 MiB; %ld untimed rounds of every kind", warm);
	hx_meta("cpus", "lock handed between CPU 0 and CPU 1; drains timed on CPU 0, the remote reads on CPU 1");
	hx_meta("handoffs_per_sample", "%d", HANDOFFS);

	for (long i = 0; i < n; i++) {
		int c = order[i];
		char cfg[80];
		if (c == 0) {
			atomic_store(&mode, 0);
			hx_sample("op=lock_handoff", "ns=%.2f", handoff_sample());
		} else if (c == 1) {
			hx_sample("op=lock_local", "ns=%.2f", local_sample());
		} else {
			int m = folio_counts[(c - 2) / 2], remote = (c - 2) % 2 == 0;
			int v;
			atomic_store(&mode, 1);
			double ns = drain_sample(m, remote, &v);
			snprintf(cfg, sizeof cfg, "op=%s\tfolios=%d", remote ? "drain_remote_refs" : "drain_local_refs", m);
			hx_sample(cfg, "verified=%d", v);
			if (v)
				hx_sample(cfg, "ns=%.1f", ns);
		}
		hx_progress();
	}
	atomic_store(&mode, 2);
	pthread_join(th, NULL);
	free(order);
	return 0;
}
