/* K-way merge by sequence number (analyzer, second stage): a binary min-heap
 * keyed by each cursor's next event. A thread's chunks hold consecutive
 * stretches of its events, so one cursor walks a whole chain of them (the
 * chunks of one thread in index order) and the heap holds about one cursor
 * per thread. A chunk's pages are dropped once it is read: the analyzer's
 * memory follows the live set, not the length of the trace. */
#include "merge.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util.h"

struct merge {
	struct cursor *cursors;
	size_t *chain; /* chunk numbers, chain by chain */
	size_t *chain_end; /* per cursor: one past its last entry in chain */
	size_t *chain_at; /* per cursor: its current entry */
	struct cursor **heap;
	size_t n;
	merge_def_fn def;
	void *ctx;
	const struct trace *t;
	struct cursor *last; /* popped, to advance on the next call */
};

static void drop_pages(const struct trace *t, const struct chunk_ref *c)
{
	if (!t->mapped)
		return;
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t lo = (uintptr_t)(t->data + c->offset) & ~(uintptr_t)(page - 1);
	uintptr_t hi = (uintptr_t)(t->data + c->offset + HW_CHUNK_HEADER_SIZE + c->used);
	if (hi > lo)
		madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* Moves c to its next event, passing definitions to the callback, and on to
 * the next chunk of its chain at the end of one. */
static bool advance(struct merge *m, struct cursor *c)
{
	size_t ci = (size_t)(c - m->cursors);
	for (;;) {
		enum read_result r = cursor_next(c, &c->rec);
		if (r != READ_RECORD) {
			drop_pages(m->t, c->chunk);
			if (++m->chain_at[ci] >= m->chain_end[ci])
				return false;
			/* the delta bases restart with each chunk; the time does not */
			cursor_init(c, m->t, m->chain[m->chain_at[ci]]);
			continue;
		}
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

static const struct trace *g_sort_trace;

static int by_thread(const void *x, const void *y)
{
	const struct chunk_ref *a = &g_sort_trace->chunks[*(const size_t *)x];
	const struct chunk_ref *b = &g_sort_trace->chunks[*(const size_t *)y];
	if (a->tid != b->tid)
		return a->tid < b->tid ? -1 : 1;
	if (a->index != b->index)
		return a->index < b->index ? -1 : 1;
	return a->offset < b->offset ? -1 : a->offset > b->offset;
}

struct merge *merge_new(const struct trace *t, merge_def_fn def, void *ctx)
{
	struct merge *m = xcalloc(1, sizeof(*m));
	m->def = def;
	m->ctx = ctx;
	m->t = t;
	size_t n = t->nchunks;
	m->chain = xmalloc((n + 1) * sizeof(*m->chain));
	for (size_t i = 0; i < n; i++)
		m->chain[i] = i;
	g_sort_trace = t;
	if (n > 1)
		qsort(m->chain, n, sizeof(*m->chain), by_thread);
	/* a chain: one thread's chunks numbered 0, 1, 2, ... without a gap; a
	 * reused thread id or a damaged index starts a new chain */
	m->cursors = xcalloc(n + 1, sizeof(*m->cursors));
	m->chain_end = xcalloc(n + 1, sizeof(*m->chain_end));
	m->chain_at = xcalloc(n + 1, sizeof(*m->chain_at));
	m->heap = xcalloc(n + 1, sizeof(*m->heap));
	size_t ncur = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && t->chunks[m->chain[j]].tid == t->chunks[m->chain[i]].tid &&
		       t->chunks[m->chain[j]].index == t->chunks[m->chain[j - 1]].index + 1)
			j++;
		m->chain_at[ncur] = i;
		m->chain_end[ncur] = j;
		ncur++;
		i = j;
	}
	for (size_t k = 0; k < ncur; k++) {
		struct cursor *c = &m->cursors[k];
		cursor_init(c, t, m->chain[m->chain_at[k]]);
		if (advance(m, c))
			m->heap[m->n++] = c;
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
	free(m->chain);
	free(m->chain_end);
	free(m->chain_at);
	free(m->heap);
	free(m);
}
