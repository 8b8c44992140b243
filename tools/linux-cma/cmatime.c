// SPDX-License-Identifier: MIT
//
// cmatime: time Linux CMA allocations through debugfs, for
// `cargo xtask linux-cma` (see tools/linux-cma/README.md).
//
//   cmatime AREA_DIR CONDITION COUNT GAP_MS ALIGN_ORDER PAGES...
//
// AREA_DIR is /sys/kernel/debug/cma/<area>. ALIGN_ORDER is written to
// AREA_DIR/alloc_align (added by cma-debug-align.patch: the alignment, as an
// order, that the "alloc" file passes to cma_alloc()). Then COUNT rounds of:
// for each PAGES, write it to AREA_DIR/alloc, and if that succeeded to
// AREA_DIR/free, each write timed with clock_gettime(CLOCK_MONOTONIC); then
// sleep GAP_MS so that the load can refill the area. Every attempt is one
// console line:
//
//   @lcma condition=C op=alloc|free round=I pages=N ok=1|0 us=T [err=E]
//
// Failed allocations (cma_alloc() returned NULL: the write fails with
// ENOMEM) are timed as well: the percentiles cover every attempt, as the
// demo's do. A failed free is an error (exit 1): the area's bookkeeping is
// no longer what this program thinks.

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int open_attr(const char *dir, const char *name)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY);
	if (fd < 0) {
		fprintf(stderr, "cmatime: cannot open %s: %s\n", path, strerror(errno));
		exit(2);
	}
	return fd;
}

// Writes `val` to an attribute file; returns 0 or an errno.
static int write_attr(int fd, long val)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%ld\n", val);

	return write(fd, buf, n) == n ? 0 : errno;
}

static long parse(const char *s, const char *what, long min)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*s == '\0' || *end != '\0' || v < min) {
		fprintf(stderr, "cmatime: %s '%s': expected a whole number >= %ld\n", what, s, min);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	const char *dir, *cond;
	long count, gap_ms, align;
	int afd, ffd, ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 7) {
		fprintf(stderr, "usage: cmatime AREA_DIR CONDITION COUNT GAP_MS ALIGN_ORDER PAGES...\n");
		return 2;
	}
	dir = argv[1];
	cond = argv[2];
	count = parse(argv[3], "COUNT", 1);
	gap_ms = parse(argv[4], "GAP_MS", 0);
	align = parse(argv[5], "ALIGN_ORDER", 0);
	for (int k = 6; k < argc; k++)
		parse(argv[k], "PAGES", 1);

	ret = write_attr(open_attr(dir, "alloc_align"), align);
	if (ret) {
		fprintf(stderr, "cmatime: cannot set %s/alloc_align to %ld: %s\n", dir, align, strerror(ret));
		return 2;
	}
	afd = open_attr(dir, "alloc");
	ffd = open_attr(dir, "free");

	for (long round = 0; round < count; round++) {
		for (int k = 6; k < argc; k++) {
			long pages = atol(argv[k]);
			double t0 = now_us();
			int err = write_attr(afd, pages);
			double t1 = now_us();

			printf("@lcma condition=%s op=alloc round=%ld pages=%ld ok=%d us=%.1f%s%s\n",
			       cond, round, pages, err == 0, t1 - t0, err ? " err=" : "",
			       err ? strerror(err) : "");
			if (err)
				continue;
			t0 = now_us();
			err = write_attr(ffd, pages);
			t1 = now_us();
			printf("@lcma condition=%s op=free round=%ld pages=%ld ok=%d us=%.1f%s%s\n",
			       cond, round, pages, err == 0, t1 - t0, err ? " err=" : "",
			       err ? strerror(err) : "");
			if (err) {
				fprintf(stderr, "cmatime: freeing %ld pages failed: %s\n", pages, strerror(err));
				return 1;
			}
		}
		usleep(gap_ms * 1000);
	}
	return 0;
}
