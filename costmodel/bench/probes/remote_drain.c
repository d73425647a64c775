/*
 * remote_drain: what lru_add_drain_all() costs when it has to drain another CPU's LRU batch, what
 * it costs when no CPU needs a drain (its base), and what it changes for an anonymous page.
 *
 * There is no system call that drains one chosen remote CPU, but lru_add_drain_all() queues work
 * only on the CPUs whose per-CPU batches hold something. With two CPUs, the local one measuring
 * (L = CPU 0) and the remote one holding the batch (R = CPU 1), it is exactly "drain R and wait"
 * when R's batch holds folios, and the bare base when no CPU's does. Two triggers reach it from user
 * space (checked in mm/memfd.c, mm/fadvise.c, mm/truncate.c, mm/swap.c):
 *
 *   fcntl(F_ADD_SEALS, F_SEAL_WRITE) on a memfd: memfd_tag_pins() drains the local batch, tags the
 *     folios whose reference count exceeds the page cache's plus their mappings', and only when one
 *     is tagged calls lru_add_drain_all(), then looks again; a folio still pinned then costs sleeps
 *     of (HZ << scan) / 200 jiffies (at least 4 ms for the first one at HZ=250) and -EBUSY at last.
 *     The memfd's page is written with pwrite() by a worker thread pinned on R (no mapping, so the
 *     seal is allowed): its folio sits in R's batch, and the seal from L drains R.
 *   posix_fadvise(POSIX_FADV_DONTNEED) on a page of a regular file that we keep mapped and mlocked:
 *     the local lru_add_drain(), a failed eviction (mapped), no deactivation batch (unevictable), so
 *     lru_add_drain_all() runs with nothing queued anywhere (fadvise_base), or with R's batch
 *     holding fresh anonymous folios (fadvise_remote).
 *
 * Ops (each trial on a fresh memfd, all configurations shuffled together):
 *   seal_remote          R's batch holds the memfd folio at position 0 plus `folios` fresh anon
 *                        folios; the seal drains R.                       ns, verified
 *   seal_local           control: the page written on L; the seal's own local drain frees it.
 *   seal_remote_drained  control: written on R, then R's batch emptied there (MADV_COLD) first.
 *   fadvise_base         the drain-all with no CPU needing a drain (an untimed one just before).
 *   fadvise_remote       the same with R's batch holding 1 + `folios` fresh anon folios.
 *   fadvise_hole         control: the same call on an uncached page: no failed eviction, no drain-all.
 *   anon_after_drain     an anon page first touched on R, made non-exclusive (raw vfork child from
 *                        L), the seal's drain-all from L, then a write from L.   copied, verified
 *   anon_no_drain        the same without the seal: the page still sits in R's batch.
 * `remote_state` is what R does meanwhile: idle (the worker sleeps; R halts), busy (the worker spins
 * at normal priority, so the kworker must preempt it), rt (the worker spins at SCHED_FIFO, so the
 * kworker waits for RT throttling; each such spin ends by itself after RT_CAP_S seconds, and the
 * worker returns to SCHED_OTHER after every spin).
 *
 * verified (every trial) is 1 when the trial was what it claims: the call returned 0; the folio's
 * LRU bit in /proc/kpageflags, read just before the call, was clear (still in a batch; set for
 * seal_remote_drained), and set after it where the op drains it; a call that drains R slept exactly
 * once in it (getrusage voluntary switches: the wait for R's work; a retry sleep would be a second)
 * and, with R idle, took less than the first retry sleep; a call that drains nothing remotely did
 * not sleep and stayed below that time; no RT spin reached its cap; for fadvise, the mapped page is
 * still cached (and the hole uncached). Before each trial an untimed drain-all empties every CPU's
 * batches and buffer-head LRU, so this CPU has no work of its own in the timed call. ns samples are
 * written for verified trials only, so the verified fraction counts what was left out.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_SEAL_WRITE 0x0008
#endif
#ifndef O_TMPFILE
#define O_TMPFILE (020000000 | O_DIRECTORY)
#endif

const char *const hx_probe_name = "remote_drain";

#define KPF_LRU 5
#define KPF_UNEVICTABLE 18
#define KPF_THP 22
#define TMPFS_MAGIC_ 0x01021994
#define RAMFS_MAGIC_ 0x858458f6

#define RT_CAP_S 2
#define RETRY_SLEEP_NS 4000000.0   /* the seal's first retry sleep is at least this long (HZ=250) */
#define SETTLE_US 1000              /* lets an idle R reach its halted state before the call */

