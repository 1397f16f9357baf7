/* Python code objects and their line tables (analyzer, symbolize stage). The
 * 3.11 location table is a list of entries, each covering 1-8 code units:
 *   byte 0: 1 | code:4 | (units - 1):3
 *   code 15: no location; 14: long form (signed varint line delta, then end
 *   line delta, column + 1 and end column + 1 varints); 13: line delta
 *   only, no columns; 10-12: line delta code-10, then the column and end
 *   column bytes; 0-9: same line, one byte b: column code*8 + (b >> 4), end
 *   column that + (b & 15).
 * Varints here are 6 bits a byte, bit 6 = more (Objects/locations.md). */
#include "pycode.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

void pycode_table_init(struct pycode_table *t)
{
	memset(t, 0, sizeof(*t));
	t->mask = 255;
	t->index = xcalloc(t->mask + 1, sizeof(*t->index));
}

void pycode_table_free(struct pycode_table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->codes[i].filename);
		free(t->codes[i].qualname);
		free(t->codes[i].linetable);
	}
	free(t->codes);
	free(t->index);
	memset(t, 0, sizeof(*t));
}

const struct pycode *pycode_find(const struct pycode_table *t, uint32_t id)
{
	size_t j = hw_hash32(id) & t->mask;
	while (t->index[j]) {
		const struct pycode *c = &t->codes[t->index[j] - 1];
		if (c->id == id)
			return c;
		j = (j + 1) & t->mask;
	}
	return NULL;
}

static void index_put(uint32_t *index, size_t mask, const struct pycode *codes, uint32_t i)
{
	size_t j = hw_hash32(codes[i].id) & mask;
	while (index[j])
		j = (j + 1) & mask;
	index[j] = i + 1;
}

void pycode_add(struct pycode_table *t, uint32_t id, int first_line, const char *file,
		size_t file_len, const char *qual, size_t qual_len, const uint8_t *table,
		size_t table_len)
{
	if (pycode_find(t, id))
		return; /* hostile or repeated: the first definition wins */
	HW_GROW(t->codes, t->n, t->cap);
	struct pycode *c = &t->codes[t->n];
	c->id = id;
	c->canon = (uint32_t)t->n;
	c->first_line = first_line;
	c->filename = xstrndup(file, file_len);
	c->qualname = xstrndup(qual, qual_len);
	c->linetable = xmalloc(table_len + 1);
	memcpy(c->linetable, table, table_len);
	c->linetable_len = table_len;
	if ((t->n + 1) * 2 > t->mask + 1) {
		size_t mask = t->mask * 2 + 1;
		uint32_t *idx = xcalloc(mask + 1, sizeof(*idx));
		for (uint32_t i = 0; i < t->n; i++)
			index_put(idx, mask, t->codes, i);
		free(t->index);
		t->index = idx;
		t->mask = mask;
	}
	index_put(t->index, t->mask, t->codes, (uint32_t)t->n);
	t->n++;
}

static int cmp_content(const struct pycode *a, const struct pycode *b)
{
	int c;
	if (a->first_line != b->first_line)
		return a->first_line < b->first_line ? -1 : 1;
	if ((c = strcmp(a->filename, b->filename)) || (c = strcmp(a->qualname, b->qualname)))
		return c;
	if (a->linetable_len != b->linetable_len)
		return a->linetable_len < b->linetable_len ? -1 : 1;
	return memcmp(a->linetable, b->linetable, a->linetable_len);
}

static const struct pycode_table *g_sort_table;

static int cmp_idx(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	int c = cmp_content(&g_sort_table->codes[a], &g_sort_table->codes[b]);
	return c ? c : (a < b ? -1 : a > b);
}

void pycode_dedup(struct pycode_table *t)
{
	if (t->n < 2)
		return;
	uint32_t *order = xmalloc(t->n * sizeof(*order));
	for (uint32_t i = 0; i < t->n; i++)
		order[i] = i;
	g_sort_table = t;
	qsort(order, t->n, sizeof(*order), cmp_idx);
	for (size_t i = 1; i < t->n; i++) {
		struct pycode *prev = &t->codes[order[i - 1]], *cur = &t->codes[order[i]];
		if (!cmp_content(prev, cur))
			cur->canon = prev->canon;
	}
	free(order);
}

struct rd {
	const uint8_t *p, *end;
	bool bad;
};

static unsigned rd_byte(struct rd *r)
{
	if (r->p >= r->end) {
		r->bad = true;
		return 0;
	}
	return *r->p++;
}

static unsigned rd_varint(struct rd *r)
{
	unsigned b = rd_byte(r), v = b & 63, shift = 0;
	while ((b & 64) && !r->bad) {
		b = rd_byte(r);
		shift += 6;
		if (shift > 30) {
			r->bad = true;
			return 0;
		}
		v |= (b & 63) << shift;
	}
	return v;
}

