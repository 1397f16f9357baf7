/* K-way merge (analyzer, second stage): yields the events of every chunk in
 * global sequence order. Definitions (stack nodes, modules, RSS samples) are
 * handed to a callback as the cursors pass them; they are immutable or carry
 * their own time, so their position does not matter. */
#ifndef HW_ANALYZER_MERGE_H
#define HW_ANALYZER_MERGE_H

#include "reader.h"

struct merge;

typedef void (*merge_def_fn)(void *ctx, const struct cursor *c, const struct hw_record *r);

/* A REALLOC or REMAP comes out twice: phase 1 is its free half (at seq),
 * phase 2 its alloc half (at seq2). Other events come out once (phase 0). */
struct merge_event {
	struct hw_record *rec; /* the consumer may write rec->kind in phase 1 */
	int phase;
	uint32_t tid;
};

struct merge *merge_new(const struct trace *t, merge_def_fn def, void *ctx);
/* Returns false at the end of all chunks. */
bool merge_next(struct merge *m, struct merge_event *ev);
void merge_free(struct merge *m);

#endif
