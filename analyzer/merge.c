/* K-way merge of chunk cursors by sequence number (analyzer, second stage):
 * a binary min-heap keyed by each cursor's next event. */
#include "merge.h"

#include <stdlib.h>

#include "util.h"

struct merge {
	struct cursor *cursors;
	struct cursor **heap;
	size_t n;
	merge_def_fn def;
	void *ctx;
	struct cursor *last; /* popped, to advance on the next call */
};

/* Moves c to its next event, passing definitions to the callback. */
static bool advance(struct merge *m, struct cursor *c)
{
	for (;;) {
		enum read_result r = cursor_next(c, &c->rec);
		if (r != READ_RECORD)
			return false;
		if (record_is_event(c->rec.tag)) {
			bool split = c->rec.tag == HW_REC_REALLOC || c->rec.tag == HW_REC_REMAP;
			c->phase = split ? 1 : 0;
			c->key = c->rec.seq;
			return true;
		}
		m->def(m->ctx, c, &c->rec);
	}
}

static bool less(const struct cursor *a, const struct cursor *b)
{
	return a->key < b->key || (a->key == b->key && a < b);
}

static void sift_down(struct merge *m, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, s = i;
		if (l < m->n && less(m->heap[l], m->heap[s]))
			s = l;
		if (r < m->n && less(m->heap[r], m->heap[s]))
			s = r;
		if (s == i)
			return;
		struct cursor *tmp = m->heap[i];
		m->heap[i] = m->heap[s];
		m->heap[s] = tmp;
		i = s;
	}
}

struct merge *merge_new(const struct trace *t, merge_def_fn def, void *ctx)
{
	struct merge *m = xcalloc(1, sizeof(*m));
	m->def = def;
	m->ctx = ctx;
	m->cursors = xcalloc(t->nchunks, sizeof(*m->cursors));
	m->heap = xcalloc(t->nchunks, sizeof(*m->heap));
	for (size_t i = 0; i < t->nchunks; i++) {
		cursor_init(&m->cursors[i], t, i);
		if (advance(m, &m->cursors[i]))
			m->heap[m->n++] = &m->cursors[i];
	}
	for (size_t i = m->n / 2; i-- > 0;)
		sift_down(m, i);
	return m;
}

bool merge_next(struct merge *m, struct merge_event *ev)
{
	struct cursor *c = m->last;
	if (c) {
		m->last = NULL;
		if (c->phase == 1) {
			c->phase = 2;
			c->key = c->rec.seq2;
			sift_down(m, 0);
		} else if (advance(m, c)) {
			sift_down(m, 0);
		} else {
			m->heap[0] = m->heap[--m->n];
			sift_down(m, 0);
		}
	}
	if (!m->n)
		return false;
	c = m->heap[0];
	m->last = c;
	ev->rec = &c->rec;
	ev->phase = c->phase;
	ev->tid = c->tid;
	return true;
}

void merge_free(struct merge *m)
{
	if (!m)
		return;
	free(m->cursors);
	free(m->heap);
	free(m);
}
