/* Stack table (analyzer, replay stage): raw ids from the trace, and the
 * canonical tree built from them once all definitions are read. */
#include "stack_table.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

void stack_table_init(struct stack_table *st)
{
	memset(st, 0, sizeof(*st));
	st->index_mask = 1023;
	st->index = xcalloc(st->index_mask + 1, sizeof(*st->index));
}

void stack_table_free(struct stack_table *st)
{
	free(st->nodes);
	free(st->index);
	free(st->cnodes);
	memset(st, 0, sizeof(*st));
}

static void index_put(uint32_t *index, size_t mask, const struct node *nodes, uint32_t i)
{
	size_t j = hw_hash32(nodes[i].raw_id) & mask;
	while (index[j])
		j = (j + 1) & mask;
	index[j] = i + 1;
}

uint32_t stack_table_find(const struct stack_table *st, uint32_t raw_id)
{
	size_t j = hw_hash32(raw_id) & st->index_mask;
	while (st->index[j]) {
		uint32_t i = st->index[j] - 1;
		if (st->nodes[i].raw_id == raw_id)
			return i;
		j = (j + 1) & st->index_mask;
	}
	return HW_NO_NODE;
}

uint32_t stack_table_add(struct stack_table *st, uint32_t raw_id, uint32_t parent_raw,
			 uint8_t frame_kind, uint64_t frame, uint64_t def_seq)
{
	if (stack_table_find(st, raw_id) != HW_NO_NODE)
		return HW_NO_NODE;
	HW_GROW(st->nodes, st->n, st->cap);
	st->nodes[st->n] = (struct node){raw_id, parent_raw, frame, def_seq, frame_kind, HW_NO_NODE,
					 0, 0};
	if ((st->n + 1) * 2 > st->index_mask + 1) {
		size_t mask = st->index_mask * 2 + 1;
		uint32_t *idx = xcalloc(mask + 1, sizeof(*idx));
		for (uint32_t i = 0; i < st->n; i++)
			index_put(idx, mask, st->nodes, i);
		free(st->index);
		st->index = idx;
		st->index_mask = mask;
	}
	index_put(st->index, st->index_mask, st->nodes, (uint32_t)st->n);
	return (uint32_t)st->n++;
}

struct ckey_table {
	uint32_t *slots; /* cnode index + 1 */
	size_t mask;
};

static size_t ckey_hash(uint32_t parent, uint8_t kind, uint32_t mod, uint64_t key)
{
	uint64_t h = key * 0x9e3779b97f4a7c15ull ^
		     ((uint64_t)parent << 8 | kind) * 0xc2b2ae3d27d4eb4full ^ (uint64_t)mod << 40;
	return (size_t)(h ^ (h >> 31));
}

static uint32_t cintern(struct stack_table *st, struct ckey_table *ct, uint32_t parent,
			const struct node *n)
{
	uint64_t key = n->mod ? n->key : n->frame;
	size_t j = ckey_hash(parent, n->frame_kind, n->mod, key) & ct->mask;
	while (ct->slots[j]) {
		struct cnode *c = &st->cnodes[ct->slots[j] - 1];
		if (c->parent == parent && c->frame_kind == n->frame_kind && c->mod == n->mod &&
		    c->key == key)
			return ct->slots[j] - 1;
		j = (j + 1) & ct->mask;
	}
	HW_GROW(st->cnodes, st->ncnodes, st->ccap);
	uint32_t depth = parent == HW_NO_NODE ? 1 : st->cnodes[parent].depth + 1;
	st->cnodes[st->ncnodes] = (struct cnode){parent, n->frame_kind, depth, n->mod, n->frame, key};
	ct->slots[j] = (uint32_t)++st->ncnodes;
	return (uint32_t)st->ncnodes - 1;
}

void stack_table_canonicalize(struct stack_table *st)
{
	struct ckey_table ct;
	size_t cap = 1024;
	while (cap < st->n * 2 + 2)
		cap *= 2;
	ct.mask = cap - 1;
	ct.slots = xcalloc(cap, sizeof(*ct.slots));
	uint32_t *path = NULL;
	size_t pcap = 0;
	const uint32_t VISITING = HW_NO_NODE - 1;
	for (size_t i = 0; i < st->n; i++) {
		if (st->nodes[i].canon != HW_NO_NODE)
			continue;
		/* Walk up to a node already done (or the root), then come back down. */
		size_t np = 0;
		uint32_t cur = (uint32_t)i;
		uint32_t parent_canon = HW_NO_NODE;
		while (cur != HW_NO_NODE) {
			struct node *n = &st->nodes[cur];
			if (n->canon == VISITING) { /* a cycle: cut it here */
				parent_canon = HW_NO_NODE;
				break;
			}
			if (n->canon != HW_NO_NODE) {
				parent_canon = n->canon;
				break;
			}
			n->canon = VISITING;
			HW_GROW(path, np, pcap);
			path[np++] = cur;
			cur = n->parent_raw ? stack_table_find(st, n->parent_raw) : HW_NO_NODE;
		}
		while (np) {
			struct node *n = &st->nodes[path[--np]];
			parent_canon = cintern(st, &ct, parent_canon, n);
			n->canon = parent_canon;
		}
	}
	free(path);
	free(ct.slots);
}

uint32_t stack_table_canon(const struct stack_table *st, uint32_t raw_id)
{
	if (!raw_id)
		return HW_NO_NODE;
	uint32_t i = stack_table_find(st, raw_id);
	return i == HW_NO_NODE ? HW_NO_NODE : st->nodes[i].canon;
}
