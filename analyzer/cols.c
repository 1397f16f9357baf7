/* Column encoding of a compressed chunk's records: see cols.h and the
 * drawn layout of HW_CHUNK_COLS in heapwise/trace_format.h.
 *
 * The encoder (split) and the decoder (build) walk the same model of the
 * chunk, record by record, with the same state; the decoder trusts nothing:
 * every stream read is bounds-checked, every back reference is checked
 * against the ALLOCs seen so far, and the output never passes `used`
 * bytes. Both are linear in the chunk's bytes: per record a constant amount
 * of work (a class ring of HW_COLS_RING entries, one hash probe sequence in
 * the encoder's table, which is never more than half full). */
#include "cols.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "heapwise/varint.h"
#include "reader.h"
#include "util.h"

struct cols_class {
	uint64_t last; /* the last ALLOC of the class (0: none yet) */
	uint64_t ring[HW_COLS_RING]; /* freed blocks, the newest last */
	uint32_t n;
	uint32_t gen; /* the chunk (cols_work's gen) last and n belong to */
};

/* The encoder's address table's slot: the latest ALLOC of addr, its
 * number and its class (a byte offset into cols_work's cls, as al_cls:
 * a FREE finds the class in the slot it finds the ALLOC in, one load
 * less on the way from one record to the next); coff MAP_EMPTY: empty. */
struct cols_slot {
	uint64_t addr;
	uint32_t ord;
	uint32_t coff;
};
#define MAP_EMPTY UINT32_MAX

void cols_free(struct cols_work *w)
{
	free(w->buf);
	for (int i = 0; i < HW_COLS_ALL; i++)
		free(w->s[i]);
	free(w->al_addr);
	free(w->al_cls);
	free(w->cls);
	free(w->map);
	memset(w, 0, sizeof(*w));
}

/* Body field kinds of the records other than ALLOC, FREE and REALLOC:
 * v varint, z varint address delta (moves the running address), b byte,
 * s varint length + bytes. NULL: a tag the column encoding does not know
 * (the encoder stops there: the rest of the chunk goes as it is). STACK
 * records get columns of their own (see below). */
static const char *body_format(uint8_t tag)
{
	switch (tag) {
	case HW_REC_UNMAP: return "vzv";
	case HW_REC_REMAP: return "vvzvzvv";
	case HW_REC_MARK: return "vbs";
	case HW_REC_RETAG: return "vzv";
	case HW_REC_MODULE: return "vvvvss";
	case HW_REC_MODULE_UNLOAD: return "vvv";
	case HW_REC_CODE: return "vvsss";
	case HW_REC_PYTHON: return "vvb";
	case HW_REC_PYTHON_INFO: return "vss";
	case HW_REC_THREAD: return "vv";
	case HW_REC_TIME: return "v";
	case HW_REC_RSS: return "vv";
	case HW_REC_TRAILER: return "vvvv";
	case HW_REC_SAMPLE: return "vv";
	default: return NULL;
	}
}

/* ALLOC, FREE and REALLOC tags (of a known kind), and format 3's short
 * ALLOC_NEXT and FREE_NEXT (sequence + 1, the chunk's kind, an ALLOC_NEXT's
 * stack a delta: the model keeps the kind and the stack): 1 */
#define HEAP_TAGS                                                                         \
	[HW_REC_ALLOC_NEXT] = 1, [HW_REC_FREE_NEXT] = 1,                                  \
	[HW_REC_ALLOC... HW_REC_ALLOC + HW_KIND_COUNT - 1] = 1,                           \
	[HW_REC_FREE... HW_REC_FREE + HW_KIND_COUNT - 1] = 1,                             \
	[HW_REC_REALLOC... HW_REC_REALLOC + HW_KIND_COUNT - 1] = 1
static const uint8_t heap_tag[256] = {HEAP_TAGS};

static inline bool is_heap_tag(uint8_t t)
{
	return heap_tag[t];
}

/* The records heap_run takes: the heap's and STACK */
static const uint8_t run_tag[256] = {HEAP_TAGS, [HW_REC_STACK] = 1};

/* A heap tag's record kind (HW_REC_ALLOC, _FREE or _REALLOC) and allocator
 * kind; *next: a short form (no sequence delta; kind: the chunk's). */
static inline __attribute__((always_inline)) uint8_t heap_base(uint8_t t, uint8_t *kind,
								  bool *next)
{
	*next = t < HW_REC_ALLOC;
	if (*next)
		return t == HW_REC_ALLOC_NEXT ? HW_REC_ALLOC : HW_REC_FREE;
	*kind = t & HW_TAG_KIND_MASK;
	return t & (uint8_t)~HW_TAG_KIND_MASK;
}

/* The size class of an ALLOC: CPython's allocators hand out blocks of one
 * rounded size from one pool, so the last block of the class and the
 * blocks of the class freed last predict the next one. */
static inline uint32_t class_of(uint8_t kind, uint64_t size)
{
	uint64_t key = (size <= 1024 ? (size + 15) >> 4 : size) * 8 + kind;
	return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> (64 - HW_COLS_CLASS_BITS));
}

/* --- the model shared by both sides -------------------------------------- */

struct model {
	struct cols_work *w;
	uint64_t addr; /* the running address of the raw records */
	/* the addresses of the last FREEs (and realloc's old blocks), the
	 * newest at fring[(fpos - 1) % HW_COLS_FRING] */
	uint64_t fring[HW_COLS_FRING];
	uint32_t fpos;
	bool v2; /* a group's model: FDELTA from any of fring (FSEL) */
	uint64_t last_stack;
	uint64_t last_sid;
	uint64_t dor; /* encoder: the address deltas ORed (their common low zero bits) */
	size_t nal;
	uint8_t kind; /* of the last ALLOC, FREE or REALLOC: the _NEXT tags' */
};

/* ALLOCs past al_cap the ALLOC arrays have room for (heap_run's block) */
#define AL_SLACK 512

static bool model_init(struct model *m, struct cols_work *w, size_t used)
{
	memset(m, 0, sizeof(*m));
	m->w = w;
	m->v2 = w->v2;
	/* an ALLOC takes 4 raw bytes at least (ALLOC_NEXT), a REALLOC 7;
	 * AL_SLACK entries more: heap_run looks at the count once a block */
	size_t need = used / 4 + 2;
	if (w->al_cap < need) {
		free(w->al_addr);
		free(w->al_cls);
		w->al_addr = xmalloc((need + AL_SLACK) * sizeof(*w->al_addr));
		w->al_cls = xmalloc((need + AL_SLACK) * sizeof(*w->al_cls));
		w->al_cap = need;
	}
	/* every class starts empty with each chunk: a class of another
	 * chunk's gen is empty (class_use), so only the classes a chunk
	 * uses are reset, not the whole table (48 KiB a chunk) */
	if (!w->cls)
		w->cls = xcalloc(HW_COLS_CLASSES, sizeof(*w->cls));
	if (++w->gen == 0) { /* once in 4 billion chunks (the encoder's
			       * address table is emptied at each chunk: split) */
		memset(w->cls, 0, HW_COLS_CLASSES * sizeof(*w->cls));
		w->gen = 1;
	}
	return true;
}

/* Class ci as an ALLOC of this chunk finds it: empty if no ALLOC of the
 * chunk used it yet. */
static inline __attribute__((always_inline)) struct cols_class *
class_use(struct cols_class *cls, uint32_t gen, uint32_t ci)
{
	struct cols_class *c = &cls[ci];
	if (__builtin_expect(c->gen != gen, 0)) {
		c->gen = gen;
		c->last = 0;
		c->n = 0;
	}
	return c;
}

/* Class ci of an ALLOC of this chunk (already in use). */
static inline struct cols_class *class_get(struct model *m, uint32_t ci)
{
	return &m->w->cls[ci];
}

/* The class at byte offset off of cls (an ALLOC's al_cls: a FREE finds
 * its class with one add). */
static inline __attribute__((always_inline)) struct cols_class *class_at(struct cols_class *cls,
									  uint32_t off)
{
	return (struct cols_class *)((char *)cls + off);
}

/* An ALLOC's block at a, of class ci: remembered for FREEs and the class. */
static inline bool model_alloc(struct model *m, uint64_t a, uint32_t ci)
{
	if (m->nal >= m->w->al_cap)
		return false;
	m->w->al_addr[m->nal] = a;
	m->w->al_cls[m->nal] = ci * (uint32_t)sizeof(struct cols_class);
	m->nal++;
	class_get(m, ci)->last = a;
	return true;
}

/* A FREE of the block of ALLOC number ord (or of an unknown block: ord
 * = SIZE_MAX): its block goes back to its class's ring. */
static inline void model_free(struct model *m, uint64_t a, size_t ord)
{
	m->fring[m->fpos++ % HW_COLS_FRING] = a;
	if (ord == SIZE_MAX)
		return;
	struct cols_class *c = class_at(m->w->cls, m->w->al_cls[ord]);
	if (c->n == HW_COLS_RING) {
		for (uint32_t k = 1; k < HW_COLS_RING; k++)
			c->ring[k - 1] = c->ring[k];
		c->n--;
	}
	c->ring[c->n++] = a;
}

/* --- encoder --------------------------------------------------------------- */

static void grow(struct cols_work *w, int s, size_t need)
{
	size_t cap = w->scap[s] ? w->scap[s] : 4096;
	while (cap < need)
		cap *= 2;
	w->s[s] = xrealloc(w->s[s], cap);
	w->scap[s] = cap;
}

static inline void put_bytes(struct cols_work *w, int s, const void *p, size_t n)
{
	if (w->slen[s] + n > w->scap[s])
		grow(w, s, w->slen[s] + n);
	memcpy(w->s[s] + w->slen[s], p, n);
	w->slen[s] += n;
}

/* A varint of a raw record as the encoder takes it: only in its shortest
 * form (the form the decoder writes back); any other stops the split, and
 * the rest of the chunk goes as it is (TAIL). */
static inline __attribute__((always_inline)) bool raw_cv(const uint8_t **p, const uint8_t *end,
							 uint64_t *v)
{
	const uint8_t *q = *p;
	if (end - q >= 3) {
		if (q[0] < 0x80) {
			*v = q[0];
			*p = q + 1;
			return true;
		}
		if (q[1] < 0x80) {
			*v = (uint64_t)(q[0] & 0x7f) | (uint64_t)q[1] << 7;
			*p = q + 2;
			return q[1] != 0;
		}
		if (q[2] < 0x80) {
			*v = (uint64_t)(q[0] & 0x7f) | (uint64_t)(q[1] & 0x7f) << 7 | (uint64_t)q[2] << 14;
			*p = q + 3;
			return q[2] != 0;
		}
	}
	if (hw_get_varint(p, end, v))
		return false;
	return *p - q == 1 || (*p)[-1] != 0;
}

