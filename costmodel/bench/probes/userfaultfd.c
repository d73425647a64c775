/*
 * userfaultfd: the seed report's scenario. A monitor thread resolves faults of the main thread
 * (CPU 0); it runs on CPU 0 too (same_cpu=1) or on another CPU (same_cpu=0).
 *
 *   available            userfaultfd with write-protect faults can be opened here (available=1|0)
 *   missing_install      main's first write to a registered page, resolved by the monitor with
 *                        UFFDIO_COPY (which adds the new page to the monitor CPU's LRU batch,
 *                        emptied just before): ns for the round trip
 *   wp_write_exclusive   the page is then write-protected (UFFDIO_WRITEPROTECT) and main writes;
 *                        the monitor unprotects it. ns for the round trip, and copied=0|1 from the
 *                        PFN: on Linux 6.x an exclusive page is made writable by the unprotect
 *   wp_write_after_fork  the same after a fork+exit child (raw clone, from CPU 0) took the page's
 *                        exclusivity: the unprotect cannot make it writable, so main's retried
 *                        write is an ordinary WP fault, which copies when the page still sits in
 *                        another CPU's batch
 * With same_cpu=0 the harness's guard process spins on the monitor's CPU below the monitor's
 * priority, so no other task fills or drains that CPU's batch mid-trial; the monitor's CPU is
 * therefore never idle, and the round trips do not include waking an idle CPU.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

const char *const hx_probe_name = "userfaultfd";

static int uffd = -1, stop_fd = -1;
static int monitor_cpu;
static char *source_page;
static pthread_t monitor;
static volatile int monitor_ready;

static int open_uffd(char *why, size_t len)
{
	int fd = -1;
#ifdef __NR_userfaultfd
	fd = (int)syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
#endif
	if (fd < 0) {
		int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
		if (dev >= 0) {
			fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
			close(dev);
		}
	}
	if (fd < 0) {
		snprintf(why, len, "userfaultfd cannot be opened: %s (root, or vm.unprivileged_userfaultfd=1)",
			 strerror(errno));
		return -1;
	}
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_PAGEFAULT_FLAG_WP };
	if (ioctl(fd, UFFDIO_API, &api) != 0 || !(api.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP)) {
		snprintf(why, len, "userfaultfd has no write-protect mode on this kernel: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void *monitor_main(void *arg)
{
	(void)arg;
	hx_realtime(2);   /* above the guard, which keeps its CPU from everybody else */
	hx_pin(monitor_cpu);
	monitor_ready = 1;
	for (;;) {
		struct pollfd pfd[2] = { { uffd, POLLIN, 0 }, { stop_fd, POLLIN, 0 } };
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			hx_die("poll: %s", strerror(errno));
		}
		if (pfd[1].revents)
			return NULL;
		struct uffd_msg msg;
		ssize_t n = read(uffd, &msg, sizeof msg);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n != (ssize_t)sizeof msg)
			hx_die("read(userfaultfd): %s", strerror(errno));
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		unsigned long addr = (unsigned long)msg.arg.pagefault.address & ~(HX_PAGE - 1);
		if (msg.arg.pagefault.flags & UFFD_PAGEFAULT_FLAG_WP) {
			struct uffdio_writeprotect wp = { .range = { addr, HX_PAGE }, .mode = 0 };
			if (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) != 0)
				hx_die("UFFDIO_WRITEPROTECT (unprotect): %s", strerror(errno));
		} else {
			hx_drain_local();   /* the installed page lands at position 0 of this CPU's batch */
			struct uffdio_copy cp = { .dst = addr, .src = (unsigned long)source_page,
						  .len = HX_PAGE, .mode = 0 };
			if (ioctl(uffd, UFFDIO_COPY, &cp) != 0)
				hx_die("UFFDIO_COPY: %s", strerror(errno));
		}
	}
}

static void start_monitor(int cpu)
{
	uint64_t zero = 0;
	monitor_cpu = cpu;
	/* Drain any stale stop signal. */
	while (read(stop_fd, &zero, sizeof zero) > 0)
		;
	monitor_ready = 0;
	int err = pthread_create(&monitor, NULL, monitor_main, NULL);
	if (err)
		hx_die("pthread_create: %s", strerror(err));
	while (!monitor_ready)
		usleep(100);
}

