/* The two libraries of dlswap.c: one source, built with NAME=first_alloc
 * and NAME=second_alloc (the same layout, so the function is at the same
 * offset in both). */
#include <stdlib.h>

__attribute__((noinline)) void *NAME(void)
{
	return malloc(4321);
}
