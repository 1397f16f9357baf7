/* Thread churn (integration test): N threads, one after the other, each
 * making one allocation that the main thread frees at the end. With "reuse"
 * every thread gets the thread id of the one before it (through
 * /proc/sys/kernel/ns_last_pid, root only), the way a busy machine with
 * pid_max 32768 reuses ids, and first makes and frees 20,000 blocks (events
 * enough for more than one chunk); the main thread frees each thread's
 * block as soon as the thread ended. Usage: tchurn N [reuse] */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void **blocks;
static pid_t last_tid;
static int reuse;

__attribute__((noinline)) static void *worker_alloc(long i)
{
	return malloc(32 + (size_t)(i % 100));
}

static void *worker(void *arg)
{
	long i = (long)arg;
	for (int k = 0; reuse && k < 20000; k++)
		free(worker_alloc(k));
	blocks[i] = worker_alloc(i);
	last_tid = (pid_t)syscall(SYS_gettid);
	return NULL;
}

/* The next thread created gets id tid (ns_last_pid = tid - 1). */
static int reuse_next(pid_t tid)
{
	int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY);
	if (fd < 0)
		return -1;
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%d", (int)tid - 1);
	int ok = write(fd, buf, (size_t)n) == n;
	close(fd);
	return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000;
	reuse = argc > 2 && !strcmp(argv[2], "reuse");
	blocks = calloc((size_t)n, sizeof(void *));
	long reused = 0;
	pid_t prev = 0;
	for (long i = 0; i < n; i++) {
		if (reuse && prev && reuse_next(prev) < 0) {
			fprintf(stderr, "cannot write ns_last_pid\n");
			return 2;
		}
		pthread_t t;
		if (pthread_create(&t, NULL, worker, (void *)i)) {
			fprintf(stderr, "pthread_create failed\n");
			return 1;
		}
		pthread_join(t, NULL);
		if (reuse) {
			free(blocks[i]);
			blocks[i] = NULL;
		}
		reused += prev && last_tid == prev;
		prev = last_tid;
	}
	for (long i = 0; i < n; i++)
		free(blocks[i]);
	free(blocks);
	if (reuse)
		printf("reused %ld\n", reused);
	return 0;
}
