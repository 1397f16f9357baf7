/* A program with one descriptor free below its limit that allocates: the
 * shim must not take that descriptor, even for a moment (the program's own
 * open at that moment would fail). Watches DIR (where its trace is) for
 * opens with inotify, opens /dev/null until EMFILE, closes one, makes N
 * allocations of 1000 bytes, then prints how many times a file of DIR was
 * opened meanwhile ("opens K") and exits 0. With "as" an address-space
 * limit is set first (ulimit -v: the shim maps the file through a
 * descriptor then); with "hold" it exits holding its descriptors (the
 * shim's end of the trace at exit). Usage: fdspare DIR N [as|hold] */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <unistd.h>

#include "last_fd.h"

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	long n = atol(argv[2]);
	int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (in < 0 || inotify_add_watch(in, argv[1], IN_OPEN) < 0)
		return 2;
	if (argc > 3 && !strcmp(argv[3], "as")) {
		struct rlimit r;
		getrlimit(RLIMIT_AS, &r);
		r.rlim_cur = r.rlim_max < (64ull << 30) ? r.rlim_max : (64ull << 30);
		if (setrlimit(RLIMIT_AS, &r))
			return 2;
	}
	char **keep = calloc((size_t)n, sizeof(*keep));
	int fds[64], nfd = hold_all_but_one(fds);
	if (nfd < 0)
		return 2;
	int before = opens(in);
	for (long i = 0; i < n; i++)
		keep[i] = malloc(1000);
	int during = opens(in);
	if (argc > 3 && !strcmp(argv[3], "hold")) {
		printf("opens %d (before %d)\n", during, before);
		fflush(stdout);
		return 0;
	}
	while (nfd)
		close(fds[--nfd]);
	for (long i = 0; i < n; i++)
		free(keep[i]);
	free(keep);
	printf("opens %d (before %d)\n", during, before);
	return 0;
}
