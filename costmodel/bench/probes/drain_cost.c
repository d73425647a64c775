/*
 * drain_cost: cost of draining the local LRU add batch as a function of how full it is.
 *
 * Pinned to one CPU. Each sample: MADV_COLD on a resident page empties the batch (untimed);
 * m = folios fresh pages are first-touched, so the batch holds exactly m folios; then one
 * madvise(MADV_COLD) on the same resident page is timed. That call starts with lru_add_drain(),
 * so its cost is a base (syscall, one-page walk) plus the drain of m folios.
 * m runs 0..max_folios (--max-folios, default 30 = batch size 31 minus one: the add that would
 * fill the batch drains it itself). Sample: ns=<per call>.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MADV_COLD
#define MADV_COLD 20
#endif

const char *const hx_probe_name = "drain_cost";

static char *resident;

static double one_sample(int m)
{
	size_t bytes = (size_t)(m ? m : 1) * HX_PAGE;
	char *p = hx_map(bytes, 0);
	if (madvise(resident, HX_PAGE, MADV_COLD) != 0)
		hx_die("madvise(MADV_COLD): %s", strerror(errno));
	hx_touch(p, (size_t)m * HX_PAGE);
	uint64_t t0 = hx_now_ns();
	madvise(resident, HX_PAGE, MADV_COLD);
	uint64_t t1 = hx_now_ns();
	hx_unmap(p, bytes, 0);
	return hx_elapsed_ns(t0, t1, 1);
}

int probe_main(void)
{
	int mmax = hx.max_folios > 0 ? (int)hx.max_folios : 30;
	long reps = hx.reps > 0 ? hx.reps : hx_scaled(hx.quick ? 100 : 1000);
	hx_pin(0);
	hx_realtime(1);   /* no other task adds to this CPU's batch between the drain and the timing */
	resident = hx_map(HX_PAGE, 0);
	hx_touch(resident, HX_PAGE);
	if (madvise(resident, HX_PAGE, MADV_COLD) != 0) {
		hx_skip("", "madvise(MADV_COLD) unavailable: %s (needs Linux 5.4 or later)", strerror(errno));
		return 0;
	}

	long n = (long)(mmax + 1) * reps;
	int *order = malloc(sizeof(int) * (size_t)n);
	if (!order)
		hx_die("out of memory");
	for (long i = 0; i < n; i++)
		order[i] = (int)(i % (mmax + 1));
	hx_shuffle(order, n);

	hx_meta("cpu", "0");
	hx_meta("max_folios", "%d", mmax);
	long warm = hx.warmup >= 0 ? hx.warmup : (hx.quick ? 100 : 500);
	hx_plan(n);
	hx_warm_memory(64);
	for (long w = 0; w < warm; w++)
		one_sample((int)(hx_rand() % (uint64_t)(mmax + 1)));
	hx_meta("warmup", "touched and freed 64 MiB; %ld untimed samples of random m", warm);

	for (long i = 0; i < n; i++) {
		char cfg[64];
		double ns = one_sample(order[i]);
		snprintf(cfg, sizeof cfg, "op=madv_cold\tfolios=%d", order[i]);
		hx_sample(cfg, "ns=%.1f", ns);
		hx_progress();
	}
	free(order);
	return 0;
}
