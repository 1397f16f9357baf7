/* Threads that go on allocating while main exits (integration test): each
 * claims new chunks of the trace as fast as it can, so one may claim a
 * chunk while exit() finishes the trace and cuts its file to the blocks
 * claimed so far. Usage: exitclaim THREADS DELAY_US */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static void *churn(void *arg)
{
	(void)arg;
	for (unsigned long i = 0;; i++) {
		void *volatile p = malloc(16 + i % 4000);
		free(p);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 16;
	long delay = argc > 2 ? atol(argv[2]) : 5000;
	for (int i = 0; i < n; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, churn, NULL) == 0)
			pthread_detach(t);
	}
	usleep((useconds_t)delay);
	exit(0);
}
