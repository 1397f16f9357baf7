/* Stack nodes of a trace (analyzer, replay stage). The shim interns stacks per
 * thread, so the same (parent, frame) may come with several ids; at the end
 * every node gets a canonical id shared by all equal paths. */
#ifndef HW_ANALYZER_STACK_TABLE_H
#define HW_ANALYZER_STACK_TABLE_H

#include <stddef.h>
#include <stdint.h>

#define HW_NO_NODE UINT32_MAX

struct node {
	uint32_t raw_id;
	uint32_t parent_raw;
	uint64_t frame;
	uint64_t def_seq; /* its time: the sequence number of the event after it */
	uint8_t frame_kind;
	uint32_t canon; /* after stack_table_canonicalize */
	/* a native frame's module file (index + 1, 0 = none) and its offset in
	 * it (set before canonicalization: equal frames of one library are one
	 * node wherever it was loaded, and frames of different libraries loaded
	 * at one address in turn are not) */
	uint32_t mod;
	uint64_t key; /* the offset (with a module) */
};

/* A canonical node's parent always has a lower index than the node. */
struct cnode {
	uint32_t parent; /* canonical index, HW_NO_NODE at the root */
	uint8_t frame_kind;
	uint32_t depth;
	uint32_t mod; /* as in struct node */
	uint64_t frame; /* the frame of the first node it stands for */
	uint64_t key; /* the offset in mod, else the frame */
};

struct stack_table {
	struct node *nodes;
	size_t n, cap;
	uint32_t *index; /* open addressing: raw id -> node index + 1 */
	size_t index_mask;
	struct cnode *cnodes;
	size_t ncnodes, ccap;
};

void stack_table_init(struct stack_table *st);
void stack_table_free(struct stack_table *st);
/* Adds a node (without a module); a second definition of the same raw id
 * is ignored. Returns the node's index, or
 * HW_NO_NODE when it was there already. */
uint32_t stack_table_add(struct stack_table *st, uint32_t raw_id, uint32_t parent_raw,
			 uint8_t frame_kind, uint64_t frame, uint64_t def_seq);
/* Node index of a raw id, or HW_NO_NODE. */
uint32_t stack_table_find(const struct stack_table *st, uint32_t raw_id);
/* Computes canonical ids (a node is its parent's and (kind, mod, key));
 * parents that were never defined end the path; cycles in hostile input are
 * cut. */
void stack_table_canonicalize(struct stack_table *st);
/* Canonical index for a raw id (HW_NO_NODE when unknown or 0). */
uint32_t stack_table_canon(const struct stack_table *st, uint32_t raw_id);

#endif
