/* Live set of the replay (analyzer, replay stage): heap blocks in per-page
 * leaves for dense pages and an exact table with backward-shift deletion for
 * the rest (see live_map.h). Emptied and thinned-out leaves are given back
 * in sweeps, so memory stays proportional to the live blocks no matter how
 * long the trace is or how the blocks spread over pages. */
#include "live_map.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define KEEP_SPARE 64 /* emptied leaves kept for reuse after a sweep */

static bool fits_leaf(const struct block *b)
{
	return !(b->addr & 15) && b->size < UINT32_MAX && b->site < LIVE_MAX_SITE && b->kind < 8;
}

void live_map_init(struct live_map *m)
{
	memset(m, 0, sizeof(*m));
	m->page_mask = 63;
	m->page_shift = 64 - 6;
	m->pages = xcalloc(m->page_mask + 1, sizeof(*m->pages));
	m->mask = 15;
	m->shift = 64 - 4;
	m->slots = xcalloc(m->mask + 1, sizeof(*m->slots));
	m->sparse_mask = 15;
	m->sparse = xcalloc(m->sparse_mask + 1, sizeof(*m->sparse));
}

void live_map_free(struct live_map *m)
{
	for (size_t i = 0; m->pages && i <= m->page_mask; i++)
		free(m->pages[i].leaf);
	while (m->spare) {
		struct live_leaf *next = (struct live_leaf *)(uintptr_t)m->spare->page;
		free(m->spare);
		m->spare = next;
	}
	free(m->pages);
	free(m->slots);
	free(m->sparse);
	memset(m, 0, sizeof(*m));
}

/* ---- the exact table ---- */

static size_t exact_home(const struct live_map *m, uint64_t addr)
{
	return (size_t)(((addr >> 4) * 0x9e3779b97f4a7c15ull) >> m->shift);
}

static void exact_rehash(struct live_map *m, size_t cap)
{
	struct block *old = m->slots;
	size_t old_cap = m->mask + 1;
	m->slots = xcalloc(cap, sizeof(*m->slots));
	m->mask = cap - 1;
	m->shift = (unsigned)__builtin_clzll(cap) + 1;
	for (size_t i = 0; i < old_cap; i++) {
		if (!old[i].addr)
			continue;
		size_t j = exact_home(m, old[i].addr);
		while (m->slots[j].addr)
			j = (j + 1) & m->mask;
		m->slots[j] = old[i];
	}
	free(old);
}

static struct block *exact_find(struct live_map *m, uint64_t addr)
{
	if (!m->exact || !addr)
		return NULL;
	for (size_t j = exact_home(m, addr); m->slots[j].addr; j = (j + 1) & m->mask)
		if (m->slots[j].addr == addr)
			return &m->slots[j];
	return NULL;
}

/* Address 0 is never live (a failed allocation is not recorded). */
static bool exact_take(struct live_map *m, uint64_t addr, struct block *out)
{
	struct block *e = exact_find(m, addr);
	if (!e)
		return false;
	*out = *e;
	/* backward shift: pull later members of the probe chain forward */
	size_t hole = (size_t)(e - m->slots);
	for (size_t k = (hole + 1) & m->mask; m->slots[k].addr; k = (k + 1) & m->mask) {
		size_t home = exact_home(m, m->slots[k].addr);
		if (((k - home) & m->mask) >= ((k - hole) & m->mask)) {
			m->slots[hole] = m->slots[k];
			hole = k;
		}
	}
	m->slots[hole].addr = 0;
	m->exact--;
	if (m->exact * 8 < m->mask && m->mask > 1023) /* mostly empty: shrink */
		exact_rehash(m, (m->mask + 1) / 2);
	return true;
}

static void exact_put(struct live_map *m, const struct block *b)
{
	if ((m->exact + 1) * 2 > m->mask + 1) /* at most half full: short probes */
		exact_rehash(m, (m->mask + 1) * 2);
	size_t j = exact_home(m, b->addr);
	while (m->slots[j].addr)
		j = (j + 1) & m->mask;
	m->slots[j] = *b;
	m->exact++;
}

/* ---- blocks of pages without a leaf, counted per page ---- */

