/*
 * A program with a known count, for the tracer's tests (not a workload: it checks the counts).
 *
 * Each round, on CPU 0: empty the local LRU add batch (MADV_COLD on a resident page), install
 * PAGES target pages and FILLERS filler pages (write faults on fresh private anonymous memory:
 * each an add to CPU 0's batch), fork a child, then write every target page, on CPU 1 for the
 * share OTHER_PERCENT of them (each round's first writes) and on CPU 0 for the rest. Every LIVE_EVERY-th
 * round the child stays alive (asleep) until the writes are done, so its copies are necessary;
 * in the other rounds the child exits at once (a raw vfork-style clone, so the parent touches
 * no page of its own while the child lives).
 *
 * Before and after each write it reads the page's frame number from /proc/self/pagemap and,
 * before, the frame's LRU flag from /proc/kpageflags (root): a changed frame is a copy; a copy
 * of a frame that was on no LRU list with the child gone is a copy the add batch caused.
 *
 * usage: trace_target ROUNDS PAGES FILLERS OTHER_PERCENT LIVE_EVERY
 * prints one line of key=value counts on standard output.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define KPF_LRU 5

static int pagemap_fd = -1, kpageflags_fd = -1;

static void die(const char *what)
{
	fprintf(stderr, "trace_target: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set) != 0)
		die("sched_setaffinity");
}

static uint64_t pfn_of(const void *addr)
{
	uint64_t entry = 0;
	if (pread(pagemap_fd, &entry, 8, (off_t)((uintptr_t)addr / PAGE) * 8) != 8)
		die("pread /proc/self/pagemap");
	if (!(entry >> 63))
		return 0;
	return entry & ((1ULL << 55) - 1);
}

static uint64_t kflags(uint64_t pfn)
{
	uint64_t flags = 0;
	if (pread(kpageflags_fd, &flags, 8, (off_t)pfn * 8) != 8)
		die("pread /proc/kpageflags");
	return flags;
}

/* clone(CLONE_VFORK | SIGCHLD) child that calls exit_group at once; the parent waits, all from
 * registers, so no page of ours is touched while the child's mm lives. */
static void fork_exit_wait(void)
{
	long ret;
	__asm__ volatile(
		"mov $56, %%eax\n\t"
		"mov %[flags], %%rdi\n\t"
		"xor %%esi, %%esi\n\t"
		"xor %%edx, %%edx\n\t"
		"xor %%r10d, %%r10d\n\t"
		"xor %%r8d, %%r8d\n\t"
		"syscall\n\t"
		"test %%rax, %%rax\n\t"
		"jnz 1f\n\t"
		"mov $231, %%eax\n\t"
		"xor %%edi, %%edi\n\t"
		"syscall\n\t"
		"hlt\n"
		"1:\n\t"
		"js 3f\n\t"
		"mov %%rax, %%rdi\n"
		"2:\n\t"
		"mov $61, %%eax\n\t"
		"xor %%esi, %%esi\n\t"
		"xor %%edx, %%edx\n\t"
		"xor %%r10d, %%r10d\n\t"
		"syscall\n\t"
		"cmp $-4, %%rax\n\t"
		"je 2b\n"
		"3:\n\t"
		: "=a"(ret)
		: [flags] "i"(CLONE_VFORK | SIGCHLD)
		: "rdi", "rsi", "rdx", "rcx", "r8", "r10", "r11", "memory", "cc");
	if (ret < 0) {
		errno = (int)-ret;
		die("clone");
	}
}

int main(int argc, char **argv)
{
	if (argc != 6) {
		fprintf(stderr, "usage: trace_target ROUNDS PAGES FILLERS OTHER_PERCENT LIVE_EVERY\n");
		return 2;
	}
	long rounds = atol(argv[1]), pages = atol(argv[2]), fillers = atol(argv[3]);
	int other_percent = atoi(argv[4]);
	long live_every = atol(argv[5]);
	pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	kpageflags_fd = open("/proc/kpageflags", O_RDONLY);
	if (pagemap_fd < 0 || kpageflags_fd < 0)
		die("open pagemap/kpageflags (needs root)");

	size_t per_round = (size_t)(pages + fillers) * PAGE;
	char *drainer = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *mem = mmap(NULL, per_round * rounds, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (drainer == MAP_FAILED || mem == MAP_FAILED)
		die("mmap");
	madvise(mem, per_round * rounds, MADV_NOHUGEPAGE);
	drainer[0] = 1;
	uint64_t *before = calloc(pages, sizeof *before);
	int *held = calloc(pages, sizeof *held), *cpu_of = calloc(pages, sizeof *cpu_of);
	if (!before || !held || !cpu_of)
		die("calloc");

	long writes = 0, writes_other = 0, copies = 0, batch_held = 0, necessary = 0, not_held_copies = 0;
	long held_writes = 0;
	long counter = 0;
	for (long r = 0; r < rounds; r++) {
		char *base = mem + r * per_round;
		int live = live_every > 0 && (r % live_every) == live_every - 1;
		pin(0);
		if (madvise(drainer, PAGE, MADV_COLD) != 0)
			die("madvise(MADV_COLD)");
		for (long i = 0; i < pages + fillers; i++)
			base[i * PAGE] = 1;
		for (long i = 0; i < pages; i++) {
			/* the pattern: OTHER_PERCENT of all writes on CPU 1 (each round's first ones, so they
			 * come before a write on CPU 0 drains the batch) */
			long due = ((counter + 1) * other_percent) / 100 - (counter * other_percent) / 100;
			cpu_of[i] = (int)due;
			counter++;
		}
		/* CPU 1's writes first */
		long n1 = 0;
		for (long i = 0; i < pages; i++)
			n1 += cpu_of[i];
		for (long i = 0; i < pages; i++)
			cpu_of[i] = i < n1;
		pid_t child = 0;
		if (live) {
			child = fork();
			if (child < 0)
				die("fork");
			if (child == 0) {
				pause();
				_exit(0);
			}
		} else {
			fork_exit_wait();
		}
		for (long i = 0; i < pages; i++) {
			char *p = base + i * PAGE;
			pin(cpu_of[i]);
			before[i] = pfn_of(p);
			held[i] = before[i] && !((kflags(before[i]) >> KPF_LRU) & 1);
			p[0] = 2;
			uint64_t after = pfn_of(p);
			writes++;
			writes_other += cpu_of[i];
			held_writes += held[i];
			if (after != before[i]) {
				copies++;
				if (live)
					necessary++;
				else if (held[i])
					batch_held++;
				else
					not_held_copies++;
			}
		}
		if (live) {
			kill(child, SIGKILL);
			while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
				;
		}
	}
	printf("writes=%ld writes_other_cpu=%ld held_at_write=%ld copies=%ld batch_held_copies=%ld "
	       "necessary_copies=%ld other_copies=%ld pages=%ld fillers=%ld region=%lu region_bytes=%lu\n",
	       writes, writes_other, held_writes, copies, batch_held, necessary, not_held_copies, pages, fillers,
	       (unsigned long)(uintptr_t)mem, (unsigned long)(per_round * rounds));
	return 0;
}
