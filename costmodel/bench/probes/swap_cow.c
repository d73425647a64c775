/*
 * swap_cow: does a write after swap-in take a WP fault, and does that fault copy a page that only
 * an LRU batch still references? The seed report's open question, measured on zram (a swap
 * device with SWP_SYNCHRONOUS_IO).
 *
 * Swap: only on a machine with no swap active and /dev/zram0 unused (disksize 0). The probe
 * claims zram0 by setting its disksize (the kernel refuses that on a device in use, so two
 * probes cannot both claim it), writes a swap header and calls swapon. Every exit path restores
 * swapoff and the zram reset: the normal end, SIGINT/SIGTERM/SIGHUP (handlers), and any other
 * death (a keeper process in its own session waits on a pipe from this one; when the pipe closes
 * without the "restored" byte, the keeper restores). Otherwise the probe skips with the reason.
 *
 * op=swap_write, one round of 16 pages, all steps on the holding CPU H unless said:
 *   first touch; sharing=forked: a raw clone(CLONE_VFORK) child that exits at once takes the
 *   pages' exclusivity; MADV_PAGEOUT (it empties H's batch first, then writes the pages to zram);
 *   only pages seen swapped out in /proc/self/pagemap count. sharing=child_alive: a child forked
 *   now (on the other CPU W, where this process then writes every page it will touch, so none of
 *   its own copy-on-write copies land in H's batch) keeps the swap entries shared, so swap-in
 *   must go through the swap cache; it is killed at the end of the round.
 *   swap_path=readahead: MADV_WILLNEED reads the pages into the swap cache (each enters H's batch);
 *   then a read of each page swaps it in (direct: zram skips the swap cache when the entry is not
 *   shared, and the fresh page enters H's batch).
 *   The writer is H (same_cpu=1) or W (same_cpu=0; the guard spins on H when no sibling does).
 *   Per page: faulted=0|1 (the thread's faults across the round's writes, counted once around them
 *   and given to its first pages: see timed_writes), copied=0|1 (PFN after the read against after
 *   the round's writes), ns for the write. siblings=spinning: a sibling thread spins on
 *   the CPU that does not write (a copy's TLB flush must reach it).
 * op=swap_fault: what the swap cache adds to a reuse (the entry freed) and to a copy (the entry
 *   shared with a live child): see fault_round below; calibration's, not a check of the model.
 * op=swap_loop: threads=1: one thread on CPU 0; threads=2: one on each CPU, each looping over its
 *   own page: MADV_PAGEOUT, read (swap-in), write. ns per iteration, per block of iterations.
 *   siblings=looping (threads=2), none, or spinning (threads=1 and a sibling only spinning on
 *   the other CPU: the share of the two-thread cost that the TLB shootdowns alone explain).
 *   swap_path as above (readahead: MADV_WILLNEED before the read). The faults per iteration
 *   (minor, major) go to meta.
 * Meta: how many pages did not swap out, and the share of swapped-in pages in the swap cache.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kernel-page-flags.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/swap.h>
#include <unistd.h>

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

const char *const hx_probe_name = "swap_cow";

#define ZRAM_DEV "/dev/zram0"
#define ZRAM_SYS "/sys/block/zram0"
#define ZRAM_BYTES (64UL << 20)
#define ROUND_PAGES 16
#define LOOP_BLOCK 50

enum sharing { EXCLUSIVE, FORKED, CHILD_ALIVE, NSHARING };
static const char *const sharing_names[NSHARING] = { "exclusive", "forked", "child_alive" };
enum path { DIRECT, READAHEAD, NPATHS };
static const char *const path_names[NPATHS] = { "direct", "readahead" };

static int hold_cpu, other_cpu;

/* ------------------------------------------------------------------ zram as swap */

/* What this process has set up, in memory shared with the keeper process. */
struct zram_state {
	volatile sig_atomic_t claimed, swap_on;
};
static struct zram_state zram_fallback;
static struct zram_state *zs = &zram_fallback;
static int keeper_fd = -1;
static pid_t keeper_pid;

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, text, strlen(text));
	int err = n < 0 ? -errno : 0;
	close(fd);
	return err;
}

static long read_long(const char *path)
{
	char buf[64];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return strtol(buf, NULL, 10);
}