static size_t sparse_home(const struct live_map *m, uint64_t page)
{
	return (size_t)((page * 0x9e3779b97f4a7c15ull) >> 20) & m->sparse_mask;
}

static void sparse_rehash(struct live_map *m, size_t cap)
{
	struct live_sparse *old = m->sparse;
	size_t old_cap = m->sparse_mask + 1;
	m->sparse = xcalloc(cap, sizeof(*m->sparse));
	m->sparse_mask = cap - 1;
	for (size_t i = 0; i < old_cap; i++) {
		if (!old[i].n)
			continue;
		size_t j = sparse_home(m, old[i].page);
		while (m->sparse[j].n)
			j = (j + 1) & m->sparse_mask;
		m->sparse[j] = old[i];
	}
	free(old);
}

/* Adds delta to a page's count; returns the new count. */
static uint32_t sparse_add(struct live_map *m, uint64_t page, int delta)
{
	size_t j = sparse_home(m, page);
	while (m->sparse[j].n && m->sparse[j].page != page)
		j = (j + 1) & m->sparse_mask;
	if (!m->sparse[j].n) {
		if (delta <= 0)
			return 0; /* nothing was counted (cannot happen) */
		if ((m->nsparse + 1) * 2 > m->sparse_mask + 1) {
			sparse_rehash(m, (m->sparse_mask + 1) * 2);
			return sparse_add(m, page, delta);
		}
		m->sparse[j] = (struct live_sparse){page, (uint32_t)delta};
		m->nsparse++;
		return (uint32_t)delta;
	}
	uint32_t n = m->sparse[j].n + (uint32_t)delta;
	m->sparse[j].n = n;
	if (n)
		return n;
	/* the page's last block went: backward-shift deletion */
	size_t hole = j;
	for (size_t k = (j + 1) & m->sparse_mask; m->sparse[k].n; k = (k + 1) & m->sparse_mask) {
		size_t home = sparse_home(m, m->sparse[k].page);
		if (((k - home) & m->sparse_mask) >= ((k - hole) & m->sparse_mask)) {
			m->sparse[hole] = m->sparse[k];
			hole = k;
		}
	}
	m->sparse[hole].n = 0;
	m->nsparse--;
	if (m->nsparse * 8 < m->sparse_mask && m->sparse_mask > 1023)
		sparse_rehash(m, (m->sparse_mask + 1) / 2);
	return 0;
}

/* A block at addr came into (delta 1) or left (-1) the exact table: the
 * count of its page, in the page's leaf or among the sparse pages. */
static uint32_t exact_count(struct live_map *m, uint64_t addr, int delta)
{
	if (addr & 15)
		return 0; /* never in a slot: no put at this address looks for it */
	struct live_leaf *l = live_map_find_leaf(m, addr >> 12);
	if (l)
		return l->nexact += (uint32_t)delta;
	return sparse_add(m, addr >> 12, delta);
}

/* ---- leaves ---- */

/* Gives a leaf that is no longer in the page table back: to the spares
 * (all zero) or to the allocator. */
static void leaf_drop(struct live_map *m, struct live_leaf *l)
{
	if (m->last == l)
		m->last = NULL;
	if (m->nspare < KEEP_SPARE) {
		l->page = (uint64_t)(uintptr_t)m->spare;
		l->used = l->nexact = 0;
		m->spare = l;
		m->nspare++;
	} else {
		free(l);
	}
}

/* Moves a thin leaf's blocks to the exact table (the leaf has left the page
 * table) and drops it. */
static void leaf_demote(struct live_map *m, struct live_leaf *l)
{
	uint32_t n = l->nexact;
	for (size_t g = 0; l->used && g < LIVE_LEAF_SLOTS; g++) {
		if (!l->slot[g])
			continue;
		struct block b;
		live_slot_unpack(l->slot[g], (l->page << 12) | (uint64_t)g << 4, &b);
		l->slot[g] = 0;
		l->used--;
		exact_put(m, &b);
		n++;
	}
	if (n)
		sparse_add(m, l->page, (int)n);
	m->demotions++;
	leaf_drop(m, l);
}