enum op { SEAL_REMOTE, SEAL_LOCAL, SEAL_REMOTE_DRAINED, FADV_BASE, FADV_REMOTE, FADV_HOLE,
	  ANON_AFTER_DRAIN, ANON_NO_DRAIN, NOPS };
static const char *const op_name[NOPS] = {
	"seal_remote", "seal_local", "seal_remote_drained", "fadvise_base", "fadvise_remote",
	"fadvise_hole", "anon_after_drain", "anon_no_drain",
};
enum state { IDLE, BUSY, RT, NSTATES };
static const char *const state_name[NSTATES] = { "idle", "busy", "rt" };

struct trial {
	int op, folios, state;   /* folios < 0: the column does not apply */
};

/* ---------------------------------------------------------------- the worker on R */

struct job {
	int fd;              /* memfd whose page 0 the worker writes, or -1 */
	char *anon;          /* fresh pages the worker first-touches after the write */
	int anon_pages;
	int drain_after;     /* MADV_COLD there afterwards (R's batch emptied) */
	int state;
};

/* In a MAP_SHARED page: a fork-and-exit child does not make it copy-on-write, so neither thread
 * takes a write fault on it (which could drain a batch) while the trial runs. */
struct control {
	int go, ready, stop, done, quit;
	int pwrite_errno;
	long rt_runs, rt_capped, restore_failures;
	struct job job;
};

static struct control *ctl;
static int local_cpu, remote_cpu;
static int have_rt;
static char *write_buffer;

static void futex_wait(int *word, int value)
{
	syscall(SYS_futex, word, FUTEX_WAIT, value, NULL, NULL, 0);
}

static void futex_wake(int *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static int load(int *word)
{
	return __atomic_load_n(word, __ATOMIC_ACQUIRE);
}

static void store(int *word, int value)
{
	__atomic_store_n(word, value, __ATOMIC_RELEASE);
}

static void set_normal_priority(void)
{
	struct sched_param sp = { .sched_priority = 0 };
	pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
}

static void *worker(void *arg)
{
	(void)arg;
	set_normal_priority();
	hx_pin(remote_cpu);
	int seen = 0;
	for (;;) {
		int go;
		while ((go = load(&ctl->go)) == seen)
			futex_wait(&ctl->go, seen);
		seen = go;
		if (load(&ctl->quit))
			return NULL;
		struct job job = ctl->job;
		hx_drain_local();   /* R's batch empty: the trial's first add lands at position 0 */
		if (job.fd >= 0 && pwrite(job.fd, write_buffer, HX_PAGE, 0) != (ssize_t)HX_PAGE)
			ctl->pwrite_errno = errno ? errno : EIO;
		hx_touch(job.anon, (size_t)job.anon_pages * HX_PAGE);
		if (job.drain_after)
			hx_drain_local();
		if (job.state == IDLE) {
			store(&ctl->ready, seen);
			futex_wake(&ctl->ready);
			continue;
		}
		if (job.state == RT) {
			struct sched_param sp = { .sched_priority = 1 };
			if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0)
				ctl->rt_runs++;
		}
		store(&ctl->ready, seen);
		futex_wake(&ctl->ready);
		uint64_t t0 = hx_now_ns();
		while (load(&ctl->stop) != seen) {
			if (hx_now_ns() - t0 > (uint64_t)RT_CAP_S * 1000000000ULL) {
				ctl->rt_capped++;
				break;
			}
		}
		if (job.state == RT) {
			int policy;
			struct sched_param sp;
			set_normal_priority();
			if (pthread_getschedparam(pthread_self(), &policy, &sp) != 0 || policy != SCHED_OTHER)
				ctl->restore_failures++;
		}
		store(&ctl->done, seen);
		futex_wake(&ctl->done);
	}
}

static int job_seq;

