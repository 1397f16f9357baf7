/* Allocations paced by sleeps after a burst (integration test): each paced
 * one is the only event of its thread between two sleeps longer than the
 * coarse clock's tick, so each has a time of its own. */
#include <stdlib.h>
#include <time.h>

#define PACED 40

int main(void)
{
	for (int i = 0; i < 20000; i++) /* many events a tick */
		free(malloc(64));
	void *keep[PACED];
	for (int i = 0; i < PACED; i++) {
		struct timespec t = {0, 12 * 1000 * 1000}; /* HZ=100 ticks 10 ms */
		while (nanosleep(&t, &t))
			;
		keep[i] = malloc(1000 + (size_t)i);
	}
	for (int i = 0; i < PACED; i++)
		free(keep[i]);
	return 0;
}
