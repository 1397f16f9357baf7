/* A program that sets umask 0777 and then forks (integration test): the
 * child's trace file is created under that umask, and must still be
 * written (child_alloc leaks 4,321 bytes). */
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) static void *child_alloc(void)
{
	return malloc(4321);
}

int main(void)
{
	umask(0777);
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < 20000; i++) /* past the first chunk */
			free(malloc(64));
		(void)!child_alloc();
		exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}