/* Hands the worker a job and waits until R is in the requested state. */
static void worker_start(const struct job *job)
{
	ctl->job = *job;
	ctl->pwrite_errno = 0;
	job_seq++;
	store(&ctl->go, job_seq);
	futex_wake(&ctl->go);
	int r;
	while ((r = load(&ctl->ready)) != job_seq)
		futex_wait(&ctl->ready, r);
	if (ctl->pwrite_errno)
		hx_die("pwrite on cpu %d: %s", remote_cpu, strerror(ctl->pwrite_errno));
}

/* Ends a busy or rt spin; returns 1 if it had reached its cap by itself. */
static int worker_stop(int state)
{
	if (state == IDLE)
		return 0;
	long capped = ctl->rt_capped;
	store(&ctl->stop, job_seq);
	int d;
	while ((d = load(&ctl->done)) != job_seq)
		futex_wait(&ctl->done, d);
	return ctl->rt_capped != capped;
}

/* ---------------------------------------------------------------- page state */

static uint64_t flags_of(uint64_t pfn)
{
	return pfn ? hx_kpageflags(pfn) : 0;
}

static int on_lru(uint64_t pfn)
{
	return (int)((flags_of(pfn) >> KPF_LRU) & 1);
}

/* ---------------------------------------------------------------- the file for fadvise */

static int file_fd = -1;
static int pre_drain;   /* 1 once the fadvise file works */
static char *file_map;     /* FILE_PAGES pages mapped: page 0 written and mlocked, the rest a hole */
static uint64_t file_pfn;
static char file_skip[200];

#define FILE_PAGES 16
#define HOLE_PAGE 8

static int hole_uncached(void)
{
	unsigned char vec[FILE_PAGES];
	memset(vec, 0, sizeof vec);
	return mincore(file_map, FILE_PAGES * HX_PAGE, vec) == 0 && !(vec[HOLE_PAGE] & 1);
}

static void file_setup(void)
{
	static const char *const dirs[] = { "/var/tmp", "/tmp", "." };
	struct statfs st;
	const char *dir = NULL;
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
		if (statfs(dirs[i], &st) == 0 && st.f_type != TMPFS_MAGIC_ && st.f_type != RAMFS_MAGIC_) {
			dir = dirs[i];
			break;
		}
	if (!dir) {
		snprintf(file_skip, sizeof file_skip, "no directory on a disk file system (/var/tmp, /tmp, . are tmpfs)");
		return;
	}
	file_fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (file_fd < 0) {
		char path[256];
		snprintf(path, sizeof path, "%s/costmodel-remote-drain-XXXXXX", dir);
		file_fd = mkstemp(path);
		if (file_fd >= 0)
			unlink(path);
	}
	if (file_fd < 0) {
		snprintf(file_skip, sizeof file_skip, "cannot create a file in %s: %s", dir, strerror(errno));
		return;
	}
	/* One 4 KiB write gives an order-0 folio (a larger write or a readahead may give a large one,
	 * which mlock of one page would not make unevictable); the rest of the file is a hole. */
	char *buf = calloc(1, HX_PAGE);
	if (!buf || pwrite(file_fd, buf, HX_PAGE, 0) != (ssize_t)HX_PAGE ||
	    ftruncate(file_fd, (off_t)FILE_PAGES * (off_t)HX_PAGE) != 0 || fsync(file_fd) != 0)
		hx_die("writing the fadvise file in %s: %s", dir, strerror(errno));
	free(buf);
	file_map = mmap(NULL, FILE_PAGES * HX_PAGE, PROT_READ, MAP_SHARED, file_fd, 0);
	if (file_map == MAP_FAILED)
		hx_die("mmap of the fadvise file: %s", strerror(errno));
	if (mlock(file_map, HX_PAGE) != 0) {
		snprintf(file_skip, sizeof file_skip, "mlock of a file page failed (%s): the eviction would "
			 "feed a deactivation batch", strerror(errno));
		return;
	}
	(void)*(volatile char *)file_map;
	posix_fadvise(file_fd, 0, HX_PAGE, POSIX_FADV_DONTNEED);   /* an untimed drain-all */
	file_pfn = hx_pfn(file_map);
	uint64_t flags = flags_of(file_pfn);
	if (!file_pfn || !((flags >> KPF_UNEVICTABLE) & 1) || (flags & (1ULL << KPF_THP)) || !hole_uncached()) {
		snprintf(file_skip, sizeof file_skip, "the mlocked file page is not a small unevictable folio, "
			 "or the hole is cached (pfn %llu, kpageflags %#llx)",
			 (unsigned long long)file_pfn, (unsigned long long)flags);
		return;
	}
	pre_drain = 1;
	hx_meta("fadvise_file", "unnamed file in %s (file system magic %#lx), page 0 mapped and mlocked",
		dir, (unsigned long)st.f_type);
}

