/* The fuzz targets' comparison of two readings of a trace (events.h). */
#include "events.h"

#include <stdio.h>
#include <stdlib.h>

#include "merge.h"

/* A STACK definition (what the column decoder hands out decoded) and
 * where it came: the other definitions by tag only (their bytes point
 * into the chunk). */
static void def_of(void *ctx, const struct cursor *c, const struct hw_record *r)
{
	uint64_t v[6] = {UINT64_MAX, c->last_seq, 0, 0, 0, 0};
	if (!r)
		v[2] = c->ev[0].seq;
	else if (r->tag == HW_REC_STACK)
		v[2] = r->id, v[3] = r->parent, v[4] = r->frame, v[5] = r->frame_kind;
	else
		v[2] = r->tag;
	fwrite(v, sizeof(v), 1, ctx);
}

uint8_t *fuzz_events_of(const struct trace *t, size_t *len)
{
	char *buf = NULL, *dbuf = NULL;
	size_t dlen = 0;
	FILE *f = open_memstream(&buf, len);
	FILE *d = open_memstream(&dbuf, &dlen); /* written by the merge's decoding thread */
	struct merge *m = merge_new(t, def_of, d);
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
	fclose(d);
	fwrite(dbuf, 1, dlen, f);
	free(dbuf);
	fclose(f);
	return (uint8_t *)buf;
}