/* One varint, the one- to three-byte cases inline. */
static inline __attribute__((always_inline)) bool raw_v(const uint8_t **p, const uint8_t *end,
							uint64_t *v)
{
	const uint8_t *q = *p;
	if (__builtin_expect(q < end && q[0] < 0x80, 1)) { /* most fields */
		*v = q[0];
		*p = q + 1;
		return true;
	}
	if (end - q >= 3) { /* two or three bytes */
		if (q[1] < 0x80) {
			*v = (uint64_t)(q[0] & 0x7f) | (uint64_t)q[1] << 7;
			*p = q + 2;
			return true;
		}
		if (q[2] < 0x80) {
			*v = (uint64_t)(q[0] & 0x7f) | (uint64_t)(q[1] & 0x7f) << 7 | (uint64_t)q[2] << 14;
			*p = q + 3;
			return true;
		}
	}
	return !hw_get_varint(p, end, v);
}

/* The encoder's address table: address -> number of its latest ALLOC
 * (map: w->map, mask: its size - 1). It holds the chunk's ALLOC
 * addresses, w->map_n of them (emptied at each chunk: split), and is
 * never more than half full (map_grow): a probe sequence ends at an empty
 * slot after a few steps. */
static inline __attribute__((always_inline)) struct cols_slot *
map_at(struct cols_slot *map, size_t mask, uint64_t a)
{
	size_t i = (size_t)((a * 0x9E3779B97F4A7C15ull) >> 20) & mask;
	while (map[i].coff != MAP_EMPTY && map[i].addr != a)
		i = (i + 1) & mask;
	return &map[i];
}

/* The smallest table: 16 KiB. A chunk of 64 KiB holds up to 16K ALLOCs
 * but most hold a few hundred addresses or less (g_fork's: at most 115; a
 * pymalloc-heavy run's: at most 4.6K): a table sized for the worst case
 * (512 KiB) spread them over 128 pages, missing the TLB at most probes. */
#define MAP_MIN 1024u

/* A table of cap slots (a power of two, MAP_MIN at least), empty. */
static void map_new(struct cols_work *w, size_t cap)
{
	free(w->map);
	w->map = xmalloc(cap * sizeof(*w->map));
	memset(w->map, 0xff, cap * sizeof(*w->map)); /* coff MAP_EMPTY */
	w->map_cap = cap;
}

/* The table twice as large, its entries moved over: before it would be
 * more than half full. */
static __attribute__((noinline)) void map_grow(struct cols_work *w)
{
	struct cols_slot *old = w->map;
	size_t n = w->map_cap;
	w->map = NULL;
	map_new(w, 2 * n);
	for (size_t i = 0; i < n; i++)
		if (old[i].coff != MAP_EMPTY)
			*map_at(w->map, 2 * n - 1, old[i].addr) = old[i];
	free(old);
}

/* rv when ten bytes or more are left (the caller checked): no bounds check. */
static inline __attribute__((always_inline)) bool rv10(const uint8_t **p, uint64_t *out)
{
	const uint8_t *q = *p;
	if (__builtin_expect(q[0] < 0x80, 1)) {
		*out = q[0];
		*p = q + 1;
		return true;
	}
	uint64_t v = q[0] & 0x7f;
#pragma GCC unroll 9
	for (int i = 1; i < HW_VARINT_MAX; i++) {
		uint64_t b = q[i];
		v |= (b & 0x7f) << (7 * i);
		if (b < 0x80) {
			*out = v;
			*p = q + i + 1;
			/* the shortest form only; the 10th byte holds one bit */
			return b != 0 && (i < HW_VARINT_MAX - 1 || b <= 1);
		}
	}
	return false;
}

/* A varint of a raw record as the encoder takes it (raw_cv), the longer
 * forms unrolled when ten bytes are there (addresses take three to five). */
static inline __attribute__((always_inline)) bool rv(const uint8_t **p, const uint8_t *end,
						     uint64_t *out)
{
	const uint8_t *q = *p;
	if (__builtin_expect(q < end && q[0] < 0x80, 1)) {
		*out = q[0];
		*p = q + 1;
		return true;
	}
	if (end - q < HW_VARINT_MAX)
		return raw_cv(p, end, out);
	return rv10(p, out);
}

#define PUTV(o, x)                                                                        \
	do {                                                                              \
		uint64_t x_ = (x);                                                        \
		if (x_ < 0x80)                                                            \
			*o++ = (uint8_t)x_;                                               \
		else                                                                      \
			o = hw_put_varint(o, x_);                                         \
	} while (0)

/* The most bytes one record puts in one stream (two varints), and the
 * records written between two looks at the streams' room. */
#define SPLIT_ROOM (2 * HW_VARINT_MAX)
#define SPLIT_BATCH 512

/* Room for SPLIT_BATCH records in every stream but the tail. */
static void reserve(struct cols_work *w)
{
	for (int s = 0; s < HW_COLS_ALL; s++)
		if (s != HW_COLS_TAIL && w->slen[s] + SPLIT_ROOM * SPLIT_BATCH > w->scap[s])
			grow(w, s, w->slen[s] + SPLIT_ROOM * SPLIT_BATCH);
}

/* A varint at the end of stream s of w (room reserved): the streams few
 * records write to go through memory, not a register of split_heap. */
static inline __attribute__((always_inline)) void put_cold(struct cols_work *w, int s, uint64_t x)
{
	uint8_t *o = w->s[s] + w->slen[s];
	PUTV(o, x);
	w->slen[s] = (size_t)(o - w->s[s]);
}

/* split_heap's state: the model's, the pointers of the five streams most
 * records write to (the others are written through w, put_cold), and what
 * it reads from w (read once: a store through a uint8_t pointer may alias
 * anything, the loop would read them again after every one). */
struct henc {
	struct cols_work *w;
	uint8_t *oT, *oH, *oR, *oZ, *oK;
	struct cols_class *cls;
	struct cols_slot *map;
	size_t al_cap, mask, nal;
	uint64_t addr, last_stack, dor;
	uint64_t *fring;
	uint32_t fpos, gen;
	bool v2;
};

/* The block at a freed (a FREE's, a REALLOC's old one): enc_free_addr and
 * model_free. */
static inline __attribute__((always_inline)) void enc_free(struct henc *e, uint64_t a)
{
	struct cols_slot *sl = map_at(e->map, e->mask, a);
	if (__builtin_expect(sl->coff != MAP_EMPTY, 1)) {
		size_t ord = sl->ord;
		PUTV(e->oR, e->nal - ord);
		/* its block back to its class's ring */
		struct cols_class *c = class_at(e->cls, sl->coff);
		if (c->n == HW_COLS_RING) {
			for (uint32_t k = 1; k < HW_COLS_RING; k++)
				c->ring[k - 1] = c->ring[k];
			c->n--;
		}
		c->ring[c->n++] = a;
	} else {
		*e->oR++ = 0;
		/* from the nearest of the last frees (a group's model), else
		 * from the last one */
		const uint64_t *fring = e->fring;
		uint32_t fpos = e->fpos;
		uint64_t from = fring[(fpos - 1) % HW_COLS_FRING];
		if (e->v2) {
			uint8_t sel = 0;
			uint64_t best = a - from;
			best = (int64_t)best < 0 ? -best : best;
			for (uint32_t q = 1; q < HW_COLS_FRING; q++) {
				uint64_t d = a - fring[(fpos - 1 - q) % HW_COLS_FRING];
				d = (int64_t)d < 0 ? -d : d;
				if (d < best) {
					best = d;
					sel = (uint8_t)q;
				}
			}
			put_cold(e->w, HW_COLS_FSEL, sel);
			from = fring[(fpos - 1 - sel) % HW_COLS_FRING];
		}
		e->dor |= a - from;
		put_cold(e->w, HW_COLS_FDELTA, hw_zigzag((int64_t)(a - from)));
	}
	e->fring[e->fpos++ % HW_COLS_FRING] = a;
}

/* The block at a allocated (an ALLOC's, a REALLOC's new one): enc_alloc_addr
 * and model_alloc. false: the chunk outgrew the model's room. */
static inline __attribute__((always_inline)) bool enc_alloc(struct henc *e, uint64_t a,
							    uint8_t kind, uint64_t size,
							    uint64_t stack)
{
	uint32_t ci = class_of(kind, size);
	struct cols_class *c = class_use(e->cls, e->gen, ci);
	uint8_t hint = 0;
	for (uint32_t j = 0; j < c->n; j++)
		if (c->ring[c->n - 1 - j] == a) {
			hint = (uint8_t)(1 + j);
			for (uint32_t k = c->n - j; k < c->n; k++)
				c->ring[k - 1] = c->ring[k];
			c->n--;
			break;
		}
	*e->oH++ = hint;
	if (!hint) {
		uint64_t from = c->last ? c->last : e->addr;
		e->dor |= a - from;
		put_cold(e->w, HW_COLS_ADELTA, hw_zigzag((int64_t)(a - from)));
	}
	size_t nal = e->nal;
	if (__builtin_expect(nal >= e->al_cap, 0))
		return false;
	struct cols_slot *sl = map_at(e->map, e->mask, a);
	if (sl->coff == MAP_EMPTY && ++e->w->map_n > (e->mask + 1) / 2) {
		map_grow(e->w);
		e->map = e->w->map;
		e->mask = e->w->map_cap - 1;
		sl = map_at(e->map, e->mask, a);
	}
	sl->addr = a;
	sl->ord = (uint32_t)nal;
	sl->coff = ci * (uint32_t)sizeof(struct cols_class);
	e->nal = nal + 1;
	c->last = a;
	e->addr = a;
	PUTV(e->oZ, size);
	PUTV(e->oK, hw_zigzag((int64_t)(stack - e->last_stack)));
	e->last_stack = stack;
	return true;
}

