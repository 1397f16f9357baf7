/* Known sizes for the sampled estimates' intervals (test_spread.py): four
 * callsites keep blocks of 64 bytes and of a quarter of, one and two times
 * the interval the test samples at (16 KiB), where the chance of a block
 * being recorded is small, 0.22, 0.63 and 0.86 (so the variance's 1 - p
 * matters), and one allocates and frees small blocks (allocated bytes
 * only). Usage: spread (no arguments). Every block is kept to the end, so
 * each keeping site's bytes at the peak and at exit are what it allocated. */
#include <stdlib.h>
#include <string.h>

#define SMALL_N 20000 /* x 64 = 1.28 MB */
#define QUARTER_N 300 /* x 4 KiB = 1.2 MB */
#define ONE_N 80 /* x 16 KiB = 1.3 MB */
#define TWO_N 40 /* x 32 KiB = 1.3 MB */
#define CHURN_N 20000 /* x 100, each freed at once: 2 MB allocated */

static void *keep[SMALL_N + QUARTER_N + ONE_N + TWO_N];
static size_t nkeep;

static void hold(void *p)
{
	if (p)
		memset(p, 1, 1);
	keep[nkeep++] = p;
}

__attribute__((noinline)) static void *spread_small(void)
{
	return malloc(64);
}

__attribute__((noinline)) static void *spread_quarter(void)
{
	return malloc(4096);
}

__attribute__((noinline)) static void *spread_one(void)
{
	return malloc(16384);
}

__attribute__((noinline)) static void *spread_two(void)
{
	return malloc(32768);
}

__attribute__((noinline)) static void spread_churn(void)
{
	void *volatile p = malloc(100);
	free(p);
}

int main(void)
{
	/* interleaved, so no site gets the countdown's start more than another */
	for (int i = 0; i < SMALL_N; i++) {
		hold(spread_small());
		if (i % (SMALL_N / QUARTER_N) == 0 && i / (SMALL_N / QUARTER_N) < QUARTER_N)
			hold(spread_quarter());
		if (i % (SMALL_N / ONE_N) == 0)
			hold(spread_one());
		if (i % (SMALL_N / TWO_N) == 0)
			hold(spread_two());
		spread_churn();
	}
	return 0;
}
