/* A native thread with no Python thread state that leaks a block (integration
 * test, called from Python through ctypes). */
#include <pthread.h>
#include <stdlib.h>

__attribute__((noinline)) static void *native_worker(void *arg)
{
	return malloc((size_t)arg);
}

void nthread_leak(size_t size)
{
	pthread_t t;
	void *out = NULL;
	if (pthread_create(&t, NULL, native_worker, (void *)size) == 0)
		pthread_join(t, &out);
	(void)out;
}
