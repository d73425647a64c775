/*
 * workload: a controlled mix of write-protect faults, timed one by one, to check that the model's
 * expected cost and copy probability compose the way the kernel does.
 *
 * One trial: on the holding CPU H, empty H's batch (MADV_COLD); for an unknown position first add
 * R fresh pages, R uniform on 0..B-1 (so the target's position is uniform, the stationary law
 * without drains); first-touch the target page (it enters H's batch). Then the gap:
 *   adds_between=k       k more fresh pages first-touched on H;
 *   adds_per_s, gap_us   a helper process (exec'd afresh: it shares none of our pages or our mm)
 *                        first-touches fresh pages on H at Poisson times of the given rate while
 *                        this thread waits on the other CPU, until gap_us after the target's
 *                        first touch. The adds it made in each gap are counted (meta gap_adds_*).
 * The writer is H (same_cpu) or the other CPU W; same_cpu_percent of a configuration's trials
 * (exactly: the trials are split, then shuffled) write on H. A raw clone(CLONE_VFORK) child that
 * exits at once takes the page's exclusivity (forked on the writer; with a timed gap on W, before
 * the wait), then the target is written once: that write is the timed WP fault (ns), and its PFN before and after says whether
 * it copied.
 * target_cpus=1, siblings=spinning: a sibling thread of this process spins (reading memory only,
 * so it takes no faults itself) on the CPU that does not write, so a copy's TLB flush must reach
 * it; target_cpus=0, siblings=none: no sibling. While this thread works from W with no sibling
 * and no adder on H, the harness's guard spins on H, so no other task fills or drains H's batch.
 * The measuring thread runs SCHED_FIFO above the sibling and the adder, so it takes H back from
 * them at once.
 * Samples per trial: ns=<the write> and copied=0|1.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

const char *const hx_probe_name = "workload";

#define MAX_CONFIGS 64
#define SCRATCH_PAGES 128
#define ADDER_REGION_PAGES (32768UL)          /* 128 MiB of fresh pages for the adder */
#define ADDER_LATE_NS 5000                    /* later than this: it was preempted; redraw */

enum gap_kind { GAP_COUNT, GAP_TIME };

struct config {
	enum gap_kind gap;
	int k;              /* GAP_COUNT: adds between install and write */
	long rate_per_s;    /* GAP_TIME: adder rate */
	long gap_us;        /* GAP_TIME: install-to-write time */
	int drained;        /* 1: position 0; 0: uniform position */
	int same_pct;       /* share of trials written on the holding CPU */
	int sibling;        /* 1: a spinning sibling on the CPU that does not write */
	/* gathered */
	double gap_adds_sum, gap_adds_sq, gap_ns_sum;
	long gap_trials;
};

static struct config configs[MAX_CONFIGS];
static int nconf;
static int hold_cpu, other_cpu, batch_size;

/* ------------------------------------------------------------------ the adder process */

enum { ADDER_SLEEP = 0, ADDER_RUN = 1, ADDER_EXIT = 2 };

struct adder_ctl {
	volatile int mode;
	volatile int running;        /* 1 while in RUN mode; 0 once asleep with housekeeping done */
	volatile int ready;
	volatile long rate_per_s;
	volatile uint64_t adds;      /* fresh pages first-touched so far */
	volatile uint64_t redraws;   /* times it found itself late (preempted) and redrew */
	volatile uint64_t wraps;     /* times it ran out of fresh pages in RUN mode */
};

static struct adder_ctl *adder;
static pid_t adder_pid;

/* Natural logarithm of u in (0, 1], without libm: u = m 2^e, ln m by the atanh series. */
static double ln01(double u)
{
	int e = 0;
	while (u < 1.0) {
		u *= 2.0;
		e--;
	}
	double s = (u - 1.0) / (u + 1.0), s2 = s * s, term = s, sum = 0.0;
	for (int i = 1; i < 40; i += 2) {
		sum += term / i;
		term *= s2;
	}
	return 2.0 * sum + e * 0.69314718055994530942;
}

static uint64_t adder_rng = 0x2545f4914f6cdd1dULL;

