/* The live set during replay (analyzer, replay stage): address -> block for
 * the malloc family and Python domains (exact addresses), and an ordered map
 * of ranges for mappings (munmap may cut a mapping into pieces). */
#ifndef HW_ANALYZER_LIVE_MAP_H
#define HW_ANALYZER_LIVE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct block {
	uint64_t addr;
	uint64_t size;
	uint32_t site; /* the callsite's index in the analysis */
	uint8_t kind;
	uint8_t counted; /* allocated inside the analysed window */
};

/* Heap blocks are kept by address page: a leaf holds one slot per 16-byte
 * granule of a 4 KiB page, and a small hash table finds the leaf of a page.
 * An allocator hands out and takes back neighbouring addresses, so the events
 * of a replay keep landing on the same few leaves (cache lines) instead of one
 * random line of a big hash table each. A leaf costs 2 KiB, so only a page
 * that holds two blocks gets one: a page with one block (a big one, say)
 * keeps it in an exact open-addressing table, and when the leaves are many
 * and hold fewer than two blocks on average, the thin ones go back to it.
 * So the memory follows the live blocks, not the pages they touch: at most
 * 1 KiB a block beyond 32 MiB of leaves, and a leaf for every page with one
 * block left was 2 KiB a block. (A page needing 16 blocks for a leaf cost
 * 17% more instructions on a_pymalloc_heavy; two cost 1%.) Blocks that do
 * not fit a slot (an address not 16-byte aligned, a size of 4 GiB or more, a
 * site index beyond 2^27) are always in the exact table. */
#define LIVE_LEAF_SLOTS 256
#define LIVE_PROMOTE 2 /* blocks of a page in the exact table that make a leaf */
#define LIVE_THIN 2 /* fewer blocks make a leaf thin */
#define LIVE_THIN_SWEEP 16384 /* leaves (32 MiB) above which thin ones may go */

struct live_leaf {
	uint64_t page; /* address >> 12 */
	uint32_t used; /* slots in use */
	uint32_t nexact; /* blocks of the page at 16-byte aligned addresses in the exact table */
	uint64_t slot[LIVE_LEAF_SLOTS]; /* size | meta << 32; 0 = empty */
};

struct live_page {
	uint64_t page;
	struct live_leaf *leaf; /* NULL = empty entry */
};

/* Blocks at 16-byte aligned addresses in the exact table, per page without
 * a leaf. */
struct live_sparse {
	uint64_t page;
	uint32_t n; /* 0 = empty entry */
};

struct live_map {
	struct live_page *pages;
	size_t page_mask, npages, empty_leaves;
	unsigned page_shift;
	struct live_leaf *last; /* the leaf used last */
	struct live_leaf *spare; /* emptied leaves kept for reuse (chained by page) */
	size_t nspare;
	struct block *slots; /* exact table: addr 0 = empty slot */
	size_t mask, exact;
	unsigned shift;
	struct live_sparse *sparse;
	size_t sparse_mask, nsparse;
	size_t count; /* blocks in both */
	uint64_t promotions, demotions; /* leaves made and given back (tests) */
};

static inline size_t live_page_home(const struct live_map *m, uint64_t page)
{
	return (size_t)((page * 0x9e3779b97f4a7c15ull) >> m->page_shift);
}

/* The leaf of a page, or NULL. */
static inline struct live_leaf *live_map_find_leaf(const struct live_map *m, uint64_t page)
{
	for (size_t j = live_page_home(m, page);; j = (j + 1) & m->page_mask) {
		const struct live_page *e = &m->pages[j];
		if (!e->leaf || e->page == page)
			return e->leaf;
	}
}

void live_map_init(struct live_map *m);
void live_map_free(struct live_map *m);
/* What put and take (below) do beyond a leaf slot: put's general case, and
 * take from the exact table once no leaf held the address. */
bool live_map_put_slow(struct live_map *m, const struct block *b, struct block *old);
bool live_map_take_slow(struct live_map *m, uint64_t addr, struct block *out);
/* Gives back the leaves that hold fewer than LIVE_THIN blocks when the
 * leaves are many and hold fewer than that on average (most of a dense heap
 * freed, a block left on each page): their blocks go to the exact table. */
void live_map_sweep(struct live_map *m);

static inline bool live_map_wasteful(const struct live_map *m)
{
	return m->npages > LIVE_THIN_SWEEP && m->npages * LIVE_THIN > m->count;
}

#define LIVE_MAX_SITE ((1u << 27) - 1) /* site + 1 and 4 flag bits in 32 bits */

static inline uint64_t live_slot_pack(const struct block *b)
{
	uint32_t meta = (b->site + 1) << 4 | (uint32_t)(b->counted != 0) << 3 | b->kind;
	return b->size | (uint64_t)meta << 32;
}