static int rd_svarint(struct rd *r)
{
	unsigned u = rd_varint(r);
	return (u & 1) ? -(int)(u >> 1) : (int)(u >> 1);
}

int pycode_addr2line(const uint8_t *table, size_t len, int first_line, int lasti)
{
	if (lasti < 0)
		return first_line;
	struct rd r = {table, table + len, false};
	long line = first_line;
	long unit = 0;
	while (r.p < r.end) {
		unsigned b = rd_byte(&r);
		if (!(b & 0x80))
			return -1; /* not at an entry start: damaged */
		unsigned code = (b >> 3) & 15, units = (b & 7) + 1;
		long delta = 0;
		bool none = false;
		switch (code) {
		case 15:
			none = true;
			break;
		case 14:
			delta = rd_svarint(&r);
			rd_varint(&r);
			rd_varint(&r);
			rd_varint(&r);
			break;
		case 13:
			delta = rd_svarint(&r);
			break;
		case 10:
		case 11:
		case 12:
			delta = (long)code - 10;
			rd_byte(&r);
			rd_byte(&r);
			break;
		default:
			rd_byte(&r);
			break;
		}
		if (r.bad)
			return -1;
		line += delta;
		if (lasti >= unit && lasti < unit + (long)units)
			return none || line < 0 || line > 0x7fffffff ? -1 : (int)line;
		unit += units;
	}
	return -1;
}

/* One entry of a location table: code units [start, start + units). */
struct loc {
	int start, units;
	struct pycode_pos pos;
	int line; /* pycode_addr2line's: -1 without a line */
};

/* Reads the next entry at r (the line so far in *line); false at the end
 * or on damage. */
static bool next_loc(struct rd *r, long *line, int *unit, struct loc *out)
{
	if (r->p >= r->end)
		return false;
	unsigned b = rd_byte(r);
	if (!(b & 0x80))
		return false; /* not at an entry start: damaged */
	unsigned code = (b >> 3) & 15, units = (b & 7) + 1;
	long end_line = -1;
	long col = -1, end_col = -1;
	bool none = false;
	switch (code) {
	case 15:
		none = true;
		break;
	case 14:
		*line += rd_svarint(r);
		end_line = *line + (long)rd_varint(r);
		col = (long)rd_varint(r) - 1;
		end_col = (long)rd_varint(r) - 1;
		break;
	case 13:
		*line += rd_svarint(r);
		end_line = *line;
		break;
	case 10:
	case 11:
	case 12:
		*line += (long)code - 10;
		end_line = *line;
		col = (long)rd_byte(r);
		end_col = (long)rd_byte(r);
		break;
	default: {
		unsigned second = rd_byte(r);
		end_line = *line;
		col = (long)(code * 8 + (second >> 4));
		end_col = col + (long)(second & 15);
		break;
	}
	}
	if (r->bad)
		return false;
	bool line_ok = !none && *line >= 0 && *line <= 0x7fffffff && end_line >= 0 &&
		       end_line <= 0x7fffffff;
	out->start = *unit;
	out->units = (int)units;
	out->line = none || *line < 0 || *line > 0x7fffffff ? -1 : (int)*line;
	out->pos = (struct pycode_pos){line_ok ? (int)*line : -1, line_ok ? (int)end_line : -1,
				       line_ok && col >= 0 && col <= 0x7fffffff ? (int)col : -1,
				       line_ok && end_col >= 0 && end_col <= 0x7fffffff ? (int)end_col : -1};
	*unit += (int)units;
	return true;
}

bool pycode_addr2pos(const uint8_t *table, size_t len, int first_line, int lasti,
		     struct pycode_pos *out)
{
	*out = (struct pycode_pos){-1, -1, -1, -1};
	if (lasti < 0)
		return false;
	struct rd r = {table, table + len, false};
	long line = first_line;
	int unit = 0;
	struct loc e;
	while (unit <= lasti && next_loc(&r, &line, &unit, &e)) {
		if (lasti < e.start + e.units) {
			*out = e.pos;
			return true;
		}
	}
	return false;
}

struct pycode_locs {
	struct loc *e; /* NULL: not decoded yet */
	size_t n;
};

/* The entry of instruction lasti among ne entries in instruction order
 * (each starts where the one before ends), or ne. */
static size_t loc_of(const struct loc *locs, size_t ne, int lasti)
{
	size_t lo = 0, hi = ne; /* the first entry that ends after lasti */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (locs[mid].start + locs[mid].units <= lasti)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lasti >= 0 && lo < ne && lasti >= locs[lo].start ? lo : ne;
}

/* Code c's entries (at most one per byte of its table), decoded up to the
 * end or the first damaged one. */
static size_t decode_locs(const struct pycode *c, struct loc *locs)
{
	struct rd r = {c->linetable, c->linetable + c->linetable_len, false};
	long line = c->first_line;
	int unit = 0;
	size_t ne = 0;
	while (ne < c->linetable_len && next_loc(&r, &line, &unit, &locs[ne]))
		ne++;
	return ne;
}

