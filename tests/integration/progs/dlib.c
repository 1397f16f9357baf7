/* A library loaded with dlopen by dlopener.c (integration test: module map
 * changes are recorded and frames in it are symbolized). */
#include <stdlib.h>

__attribute__((noinline)) void *dlib_alloc(void)
{
	return malloc(777);
}
