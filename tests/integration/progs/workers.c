/* A C extension's worker pool (integration test of issue 16 item 4, called
 * from Python through ctypes): workers_run starts n native threads, each of
 * which leaks `bytes` in 100 blocks, and joins them. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void *volatile g_keep[1 << 16];
static volatile unsigned g_next;

__attribute__((noinline)) static void *worker_main(void *arg)
{
	size_t block = (size_t)arg / 100;
	for (int i = 0; i < 100; i++) {
		void *p = malloc(block);
		memset(p, 1, block);
		g_keep[__atomic_fetch_add(&g_next, 1, __ATOMIC_RELAXED) & 0xffff] = p;
	}
	return NULL;
}

int workers_run(int n, size_t bytes)
{
	pthread_t t[64];
	int started = 0;
	for (int i = 0; i < n && i < 64; i++)
		started += pthread_create(&t[started], NULL, worker_main, (void *)bytes) == 0;
	for (int i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	return started;
}
