/* Children made without fork's atfork handlers (integration test): the raw
 * fork system call, _Fork() and clone(fn, stack, SIGCHLD); and a vfork child
 * that calls exit() instead of _exit(). The parent makes 200,000
 * allocations in parent_work around the child; a child allocates in
 * child_work (1,234 bytes leaked) and ends with exit() or _exit(), while
 * the parent goes on allocating.
 * "fork": glibc's fork, with its atfork handlers, for comparison.
 * Usage: rawfork syscall|_Fork|clone|vfork|fork exit|_exit [CHILD_ALLOCATIONS]
 * (child_work's allocations, 50,000 by default) */
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

pid_t _Fork(void);

static int use_exit;
static int child_n = 50000;

__attribute__((noinline)) static void parent_work(int n)
{
	for (int i = 0; i < n; i++)
		free(malloc(16 + (size_t)(i % 200)));
}

__attribute__((noinline)) static void child_work(void)
{
	for (int i = 0; i < child_n; i++) /* several chunks */
		free(malloc(24 + (size_t)(i % 100)));
	(void)!malloc(1234);
}

static int child_main(void *arg)
{
	(void)arg;
	child_work();
	if (use_exit)
		exit(0);
	_exit(0);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	use_exit = !strcmp(argv[2], "exit");
	if (argc > 3)
		child_n = atoi(argv[3]);
	parent_work(100000);
	pid_t pid;
	if (!strcmp(argv[1], "syscall")) {
		pid = (pid_t)syscall(SYS_fork);
	} else if (!strcmp(argv[1], "fork")) {
		pid = fork();
	} else if (!strcmp(argv[1], "_Fork")) {
		pid = _Fork();
	} else if (!strcmp(argv[1], "clone")) {
		size_t size = 1 << 20;
		char *stack = malloc(size);
		pid = clone(child_main, stack + size, SIGCHLD, NULL);
	} else if (!strcmp(argv[1], "vfork")) {
		pid = vfork();
		if (pid == 0) {
			/* allowed in a vfork child: nothing; done by programs anyway */
			if (use_exit)
				exit(0);
			_exit(0);
		}
	} else {
		return 2;
	}
	if (pid < 0)
		return 3;
	if (pid == 0)
		child_main(NULL);
	parent_work(50000); /* while the child runs */
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		return 4;
	parent_work(50000); /* after it ended */
	return 0;
}