static double exp_gap_ns(long rate_per_s)
{
	adder_rng ^= adder_rng >> 12;
	adder_rng ^= adder_rng << 25;
	adder_rng ^= adder_rng >> 27;
	double u = (double)((adder_rng * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
	if (u <= 0.0)
		u = 1.0 / 9007199254740992.0;
	return -ln01(u) * 1e9 / (double)rate_per_s;
}

static _Noreturn void adder_loop(int cpu, int fd)
{
	struct adder_ctl *ctl = hx_helper_attach(cpu, fd);
	size_t bytes = ADDER_REGION_PAGES * HX_PAGE;
	char *region = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (region == MAP_FAILED)
		_exit(1);
	madvise(region, bytes, MADV_NOHUGEPAGE);
	adder_rng ^= hx_now_ns() * 0x9e3779b97f4a7c15ULL;
	size_t used = 0;
	ctl->ready = 1;
	for (;;) {
		int m = ctl->mode;
		if (m == ADDER_EXIT)
			_exit(0);
		if (m == ADDER_SLEEP) {
			if (used > ADDER_REGION_PAGES / 4) {   /* housekeeping between trials only */
				madvise(region, used * HX_PAGE, MADV_DONTNEED);
				used = 0;
			}
			ctl->running = 0;
			syscall(SYS_futex, &ctl->mode, FUTEX_WAIT, ADDER_SLEEP, NULL, NULL, 0);
			continue;
		}
		ctl->running = 1;
		long rate = ctl->rate_per_s > 0 ? ctl->rate_per_s : 1;
		double next = (double)hx_now_ns() + exp_gap_ns(rate);
		while (ctl->mode == ADDER_RUN) {
			double t = (double)hx_now_ns();
			if (t < next) {
				__builtin_ia32_pause();
				continue;
			}
			if (t - next > ADDER_LATE_NS) {   /* preempted: the process is memoryless, redraw */
				next = t + exp_gap_ns(rate);
				ctl->redraws++;
				continue;
			}
			if (used >= ADDER_REGION_PAGES) {
				madvise(region, used * HX_PAGE, MADV_DONTNEED);
				used = 0;
				ctl->wraps++;
			}
			region[used++ * HX_PAGE] = 1;
			ctl->adds++;
			next += exp_gap_ns(rate);
		}
	}
}

/* The exec'd adder enters here, before the harness's main. */
__attribute__((constructor)) static void adder_entry(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--workload-adder"))
		adder_loop(atoi(argv[2]), atoi(argv[3]));
}

static void adder_start(int cpu)
{
	adder = hx_helper_start("adder", "--workload-adder", cpu, offsetof(struct adder_ctl, ready), &adder_pid);
}

static void adder_set(int mode, long rate)
{
	adder->rate_per_s = rate;
	adder->mode = mode;
	syscall(SYS_futex, &adder->mode, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* Sends the adder to sleep and waits until it sleeps, its housekeeping done. Call from a CPU
 * other than the adder's, or the adder cannot run to see the change. */
static void adder_stop(void)
{
	adder_set(ADDER_SLEEP, 0);
	uint64_t t0 = hx_now_ns();
	while (adder->running)
		if (hx_now_ns() - t0 > 5000000000ULL)
			hx_die("the adder process does not stop");
}

static void adder_exit(void)
{
	if (!adder_pid)
		return;
	adder_set(ADDER_EXIT, 0);
	hx_reap(adder_pid);
	adder_pid = 0;
}

/* ------------------------------------------------------------------ one trial */

static void config_string(char *buf, size_t len, const struct config *c)
{
	int n;
	if (c->gap == GAP_COUNT)
		n = snprintf(buf, len, "op=wp_write\tadds_between=%d", c->k);
	else
		n = snprintf(buf, len, "op=wp_write\tadds_per_s=%ld\tgap_us=%ld", c->rate_per_s, c->gap_us);
	snprintf(buf + n, len - (size_t)n, "\tdrained_first=%d\tsame_cpu_percent=%d\ttarget_cpus=%d\tsiblings=%s",
		 c->drained, c->same_pct, c->sibling, c->sibling ? "spinning" : "none");
}

/* Writes to the current stack page(s), so that after a fork the WP faults on our own stack are
 * taken here and not inside the timed write. */
__attribute__((noinline)) static void touch_stack(void)
{
	volatile char pad[3 * 1024];
	for (size_t i = 0; i < sizeof pad; i += 256)
		pad[i] = (char)i;
}

static inline double timed_write(volatile char *p)
{
	uint64_t t0 = hx_now_ns();
	*p = 2;
	uint64_t t1 = hx_now_ns();
	return hx_elapsed_ns(t0, t1, 1);
}

struct outcome {
	double ns;
	int copied;
};

static struct outcome run_trial(struct config *c, int same)
{
	struct outcome out;
	int writer = same ? hold_cpu : other_cpu;
	size_t scratch_bytes = SCRATCH_PAGES * HX_PAGE;
	int pre = c->drained ? 0 : (int)(hx_rand() % (uint64_t)batch_size);

	hx_pin(hold_cpu);
	if (c->sibling)
		hx_sibling_to(writer == hold_cpu ? other_cpu : hold_cpu);
	char *target = hx_map(HX_PAGE, 0);
	char *scratch = hx_map(scratch_bytes, 0);
	if (c->gap == GAP_TIME)
		adder_set(ADDER_RUN, c->rate_per_s);   /* it runs on H once this thread leaves H */

	hx_drain_local();
	hx_touch(scratch, (size_t)pre * HX_PAGE);
	*(volatile char *)target = 1;                      /* install: enters H's batch */
	uint64_t t_install = hx_now_ns();
	uint64_t adds0 = c->gap == GAP_TIME ? adder->adds : 0;
	if (c->gap == GAP_COUNT)
		hx_touch(scratch + (size_t)pre * HX_PAGE, (size_t)c->k * HX_PAGE);
	uint64_t before = hx_pfn(target);

	if (c->gap == GAP_TIME) {
		/* The fork is made on W for both writers, before the wait, so the gap is the same. */
		hx_pin(other_cpu);
		hx_fork_exit_wait();
		touch_stack();
		uint64_t deadline = t_install + (uint64_t)c->gap_us * 1000ULL;
		while (hx_now_ns() < deadline)
			__builtin_ia32_pause();
		if (same)
			hx_pin(hold_cpu);
		uint64_t adds1 = adder->adds;
		uint64_t t_write = hx_now_ns();
		out.ns = timed_write(target);
		double a = (double)(adds1 - adds0);
		c->gap_adds_sum += a;
		c->gap_adds_sq += a * a;
		c->gap_ns_sum += (double)(t_write - t_install);
		c->gap_trials++;
	} else {
		if (!same) {
			if (!c->sibling)
				hx_guard_hold(1);
			hx_pin(other_cpu);
		}
		hx_fork_exit_wait();
		touch_stack();
		out.ns = timed_write(target);
	}
	uint64_t after = hx_pfn(target);
	if (!before || !after)
		hx_die("target page not present around the write (pfn %llu -> %llu)",
		       (unsigned long long)before, (unsigned long long)after);
	out.copied = before != after;

	if (c->gap == GAP_TIME) {
		if (hx_current_cpu() == hold_cpu)
			hx_pin(other_cpu);
		adder_stop();
	}
	hx_guard_hold(0);
	hx_pin(hold_cpu);
	hx_unmap(target, HX_PAGE, 0);
	hx_unmap(scratch, scratch_bytes, 0);
	return out;
}

/* ------------------------------------------------------------------ main */

static void add_count(int k, int drained, int same_pct, int sibling)
{
	configs[nconf++] = (struct config){ .gap = GAP_COUNT, .k = k, .drained = drained,
					     .same_pct = same_pct, .sibling = sibling };
}

static void add_time(long rate, long gap_us, int drained, int same_pct)
{
	configs[nconf++] = (struct config){ .gap = GAP_TIME, .rate_per_s = rate, .gap_us = gap_us,
					     .drained = drained, .same_pct = same_pct };
}

int probe_main(void)
{
	int ncpu = hx_online_cpus();
	hold_cpu = 0;
	other_cpu = 1;
	batch_size = hx.max_folios > 0 ? (int)hx.max_folios + 1 : 31;
	if (batch_size > SCRATCH_PAGES)
		batch_size = SCRATCH_PAGES;
	if (ncpu < 2) {
		hx_skip("", "needs two online CPUs: the writes and the sibling are placed on the other CPU");
		return 0;
	}
	if (!hx_need_pfns())
		return 0;

	static const int same_pcts[] = { 0, 50, 100 };
	for (int s = 0; s < 3; s++)
		for (int sib = 0; sib <= 1; sib++) {
			add_count(0, 1, same_pcts[s], sib);
			add_count(10, 0, same_pcts[s], sib);
		}
	for (int sib = 0; sib <= 1; sib++)
		add_count(batch_size + 9, 1, 0, sib);
	for (int s = 0; s < 3; s++)
		add_time(100000, 300, 1, same_pcts[s]);
	add_time(50000, 200, 0, 0);
	add_time(50000, 200, 0, 100);

	long reps = hx.reps > 0 ? hx.reps : hx_scaled(hx.quick ? 24 : 400);
	reps += reps % 2;   /* a 50% configuration splits its trials exactly */
	int passes = hx.quick ? 2 : 4;
	long per_pass = reps / passes;
	if (per_pass < 2)
		per_pass = 2;
	reps = per_pass * passes;

	hx_pin(hold_cpu);
	hx_realtime(2);
	hx_guard_start(hold_cpu);
	adder_start(hold_cpu);
	hx_sibling_start(other_cpu);   /* the spinning sibling, asleep until a block wants it */
	hx_meta("hold_cpu", "%d", hold_cpu);
	hx_meta("other_cpu", "%d", other_cpu);
	hx_meta("batch_size_assumed", "%d", batch_size);
	hx_meta("unknown_position", "drained_first=0: the batch is emptied, then a uniform 0..%d fresh pages go first",
		batch_size - 1);
	hx_meta("exclusivity", "raw clone(CLONE_VFORK|SIGCHLD) child that exits at once, from the writing CPU");
	hx_meta("adder", "a process exec'd afresh, SCHED_FIFO below the measuring thread, first-touches fresh pages "
		"on CPU %d at Poisson times while this thread waits on CPU %d", hold_cpu, other_cpu);
	hx_plan(2L * reps * nconf);

	/* Warm-up: host-reclaimed memory first, then untimed trials of every configuration. */
	long warm = hx.warmup >= 0 ? hx.warmup : (hx.quick ? 2 : 10);
	hx_warm_memory(128);
	for (int sib = 0; sib <= 1; sib++) {
		hx_sibling_spin(sib, other_cpu);
		for (long w = 0; w < warm; w++)
			for (int c = 0; c < nconf; c++)
				if (configs[c].sibling == sib)
					run_trial(&configs[c], w % 2 ? configs[c].same_pct > 0 : configs[c].same_pct == 100);
	}
	for (int c = 0; c < nconf; c++)
		configs[c].gap_adds_sum = configs[c].gap_adds_sq = configs[c].gap_ns_sum = 0, configs[c].gap_trials = 0;
	uint64_t redraws0 = adder->redraws;
	hx_meta("warmup", "touched and freed 128 MiB; %ld untimed trials per configuration", warm);

	/* Per pass, one block without the sibling and one with it spinning; shuffled within. */
	long block_cap = (long)nconf * per_pass;
	int *order = malloc(sizeof(int) * (size_t)block_cap);
	struct outcome *res = malloc(sizeof(struct outcome) * (size_t)block_cap);
	if (!order || !res)
		hx_die("out of memory");
	for (int pass = 0; pass < passes; pass++) {
		for (int sib = 0; sib <= 1; sib++) {
			long n = 0;
			for (int c = 0; c < nconf; c++) {
				if (configs[c].sibling != sib)
					continue;
				long n_same = per_pass * configs[c].same_pct / 100;
				for (long r = 0; r < per_pass; r++)
					order[n++] = c * 2 + (r < n_same);
			}
			hx_shuffle(order, n);
			hx_sibling_spin(sib, other_cpu);
			for (long i = 0; i < n; i++)
				res[i] = run_trial(&configs[order[i] / 2], order[i] % 2);
			for (long i = 0; i < n; i++) {
				char cfg[256];
				config_string(cfg, sizeof cfg, &configs[order[i] / 2]);
				hx_sample(cfg, "ns=%.1f", res[i].ns);
				hx_sample(cfg, "copied=%d", res[i].copied);
			}
			hx_progress();
		}
	}
	hx_sibling_stop();
	hx_pin(other_cpu);
	adder_exit();
	hx_pin(hold_cpu);

	for (int c = 0; c < nconf; c++) {
		const struct config *cf = &configs[c];
		if (cf->gap != GAP_TIME || !cf->gap_trials)
			continue;
		double mean = cf->gap_adds_sum / (double)cf->gap_trials;
		double var = cf->gap_adds_sq / (double)cf->gap_trials - mean * mean;
		char key[96];
		snprintf(key, sizeof key, "gap_adds_%ld_per_s_%ld_us_drained_%d_same_%d",
			 cf->rate_per_s, cf->gap_us, cf->drained, cf->same_pct);
		hx_meta(key, "mean=%.3f var=%.3f gap_ns=%.0f trials=%ld", mean, var < 0 ? 0 : var,
			cf->gap_ns_sum / (double)cf->gap_trials, cf->gap_trials);
	}
	hx_meta("adder_redraws", "%llu", (unsigned long long)(adder ? adder->redraws - redraws0 : 0));
	hx_meta("adder_wraps", "%llu", (unsigned long long)(adder ? adder->wraps : 0));
	free(order);
	free(res);
	return 0;
}
