/* K-way merge by sequence number (analyzer, second stage): a binary min-heap
 * keyed by each cursor's next event. A thread's chunks hold consecutive
 * stretches of its events, so one cursor walks a whole chain of them (the
 * chunks of one thread in index order) and the heap holds about one cursor
 * per thread. A chunk's pages are dropped once it is read: the analyzer's
 * memory follows the live set, not the length of the trace. */
#include "merge.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util.h"

#define BATCH 4096 /* events per batch (128 KiB) */
#define RING 4 /* batches between the decoding thread and the replay */
#define RUN 64 /* events decoded at once from one cursor */
#define PEND 256 /* events handed to the stage at once */

struct batch {
	struct hw_event *ev; /* BATCH or a little more: a stage may add events */
	size_t n, cap;
};

struct merge {
	struct cursor *cursors;
	size_t *chain; /* chunk numbers, chain by chain */
	size_t *chain_end; /* per cursor: one past its last entry in chain */
	size_t *chain_at; /* per cursor: its current entry */
	struct cursor **heap;
	size_t n;
	merge_def_fn def;
	void *ctx;
	merge_stage_fn stage;
	void *stage_ctx;
	const struct trace *t;
	uint32_t out_tid; /* what the consumer was last told */
	uint64_t out_time;
	bool told;
	uintptr_t drop_lo, drop_hi; /* read pages not given back yet */
	uint64_t done_bytes, total_bytes; /* of records, for progress */
	/* batches: one in the single-threaded mode, a ring with a thread */
	struct batch *ring;
	bool threaded;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t produced, consumed; /* batches, counted since the start */
	size_t handed; /* 1 while the consumer holds ring[consumed % RING] */
	bool done, stop;
	int sleepers; /* threads asleep on cond (or about to be) */
};

static void flush_drops(struct merge *m)
{
	if (m->drop_hi > m->drop_lo)
		madvise((void *)m->drop_lo, m->drop_hi - m->drop_lo, MADV_DONTNEED);
	m->drop_lo = m->drop_hi = 0;
}

/* Gives back the pages of a chunk that was read. Adjacent chunks (one
 * thread's, usually) are given back together, a few MiB at a time: each
 * madvise of a threaded process costs a TLB shootdown on every CPU. */
static void drop_pages(struct merge *m, const struct chunk_ref *c)
{
	const struct trace *t = m->t;
	if (!t->mapped)
		return;
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t lo = (uintptr_t)(t->data + c->offset) & ~(page - 1);
	uintptr_t hi = (uintptr_t)(t->data + c->offset + HW_CHUNK_HEADER_SIZE + c->used);
	hi = (hi + page - 1) & ~(page - 1);
	if (hi <= lo)
		return;
	if (m->drop_hi > m->drop_lo && lo >= m->drop_hi && lo - m->drop_hi < ((uintptr_t)64 << 10)) {
		m->drop_hi = hi; /* the next chunk in the file */
	} else {
		flush_drops(m);
		m->drop_lo = lo;
		m->drop_hi = hi;
	}
	if (m->drop_hi - m->drop_lo >= ((uintptr_t)4 << 20))
		flush_drops(m);
}

/* Moves c to its next event, passing definitions to the callback, and on to
 * the next chunk of its chain at the end of one. */
static bool advance(struct merge *m, struct cursor *c)
{
	size_t ci = (size_t)(c - m->cursors);
	for (;;) {
		int n = cursor_next_events(c, &c->rec, c->ev);
		if (n > 0) {
			c->nev = n;
			c->at = 0;
			return true;
		}
		if (n == 0) {
			m->def(m->ctx, c, &c->rec);
			continue;
		}
		drop_pages(m, c->chunk);
		__atomic_store_n(&m->done_bytes, m->done_bytes + c->chunk->used, __ATOMIC_RELAXED);
		if (++m->chain_at[ci] >= m->chain_end[ci])
			return false;
		/* the delta bases restart with each chunk; the time does not */
		cursor_init(c, m->t, m->chain[m->chain_at[ci]]);
	}
}

