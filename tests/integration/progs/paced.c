/* Allocations paced by sleeps after a burst (integration test): each paced
 * one is the only event of its thread between two sleeps longer than the
 * coarse clock's tick, so each has a time of its own. Before them, bursts
 * of small events each followed by a sleep and one large allocation: a
 * large allocation looks at the clock itself, so it has the time after
 * the sleep. */
#include <stdlib.h>
#include <time.h>

#define PACED 40
#define BIG 8

static void nap(void)
{
	struct timespec t = {0, 12 * 1000 * 1000}; /* HZ=100 ticks 10 ms */
	while (nanosleep(&t, &t))
		;
}

int main(void)
{
	void *big[BIG];
	for (int r = 0; r < BIG; r++) {
		/* many events a tick (a burst of another length each time:
		 * the big one comes at another point of the thread's stride) */
		for (int i = 0; i < 3000 + 3 * r; i++)
			free(malloc(64));
		nap();
		big[r] = malloc((1 << 20) + (size_t)r);
	}
	for (int i = 0; i < 20000; i++)
		free(malloc(64));
	void *keep[PACED];
	for (int i = 0; i < PACED; i++) {
		nap();
		keep[i] = malloc(1000 + (size_t)i);
	}
	for (int i = 0; i < PACED; i++)
		free(keep[i]);
	for (int r = 0; r < BIG; r++)
		free(big[r]);
	return 0;
}
