/* A reallocarray whose size overflows fails and leaves its block alive
 * (integration test: the 1,000-byte block made by keep_me must stay a leak). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

void *g_kept;

__attribute__((noinline)) static void *keep_me(void)
{
	return malloc(1000);
}

static volatile size_t big = (size_t)1 << 32, huge = SIZE_MAX - 4096;

int main(void)
{
	void *p = keep_me();
	errno = 0;
	void *q = reallocarray(p, big, big);
	if (q || errno != ENOMEM) {
		fprintf(stderr, "reallocarray did not fail with ENOMEM\n");
		return 1;
	}
	/* and a failing realloc of a size no allocator can give */
	q = realloc(p, huge);
	if (q) {
		fprintf(stderr, "realloc did not fail\n");
		return 1;
	}
	p = NULL; /* lost: a real leak of 1,000 bytes */
	return 0;
}
