// SPDX-License-Identifier: MIT
//
// cmaload: the background loads of the Linux CMA reference run
// (`cargo xtask linux-cma`, see tools/linux-cma/README.md). One mode per
// process; each runs until killed, except `hog`, which stays until killed.
//
//   cmaload hog LEAVE_MB READY_FILE
//       Allocates and touches anonymous memory, 1 MiB at a time, until only
//       LEAVE_MB of MemFree is left, creates READY_FILE, then sleeps holding it. There is
//       no swap, so these pages stay: the page cache and the loads below then
//       work in LEAVE_MB of ordinary memory plus the CMA area (the init
//       script keeps the area allocated while the hog fills memory, so that
//       none of the hog lands in it).
//   cmaload files DIR SEED
//       Reads whole files of the data set under DIR in 16 KiB read()s,
//       forever: 70 % from a hot set (the first eighth of the files, in
//       sorted order), 30 % uniformly, as the demo's file worker does.
//   cmaload anon SEED
//       Allocates 1 MiB anonymous chunks, touching every page, up to a target
//       drawn between half of MemFree and MemFree - 32 MiB; frees them all;
//       again. 200 us pause per chunk, as the demo's anonymous worker.
//   cmaload odirect DIR SEED
//       Reads the files under DIR 1 MiB at a time with O_DIRECT, each read
//       into a freshly mapped 1 MiB anonymous buffer (so that the buffers'
//       pages come from wherever the page allocator puts movable memory, CMA
//       included); the pages are pinned by the block layer for the duration
//       of each request, as in any O_DIRECT read. The init script runs two.
//   cmaload longpin DIR SEED PIPES PAGES HOLD_MS
//       Maps every file under DIR read-only and keeps PIPES pipes, each
//       holding PAGES random page-cache pages of the data set by vmsplice()
//       (the pipe holds a reference on each page until it is read, so the
//       page can be neither migrated nor dropped); every HOLD_MS / PIPES ms
//       the oldest pipe is drained and refilled with new random pages, so
//       each page is held for HOLD_MS and the pinned set turns over.
//
// The random choices use the demo's xorshift64* (kernel/src/workload/load.rs).

#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define MIB (1UL << 20)
#define PAGE 4096UL

static uint64_t rng_state;

static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static uint64_t rng_below(uint64_t n)
{
	return rng_next() % (n ? n : 1);
}

static void die(const char *what)
{
	fprintf(stderr, "cmaload: %s: %s\n", what, strerror(errno));
	exit(1);
}

struct file {
	char *path;
	off_t size;
};

static struct file *files;
static size_t nfiles, capfiles;

static void walk(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		die(dir);
	while ((e = readdir(d))) {
		char *path;
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		if (asprintf(&path, "%s/%s", dir, e->d_name) < 0)
			die("asprintf");
		if (stat(path, &st) < 0)
			die(path);
		if (S_ISDIR(st.st_mode)) {
			walk(path);
			free(path);
		} else if (S_ISREG(st.st_mode) && st.st_size > 0) {
			if (nfiles == capfiles) {
				capfiles = capfiles ? 2 * capfiles : 256;
				files = realloc(files, capfiles * sizeof(*files));
				if (!files)
					die("realloc");
			}
			files[nfiles].path = path;
			files[nfiles++].size = st.st_size;
		} else {
			free(path);
		}
	}
	closedir(d);
}

static int by_path(const void *a, const void *b)
{
	return strcmp(((const struct file *)a)->path, ((const struct file *)b)->path);
}

static void load_files(const char *dir)
{
	walk(dir);
	if (nfiles == 0) {
		fprintf(stderr, "cmaload: no files under %s\n", dir);
		exit(1);
	}
	qsort(files, nfiles, sizeof(*files), by_path);
}

// /proc/meminfo field in KiB, or -1.
static long meminfo_kb(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	size_t n = strlen(key);
	long v = -1;

	if (!f)
		die("/proc/meminfo");
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':')
			v = atol(line + n + 1);
	fclose(f);
	return v;
}

static void oom_adj(const char *v)
{
	int fd = open("/proc/self/oom_score_adj", O_WRONLY);

	if (fd >= 0) {
		if (write(fd, v, strlen(v)) < 0)
			perror("cmaload: oom_score_adj");
		close(fd);
	}
}

static void touch(char *p, size_t len)
{
	for (size_t off = 0; off < len; off += PAGE)
		p[off] = 1;
}

