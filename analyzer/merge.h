/* K-way merge (analyzer, second stage): yields the events of every chunk in
 * global sequence order, in batches of compact records. Definitions (stack
 * nodes, modules, RSS samples) are handed to a callback as the cursors pass
 * them; they are immutable or carry their own time, so their position does
 * not matter. With two or more CPUs and a trace of more than one chunk the
 * decoding runs on a thread of its own, a few batches ahead of the replay:
 * the callback and the stage then run on that thread and must touch only
 * what the consumer leaves alone until merge_free. */
#ifndef HW_ANALYZER_MERGE_H
#define HW_ANALYZER_MERGE_H

#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "reader.h"

struct merge;

/* Where a stage writes the events of a batch. */
struct merge_out {
	struct hw_event *ev;
	size_t n, cap;
	bool threaded; /* the batch goes to the replay on the other CPU */
};

void merge_out_grow(struct merge_out *o);

/* Appends one event. A batch for the other CPU is written around the
 * cache: a plain store would first take the line back from the replay's
 * cache, which costs more than making the event. */
static inline void merge_out_push(struct merge_out *o, const struct hw_event *e)
{
	if (o->n == o->cap)
		merge_out_grow(o);
	struct hw_event *dst = &o->ev[o->n++];
#ifdef __SSE2__
	_Static_assert(sizeof(struct hw_event) == 32, "two 16-byte streaming stores");
	if (o->threaded) {
		__m128i lo, hi;
		memcpy(&lo, e, 16);
		memcpy(&hi, (const char *)e + 16, 16);
		_mm_stream_si128((__m128i *)dst, lo);
		_mm_stream_si128((__m128i *)dst + 1, hi);
		return;
	}
#endif
	*dst = *e;
}

/* The same for an event made from its fields: made in registers, as one made
 * in memory and read back at once would wait for its stores. */
static inline void merge_out_put(struct merge_out *o, uint8_t op, uint8_t flags, uint64_t seq,
				 uint64_t addr, uint64_t size, uint32_t stack, uint8_t kind)
{
#if defined(__SSE2__) && defined(__x86_64__)
	if (o->threaded) {
		if (o->n == o->cap)
			merge_out_grow(o);
		__m128i *dst = (__m128i *)&o->ev[o->n++];
		_Static_assert(offsetof(struct hw_event, stack) == 24 && offsetof(struct hw_event, op) == 28 &&
				       offsetof(struct hw_event, kind) == 29 && offsetof(struct hw_event, flags) == 30,
			       "the second half of an event: size, then stack, op, kind, flags");
		uint64_t tail = stack | (uint64_t)op << 32 | (uint64_t)kind << 40 | (uint64_t)flags << 48;
		_mm_stream_si128(dst, _mm_set_epi64x((long long)addr, (long long)seq));
		_mm_stream_si128(dst + 1, _mm_set_epi64x((long long)tail, (long long)size));
		return;
	}
#endif
	struct hw_event e = {seq, addr, size, stack, op, kind, flags};
	merge_out_push(o, &e);
}

typedef void (*merge_def_fn)(void *ctx, const struct cursor *c, const struct hw_record *r);
/* A stage between the decoding and the replay: it gets every event in order
 * (n at a time) and writes what the replay is to see into out. It runs on
 * the decoding thread when there is one. */
typedef void (*merge_stage_fn)(void *ctx, const struct hw_event *in, size_t n, struct merge_out *out);
/* stage: NULL passes the events on as they are. */
struct merge *merge_new(const struct trace *t, merge_def_fn def, void *ctx, merge_stage_fn stage,
			void *stage_ctx);
/* The next batch of events (valid until the next call); 0 at the end. */
size_t merge_batch(struct merge *m, const struct hw_event **out);
/* Record bytes of the chunks read so far (for progress); *total: all. */
uint64_t merge_done(const struct merge *m, uint64_t *total);
/* Stops the decoding thread, if any. */
void merge_free(struct merge *m);

#endif
