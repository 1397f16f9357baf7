/* The two libraries of dlrace.c: one source, built with NAME=first_alloc and
 * NAME=second_alloc (the same layout). Its destructor calls the program's
 * hook, set through drace_hook. */
#include <stdlib.h>

void (*drace_hook)(void);
char drace_pad[1 << 16]; /* larger than the free range dlrace.c makes */

__attribute__((noinline)) void *NAME(void)
{
	return malloc(SIZE);
}

__attribute__((destructor)) static void unloading(void)
{
	if (drace_hook)
		drace_hook();
}
