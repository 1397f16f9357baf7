/* K-way merge by sequence number (analyzer, second stage): a binary min-heap
 * keyed by each cursor's next event. A thread's chunks hold consecutive
 * stretches of its events, so one cursor walks a whole chain of them (the
 * chunks of one thread in index order) and the heap holds about one cursor
 * per thread. A chunk's pages are dropped once it is read: the analyzer's
 * memory follows the live set, not the length of the trace. */
#include "merge.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util.h"

#define BATCH 4096 /* events per batch (128 KiB) */
/* Batches between the decoding thread and the replay (2 MiB). On a
 * compressed trace the two threads are about as busy as each other, and
 * the decoding comes in bursts (a column chunk is decoded whole when the
 * merge reaches it): with 4 batches each side waited for the other ~17 ms
 * of ~160 on d_threads; with 16, 0-4 ms. */
#define RING 16
#define RUN 64 /* events decoded at once from one cursor */

struct batch {
	struct hw_event ev[BATCH];
	size_t n;
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
	const struct trace *t;
	uint32_t out_thread; /* what the consumer was last told */
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
	/* following a live trace (merge_new_follow): chain_at[k] is cursor
	 * k's chunk number, chain_end[k] 1 while it waits at the end of what
	 * its thread published; cursors for ncur threads, room for curcap */
	bool follow;
	size_t ncur, curcap, seen_chunks;
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
	if (!t->mapped || (c->gk && c->gj + 1 < c->gk)) /* a group: after its last chunk */
		return;
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t lo = (uintptr_t)(t->data + c->offset) & ~(page - 1);
	uintptr_t hi = (uintptr_t)(t->data + c->offset +
				   (c->zlen ? HW_ZCHUNK_HEADER_SIZE + c->zlen : HW_CHUNK_HEADER_SIZE + c->used));
	hi = (hi + page - 1) & ~(page - 1);
	if (hi <= lo)
		return;
	if (m->drop_hi > m->drop_lo && lo >= m->drop_lo && lo <= m->drop_hi + ((uintptr_t)64 << 10)) {
		/* the next chunk in the file (compressed ones share pages) */
		if (hi > m->drop_hi)
			m->drop_hi = hi;
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
	bool defs = false;
	for (;;) {
		int n = cursor_next_events(c, &c->rec, c->ev);
		if (n > 0) {
			c->nev = n;
			c->at = 0;
			if (defs) /* their time: see merge_def_fn */
				m->def(m->ctx, c, NULL);
			return true;
		}
		if (n == 0) {
			m->def(m->ctx, c, &c->rec);
			defs = true;
			continue;
		}
		if (m->follow) {
			/* the end of what was published: more of this chunk, or
			 * its thread's next chunk (taken in by a refresh after the
			 * writer had finished this one), or wait for a refresh */
			struct trace *t = (struct trace *)m->t;
			size_t k = m->chain_at[ci];
			if (!c->bad) {
				uint32_t used = trace_chunk_used_now(t, k);
				if (c->start + used > c->end) {
					c->end = c->start + used;
					continue;
				}
			}
			size_t next = trace_next_chunk(t, k);
			if (next == SIZE_MAX) {
				m->chain_end[ci] = 1;
				return false;
			}
			drop_pages(m, c->chunk); /* read to its end: the writer moved on */
			m->chain_at[ci] = next;
			cursor_init_events(c, m->t, next);
			continue;
		}
		/* a compressed chunk's buffer: nothing read from it outlives it
		 * (definitions are copied by the callback, MARK labels by the
		 * reader) */
		cursor_done(c);
		drop_pages(m, c->chunk);
		__atomic_store_n(&m->done_bytes, m->done_bytes + c->chunk->used, __ATOMIC_RELAXED);
		if (++m->chain_at[ci] >= m->chain_end[ci]) {
			/* its events' buffer and decoder too: a trace of many
			 * threads kept one for each thread that ended */
			cursor_release(c);
			return false;
		}
		/* the delta bases restart with each chunk; the time does not */
		cursor_init_events(c, m->t, m->chain[m->chain_at[ci]]);
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

/* Format 3: a thread (a serial, never reused) in the order of its chunks. */
static int by_thread(const void *x, const void *y)
{
	const struct chunk_ref *a = &g_sort_trace->chunks[*(const size_t *)x];
	const struct chunk_ref *b = &g_sort_trace->chunks[*(const size_t *)y];
	if (a->thread != b->thread)
		return a->thread < b->thread ? -1 : 1;
	if (a->index != b->index)
		return a->index < b->index ? -1 : 1;
	return a->offset < b->offset ? -1 : a->offset > b->offset;
}

/* Format 2 named a thread by its OS id, which the kernel reuses: in file
 * order, one thread's chunks are claimed one after the other (growing
 * offsets), and a later thread with the same id starts again at index 0,
 * which begins a chain of its own. (By index, the two threads' chunks
 * interleaved into wrong chains: frees before their allocations.) */
static int by_os_thread(const void *x, const void *y)
{
	const struct chunk_ref *a = &g_sort_trace->chunks[*(const size_t *)x];
	const struct chunk_ref *b = &g_sort_trace->chunks[*(const size_t *)y];
	if (a->thread != b->thread)
		return a->thread < b->thread ? -1 : 1;
	return a->offset < b->offset ? -1 : a->offset > b->offset;
}

static void *producer(void *arg);

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
		qsort(m->chain, n, sizeof(*m->chain), t->hdr.version >= 3 ? by_thread : by_os_thread);
	/* a chain: one thread's chunks numbered 0, 1, 2, ... without a gap; a
	 * reused thread id (format 2) or a damaged index starts a new chain */
	m->cursors = xcalloc(n + 1, sizeof(*m->cursors));
	m->chain_end = xcalloc(n + 1, sizeof(*m->chain_end));
	m->chain_at = xcalloc(n + 1, sizeof(*m->chain_at));
	m->heap = xcalloc(n + 1, sizeof(*m->heap));
	size_t ncur = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		while (j < n && t->chunks[m->chain[j]].thread == t->chunks[m->chain[i]].thread &&
		       t->chunks[m->chain[j]].index == t->chunks[m->chain[j - 1]].index + 1)
			j++;
		m->chain_at[ncur] = i;
		m->chain_end[ncur] = j;
		ncur++;
		i = j;
	}
	for (size_t k = 0; k < ncur; k++) {
		struct cursor *c = &m->cursors[k];
		cursor_init_events(c, t, m->chain[m->chain_at[k]]);
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

/* A batch that goes to the other CPU is written around the cache: a plain
 * store first has to take the line back from the replay's cache, which cost
 * more than decoding the event. */
static void put_stream(struct hw_event *dst, const struct hw_event *src)
{
#ifdef __SSE2__
	_Static_assert(sizeof(struct hw_event) == 32, "two 16-byte streaming stores");
	__m128i lo, hi;
	memcpy(&lo, src, 16);
	memcpy(&hi, (const char *)src + 16, 16);
	_mm_stream_si128((__m128i *)dst, lo);
	_mm_stream_si128((__m128i *)dst + 1, hi);
#else
	*dst = *src;
#endif
}

static void emit(struct merge *m, struct batch *b, size_t *n, const struct hw_event *e)
{
	if (m->threaded)
		put_stream(&b->ev[(*n)++], e);
	else
		b->ev[(*n)++] = *e;
}

/* k events at e (not in b) */
static void emit_run(struct merge *m, struct batch *b, size_t *n, const struct hw_event *e, size_t k)
{
	struct hw_event *d = b->ev + *n;
	if (m->threaded)
		for (size_t i = 0; i < k; i++)
			put_stream(&d[i], &e[i]);
	else
		memcpy(d, e, k * sizeof(*e));
	*n += k;
}

static void tell_time(struct merge *m, struct batch *b, size_t *n, uint64_t time_ns)
{
	if (time_ns != m->out_time || !m->told) {
		struct hw_event e = {.op = EV_TIME, .addr = time_ns};
		emit(m, b, n, &e);
		m->out_time = time_ns;
	}
}

/* Decodes up to BATCH events (and the time and thread changes between them)
 * into b. */
static void fill(struct merge *m, struct batch *b)
{
	size_t n = 0;
	struct hw_event run[RUN];
	while (n + 3 <= BATCH && m->n) {
		struct cursor *c = m->heap[0];
		if (c->thread != m->out_thread || !m->told) {
			struct hw_event e = {.op = EV_THREAD, .addr = c->thread};
			emit(m, b, &n, &e);
			m->out_thread = c->thread;
		}
		tell_time(m, b, &n, c->ev_time);
		m->told = true;
		emit(m, b, &n, &c->ev[c->at]);
		if (++c->at == c->nev && n + 3 < BATCH) {
			/* the records after it that come before every other
			 * cursor's next event go straight out */
			uint64_t limit = UINT64_MAX;
			for (size_t i = 1; i <= 2 && i < m->n; i++)
				if (m->heap[i]->ev[m->heap[i]->at].seq < limit)
					limit = m->heap[i]->ev[m->heap[i]->at].seq;
			size_t room = BATCH - 3 - n;
			/* a column chunk's run: from where it was decoded */
			const struct hw_event *from;
			size_t k = cursor_take_run(c, room, limit, &from);
			if (!from) {
				k = cursor_decode_run(c, run, room < RUN ? room : RUN, limit);
				from = run;
			}
			if (k) {
				tell_time(m, b, &n, c->time_ns);
				emit_run(m, b, &n, from, k);
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
	b->n = n;
}

/* The ring's hand-over: the side that finds the ring full (the decoding
 * thread) or empty (the replay) sleeps on the condition variable until the
 * other has freed a quarter of it or published one batch, or is done or
 * told to stop. A full ring is the replay's reserve for the bursts of
 * decoding (a group inflated, a column chunk decoded whole): the decoding
 * thread keeps it nearly full and sleeps through a quarter of it with one
 * wake-up. An empty ring is time the replay loses: it starts on the first
 * batch published. (Waiting for half a ring cost the replay the first
 * eight batches at the start and after every stretch where the decoding
 * was the slower side: c_large_buffers' compressed summary, replay idle
 * 2.1 ms before its first batch on the raw trace, 4.4-7.2 ms on the
 * compressed one; 0.3 and 2.6 ms now. Before that, each side spun up to
 * 2000 pauses and then slept until the next single batch: the faster side
 * spun at nearly every batch, CPU that a loaded host takes from the slower
 * one.) sleepers is raised before the last look and read after every
 * publish, and what a sleeper waits for only becomes true by the other
 * side's publish (or stop), so a wake-up cannot be lost. */
static size_t load(const size_t *x)
{
	return __atomic_load_n(x, __ATOMIC_ACQUIRE);
}

static bool room_or_stop(const struct merge *m)
{
	return load(&m->produced) - load(&m->consumed) <= RING - RING / 4 ||
	       __atomic_load_n(&m->stop, __ATOMIC_ACQUIRE);
}

static bool one_or_done(const struct merge *m)
{
	return load(&m->produced) != load(&m->consumed) ||
	       __atomic_load_n(&m->done, __ATOMIC_ACQUIRE);
}

static void wait_for(struct merge *m, bool (*ready)(const struct merge *))
{
	pthread_mutex_lock(&m->lock);
	__atomic_add_fetch(&m->sleepers, 1, __ATOMIC_SEQ_CST);
	while (!ready(m))
		pthread_cond_wait(&m->cond, &m->lock);
	__atomic_sub_fetch(&m->sleepers, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&m->lock);
}

/* Counts a batch filled or released, and wakes the other side if what it
 * waits for (woken) now holds. */
static void publish(struct merge *m, size_t *counter, bool (*woken)(const struct merge *))
{
	__atomic_store_n(counter, *counter + 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&m->sleepers, __ATOMIC_SEQ_CST) && woken(m)) {
		pthread_mutex_lock(&m->lock);
		pthread_cond_broadcast(&m->cond);
		pthread_mutex_unlock(&m->lock);
	}
}

static void *producer(void *arg)
{
	struct merge *m = arg;
	for (;;) {
		if (m->produced - load(&m->consumed) == RING)
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
		publish(m, &m->produced, one_or_done);
		if (!b->n)
			break;
	}
	return NULL;
}

static void follow_rebuild_heap(struct merge *m)
{
	m->n = 0;
	for (size_t k = 0; k < m->ncur; k++)
		if (!m->chain_end[k])
			m->heap[m->n++] = &m->cursors[k];
	for (size_t i = m->n / 2; i-- > 0;)
		sift_down(m, i);
}

/* Takes in what the trace's last refresh found: cursors point into
 * t->chunks again (it may have moved), a waiting cursor goes on when its
 * chunk grew or its thread's next chunk came, and a thread seen for the
 * first time gets a cursor from its chunk 0 (or its first chunk found). */
void merge_refresh(struct merge *m)
{
	if (!m->follow)
		return;
	const struct trace *t = m->t;
	for (size_t k = 0; k < m->ncur; k++)
		m->cursors[k].chunk = &t->chunks[m->chain_at[k]];
	/* a chunk with no cursor that no chunk before it leads to: a new thread */
	bool *led = xcalloc(t->nchunks + 1, sizeof(bool));
	for (size_t i = 0; i < t->nchunks; i++) {
		size_t nx = trace_next_chunk(t, i);
		if (nx != SIZE_MAX)
			led[nx] = true;
	}
	for (size_t k = 0; k < m->ncur; k++)
		led[m->chain_at[k]] = true;
	for (size_t i = m->seen_chunks; i < t->nchunks; i++) {
		if (led[i])
			continue;
		if (m->ncur == m->curcap) {
			size_t cap = m->curcap * 2;
			m->cursors = xrealloc(m->cursors, (cap + 1) * sizeof(*m->cursors));
			memset(m->cursors + m->curcap + 1, 0, (cap - m->curcap) * sizeof(*m->cursors));
			m->chain_at = xrealloc(m->chain_at, (cap + 1) * sizeof(*m->chain_at));
			m->chain_end = xrealloc(m->chain_end, (cap + 1) * sizeof(*m->chain_end));
			m->heap = xrealloc(m->heap, (cap + 1) * sizeof(*m->heap));
			m->curcap = cap;
		}
		size_t k = m->ncur++;
		memset(&m->cursors[k], 0, sizeof(m->cursors[k]));
		m->chain_at[k] = i;
		m->chain_end[k] = 1; /* advanced below */
		cursor_init_events(&m->cursors[k], t, i);
		m->cursors[k].nev = 0;
		m->cursors[k].at = 0;
	}
	free(led);
	m->seen_chunks = t->nchunks;
	for (size_t k = 0; k < m->ncur; k++) {
		struct cursor *c = &m->cursors[k];
		if (!m->chain_end[k])
			continue;
		m->chain_end[k] = 0;
		if (!advance(m, c))
			m->chain_end[k] = 1;
	}
	follow_rebuild_heap(m);
}

struct merge *merge_new_follow(const struct trace *t, merge_def_fn def, void *ctx)
{
	struct merge *m = xcalloc(1, sizeof(*m));
	m->def = def;
	m->ctx = ctx;
	m->t = t;
	m->follow = true;
	m->curcap = 16;
	m->cursors = xcalloc(m->curcap + 1, sizeof(*m->cursors));
	m->chain_at = xcalloc(m->curcap + 1, sizeof(*m->chain_at));
	m->chain_end = xcalloc(m->curcap + 1, sizeof(*m->chain_end));
	m->heap = xcalloc(m->curcap + 1, sizeof(*m->heap));
	m->chain = xcalloc(1, sizeof(*m->chain));
	m->ring = xcalloc(1, sizeof(*m->ring));
	merge_refresh(m);
	return m;
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
		publish(m, &m->consumed, room_or_stop);
	}
	if (m->consumed == load(&m->produced))
		wait_for(m, one_or_done);
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
	for (size_t i = 0; m->cursors[i].trace; i++) /* cursors: n + 1, zeroed */
		cursor_release(&m->cursors[i]);
	free(m->ring);
	free(m->cursors);
	free(m->chain);
	free(m->chain_end);
	free(m->chain_at);
	free(m->heap);
	free(m);
}
