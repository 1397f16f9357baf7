/* exit() called from a thread while the main thread allocates (integration
 * test: the exit status is kept, the trace is readable). */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

static void *quitter(void *arg)
{
	(void)arg;
	usleep(20000);
	for (int i = 0; i < 1000; i++)
		(void)!malloc(10);
	exit(3);
}

int main(void)
{
	pthread_t t;
	pthread_create(&t, NULL, quitter, NULL);
	for (;;)
		free(malloc(64));
}