/* Splits the run of ALLOC, FREE and REALLOC records at p (up to end) into
 * their streams. Returns where the run stops: at a record of another
 * kind, at a heap record that does not split (*bad), or at end; *bad with
 * m.nal SIZE_MAX: the chunk outgrew the model's room. *leftp: the records
 * the streams have room for (reserve). ALLOC_NEXT and FREE_NEXT, most
 * heap records of a format 3 trace, have paths of their own (with
 * every field in one loop, the fields and state of all three kinds were
 * live at once: most lived on the stack).
 * no-tree-slp-vectorize: GCC 12 moved pairs of the stream pointers through
 * vector registers at every record (clang has no optimize attribute, and
 * warns at it). */
#if defined(__GNUC__) && !defined(__clang__)
#define HW_NO_SLP __attribute__((optimize("no-tree-slp-vectorize")))
#else
#define HW_NO_SLP
#endif
static __attribute__((noinline)) HW_NO_SLP const uint8_t *
split_heap(struct cols_work *w, struct model *mp, const uint8_t *p, const uint8_t *end,
	   size_t *leftp, bool *bad)
{
	size_t left = *leftp;
	struct henc e = {
		.w = w,
		.cls = w->cls,
		.map = w->map,
		.al_cap = w->al_cap,
		.mask = w->map_cap - 1,
		.nal = mp->nal,
		.addr = mp->addr,
		.last_stack = mp->last_stack,
		.dor = mp->dor,
		.fring = mp->fring,
		.fpos = mp->fpos,
		.gen = w->gen,
		.v2 = mp->v2,
	};
	uint8_t mkind = mp->kind;
#define SYNC_IN()                                                                         \
	(e.oT = w->s[HW_COLS_TAG] + w->slen[HW_COLS_TAG],                                      \
	 e.oH = w->s[HW_COLS_HINT] + w->slen[HW_COLS_HINT],                                    \
	 e.oR = w->s[HW_COLS_REF] + w->slen[HW_COLS_REF],                                      \
	 e.oZ = w->s[HW_COLS_SIZE] + w->slen[HW_COLS_SIZE],                                    \
	 e.oK = w->s[HW_COLS_STACK] + w->slen[HW_COLS_STACK])
#define SYNC_OUT()                                                                        \
	(w->slen[HW_COLS_TAG] = (size_t)(e.oT - w->s[HW_COLS_TAG]),                            \
	 w->slen[HW_COLS_HINT] = (size_t)(e.oH - w->s[HW_COLS_HINT]),                          \
	 w->slen[HW_COLS_REF] = (size_t)(e.oR - w->s[HW_COLS_REF]),                            \
	 w->slen[HW_COLS_SIZE] = (size_t)(e.oZ - w->s[HW_COLS_SIZE]),                          \
	 w->slen[HW_COLS_STACK] = (size_t)(e.oK - w->s[HW_COLS_STACK]))
	SYNC_IN();
	while (p < end && heap_tag[*p]) {
		if (__builtin_expect(!left, 0)) {
			SYNC_OUT();
			reserve(w);
			SYNC_IN();
			left = SPLIT_BATCH;
		}
		left--;
		const uint8_t *r = p;
		uint8_t t = *p++;
		uint64_t d0;
		if (__builtin_expect(end - p >= 3 * HW_VARINT_MAX, 1)) {
			if (t == HW_REC_FREE_NEXT) {
				if (!rv10(&p, &d0))
					goto bad;
				*e.oT++ = t;
				uint64_t a = e.addr + (uint64_t)hw_unzigzag(d0);
				enc_free(&e, a);
				e.addr = a;
				continue;
			}
			if (t == HW_REC_ALLOC_NEXT) {
				uint64_t size, stack;
				if (!(rv10(&p, &d0) && rv10(&p, &size) && rv10(&p, &stack)))
					goto bad;
				*e.oT++ = t;
				if (!enc_alloc(&e, e.addr + (uint64_t)hw_unzigzag(d0), mkind, size,
					       e.last_stack + (uint64_t)hw_unzigzag(stack)))
					goto full;
				continue;
			}
		}
		uint8_t kind = mkind;
		bool next;
		uint8_t base = heap_base(t, &kind, &next);
		uint64_t s0 = 1, s1 = 0, d1 = 0, size = 0, stack = 0;
		bool ok = next || rv(&p, end, &s0);
		if (base == HW_REC_ALLOC)
			ok = ok && rv(&p, end, &d0) && rv(&p, end, &size) && rv(&p, end, &stack);
		else if (base == HW_REC_FREE)
			ok = ok && rv(&p, end, &d0);
		else
			ok = ok && rv(&p, end, &s1) && rv(&p, end, &d0) && rv(&p, end, &d1) &&
			     rv(&p, end, &size) && rv(&p, end, &stack);
		if (!ok)
			goto bad;
		mkind = kind;
		if (next && base == HW_REC_ALLOC) /* stack: the delta */
			stack = e.last_stack + (uint64_t)hw_unzigzag(stack);
		*e.oT++ = t;
		if (!next)
			put_cold(w, HW_COLS_SEQ, s0);
		if (base == HW_REC_REALLOC)
			put_cold(w, HW_COLS_SEQ, s1);
		uint64_t a = e.addr + (uint64_t)hw_unzigzag(d0);
		if (base != HW_REC_ALLOC) {
			enc_free(&e, a);
			if (base == HW_REC_FREE) {
				e.addr = a;
				continue;
			}
			a += (uint64_t)hw_unzigzag(d1); /* the realloc's new block */
		}
		if (!enc_alloc(&e, a, kind, size, stack))
			goto full;
		continue;
full:
		e.nal = SIZE_MAX;
bad:
		p = r;
		*bad = true;
		break;
	}
	SYNC_OUT();
#undef SYNC_IN
#undef SYNC_OUT
	mp->addr = e.addr;
	mp->last_stack = e.last_stack;
	mp->dor = e.dor;
	mp->nal = e.nal;
	mp->fpos = e.fpos;
	mp->kind = mkind;
	*leftp = left;
	return p;
}

/* Splits rec into the streams, after what they hold (cols_encode empties
 * them first; a group's chunks follow each other). Returns false if a
 * stream would not be rebuilt (out of the model's room). The heap records go to split_heap,
 * the others (STACK records, the rest) one at a time here. */
static bool split(struct cols_work *w, const uint8_t *rec, size_t used)
{
	struct model m;
	model_init(&m, w, used);
	/* the table as large as four times the last chunk's addresses need
	 * (grown while the chunk is split): made again smaller only when it
	 * is four times that, not at every chunk */
	size_t want = MAP_MIN;
	while (want < 4 * w->map_n)
		want *= 2;
	if (w->map_cap < MAP_MIN || w->map_cap >= 4 * want)
		map_new(w, want);
	else
		memset(w->map, 0xff, w->map_cap * sizeof(*w->map));
	w->map_n = 0;
	reserve(w);
	size_t left = SPLIT_BATCH;
	const uint8_t *p = rec, *end = rec + used;
	while (p < end) {
		bool bad = false;
		p = split_heap(w, &m, p, end, &left, &bad);
		if (m.nal == SIZE_MAX)
			return false;
		if (bad || p == end)
			break;
		reserve(w); /* room for this record and SPLIT_BATCH - 1 more */
		left = SPLIT_BATCH - 1;
		const uint8_t *r = p;
		uint8_t t = *p++;
		uint64_t v[4];
		if (t == HW_REC_STACK) { /* id parent kind:u8 value */
			bool ok = rv(&p, end, &v[0]) && rv(&p, end, &v[1]) && p < end;
			if (ok) {
				v[2] = *p++;
				ok = rv(&p, end, &v[3]);
			}
			if (!ok) {
				p = r;
				break;
			}
			w->s[HW_COLS_TAG][w->slen[HW_COLS_TAG]++] = t;
			uint8_t *o = w->s[HW_COLS_SID] + w->slen[HW_COLS_SID];
			PUTV(o, hw_zigzag((int64_t)(v[0] - m.last_sid - 1)));
			w->slen[HW_COLS_SID] = (size_t)(o - w->s[HW_COLS_SID]);
			o = w->s[HW_COLS_SPARENT] + w->slen[HW_COLS_SPARENT];
			PUTV(o, hw_zigzag((int64_t)(v[0] - v[1])));
			w->slen[HW_COLS_SPARENT] = (size_t)(o - w->s[HW_COLS_SPARENT]);
			w->s[HW_COLS_OTHER][w->slen[HW_COLS_OTHER]++] = (uint8_t)v[2];
			o = w->s[HW_COLS_SVALUE] + w->slen[HW_COLS_SVALUE];
			PUTV(o, v[3]);
			w->slen[HW_COLS_SVALUE] = (size_t)(o - w->s[HW_COLS_SVALUE]);
			m.last_sid = v[0];
			continue;
		}
		const char *f = body_format(t);
		bool ok = f != NULL;
		uint64_t a = m.addr;
		for (; ok && *f; f++) {
			uint64_t x;
			if (*f == 'b') {
				ok = p < end;
				p++;
			} else {
				ok = raw_v(&p, end, &x);
				if (ok && *f == 'z')
					a += (uint64_t)hw_unzigzag(x);
				if (ok && *f == 's') {
					ok = x <= (uint64_t)(end - p);
					if (ok)
						p += x;
				}
			}
		}
		if (!ok) {
			p = r;
			break;
		}
		m.addr = a;
		w->s[HW_COLS_TAG][w->slen[HW_COLS_TAG]++] = t;
		/* a body of any length: through put_bytes, and room again after */
		put_bytes(w, HW_COLS_OTHER, r + 1, (size_t)(p - r - 1));
		reserve(w);
		left = SPLIT_BATCH;
	}
	if (p < end) /* a zero byte, a tag not known here, a cut record: as it is */
		put_bytes(w, HW_COLS_TAIL, p, (size_t)(end - p));
	w->dor |= m.dor;
	return true;
}

/* --- decoder --------------------------------------------------------------- */

struct rd {
	const uint8_t *p, *end;
};

static inline __attribute__((always_inline)) bool get_v(struct rd *r, uint64_t *v)
{
	return raw_v(&r->p, r->end, v);
}

static inline bool get_u8(struct rd *r, uint8_t *v)
{
	if (r->p >= r->end)
		return false;
	*v = *r->p++;
	return true;
}

