/* Pairing stage: see pair.h. */
#include "pair.h"

#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "util.h"

struct site_key {
	uint32_t stack;
	uint8_t cls;
};

struct site_slot {
	uint32_t stack;
	uint8_t cls;
	uint32_t site; /* index + 1; 0 = empty */
};

#define SITE_CACHE 4096

/* Per-thread state, in a small open-addressing table keyed by thread id. */
struct thread_slot {
	uint32_t tid; /* 0 = empty */
	uint8_t remap_kind; /* what the free half of the thread's mremap unmapped */
	uint64_t addr; /* the thread's last heap allocation (temporaries) */
};

struct pairing {
	const char *from_mark;
	bool started;
	struct range_map maps;
	/* callsites: (raw stack, class) -> id, ids in order of first use */
	struct site_key *keys;
	size_t nsites, sitecap;
	uint32_t *index; /* id + 1 */
	size_t mask;
	struct site_slot cache[SITE_CACHE];
	/* threads */
	struct thread_slot *threads;
	size_t tmask, nthreads;
	struct thread_slot *me;
	/* while a mapping is cut */
	struct merge_out *out;
	uint64_t seq;
	int first_kind;
};

static struct thread_slot *thread_find(struct pairing *p, uint32_t tid)
{
	tid = tid ? tid : UINT32_MAX; /* 0 marks an empty slot */
	if ((p->nthreads + 1) * 2 > p->tmask + 1) {
		size_t mask = p->tmask ? p->tmask * 2 + 1 : 63;
		struct thread_slot *slots = xcalloc(mask + 1, sizeof(*slots));
		for (size_t i = 0; p->threads && i <= p->tmask; i++) {
			if (!p->threads[i].tid)
				continue;
			size_t j = (p->threads[i].tid * 2654435761u) & mask;
			while (slots[j].tid)
				j = (j + 1) & mask;
			slots[j] = p->threads[i];
		}
		free(p->threads);
		p->threads = slots;
		p->tmask = mask;
	}
	size_t j = (tid * 2654435761u) & p->tmask;
	while (p->threads[j].tid && p->threads[j].tid != tid)
		j = (j + 1) & p->tmask;
	if (!p->threads[j].tid) {
		p->threads[j].tid = tid;
		p->nthreads++;
	}
	return &p->threads[j];
}

struct pairing *pairing_new(const char *from_mark)
{
	struct pairing *p = xcalloc(1, sizeof(*p));
	p->from_mark = from_mark;
	p->started = !from_mark;
	p->mask = 1023;
	p->index = xcalloc(p->mask + 1, sizeof(*p->index));
	p->me = thread_find(p, 0);
	return p;
}

void pairing_free(struct pairing *p)
{
	if (!p)
		return;
	range_map_free(&p->maps);
	free(p->keys);
	free(p->index);
	free(p->threads);
	free(p);
}

static size_t site_hash(uint32_t stack, int cls)
{
	uint64_t h = ((uint64_t)stack << 2 | (uint64_t)cls) * 0x9e3779b97f4a7c15ull;
	return (size_t)(h ^ (h >> 29));
}

static inline void put(struct merge_out *out, uint8_t op, uint8_t flags, uint64_t seq, uint64_t addr,
		       uint64_t size, uint32_t stack, uint8_t kind)
{
	merge_out_put(out, op, flags, seq, addr, size, stack, kind);
}

/* The id of a callsite; a new one is announced with EV_SITE. */
static uint32_t site_new(struct pairing *p, uint32_t stack, int kind, uint64_t seq)
{
	int cls = kind_class(kind);
	size_t j = site_hash(stack, cls) & p->mask;
	while (p->index[j]) {
		const struct site_key *k = &p->keys[p->index[j] - 1];
		if (k->stack == stack && k->cls == cls)
			return p->index[j] - 1;
		j = (j + 1) & p->mask;
	}
	if ((p->nsites + 1) * 2 > p->mask + 1) {
		size_t mask = p->mask * 2 + 1;
		uint32_t *idx = xcalloc(mask + 1, sizeof(*idx));
		for (size_t i = 0; i < p->nsites; i++) {
			size_t k = site_hash(p->keys[i].stack, p->keys[i].cls) & mask;
			while (idx[k])
				k = (k + 1) & mask;
			idx[k] = (uint32_t)i + 1;
		}
		free(p->index);
		p->index = idx;
		p->mask = mask;
		j = site_hash(stack, cls) & mask;
		while (idx[j])
			j = (j + 1) & mask;
	}
	HW_GROW(p->keys, p->nsites, p->sitecap);
	uint32_t id = (uint32_t)p->nsites++;
	p->keys[id] = (struct site_key){stack, (uint8_t)cls};
	p->index[j] = id + 1;
	put(p->out, EV_SITE, EVF_EXTRA, seq, stack, 0, id, (uint8_t)kind);
	return id;
}

