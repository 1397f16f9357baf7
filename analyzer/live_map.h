/* The live set during replay (analyzer, replay stage): address -> block for
 * the malloc family and Python domains (exact addresses), and a sorted range
 * list for mappings (munmap may cut a mapping into pieces). */
#ifndef HW_ANALYZER_LIVE_MAP_H
#define HW_ANALYZER_LIVE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct block {
	uint64_t addr; /* 0 = empty slot */
	uint64_t size;
	uint32_t stack;
	uint8_t kind;
	uint8_t counted; /* allocated inside the analysed window */
};

struct live_map {
	struct block *slots;
	size_t mask, count;
	unsigned shift; /* Fibonacci hashing: the slot is the product's top bits */
};

/* Home slot of an address: Fibonacci hashing (the product's top bits). */
static inline size_t live_map_slot(const struct live_map *m, uint64_t addr)
{
	return (size_t)(((addr >> 4) * 0x9e3779b97f4a7c15ull) >> m->shift);
}

/* Starts loading addr's slot into the cache: the replay calls it a few events
 * ahead, so the table's cache misses overlap instead of adding up. */
static inline void live_map_prefetch(const struct live_map *m, uint64_t addr)
{
	__builtin_prefetch(&m->slots[live_map_slot(m, addr)], 1);
}

void live_map_init(struct live_map *m);
void live_map_free(struct live_map *m);
/* Inserts; when addr is already live, *old receives the block it replaces and
 * true is returned. */
bool live_map_put(struct live_map *m, const struct block *b, struct block *old);
/* Removes addr; returns false when it was not live. */
bool live_map_take(struct live_map *m, uint64_t addr, struct block *out);

/* Iterates: *pos starts at 0; returns NULL at the end. */
const struct block *live_map_iter(const struct live_map *m, size_t *pos);

struct range_map {
	struct block *r; /* sorted by addr, not overlapping; size = length */
	size_t n, cap;
};

void range_map_free(struct range_map *m);
/* Removes [addr, addr+len) from every range, calling cut(ctx, piece) for each
 * removed piece (with the original stack and kind). */
void range_map_cut(struct range_map *m, uint64_t addr, uint64_t len,
		   void (*cut)(void *ctx, const struct block *piece, bool whole), void *ctx);
/* Adds a range (after cutting whatever overlapped it). */
void range_map_add(struct range_map *m, const struct block *b,
		   void (*cut)(void *ctx, const struct block *piece, bool whole), void *ctx);

#endif