/* ALLOC-side address of class ci from the hint and delta streams. */
static inline __attribute__((always_inline)) bool dec_alloc_addr(struct model *m, struct rd *hint, struct rd *ad, uint32_t ci,
				  uint64_t *a, const char **why)
{
	struct cols_class *c = class_use(m->w->cls, m->w->gen, ci);
	uint8_t h;
	if (!get_u8(hint, &h))
		return *why = "a stream ends early", false;
	if (h) {
		if (h > c->n)
			return *why = "a freed-block reference out of range", false;
		uint32_t at = c->n - h;
		*a = c->ring[at];
		for (uint32_t k = at + 1; k < c->n; k++)
			c->ring[k - 1] = c->ring[k];
		c->n--;
		return true;
	}
	uint64_t d;
	if (!get_v(ad, &d))
		return *why = "a stream ends early", false;
	*a = (c->last ? c->last : m->addr) + ((uint64_t)hw_unzigzag(d) << m->w->shift);
	return true;
}

static inline __attribute__((always_inline)) bool dec_free_addr(struct model *m, struct rd *ref, struct rd *fd,
								struct rd *fsel, uint64_t *a, const char **why)
{
	uint64_t k;
	if (!get_v(ref, &k))
		return *why = "a stream ends early", false;
	size_t ord = SIZE_MAX;
	if (k) {
		if (k > m->nal)
			return *why = "a reference to an ALLOC out of range", false;
		ord = m->nal - (size_t)k;
		*a = m->w->al_addr[ord];
	} else {
		uint64_t d;
		uint8_t sel = 0;
		if (!get_v(fd, &d) || (m->v2 && !get_u8(fsel, &sel)))
			return *why = "a stream ends early", false;
		if (sel >= HW_COLS_FRING)
			return *why = "a free's base out of range", false;
		*a = m->fring[(m->fpos - 1 - sel) % HW_COLS_FRING] + ((uint64_t)hw_unzigzag(d) << m->w->shift);
	}
	model_free(m, *a, ord);
	return true;
}

#define OUT_V(x) (o = hw_put_varint(o, (x)))
#define PUT_REC()                                                                         \
	do {                                                                              \
		if (!direct) {                                                            \
			NEED((size_t)(o - tmp));                                          \
			memcpy(d, tmp, (size_t)(o - tmp));                                \
		}                                                                         \
		d += o - rec;                                                             \
	} while (0)
#define NEED(n)                                                                           \
	do {                                                                              \
		if ((size_t)(dend - d) < (n))                                             \
			return *why = "it rebuilds to more bytes than it says", 0;        \
	} while (0)
/* events: the raw bytes a record takes, counted instead of written */
#define RAW(n)                                                                            \
	do {                                                                              \
		if (used - raw < (n))                                                     \
			return *why = "it rebuilds to more bytes than it says", 0;        \
		raw += (n);                                                               \
	} while (0)

/* Bytes of x as a varint in its shortest form, by the index of its
 * highest set bit (63 ^ clz: one bsr, no xor). */
static const uint8_t vlen_of_bit[64] = {
	1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 4,
	4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 7,
	7, 7, 7, 7, 7, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 10,
};

static inline __attribute__((always_inline)) size_t vlen(uint64_t x)
{
	return vlen_of_bit[(63u ^ (unsigned)__builtin_clzll(x | 1)) & 63u];
}

/* vlen(hw_zigzag(d)) for a difference d: zigzag's bits are those of
 * m = d ^ (d >> 63) moved up by one (its lowest: the sign), so this table
 * is vlen_of_bit one bit on, by the index of m's highest bit (one shift
 * fewer; m's bit 63 is never set). */
static const uint8_t vlen_zz_of_bit[64] = {
	1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 4, 4,
	4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7,
	7, 7, 7, 7, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 10, 10,
};

static inline __attribute__((always_inline)) size_t vlen_zz(uint64_t d)
{
	uint64_t m = d ^ (uint64_t)((int64_t)d >> 63);
	return vlen_zz_of_bit[(63u ^ (unsigned)__builtin_clzll(m | 1)) & 63u];
}

/* Where a piece of a chunk decoded a piece at a time stopped (build_'s
 * state; cols_dec). */
struct piece {
	struct model m;
	size_t d; /* bytes written into dst */
	size_t raw; /* raw bytes of the records decoded */
	uint64_t seq; /* the sequence number a raw reading is at */
	bool begun;
};

/* The decoder's output when it hands out events (build with ev, see
 * cols_dec_piece). */
struct evout {
	struct hw_event **ev;
	size_t *cap, n;
	size_t *tail_at;
	bool fallback; /* the records need the byte-for-byte reading */
	/* where the last piece stopped, the records this one may still
	 * take (a heap_run block stops there), whether it stopped before
	 * the end */
	struct piece *pc;
	size_t rec_left;
	bool more;
};

static void ev_grow(struct evout *e)
{
	size_t cap = *e->cap ? *e->cap * 2 : 4096;
	*e->ev = xrealloc(*e->ev, cap * sizeof(**e->ev));
	*e->cap = cap;
}

/* A stream read in heap_run: its bytes in locals (registers), not in st[].
 * The one-byte case reads without a bounds check: a stream's end is
 * followed by 0x80 (inflate), which sends it to the checked way, or by
 * other bytes of the same buffer (a group's parts lie back to back, the
 * buffer has STREAM_SLACK bytes after the last): a stream read past its
 * end is found at the end of the block (heap_run), where no pointer has
 * moved more than 2 * RUN_BLOCK bytes past its end (a record reads a
 * stream twice at most; once past its end only the one-byte case moves
 * it). The two-byte case (c_large_buffers' sizes and references) is
 * inline too, with its bounds check: it never moves a pointer past its
 * end. A longer varint must be in
 * its shortest form (the form the raw record has): then a run's raw bytes
 * of the fields held as they are (sequence deltas, sizes) are the bytes it
 * took from their streams. */
#define GETV(sp, se, x)                                                                   \
	do {                                                                              \
		if (__builtin_expect(*sp < 0x80, 1)) {                                    \
			(x) = *sp++;                                                      \
		} else if (sp + 1 < se && (uint8_t)(sp[1] - 1) < 0x7f) {                  \
			/* two bytes, the second not 0 (the shortest form) */             \
			(x) = (uint64_t)(sp[0] & 0x7f) | (uint64_t)sp[1] << 7;            \
			sp += 2;                                                          \
		} else {                                                                  \
			const uint8_t *q_ = sp;                                           \
			if (!raw_v(&sp, se, &(x)) || (size_t)(sp - q_) != vlen(x))        \
				goto redo;                                                \
		}                                                                         \
	} while (0)

/* An event written field by field (a compound literal went through the
 * stack here). */
static inline __attribute__((always_inline)) void put_ev(struct hw_event *e, uint64_t seq, uint64_t addr,
							 uint64_t size, uint32_t stack, uint8_t op,
							 uint8_t kind)
{
	_Static_assert(offsetof(struct hw_event, stack) == 24 && sizeof(struct hw_event) == 32,
		       "the last 8 bytes: stack, op, kind, padding");
	e->seq = seq;
	e->addr = addr;
	e->size = size;
	uint64_t tail = stack | (uint64_t)op << 32 | (uint64_t)kind << 40;
	memcpy((char *)e + 24, &tail, 8);
}

/* The last 8 bytes of an event, stack 0 (or'ed with the stack id) */
#define EV_TAIL(op, kind) ((uint64_t)(op) << 32 | (uint64_t)(kind) << 40)

/* put_ev with those bytes made already (heap_run keeps an ALLOC's and a
 * FREE's of the kind at hand: most records are short forms, whose kind
 * is the one before). */
static inline __attribute__((always_inline)) void put_evt(struct hw_event *e, uint64_t seq,
							  uint64_t addr, uint64_t size,
							  uint64_t tail)
{
	e->seq = seq;
	e->addr = addr;
	e->size = size;
	memcpy((char *)e + 24, &tail, 8);
}

/* The address of the sel-th newest free (of a FREE or a REALLOC) among
 * the chunk's events before e (first: its first; the header of a run
 * holds no free), 0 when there are fewer: the model's ring of the last
 * frees (fring), which heap_run does not keep (a FREE whose block is
 * not among the chunk's ALLOCs is rare; scanning back for it costs less
 * than a ring written at every free). Linear over a chunk: an event is
 * passed by the scans of the HW_COLS_FRING frees after it at most. */
static inline uint64_t nth_free(const struct hw_event *first, const struct hw_event *e,
				unsigned sel)
{
	while (e > first) {
		e--;
		if ((e->op == EV_FREE || e->op == EV_REALLOC_FREE) && !sel--)
			return e->addr;
	}
	return 0;
}

/* Records of a run decoded between two checks of the events' room and of
 * the streams' ends. */
#define RUN_BLOCK 512
/* Bytes after a group's streams that heap_run may read (GETV). */
#define STREAM_SLACK (2 * RUN_BLOCK)
_Static_assert(RUN_BLOCK <= AL_SLACK, "a block's ALLOCs fit in the slack");

/* One ALLOC, FREE or REALLOC record of heap_run (its tag t
 * read at tp; base and next constants: each tag's case is compiled on
 * its own, with no test of the tag's kind left in it and fewer values
 * live). A FREE ends at its `continue` (the do-while's: out of it). */
