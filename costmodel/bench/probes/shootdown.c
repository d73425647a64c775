/*
 * shootdown: cost of a one-page TLB invalidation as a function of how many other CPUs run the mm.
 *
 * The main thread (CPU 0) times one-page operations that must flush the TLB:
 *   mprotect_ro    PROT_READ|PROT_WRITE -> PROT_READ on a written page
 *   mprotect_rw    the way back, PROT_READ -> PROT_READ|PROT_WRITE (x86 flushes on any change of
 *                  the writable bit, other architectures may not); both are timed in one loop
 *   madv_dontneed  madvise(MADV_DONTNEED) on a present page (re-faulted untimed)
 * while target_cpus = 0..N-1 sibling threads of the same process sit on CPUs 1..target_cpus:
 *   siblings=spinning  busy in user space, so those CPUs must be interrupted (IPI) and waited for
 *   siblings=asleep    blocked in futex wait, so those CPUs idle in lazy TLB mode
 *   siblings=none      target_cpus=0
 * Main thread and siblings run SCHED_FIFO where allowed, so other tasks do not take their CPUs.
 * The TLB row of /proc/interrupts, summed over the sibling CPUs, is read around every block.
 * Sample: ns=<per operation>; counter: name=tlb_ipis total=<interrupts> ops=<operations>, where
 * for the two mprotect ops the block holds both calls, so ops counts mprotect calls of either kind.
 *
 * op=ipi_receive (siblings=spinning): what the receiving CPUs lose. Each spinning sibling's spin
 * rate is taken at the end of its settle time while this thread runs a syscall that flushes
 * nothing (so that sharing the host's cores with a busy sender is not booked as IPI cost); over
 * every SUB_OPS operations of a block the
 * time it did not spin at that rate, summed over the siblings and divided by the IPIs they got in
 * that stretch (the block's count, spread evenly over its operations), is one sample, in ns per IPI.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

const char *const hx_probe_name = "shootdown";

#define SPIN_SETTLE_US 100000
#define SPIN_RATE_US 30000   /* the last part of the settle time: each sibling's spin rate alone */
#define SUB_OPS 50

enum { RUN_SPIN = 0, RUN_SLEEP = 1, RUN_EXIT = 2 };
enum { OP_MPROTECT, OP_DONTNEED, NOPS };

struct sibling {
	pthread_t thread;
	int cpu;
	volatile uint64_t spins;
};

static volatile int mode = RUN_SLEEP;
static struct sibling sibs[1024];
static double spins_per_ns[1024];
static int nsibs;

static void *sibling_main(void *arg)
{
	struct sibling *s = arg;
	hx_pin(s->cpu);
	hx_realtime(1);
	for (;;) {
		int m = mode;
		if (m == RUN_EXIT)
			return NULL;
		if (m == RUN_SPIN) {
			s->spins++;
			__asm__ volatile("" ::: "memory");
		} else {
			syscall(SYS_futex, &mode, FUTEX_WAIT_PRIVATE, RUN_SLEEP, NULL, NULL, 0);
		}
	}
}

static void set_mode(int m, int active)
{
	mode = m;
	syscall(SYS_futex, &mode, FUTEX_WAKE_PRIVATE, 1 << 30, NULL, NULL, 0);
	if (m == RUN_SPIN) {
		/* Wait until every active sibling is seen spinning. */
		for (int i = 0; i < active; i++) {
			uint64_t s0 = sibs[i].spins;
			uint64_t t0 = hx_now_ns();
			while (sibs[i].spins == s0)
				if (hx_now_ns() - t0 > 2000000000ULL)
					hx_die("sibling on cpu %d does not run", sibs[i].cpu);
		}
		/* A vCPU that was idle may be parked by the host for a while after it wakes; the
		 * paravirtual flush skips the IPI to a preempted vCPU. Let the spin settle. */
		usleep(SPIN_SETTLE_US - SPIN_RATE_US);
		uint64_t s0[1024], t0 = hx_now_ns(), t1;
		for (int i = 0; i < active; i++)
			s0[i] = sibs[i].spins;
		do
			(void)syscall(SYS_getppid);
		while ((t1 = hx_now_ns()) - t0 < SPIN_RATE_US * 1000ULL);
		for (int i = 0; i < active; i++) {
			spins_per_ns[i] = (double)(sibs[i].spins - s0[i]) / (double)(t1 - t0);
			if (!(spins_per_ns[i] > 0))
				hx_die("sibling on cpu %d did not spin while its rate was taken", sibs[i].cpu);
		}
	} else if (m == RUN_SLEEP) {
		usleep(20000);   /* let them block and their CPUs go idle */
	}
}

/* Starts `want` siblings (CPUs 1..want), stopping any beyond that. */
static void set_siblings(int want)
{
	if (want == nsibs)
		return;
	if (nsibs) {
		set_mode(RUN_EXIT, 0);
		for (int i = 0; i < nsibs; i++)
			pthread_join(sibs[i].thread, NULL);
		nsibs = 0;
	}
	mode = RUN_SLEEP;
	for (int i = 0; i < want; i++) {
		sibs[i].cpu = i + 1;
		sibs[i].spins = 0;
		int err = pthread_create(&sibs[i].thread, NULL, sibling_main, &sibs[i]);
		if (err)
			hx_die("pthread_create: %s", strerror(err));
		nsibs++;
	}
	usleep(20000);
}