/* Async-signal-safe: swapoff, then reset the device; only what this process set up. */
static void zram_undo(void)
{
	if (zs->swap_on) {
		while (swapoff(ZRAM_DEV) != 0 && errno == EINTR)
			;
		zs->swap_on = 0;
	}
	if (zs->claimed) {
		for (int i = 0; i < 200; i++) {   /* the device may stay busy a moment after swapoff */
			if (write_file(ZRAM_SYS "/reset", "1") == 0)
				break;
			struct timespec ts = { 0, 10000000 };
			nanosleep(&ts, NULL);
		}
		zs->claimed = 0;
	}
}

static void zram_restore(void)
{
	zram_undo();
	if (keeper_fd >= 0) {
		ssize_t n = write(keeper_fd, "D", 1);
		(void)n;
		close(keeper_fd);
		keeper_fd = -1;
	}
}

static void on_signal(int sig)
{
	zram_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* A process in its own session (the runner's kill of our process group does not reach it) that
 * restores swap if this process dies without saying it did. */
static void keeper_start(void)
{
	int fds[2];
	struct zram_state *shared = mmap(NULL, HX_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (shared == MAP_FAILED)
		hx_die("mmap (keeper): %s", strerror(errno));
	shared->claimed = shared->swap_on = 0;
	zs = shared;
	if (pipe(fds) != 0)
		hx_die("pipe (keeper): %s", strerror(errno));
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		hx_die("fork (keeper): %s", strerror(errno));
	if (pid == 0) {
		setsid();
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		signal(SIGPIPE, SIG_IGN);
		int null = open("/dev/null", O_RDWR);
		for (int fd = 0; fd < 1024; fd++)
			if (fd != fds[0] && fd != null)
				close(fd);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
		}
		char c = 0;
		ssize_t n;
		while ((n = read(fds[0], &c, 1)) < 0 && errno == EINTR)
			;
		if (n == 1 && c == 'D')
			_exit(0);
		zram_undo();   /* the probe died: undo what it had set up */
		_exit(0);
	}
	close(fds[0]);
	keeper_fd = fds[1];
	fcntl(keeper_fd, F_SETFD, FD_CLOEXEC);
	keeper_pid = pid;
}

static void keeper_stop(void)
{
	zram_restore();
	if (keeper_pid) {
		hx_reap(keeper_pid);
		keeper_pid = 0;
	}
}

static int write_swap_header(char *why, size_t len)
{
	static unsigned char page[HX_PAGE];
	memset(page, 0, sizeof page);
	uint32_t version = 1, last_page = (uint32_t)(ZRAM_BYTES / HX_PAGE - 1), bad = 0;
	memcpy(page + 1024, &version, 4);
	memcpy(page + 1028, &last_page, 4);
	memcpy(page + 1032, &bad, 4);
	for (int i = 0; i < 16; i++)
		page[1036 + i] = (unsigned char)hx_rand();   /* uuid */
	memcpy(page + HX_PAGE - 10, "SWAPSPACE2", 10);
	int fd = open(ZRAM_DEV, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, len, "cannot open %s: %s", ZRAM_DEV, strerror(errno));
		return -1;
	}
	ssize_t n = pwrite(fd, page, sizeof page, 0);
	int err = errno;
	fsync(fd);
	close(fd);
	if (n != (ssize_t)sizeof page) {
		snprintf(why, len, "cannot write the swap header to %s: %s", ZRAM_DEV, strerror(err));
		return -1;
	}
	return 0;
}

static int swaps_active(void)
{
	char buf[4096];
	int fd = open("/proc/swaps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	int lines = 0;
	for (char *p = buf; *p; p++)
		lines += *p == '\n';
	return lines > 1 ? lines - 1 : 0;   /* the first line is the header */
}

/* 0 when zram0 is swap now; otherwise the reason, and nothing is left set up. */
static int zram_setup(char *why, size_t len)
{
	if (!hx_is_root()) {
		snprintf(why, len, "needs root to set up zram swap (swapon)");
		return -1;
	}
	if (access(ZRAM_SYS "/disksize", W_OK) != 0 || access(ZRAM_DEV, W_OK) != 0) {
		snprintf(why, len, "no writable %s (kernel without CONFIG_ZRAM, or zram not loaded)", ZRAM_DEV);
		return -1;
	}
	int active = swaps_active();
	if (active != 0) {
		snprintf(why, len, active < 0 ? "cannot read /proc/swaps"
					      : "swap is already active (see /proc/swaps); the probe sets up zram "
						"only where no swap is active");
		return -1;
	}
	if (read_long(ZRAM_SYS "/disksize") != 0) {
		snprintf(why, len, "%s is in use (disksize is not 0)", ZRAM_DEV);
		return -1;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	keeper_start();
	char size[32];
	snprintf(size, sizeof size, "%lu", ZRAM_BYTES);
	zs->claimed = 1;   /* before the write: a death right after it must still be undone */
	int err = write_file(ZRAM_SYS "/disksize", size);
	if (err) {   /* refused: another user set it up meanwhile */
		zs->claimed = 0;
		snprintf(why, len, "%s could not be claimed (disksize: %s)", ZRAM_DEV, strerror(-err));
		keeper_stop();
		return -1;
	}
	if (write_swap_header(why, len) != 0) {
		keeper_stop();
		return -1;
	}
	zs->swap_on = 1;
	if (swapon(ZRAM_DEV, 0) != 0) {
		snprintf(why, len, "swapon %s: %s", ZRAM_DEV, strerror(errno));
		zs->swap_on = 0;
		keeper_stop();
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ page state */

static int is_swapped(const void *addr)
{
	return (hx_pagemap(addr) >> 62) & 1;
}

/* ------------------------------------------------------------------ op=swap_write */

struct wconfig {
	int sharing, path, same, sibling;
};

struct round_result {
	int n;
	double ns[ROUND_PAGES];
	int faulted[ROUND_PAGES], copied[ROUND_PAGES];
};

static long not_swapped[NSHARING][NPATHS], in_swapcache[NSHARING][NPATHS], swapped_in[NSHARING][NPATHS];

/* Writes the stack below us and this round's result arrays, so that while a forked child lives
 * (or after a fork) none of our own copy-on-write faults happen later, on H or in a timing. */
__attribute__((noinline)) static void touch_state(struct round_result *r, uint64_t *pfns, int *ok)
{
	volatile char pad[3 * 1024];
	for (size_t i = 0; i < sizeof pad; i += 256)
		pad[i] = (char)i;
	memset(r, 0, sizeof *r);
	for (int i = 0; i < ROUND_PAGES; i++) {
		((volatile uint64_t *)pfns)[i] = pfns[i];
		((volatile int *)ok)[i] = ok[i];
	}
	for (size_t i = 0; i < sizeof not_swapped / sizeof(long); i++) {
		((volatile long *)not_swapped)[i] += 0;
		((volatile long *)in_swapcache)[i] += 0;
		((volatile long *)swapped_in)[i] += 0;
	}
}

static long thread_faults(void)
{
	struct rusage ru;
	getrusage(RUSAGE_THREAD, &ru);
	return ru.ru_minflt + ru.ru_majflt;
}

/* Writes each page that swapped (ok), one after the other with no system call between two timed
 * writes, timing each: a system call just before a write fault makes that fault dearer (on a Zen 4
 * guest a getrusage() or a read of /proc/self/pagemap before each write raised a reuse from 675 to
 * 960 ns and a copy from 1,650 to 2,400 ns), a context the model prices only as p_cold_fault. So
 * the round's faults are counted once around the writes (faulted: that count spread over the
 * round's pages, 1 for the first ones; the fraction is exact) and the PFNs compared afterwards. */
static void timed_writes(char *p, const int *ok, const uint64_t *pfn_read, struct round_result *res)
{
	int page[ROUND_PAGES];
	long f0 = thread_faults();
	for (int i = 0; i < ROUND_PAGES; i++) {
		if (!ok[i])
			continue;
		volatile char *q = p + i * HX_PAGE;
		uint64_t t0 = hx_now_ns();
		*q = 2;
		uint64_t t1 = hx_now_ns();
		res->ns[res->n] = hx_elapsed_ns(t0, t1, 1);
		page[res->n++] = i;
	}
	long faults = thread_faults() - f0;
	for (int j = 0; j < res->n; j++) {
		res->faulted[j] = j < faults;
		res->copied[j] = hx_pfn(p + page[j] * HX_PAGE) != pfn_read[page[j]];
	}
}

static void write_round(const struct wconfig *c, struct round_result *res)
{
	size_t bytes = ROUND_PAGES * HX_PAGE;
	uint64_t pfn_read[ROUND_PAGES];
	int ok[ROUND_PAGES];
	pid_t child = 0;
	int writer = c->same ? hold_cpu : other_cpu;

	hx_pin(hold_cpu);
	if (c->sibling)
		hx_sibling_to(writer == hold_cpu ? other_cpu : hold_cpu);
	memset(ok, 0, sizeof ok);
	memset(pfn_read, 0, sizeof pfn_read);
	touch_state(res, pfn_read, ok);
	char *p = hx_map(bytes, 0);
	hx_touch(p, bytes);
	if (c->sharing == FORKED)
		hx_fork_exit_wait();
	if (madvise(p, bytes, MADV_PAGEOUT) != 0)
		hx_die("madvise(MADV_PAGEOUT): %s", strerror(errno));
	for (int i = 0; i < ROUND_PAGES; i++) {
		ok[i] = is_swapped(p + i * HX_PAGE);
		if (!ok[i])
			not_swapped[c->sharing][c->path]++;
	}
	if (c->sharing == CHILD_ALIVE) {
		/* Forked on W, then back to H. (Forked here instead, a write from W with a sibling spinning
		 * on H took no shootdown at all, for a reason not found: so the fork stays on W, which makes
		 * each copy after it 0.2-0.8 us dearer on a Zen 4 guest than swap_fault's, forked on H.)
		 * The keeper must see the pipe close when the probe dies: the child closes its end. */
		hx_pin(other_cpu);
		fflush(stdout);
		child = hx_fork_sleeper(other_cpu, keeper_fd);
		touch_state(res, pfn_read, ok);
		hx_pin(hold_cpu);
	}
	hx_drain_local();
	if (c->path == READAHEAD && madvise(p, bytes, MADV_WILLNEED) != 0)
		hx_die("madvise(MADV_WILLNEED): %s", strerror(errno));
	for (int i = 0; i < ROUND_PAGES; i++)
		(void)*(volatile char *)(p + i * HX_PAGE);      /* swap-in by a read */
	for (int i = 0; i < ROUND_PAGES; i++) {
		pfn_read[i] = hx_pfn(p + i * HX_PAGE);
		if (ok[i] && !pfn_read[i])
			hx_die("page not present after the read that swapped it in");
		if (ok[i]) {
			swapped_in[c->sharing][c->path]++;
			in_swapcache[c->sharing][c->path] += (hx_kpageflags(pfn_read[i]) >> KPF_SWAPCACHE) & 1;
		}
	}
	if (!c->same) {
		if (!c->sibling)
			hx_guard_hold(1);
		hx_pin(other_cpu);
	}
	timed_writes(p, ok, pfn_read, res);
	hx_guard_hold(0);
	hx_pin(hold_cpu);
	if (child)
		hx_kill_child(child);
	hx_unmap(p, bytes, 0);
}

/* ------------------------------------------------------------------ op=swap_fault */

/* What the swap cache adds to a WP fault, measured apart from the swap_write configurations that
 * check the model: four kinds of round of 16 pages, all on H, no sibling, every page drained onto
 * the LRU before the writes (no drain in any fault), the four kinds shuffled together.
 *   sharing=forked swap_path=none: fork+exit, write: reuse.
 *   sharing=forked swap_path=readahead: fork+exit, MADV_PAGEOUT, MADV_WILLNEED, read: the page in
 *     the swap cache, its entry no longer shared, so the write reuses and frees the entry.
 *   sharing=child_alive swap_path=none: a sleeping child (on W) maps the pages: the write copies.
 *   sharing=child_alive swap_path=readahead: MADV_PAGEOUT, then the sleeping child forked (it holds
 *     the swap entries), read: the page in the swap cache, its entry shared, so the write copies
 *     after trying (and failing) to free the entry.
 * The readahead kind less the none kind of the same sharing is what the swap cache adds to that
 * fault. Pages that did not swap out (or in) are not timed. */
enum { FAULT_KINDS = 4 };

static void fault_round(int sharing, int swapped, struct round_result *res)
{
	size_t bytes = ROUND_PAGES * HX_PAGE;
	uint64_t pfn_read[ROUND_PAGES];
	int ok[ROUND_PAGES];
	pid_t child = 0;

	hx_pin(hold_cpu);
	for (int i = 0; i < ROUND_PAGES; i++)
		ok[i] = 1;
	memset(pfn_read, 0, sizeof pfn_read);
	touch_state(res, pfn_read, ok);
	char *p = hx_map(bytes, 0);
	hx_touch(p, bytes);
	if (sharing == FORKED)
		hx_fork_exit_wait();
	if (swapped) {
		if (madvise(p, bytes, MADV_PAGEOUT) != 0)
			hx_die("madvise(MADV_PAGEOUT): %s", strerror(errno));
		for (int i = 0; i < ROUND_PAGES; i++)
			ok[i] = is_swapped(p + i * HX_PAGE);
	}
	if (sharing == CHILD_ALIVE) {   /* forked here, the child asleep on W, as fault_cost forks it */
		fflush(stdout);
		child = hx_fork_sleeper(other_cpu, keeper_fd);
		touch_state(res, pfn_read, ok);
	}
	if (swapped) {
		if (madvise(p, bytes, MADV_WILLNEED) != 0)
			hx_die("madvise(MADV_WILLNEED): %s", strerror(errno));
		for (int i = 0; i < ROUND_PAGES; i++)
			(void)*(volatile char *)(p + i * HX_PAGE);
	}
	for (int i = 0; i < ROUND_PAGES; i++) {
		pfn_read[i] = hx_pfn(p + i * HX_PAGE);
		if (swapped && ok[i])
			ok[i] = (hx_kpageflags(pfn_read[i]) >> KPF_SWAPCACHE) & 1;
	}
	hx_drain_local();
	timed_writes(p, ok, pfn_read, res);
	if (child)
		hx_kill_child(child);
	hx_unmap(p, bytes, 0);
}

static void fault_config_string(char *buf, size_t len, int sharing, int swapped)
{
	snprintf(buf, len, "op=swap_fault\tsharing=%s\tswap_path=%s\tsame_cpu=1\ttarget_cpus=0\tsiblings=none",
		 sharing_names[sharing], swapped ? "readahead" : "none");
}

/* ------------------------------------------------------------------ op=swap_loop */

struct looper {
	pthread_t thread;
	int cpu, path;
	long iterations;
	volatile int go;
	double ns_per_iter[4096];
	long blocks;
	long minflt, majflt;
};

static void *loop_main(void *arg)
{
	struct looper *l = arg;
	hx_pin(l->cpu);
	hx_realtime(1);
	char *page = hx_map(HX_PAGE, 0);
	hx_touch(page, HX_PAGE);
	while (!l->go)
		;
	struct rusage r0, r1;
	getrusage(RUSAGE_THREAD, &r0);
	l->blocks = 0;
	for (long done = 0; done < l->iterations; done += LOOP_BLOCK) {
		uint64_t t0 = hx_now_ns();
		for (int i = 0; i < LOOP_BLOCK; i++) {
			if (madvise(page, HX_PAGE, MADV_PAGEOUT) != 0)
				hx_die("madvise(MADV_PAGEOUT): %s", strerror(errno));
			if (l->path == READAHEAD)
				madvise(page, HX_PAGE, MADV_WILLNEED);
			(void)*(volatile char *)page;
			*(volatile char *)page = (char)i;
		}
		uint64_t t1 = hx_now_ns();
		if (l->blocks < 4096)
			l->ns_per_iter[l->blocks++] = hx_elapsed_ns(t0, t1, LOOP_BLOCK);
	}
	getrusage(RUSAGE_THREAD, &r1);
	l->minflt = r1.ru_minflt - r0.ru_minflt;
	l->majflt = r1.ru_majflt - r0.ru_majflt;
	hx_unmap(page, HX_PAGE, 0);
	return NULL;
}

/* threads loop threads; sibling: one more thread only spinning on the other CPU. */
static void run_loop(int threads, int sibling, int path, long iterations)
{
	if (sibling)
		hx_sibling_spin(1, other_cpu);
	static struct looper loopers[2];
	for (int t = 0; t < threads; t++) {
		loopers[t] = (struct looper){ .cpu = t == 0 ? hold_cpu : other_cpu, .path = path,
					      .iterations = iterations };
		int err = pthread_create(&loopers[t].thread, NULL, loop_main, &loopers[t]);
		if (err)
			hx_die("pthread_create: %s", strerror(err));
	}
	usleep(20000);
	/* TLB IPIs the loop's two CPUs get: with one thread alone, none (no other CPU in the mm) */
	long long ipi0 = hx_tlb_ipis(hold_cpu, hold_cpu), ipi0b = hx_tlb_ipis(other_cpu, other_cpu);
	for (int t = 0; t < threads; t++)
		loopers[t].go = 1;
	long minflt = 0, majflt = 0, iters = 0;
	for (int t = 0; t < threads; t++)
		pthread_join(loopers[t].thread, NULL);
	long long ipi1 = hx_tlb_ipis(hold_cpu, hold_cpu), ipi1b = hx_tlb_ipis(other_cpu, other_cpu);
	char cfg[128];
	for (int t = 0; t < threads; t++) {
		snprintf(cfg, sizeof cfg, "op=swap_loop\tthreads=%d\tswap_path=%s\ttarget_cpus=%d\tsiblings=%s",
			 threads, path_names[path], threads - 1 + sibling,
			 sibling ? "spinning" : threads > 1 ? "looping" : "none");
		for (long b = 0; b < loopers[t].blocks; b++)
			hx_sample(cfg, "ns=%.1f", loopers[t].ns_per_iter[b]);
		minflt += loopers[t].minflt;
		majflt += loopers[t].majflt;
		iters += loopers[t].blocks * LOOP_BLOCK;
	}
	/* per iteration of either thread: the IPIs both CPUs got over the iterations of both */
	if (ipi0 >= 0 && ipi0b >= 0 && ipi1 >= 0 && ipi1b >= 0)
		hx_counter(cfg, "tlb_ipis", (double)(ipi1 - ipi0 + ipi1b - ipi0b), iters);
	char key[64];
	if (sibling)
		hx_sibling_spin(0, other_cpu);
	snprintf(key, sizeof key, "loop_faults_threads_%d_%s_%s", threads, path_names[path],
		 sibling ? "sibling_spinning" : "no_sibling");
	hx_meta(key, "minor_per_iteration=%.3f major_per_iteration=%.3f iterations=%ld",
		(double)minflt / (double)(iters ? iters : 1), (double)majflt / (double)(iters ? iters : 1), iters);
}

/* ------------------------------------------------------------------ main */

static void wconfig_string(char *buf, size_t len, const struct wconfig *c)
{
	snprintf(buf, len, "op=swap_write\tsharing=%s\tswap_path=%s\tsame_cpu=%d\ttarget_cpus=%d\tsiblings=%s",
		 sharing_names[c->sharing], path_names[c->path], c->same, c->sibling,
		 c->sibling ? "spinning" : "none");
}

int probe_main(void)
{
	int ncpu = hx_online_cpus();
	char why[256];
	hold_cpu = 0;
	other_cpu = 1;
	if (ncpu < 2) {
		hx_skip("", "needs two online CPUs (writes on the other CPU, two-thread loop)");
		return 0;
	}
	if (!hx_need_pfns())
		return 0;
	if (zram_setup(why, sizeof why) != 0) {
		hx_skip("", "%s", why);
		return 0;
	}
	hx_meta("swap", "%s as swap, %lu MiB, set up by this probe and restored at its end", ZRAM_DEV, ZRAM_BYTES >> 20);

	struct wconfig configs[NSHARING * NPATHS * 4];
	int nconf = 0;
	for (int s = 0; s < NSHARING; s++)
		for (int pth = 0; pth < NPATHS; pth++)
			for (int same = 0; same <= 1; same++)
				for (int sib = 0; sib <= 1; sib++)
					configs[nconf++] = (struct wconfig){ s, pth, same, sib };
	long rounds = hx.reps > 0 ? hx.reps : hx_scaled(hx.quick ? 2 : 12);
	long loop_iters = hx_scaled(hx.quick ? 500 : 4000);
	hx_plan((long)(nconf + FAULT_KINDS) * rounds * ROUND_PAGES * 3 + 8 * (loop_iters / LOOP_BLOCK));

	hx_pin(hold_cpu);
	hx_realtime(2);
	hx_guard_start(hold_cpu);
	hx_sibling_start(other_cpu);
	hx_meta("hold_cpu", "%d", hold_cpu);
	hx_meta("other_cpu", "%d", other_cpu);
	hx_meta("pages_per_round", "%d", ROUND_PAGES);
	hx_meta("pfn_check", "after the round's timed writes, faults counted around them (no system call between two timed writes)");
	hx_meta("child_forked_on", "swap_fault: the holding CPU; swap_write: the other CPU, this task moved there and back");

	long warm = hx.warmup >= 0 ? hx.warmup : 1;
	hx_warm_memory(64);
	struct round_result res;
	for (int sib = 0; sib <= 1; sib++) {
		hx_sibling_spin(sib, other_cpu);
		for (long w = 0; w < warm; w++)
			for (int c = 0; c < nconf; c++)
				if (configs[c].sibling == sib)
					write_round(&configs[c], &res);
	}
	memset(not_swapped, 0, sizeof not_swapped);
	memset(in_swapcache, 0, sizeof in_swapcache);
	memset(swapped_in, 0, sizeof swapped_in);
	hx_meta("warmup", "touched and freed 64 MiB; %ld untimed rounds per configuration", warm);

	int order[NSHARING * NPATHS * 4 * 64];
	if (rounds > 64)
		rounds = 64;
	for (int sib = 0; sib <= 1; sib++) {
		long n = 0;
		for (int c = 0; c < nconf; c++)
			if (configs[c].sibling == sib)
				for (long r = 0; r < rounds; r++)
					order[n++] = c;
		hx_shuffle(order, n);
		hx_sibling_spin(sib, other_cpu);
		for (long i = 0; i < n; i++) {
			const struct wconfig *c = &configs[order[i]];
			write_round(c, &res);
			char cfg[192];
			wconfig_string(cfg, sizeof cfg, c);
			for (int j = 0; j < res.n; j++) {
				hx_sample(cfg, "ns=%.1f", res.ns[j]);
				hx_sample(cfg, "faulted=%d", res.faulted[j]);
				hx_sample(cfg, "copied=%d", res.copied[j]);
			}
			hx_progress();
		}
	}
	hx_sibling_spin(0, other_cpu);
	{
		static const int kinds[FAULT_KINDS][2] = {
			{ FORKED, 0 }, { FORKED, 1 }, { CHILD_ALIVE, 0 }, { CHILD_ALIVE, 1 } };
		for (long w = 0; w < warm; w++)
			for (int k = 0; k < FAULT_KINDS; k++)
				fault_round(kinds[k][0], kinds[k][1], &res);
		long n = 0;
		for (int k = 0; k < FAULT_KINDS; k++)
			for (long r = 0; r < rounds; r++)
				order[n++] = k;
		hx_shuffle(order, n);
		for (long i = 0; i < n; i++) {
			const int *k = kinds[order[i]];
			fault_round(k[0], k[1], &res);
			char cfg[192];
			fault_config_string(cfg, sizeof cfg, k[0], k[1]);
			for (int j = 0; j < res.n; j++) {
				hx_sample(cfg, "ns=%.1f", res.ns[j]);
				hx_sample(cfg, "faulted=%d", res.faulted[j]);
				hx_sample(cfg, "copied=%d", res.copied[j]);
			}
			hx_progress();
		}
	}
	for (int s = 0; s < NSHARING; s++)
		for (int pth = 0; pth < NPATHS; pth++) {
			char key[64];
			snprintf(key, sizeof key, "swapin_%s_%s", sharing_names[s], path_names[pth]);
			hx_meta(key, "not_swapped_out=%ld swapped_in=%ld in_swap_cache=%ld", not_swapped[s][pth],
				swapped_in[s][pth], in_swapcache[s][pth]);
		}

	/* The report's shape: the loop with one thread on one CPU against two threads on two. */
	for (int pth = 0; pth < NPATHS; pth++) {
		run_loop(1, 0, pth, loop_iters);
		run_loop(2, 0, pth, loop_iters);
		run_loop(1, 1, pth, loop_iters);
	}

	hx_sibling_stop();
	hx_guard_stop();
	keeper_stop();
	hx_meta("swap_restored", "swapoff %s and zram reset done", ZRAM_DEV);
	return 0;
}
