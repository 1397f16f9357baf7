/* A fork child with one descriptor free below its limit (integration test):
 * its trace would be the shim's to open at its first event, and must not
 * be, not even for a moment (an open of the program's then would fail).
 * Watches DIR (where the traces are) for opens with inotify, opens
 * /dev/null until EMFILE, closes one, forks; the child allocates, opens
 * /dev/null (its last descriptor) and prints "child fd F opens K" (K: the
 * files of DIR opened since the fork). Usage:
 * forkspare DIR fork|_Fork|syscall [exit|_exit] */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

pid_t _Fork(void);

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

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	int use_exit = argc > 3 && !strcmp(argv[3], "exit");
	int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (in < 0 || inotify_add_watch(in, argv[1], IN_OPEN) < 0)
		return 2;
	struct rlimit r;
	getrlimit(RLIMIT_NOFILE, &r);
	r.rlim_cur = 64;
	if (setrlimit(RLIMIT_NOFILE, &r))
		return 2;
	int fds[64], nfd = 0;
	for (;;) {
		int fd = open("/dev/null", O_RDONLY);
		if (fd < 0) {
			if (errno != EMFILE)
				return 2;
			break;
		}
		fds[nfd++] = fd;
	}
	close(fds[--nfd]); /* one free */
	opens(in);
	pid_t pid;
	if (!strcmp(argv[2], "fork"))
		pid = fork();
	else if (!strcmp(argv[2], "_Fork"))
		pid = _Fork();
	else
		pid = (pid_t)syscall(SYS_fork);
	if (pid < 0)
		return 2;
	if (pid == 0) {
		char *volatile p = malloc(100); /* the child's first event */
		free(p);
		int fd = open("/dev/null", O_RDONLY);
		char line[64];
		int n = snprintf(line, sizeof(line), "child fd %d opens %d\n", fd, opens(in));
		(void)!write(1, line, (size_t)n);
		if (use_exit)
			exit(fd < 0 ? 1 : 0);
		_exit(fd < 0 ? 1 : 0);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		return 2;
	while (nfd)
		close(fds[--nfd]);
	return WEXITSTATUS(st);
}
