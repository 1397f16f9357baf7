/* Python code objects and their line tables (analyzer, symbolize stage). The
 * 3.11 location table is a list of entries, each covering 1-8 code units:
 *   byte 0: 1 | code:4 | (units - 1):3
 *   code 15: no location; 14: long form (signed varint line delta, then end
 *   line, column, end column varints); 13: line delta only; 10-12: line
 *   delta code-10, then 2 column bytes; 0-9: same line, 1 column byte.
 * Varints here are 6 bits a byte, bit 6 = more (Objects/locations.md). */
#include "pycode.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static size_t hash32(uint32_t v)
{
	uint64_t h = v * 0x9e3779b97f4a7c15ull;
	return (size_t)(h ^ (h >> 32));
}

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
	size_t j = hash32(id) & t->mask;
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
	size_t j = hash32(codes[i].id) & mask;
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