/* Rebuilds the page table with room for its leaves; with sweep, emptied
 * leaves leave it (a few are kept as spares, the rest freed), and so do thin
 * ones when there are many: their blocks go back to the exact table. */
static void pages_rebuild(struct live_map *m, size_t cap, bool sweep)
{
	struct live_page *old = m->pages;
	size_t old_cap = m->page_mask + 1;
	bool thin = sweep && live_map_wasteful(m);
	m->pages = xcalloc(cap, sizeof(*m->pages));
	m->page_mask = cap - 1;
	m->page_shift = (unsigned)__builtin_clzll(cap) + 1;
	m->npages = 0;
	if (sweep)
		m->empty_leaves = 0;
	for (size_t i = 0; i < old_cap; i++) {
		struct live_leaf *l = old[i].leaf;
		if (!l)
			continue;
		if ((sweep && !l->used && !l->nexact) || (thin && l->used < LIVE_THIN)) {
			if (!l->used && !l->nexact)
				leaf_drop(m, l);
			else
				leaf_demote(m, l);
			continue;
		}
		size_t j = live_page_home(m, l->page);
		while (m->pages[j].leaf)
			j = (j + 1) & m->page_mask;
		m->pages[j] = (struct live_page){l->page, l};
		m->npages++;
		if (sweep)
			m->empty_leaves += !l->used;
	}
	free(old);
}

void live_map_sweep(struct live_map *m)
{
	pages_rebuild(m, m->page_mask + 1, true);
}

/* A new, empty leaf for a page that has none. */
static struct live_leaf *leaf_new(struct live_map *m, uint64_t page)
{
	if ((m->npages + 1) * 2 > m->page_mask + 1) {
		/* drop the emptied leaves when they are many, else grow */
		bool sweep = m->empty_leaves * 2 >= m->npages || live_map_wasteful(m);
		pages_rebuild(m, sweep ? m->page_mask + 1 : (m->page_mask + 1) * 2, sweep);
		if ((m->npages + 1) * 2 > m->page_mask + 1)
			pages_rebuild(m, (m->page_mask + 1) * 2, false);
	}
	size_t j = live_page_home(m, page);
	while (m->pages[j].leaf)
		j = (j + 1) & m->page_mask;
	struct live_leaf *l = m->spare;
	if (l) {
		m->spare = (struct live_leaf *)(uintptr_t)l->page;
		m->nspare--;
	} else {
		l = xcalloc(1, sizeof(*l)); /* a spare is all zero: emptied */
	}
	l->page = page;
	l->used = l->nexact = 0;
	m->empty_leaves++; /* until its first block */
	m->pages[j] = (struct live_page){page, l};
	m->npages++;
	return m->last = l;
}

/* A sparse page reached LIVE_PROMOTE blocks: it gets a leaf, and its blocks
 * that fit a slot move there from the exact table. */
static void promote(struct live_map *m, uint64_t page)
{
	uint32_t n = sparse_add(m, page, 0);
	if (n)
		sparse_add(m, page, -(int)n);
	struct live_leaf *l = leaf_new(m, page);
	for (size_t g = 0; g < LIVE_LEAF_SLOTS; g++) {
		uint64_t addr = (page << 12) | (uint64_t)g << 4;
		struct block *e = exact_find(m, addr);
		if (!e)
			continue;
		if (!fits_leaf(e)) {
			l->nexact++;
			continue;
		}
		struct block b;
		exact_take(m, addr, &b);
		l->slot[g] = live_slot_pack(&b);
		if (!l->used++)
			m->empty_leaves--;
	}
	m->promotions++;
}