static int file_still_mapped(void)
{
	return hx_pfn(file_map) == file_pfn && ((flags_of(file_pfn) >> KPF_UNEVICTABLE) & 1);
}


/* ---------------------------------------------------------------- one trial */

struct result {
	double ns;
	int verified;
	int copied;   /* anon ops */
};

static void settle(void)
{
	struct timespec ts = { 0, SETTLE_US * 1000L };
	nanosleep(&ts, NULL);
}

static long voluntary_switches(void)
{
	struct rusage ru;
	return getrusage(RUSAGE_THREAD, &ru) == 0 ? ru.ru_nvcsw : -1000000;
}

/* Times one call; *sleeps is how often the calling thread slept in it (voluntary switches). */
static int seal(int fd, double *ns, long *sleeps)
{
	long s0 = voluntary_switches();
	uint64_t t0 = hx_now_ns();
	int rc = fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE);
	uint64_t t1 = hx_now_ns();
	*sleeps = voluntary_switches() - s0;
	*ns = hx_elapsed_ns(t0, t1, 1);
	return rc;
}

static int fadvise_page(off_t page, double *ns, long *sleeps)
{
	long s0 = voluntary_switches();
	uint64_t t0 = hx_now_ns();
	int rc = posix_fadvise(file_fd, page * (off_t)HX_PAGE, HX_PAGE, POSIX_FADV_DONTNEED);
	uint64_t t1 = hx_now_ns();
	*sleeps = voluntary_switches() - s0;
	*ns = hx_elapsed_ns(t0, t1, 1);
	return rc;
}

/* How often the timed call slept, per op that drains R: 0, 1, 2, 3 or more. */
static long sleep_histogram[NOPS][4];

static struct result run_trial(const struct trial *t)
{
	struct result res = { 0, 0, 0 };
	struct job job = { .fd = -1, .anon = NULL, .anon_pages = 0, .drain_after = 0, .state = t->state };
	int fd = -1;
	int anon_pages = 0;
	char *anon = NULL;
	char *view = NULL;

	switch (t->op) {
	case SEAL_REMOTE: case SEAL_LOCAL: case SEAL_REMOTE_DRAINED:
	case ANON_AFTER_DRAIN: case ANON_NO_DRAIN:
		fd = memfd_create("costmodel-remote-drain", MFD_ALLOW_SEALING | MFD_CLOEXEC);
		if (fd < 0)
			hx_die("memfd_create: %s", strerror(errno));
		break;
	}
	if (t->op == SEAL_REMOTE)
		anon_pages = t->folios;
	else if (t->op == FADV_REMOTE)
		anon_pages = 1 + t->folios;
	else if (t->op == ANON_AFTER_DRAIN || t->op == ANON_NO_DRAIN)
		anon_pages = 1;
	anon = hx_map((size_t)(anon_pages ? anon_pages : 1) * HX_PAGE, 0);

	if (pre_drain) {
		/* An untimed drain-all: nothing is left queued on either CPU (buffer heads included), so
		 * a timed call that drains R sleeps exactly once, waiting for R's work. */
		double ignored;
		long ignored_sleeps;
		fadvise_page(0, &ignored, &ignored_sleeps);
	}
	job.fd = (t->op == SEAL_LOCAL || t->op == FADV_BASE || t->op == FADV_REMOTE || t->op == FADV_HOLE) ? -1 : fd;
	job.anon = anon;
	job.anon_pages = anon_pages;
	job.drain_after = t->op == SEAL_REMOTE_DRAINED;
	worker_start(&job);

