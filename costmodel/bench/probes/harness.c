/* Shared harness for the costmodel kernel probes: see harness.h for the contract. */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#ifndef MADV_COLD
#define MADV_COLD 20
#endif

struct hx_options hx = { .quick = 0, .reps = 0, .warmup = -1, .max_folios = 0, .seed = 1, .share = 1 };

long hx_scaled(long reps)
{
	long r = reps / (hx.share > 1 ? hx.share : 1);
	return r > 0 ? r : 1;
}
double hx_timer_overhead_ns;

static cpu_set_t original_affinity;
static int have_original_affinity;
static int pagemap_fd = -1;
static int kpageflags_fd = -1;
static char *drainer;
static long samples_written;
static uint64_t last_flush_ns;
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static char out_buffer[1 << 20];

enum { GUARD_SLEEP = 0, GUARD_SPIN = 1, GUARD_EXIT = 2 };
static volatile int *guard_word;
static pid_t guard_pid;

/* ---------------------------------------------------------------- machine */

int hx_online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

int hx_is_root(void)
{
	return geteuid() == 0;
}

int hx_current_cpu(void)
{
	return sched_getcpu();
}

void hx_pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0)
		hx_die("sched_setaffinity(cpu %d): %s", cpu, strerror(errno));
	for (int i = 0; i < 100 && sched_getcpu() != cpu; i++)
		sched_yield();
	if (sched_getcpu() != cpu)
		hx_die("still not on cpu %d after pinning", cpu);
}

int hx_realtime(int priority)
{
	static int reported;
	struct sched_param sp = { .sched_priority = priority };
	int err = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
	if (!reported) {
		reported = 1;
		if (err)
			hx_meta("realtime", "unavailable (%s): other tasks may run between the steps of a trial",
				strerror(err));
		else
			hx_meta("realtime", "SCHED_FIFO for the measuring threads");
	}
	return err == 0;
}

static void restore_affinity(void)
{
	if (have_original_affinity)
		sched_setaffinity(0, sizeof(original_affinity), &original_affinity);
}

/* ---------------------------------------------------------------- time */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

static void calibrate_timer(void)
{
	enum { N = 20001 };
	static uint64_t d[N];
	uint64_t step = UINT64_MAX;
	for (int i = 0; i < 1000; i++)
		(void)hx_now_ns();
	for (int i = 0; i < N; i++) {
		uint64_t t0 = hx_now_ns();
		uint64_t t1 = hx_now_ns();
		d[i] = t1 - t0;
		if (d[i] && d[i] < step)
			step = d[i];
	}
	qsort(d, N, sizeof d[0], cmp_u64);
	hx_timer_overhead_ns = (double)d[N / 2];
	hx_meta("timer", "clock_gettime(CLOCK_MONOTONIC)");
	hx_meta("timer_overhead_ns", "%.1f", hx_timer_overhead_ns);
	hx_meta("timer_step_ns", "%llu", (unsigned long long)(step == UINT64_MAX ? 0 : step));
}

double hx_elapsed_ns(uint64_t t0, uint64_t t1, long ops)
{
	double d = (double)(t1 - t0) - hx_timer_overhead_ns;
	return d / (double)(ops > 0 ? ops : 1);
}

/* ---------------------------------------------------------------- output */

