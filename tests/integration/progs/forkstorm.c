/* 200 forks while 4 threads allocate (integration test: no deadlock in the
 * child, whatever lock another thread held at the fork). Exit 0 when every
 * child exited 0. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_bool stop;

static void *churn(void *arg)
{
	(void)arg;
	size_t i = 0;
	while (!atomic_load(&stop)) {
		void *p = malloc(32 + i++ % 4000);
		free(p);
	}
	return NULL;
}

__attribute__((noinline)) static void child_work(void)
{
	for (int i = 0; i < 100; i++)
		free(malloc(64));
	(void)!malloc(1234); /* each child leaks one block */
}

int main(int argc, char **argv)
{
	int forks = argc > 1 ? atoi(argv[1]) : 200;
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, churn, NULL);
	int bad = 0;
	for (int i = 0; i < forks; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			child_work();
			exit(0);
		}
		int st;
		if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
			bad++;
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	return bad ? 1 : 0;
}