#define HEAP_REC(BASE, NEXT)                                                              \
	do {                                                                              \
		const uint8_t base = (BASE);                                              \
		const bool next = (NEXT);                                                 \
		uint8_t kind = next ? last_kind : (uint8_t)(t & HW_TAG_KIND_MASK);        \
		uint64_t size, a, from = 0, k, dz, s0;                                    \
		tp++;                                                                     \
		if (next) { /* sequence + 1: a wrap goes the raw way */                   \
			if (__builtin_expect(++seq == 0, 0))                              \
				goto redo;                                                \
		} else {                                                                  \
			last_kind = kind;                                                 \
			tail_alloc = EV_TAIL(EV_ALLOC, kind);                             \
			tail_free = EV_TAIL(EV_FREE, kind);                               \
			GETV(qp, qe, s0);                                                 \
			if (__builtin_expect(s0 > UINT64_MAX - seq, 0))                   \
				goto redo;                                                \
			seq += s0;                                                        \
		}                                                                         \
		if (base != HW_REC_ALLOC) { /* the block freed (dec_free_addr) */         \
			GETV(rp, re, k);                                                  \
			if (__builtin_expect(k != 0, 1)) {                                \
				if (__builtin_expect(k > nal, 0))                         \
					goto redo;                                        \
				size_t ord = nal - (size_t)k;                             \
				from = al_addr[ord];                                      \
				struct cols_class *c = class_at(cls, al_cls[ord]);        \
				if (__builtin_expect(c->n == HW_COLS_RING, 0)) {          \
					for (uint32_t j = 1; j < HW_COLS_RING; j++)       \
						c->ring[j - 1] = c->ring[j];              \
					c->n--;                                           \
				}                                                         \
				c->ring[c->n++] = from;                                   \
			} else {                                                          \
				uint8_t sel = 0;                                          \
				if (v2) { /* past its end: found below (GETV) */          \
					sel = *sp;                                        \
					if (sel >= HW_COLS_FRING)                         \
						goto redo;                                \
				}                                                         \
				GETV(fp, fe, dz);                                         \
				sp += v2;                                                 \
				from = nth_free(*eo->ev, e, sel) + ((uint64_t)hw_unzigzag(dz) << sh); \
			}                                                                 \
			nb += vlen_zz(from - addr);                                       \
			if (base == HW_REC_FREE) {                                        \
				put_evt(e++, seq, from, 0, tail_free);                    \
				addr = from;                                              \
				continue;                                                 \
			}                                                                 \
		}                                                                         \
		GETV(zp, ze, size);                                                       \
		uint32_t ci = class_of(kind, size);                                       \
		struct cols_class *c = class_use(cls, gen, ci);                           \
		/* past its end: found below (GETV) */                                    \
		uint8_t h = *hp;                                                          \
		if (h) {                                                                  \
			if (__builtin_expect(h > c->n, 0))                                \
				goto redo;                                                \
			uint32_t at = c->n - h;                                           \
			a = c->ring[at];                                                  \
			for (uint32_t j = at + 1; j < c->n; j++)                          \
				c->ring[j - 1] = c->ring[j];                              \
			c->n--;                                                           \
		} else {                                                                  \
			GETV(ap, ae, dz);                                                 \
			a = (c->last ? c->last : addr) + ((uint64_t)hw_unzigzag(dz) << sh); \
		}                                                                         \
		hp++;                                                                     \
		al_addr[nal] = a;                                                         \
		al_cls[nal] = (uint32_t)((char *)c - (char *)cls);                        \
		nal++;                                                                    \
		c->last = a;                                                              \
		nb += vlen_zz(a - (base == HW_REC_REALLOC ? from : addr));                \
		addr = a;                                                                 \
		GETV(kp, ke, dz);                                                         \
		uint64_t stack = last_stack + (uint64_t)hw_unzigzag(dz);                  \
		last_stack = stack;                                                       \
		stack_or |= stack;                                                        \
		/* the raw stack field: the delta as the stream has it (its bytes:  \
		 * counted at the run's end), else the id itself (size_t wraps      \
		 * back: only the sum counts) */                                          \
		if (!next)                                                                \
			nb += vlen(stack) - vlen(dz);                                     \
		if (base == HW_REC_REALLOC) {                                             \
			put_ev(e, seq, from, 0, 0, EV_REALLOC_FREE, kind);                \
			GETV(qp, qe, s0);                                                 \
			if (__builtin_expect(s0 > UINT64_MAX - seq, 0))                   \
				goto redo;                                                \
			seq += s0;                                                        \
			put_ev(e + 1, seq, a, size, (uint32_t)stack, EV_REALLOC_ALLOC, kind); \
			e += 2;                                                           \
		} else {                                                                  \
			put_evt(e++, seq, a, size, tail_alloc | (uint32_t)stack);         \
		}                                                                         \
	} while (0)

/* gcc 12 at -O2 gives heap_run fewer instructions in the FREE_NEXT path
 * when it may peel loops (-O3's gain here, nearly all of it): heap_run's
 * Ir on summary of b_deep_recursion 219.5 M -> 215.7 M (callgrind).
 * clang has no optimize attribute (and warns at it). */
#if defined(__GNUC__) && !defined(__clang__)
#define HW_PEEL_LOOPS __attribute__((optimize("peel-loops")))
#else
#define HW_PEEL_LOOPS
#endif

/* cols_dec_piece: the ALLOC, FREE, REALLOC and STACK records from the
 * tags stream's position on, into events: each stretch of heap records
 * one run (a HW_COLS_RUN byte at *dp and a header), each stretch of STACK
 * records one run of definitions (HW_COLS_DEFS; see cols.h), without
 * leaving this loop between them (the model and the order of the
 * stream reads those of build_, with the streams and the model's state in
 * locals; the last frees read back from the events, nth_free), up to
 * the end of the block where the piece's records (eo->rec_left) run out.
 * A well-formed run only: at anything else (a damaged stream, a
 * reference out of range, more raw bytes than the chunk holds, or what
 * the raw reading refuses or reads specially: a sequence number that
 * wraps or is UINT64_MAX, a stack id over 32 bits) it returns false, and
 * the caller reads the whole chunk the byte-for-byte way, whose checks
 * say what is wrong. So the loop checks the room for events, the
 * streams' ends, the ALLOC count, the stack ids and the last sequence
 * number once a block, the raw bytes once a run, and a sequence number
 * at each record (a wrap of a short form's + 1: an increment's zero
 * flag). */
static __attribute__((noinline)) HW_PEEL_LOOPS bool heap_run(struct model *m, struct rd st[HW_COLS_ALL], struct evout *eo, size_t *nevp,
		     size_t *rawp, uint64_t *seqp, size_t used, uint8_t **dp, uint8_t *const dend)
{
	const uint8_t *tp = st[HW_COLS_TAG].p, *const te = st[HW_COLS_TAG].end;
	const uint8_t *qp = st[HW_COLS_SEQ].p, *const qe = st[HW_COLS_SEQ].end;
	const uint8_t *rp = st[HW_COLS_REF].p, *const re = st[HW_COLS_REF].end;
	const uint8_t *fp = st[HW_COLS_FDELTA].p, *const fe = st[HW_COLS_FDELTA].end;
	const uint8_t *hp = st[HW_COLS_HINT].p, *const he = st[HW_COLS_HINT].end;
	const uint8_t *ap = st[HW_COLS_ADELTA].p, *const ae = st[HW_COLS_ADELTA].end;
	const uint8_t *zp = st[HW_COLS_SIZE].p, *const ze = st[HW_COLS_SIZE].end;
	const uint8_t *kp = st[HW_COLS_STACK].p, *const ke = st[HW_COLS_STACK].end;
	const uint8_t *const t0 = tp, *const q0 = qp, *const z0 = zp, *const k0 = kp;
	/* the tags of the piece's records */
	const uint8_t *const tlim = (size_t)(te - tp) > eo->rec_left ? tp + eo->rec_left : te;
	struct cols_work *w = m->w;
	struct cols_class *const cls = w->cls;
	const uint32_t gen = w->gen;
	const unsigned sh = w->shift;
	uint64_t *const al_addr = w->al_addr;
	uint32_t *const al_cls = w->al_cls;
	uint64_t addr = m->addr, last_stack = m->last_stack;
	const bool v2 = m->v2;
	const uint8_t *sp = st[HW_COLS_FSEL].p, *const se = st[HW_COLS_FSEL].end;
	uint8_t last_kind = m->kind;
	uint64_t tail_alloc = EV_TAIL(EV_ALLOC, last_kind), tail_free = EV_TAIL(EV_FREE, last_kind);
	size_t nal = m->nal, nev = *nevp;
	size_t nb = 0; /* raw bytes of the address fields and stack ids */
	uint64_t seq = *seqp;
	bool ok = false;
	/* an ALLOC takes 4 raw bytes at least (ALLOC_NEXT) and a REALLOC 7:
	 * the chunk has room for this many, whatever the streams say (looked
	 * at once a block: the arrays have room for a block more) */
	const size_t al_max = w->al_cap;
	uint64_t last_sid = m->last_sid;
	struct rd *const sid = &st[HW_COLS_SID], *const spar = &st[HW_COLS_SPARENT],
		  *const soth = &st[HW_COLS_OTHER], *const sval = &st[HW_COLS_SVALUE];
	uint8_t *d = *dp;
	/* the open run: its header's index, whether it is of STACK records,
	 * the raw bytes before it (RAW_NOW's) */
	size_t hdr = 0, raw_open = 0;
	bool defs = false;
	struct hw_event *e; /* the next event's place */
#define RAW_NOW() \
	((size_t)(tp - t0) + (size_t)(qp - q0) + (size_t)(zp - z0) + (size_t)(kp - k0) + nb)
#define OPEN_RUN(mark)                                                                    \
	do {                                                                              \
		if (d == dend)                                                            \
			goto redo;                                                        \
		*d++ = (mark);                                                            \
		hdr = (size_t)(e - *eo->ev);                                              \
		e++->op = EV_RUN_HEADER; /* not a free (nth_free) */                      \
		raw_open = RAW_NOW();                                                     \
	} while (0)
	/* the stack and kind the records after a heap run start from */
#define CLOSE_RUN()                                                                       \
	((*eo->ev)[hdr] = (struct hw_event){.seq = (size_t)(e - *eo->ev) - hdr - 1,      \
					    .addr = RAW_NOW() - raw_open,                 \
					    .stack = (uint32_t)last_stack,                \
					    .op = EV_RUN_HEADER,                          \
					    .kind = last_kind})
	for (bool first = true;; first = false) {
		/* room for a block of records (two events each at most; a
		 * STACK record one, and the headers of a run of STACK records
		 * and of the heap run after it) */
		size_t left = (size_t)(tlim - tp) < RUN_BLOCK ? (size_t)(tlim - tp) : RUN_BLOCK;
		while (*eo->cap - nev < 3 * left + 2)
			ev_grow(eo);
		e = *eo->ev + nev;
		/* the stack ids ORed: an id over 32 bits is looked for once a
		 * block (an or, not a branch each) */
		uint64_t stack_or = 0;
		const uint8_t *const lim = tp + left;
		if (first) {
			defs = *tp == HW_REC_STACK;
			OPEN_RUN(defs ? HW_COLS_DEFS : HW_COLS_RUN);
		}
		/* one pass over the records: a second one for the sequence
		 * numbers and stack ids (fewer streams live in the first)
		 * cost more, an event loaded again and its op tested. A short
		 * form's sequence number is one more (an increment, whose
		 * zero flag is the wrap) */
		while (tp < lim) {
			const uint8_t t = *tp;
			/* the short forms first: most records (a compare tree
			 * of the switch put four compares before each) */
			if (t == HW_REC_FREE_NEXT) {
				HEAP_REC(HW_REC_FREE, true);
				continue;
			}
			if (t == HW_REC_ALLOC_NEXT) {
				HEAP_REC(HW_REC_ALLOC, true);
				continue;
			}
			switch (t) {
			case HW_REC_FREE ... HW_REC_FREE + HW_KIND_COUNT - 1:
				HEAP_REC(HW_REC_FREE, false);
				break;
			case HW_REC_ALLOC ... HW_REC_ALLOC + HW_KIND_COUNT - 1:
				HEAP_REC(HW_REC_ALLOC, false);
				break;
			case HW_REC_REALLOC ... HW_REC_REALLOC + HW_KIND_COUNT - 1:
				HEAP_REC(HW_REC_REALLOC, false);
				break;
			case HW_REC_STACK:
				if (!defs) {
					CLOSE_RUN();
					OPEN_RUN(HW_COLS_DEFS);
					defs = true;
				}
				do { /* decoded as build_ does; what the raw reading refuses: redo */
					uint64_t id, par, val;
					uint8_t fk;
					tp++;
					if (!get_v(sid, &id) || !get_v(spar, &par) || !get_u8(soth, &fk) ||
					    !get_v(sval, &val))
						goto redo;
					id = last_sid + 1 + (uint64_t)hw_unzigzag(id);
					last_sid = id;
					par = id - (uint64_t)hw_unzigzag(par);
					if (!id || id > UINT32_MAX || par > UINT32_MAX || id == par)
						goto redo;
					nb += 1 + vlen(id) + vlen(par) + vlen(val); /* the tag: tp's */
					put_ev(e++, 0, val, par, (uint32_t)id, 0, fk);
				} while (tp < lim && *tp == HW_REC_STACK);
				if (tp < te && heap_tag[*tp]) {
					CLOSE_RUN();
					OPEN_RUN(HW_COLS_RUN);
					defs = false;
				}
				break;
			default: /* not one of the run's records (run_tag) */
				goto block_end;
			}
		}
	block_end:
		/* a sequence number the raw reading does not hand out as an
		 * event either (UINT64_MAX: no merge limit lies above it): the
		 * numbers only grow, the block's last is the largest */
		if (stack_or > UINT32_MAX || seq == UINT64_MAX)
			goto redo;
		/* a stream read past its end (see GETV) */
		if (qp > qe || rp > re || fp > fe || hp > he || ap > ae || zp > ze || kp > ke ||
		    sp > se || nal > al_max)
			goto redo;
		nev = (size_t)(e - *eo->ev);
		if (tp == tlim || !run_tag[*tp])
			break;
	}
	if (!defs && hdr + 1 == nev) {
		/* a heap run opened after STACK records as a piece ended:
		 * empty, dropped (a reader finds a record after every run) */
		d--;
		nev--;
	} else {
		CLOSE_RUN();
	}
#undef CLOSE_RUN
#undef OPEN_RUN
#undef RAW_NOW
	/* the raw bytes of the run: tags, the fields held as they are
	 * (sequence deltas, sizes, stack deltas: a GETV takes a varint's
	 * shortest form only), and the rest counted above */
	size_t raw = *rawp + (size_t)(tp - t0) + (size_t)(qp - q0) + (size_t)(zp - z0) +
		     (size_t)(kp - k0) + nb;
	if (raw > used)
		goto redo;
	eo->rec_left -= (size_t)(tp - t0);
	*rawp = raw;
	*dp = d;
	ok = true;
redo:
	st[HW_COLS_TAG].p = tp;
	st[HW_COLS_SEQ].p = qp;
	st[HW_COLS_REF].p = rp;
	st[HW_COLS_FDELTA].p = fp;
	st[HW_COLS_HINT].p = hp;
	st[HW_COLS_ADELTA].p = ap;
	st[HW_COLS_SIZE].p = zp;
	st[HW_COLS_STACK].p = kp;
	st[HW_COLS_FSEL].p = sp;
	m->addr = addr;
	m->last_stack = last_stack;
	m->kind = last_kind;
	m->nal = nal;
	m->last_sid = last_sid;
	*nevp = nev;
	*seqp = seq;
	return ok;
}