/* One round: fills out[0] (and out[1] for mprotect: the way back). */
static void one_op(int op, char *page, double out[2])
{
	uint64_t t0, t1;
	page[0]++;   /* writable, present, and in this CPU's TLB */
	if (op == OP_MPROTECT) {
		t0 = hx_now_ns();
		if (mprotect(page, HX_PAGE, PROT_READ) != 0)
			hx_die("mprotect: %s", strerror(errno));
		t1 = hx_now_ns();
		out[0] = hx_elapsed_ns(t0, t1, 1);
		(void)*(volatile char *)page;   /* the read-only entry is in the TLB again */
		t0 = hx_now_ns();
		if (mprotect(page, HX_PAGE, PROT_READ | PROT_WRITE) != 0)
			hx_die("mprotect: %s", strerror(errno));
		t1 = hx_now_ns();
		out[1] = hx_elapsed_ns(t0, t1, 1);
	} else {
		t0 = hx_now_ns();
		if (madvise(page, HX_PAGE, MADV_DONTNEED) != 0)
			hx_die("madvise(MADV_DONTNEED): %s", strerror(errno));
		t1 = hx_now_ns();
		out[0] = hx_elapsed_ns(t0, t1, 1);
	}
}

int probe_main(void)
{
	int ncpu = hx_online_cpus();
	if (ncpu > 1024)
		ncpu = 1024;
	hx_pin(0);
	hx_realtime(1);
	long reps = hx.reps > 0 ? hx.reps : hx_scaled(hx.quick ? 300 : 4000);
	int passes = hx.quick ? 2 : 4;
	long per_block = reps / passes > 0 ? reps / passes : 1;
	long warm = hx.warmup >= 0 ? hx.warmup : 50;

	/* Blocks: (target_cpus, sibling mode). */
	int block_t[2048], block_m[2048], nblocks = 0;
	block_t[nblocks] = 0, block_m[nblocks++] = -1;
	for (int t = 1; t < ncpu; t++)
		for (int m = RUN_SPIN; m <= RUN_SLEEP; m++)
			block_t[nblocks] = t, block_m[nblocks++] = m;
	if (ncpu < 2)
		hx_skip("", "only one online CPU: no other CPU to shoot down; measured target_cpus=0 only");
	if (hx_tlb_ipis(0, ncpu - 1) < 0)
		hx_meta("tlb_ipis", "no TLB row in /proc/interrupts: IPIs not counted");
	hx_meta("main_cpu", "0");
	hx_meta("warmup", "%ld untimed operations before every block; siblings started and seen spinning or given 20 ms to sleep", warm);
	hx_plan((long)nblocks * 3 * per_block * passes);

	char *page = hx_map(HX_PAGE, 0);
	hx_touch(page, HX_PAGE);
	static double times[1 << 16][2];
	if (per_block > (long)(sizeof times / sizeof times[0]))
		per_block = sizeof times / sizeof times[0];

	for (int pass = 0; pass < passes; pass++) {
		for (int b = 0; b < nblocks; b++) {
			int t = block_t[b], m = block_m[b];
			set_siblings(t);
			if (t)
				set_mode(m, t);
			for (int op = 0; op < NOPS; op++) {
				double scratch[2];
				for (long w = 0; w < warm; w++)
					one_op(op, page, scratch);
				int receive = t && m == RUN_SPIN;
				static uint64_t mark_ns[(1 << 16) / SUB_OPS + 2], mark_spins[(1 << 16) / SUB_OPS + 2][1024];
				long nmarks = 0;
				long long ipi0 = hx_tlb_ipis(1, t ? t : ncpu - 1);
				for (long r = 0; r < per_block; r++) {
					if (receive && r % SUB_OPS == 0) {
						for (int i = 0; i < t; i++)
							mark_spins[nmarks][i] = sibs[i].spins;
						mark_ns[nmarks++] = hx_now_ns();
					}
					one_op(op, page, times[r]);
				}
				if (receive) {
					for (int i = 0; i < t; i++)
						mark_spins[nmarks][i] = sibs[i].spins;
					mark_ns[nmarks++] = hx_now_ns();
				}
				long long ipi1 = hx_tlb_ipis(1, t ? t : ncpu - 1);
				const char *sib = m < 0 ? "none" : m == RUN_SPIN ? "spinning" : "asleep";
				int nkinds = op == OP_MPROTECT ? 2 : 1;
				for (int kind = 0; kind < nkinds; kind++) {
					char cfg[128];
					snprintf(cfg, sizeof cfg, "op=%s\ttarget_cpus=%d\tsiblings=%s",
						 op == OP_DONTNEED ? "madv_dontneed" : kind ? "mprotect_rw" : "mprotect_ro",
						 t, sib);
					for (long r = 0; r < per_block; r++)
						hx_sample(cfg, "ns=%.1f", times[r][kind]);
					if (ipi0 >= 0 && ipi1 >= 0)
						hx_counter(cfg, "tlb_ipis", (double)(ipi1 - ipi0), per_block * nkinds);
				}
				if (receive && ipi0 >= 0 && ipi1 > ipi0) {
					char cfg[128];
					snprintf(cfg, sizeof cfg, "op=ipi_receive\ttarget_cpus=%d\tsiblings=spinning", t);
					double ipis_per_op = (double)(ipi1 - ipi0) / (double)per_block;
					for (long k = 0; k + 1 < nmarks; k++) {
						long ops = k + 2 < nmarks ? SUB_OPS : per_block - k * SUB_OPS;
						double elapsed = (double)(mark_ns[k + 1] - mark_ns[k]), lost = 0;
						for (int i = 0; i < t; i++)
							lost += elapsed - (double)(mark_spins[k + 1][i] - mark_spins[k][i]) / spins_per_ns[i];
						hx_sample(cfg, "ns=%.1f", lost / (ipis_per_op * (double)ops));
					}
				}
				hx_progress();
			}
			if (t)
				set_mode(RUN_SLEEP, t);
		}
	}
	set_siblings(0);
	hx_unmap(page, HX_PAGE, 0);
	return 0;
}
