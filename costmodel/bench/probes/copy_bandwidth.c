/*
 * copy_bandwidth: what the copy in a copy-on-write fault costs in memory traffic alone.
 *
 *   copy_4k  cache_state=hot   4 KiB copy between two buffers already in cache; 64 copies timed
 *                              together, ns per copy
 *   copy_4k  cache_state=cold  4 KiB copy whose source and destination lines were flushed with
 *                              clflush first (one page pair of 4096 in a 32 MiB area each time)
 *   copy_large                 one copy of size_bytes, timed as a whole; repeated on the same
 *                              buffers, so only sizes beyond the caches show memory bandwidth
 * The copy is `rep movsb`, as the kernel's copy_page on CPUs with ERMS; other architectures use
 * memcpy. Sample: ns=<per copy>.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const hx_probe_name = "copy_bandwidth";

static inline void copy_bytes(void *dst, const void *src, size_t n)
{
#if defined(__x86_64__)
	__asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
#else
	memcpy(dst, src, n);
	__asm__ volatile("" : : "r"(dst) : "memory");
#endif
}

static inline void flush_lines(const char *p, size_t n)
{
#if defined(__x86_64__)
	for (size_t off = 0; off < n; off += 64)
		__asm__ volatile("clflush (%0)" : : "r"(p + off) : "memory");
	__asm__ volatile("mfence" : : : "memory");
#else
	(void)p;
	(void)n;
#endif
}

#define HOT_BATCH 64
#define COLD_AREA (32UL << 20)

int probe_main(void)
{
	hx_pin(0);
	long reps4k = hx.reps > 0 ? hx.reps : hx_scaled(hx.quick ? 300 : 3000);
	static const size_t large_sizes[] = { 64UL << 10, 1UL << 20, 16UL << 20, 256UL << 20 };
	const int nlarge = sizeof large_sizes / sizeof large_sizes[0];
	long large_reps[4];
	long total = 2 * reps4k;
	for (int i = 0; i < nlarge; i++) {
		long r = hx.quick ? 10 : 60;
		if (large_sizes[i] >= (256UL << 20))
			r = hx.quick ? 3 : 15;
		large_reps[i] = hx.reps > 0 ? hx.reps : hx_scaled(r);
		total += large_reps[i];
	}
	hx_plan(total);

	size_t big = large_sizes[nlarge - 1];
	char *src = hx_map(big, 0), *dst = hx_map(big, 0);
	memset(src, 1, big);
	memset(dst, 2, big);
	char *cold_src = hx_map(COLD_AREA, 0), *cold_dst = hx_map(COLD_AREA, 0);
	memset(cold_src, 3, COLD_AREA);
	memset(cold_dst, 4, COLD_AREA);
	hx_meta("method", "%s", "rep movsb (x86-64), memcpy elsewhere");
	hx_meta("warmup", "all buffers written before timing; %d untimed hot copies", HOT_BATCH * 10);
	for (int i = 0; i < HOT_BATCH * 10; i++)
		copy_bytes(dst, src, HX_PAGE);

	/* Interleave the kinds so slow drift of the host shows in all of them alike. */
	long done_large[4] = { 0 };
	for (long r = 0; r < reps4k; r++) {
		uint64_t t0 = hx_now_ns();
		for (int i = 0; i < HOT_BATCH; i++)
			copy_bytes(dst, src, HX_PAGE);
		uint64_t t1 = hx_now_ns();
		hx_sample("op=copy_4k\tcache_state=hot\tsize_bytes=4096", "ns=%.2f", hx_elapsed_ns(t0, t1, HOT_BATCH));

		size_t slot = (size_t)(hx_rand() % (COLD_AREA / HX_PAGE)) * HX_PAGE;
		flush_lines(cold_src + slot, HX_PAGE);
		flush_lines(cold_dst + slot, HX_PAGE);
		t0 = hx_now_ns();
		copy_bytes(cold_dst + slot, cold_src + slot, HX_PAGE);
		t1 = hx_now_ns();
		hx_sample("op=copy_4k\tcache_state=cold\tsize_bytes=4096", "ns=%.2f", hx_elapsed_ns(t0, t1, 1));

		for (int i = 0; i < nlarge; i++) {
			if (done_large[i] >= large_reps[i] || (r % (reps4k / large_reps[i] + 1)) != 0)
				continue;
			copy_bytes(dst, src, large_sizes[i]);   /* untimed: same state for every timed copy */
			t0 = hx_now_ns();
			copy_bytes(dst, src, large_sizes[i]);
			t1 = hx_now_ns();
			char cfg[96];
			snprintf(cfg, sizeof cfg, "op=copy_large\tcache_state=repeated\tsize_bytes=%zu", large_sizes[i]);
			hx_sample(cfg, "ns=%.1f", hx_elapsed_ns(t0, t1, 1));
			done_large[i]++;
		}
		hx_progress();
	}
	for (int i = 0; i < nlarge; i++)
		for (; done_large[i] < large_reps[i]; done_large[i]++) {
			copy_bytes(dst, src, large_sizes[i]);
			uint64_t t0 = hx_now_ns();
			copy_bytes(dst, src, large_sizes[i]);
			uint64_t t1 = hx_now_ns();
			char cfg[96];
			snprintf(cfg, sizeof cfg, "op=copy_large\tcache_state=repeated\tsize_bytes=%zu", large_sizes[i]);
			hx_sample(cfg, "ns=%.1f", hx_elapsed_ns(t0, t1, 1));
		}
	hx_unmap(src, big, 0);
	hx_unmap(dst, big, 0);
	hx_unmap(cold_src, COLD_AREA, 0);
	hx_unmap(cold_dst, COLD_AREA, 0);
	return 0;
}