bool pycode_cached_pos(struct pycode_cache *cache, const struct pycode_table *t,
		       const struct pycode *c, int lasti, int *line, struct pycode_pos *pos)
{
	*pos = (struct pycode_pos){-1, -1, -1, -1};
	if (lasti < 0) {
		*line = c->first_line;
		return false;
	}
	size_t k = (size_t)(c - t->codes);
	if (cache->n < t->n) {
		cache->codes = xrealloc(cache->codes, t->n * sizeof(*cache->codes));
		memset(cache->codes + cache->n, 0, (t->n - cache->n) * sizeof(*cache->codes));
		cache->n = t->n;
	}
	struct pycode_locs *l = &cache->codes[k];
	if (!l->e) { /* room for an entry a byte, then what they took */
		l->e = xmalloc((c->linetable_len + 1) * sizeof(*l->e));
		l->n = decode_locs(c, l->e);
		l->e = xrealloc(l->e, (l->n + 1) * sizeof(*l->e));
	}
	size_t e = loc_of(l->e, l->n, lasti);
	if (e == l->n) {
		*line = -1;
		return false;
	}
	*line = l->e[e].line;
	*pos = l->e[e].pos;
	return true;
}

void pycode_cache_free(struct pycode_cache *cache)
{
	for (size_t i = 0; i < cache->n; i++)
		free(cache->codes[i].e);
	free(cache->codes);
	cache->codes = NULL;
	cache->n = 0;
}

/* A position as reports show it: line and column (two expressions that
 * start at one place, a.f(x) and a.f(x).g(y), read the same). */
static uint64_t pos_key(const struct pycode_pos *p)
{
	return (uint64_t)(uint32_t)p->line << 32 | (uint32_t)p->col;
}


/* Frames grouped by code object with a counting sort (frames of a code
 * not in the table last), each code's table decoded once, the first
 * instruction of each position found with a hash table in one pass over
 * its entries, and each frame's entry by halving: linear in the frames
 * and the tables but for the halving. (Sorting the frames and each
 * table's entries by position took 11.5% of f_numpy's summary.) */
void pycode_first_positions(const struct pycode_table *t, struct pycode_frame *frames, size_t n)
{
	if (!n)
		return;
	size_t nc = t->n;
	size_t *at = xcalloc(nc + 2, sizeof(*at)); /* bucket c: at[c] .. at[c + 1] */
	for (size_t i = 0; i < n; i++)
		at[(frames[i].code < nc ? frames[i].code : nc) + 1]++;
	for (size_t c = 0; c <= nc; c++)
		at[c + 1] += at[c];
	struct pycode_frame *by = xmalloc(n * sizeof(*by));
	for (size_t i = 0; i < n; i++)
		by[at[frames[i].code < nc ? frames[i].code : nc]++] = frames[i];
	memcpy(frames, by, n * sizeof(*by));
	free(by);
	struct loc *locs = NULL;
	int *first = NULL; /* per entry: the start of the first entry with its position */
	uint64_t *keys = NULL; /* the hash table: a position, and its first start */
	int *starts = NULL;
	size_t cap = 0, hcap = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && frames[j].code == frames[i].code)
			j++;
		if (frames[i].code >= nc) {
			i = j;
			continue;
		}
		const struct pycode *c = &t->codes[frames[i].code];
		if (c->linetable_len + 1 > cap) {
			cap = c->linetable_len + 1;
			locs = xrealloc(locs, cap * sizeof(*locs));
			first = xrealloc(first, cap * sizeof(*first));
		}
		size_t ne = decode_locs(c, locs);
		size_t h = 16;
		while (h < 2 * ne)
			h *= 2;
		if (h > hcap) {
			hcap = h;
			keys = xrealloc(keys, hcap * sizeof(*keys));
			starts = xrealloc(starts, hcap * sizeof(*starts));
		}
		/* an empty slot: start INT_MIN (an entry's start is at least 0) */
		for (size_t k = 0; k < h; k++)
			starts[k] = INT_MIN;
		for (size_t k = 0; k < ne; k++) {
			uint64_t key = pos_key(&locs[k].pos);
			size_t s = (size_t)hw_mix64(key) & (h - 1);
			while (starts[s] != INT_MIN && keys[s] != key)
				s = (s + 1) & (h - 1);
			if (starts[s] == INT_MIN) {
				keys[s] = key;
				starts[s] = locs[k].start;
			}
			first[k] = starts[s];
		}
		for (size_t k = i; k < j; k++) {
			size_t e = loc_of(locs, ne, frames[k].lasti);
			if (e < ne)
				frames[k].lasti = first[e];
		}
		i = j;
	}
	free(at);
	free(locs);
	free(first);
	free(keys);
	free(starts);
}
