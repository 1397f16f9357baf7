/* Live set of the replay (analyzer, replay stage): heap blocks in per-page
 * leaves (see live_map.h), the rest in an exact table with backward-shift
 * deletion. Emptied leaves are dropped in sweeps, so memory stays
 * proportional to the live set (the pages it occupies) no matter how long
 * the trace is. */
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
}

void live_map_free(struct live_map *m)
{
	for (size_t i = 0; i <= m->page_mask; i++)
		free(m->pages[i].leaf);
	while (m->spare) {
		struct live_leaf *next = (struct live_leaf *)(uintptr_t)m->spare->page;
		free(m->spare);
		m->spare = next;
	}
	free(m->pages);
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

/* Rebuilds the page table with room for its leaves; with sweep, emptied
 * leaves leave it (a few are kept as spares, the rest freed). */
static void pages_rebuild(struct live_map *m, size_t cap, bool sweep)
{
	struct live_page *old = m->pages;
	size_t old_cap = m->page_mask + 1;
	m->pages = xcalloc(cap, sizeof(*m->pages));
	m->page_mask = cap - 1;
	m->page_shift = (unsigned)__builtin_clzll(cap) + 1;
	m->npages = 0;
	for (size_t i = 0; i < old_cap; i++) {
		struct live_leaf *l = old[i].leaf;
		if (!l)
			continue;
		if (sweep && !l->used) {
			if (m->last == l)
				m->last = NULL;
			if (m->nspare < KEEP_SPARE) {
				l->page = (uint64_t)(uintptr_t)m->spare;
				m->spare = l;
				m->nspare++;
			} else {
				free(l);
			}
			continue;
		}
		size_t j = live_page_home(m, l->page);
		while (m->pages[j].leaf)
			j = (j + 1) & m->page_mask;
		m->pages[j] = (struct live_page){l->page, l};
		m->npages++;
	}
	if (sweep)
		m->empty_leaves = 0;
	free(old);
}

static struct live_leaf *leaf_for_put(struct live_map *m, uint64_t page)
{
	if (m->last && m->last->page == page)
		return m->last;
	size_t j = live_page_home(m, page);
	for (;; j = (j + 1) & m->page_mask) {
		struct live_page *e = &m->pages[j];
		if (!e->leaf)
			break;
		if (e->page == page)
			return m->last = e->leaf;
	}
	if ((m->npages + 1) * 2 > m->page_mask + 1) {
		/* drop the emptied leaves when they are many, else grow */
		bool sweep = m->empty_leaves * 2 >= m->npages;
		pages_rebuild(m, sweep ? m->page_mask + 1 : (m->page_mask + 1) * 2, sweep);
		j = live_page_home(m, page);
		while (m->pages[j].leaf)
			j = (j + 1) & m->page_mask;
	}
	struct live_leaf *l = m->spare;
	if (l) {
		m->spare = (struct live_leaf *)(uintptr_t)l->page;
		m->nspare--;
	} else {
		l = xcalloc(1, sizeof(*l)); /* a spare is all zero: emptied */
	}
	l->page = page;
	l->used = 0;
	m->empty_leaves++; /* until its first block, below */
	m->pages[j] = (struct live_page){page, l};
	m->npages++;
	return m->last = l;
}

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

/* Address 0 is never live (a failed allocation is not recorded). */
static bool exact_take(struct live_map *m, uint64_t addr, struct block *out)
{
	if (!m->exact || !addr)
		return false;
	size_t j = exact_home(m, addr);
	while (m->slots[j].addr != addr) {
		if (!m->slots[j].addr)
			return false;
		j = (j + 1) & m->mask;
	}
	*out = m->slots[j];
	/* backward shift: pull later members of the probe chain forward */
	size_t hole = j;
	for (size_t k = (j + 1) & m->mask; m->slots[k].addr; k = (k + 1) & m->mask) {
		size_t home = exact_home(m, m->slots[k].addr);
		if (((k - home) & m->mask) >= ((k - hole) & m->mask)) {
			m->slots[hole] = m->slots[k];
			hole = k;
		}
	}
	m->slots[hole].addr = 0;
	m->exact--;
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

bool live_map_put_slow(struct live_map *m, const struct block *b, struct block *old)
{
	if (!fits_leaf(b)) {
		bool had = live_map_take(m, b->addr, old); /* from a leaf or this table */
		if (b->addr) {
			exact_put(m, b);
			m->count++;
		}
		return had;
	}
	struct live_leaf *l = leaf_for_put(m, b->addr >> 12);
	uint64_t *s = &l->slot[(b->addr >> 4) & (LIVE_LEAF_SLOTS - 1)];
	if (*s) {
		live_slot_unpack(*s, b->addr, old);
		*s = live_slot_pack(b);
		return true;
	}
	*s = live_slot_pack(b);
	if (!l->used++)
		m->empty_leaves--;
	if (m->exact && exact_take(m, b->addr, old)) /* an older block that did not fit */
		return true;
	m->count++;
	return false;
}

bool live_map_take_slow(struct live_map *m, uint64_t addr, struct block *out)
{
	if (!exact_take(m, addr, out))
		return false;
	m->count--;
	return true;
}

bool live_map_iter(const struct live_map *m, size_t *pos, struct block *out)
{
	size_t leaves = (m->page_mask + 1) * LIVE_LEAF_SLOTS;
	while (*pos < leaves) {
		size_t i = (*pos)++;
		const struct live_leaf *l = m->pages[i / LIVE_LEAF_SLOTS].leaf;
		if (!l) {
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
	free(m->r);
	memset(m, 0, sizeof(*m));
}

/* First range whose end is above addr. */
static size_t lower(const struct range_map *m, uint64_t addr)
{
	size_t lo = 0, hi = m->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (m->r[mid].addr + m->r[mid].size <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void insert_at(struct range_map *m, size_t i, const struct block *b)
{
	HW_GROW(m->r, m->n, m->cap);
	memmove(&m->r[i + 1], &m->r[i], (m->n - i) * sizeof(*m->r));
	m->r[i] = *b;
	m->n++;
}

void range_map_cut(struct range_map *m, uint64_t addr, uint64_t len,
		   void (*cut)(void *ctx, const struct block *piece, bool whole), void *ctx)
{
	if (!len)
		return;
	uint64_t end = addr + len < addr ? UINT64_MAX : addr + len;
	size_t i = lower(m, addr);
	while (i < m->n && m->r[i].addr < end) {
		struct block *b = &m->r[i];
		uint64_t b_end = b->addr + b->size;
		uint64_t lo = b->addr > addr ? b->addr : addr;
		uint64_t hi = b_end < end ? b_end : end;
		struct block piece = *b;
		piece.addr = lo;
		piece.size = hi - lo;
		cut(ctx, &piece, lo == b->addr && hi == b_end);
		if (lo > b->addr && hi < b_end) { /* hole in the middle: split */
			struct block tail = *b;
			tail.addr = hi;
			tail.size = b_end - hi;
			b->size = lo - b->addr;
			insert_at(m, i + 1, &tail);
			return;
		}
		if (lo > b->addr) {
			b->size = lo - b->addr;
			i++;
		} else if (hi < b_end) {
			b->addr = hi;
			b->size = b_end - hi;
			i++;
		} else {
			memmove(b, b + 1, (m->n - i - 1) * sizeof(*b));
			m->n--;
		}
	}
}

void range_map_add(struct range_map *m, const struct block *b,
		   void (*cut)(void *ctx, const struct block *piece, bool whole), void *ctx)
{
	range_map_cut(m, b->addr, b->size, cut, ctx);
	insert_at(m, lower(m, b->addr), b);
}