/* Rebuilds the records from the streams st[] into dst (used bytes). With
 * ev (cols_dec_piece): every run of ALLOC, FREE and REALLOC records
 * becomes one HW_COLS_RUN byte in dst and a header and its events in
 * ev, every run of STACK records one HW_COLS_DEFS byte and a header and
 * its nodes (heap_run); the checks are the same, on the bytes the records
 * take raw. */
static inline __attribute__((always_inline)) size_t build_(struct cols_work *w,
							   struct rd st[HW_COLS_ALL], uint8_t *dst,
							   size_t used, const char **why, struct evout *eo)
{
	struct model m;
	*why = NULL;
	uint8_t *d = dst, *dend = dst + used;
	size_t raw = 0; /* ev: the raw bytes of the records so far (d: what is written) */
	uint64_t seq = 0; /* ev: the sequence number a raw reading would be at */
	size_t nev = 0;
	struct piece *pc = eo ? eo->pc : NULL;
	if (eo && pc->begun) { /* where the last piece stopped */
		m = pc->m;
		d = dst + pc->d;
		raw = pc->raw;
		seq = pc->seq;
		nev = eo->n;
	} else {
		model_init(&m, w, used);
	}
	struct rd *tags = &st[HW_COLS_TAG];
	while (tags->p < tags->end) {
		uint8_t t = *tags->p++;
		uint64_t v, s0, s1 = 0, size, stack;
		if (eo && run_tag[t]) { /* runs: a byte each here, their events in ev */
			tags->p--;
			if (!eo->rec_left) { /* the piece is full: the next one goes on here */
				*pc = (struct piece){m, (size_t)(d - dst), raw, seq, true};
				eo->n = nev;
				eo->more = true;
				return 0;
			}
			if (!heap_run(&m, st, eo, &nev, &raw, &seq, used, &d, dend))
				return eo->fallback = true, 0;
			continue;
		}
		/* a record is written in place when the room surely holds it */
		uint8_t tmp[8 * HW_VARINT_MAX];
		bool direct = (size_t)(dend - d) >= sizeof(tmp);
		uint8_t *const rec = direct ? d : tmp, *o = rec;
		*o++ = t;
		if (is_heap_tag(t)) {
			uint8_t kind = m.kind;
			bool next;
			uint8_t base = heap_base(t, &kind, &next);
			m.kind = kind;
			if (!next) {
				if (!get_v(&st[HW_COLS_SEQ], &s0))
					return *why = "a stream ends early", 0;
				OUT_V(s0);
			}
			uint64_t a;
			if (base == HW_REC_FREE) {
				if (!dec_free_addr(&m, &st[HW_COLS_REF], &st[HW_COLS_FDELTA], &st[HW_COLS_FSEL], &a, why))
					return 0;
				OUT_V(hw_zigzag((int64_t)(a - m.addr)));
				m.addr = a;
			} else {
				uint64_t from = 0;
				if (base == HW_REC_REALLOC) {
					if (!get_v(&st[HW_COLS_SEQ], &s1) ||
					    !dec_free_addr(&m, &st[HW_COLS_REF], &st[HW_COLS_FDELTA], &st[HW_COLS_FSEL], &from, why))
						return *why = *why ? *why : "a stream ends early", 0;
					OUT_V(s1);
					OUT_V(hw_zigzag((int64_t)(from - m.addr)));
				}
				if (!get_v(&st[HW_COLS_SIZE], &size) || !get_v(&st[HW_COLS_STACK], &v))
					return *why = "a stream ends early", 0;
				uint32_t ci = class_of(kind, size);
				if (!dec_alloc_addr(&m, &st[HW_COLS_HINT], &st[HW_COLS_ADELTA], ci, &a, why))
					return 0;
				if (!model_alloc(&m, a, ci))
					return *why = "more ALLOCs than its size allows", 0;
				OUT_V(hw_zigzag((int64_t)(a - (base == HW_REC_REALLOC ? from : m.addr))));
				m.addr = a;
				stack = m.last_stack + (uint64_t)hw_unzigzag(v);
				m.last_stack = stack;
				OUT_V(size);
				OUT_V(next ? v : stack); /* ALLOC_NEXT: the delta */
			}
			PUT_REC();
			continue;
		}
		if (t == HW_REC_STACK) {
			uint64_t id, par, val;
			uint8_t k;
			if (!get_v(&st[HW_COLS_SID], &id) || !get_v(&st[HW_COLS_SPARENT], &par) ||
			    !get_u8(&st[HW_COLS_OTHER], &k) || !get_v(&st[HW_COLS_SVALUE], &val))
				return *why = "a stream ends early", 0;
			id = m.last_sid + 1 + (uint64_t)hw_unzigzag(id);
			m.last_sid = id;
			OUT_V(id);
			OUT_V(id - (uint64_t)hw_unzigzag(par));
			*o++ = k;
			OUT_V(val);
			PUT_REC();
			continue;
		}
		const char *f = body_format(t);
		if (!f)
			return *why = "an unknown record tag", 0;
		NEED(1);
		*d++ = t;
		struct rd *ot = &st[HW_COLS_OTHER];
		const uint8_t *b = ot->p;
		/* ev: the sequence deltas of the records that have them */
		int nseq = !eo ? 0
			   : t == HW_REC_UNMAP || t == HW_REC_MARK || t == HW_REC_RETAG ? 1
			   : t == HW_REC_REMAP					       ? 2
										       : 0;
		for (; *f; f++) {
			if (*f == 'b') {
				if (ot->p >= ot->end)
					return *why = "a stream ends early", 0;
				ot->p++;
				continue;
			}
			if (!get_v(ot, &v))
				return *why = "a stream ends early", 0;
			if (nseq) {
				nseq--;
				if (v > UINT64_MAX - seq)
					return eo->fallback = true, 0;
				seq += v;
			}
			if (*f == 'z')
				m.addr += (uint64_t)hw_unzigzag(v);
			if (*f == 's') {
				if (v > (uint64_t)(ot->end - ot->p))
					return *why = "a stream ends early", 0;
				ot->p += v;
			}
		}
		NEED((size_t)(ot->p - b));
		memcpy(d, b, (size_t)(ot->p - b));
		d += ot->p - b;
		if (eo)
			RAW(1 + (size_t)(ot->p - b));
	}
	struct rd *tail = &st[HW_COLS_TAIL];
	if (eo) {
		RAW((size_t)(tail->end - tail->p));
		*eo->tail_at = (size_t)(d - dst);
		eo->n = nev;
	}
	NEED((size_t)(tail->end - tail->p));
	memcpy(d, tail->p, (size_t)(tail->end - tail->p));
	d += tail->end - tail->p;
	tail->p = tail->end;
	for (int i = 0; i < HW_COLS_ALL; i++)
		if (st[i].p != st[i].end)
			return *why = "a stream holds more than its records", 0;
	if (eo ? raw != used : d != dend)
		return *why = "it rebuilds to fewer bytes than it says", 0;
	return eo ? (size_t)(d - dst) : used;
}

