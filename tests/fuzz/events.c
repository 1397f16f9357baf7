/* The fuzz targets' comparison of two readings of a trace (events.h). */
#include "events.h"

#include <stdio.h>

#include "merge.h"

static void no_def(void *ctx, const struct cursor *c, const struct hw_record *r)
{
	(void)ctx;
	(void)c;
	(void)r;
}

uint8_t *fuzz_events_of(const struct trace *t, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	struct merge *m = merge_new(t, no_def, NULL);
	const struct hw_event *ev;
	size_t n;
	while ((n = merge_batch(m, &ev)) > 0)
		for (size_t i = 0; i < n; i++) {
			const struct hw_event *e = &ev[i];
			uint64_t v[6] = {e->seq, e->op == EV_MARK ? 0 : e->addr, e->size, e->stack,
					 e->op, e->kind};
			if (e->op == EV_MARK)
				fwrite((const void *)(uintptr_t)e->addr, 1, e->size, f);
			fwrite(v, sizeof(v), 1, f);
		}
	merge_free(m);
	fclose(f);
	return (uint8_t *)buf;
}