	uint64_t pfn = 0;
	int lru_before = 0, lru_after = 0, rc = 0;
	double ns = 0;
	long sleeps = 0;
	switch (t->op) {
	case SEAL_REMOTE: case SEAL_LOCAL: case SEAL_REMOTE_DRAINED:
		settle();
		/* From here to the call this thread does not sleep, so (SCHED_FIFO) nothing else runs on
		 * this CPU: the local write's folio stays in this CPU's batch. */
		if (t->op == SEAL_LOCAL && pwrite(fd, write_buffer, HX_PAGE, 0) != (ssize_t)HX_PAGE)
			hx_die("pwrite on cpu %d: %s", local_cpu, strerror(errno));
		/* A private read-only view shows the memfd folio's frame without counting as a writer. */
		view = mmap(NULL, HX_PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
		if (view == MAP_FAILED)
			hx_die("mmap of the memfd: %s", strerror(errno));
		(void)*(volatile char *)view;
		pfn = hx_pfn(view);
		lru_before = on_lru(pfn);   /* just before the call: nothing else drained R meanwhile */
		rc = seal(fd, &ns, &sleeps);
		lru_after = on_lru(pfn);
		break;
	case FADV_BASE: case FADV_REMOTE:
		pfn = hx_pfn(anon);
		settle();
		lru_before = t->op == FADV_REMOTE ? on_lru(pfn) : 0;
		rc = fadvise_page(0, &ns, &sleeps);
		lru_after = 1;
		for (int i = 0; t->op == FADV_REMOTE && i < anon_pages; i++)
			lru_after &= on_lru(hx_pfn(anon + (size_t)i * HX_PAGE));
		break;
	case FADV_HOLE:
		settle();
		rc = fadvise_page(HOLE_PAGE, &ns, &sleeps);
		break;
	case ANON_AFTER_DRAIN: case ANON_NO_DRAIN: {
		pfn = hx_pfn(anon);
		lru_before = on_lru(pfn);
		hx_fork_exit_wait();   /* the page is no longer exclusive to us */
		if (t->op == ANON_AFTER_DRAIN)
			rc = seal(fd, &ns, &sleeps);
		((volatile char *)anon)[0] = 2;
		uint64_t after = hx_pfn(anon);
		if (!pfn || !after)
			hx_die("anon page not present (pfn %llu -> %llu)", (unsigned long long)pfn,
			       (unsigned long long)after);
		res.copied = after != pfn;
		break;
	}
	}
	int capped = worker_stop(t->state);

	/* A call that drains R sleeps exactly once, waiting for R's work (not at all: R's batch was
	 * drained by someone else and the call had nothing to wait for; twice: a retry sleep of the
	 * seal, or a wait for another task's drain-all, or, without the untimed drain-all first, work
	 * on this CPU too). Where R is idle, its time must also stay below the first retry sleep. A
	 * call that drains nothing remotely must not sleep at all. */
	int drains_remote = t->op == SEAL_REMOTE || t->op == FADV_REMOTE || t->op == ANON_AFTER_DRAIN;
	if (drains_remote)
		sleep_histogram[t->op][sleeps < 0 ? 3 : (sleeps > 3 ? 3 : sleeps)]++;
	int no_retry = drains_remote ? (sleeps >= 1 && sleeps <= 1 + !pre_drain && (t->state != IDLE || ns < RETRY_SLEEP_NS))
				     : (sleeps == 0 && ns < RETRY_SLEEP_NS);
	if (t->op == ANON_NO_DRAIN)
		no_retry = 1;
	switch (t->op) {
	case SEAL_REMOTE: case SEAL_LOCAL:
		res.verified = rc == 0 && pfn && !lru_before && lru_after;
		break;
	case SEAL_REMOTE_DRAINED:
		res.verified = rc == 0 && pfn && lru_before && lru_after;
		break;
	case FADV_BASE:
		res.verified = rc == 0 && file_still_mapped();
		break;
	case FADV_REMOTE:
		res.verified = rc == 0 && pfn && !lru_before && lru_after && file_still_mapped();
		break;
	case FADV_HOLE:
		res.verified = rc == 0 && hole_uncached() && file_still_mapped();
		break;
	case ANON_AFTER_DRAIN: case ANON_NO_DRAIN:
		res.verified = rc == 0 && !lru_before;
		break;
	}
	res.verified = res.verified && no_retry;
	res.verified = res.verified && !capped;
	res.ns = ns;

	if (view)
		munmap(view, HX_PAGE);
	hx_unmap(anon, (size_t)(anon_pages ? anon_pages : 1) * HX_PAGE, 0);
	if (fd >= 0)
		close(fd);
	return res;
}

/* ---------------------------------------------------------------- plan */

static int timed(int op)
{
	return op != ANON_AFTER_DRAIN && op != ANON_NO_DRAIN;
}

static void config_string(char *buf, size_t len, const struct trial *t)
{
	if (t->folios >= 0)
		snprintf(buf, len, "op=%s\tfolios=%d\tremote_state=%s", op_name[t->op], t->folios,
			 state_name[t->state]);
	else
		snprintf(buf, len, "op=%s\tremote_state=%s", op_name[t->op], state_name[t->state]);
}

#define MAX_CONFIGS 128

static struct trial configs[MAX_CONFIGS];
static long reps_of[MAX_CONFIGS];
static int nconf;

static void add(int op, int folios, int state, long reps_full, long reps_quick)
{
	if (nconf == MAX_CONFIGS)
		hx_die("too many configurations");
	configs[nconf] = (struct trial){ op, folios, state };
	reps_of[nconf++] = hx.reps > 0 ? hx.reps : hx_scaled(hx.quick ? reps_quick : reps_full);
}

int probe_main(void)
{
	int ncpu = hx_online_cpus();
	if (ncpu < 2) {
		hx_skip("", "needs a second online CPU to hold the remote batch");
		return 0;
	}
	local_cpu = 0;
	remote_cpu = 1;
	{
		uint64_t flags;
		uint64_t pfn = hx_fresh_pfn(&flags);
		if (!pfn || !flags) {
			hx_skip("", "/proc/self/pagemap or /proc/kpageflags unreadable (needs root): a remote drain "
				"cannot be verified");
			return 0;
		}
	}
	{
		int fd = memfd_create("costmodel-remote-drain", MFD_ALLOW_SEALING | MFD_CLOEXEC);
		if (fd < 0) {
			hx_skip("", "memfd_create(MFD_ALLOW_SEALING) unavailable: %s", strerror(errno));
			return 0;
		}
		close(fd);
	}

	int max_folios = hx.max_folios > 0 ? (int)hx.max_folios : 29;   /* batch size 31 minus 2 */
	int folio_list[8], nfolios = 0;
	{
		const int wanted[] = { 0, 1, 7, 15, max_folios };
		for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++) {
			int f = wanted[i], dup = 0;
			for (int j = 0; j < nfolios; j++)
				dup |= folio_list[j] == f;
			if (f <= max_folios && !dup)
				folio_list[nfolios++] = f;
		}
	}

