/* Live set of the replay (analyzer, replay stage): open addressing with
 * backward-shift deletion, so memory stays proportional to the live set no
 * matter how long the trace is. */
#include "live_map.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Keeps neighbours neighbours: inside one 16 MiB region the slot follows the
 * address (16-byte granules), and each region starts at a scrambled offset.
 * Allocators hand out and take back nearby addresses, so consecutive events
 * touch the same cache lines instead of one random line each. */


void live_map_init(struct live_map *m)
{
	memset(m, 0, sizeof(*m));
	m->mask = 1023;
	m->shift = 64 - 10;
	m->slots = xcalloc(m->mask + 1, sizeof(*m->slots));
}

void live_map_free(struct live_map *m)
{
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

static void rehash(struct live_map *m, size_t cap)
{
	struct block *old = m->slots;
	size_t old_cap = m->mask + 1;
	m->slots = xcalloc(cap, sizeof(*m->slots));
	m->mask = cap - 1;
	m->shift = (unsigned)__builtin_clzll(cap) + 1;
	for (size_t i = 0; i < old_cap; i++) {
		if (!old[i].addr)
			continue;
		size_t j = live_map_slot(m, old[i].addr);
		while (m->slots[j].addr)
			j = (j + 1) & m->mask;
		m->slots[j] = old[i];
	}
	free(old);
}

bool live_map_put(struct live_map *m, const struct block *b, struct block *old)
{
	if ((m->count + 1) * 2 > m->mask + 1) /* at most half full: short probes */
		rehash(m, (m->mask + 1) * 2);
	size_t j = live_map_slot(m, b->addr);
	while (m->slots[j].addr) {
		if (m->slots[j].addr == b->addr) {
			*old = m->slots[j];
			m->slots[j] = *b;
			return true;
		}
		j = (j + 1) & m->mask;
	}
	m->slots[j] = *b;
	m->count++;
	return false;
}

bool live_map_take(struct live_map *m, uint64_t addr, struct block *out)
{
	size_t j = live_map_slot(m, addr);
	while (m->slots[j].addr != addr) {
		if (!m->slots[j].addr)
			return false;
		j = (j + 1) & m->mask;
	}
	*out = m->slots[j];
	/* backward shift: pull later members of the probe chain forward */
	size_t hole = j;
	for (size_t k = (j + 1) & m->mask; m->slots[k].addr; k = (k + 1) & m->mask) {
		size_t home = live_map_slot(m, m->slots[k].addr);
		if (((k - home) & m->mask) >= ((k - hole) & m->mask)) {
			m->slots[hole] = m->slots[k];
			hole = k;
		}
	}
	m->slots[hole].addr = 0;
	m->count--;
	return true;
}

const struct block *live_map_iter(const struct live_map *m, size_t *pos)
{
	while (*pos <= m->mask) {
		const struct block *b = &m->slots[(*pos)++];
		if (b->addr)
			return b;
	}
	return NULL;
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
