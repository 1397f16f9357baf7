/* Per-thread interning of stack nodes (shim, stacks stage): (parent id,
 * frame) -> node id. A node is written to the trace the first time its
 * thread meets it; ids come from one global counter so they never clash. */
#ifndef HW_PRELOAD_STACK_TREE_H
#define HW_PRELOAD_STACK_TREE_H

#include <stdbool.h>
#include <stdint.h>

struct stack_tree_entry {
	uint64_t frame;
	uint32_t parent;
	uint32_t id; /* 0 = empty slot */
};

struct stack_tree {
	struct stack_tree_entry *slots; /* mmap'd, never from the traced malloc */
	uint32_t mask; /* capacity - 1; capacity is a power of two */
	uint32_t count;
};

struct thread_state;

/* Returns the id of (parent, frame of frame_kind), writing a STACK record
 * when this thread has not seen it. Returns 0 when memory or the writer
 * failed. */
uint32_t stack_tree_intern(struct thread_state *ts, uint32_t parent, int frame_kind,
			   uint64_t frame);

/* Frees the table's memory. */
void stack_tree_release(struct stack_tree *t);

#endif