static size_t build(struct cols_work *w, struct rd st[HW_COLS_ALL], uint8_t *dst, size_t used,
		    const char **why)
{
	return build_(w, st, dst, used, why, NULL);
}

static size_t build_ev(struct cols_work *w, struct rd st[HW_COLS_ALL], uint8_t *dst, size_t used,
		       const char **why, struct evout *eo)
{
	return build_(w, st, dst, used, why, eo);
}

/* --- payload ------------------------------------------------------------- */

/* Streams of a chunk of `used` bytes hold at most this many bytes together
 * (a varint may grow from 1 to 10 bytes when it becomes a delta; the
 * encoder keeps only chunks within this) */
static size_t streams_limit(size_t used)
{
	return 2 * used + 256;
}

size_t cols_bound(size_t chunk_size)
{
	return 4u * HW_COLS_STREAMS + HW_COLS_STREAMS * ZSTD_compressBound(0) +
	       ZSTD_compressBound(streams_limit(chunk_size)) + 64u * HW_COLS_STREAMS + HW_ZSEAL_SIZE;
}

size_t cols_encode(struct cols_work *w, void *cctx, const uint8_t *rec, size_t used, uint8_t *out,
		   size_t cap)
{
	for (int i = 0; i < HW_COLS_ALL; i++)
		w->slen[i] = 0;
	w->v2 = false;
	if (!split(w, rec, used))
		return 0;
	size_t total = 0;
	for (int i = 0; i < HW_COLS_ALL; i++)
		total += w->slen[i];
	if (total > streams_limit(used))
		return 0;
	size_t head = 4u * HW_COLS_STREAMS;
	if (cap < head)
		return 0;
	size_t len = head;
	for (int i = 0; i < HW_COLS_STREAMS; i++) {
		uint32_t zl = 0;
		if (w->slen[i]) {
			size_t n = ZSTD_compress2(cctx, out + len, cap - len, w->s[i], w->slen[i]);
			if (ZSTD_isError(n))
				return 0;
			zl = (uint32_t)n;
			len += n;
		}
		/* the last stream's frame is followed by the seal (a zstd
		 * reader skips it) */
		if (i == HW_COLS_STREAMS - 1)
			zl += HW_ZSEAL_SIZE;
		memcpy(out + 4u * i, &zl, 4);
	}
	if (cap - len < HW_ZSEAL_SIZE)
		return 0;
	return cols_seal(out, len);
}

/* The seal: a skippable frame (magic, length 8) holding hw_hash_bytes of
 * the payload before it. */
#define ZSEAL_MAGIC 0x184D2A5Eu

size_t cols_seal(uint8_t *p, size_t len)
{
	uint32_t head[2] = {ZSEAL_MAGIC, 8};
	uint64_t sum = hw_hash_bytes(p, len, ZSEAL_MAGIC);
	memcpy(p + len, head, 8);
	memcpy(p + len + 8, &sum, 8);
	return len + HW_ZSEAL_SIZE;
}

const char *cols_seal_broken(const uint8_t *p, size_t zlen)
{
	uint32_t head[2];
	uint64_t sum;
	if (zlen < HW_ZSEAL_SIZE)
		return NULL;
	memcpy(head, p + zlen - HW_ZSEAL_SIZE, 8);
	if (head[0] != ZSEAL_MAGIC || head[1] != 8)
		return NULL;
	memcpy(&sum, p + zlen - 8, 8);
	return sum == hw_hash_bytes(p, zlen - HW_ZSEAL_SIZE, ZSEAL_MAGIC)
		       ? NULL
		       : "its checksum does not match its bytes";
}

/* Inflates the streams of a payload into w->buf (st: where each lies). */
static bool inflate(struct cols_work *w, void *dctx, const uint8_t *z, size_t zlen, size_t used,
		    struct rd st[HW_COLS_ALL], const char **why)
{
	size_t head = 4u * HW_COLS_STREAMS;
	if (zlen < head)
		return *why = "its stream table is cut", false;
	if ((*why = cols_seal_broken(z, zlen)))
		return false;
	/* each stream followed by one byte 0x80: a varint's one-byte fast
	 * path needs no bounds check (that byte sends it to the checked way) */
	size_t limit = streams_limit(used);
	if (w->buf_cap < limit + HW_COLS_ALL) {
		free(w->buf);
		w->buf = xmalloc(limit + HW_COLS_ALL);
		w->buf_cap = limit + HW_COLS_ALL;
	}
	size_t at = head, have = 0, total = 0;
	for (int i = 0; i < HW_COLS_STREAMS; i++) {
		uint32_t zl;
		memcpy(&zl, z + 4u * i, 4);
		if (zl > zlen - at)
			return *why = "a stream runs past the chunk", false;
		size_t n = 0;
		if (zl) {
			/* the room left: a frame that claims or makes more is an error */
			n = ZSTD_decompressDCtx(dctx, w->buf + have, limit - total, z + at, zl);
			if (ZSTD_isError(n))
				return *why = ZSTD_getErrorName(n), false;
		}
		st[i] = (struct rd){w->buf + have, w->buf + have + n};
		w->buf[have + n] = 0x80;
		have += n + 1;
		total += n;
		at += zl;
	}
	if (at != zlen)
		return *why = "bytes after its last stream", false;
	st[HW_COLS_FSEL] = (struct rd){w->buf + have, w->buf + have}; /* none here */
	w->buf[have] = 0x80;
	w->v2 = false;
	return true;
}

size_t cols_decode(struct cols_work *w, void *dctx, const uint8_t *z, size_t zlen, uint8_t *dst,
		   size_t used, const char **why)
{
	struct rd st[HW_COLS_ALL];
	*why = NULL;
	if (!inflate(w, dctx, z, zlen, used, st, why))
		return 0;
	w->shift = 0;
	return build(w, st, dst, used, why);
}

/* --- a chunk a piece at a time ------------------------------------------- */

size_t cols_piece_records = 512;

struct cols_dec {
	struct cols_work w; /* its own: the replay decodes chunks of several threads by turns */
	struct rd st[HW_COLS_ALL];
	struct rd again[HW_COLS_ALL]; /* the streams from the start (the byte-for-byte way) */
	struct piece pc;
	size_t used;
	size_t nev; /* the entries the last piece wrote in the events */
};

struct cols_dec *cols_dec_new(void)
{
	return xcalloc(1, sizeof(struct cols_dec));
}

void cols_dec_free(struct cols_dec *x)
{
	if (!x)
		return;
	cols_free(&x->w);
	free(x);
}

static void dec_begin(struct cols_dec *x, size_t used)
{
	memcpy(x->again, x->st, sizeof(x->again));
	x->pc.begun = false;
	x->used = used;
	x->nev = 0;
}

bool cols_dec_begin(struct cols_dec *x, void *dctx, const uint8_t *z, size_t zlen, size_t used,
		    const char **why)
{
	*why = NULL;
	if (!inflate(&x->w, dctx, z, zlen, used, x->st, why))
		return false;
	x->w.shift = 0;
	dec_begin(x, used);
	return true;
}

/* The last HW_COLS_FRING frees among the n events at ev, oldest first, as
 * FREE events at its start: what nth_free finds of the pieces before.
 * Returns their count. */
static size_t carry_frees(struct hw_event *ev, size_t n)
{
	uint64_t a[HW_COLS_FRING];
	size_t k = 0;
	for (size_t i = n; i-- > 0 && k < HW_COLS_FRING;)
		if (ev[i].op == EV_FREE || ev[i].op == EV_REALLOC_FREE)
			a[k++] = ev[i].addr;
	for (size_t i = 0; i < k; i++)
		ev[i] = (struct hw_event){.addr = a[k - 1 - i], .op = EV_FREE};
	return k;
}

enum cols_piece cols_dec_piece(struct cols_dec *x, uint8_t *dst, size_t *dlen,
			       struct hw_event **ev, size_t *ev_cap, size_t *first, size_t *nev,
			       size_t *tail_at, const char **why)
{
	size_t g = x->pc.begun ? carry_frees(*ev, x->nev) : 0;
	struct evout eo = {.ev = ev,
			   .cap = ev_cap,
			   .n = g,
			   .tail_at = tail_at,
			   .pc = &x->pc,
			   .rec_left = cols_piece_records ? cols_piece_records : 1};
	*why = NULL;
	size_t n = build_ev(&x->w, x->st, dst, x->used, why, &eo);
	if (eo.more || (!eo.fallback && !*why)) {
		*first = g;
		*nev = x->nev = eo.n;
		*dlen = eo.more ? x->pc.d : n;
		return eo.more ? COLS_MORE : COLS_LAST;
	}
	/* the whole chunk the byte-for-byte way, whose checks say what is
	 * wrong (a damaged stream) or which reads what a run does not (a
	 * sequence number that wraps, ...) */
	*first = *nev = x->nev = 0;
	*tail_at = 0;
	x->pc.begun = false;
	*dlen = n = build(&x->w, x->again, dst, x->used, why);
	return n == x->used ? COLS_RAW : COLS_BAD;
}

/* --- groups ---------------------------------------------------------------- */

/* Payload of a group (after the chunk's 20-byte head; trace_format.h):
 * k u32, used[1..k-1] u32, nlen u32, zl[S] u32, nlen bytes of the k * S
 * lengths (varints, chunk by chunk), then the S frames. */

static size_t group_fixed(uint32_t k)
{
	return 4u * k + 4u + 4u * HW_COLS_ALL;
}