void hx_meta(const char *key, const char *fmt, ...)
{
	va_list ap;
	printf("meta\tkey=%s\tvalue=", key);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

void hx_plan(long samples)
{
	printf("plan\tsamples=%ld\n", samples);
	fflush(stdout);
}

void hx_sample(const char *config, const char *fmt, ...)
{
	va_list ap;
	printf("sample\t%s\t", config);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	samples_written++;
}

void hx_counter(const char *config, const char *name, double total, long ops)
{
	printf("counter\t%s\tname=%s\ttotal=%.0f\tops=%ld\n", config, name, total, ops);
}

void hx_skip(const char *config, const char *fmt, ...)
{
	va_list ap;
	printf("skip\t");
	if (config && *config)
		printf("%s\t", config);
	printf("reason=");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

void hx_progress(void)
{
	uint64_t now = hx_now_ns();
	if (now - last_flush_ns > 1000000000ULL) {
		fflush(stdout);
		last_flush_ns = now;
	}
}

_Noreturn void hx_die(const char *fmt, ...)
{
	va_list ap;
	fflush(stdout);
	fprintf(stderr, "%s: ", hx_probe_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	restore_affinity();
	if (guard_pid)
		kill(guard_pid, SIGKILL);
	_exit(3);
}

/* ---------------------------------------------------------------- memory */

void *hx_map(size_t bytes, int huge)
{
	size_t span = huge ? bytes + HX_HUGE : bytes;
	char *p = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		hx_die("mmap %zu bytes: %s", span, strerror(errno));
	if (huge) {
		char *aligned = (char *)(((uintptr_t)p + HX_HUGE - 1) & ~(HX_HUGE - 1));
		if (aligned > p)
			munmap(p, (size_t)(aligned - p));
		size_t tail = (size_t)((p + span) - (aligned + bytes));
		if (tail)
			munmap(aligned + bytes, tail);
		p = aligned;
		if (madvise(p, bytes, MADV_HUGEPAGE) != 0)
			hx_die("madvise(MADV_HUGEPAGE): %s", strerror(errno));
	} else if (madvise(p, bytes, MADV_NOHUGEPAGE) != 0) {
		hx_die("madvise(MADV_NOHUGEPAGE): %s", strerror(errno));
	}
	return p;
}

void hx_unmap(void *p, size_t bytes, int huge)
{
	(void)huge;
	if (munmap(p, bytes) != 0)
		hx_die("munmap: %s", strerror(errno));
}

void hx_touch(void *p, size_t bytes)
{
	for (size_t off = 0; off < bytes; off += HX_PAGE)
		((volatile char *)p)[off] = 1;
}

uint64_t hx_pagemap(const void *addr)
{
	uint64_t entry = 0;
	if (pagemap_fd < 0)
		pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (pagemap_fd < 0)
		return 0;
	off_t off = (off_t)((uintptr_t)addr / HX_PAGE) * 8;
	if (pread(pagemap_fd, &entry, sizeof entry, off) != (ssize_t)sizeof entry)
		return 0;
	return entry;
}

uint64_t hx_pfn(const void *addr)
{
	uint64_t entry = hx_pagemap(addr);
	if (!(entry >> 63))
		return 0;
	return entry & ((1ULL << 55) - 1);
}

uint64_t hx_kpageflags(uint64_t pfn)
{
	uint64_t flags = 0;
	if (kpageflags_fd < 0)
		kpageflags_fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	if (kpageflags_fd < 0 || pfn == 0)
		return 0;
	if (pread(kpageflags_fd, &flags, sizeof flags, (off_t)(pfn * 8)) != (ssize_t)sizeof flags)
		return 0;
	return flags;
}

uint64_t hx_fresh_pfn(uint64_t *flags)
{
	char *p = hx_map(HX_PAGE, 0);
	hx_touch(p, HX_PAGE);
	uint64_t pfn = hx_pfn(p);
	if (flags)
		*flags = hx_kpageflags(pfn);
	hx_unmap(p, HX_PAGE, 0);
	return pfn;
}

int hx_need_pfns(void)
{
	if (hx_fresh_pfn(NULL))
		return 1;
	hx_skip("", "/proc/self/pagemap shows no page frame numbers (needs root / CAP_SYS_ADMIN)");
	return 0;
}

void hx_drain_local(void)
{
	if (!drainer) {
		drainer = hx_map(HX_PAGE, 0);
		hx_touch(drainer, HX_PAGE);
	}
	if (madvise(drainer, HX_PAGE, MADV_COLD) != 0)
		hx_die("madvise(MADV_COLD): %s (needs Linux 5.4 or later)", strerror(errno));
}

void hx_warm_memory(size_t mib)
{
	size_t bytes = mib << 20;
	char *p = hx_map(bytes, 0);
	hx_touch(p, bytes);
	hx_unmap(p, bytes, 0);
}

/* ---------------------------------------------------------------- processes */

long hx_fork_exit_wait(void)
{
#if defined(__x86_64__)
	/*
	 * clone(CLONE_VFORK | SIGCHLD) without CLONE_VM: the child gets a copy-on-write view of the
	 * address space, so every anonymous page of ours loses its exclusive marker. The child calls
	 * exit_group at once and the parent calls wait4 at once, both from registers: neither touches
	 * the stack while the child's mm is alive, so no copy fault (and no batch drain) sneaks in.
	 */
	long ret;
	register long r10 __asm__("r10") = 0;
	register long r8 __asm__("r8") = 0;
	__asm__ volatile(
		"mov $56, %%eax\n\t"          /* __NR_clone */
		"mov %[flags], %%rdi\n\t"
		"xor %%esi, %%esi\n\t"
		"xor %%edx, %%edx\n\t"
		"syscall\n\t"
		"test %%rax, %%rax\n\t"
		"jnz 1f\n\t"
		"mov $231, %%eax\n\t"         /* child: __NR_exit_group(0) */
		"xor %%edi, %%edi\n\t"
		"syscall\n\t"
		"hlt\n"
		"1:\n\t"
		"js 3f\n\t"                   /* clone failed: return -errno */
		"mov %%rax, %%rdi\n"
		"2:\n\t"
		"mov $61, %%eax\n\t"          /* __NR_wait4(pid, NULL, 0, NULL) */
		"xor %%esi, %%esi\n\t"
		"xor %%edx, %%edx\n\t"
		"syscall\n\t"
		"cmp $-4, %%rax\n\t"          /* -EINTR: wait again */
		"je 2b\n"
		"3:\n\t"
		: "=a"(ret)
		: [flags] "i"(CLONE_VFORK | SIGCHLD), "r"(r10), "r"(r8)
		: "rdi", "rsi", "rdx", "rcx", "r11", "memory", "cc");
	if (ret < 0)
		hx_die("clone: %s", strerror((int)-ret));
	return ret;
#else
	pid_t pid = fork();
	if (pid < 0)
		hx_die("fork: %s", strerror(errno));
	if (pid == 0)
		_exit(0);
	hx_reap(pid);
	return pid;
#endif
}

pid_t hx_fork_sleeper(int cpu, int close_fd)
{
	pid_t pid = fork();
	if (pid < 0)
		hx_die("fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (close_fd >= 0)
			close(close_fd);
		hx_pin(cpu);
		for (;;)
			pause();
	}
	return pid;
}

void hx_kill_child(pid_t pid)
{
	kill(pid, SIGKILL);
	hx_reap(pid);
}

void hx_reap(pid_t pid)
{
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

void *hx_helper_start(const char *what, const char *flag, int cpu, size_t ready_offset, pid_t *pid_out)
{
	char name[64];
	snprintf(name, sizeof name, "costmodel-%s", what);
	int fd = memfd_create(name, 0);
	if (fd < 0 || ftruncate(fd, HX_PAGE) != 0)
		hx_die("memfd (%s): %s", what, strerror(errno));
	char *page = mmap(NULL, HX_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (page == MAP_FAILED)
		hx_die("mmap (%s): %s", what, strerror(errno));
	memset(page, 0, HX_PAGE);
	volatile int *ready = (volatile int *)(page + ready_offset);
	char cpu_arg[16], fd_arg[16];
	snprintf(cpu_arg, sizeof cpu_arg, "%d", cpu);
	snprintf(fd_arg, sizeof fd_arg, "%d", fd);
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0)
		hx_die("fork (%s): %s", what, strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl("/proc/self/exe", name, flag, cpu_arg, fd_arg, (char *)NULL);
		_exit(127);
	}
	close(fd);
	*pid_out = pid;
	uint64_t t0 = hx_now_ns();
	while (!*ready) {
		if (waitpid(pid, NULL, WNOHANG) == pid || hx_now_ns() - t0 > 5000000000ULL)
			hx_die("the %s process did not start", what);
		usleep(1000);
	}
	return page;
}

void *hx_helper_attach(int cpu, int fd)
{
	cpu_set_t set;
	struct sched_param sp = { .sched_priority = 1 };
	void *page = mmap(NULL, HX_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (page == MAP_FAILED)
		_exit(1);
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof set, &set) != 0)
		_exit(1);
	sched_setscheduler(0, SCHED_FIFO, &sp);   /* best effort, as for the measuring threads */
	return page;
}

/* ---------------------------------------------------------------- guard */

static _Noreturn void guard_loop(int cpu, int fd)
{
	volatile int *word = hx_helper_attach(cpu, fd);
	word[1] = 1;                              /* ready */
	for (;;) {
		int m = word[0];
		if (m == GUARD_EXIT)
			_exit(0);
		if (m == GUARD_SPIN)
			sched_yield();   /* lets another run's guard share the CPU; ordinary tasks stay out */
		else
			syscall(SYS_futex, word, FUTEX_WAIT, GUARD_SLEEP, NULL, NULL, 0);
	}
}

void hx_guard_start(int cpu)
{
	if (guard_pid)
		return;
	/* The guard execs this binary afresh, so it holds none of our pages (a forked copy would keep
	 * every page we have shared, and our later writes to them would copy). Its page starts zeroed:
	 * GUARD_SLEEP, and word 1 (ready) clear. */
	guard_word = hx_helper_start("guard", "--guard", cpu, sizeof(int), &guard_pid);
	hx_meta("guard", "a helper process spins on CPU %d while the probe works from another CPU", cpu);
}

void hx_guard_hold(int on)
{
	if (!guard_pid)
		return;
	*guard_word = on ? GUARD_SPIN : GUARD_SLEEP;
	if (on)
		syscall(SYS_futex, guard_word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

void hx_guard_stop(void)
{
	if (!guard_pid)
		return;
	*guard_word = GUARD_EXIT;
	syscall(SYS_futex, guard_word, FUTEX_WAKE, 1, NULL, NULL, 0);
	hx_reap(guard_pid);
	guard_pid = 0;
	munmap((void *)guard_word, HX_PAGE);
}

/* ---------------------------------------------------------------- sibling */

enum { SIB_SLEEP = 0, SIB_SPIN = 1, SIB_EXIT = 2 };
#define SIBLING_SETTLE_US 20000
static volatile int sib_mode = SIB_SLEEP;
static volatile int sib_spinning;
static pthread_t sib_thread;
static int sib_cpu = -1;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	__asm__ volatile("" ::: "memory");
#endif
}

static void *sibling_main(void *arg)
{
	(void)arg;
	hx_realtime(1);
	for (;;) {
		int m = sib_mode;
		if (m == SIB_EXIT)
			return NULL;
		if (m == SIB_SPIN) {
			sib_spinning = 1;   /* its one write, before the spin */
			while (sib_mode == SIB_SPIN)   /* reads only: the sibling takes no faults */
				cpu_relax();
			sib_spinning = 0;
			continue;
		}
		syscall(SYS_futex, &sib_mode, FUTEX_WAIT_PRIVATE, SIB_SLEEP, NULL, NULL, 0);
	}
}

void hx_sibling_start(int cpu)
{
	sib_mode = SIB_SLEEP;
	sib_spinning = 0;
	int err = pthread_create(&sib_thread, NULL, sibling_main, NULL);
	if (err)
		hx_die("pthread_create: %s", strerror(err));
	hx_sibling_to(cpu);
}

void hx_sibling_to(int cpu)
{
	if (cpu == sib_cpu)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	int err = pthread_setaffinity_np(sib_thread, sizeof set, &set);
	if (err)
		hx_die("pthread_setaffinity_np (sibling): %s", strerror(err));
	sib_cpu = cpu;
}

static void sibling_set(int m)
{
	sib_mode = m;
	syscall(SYS_futex, &sib_mode, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void hx_sibling_spin(int on, int cpu)
{
	if (on)
		hx_sibling_to(cpu);
	sibling_set(on ? SIB_SPIN : SIB_SLEEP);
	if (on) {
		uint64_t t0 = hx_now_ns();
		while (!sib_spinning)
			if (hx_now_ns() - t0 > 2000000000ULL)
				hx_die("the sibling thread does not run");
	}
	usleep(SIBLING_SETTLE_US);   /* a vCPU just woken may be parked by the host a while */
}

void hx_sibling_stop(void)
{
	sibling_set(SIB_EXIT);
	pthread_join(sib_thread, NULL);
	sib_cpu = -1;
}

/* ---------------------------------------------------------------- counters */

long long hx_tlb_ipis(int first_cpu, int last_cpu)
{
	static char buf[1 << 16];
	int fd = open("/proc/interrupts", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t len = 0, n;
	while (len < (ssize_t)sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
		len += n;
	close(fd);
	buf[len] = 0;
	/* The first line names the CPU columns: "CPU0 CPU1 ...". */
	char *line_end = strchr(buf, '\n');
	if (!line_end)
		return -1;
	int column_cpu[1024];
	int ncol = 0;
	for (char *s = buf; s < line_end && ncol < 1024;) {
		s = strstr(s, "CPU");
		if (!s || s > line_end)
			break;
		column_cpu[ncol++] = atoi(s + 3);
		s += 3;
	}
	for (char *line = line_end + 1; *line; ) {
		char *next = strchr(line, '\n');
		char *p = line;
		while (*p == ' ')
			p++;
		if (strncmp(p, "TLB:", 4) == 0) {
			long long sum = 0;
			p += 4;
			for (int c = 0; c < ncol; c++) {
				char *endp;
				long long v = strtoll(p, &endp, 10);
				if (endp == p)
					break;
				if (column_cpu[c] >= first_cpu && column_cpu[c] <= last_cpu)
					sum += v;
				p = endp;
			}
			return sum;
		}
		if (!next)
			break;
		line = next + 1;
	}
	return -1;
}

/* ---------------------------------------------------------------- randomness */

uint64_t hx_rand(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

void hx_shuffle(int *a, long n)
{
	for (long i = n - 1; i > 0; i--) {
		long j = (long)(hx_rand() % (uint64_t)(i + 1));
		int t = a[i];
		a[i] = a[j];
		a[j] = t;
	}
}

int *hx_trial_order(int nconf, const int *runnable, const long *reps, long *n)
{
	long total = 0;
	for (int c = 0; c < nconf; c++)
		if (runnable[c])
			total += reps[c];
	int *order = malloc(sizeof(int) * (size_t)(total ? total : 1));
	if (!order)
		hx_die("out of memory");
	long k = 0;
	for (int c = 0; c < nconf; c++)
		if (runnable[c])
			for (long r = 0; r < reps[c]; r++)
				order[k++] = c;
	hx_shuffle(order, k);
	*n = k;
	return order;
}

/* ---------------------------------------------------------------- main */

static void print_facts(void)
{
	char vendor[13] = "none";
#if defined(__x86_64__) || defined(__i386__)
	unsigned a, b, c, d;
	__cpuid(1, a, b, c, d);
	if (c & (1u << 31)) {
		__cpuid(0x40000000, a, b, c, d);
		memcpy(vendor + 0, &b, 4);
		memcpy(vendor + 4, &c, 4);
		memcpy(vendor + 8, &d, 4);
		vendor[12] = 0;
		for (int i = 0; i < 12; i++)
			if (vendor[i] == '\t' || vendor[i] == '\n')
				vendor[i] = ' ';
	}
#else
	strcpy(vendor, "unknown");
#endif
	printf("fact\tkey=hypervisor_vendor\tvalue=%s\n", vendor);
}

static long parse_long(const char *opt, const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s) {
		fprintf(stderr, "%s: bad value for %s: %s\n", hx_probe_name, opt, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "--guard"))
		guard_loop(atoi(argv[2]), atoi(argv[3]));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--facts")) {
			print_facts();
			return 0;
		} else if (!strcmp(a, "--quick")) {
			hx.quick = 1;
		} else if (i + 1 < argc && !strcmp(a, "--reps")) {
			hx.reps = parse_long(a, argv[++i]);
		} else if (i + 1 < argc && !strcmp(a, "--warmup")) {
			hx.warmup = parse_long(a, argv[++i]);
		} else if (i + 1 < argc && !strcmp(a, "--max-folios")) {
			hx.max_folios = parse_long(a, argv[++i]);
		} else if (i + 1 < argc && !strcmp(a, "--share")) {
			hx.share = parse_long(a, argv[++i]);
			if (hx.share < 1)
				hx.share = 1;
		} else if (i + 1 < argc && !strcmp(a, "--seed")) {
			hx.seed = (uint64_t)parse_long(a, argv[++i]);
		} else {
			fprintf(stderr, "usage: %s [--quick] [--reps N] [--warmup N] [--max-folios N] [--seed N] [--share N] | --facts\n",
				argv[0]);
			return 2;
		}
	}
	rng_state ^= hx.seed * 0xd1342543de82ef95ULL;
	if (!rng_state)
		rng_state = 1;

	/* Full buffering into a buffer faulted in now, so writing samples later adds no pages. */
	memset(out_buffer, 0, sizeof out_buffer);
	setvbuf(stdout, out_buffer, _IOFBF, sizeof out_buffer);

	if (sched_getaffinity(0, sizeof(original_affinity), &original_affinity) == 0) {
		have_original_affinity = 1;
		atexit(restore_affinity);
	}
	signal(SIGPIPE, SIG_DFL);

	printf("probe\tname=%s\tformat=%d\n", hx_probe_name, HX_FORMAT);
	hx_meta("quick", "%d", hx.quick);
	hx_meta("seed", "%llu", (unsigned long long)hx.seed);
	if (hx.share > 1)
		hx_meta("share", "one round of %ld: 1/%ld of the default repetitions", hx.share, hx.share);
	hx_meta("online_cpus", "%d", hx_online_cpus());
	calibrate_timer();
	last_flush_ns = hx_now_ns();

	int rc = probe_main();

	hx_guard_stop();
	restore_affinity();
	printf("end\tsamples=%ld\n", samples_written);
	fflush(stdout);
	return rc;
}
