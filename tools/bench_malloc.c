/* A malloc/free-heavy C program for tools/bench.py: N rounds of a mix of
 * small and medium allocations, some kept for a while, from a few distinct
 * call paths. Usage: bench_malloc N */
#include <stdio.h>
#include <stdlib.h>

#define KEEP 4096

__attribute__((noinline)) static void *small(size_t i)
{
	return malloc(16 + i % 112);
}

__attribute__((noinline)) static void *medium(size_t i)
{
	return malloc(1024 + (i % 16) * 256);
}

__attribute__((noinline)) static void *grow(void *p, size_t i)
{
	return realloc(p, 64 + i % 4096);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 5000000;
	static void *keep[KEEP];
	unsigned long sum = 0;
	for (long i = 0; i < n; i++) {
		void *p = (i & 7) == 0 ? medium((size_t)i) : small((size_t)i);
		((char *)p)[0] = (char)i;
		sum += ((unsigned char *)p)[0];
		size_t slot = (size_t)(i * 2654435761u) % KEEP;
		if ((i & 15) == 0) {
			free(keep[slot]);
			keep[slot] = p;
		} else if ((i & 63) == 1) {
			keep[slot] = grow(keep[slot], (size_t)i);
			free(p);
		} else {
			free(p);
		}
	}
	for (int i = 0; i < KEEP; i++)
		free(keep[i]);
	printf("bench_malloc %ld %lu\n", n, sum);
	return 0;
}
