/* A fork while another thread is inside dl_iterate_phdr (integration test).
 * glibc's fork does not reset the loader lock dl_iterate_phdr holds, so the
 * child inherits it held by a thread it does not have; the child never calls
 * dl_iterate_phdr itself and exits normally untraced. Traced with native
 * stacks, its first allocation unwound through libunwind, which takes that
 * lock: the child waited for ever, every signal blocked. Exit 0 when the
 * child exited 0. */
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static atomic_int inside, forked;

static int hold(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)info;
	(void)size;
	(void)arg;
	atomic_store(&inside, 1);
	while (!atomic_load(&forked))
		usleep(1000);
	return 1;
}

static void *holder(void *arg)
{
	(void)arg;
	dl_iterate_phdr(hold, NULL);
	return NULL;
}

__attribute__((noinline)) static void child_work(void)
{
	void *volatile p = malloc(4321); /* the child leaks it */
	(void)p;
}

int main(void)
{
	pthread_t t;
	pthread_create(&t, NULL, holder, NULL);
	while (!atomic_load(&inside))
		usleep(1000);
	pid_t pid = fork();
	if (pid == 0) {
		child_work();
		_exit(0);
	}
	atomic_store(&forked, 1);
	int st;
	int bad = pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st);
	pthread_join(t, NULL);
	return bad;
}
