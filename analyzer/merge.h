/* K-way merge (analyzer, second stage): yields the events of every chunk in
 * global sequence order, in batches of compact records. Definitions (stack
 * nodes, modules, RSS samples) are handed to a callback as the cursors pass
 * them; they are immutable or carry their own time, so their position does
 * not matter. With two or more CPUs and a trace of more than one chunk the
 * decoding runs on a thread of its own, one batch ahead of the replay: the
 * callback then runs on that thread and must touch only what the consumer
 * leaves alone until merge_free. */
#ifndef HW_ANALYZER_MERGE_H
#define HW_ANALYZER_MERGE_H

#include "reader.h"

struct merge;

/* A definition r read by cursor c; after the definitions of a run, once the
 * cursor has decoded the event that follows them (in c->ev[0]), the
 * callback comes once more with r NULL: that event's sequence number is
 * the time of those definitions (a stack node is made just before the
 * event that uses it, after the modules it needs were recorded). */
typedef void (*merge_def_fn)(void *ctx, const struct cursor *c, const struct hw_record *r);
struct merge *merge_new(const struct trace *t, merge_def_fn def, void *ctx);
/* A merge of a live trace (trace_open_follow), single-threaded: a batch of
 * 0 events means none was published yet; merge_refresh, after a
 * trace_refresh, takes in what was published since. */
struct merge *merge_new_follow(const struct trace *t, merge_def_fn def, void *ctx);
void merge_refresh(struct merge *m);
/* The next batch of events (valid until the next call); 0 at the end. */
size_t merge_batch(struct merge *m, const struct hw_event **out);
/* Record bytes of the chunks read so far (for progress); *total: all. */
uint64_t merge_done(const struct merge *m, uint64_t *total);
/* Stops the decoding thread, if any. */
void merge_free(struct merge *m);

#endif
