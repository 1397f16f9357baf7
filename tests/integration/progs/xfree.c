/* 16 threads; each allocates blocks that the next thread frees (integration
 * test: exact totals when frees cross threads). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define THREADS 16
#define PER_THREAD 20000
#define RING 256

struct ring {
	void *_Atomic slot[RING];
};

static struct ring rings[THREADS];

__attribute__((noinline)) static void *produce(size_t i)
{
	return malloc(16 + i % 200);
}

static void *worker(void *arg)
{
	int me = (int)(long)arg;
	struct ring *out = &rings[(me + 1) % THREADS], *in = &rings[me];
	int made = 0, freed = 0;
	while (made < PER_THREAD || freed < PER_THREAD) {
		if (made < PER_THREAD) {
			unsigned s = (unsigned)made % RING;
			if (!atomic_load(&out->slot[s])) {
				atomic_store(&out->slot[s], produce((size_t)made));
				made++;
			}
		}
		if (freed < PER_THREAD) {
			unsigned s = (unsigned)freed % RING;
			void *p = atomic_exchange(&in->slot[s], NULL);
			if (p) {
				free(p);
				freed++;
			}
		}
	}
	return NULL;
}

int main(void)
{
	pthread_t t[THREADS];
	for (long i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, (void *)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	return 0;
}
