/*
 * unnecessary_copy: does a write-protect fault copy a page that only the per-CPU LRU add batch
 * still references?
 *
 * One trial, pinned to the holding CPU H:
 *   map the target page(s) (MADV_NOHUGEPAGE, or one MADV_HUGEPAGE span);
 *   drained_first=1: MADV_COLD on a resident page empties H's batch, so the target lands at
 *                    position 0;  drained_first=0: 0..255 random fresh-page adds first, so its
 *                    position is unknown;
 *   write the target pages (first touch: each is added to H's batch), then k = adds_between
 *   further fresh pages; read each target's PFN from /proc/self/pagemap;
 *   move to the writing CPU (H itself when same_cpu=1, another CPU when 0), drop exclusivity with
 *   a raw clone(CLONE_VFORK) child that exits at once, write the targets again (WP fault) and read
 *   the PFNs: a changed PFN is a copy.
 * While the process is on the writing CPU, the harness's guard process spins on H (both
 * SCHED_FIFO where allowed), so no other task can run there and add pages to, or drain, H's
 * batch mid-trial.
 * Sample: copied=0|1 per target page written.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const hx_probe_name = "unnecessary_copy";

#define KPF_THP 22
#define MAX_PAGES 16
#define RANDOM_ADDS_MAX 256

struct trial {
	int k, drained, same, pages, huge;
};

static int hold_cpu, other_cpu;
static long huge_fallbacks;

static void config_string(char *buf, size_t len, const struct trial *t)
{
	snprintf(buf, len, "op=wp_write\tadds_between=%d\tdrained_first=%d\tsame_cpu=%d\tpages=%d\thuge=%d",
		 t->k, t->drained, t->same, t->pages, t->huge);
}

/* Runs one trial; fills copied[] and returns the number of target pages measured. */
static int run_trial(const struct trial *t, int copied[MAX_PAGES])
{
	uint64_t before[MAX_PAGES], after[MAX_PAGES];
	int random_adds = t->drained ? 0 : (int)(hx_rand() % RANDOM_ADDS_MAX);
	size_t target_bytes = t->huge ? HX_HUGE : (size_t)t->pages * HX_PAGE;
	size_t scratch_pages = (size_t)random_adds + (size_t)t->k;
	size_t scratch_bytes = (scratch_pages ? scratch_pages : 1) * HX_PAGE;
	/* With a huge target, the written pages are the first `pages` 4 KiB pages of the THP. */
	size_t stride = HX_PAGE;

	hx_pin(hold_cpu);
	char *target = hx_map(target_bytes, t->huge);
	char *scratch = hx_map(scratch_bytes, 0);

	if (t->drained)
		hx_drain_local();
	else
		hx_touch(scratch, (size_t)random_adds * HX_PAGE);
	for (int i = 0; i < t->pages; i++)
		((volatile char *)target)[i * stride] = 1;
	hx_touch(scratch + (size_t)random_adds * HX_PAGE, (size_t)t->k * HX_PAGE);
	for (int i = 0; i < t->pages; i++)
		before[i] = hx_pfn(target + i * stride);

	int measured = t->pages;
	if (t->huge && !(hx_kpageflags(before[0]) & (1ULL << KPF_THP))) {
		huge_fallbacks++;
		measured = 0;
	}

	if (!t->same) {
		hx_guard_hold(1);
		hx_pin(other_cpu);
	}
	hx_fork_exit_wait();
	for (int i = 0; i < t->pages; i++)
		((volatile char *)target)[i * stride] = 2;
	for (int i = 0; i < t->pages; i++)
		after[i] = hx_pfn(target + i * stride);

	for (int i = 0; i < t->pages; i++) {
		if (!before[i] || !after[i])
			hx_die("target page not present after a write (pfn %llu -> %llu)",
			       (unsigned long long)before[i], (unsigned long long)after[i]);
		copied[i] = before[i] != after[i];
	}
	hx_guard_hold(0);
	hx_pin(hold_cpu);
	hx_unmap(target, target_bytes, t->huge);
	hx_unmap(scratch, scratch_bytes, 0);
	return measured;
}