static bool less(const struct cursor *a, const struct cursor *b)
{
	uint64_t x = a->ev[a->at].seq, y = b->ev[b->at].seq;
	return x < y || (x == y && a < b);
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

static void *producer(void *arg);

struct merge *merge_new(const struct trace *t, merge_def_fn def, void *ctx, merge_stage_fn stage,
			void *stage_ctx)
{
	struct merge *m = xcalloc(1, sizeof(*m));
	m->def = def;
	m->ctx = ctx;
	m->stage = stage;
	m->stage_ctx = stage_ctx;
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
	for (size_t i = 0; i < t->nchunks; i++)
		m->total_bytes += t->chunks[i].used;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	const char *one = getenv("HEAPWISE_ANALYZER_THREADS");
	m->threaded = cpus > 1 && t->nchunks > 1 && !(one && !strcmp(one, "1"));
	m->ring = xcalloc(m->threaded ? RING : 1, sizeof(*m->ring));
	for (size_t i = 0; i < (m->threaded ? RING : 1); i++) {
		m->ring[i].cap = BATCH + 4 * PEND;
		m->ring[i].ev = xaligned(64, m->ring[i].cap * sizeof(struct hw_event));
	}
	if (m->threaded) {
		pthread_mutex_init(&m->lock, NULL);
		pthread_cond_init(&m->cond, NULL);
		if (pthread_create(&m->thread, NULL, producer, m)) {
			pthread_mutex_destroy(&m->lock);
			pthread_cond_destroy(&m->cond);
			m->threaded = false; /* decode on demand instead */
		}
	}
	return m;
}

void merge_out_grow(struct merge_out *o)
{
#ifdef __SSE2__
	_mm_sfence(); /* the streamed events before they are copied */
#endif
	size_t cap = o->cap * 2;
	struct hw_event *ev = xaligned(64, cap * sizeof(*ev));
	memcpy(ev, o->ev, o->n * sizeof(*ev));
	free(o->ev);
	o->ev = ev;
	o->cap = cap;
}

/* Events on their way to the stage. */
struct pending {
	struct hw_event ev[PEND];
	size_t n;
};

static void flush(struct merge *m, struct pending *p, struct merge_out *out)
{
	if (m->stage)
		m->stage(m->stage_ctx, p->ev, p->n, out);
	else
		for (size_t i = 0; i < p->n; i++)
			merge_out_push(out, &p->ev[i]);
	p->n = 0;
}

static void tell_time(struct merge *m, struct pending *p, uint64_t time_ns)
{
	if (time_ns != m->out_time || !m->told) {
		p->ev[p->n++] = (struct hw_event){.op = EV_TIME, .addr = time_ns};
		m->out_time = time_ns;
	}
}

/* Decodes about BATCH events (and the time and thread changes between them)
 * and puts them through the stage into b. */
static void fill(struct merge *m, struct batch *b)
{
	struct merge_out out = {b->ev, 0, b->cap, m->threaded};
	struct pending p;
	p.n = 0;
	while (out.n + p.n < BATCH && m->n) {
		if (p.n + RUN + 5 > PEND)
			flush(m, &p, &out);
		struct cursor *c = m->heap[0];
		if (c->tid != m->out_tid || !m->told) {
			p.ev[p.n++] = (struct hw_event){.op = EV_THREAD, .addr = c->tid};
			m->out_tid = c->tid;
		}
		tell_time(m, &p, c->ev_time);
		m->told = true;
		p.ev[p.n++] = c->ev[c->at];
		if (++c->at == c->nev) {
			/* the records after it that come before every other
			 * cursor's next event go straight out */
			uint64_t limit = UINT64_MAX;
			for (size_t i = 1; i <= 2 && i < m->n; i++)
				if (m->heap[i]->ev[m->heap[i]->at].seq < limit)
					limit = m->heap[i]->ev[m->heap[i]->at].seq;
			size_t dt = c->time_ns != m->out_time; /* room for a time */
			size_t k = cursor_decode_run(c, &p.ev[p.n + dt], RUN, limit);
			if (k) {
				if (dt)
					tell_time(m, &p, c->time_ns);
				p.n += k;
			}
		}
		if (c->at < c->nev || advance(m, c)) {
			if (m->n > 1)
				sift_down(m, 0);
		} else {
			m->heap[0] = m->heap[--m->n];
			sift_down(m, 0);
		}
	}
	flush(m, &p, &out);
	b->ev = out.ev;
	b->cap = out.cap;
	b->n = out.n;
}

/* The ring's hand-over: each side spins a little (the other is usually a
 * few microseconds from done), then sleeps on the condition variable.
 * sleepers is raised before the last look and read after every publish, so
 * a wake-up cannot be lost. */
#define SPIN 2000

static size_t load(const size_t *x)
{
	return __atomic_load_n(x, __ATOMIC_ACQUIRE);
}

static bool room_or_stop(const struct merge *m)
{
	return load(&m->produced) - load(&m->consumed) < RING || __atomic_load_n(&m->stop, __ATOMIC_ACQUIRE);
}

static bool batch_or_done(const struct merge *m)
{
	return load(&m->consumed) < load(&m->produced) || __atomic_load_n(&m->done, __ATOMIC_ACQUIRE);
}

static void wait_for(struct merge *m, bool (*ready)(const struct merge *))
{
	for (int i = 0; i < SPIN; i++) {
		if (ready(m))
			return;
#ifdef __SSE2__
		_mm_pause();
#endif
	}
	pthread_mutex_lock(&m->lock);
	__atomic_add_fetch(&m->sleepers, 1, __ATOMIC_SEQ_CST);
	while (!ready(m))
		pthread_cond_wait(&m->cond, &m->lock);
	__atomic_sub_fetch(&m->sleepers, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&m->lock);
}

static void publish(struct merge *m, size_t *counter)
{
	__atomic_store_n(counter, *counter + 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&m->sleepers, __ATOMIC_SEQ_CST)) {
		pthread_mutex_lock(&m->lock);
		pthread_cond_broadcast(&m->cond);
		pthread_mutex_unlock(&m->lock);
	}
}

