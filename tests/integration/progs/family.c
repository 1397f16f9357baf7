/* A process tree (integration test): a fork child and an exec'd child, each
 * leaking known amounts. Usage: family [child-exec] */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) static void leak_in_parent(void)
{
	for (int i = 0; i < 2; i++)
		(void)!malloc(2000);
}

__attribute__((noinline)) static void leak_in_fork_child(void)
{
	for (int i = 0; i < 3; i++)
		(void)!malloc(1000);
}

__attribute__((noinline)) static void leak_in_exec_child(void)
{
	for (int i = 0; i < 5; i++)
		(void)!malloc(100);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "child-exec")) {
		leak_in_exec_child();
		return 0;
	}
	leak_in_parent();
	pid_t a = fork();
	if (a == 0) {
		leak_in_fork_child();
		exit(0);
	}
	pid_t b = fork();
	if (b == 0) {
		execl(argv[0], argv[0], "child-exec", (char *)NULL);
		_exit(127);
	}
	int st1, st2;
	waitpid(a, &st1, 0);
	waitpid(b, &st2, 0);
	return WIFEXITED(st1) && WIFEXITED(st2) && !WEXITSTATUS(st1) && !WEXITSTATUS(st2) ? 0 : 1;
}
