/* A thread with a deferred cancel pending dies only at a cancellation point
 * of its own (integration test, test_stress.py
 * test_a_cancelled_thread_dies_at_its_own_cancellation_point). Each of N
 * rounds (argv[1], default 30) starts a thread that allocates and frees
 * holding a mutex, and calls pthread_testcancel only after it unlocked it;
 * main cancels it, joins it and takes the mutex: a thread cancelled inside
 * malloc (the shim's open, read or close of a file there are cancellation
 * points) died holding it. Exit status 9 then, 0 when every thread was
 * cancelled at its pthread_testcancel. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;

static void *worker(void *arg)
{
	(void)arg;
	void *v[64] = {0};
	unsigned i = 0;
	for (;;) {
		pthread_mutex_lock(&m);
		for (int r = 0; r < 200000; r++) {
			unsigned k = i++ % 64;
			free(v[k]);
			v[k] = malloc(16 + (i * 7) % 1000);
		}
		pthread_mutex_unlock(&m);
		pthread_testcancel();
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 30;
	for (int r = 0; r < n; r++) {
		pthread_t t;
		void *res;
		if (pthread_create(&t, NULL, worker, NULL))
			return 1;
		usleep(5000);
		pthread_cancel(t);
		pthread_join(t, &res);
		if (pthread_mutex_trylock(&m)) {
			printf("round %d: the thread died holding the mutex\n", r);
			return 9;
		}
		pthread_mutex_unlock(&m);
		if (res != PTHREAD_CANCELED)
			return 1;
	}
	return 0;
}
