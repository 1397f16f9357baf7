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

#include "last_fd.h"

pid_t _Fork(void);

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	int use_exit = argc > 3 && !strcmp(argv[3], "exit");
	int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (in < 0 || inotify_add_watch(in, argv[1], IN_OPEN) < 0)
		return 2;
	int fds[64], nfd = hold_all_but_one(fds);
	if (nfd < 0)
		return 2;
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