static void *producer(void *arg)
{
	struct merge *m = arg;
	for (;;) {
		wait_for(m, room_or_stop);
		if (__atomic_load_n(&m->stop, __ATOMIC_ACQUIRE))
			break;
		struct batch *b = &m->ring[m->produced % RING];
		fill(m, b);
#ifdef __SSE2__
		_mm_sfence(); /* the streamed events before the batch is published */
#endif
		if (!b->n)
			__atomic_store_n(&m->done, true, __ATOMIC_RELEASE);
		publish(m, &m->produced);
		if (!b->n)
			break;
	}
	return NULL;
}

size_t merge_batch(struct merge *m, const struct hw_event **out)
{
	if (!m->threaded) {
		fill(m, &m->ring[0]);
		*out = m->ring[0].ev;
		return m->ring[0].n;
	}
	if (m->handed) { /* the batch handed out last time is free again */
		m->handed = 0;
		publish(m, &m->consumed);
	}
	wait_for(m, batch_or_done);
	if (m->consumed == load(&m->produced))
		return 0;
	struct batch *b = &m->ring[m->consumed % RING];
	m->handed = 1;
	*out = b->ev;
	return b->n;
}

uint64_t merge_done(const struct merge *m, uint64_t *total)
{
	*total = m->total_bytes;
	return __atomic_load_n(&m->done_bytes, __ATOMIC_RELAXED);
}

void merge_free(struct merge *m)
{
	if (!m)
		return;
	if (m->threaded) {
		__atomic_store_n(&m->stop, true, __ATOMIC_SEQ_CST);
		pthread_mutex_lock(&m->lock);
		pthread_cond_broadcast(&m->cond);
		pthread_mutex_unlock(&m->lock);
		pthread_join(m->thread, NULL);
		pthread_mutex_destroy(&m->lock);
		pthread_cond_destroy(&m->cond);
	}
	flush_drops(m);
	for (size_t i = 0; m->ring && i < (m->threaded ? RING : 1); i++)
		free(m->ring[i].ev);
	free(m->ring);
	free(m->cursors);
	free(m->chain);
	free(m->chain_end);
	free(m->chain_at);
	free(m->heap);
	free(m);
}