static _Noreturn void hog(long leave_mb, const char *ready)
{
	long got = 0;

	oom_adj("-1000");
	// MemFree is read again after every MiB: the kernel may free memory
	// (reclaim, exiting processes) while the hog grows.
	while (meminfo_kb("MemFree") > (leave_mb + 1) * 1024) {
		char *p = mmap(NULL, MIB, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			break;
		touch(p, MIB);
		got++;
	}
	printf("@lcma-hog mb=%ld memfree_kb=%ld cmafree_kb=%ld\n", got,
	       meminfo_kb("MemFree"), meminfo_kb("CmaFree"));
	fflush(stdout);
	close(open(ready, O_WRONLY | O_CREAT, 0644));
	for (;;)
		pause();
}

static _Noreturn void files_worker(void)
{
	static char buf[16 * 1024];

	for (;;) {
		size_t i = rng_below(10) < 7 ? rng_below((nfiles + 7) / 8) : rng_below(nfiles);
		int fd = open(files[i].path, O_RDONLY);

		if (fd < 0)
			die(files[i].path);
		while (read(fd, buf, sizeof(buf)) > 0)
			;
		close(fd);
	}
}

static _Noreturn void anon_worker(void)
{
	static char *chunks[4096];

	oom_adj("1000");
	for (;;) {
		long free_mb = meminfo_kb("MemFree") / 1024;
		long lo = free_mb / 2, hi = free_mb - 32;
		long target = hi > lo ? lo + (long)rng_below(hi - lo + 1) : lo;
		long n = 0;

		if (target > 4096)
			target = 4096;
		for (; n < target; n++) {
			chunks[n] = mmap(NULL, MIB, PROT_READ | PROT_WRITE,
					 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (chunks[n] == MAP_FAILED)
				break;
			touch(chunks[n], MIB);
			usleep(200);
		}
		while (n > 0)
			munmap(chunks[--n], MIB);
	}
}

static _Noreturn void odirect_worker(void)
{
	for (;;) {
		size_t i = rng_below(nfiles);
		int fd = open(files[i].path, O_RDONLY | O_DIRECT);

		if (fd < 0)
			die(files[i].path);
		for (off_t off = 0; off < files[i].size; off += MIB) {
			char *buf = mmap(NULL, MIB, PROT_READ | PROT_WRITE,
					 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (buf == MAP_FAILED)
				die("mmap");
			if (pread(fd, buf, MIB, off) < 0)
				die("O_DIRECT pread");
			munmap(buf, MIB);
		}
		close(fd);
	}
}

static _Noreturn void longpin_worker(long pipes, long pages, long hold_ms)
{
	char **maps = calloc(nfiles, sizeof(*maps));
	int (*fds)[2] = calloc(pipes, sizeof(*fds));
	struct iovec *iov = calloc(pages, sizeof(*iov));
	ssize_t *held = calloc(pipes, sizeof(*held)); // bytes in each pipe
	char *scratch = malloc(pages * PAGE);

	if (!maps || !fds || !iov || !held || !scratch)
		die("calloc");
	for (size_t i = 0; i < nfiles; i++) {
		int fd = open(files[i].path, O_RDONLY);

		if (fd < 0)
			die(files[i].path);
		maps[i] = mmap(NULL, files[i].size, PROT_READ, MAP_SHARED, fd, 0);
		if (maps[i] == MAP_FAILED)
			die("mmap");
		close(fd);
	}
	for (long p = 0; p < pipes; p++) {
		if (pipe(fds[p]) < 0)
			die("pipe");
		if (fcntl(fds[p][1], F_SETPIPE_SZ, (int)(pages * PAGE)) < 0)
			die("F_SETPIPE_SZ");
	}
	for (long turn = 0;; turn++) {
		long p = turn % pipes;

		// Drain the oldest pipe: reading it drops its page references.
		while (held[p] > 0) {
			ssize_t r = read(fds[p][0], scratch, held[p]);

			if (r <= 0)
				die("pipe read");
			held[p] -= r;
		}
		for (long k = 0; k < pages; k++) {
			size_t i = rng_below(nfiles);
			uint64_t npages = (files[i].size + PAGE - 1) / PAGE;

			iov[k].iov_base = maps[i] + rng_below(npages) * PAGE;
			iov[k].iov_len = PAGE;
			// The last page of a file may be partial: splice what exists.
			if ((off_t)((char *)iov[k].iov_base - maps[i]) + (off_t)PAGE > files[i].size)
				iov[k].iov_len = files[i].size % PAGE;
		}
		for (long k = 0; k < pages; k++)
			held[p] += iov[k].iov_len;
		for (long k = 0; k < pages;) {
			ssize_t r = vmsplice(fds[p][1], iov + k, pages - k, 0);

			if (r < 0)
				die("vmsplice");
			// Skip the iovecs vmsplice consumed.
			while (k < pages && r >= (ssize_t)iov[k].iov_len) {
				r -= iov[k].iov_len;
				k++;
			}
			if (k < pages && r > 0) {
				iov[k].iov_base = (char *)iov[k].iov_base + r;
				iov[k].iov_len -= r;
			}
		}
		usleep(hold_ms * 1000 / pipes);
	}
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 4 && !strcmp(argv[1], "hog"))
		hog(atol(argv[2]), argv[3]);
	if (argc >= 4 && !strcmp(argv[1], "files")) {
		rng_state = strtoull(argv[3], NULL, 0) | 1;
		load_files(argv[2]);
		files_worker();
	}
	if (argc >= 3 && !strcmp(argv[1], "anon")) {
		rng_state = strtoull(argv[2], NULL, 0) | 1;
		anon_worker();
	}
	if (argc >= 4 && !strcmp(argv[1], "odirect")) {
		rng_state = strtoull(argv[3], NULL, 0) | 1;
		load_files(argv[2]);
		odirect_worker();
	}
	if (argc >= 7 && !strcmp(argv[1], "longpin")) {
		rng_state = strtoull(argv[3], NULL, 0) | 1;
		load_files(argv[2]);
		longpin_worker(atol(argv[4]), atol(argv[5]), atol(argv[6]));
	}
	fprintf(stderr, "usage: cmaload hog LEAVE_MB READY_FILE | files DIR SEED | anon SEED |\n"
			"       odirect DIR SEED | longpin DIR SEED PIPES PAGES HOLD_MS\n");
	return 2;
}