bool live_map_put_slow(struct live_map *m, const struct block *b, struct block *old)
{
	if (!b->addr)
		return false;
	if (!fits_leaf(b)) {
		bool had = live_map_take(m, b->addr, old); /* from a leaf or this table */
		exact_put(m, b);
		exact_count(m, b->addr, 1);
		m->count++;
		return had;
	}
	uint64_t page = b->addr >> 12;
	struct live_leaf *l = live_map_find_leaf(m, page);
	if (l) {
		m->last = l;
		uint64_t *s = &l->slot[(b->addr >> 4) & (LIVE_LEAF_SLOTS - 1)];
		if (*s) {
			live_slot_unpack(*s, b->addr, old);
			*s = live_slot_pack(b);
			return true;
		}
		/* an older block at this address that did not fit */
		bool had = l->nexact && exact_take(m, b->addr, old);
		if (had)
			l->nexact--;
		else
			m->count++;
		*s = live_slot_pack(b);
		if (!l->used++)
			m->empty_leaves--;
		return had;
	}
	/* a page without a leaf: the exact table, until the page fills up */
	bool had = exact_take(m, b->addr, old);
	exact_put(m, b);
	if (had)
		return true;
	m->count++;
	if (sparse_add(m, page, 1) >= LIVE_PROMOTE)
		promote(m, page);
	return false;
}

bool live_map_take_slow(struct live_map *m, uint64_t addr, struct block *out)
{
	if (!exact_take(m, addr, out))
		return false;
	exact_count(m, addr, -1);
	m->count--;
	return true;
}

bool live_map_iter(const struct live_map *m, size_t *pos, struct block *out)
{
	size_t leaves = (m->page_mask + 1) * LIVE_LEAF_SLOTS;
	while (*pos < leaves) {
		size_t i = (*pos)++;
		const struct live_leaf *l = m->pages[i / LIVE_LEAF_SLOTS].leaf;
		if (!l || !l->used) {
			*pos = (i / LIVE_LEAF_SLOTS + 1) * LIVE_LEAF_SLOTS;
			continue;
		}
		uint64_t slot = l->slot[i % LIVE_LEAF_SLOTS];
		if (slot) {
			live_slot_unpack(slot, (l->page << 12) | (uint64_t)(i % LIVE_LEAF_SLOTS) << 4, out);
			return true;
		}
	}
	while (*pos - leaves <= m->mask) {
		const struct block *b = &m->slots[(*pos)++ - leaves];
		if (b->addr) {
			*out = *b;
			return true;
		}
	}
	return false;
}

void range_map_free(struct range_map *m)
{
	free(m->nodes);
	free(m->groups);
	memset(m, 0, sizeof(*m));
}

static uint32_t node_new(struct range_map *m, const struct block *b)
{
	uint32_t i = m->free_list;
	if (i) {
		m->free_list = m->nodes[i].left;
	} else {
		if (!m->used)
			m->used = 1; /* node 0 means none */
		HW_GROW(m->nodes, m->used, m->cap);
		i = (uint32_t)m->used++;
	}
	m->rng = m->rng * 6364136223846793005ull + 1442695040888963407ull;
	m->nodes[i] = (struct range_node){*b, 0, 0, (uint32_t)(m->rng >> 32), 0};
	return i;
}

/* Splits tree t into the nodes below key (*lo) and the rest (*hi). */
static void split(struct range_node *n, uint32_t t, uint64_t key, uint32_t *lo, uint32_t *hi)
{
	if (!t) {
		*lo = *hi = 0;
	} else if (n[t].b.addr < key) {
		split(n, n[t].right, key, &n[t].right, hi);
		*lo = t;
	} else {
		split(n, n[t].left, key, lo, &n[t].left);
		*hi = t;
	}
}

/* Joins two trees, every key of a below every key of b. */
static uint32_t join(struct range_node *n, uint32_t a, uint32_t b)
{
	if (!a || !b)
		return a ? a : b;
	if (n[a].prio > n[b].prio) {
		n[a].right = join(n, n[a].right, b);
		return a;
	}
	n[b].left = join(n, a, n[b].left);
	return b;
}

static uint32_t insert(struct range_map *m, const struct block *b)
{
	uint32_t x = node_new(m, b), lo, hi;
	split(m->nodes, m->root, b->addr, &lo, &hi);
	m->root = join(m->nodes, join(m->nodes, lo, x), hi);
	m->n++;
	return x;
}

static void erase(struct range_map *m, uint64_t addr)
{
	uint32_t lo, mid, hi;
	split(m->nodes, m->root, addr, &lo, &hi);
	split(m->nodes, hi, addr + 1, &mid, &hi);
	if (mid) {
		m->nodes[mid].left = m->free_list;
		m->free_list = mid;
		m->n--;
	}
	m->root = join(m->nodes, lo, hi);
}