static inline void live_slot_unpack(uint64_t slot, uint64_t addr, struct block *out)
{
	uint32_t meta = (uint32_t)(slot >> 32);
	*out = (struct block){addr, (uint32_t)slot, (meta >> 4) - 1, (uint8_t)(meta & 7),
			      (uint8_t)(meta >> 3 & 1)};
}

static inline struct live_leaf *live_map_leaf_of(struct live_map *m, uint64_t addr)
{
	uint64_t page = addr >> 12;
	struct live_leaf *l = m->last;
	if (!l || l->page != page) {
		l = live_map_find_leaf(m, page);
		if (l)
			m->last = l;
	}
	return l;
}

/* Inserts; when addr is already live, *old receives the block it replaces and
 * true is returned. */
static inline bool live_map_put(struct live_map *m, const struct block *b, struct block *old)
{
	if (!(b->addr & 15) && b->size < UINT32_MAX && b->site < LIVE_MAX_SITE && b->kind < 8) {
		struct live_leaf *l = live_map_leaf_of(m, b->addr);
		uint64_t *s = l ? &l->slot[(b->addr >> 4) & (LIVE_LEAF_SLOTS - 1)] : NULL;
		if (s && !*s && !l->nexact) { /* the common case: a new block on a known page */
			*s = live_slot_pack(b);
			if (!l->used++)
				m->empty_leaves--;
			m->count++;
			return false;
		}
	}
	/* copies, so that only they and not the caller's blocks have their
	 * address taken: those stay in registers */
	struct block nb = *b, ob = {0};
	bool had = live_map_put_slow(m, &nb, &ob);
	*old = ob;
	return had;
}

/* Removes addr; returns false when it was not live. */
static inline bool live_map_take(struct live_map *m, uint64_t addr, struct block *out)
{
	if (!(addr & 15)) {
		struct live_leaf *l = live_map_leaf_of(m, addr);
		uint64_t *s = l ? &l->slot[(addr >> 4) & (LIVE_LEAF_SLOTS - 1)] : NULL;
		if (s && *s) {
			live_slot_unpack(*s, addr, out);
			*s = 0;
			m->count--;
			if (!--l->used)
				m->empty_leaves++;
			if (__builtin_expect(live_map_wasteful(m), 0))
				live_map_sweep(m);
			return true;
		}
	}
	struct block ob = {0};
	bool had = live_map_take_slow(m, addr, &ob);
	*out = ob;
	return had;
}

/* Iterates: *pos starts at 0; returns false at the end. */
bool live_map_iter(const struct live_map *m, size_t *pos, struct block *out);

/* Mappings: ranges that never overlap, in a treap keyed by start address (a
 * search tree kept balanced by random priorities), so that adding, cutting
 * and finding a range costs O(log n) in whatever order a program maps
 * memory (a sorted array moved its whole tail at each mapping placed below
 * the others: quadratic in 200,000 small mmaps). Zero-initialized is empty. */
struct range_node {
	struct block b; /* size = length */
	uint32_t left, right; /* node indices, 0 = none */
	uint32_t prio;
	uint32_t group; /* 0, or the range's pieces' count in groups[] (split) */
};

struct range_map {
	struct range_node *nodes; /* [0] unused */
	size_t n; /* ranges */
	size_t used, cap; /* nodes[1..used) taken or on the free list */
	uint32_t root, free_list; /* free nodes are chained by left */
	uint64_t rng;
	/* a range a hole split (munmap of its middle): its pieces' count,
	 * shared by them (groups[group]; [0] unused) */
	uint32_t *groups;
	size_t ngroups, groups_cap;
};

void range_map_free(struct range_map *m);
/* Removes [addr, addr+len) from every range, calling cut(ctx, piece) for each
 * removed piece (with the original stack and kind); whole: nothing of the
 * range is left, also of the pieces a hole split it into before (one
 * mapping is one block however often it was split). */
void range_map_cut(struct range_map *m, uint64_t addr, uint64_t len,
		   void (*cut)(void *ctx, const struct block *piece, bool whole), void *ctx);
/* Adds a range (after cutting whatever overlapped it); an empty one, or one
 * past the end of the address space, is not added. */
void range_map_add(struct range_map *m, const struct block *b,
		   void (*cut)(void *ctx, const struct block *piece, bool whole), void *ctx);
/* The range that holds addr; false when none does. */
bool range_map_find(const struct range_map *m, uint64_t addr, struct block *out);
/* The range with the lowest start above addr (with above false: at or above
 * it); false when there is none. range_map_next(m, 0, false, &b) is the
 * first. */
bool range_map_next(const struct range_map *m, uint64_t addr, bool above, struct block *out);

#endif