int probe_main(void)
{
	int ncpu = hx_online_cpus();
	int kmax = hx.max_folios > 0 ? (int)hx.max_folios : 40;
	hold_cpu = 0;
	other_cpu = ncpu > 1 ? 1 : 0;

	/* PFNs are only shown to CAP_SYS_ADMIN; without them nothing here can be seen. */
	if (!hx_need_pfns())
		return 0;

	long cross_reps = hx_scaled(hx.quick ? 16 : 1000);
	long same_reps = hx_scaled(hx.quick ? 4 : 200);
	long pages_reps = hx_scaled(hx.quick ? 4 : 200);
	long huge_reps = hx_scaled(hx.quick ? 4 : 100);
	if (hx.reps > 0)
		cross_reps = same_reps = pages_reps = huge_reps = hx.reps;

	static const int pages_ks[] = { 0, 10, 14, 15, 16, 20, 26, 27, 28 };
	static const int pages_list[] = { 4, 16 };
	struct trial configs[512];
	long reps_of[512];
	int nconf = 0;
	for (int k = 0; k <= kmax; k++)
		for (int drained = 1; drained >= 0; drained--)
			for (int same = 0; same <= 1; same++) {
				configs[nconf] = (struct trial){ k, drained, same, 1, 0 };
				reps_of[nconf++] = same ? same_reps : cross_reps;
			}
	for (size_t a = 0; a < sizeof pages_list / sizeof pages_list[0]; a++)
		for (size_t b = 0; b < sizeof pages_ks / sizeof pages_ks[0]; b++) {
			configs[nconf] = (struct trial){ pages_ks[b], 1, 0, pages_list[a], 0 };
			reps_of[nconf++] = pages_reps;
		}
	for (int same = 0; same <= 1; same++) {
		configs[nconf] = (struct trial){ 0, 1, same, 1, 1 };
		reps_of[nconf++] = huge_reps;
	}

	/* Configurations this machine cannot run are reported, not measured. */
	int runnable[512];
	long nsamples = 0;
	for (int c = 0; c < nconf; c++) {
		runnable[c] = configs[c].same || ncpu > 1;
		if (!runnable[c]) {
			char cfg[256];
			config_string(cfg, sizeof cfg, &configs[c]);
			hx_skip(cfg, "needs a second online CPU to write from");
			continue;
		}
		nsamples += reps_of[c] * configs[c].pages;
	}
	long n;
	int *order = hx_trial_order(nconf, runnable, reps_of, &n);

	hx_pin(hold_cpu);
	hx_realtime(1);
	if (ncpu > 1)
		hx_guard_start(hold_cpu);
	hx_meta("hold_cpu", "%d", hold_cpu);
	hx_meta("other_cpu", "%d", other_cpu);
	hx_meta("unknown_position", "drained_first=0 trials first add a uniform random 0..%d fresh pages",
		RANDOM_ADDS_MAX - 1);
	hx_meta("exclusivity", "raw clone(CLONE_VFORK|SIGCHLD) child that exits at once, from the writing CPU");
	hx_plan(nsamples);

	long warm = hx.warmup >= 0 ? hx.warmup : (hx.quick ? 20 : 100);
	hx_warm_memory(64);
	hx_meta("warmup", "touched and freed 64 MiB; %ld untimed trials of random configurations", warm);
	int copied[MAX_PAGES];
	for (long w = 0; w < warm && n; w++)
		run_trial(&configs[order[hx_rand() % (uint64_t)n]], copied);

	for (long i = 0; i < n; i++) {
		const struct trial *t = &configs[order[i]];
		int m = run_trial(t, copied);
		char cfg[256];
		config_string(cfg, sizeof cfg, t);
		for (int p = 0; p < m; p++)
			hx_sample(cfg, "copied=%d", copied[p]);
		hx_progress();
	}
	hx_meta("huge_fallbacks", "%ld", huge_fallbacks);
	if (huge_fallbacks)
		hx_meta("huge_note", "%ld huge trials got no THP and were dropped", huge_fallbacks);
	free(order);
	return 0;
}
