/* The two libraries of dlframes.c: one source, built with PAD=512 and
 * PAD=2048 and without a frame pointer, so frame_alloc has the same code at
 * the same offsets in both and only its frame size differs: the recipe of
 * its call of malloc (CFA = rsp + size) differs at the same address. */
#include <stdlib.h>

__attribute__((noinline)) void *frame_alloc(void)
{
	volatile char pad[PAD];
	pad[0] = 1;
	void *p = malloc(4321 + (size_t)pad[0] - 1);
	pad[PAD - 1] = 2;
	return pad[PAD - 1] == 2 ? p : NULL;
}
