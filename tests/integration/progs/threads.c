/* 8 threads x 100k malloc/free with sizes 1..64 (integration test: exact
 * totals under concurrency). */
#include <pthread.h>
#include <stdlib.h>

#define THREADS 8
#define ROUNDS 100000

__attribute__((noinline)) static void *worker(void *arg)
{
	(void)arg;
	for (int i = 0; i < ROUNDS; i++) {
		volatile char *p = malloc((size_t)(i % 64) + 1);
		p[0] = 1;
		free((void *)p);
	}
	return NULL;
}

int main(void)
{
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, NULL);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	return 0;
}