/* site_new behind a direct-mapped cache by stack id: a trace repeats a few
 * thousand stacks millions of times. */
static inline uint32_t site_of(struct pairing *p, uint32_t stack, int kind, uint64_t seq)
{
	int cls = kind_class(kind);
	struct site_slot *c = &p->cache[(stack * 4u + (unsigned)cls) % SITE_CACHE];
	if (c->site && c->stack == stack && c->cls == cls)
		return c->site - 1;
	uint32_t i = site_new(p, stack, kind, seq);
	*c = (struct site_slot){stack, (uint8_t)cls, i + 1};
	return i;
}

static inline void gone(struct pairing *p, const struct block *b, uint8_t flags)
{
	if (b->counted) /* else allocated outside the window */
		put(p->out, EV_GONE, EVF_EXTRA | flags, p->seq, 0, b->size, b->site, b->kind);
}

static void on_cut(void *ctx, const struct block *piece, bool whole)
{
	struct pairing *p = ctx;
	if (p->first_kind < 0)
		p->first_kind = piece->kind;
	gone(p, piece, whole ? EVF_WHOLE : 0);
}

/* A mapping (mmap, or the new half of mremap). */
static void do_map(struct pairing *p, const struct hw_event *e, int kind)
{
	if (e->addr && e->size) {
		bool counted = p->started;
		struct block b = {e->addr, e->size, counted ? site_of(p, e->stack, kind, e->seq) : 0,
				  (uint8_t)kind, counted};
		range_map_add(&p->maps, &b, on_cut, p);
		if (counted) {
			put(p->out, EV_BORN, 0, e->seq, 0, b.size, b.site, b.kind);
			return;
		}
	}
	put(p->out, EV_NOP, 0, e->seq, 0, 0, 0, 0);
}

static int do_unmap(struct pairing *p, const struct hw_event *e)
{
	p->first_kind = -1;
	range_map_cut(&p->maps, e->addr, e->size, on_cut, p);
	put(p->out, EV_NOP, 0, e->seq, 0, 0, 0, 0);
	return p->first_kind;
}

/* A heap allocation goes on with its callsite id. */
static inline void heap_alloc(struct pairing *p, const struct hw_event *e)
{
	bool counted = p->started;
	uint32_t site = counted && e->addr ? site_of(p, e->stack, e->kind, e->seq) : 0;
	put(p->out, e->op, counted ? EVF_COUNTED : 0, e->seq, e->addr, e->size, site, e->kind);
	p->me->addr = e->addr;
}

/* A heap free (plain: not the free half of a realloc). A plain free of the
 * thread's last allocation, before the thread allocated again or freed
 * anything else, is a temporary. */
static inline void heap_free(struct pairing *p, const struct hw_event *e, bool plain)
{
	uint8_t temp = plain && e->addr && p->me->addr == e->addr ? EVF_TEMP : 0;
	if (e->addr)
		p->me->addr = 0;
	put(p->out, e->op, temp, e->seq, e->addr, 0, 0, e->kind);
}

void pairing_stage(void *ctx, const struct hw_event *in, size_t n, struct merge_out *out)
{
	struct pairing *p = ctx;
	p->out = out;
	for (size_t i = 0; i < n; i++) {
		const struct hw_event *e = &in[i];
		bool heap = kind_class(e->kind) == CLASS_HEAP;
		p->seq = e->seq;
		switch (e->op) {
		case EV_ALLOC:
			if (heap)
				heap_alloc(p, e);
			else
				do_map(p, e, e->kind);
			break;
		case EV_FREE:
			if (heap)
				heap_free(p, e, true);
			else
				put(out, EV_NOP, 0, e->seq, 0, 0, 0, 0);
			break;
		case EV_REALLOC_FREE:
			heap_free(p, e, false);
			break;
		case EV_REALLOC_ALLOC:
			if (heap) {
				heap_alloc(p, e);
			} else {
				do_map(p, e, e->kind);
				p->me->addr = e->addr;
			}
			break;
		case EV_UNMAP:
			do_unmap(p, e);
			break;
		case EV_REMAP_UNMAP: {
			int k = do_unmap(p, e);
			p->me->remap_kind = (uint8_t)(k < 0 ? HW_KIND_MMAP : k);
			break;
		}
		case EV_REMAP_MAP:
			do_map(p, e, p->me->remap_kind);
			break;
		case EV_THREAD:
			p->me = thread_find(p, (uint32_t)e->addr); /* the replay has no use for it */
			break;
		case EV_MARK:
			if (!p->started && e->kind == HW_MARK_USER && strlen(p->from_mark) == e->size &&
			    !memcmp((const char *)(uintptr_t)e->addr, p->from_mark, e->size))
				p->started = true;
			merge_out_push(out, e);
			break;
		default:
			merge_out_push(out, e);
			break;
		}
	}
}
