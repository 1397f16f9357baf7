/* Leaks with known sizes per function (integration test; checked against
 * valgrind memcheck too). No stdio: only the blocks below are live at exit. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *g_reachable;

__attribute__((noinline)) void leak_small(void)
{
	for (int i = 0; i < 10; i++)
		(void)!malloc(100);
}

__attribute__((noinline)) void leak_big(void)
{
	char *p = malloc(1 << 20);
	memset(p, 1, 1 << 20);
}

__attribute__((noinline)) void keep_reachable(void)
{
	g_reachable = calloc(64, 64);
}

__attribute__((noinline)) void leak_grown(void)
{
	char *p = malloc(10);
	p = realloc(p, 5000);
	p = realloc(p, 3000);
	(void)p;
}

__attribute__((noinline)) void leak_aligned(void)
{
	void *p;
	if (posix_memalign(&p, 64, 256) == 0)
		(void)p;
	(void)!aligned_alloc(128, 512);
	(void)!memalign(32, 96);
}

__attribute__((noinline)) void no_leak(void)
{
	for (int i = 0; i < 1000; i++) {
		void *p = malloc((size_t)i + 1);
		free(p);
	}
	free(strdup("transient"));
	free(calloc(3, 7));
	free(realloc(NULL, 77));
	void *q = malloc(50);
	(void)!realloc(q, 0);
}

int main(void)
{
	leak_small();
	leak_big();
	keep_reachable();
	leak_grown();
	leak_aligned();
	no_leak();
	return 0;
}
