/* For the test programs that leave one descriptor free below their limit
 * and check that the shim opens no file of the trace directory then. */
#ifndef HW_TESTS_LAST_FD_H
#define HW_TESTS_LAST_FD_H

#include <errno.h>
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <unistd.h>

/* The files opened under an inotify watch (IN_OPEN, descriptor in made
 * IN_NONBLOCK) since it was last read. */

static int opens(int in)
{
	int n = 0;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t r = read(in, buf, sizeof(buf));
		if (r <= 0)
			return n;
		for (char *p = buf; p < buf + r;) {
			const struct inotify_event *e = (const struct inotify_event *)p;
			if (e->mask & IN_OPEN)
				n++;
			p += sizeof(*e) + e->len;
		}
	}
}

/* Lowers RLIMIT_NOFILE to 64 and holds /dev/null on every descriptor but
 * one below it (fds: room for 64): how many it holds, or -1. */
static int hold_all_but_one(int *fds)
{
	struct rlimit r;
	getrlimit(RLIMIT_NOFILE, &r);
	r.rlim_cur = 64;
	if (setrlimit(RLIMIT_NOFILE, &r))
		return -1;
	int nfd = 0;
	for (;;) {
		int fd = open("/dev/null", O_RDONLY);
		if (fd < 0) {
			if (errno != EMFILE)
				return -1;
			break;
		}
		fds[nfd++] = fd;
	}
	close(fds[--nfd]); /* one free */
	return nfd;
}

#endif