	/* Shared control page and the worker, created before this thread turns SCHED_FIFO. */
	ctl = mmap(NULL, HX_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (ctl == MAP_FAILED)
		hx_die("mmap (control page): %s", strerror(errno));
	memset(ctl, 0, sizeof *ctl);
	write_buffer = hx_map(HX_PAGE, 0);
	memset(write_buffer, 0x5a, HX_PAGE);
	hx_drain_local();   /* maps the harness's drain page before two threads use it */
	hx_pin(local_cpu);
	pthread_t thread;
	if (pthread_create(&thread, NULL, worker, NULL) != 0)
		hx_die("pthread_create: %s", strerror(errno));
	have_rt = hx_realtime(1);
	file_setup();

	/* full reps, quick reps: rt trials that drain R wait for RT throttling (up to about a second) */
	for (int s = 0; s < NSTATES; s++) {
		int rt = s == RT;
		for (int i = 0; i < nfolios; i++)
			if (!rt || i == 0 || i == nfolios - 1)
				add(SEAL_REMOTE, folio_list[i], s, rt ? 8 : 200, rt ? 1 : 20);
		add(SEAL_LOCAL, 0, s, rt ? 30 : 200, rt ? 2 : 12);
		add(SEAL_REMOTE_DRAINED, 0, s, rt ? 30 : 200, rt ? 2 : 12);
		add(FADV_BASE, -1, s, rt ? 30 : 200, rt ? 2 : 12);
		add(FADV_HOLE, -1, s, rt ? 30 : 200, rt ? 2 : 12);
		add(FADV_REMOTE, 0, s, rt ? 4 : 100, rt ? 1 : 8);
		if (!rt)
			add(FADV_REMOTE, max_folios, s, 100, 8);
		add(ANON_AFTER_DRAIN, -1, s, rt ? 4 : 100, rt ? 1 : 8);
		add(ANON_NO_DRAIN, -1, s, rt ? 30 : 100, rt ? 2 : 8);
	}

	int runnable[MAX_CONFIGS];
	long nsamples = 0;
	for (int c = 0; c < nconf; c++) {
		const struct trial *t = &configs[c];
		char cfg[160];
		config_string(cfg, sizeof cfg, t);
		runnable[c] = 1;
		if (t->state == RT && !have_rt) {
			hx_skip(cfg, "SCHED_FIFO is not allowed here");
			runnable[c] = 0;
		} else if ((t->op == FADV_BASE || t->op == FADV_REMOTE || t->op == FADV_HOLE) && file_skip[0]) {
			hx_skip(cfg, "%s", file_skip);
			runnable[c] = 0;
		}
		if (runnable[c])
			nsamples += 2 * reps_of[c];   /* at most: ns or copied, and verified */
	}
	long n;
	int *order = hx_trial_order(nconf, runnable, reps_of, &n);

	hx_meta("local_cpu", "%d", local_cpu);
	hx_meta("remote_cpu", "%d", remote_cpu);
	hx_meta("max_folios", "%d", max_folios);
	hx_meta("settle_us", "%d", SETTLE_US);
	hx_meta("retry_sleep_ns", "%.0f", RETRY_SLEEP_NS);
	hx_meta("rt_cap_s", "%d", RT_CAP_S);
	hx_meta("worker", "a thread pinned on CPU %d writes the memfd page and first-touches the anon pages; "
		"idle: it sleeps; busy: it spins at SCHED_OTHER; rt: it spins at SCHED_FIFO 1 until told "
		"to stop or %d s have passed, then returns to SCHED_OTHER", remote_cpu, RT_CAP_S);
	hx_meta("ns_rows", "verified trials only");
	hx_plan(nsamples);

	hx_warm_memory(64);
	long warm = hx.warmup >= 0 ? hx.warmup : (hx.quick ? 20 : 100);
	long warmed = 0;
	for (long w = 0; w < warm * 4 && warmed < warm && n; w++) {
		const struct trial *t = &configs[order[hx_rand() % (uint64_t)n]];
		if (t->state == RT)
			continue;   /* their waits are long and teach the caches nothing */
		run_trial(t);
		warmed++;
	}
	hx_meta("warmup", "touched and freed 64 MiB; %ld untimed trials of random idle/busy configurations",
		warmed);

	long unverified = 0;
	for (long i = 0; i < n; i++) {
		const struct trial *t = &configs[order[i]];
		struct result r = run_trial(t);
		char cfg[160];
		config_string(cfg, sizeof cfg, t);
		if (timed(t->op)) {
			if (r.verified)
				hx_sample(cfg, "ns=%.1f", r.ns);
		} else {
			hx_sample(cfg, "copied=%d", r.copied);
		}
		hx_sample(cfg, "verified=%d", r.verified);
		unverified += !r.verified;
		hx_progress();
	}

	store(&ctl->quit, 1);
	store(&ctl->go, job_seq + 1);
	futex_wake(&ctl->go);
	pthread_join(thread, NULL);
	hx_meta("unverified_trials", "%ld", unverified);
	for (int op = 0; op < NOPS; op++)
		if (sleep_histogram[op][0] + sleep_histogram[op][1] + sleep_histogram[op][2] + sleep_histogram[op][3])
			hx_meta("sleeps_in_call", "%s: 0:%ld 1:%ld 2:%ld 3+:%ld", op_name[op], sleep_histogram[op][0],
				sleep_histogram[op][1], sleep_histogram[op][2], sleep_histogram[op][3]);
	hx_meta("rt_runs", "%ld", ctl->rt_runs);
	hx_meta("rt_capped", "%ld", ctl->rt_capped);
	hx_meta("rt_restore_failures", "%ld", ctl->restore_failures);
	{
		int policy;
		struct sched_param sp;
		pthread_getschedparam(pthread_self(), &policy, &sp);
		hx_meta("measuring_thread_policy", "%s", policy == SCHED_FIFO ? "SCHED_FIFO" : "SCHED_OTHER");
	}
	free(order);
	return 0;
}
