/* A vfork child that ends with exit() instead of _exit(): the atexit
 * handlers (and destructors) run in the child, in its parent's memory,
 * while the parent waits. The parent's trace must be untouched by them:
 * it ends with the parent's trailer ("exited cleanly"). A handler of the
 * program's frees in the child what the parent allocated before. Usage:
 * vforkexit [N] (N vfork children one after the other, default 1). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static char *g_block;

static void handler(void)
{
	free(g_block); /* in the child: the parent's block, in its memory */
	g_block = NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1;
	char *volatile keep = malloc(4242); /* a leak of the parent's */
	(void)keep;
	atexit(handler);
	for (int i = 0; i < n; i++) {
		g_block = malloc(777);
		pid_t pid = vfork();
		if (pid == 0)
			exit(7);
		int st;
		if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
			return 2;
		/* the child's handler set g_block to NULL in our memory */
		char *volatile more = malloc(1000);
		free(more);
	}
	g_block = malloc(555); /* freed by the handler at our exit */
	puts("done");
	return 0;
}