size_t cols_group_bound(size_t total_used, uint32_t k)
{
	return group_fixed(k) + (size_t)k * HW_COLS_ALL * HW_VARINT_MAX +
	       HW_COLS_ALL * ZSTD_compressBound(0) +
	       ZSTD_compressBound(2 * total_used + 256u * k) + 64u * HW_COLS_ALL + HW_ZSEAL_SIZE;
}

static inline void put_u32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static inline uint32_t get_u32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

size_t cols_group_encode(struct cols_work *w, void *cctx, int level, int poor_level,
			 const uint8_t *const *rec,
			 const uint32_t *used, uint32_t k, uint32_t *taken, uint8_t *out, size_t cap)
{
	uint32_t len[HW_COLS_GROUP_MAX][HW_COLS_ALL];
	size_t before[HW_COLS_ALL];
	uint32_t n = 0;
	*taken = 0;
	if (k > HW_COLS_GROUP_MAX)
		k = HW_COLS_GROUP_MAX;
	for (int i = 0; i < HW_COLS_ALL; i++)
		w->slen[i] = 0;
	w->dor = 0;
	w->v2 = true;
	size_t sum = 0;
	for (; n < k; n++) {
		if (!used[n] || sum + used[n] > HW_COLS_GROUP_BYTES)
			break;
		memcpy(before, w->slen, sizeof(before));
		bool ok = split(w, rec[n], used[n]);
		size_t total = 0;
		for (int i = 0; ok && i < HW_COLS_ALL; i++)
			total += w->slen[i] - before[i];
		if (!ok || total > streams_limit(used[n])) {
			memcpy(w->slen, before, sizeof(before)); /* not this one */
			break;
		}
		for (int i = 0; i < HW_COLS_ALL; i++)
			len[n][i] = (uint32_t)(w->slen[i] - before[i]);
		sum += used[n];
	}
	if (n < 2)
		return 0;
	/* the address deltas in units of their common low zero bits (16-byte
	 * units for the heap: 4 bits less each) */
	unsigned shift = w->dor ? (unsigned)__builtin_ctzll(w->dor) : 0;
	if (shift > HW_COLS_SHIFT_MAX)
		shift = HW_COLS_SHIFT_MAX;
	if (shift) {
		for (int s = HW_COLS_ADELTA; s <= HW_COLS_FDELTA; s++) {
			const uint8_t *r = w->s[s];
			uint8_t *o = w->s[s];
			for (uint32_t j = 0; j < n; j++) {
				const uint8_t *e = r + len[j][s];
				uint8_t *o0 = o;
				while (r < e) {
					uint64_t v = 0;
					hw_get_varint(&r, e, &v); /* written above: sound */
					o = hw_put_varint(o, hw_zigzag(hw_unzigzag(v) >> shift));
				}
				len[j][s] = (uint32_t)(o - o0);
			}
			w->slen[s] = (size_t)(o - w->s[s]);
		}
	}
	size_t fixed = group_fixed(n);
	if (cap < fixed + (size_t)n * HW_COLS_ALL * HW_VARINT_MAX)
		return 0;
	put_u32(out, n | shift << 8);
	for (uint32_t j = 1; j < n; j++)
		put_u32(out + 4u * j, used[j]);
	uint8_t *lens = out + fixed, *o = lens;
	for (uint32_t j = 0; j < n; j++)
		for (int i = 0; i < HW_COLS_ALL; i++)
			o = hw_put_varint(o, len[j][i]);
	put_u32(out + 4u * n, (uint32_t)(o - lens));
	size_t at0 = (size_t)(o - out);
	/* the streams at the context's level; as soon as they take more than
	 * 1 / HW_COLS_POOR of the records (a group that shrinks less: numpy's
	 * arrays, a program's imports with their code objects), all of them
	 * again at poor_level (level 10: about three times the time; the first
	 * pass stops there, not at its end) */
	ZSTD_CCtx *cc = cctx;
	bool retry = level < poor_level, raised = false;
	size_t at = at0;
	for (int i = 0; i < HW_COLS_ALL; i++) {
		uint32_t zl = 0;
		if (w->slen[i]) {
			size_t z = ZSTD_compress2(cc, out + at, cap - at, w->s[i], w->slen[i]);
			if (ZSTD_isError(z)) {
				at = 0;
				break;
			}
			zl = (uint32_t)z;
			at += z;
		}
		put_u32(out + 4u * n + 4u + 4u * i, zl);
		if (retry && at * HW_COLS_POOR > sum) {
			retry = false;
			raised = true;
			ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, poor_level);
			at = at0;
			i = -1;
		}
	}
	if (raised)
		ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level);
	if (!at || cap - at < HW_ZSEAL_SIZE)
		return 0;
	/* the seal after the last stream's frame (see cols_encode) */
	uint8_t *last = out + 4u * n + 4u + 4u * (HW_COLS_ALL - 1);
	put_u32(last, get_u32(last) + HW_ZSEAL_SIZE);
	*taken = n;
	return cols_seal(out, at);
}

bool cols_group_head(const uint8_t *chunk, size_t zlen, size_t limit, uint32_t *k,
		     unsigned *shift, uint32_t used[HW_COLS_GROUP_MAX])
{
	const uint8_t *z = chunk + HW_ZCHUNK_HEADER_SIZE;
	if (zlen < 4)
		return false;
	uint32_t ks = get_u32(z);
	*k = ks & 0xff;
	*shift = ks >> 8;
	if (*shift > HW_COLS_SHIFT_MAX || *k < 2 || *k > HW_COLS_GROUP_MAX || zlen < group_fixed(*k))
		return false;
	used[0] = get_u32(chunk + 8) & HW_CHUNK_USED_MASK;
	size_t sum = 0;
	for (uint32_t j = 0; j < *k; j++) {
		if (j)
			used[j] = get_u32(z + 4u * j);
		if (!used[j] || used[j] > limit)
			return false;
		sum += used[j];
	}
	return sum <= HW_COLS_GROUP_BYTES;
}

void cols_group_free(struct cols_group *g)
{
	free(g->buf);
	memset(g, 0, sizeof(*g));
}

void cols_group_inflate(struct cols_group *g, void *dctx, const uint8_t *chunk, size_t zlen,
			size_t limit)
{
	const uint8_t *z = chunk + HW_ZCHUNK_HEADER_SIZE;
	g->why = NULL;
	g->k = 0;
	uint32_t k;
	if ((g->why = cols_seal_broken(z, zlen)))
		return;
	if (!cols_group_head(chunk, zlen, limit, &k, &g->shift, g->used)) {
		g->why = "its group head is out of range";
		return;
	}
	size_t fixed = group_fixed(k);
	uint32_t nlen = get_u32(z + 4u * k);
	if (nlen > zlen - fixed) {
		g->why = "its stream lengths run past the chunk";
		return;
	}
	/* the lengths: each chunk's streams within what its records allow */
	const uint8_t *lp = z + fixed, *le = lp + nlen;
	size_t slen[HW_COLS_ALL] = {0}, total = 0;
	for (uint32_t j = 0; j < k; j++) {
		size_t cl = 0;
		for (int i = 0; i < HW_COLS_ALL; i++) {
			uint64_t v;
			if (hw_get_varint(&lp, le, &v) || v > streams_limit(g->used[j]) - cl) {
				g->why = "a stream length out of range";
				return;
			}
			g->len[j][i] = (uint32_t)v;
			cl += v;
			slen[i] += v;
		}
		total += cl;
	}
	if (lp != le) {
		g->why = "bytes after its stream lengths";
		return;
	}
	/* the chunks' parts are read where they lie (group_streams): no 0x80
	 * after each, STREAM_SLACK bytes after the last. A buffer is kept
	 * from group to group (the reader's); it grows in steps of 256 KiB,
	 * not for every group a little larger than the one before, and by
	 * realloc: glibc moves a mapped buffer's pages (mremap), where a new
	 * one's would all be faulted in and cleared again (c_large_buffers:
	 * 2.5 MiB of its 2.75 MiB second buffer) */
	if (g->cap < total + STREAM_SLACK) {
		g->cap = (total + STREAM_SLACK + (256u << 10) - 1) & ~(size_t)((256u << 10) - 1);
		g->buf = xrealloc(g->buf, g->cap);
	}
	memset(g->buf + total, 0x80, STREAM_SLACK);
	size_t at = fixed + nlen, have = 0;
	for (int i = 0; i < HW_COLS_ALL; i++) {
		uint32_t zl = get_u32(z + 4u * k + 4u + 4u * i);
		if (zl > zlen - at) {
			g->why = "a stream runs past the chunk";
			return;
		}
		size_t n = 0;
		if (zl) {
			/* room: exactly the stream's length (a bomb is an error) */
			n = ZSTD_decompressDCtx(dctx, g->buf + have, slen[i], z + at, zl);
			if (ZSTD_isError(n)) {
				g->why = ZSTD_getErrorName(n);
				return;
			}
		}
		if (n != slen[i]) {
			g->why = "a stream of other than its chunks' length";
			return;
		}
		for (uint32_t j = 0; j < k; j++) {
			g->at[j][i] = have;
			have += g->len[j][i];
		}
		at += zl;
	}
	if (at != zlen) {
		g->why = "bytes after its last stream";
		return;
	}
	g->k = k;
}

/* The streams of a group's chunk j: its parts in the group's buffer,
 * read where they lie (heap_run finds a stream read past its end). */
static bool group_streams(struct cols_work *w, const struct cols_group *g, uint32_t j, size_t used,
			  struct rd st[HW_COLS_ALL], const char **why)
{
	*why = NULL;
	if (g->why)
		return *why = g->why, false;
	if (j >= g->k || used != g->used[j])
		return *why = "not in its group", false;
	for (int i = 0; i < HW_COLS_ALL; i++)
		st[i] = (struct rd){g->buf + g->at[j][i], g->buf + g->at[j][i] + g->len[j][i]};
	w->shift = g->shift;
	w->v2 = true;
	return true;
}

size_t cols_group_decode(struct cols_work *w, const struct cols_group *g, uint32_t j, uint8_t *dst,
			 size_t used, const char **why)
{
	struct rd st[HW_COLS_ALL];
	if (!group_streams(w, g, j, used, st, why))
		return 0;
	return build(w, st, dst, used, why);
}

bool cols_dec_begin_group(struct cols_dec *x, const struct cols_group *g, uint32_t j, size_t used,
			  const char **why)
{
	if (!group_streams(&x->w, g, j, used, x->st, why))
		return false;
	dec_begin(x, used);
	return true;
}