/* The node with the highest start at or below addr, or 0. */
static uint32_t floor_node(const struct range_map *m, uint64_t addr)
{
	uint32_t best = 0;
	for (uint32_t t = m->root; t;) {
		if (m->nodes[t].b.addr <= addr) {
			best = t;
			t = m->nodes[t].right;
		} else {
			t = m->nodes[t].left;
		}
	}
	return best;
}

/* The node with the lowest start above addr (or at it, unless above). */
static uint32_t next_node(const struct range_map *m, uint64_t addr, bool above)
{
	uint32_t best = 0;
	for (uint32_t t = m->root; t;) {
		uint64_t k = m->nodes[t].b.addr;
		if (k > addr || (!above && k == addr)) {
			best = t;
			t = m->nodes[t].left;
		} else {
			t = m->nodes[t].right;
		}
	}
	return best;
}

bool range_map_find(const struct range_map *m, uint64_t addr, struct block *out)
{
	uint32_t t = floor_node(m, addr);
	if (!t || addr - m->nodes[t].b.addr >= m->nodes[t].b.size)
		return false;
	*out = m->nodes[t].b;
	return true;
}

bool range_map_next(const struct range_map *m, uint64_t addr, bool above, struct block *out)
{
	uint32_t t = next_node(m, addr, above);
	if (t)
		*out = m->nodes[t].b;
	return t != 0;
}

void range_map_cut(struct range_map *m, uint64_t addr, uint64_t len,
		   void (*cut)(void *ctx, const struct block *piece, bool whole), void *ctx)
{
	if (!len || !m->n)
		return;
	uint64_t end = addr + len < addr ? UINT64_MAX : addr + len;
	uint32_t i = floor_node(m, addr);
	if (!i || m->nodes[i].b.addr + m->nodes[i].b.size <= addr)
		i = next_node(m, addr, true);
	while (i && m->nodes[i].b.addr < end) {
		struct block *b = &m->nodes[i].b;
		uint64_t b_end = b->addr + b->size;
		uint64_t lo = b->addr > addr ? b->addr : addr;
		uint64_t hi = b_end < end ? b_end : end;
		struct block piece = *b;
		piece.addr = lo;
		piece.size = hi - lo;
		bool gone = lo == b->addr && hi == b_end;
		uint32_t g = m->nodes[i].group;
		/* whole: the last piece of the range goes */
		cut(ctx, &piece, gone && (!g || m->groups[g] == 1));
		if (gone && g)
			m->groups[g]--;
		if (lo > b->addr && hi < b_end) { /* hole in the middle: split */
			struct block tail = *b;
			tail.addr = hi;
			tail.size = b_end - hi;
			b->size = lo - b->addr;
			if (!g) { /* the range's pieces counted from here on */
				if (!m->ngroups)
					m->ngroups = 1; /* group 0 means none */
				HW_GROW(m->groups, m->ngroups, m->groups_cap);
				g = (uint32_t)m->ngroups++;
				m->groups[g] = 1;
				m->nodes[i].group = g;
			}
			m->groups[g]++;
			uint32_t t = insert(m, &tail); /* may move m->nodes */
			m->nodes[t].group = g;
			return;
		}
		uint32_t next = next_node(m, b->addr, true);
		if (lo > b->addr) {
			b->size = lo - b->addr;
		} else if (hi < b_end) {
			/* the front goes: the start moves up, still below the next
			 * range, so the node keeps its place in the tree */
			b->addr = hi;
			b->size = b_end - hi;
		} else {
			erase(m, b->addr);
		}
		i = next;
	}
}

void range_map_add(struct range_map *m, const struct block *b,
		   void (*cut)(void *ctx, const struct block *piece, bool whole), void *ctx)
{
	/* ranges are never empty and never wrap around: their starts are then
	 * distinct keys */
	if (!b->size || b->addr + b->size < b->addr)
		return;
	range_map_cut(m, b->addr, b->size, cut, ctx);
	insert(m, b);
}
