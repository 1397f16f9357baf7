/* Fork children in the sampling mode (test_sample.py): the parent draws its
 * countdown, then makes CHILDREN children back to back (nothing allocated
 * between the forks, so all start from the parent's state), with fork() or
 * without atfork handlers (the raw system call, _Fork(), clone). Then every
 * process makes the same SEQ_N allocations of sizes 1024 + i and exits with
 * them live. A child that samples from its parent's countdown or generator
 * picks the same blocks as the parent; one with a stream of its own does not.
 * Usage: sampfork fork|syscall|_Fork|clone */
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

pid_t _Fork(void);

#define CHILDREN 16
#define SEQ_N 4000

__attribute__((noinline)) static void sequence(void)
{
	for (size_t i = 0; i < SEQ_N; i++)
		(void)!malloc(1024 + i);
}

static int child_main(void *arg)
{
	(void)arg;
	sequence();
	_exit(0);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	for (int i = 0; i < 1000; i++) /* the countdown runs */
		free(malloc(100));
	static char stacks[CHILDREN][64 * 1024];
	pid_t pids[CHILDREN];
	for (int k = 0; k < CHILDREN; k++) {
		pid_t pid;
		if (!strcmp(argv[1], "fork"))
			pid = fork();
		else if (!strcmp(argv[1], "syscall"))
			pid = (pid_t)syscall(SYS_fork);
		else if (!strcmp(argv[1], "_Fork"))
			pid = _Fork();
		else if (!strcmp(argv[1], "clone"))
			pid = clone(child_main, stacks[k] + sizeof(stacks[k]), SIGCHLD, NULL);
		else
			return 2;
		if (pid < 0)
			return 3;
		if (pid == 0)
			child_main(NULL);
		pids[k] = pid;
	}
	sequence();
	for (int k = 0; k < CHILDREN; k++) {
		int st;
		if (waitpid(pids[k], &st, 0) != pids[k] || !WIFEXITED(st) || WEXITSTATUS(st))
			return 4;
	}
	return 0;
}
