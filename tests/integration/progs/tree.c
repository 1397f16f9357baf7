/* A process tree whose combined peak is not the sum of the processes' peaks
 * (integration test): the parent holds 4 MiB while two children, one after
 * the other, each hold 3 MiB; the tree's peak is 7 MiB, the peaks add up to
 * 10 MiB. The second child leaks its block. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB (1 << 20)

__attribute__((noinline)) static char *parent_block(void)
{
	char *p = malloc(4 * MIB);
	if (p)
		memset(p, 1, 4 * MIB);
	return p;
}

__attribute__((noinline)) static char *child_block(void)
{
	char *p = malloc(3 * MIB);
	if (p)
		memset(p, 2, 3 * MIB);
	return p;
}

static int child(int leak)
{
	pid_t pid = fork();
	if (pid == 0) {
		char *p = child_block();
		usleep(20000); /* live across several ticks of the trace clock */
		if (!leak)
			free(p);
		exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) && !WEXITSTATUS(st) ? 0 : 1;
}

int main(void)
{
	char *p = parent_block();
	int rc = child(0) | child(1);
	free(p);
	return rc;
}
