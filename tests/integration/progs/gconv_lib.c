/* A gconv module (iconv's converters are glibc's own shared objects, loaded
 * by iconv_open and unloaded by glibc itself, not through dlclose, a few
 * iconv_close calls after their last use): INTERNAL (UCS-4) to NAME, one
 * byte a character. Built as HWGA.so, HWGB.so and HWGC.so (gconvswap.c),
 * the same layout in each; its start allocates SIZE bytes for the step. */
#include <gconv.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) int gconv_init(struct __gconv_step *step)
{
	step->__data = malloc(SIZE);
	if (!step->__data)
		return __GCONV_NOMEM;
	memset(step->__data, 1, SIZE);
	step->__min_needed_from = step->__max_needed_from = 4;
	step->__min_needed_to = step->__max_needed_to = 1;
	step->__stateful = 0;
	return __GCONV_OK;
}

void gconv_end(struct __gconv_step *step)
{
	free(step->__data);
}

int gconv(struct __gconv_step *step, struct __gconv_step_data *data, const unsigned char **inptr,
	  const unsigned char *inend, unsigned char **outbufstart, size_t *irreversible,
	  int do_flush, int consume_incomplete)
{
	(void)step;
	(void)irreversible;
	(void)consume_incomplete;
	if (do_flush)
		return __GCONV_EMPTY_INPUT;
	unsigned char *out = outbufstart ? *outbufstart : data->__outbuf;
	const unsigned char *in = *inptr;
	while (in + 4 <= inend && out < data->__outbufend) {
		*out++ = in[0];
		in += 4;
	}
	*inptr = in;
	if (outbufstart)
		*outbufstart = out;
	else
		data->__outbuf = out;
	return in + 4 <= inend ? __GCONV_FULL_OUTPUT : __GCONV_EMPTY_INPUT;
}
