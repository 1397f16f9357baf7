/* An allocation inside a function inlined into its caller (integration test:
 * inlined frames are expanded, each with its own file:line). Built with -O2. */
#include <stdlib.h>

static inline __attribute__((always_inline)) void *make_buffer(size_t n)
{
	char *p = malloc(n); /* INLINE-ALLOC */
	p[0] = 1; /* keeps the call from becoming a tail call */
	return p;
}

__attribute__((noinline)) void *outer_caller(size_t n)
{
	return make_buffer(n + 1); /* INLINE-CALL */
}

int main(void)
{
	volatile void *p = outer_caller(4095);
	(void)p;
	return 0;
}
