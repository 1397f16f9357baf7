/* Per-thread interning of stack nodes (shim, stacks stage): (parent id,
 * frame) -> node id. A node is written to the trace the first time its
 * thread meets it; ids come from one global counter so they never clash. */
#ifndef HW_PRELOAD_STACK_TREE_H
#define HW_PRELOAD_STACK_TREE_H

#include <stdbool.h>
#include <stdint.h>

#include "heapwise/trace_format.h"

struct stack_tree_entry {
	uint64_t frame;
	uint32_t parent;
	uint32_t id; /* 0 = empty slot */
};

#define HW_TREE_MEMO 64
#define HW_TREE_RAW_MEMO 256

/* A Python frame's node by its raw key (see g_py_raw_walk) and parent,
 * with what interning it gave besides: exact while no code object died
 * since (deaths, g_code_deaths): the code object at a, its generation, code
 * id and instruction are then the same, and so is the node while the tree
 * is kept (the memo goes with it). */
struct stack_raw_memo {
	uint64_t a, b;
	uint32_t parent, deaths;
	uint32_t id; /* 0 = empty */
	uint32_t code, instr, gen;
};

struct stack_tree {
	struct stack_tree_entry *slots; /* mmap'd, never from the traced malloc */
	uint32_t mask; /* capacity - 1; capacity is a power of two */
	uint32_t count;
	/* the nodes met last, direct-mapped (stack_tree_intern_memo) */
	struct stack_tree_entry memo[HW_TREE_MEMO];
	/* the Python frames met last by their raw keys, direct-mapped */
	struct stack_raw_memo raw[HW_TREE_RAW_MEMO];
};

struct thread_state;

/* Returns the id of (parent, frame of frame_kind), writing a STACK record
 * when this thread has not seen it. Returns 0 when memory or the writer
 * failed. */
uint32_t stack_tree_intern(struct thread_state *ts, uint32_t parent, int frame_kind,
			   uint64_t frame);

/* stack_tree_intern for a Python frame, through a small direct-mapped memo
 * of the nodes met last: a Python stack that changed only in its innermost
 * frame (most do) finds that node in one probe of a line or two instead of
 * the table's hashing and probing. The memo holds only nodes of the table
 * (and is cleared with it), so the ids are the table's. */
static inline uint32_t stack_tree_intern_python(struct thread_state *ts, struct stack_tree *t,
						uint32_t parent, uint64_t frame)
{
	uint64_t h = (frame ^ (uint64_t)parent << 40) * 0x9e3779b97f4a7c15ull;
	struct stack_tree_entry *m = &t->memo[h >> 58]; /* 64 slots */
	if (m->frame == frame && m->parent == parent && m->id)
		return m->id;
	uint32_t id = stack_tree_intern(ts, parent, HW_FRAME_PYTHON, frame);
	if (id) {
		m->frame = frame;
		m->parent = parent;
		m->id = id;
	}
	return id;
}

static inline struct stack_raw_memo *stack_tree_raw_memo(struct stack_tree *t, uint32_t parent,
							 uint64_t b)
{
	uint64_t h = (b ^ (uint64_t)parent << 40) * 0x9e3779b97f4a7c15ull;
	return &t->raw[h >> 56];
}

/* Frees the table's memory. */
void stack_tree_release(struct stack_tree *t);

#endif