static void stop_monitor(void)
{
	uint64_t one = 1;
	if (write(stop_fd, &one, sizeof one) != (ssize_t)sizeof one)
		hx_die("write(eventfd): %s", strerror(errno));
	pthread_join(monitor, NULL);
}

struct result {
	double install_ns, wp_ns;
	int copied;
};

static void trial(int after_fork, struct result *r)
{
	char *p = hx_map(HX_PAGE, 0);
	struct uffdio_register reg = { .range = { (unsigned long)p, HX_PAGE },
				       .mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP };
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) != 0)
		hx_die("UFFDIO_REGISTER: %s", strerror(errno));

	uint64_t t0 = hx_now_ns();
	*(volatile char *)p = 1;
	uint64_t t1 = hx_now_ns();
	r->install_ns = hx_elapsed_ns(t0, t1, 1);

	if (after_fork)
		hx_fork_exit_wait();
	struct uffdio_writeprotect wp = { .range = { (unsigned long)p, HX_PAGE },
					  .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	if (ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) != 0)
		hx_die("UFFDIO_WRITEPROTECT: %s", strerror(errno));
	uint64_t before = hx_pfn(p);

	t0 = hx_now_ns();
	*(volatile char *)p = 2;
	t1 = hx_now_ns();
	r->wp_ns = hx_elapsed_ns(t0, t1, 1);
	uint64_t after = hx_pfn(p);
	r->copied = before && after && before != after;
	if (munmap(p, HX_PAGE) != 0)
		hx_die("munmap: %s", strerror(errno));
}

int probe_main(void)
{
	char why[256];
	int ncpu = hx_online_cpus();
	hx_pin(0);
	hx_realtime(1);
	uffd = open_uffd(why, sizeof why);
	hx_sample("op=available", "available=%d", uffd >= 0);
	if (uffd < 0) {
		hx_skip("", "%s", why);
		return 0;
	}
	int pfn_visible = hx_fresh_pfn(NULL) != 0;
	stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (stop_fd < 0)
		hx_die("eventfd: %s", strerror(errno));
	source_page = hx_map(HX_PAGE, 0);
	memset(source_page, 7, HX_PAGE);
	hx_drain_local();   /* sets up the resident page before any thread uses it */

	long reps = hx.reps > 0 ? hx.reps : hx_scaled(hx.quick ? 40 : 400);
	long warm = hx.warmup >= 0 ? hx.warmup : 20;
	int nsame = ncpu > 1 ? 2 : 1;
	if (ncpu < 2)
		hx_skip("op=wp_write_after_fork\tsame_cpu=0", "needs a second online CPU for the monitor");
	if (!pfn_visible)
		hx_skip("", "/proc/self/pagemap shows no page frame numbers (needs root): copies not detected");
	hx_meta("writer_cpu", "0");
	hx_meta("warmup", "%ld untimed trials per configuration", warm);
	hx_plan((long)nsame * 2 * reps * (pfn_visible ? 3 : 2) + 1);

	int *order = malloc(sizeof(int) * (size_t)(2 * reps));
	if (!order)
		hx_die("out of memory");
	for (int s = 0; s < nsame; s++) {
		int same = ncpu > 1 ? s : 1;
		start_monitor(same ? 0 : 1);
		if (!same) {
			hx_guard_start(1);
			hx_guard_hold(1);
		}
		struct result r;
		for (long w = 0; w < warm; w++)
			trial((int)(w & 1), &r);
		for (long i = 0; i < 2 * reps; i++)
			order[i] = (int)(i & 1);
		hx_shuffle(order, 2 * reps);
		for (long i = 0; i < 2 * reps; i++) {
			int after_fork = order[i];
			trial(after_fork, &r);
			const char *op = after_fork ? "wp_write_after_fork" : "wp_write_exclusive";
			char cfg[96];
			snprintf(cfg, sizeof cfg, "op=missing_install\tsame_cpu=%d", same);
			hx_sample(cfg, "ns=%.1f", r.install_ns);
			snprintf(cfg, sizeof cfg, "op=%s\tsame_cpu=%d", op, same);
			hx_sample(cfg, "ns=%.1f", r.wp_ns);
			if (pfn_visible)
				hx_sample(cfg, "copied=%d", r.copied);
			hx_progress();
		}
		stop_monitor();
		hx_guard_hold(0);
	}
	free(order);
	close(uffd);
	return 0;
}
