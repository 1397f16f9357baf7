/* Replay (analyzer, replay + aggregation stages): one pass over the merged
 * events keeps the live set, per-callsite totals, and a lazy snapshot of the
 * callsites at each class's peak: a callsite saves its live bytes the first
 * time it changes after a new high-water mark, so finding "what was live at
 * the peak" costs O(1) per event and no second pass. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "analysis.h"
#include "heapwise/compiler.h"
#include "err.h"
#include "merge.h"
#include "usercode.h"
#include "util.h"

const char *kind_name(int kind)
{
	static const char *const names[] = {"malloc", "mmap", "mmap-file", "pymem", "pyobj"};
	return kind >= 0 && kind < HW_KIND_COUNT ? names[kind] : "?";
}

const char *class_name(int cls)
{
	static const char *const names[] = {"heap", "mmap", "mmap-file"};
	return names[cls];
}

static size_t site_hash(uint32_t stack, int kind)
{
	uint64_t h = ((uint64_t)stack << 3 | (uint64_t)kind) * 0x9e3779b97f4a7c15ull;
	return (size_t)(h ^ (h >> 29));
}

/* A site is a stack and an allocator kind: a Python line whose objects
 * (pyobj) and buffers (malloc, NumPy's data) share one stack has a site of
 * each, so every report can say which kind holds the bytes. */
static struct site *site_get(struct analysis *a, uint32_t stack, int kind)
{
	int cls = kind_class(kind);
	size_t j = site_hash(stack, kind) & a->site_mask;
	while (a->site_index[j]) {
		struct site *s = &a->sites[a->site_index[j] - 1];
		if (s->raw_stack == stack && s->kind == kind)
			return s;
		j = (j + 1) & a->site_mask;
	}
	if ((a->nsites + 1) * 2 > a->site_mask + 1) {
		size_t mask = a->site_mask * 2 + 1;
		uint32_t *idx = xcalloc(mask + 1, sizeof(*idx));
		for (size_t i = 0; i < a->nsites; i++) {
			size_t k = site_hash(a->sites[i].raw_stack, a->sites[i].kind) & mask;
			while (idx[k])
				k = (k + 1) & mask;
			idx[k] = (uint32_t)i + 1;
		}
		free(a->site_index);
		a->site_index = idx;
		a->site_mask = mask;
		j = site_hash(stack, kind) & mask;
		while (idx[j])
			j = (j + 1) & mask;
	}
	if (a->nsites == a->sitecap) {
		/* a mapping of its own, grown by mremap: page aligned, never
		 * copied, and only the pages used are memory (doubling a
		 * malloc'd array held both copies, 200 MB for 800,000 sites) */
		size_t cap = a->sitecap ? a->sitecap * 2 : 512;
		void *p = a->sites ? mremap(a->sites, a->sitecap * sizeof(struct site),
					     cap * sizeof(struct site), MREMAP_MAYMOVE)
				   : mmap(NULL, cap * sizeof(struct site), PROT_READ | PROT_WRITE,
					  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			err_print("out of memory");
			exit(2);
		}
		a->sites = p;
		a->sitecap = cap;
	}
	struct site *s = &a->sites[a->nsites];
	memset(s, 0, sizeof(*s));
	s->raw_stack = stack;
	s->cls = (uint8_t)cls;
	s->kind = (uint8_t)kind;
	a->site_index[j] = (uint32_t)++a->nsites;
	return s;
}

/* site_get behind a direct-mapped cache by stack id: a trace repeats a few
 * thousand stacks millions of times. */
static inline uint32_t site_cached(struct analysis *a, uint32_t stack, int kind)
{
	struct site_slot *c = &a->site_cache[(stack * 8u + (unsigned)kind) % HW_SITE_CACHE];
	if (c->site && c->stack == stack && c->kind == kind)
		return c->site - 1;
	uint32_t i = (uint32_t)(site_get(a, stack, kind) - a->sites);
	*c = (struct site_slot){stack, (uint8_t)kind, i + 1};
	return i;
}

/* A site's live bytes change; the first change since its class's last peak
 * (id) saves what it had at that peak. */
static inline void site_touch(struct site *s, uint64_t id, int64_t bytes, int64_t blocks)
{
	if (s->seen != id) {
		s->snap_bytes = s->live_bytes;
		s->seen = id;
	}
	s->live_bytes += (uint64_t)bytes;
	s->live_blocks += (uint64_t)blocks;
}

void analysis_weigh(uint64_t interval, uint64_t addr, uint64_t size, uint64_t *bytes,
		    uint64_t *blocks)
{
	if (!interval) {
		*bytes = size;
		*blocks = 1;
		return;
	}
	if (!size) { /* never sampled by the shim (a hostile trace) */
		*bytes = 0;
		*blocks = 1;
		return;
	}
	if (size / 64 >= interval) { /* p = 1 within 1e-27; llround stays in range */
		*bytes = size;
		*blocks = 1;
		return;
	}
	double p = -expm1(-(double)size / (double)interval); /* 1 - exp(-size / interval) */
	double w = 1.0 / p;
	*bytes = (uint64_t)llround((double)size * w);
	/* random rounding, the same for the block's allocation and its free */
	uint64_t x = (addr ^ size * 0x9e3779b97f4a7c15ull) * 0xbf58476d1ce4e5b9ull;
	x ^= x >> 31;
	double u = (double)(x >> 11) * 0x1.0p-53;
	double whole = floor(w);
	*blocks = (uint64_t)whole + (w - whole > u);
}

double analysis_weigh_var(uint64_t interval, uint64_t size)
{
	if (!interval || !size || size / 64 >= interval)
		return 0; /* as analysis_weigh: the block counts as itself */
	double n = (double)size;
	double p = -expm1(-n / (double)interval);
	double w = n / p;
	return w * (w - n);
}

double analysis_weigh_count_var(uint64_t interval, uint64_t size)
{
	if (!interval || !size || size / 64 >= interval)
		return 0;
	double p = -expm1(-(double)size / (double)interval);
	return (1 - p) / (p * p) + 0.25;
}

/* Site i's spread, grown (zeroed) to the sites' capacity on first use. */
static struct site_spread *spread_at(struct analysis *a, size_t i)
{
	if (HW_UNLIKELY(i >= a->spreadcap)) {
		size_t cap = a->sitecap > i ? a->sitecap : i + 1;
		a->spread = xrealloc(a->spread, cap * sizeof(*a->spread));
		memset(a->spread + a->spreadcap, 0, (cap - a->spreadcap) * sizeof(*a->spread));
		a->spreadcap = cap;
	}
	return &a->spread[i];
}

/* A sampled heap block of `size` bytes comes (sign 1) or goes (-1) at site
 * i; id: its class's peak id before the change (as site_touch). */
static void spread_change(struct analysis *a, size_t i, uint64_t id, uint64_t size, int sign)
{
	double v = analysis_weigh_var(a->sample_interval, size);
	if (v <= 0)
		return;
	/* a hostile interval (up to 2^64) makes v up to 2^128: clamp it so
	 * the conversion stays defined and 2^24 blocks' sum cannot wrap */
	if (v > 0x1p100)
		v = 0x1p100;
	unsigned __int128 q = (unsigned __int128)(v + 0.5);
	struct site_spread *p = spread_at(a, i);
	if (p->seen != id) {
		p->snap_var = p->live_var;
		p->snap_n = p->live_n;
		p->seen = id;
	}
	/* the whole heap's: a process tree's peak, and the markers */
	a->heap_var = sign > 0 ? a->heap_var + q : a->heap_var - q;
	a->heap_n = sign > 0 ? a->heap_n + 1 : a->heap_n - 1;
	if (a->gc_open) {
		a->gc_var += q;
		a->gc_n++;
	}
	double c = analysis_weigh_count_var(a->sample_interval, size);
	unsigned __int128 cq = (unsigned __int128)((c > 0x1p100 ? 0x1p100 : c) + 0.5);
	if (sign > 0) {
		p->live_var += q;
		p->live_n++;
		p->alloc_var += q;
		p->alloc_n++;
		p->count_var += cq;
		p->live_cvar += cq;
	} else {
		p->live_var -= q;
		p->live_n--;
		p->live_cvar -= cq;
		a->free_cvar += cq;
	}
}

void site_spread_fig(const struct analysis *a, size_t i, struct spread_fig *out)
{
	memset(out, 0, sizeof(*out));
	if (!a->spread || i >= a->spreadcap || i >= a->nsites)
		return;
	const struct site_spread *p = &a->spread[i];
	bool at_peak = p->seen == a->peaks[a->sites[i].cls].id;
	out->peak_var = (double)(at_peak ? p->snap_var : p->live_var);
	out->peak_n = at_peak ? p->snap_n : p->live_n;
	out->leak_var = (double)p->leak_var;
	out->leak_n = p->leak_n;
	out->alloc_var = (double)p->alloc_var;
	out->alloc_n = p->alloc_n;
	out->count_var = (double)p->count_var;
	out->leak_count_var = (double)p->leak_cvar;
	out->live_var = (double)p->live_var;
	out->live_n = p->live_n;
}

uint64_t site_peak_bytes(const struct analysis *a, const struct site *s)
{
	/* a site that changed since the peak saved its bytes at its first change
	 * after it; one that did not (or whose change made the peak) has them */
	return s->seen == a->peaks[s->cls].id ? s->snap_bytes : s->live_bytes;
}

/* The heap's live bytes, high-water mark and peak id change at every heap
 * event. Kept in a->peaks[CLASS_HEAP], each event's update waits for the
 * store of the one before; the replay keeps them in this local (registers)
 * and hot_put writes them back before anything else reads them. */
struct hot {
	uint64_t live, peak, id;
	uint64_t tick_max; /* the most live in the clock tick so far (push_tick) */
};

static inline void hot_put(struct analysis *a, const struct hot *h)
{
	struct peak *pk = &a->peaks[CLASS_HEAP];
	pk->live = h->live;
	pk->peak = h->peak;
	pk->id = h->id;
}

/* A sampled trace's tick reaches its highest value: its spread now. */
static void tick_spread_mark(struct analysis *a)
{
	a->tick_var = a->heap_var;
	a->tick_n = a->heap_n;
}

static inline __attribute__((always_inline)) void heap_change(struct analysis *a, struct hot *h,
							       struct site *s, int64_t bytes,
							       int64_t blocks, uint64_t seq,
							       uint64_t time_ns)
{
	site_touch(s, h->id, bytes, blocks);
	h->live += (uint64_t)bytes;
	if (a->want_ticks && h->live > h->tick_max)
		h->tick_max = h->live;
	if (h->live > h->peak) {
		h->peak = h->live;
		h->id++;
		a->peaks[CLASS_HEAP].peak_seq = seq;
		a->peaks[CLASS_HEAP].peak_time_ns = time_ns;
	}
	if (a->hook)
		a->hook(a->hook_ctx, a, (size_t)(s - a->sites), bytes, h->live, time_ns);
}

/* A heap block went away. The heap kinds' live and freed totals are not
 * kept here: heap_kind_totals finds them from the blocks still live. */
static inline __attribute__((always_inline)) void heap_gone(struct analysis *a, struct hot *h,
							     const struct block *b, uint64_t seq,
							     uint64_t time_ns)
{
	if (!b->counted) /* allocated outside the window */
		return;
	uint64_t bytes = b->size, blocks = 1;
	if (HW_UNLIKELY(a->sample_interval)) {
		analysis_weigh(a->sample_interval, b->addr, b->size, &bytes, &blocks);
		spread_change(a, b->site, h->id, b->size, -1);
	}
	heap_change(a, h, &a->sites[b->site], -(int64_t)bytes, -(int64_t)blocks, seq, time_ns);
}

/* A piece of a mapping went away. */
static void map_gone(struct analysis *a, const struct block *b, bool whole)
{
	if (!b->counted)
		return;
	struct kind_totals *k = &a->kinds[b->kind];
	k->live_bytes -= b->size;
	if (whole) {
		k->live_blocks--;
		k->frees++;
	}
	struct site *s = &a->sites[b->site];
	struct peak *pk = &a->peaks[s->cls];
	site_touch(s, pk->id, -(int64_t)b->size, whole ? -1 : 0);
	pk->live -= b->size;
}

struct cut_ctx {
	struct analysis *a;
	int first_kind;
};

static void on_cut(void *ctx, const struct block *piece, bool whole)
{
	struct cut_ctx *c = ctx;
	if (c->first_kind < 0)
		c->first_kind = piece->kind;
	map_gone(c->a, piece, whole);
}

/* A mapping (mmap, or the new half of mremap). */
static void do_map(struct analysis *a, int kind, uint64_t addr, uint64_t size, uint32_t stack,
		   bool counted, uint64_t seq, uint64_t time_ns)
{
	if (!addr || !size)
		return;
	if (addr + size < addr) /* past the end of the address space */
		size = UINT64_MAX - addr;
	struct block b = {addr, size, counted ? site_cached(a, stack, kind) : 0, (uint8_t)kind,
			  counted};
	struct cut_ctx c = {a, -1};
	range_map_add(&a->maps, &b, on_cut, &c);
	if (!counted)
		return;
	struct kind_totals *k = &a->kinds[kind];
	k->allocs++;
	k->alloc_bytes += size;
	k->live_bytes += size;
	k->live_blocks++;
	struct site *s = &a->sites[b.site];
	s->allocs++;
	s->alloc_bytes += size;
	struct peak *pk = &a->peaks[s->cls];
	site_touch(s, pk->id, (int64_t)size, 1);
	pk->live += size;
	if (pk->live > pk->peak) {
		pk->peak = pk->live;
		pk->peak_seq = seq;
		pk->peak_time_ns = time_ns;
		pk->id++;
	}
}

static int do_unmap(struct analysis *a, uint64_t addr, uint64_t len)
{
	struct cut_ctx c = {a, -1};
	range_map_cut(&a->maps, addr, len, on_cut, &c);
	return c.first_kind;
}

/* A heap allocation. */
static inline __attribute__((always_inline)) void do_alloc(struct analysis *a, struct hot *h, int kind,
							    uint64_t addr, uint64_t size,
							    uint32_t stack, bool counted, uint64_t seq,
							    uint64_t time_ns)
{
	if (!addr)
		return;
	struct block b = {addr, size, counted ? site_cached(a, stack, kind) : 0, (uint8_t)kind,
			  counted},
		     old;
	if (live_map_put(&a->live, &b, &old)) {
		/* a free we never saw (made before recording started, or lost) */
		a->replaced_blocks++;
		heap_gone(a, h, &old, seq, time_ns);
	}
	if (!counted)
		return;
	uint64_t bytes = size, blocks = 1;
	if (HW_UNLIKELY(a->sample_interval)) {
		analysis_weigh(a->sample_interval, addr, size, &bytes, &blocks);
		spread_change(a, b.site, h->id, size, 1);
		/* heap_change below makes this its tick's highest value (a free
		 * never does): the spread of that moment, here, where an exact
		 * trace's replay never comes */
		if (a->want_ticks && h->live + bytes > h->tick_max)
			tick_spread_mark(a);
	}
	struct kind_totals *k = &a->kinds[kind];
	k->allocs += blocks;
	k->alloc_bytes += bytes;
	struct site *s = &a->sites[b.site];
	s->allocs += blocks;
	s->alloc_bytes += bytes;
	heap_change(a, h, s, (int64_t)bytes, (int64_t)blocks, seq, time_ns);
}

/* A heap free; plain_free: not the free half of a realloc (temporaries). */
static inline __attribute__((always_inline)) void do_free(struct analysis *a, struct hot *h,
							   uint64_t addr, uint64_t seq, uint64_t time_ns,
							   struct thread_slot *me, bool plain_free)
{
	struct block b;
	if (!addr)
		return;
	if (!live_map_take(&a->live, addr, &b)) {
		a->unmatched_frees++;
		return;
	}
	if (plain_free && me->addr == addr && b.counted) {
		/* freed before the thread allocated again */
		uint64_t bytes = b.size, blocks = 1;
		if (HW_UNLIKELY(a->sample_interval))
			analysis_weigh(a->sample_interval, b.addr, b.size, &bytes, &blocks);
		a->sites[b.site].temp_count += blocks;
		a->sites[b.site].temp_bytes += bytes;
	}
	me->addr = 0;
	heap_gone(a, h, &b, seq, time_ns);
}

/* Replays the heap allocations and frees at the start of ev[0..n) (most of
 * a trace), up to the first other event, and returns how many it took. A
 * loop of its own keeps the heap's totals and its other state in registers. */
static size_t heap_run(struct analysis *a, struct hot *hp, const struct hw_event *ev, size_t n,
		       struct thread_slot *me, bool counted, uint64_t time_ns)
{
	struct hot h = *hp;
	size_t i = 0;
	for (; i < n; i++) {
		const struct hw_event *e = &ev[i];
		/* the free half of a realloc looks for a heap block whatever its kind */
		if (e->op > EV_REALLOC_ALLOC ||
		    (kind_class(e->kind) != CLASS_HEAP && e->op != EV_REALLOC_FREE))
			break;
		switch (e->op) {
		case EV_ALLOC:
		case EV_REALLOC_ALLOC:
			do_alloc(a, &h, e->kind, e->addr, e->size, e->stack, counted, e->seq, time_ns);
			me->addr = e->addr;
			break;
		default: /* EV_FREE, EV_REALLOC_FREE */
			do_free(a, &h, e->addr, e->seq, time_ns, me, e->op == EV_FREE);
			break;
		}
	}
	*hp = h;
	return i;
}

/* The heap kinds' live and freed totals, from the blocks still live. */
static void heap_kind_totals(struct analysis *a)
{
	size_t pos = 0;
	struct block b;
	while (live_map_iter(&a->live, &pos, &b)) {
		if (!b.counted)
			continue;
		uint64_t bytes = b.size, blocks = 1;
		if (a->sample_interval)
			analysis_weigh(a->sample_interval, b.addr, b.size, &bytes, &blocks);
		a->kinds[b.kind].live_bytes += bytes;
		a->kinds[b.kind].live_blocks += blocks;
	}
	for (int k = 0; k < HW_KIND_COUNT; k++)
		if (kind_class(k) == CLASS_HEAP)
			a->kinds[k].frees = a->kinds[k].allocs - a->kinds[k].live_blocks;
	for (size_t i = 0; i < a->nsites; i++)
		a->temporaries += a->sites[i].temp_count;
}

/* Closes the heap's tick that ended at a change of the clock (live: the
 * heap's live bytes now, max: the most in the tick). */
static void push_tick(struct analysis *a, uint64_t time_ns, uint64_t live, uint64_t max)
{
	if (a->nticks == HW_MAX_TICKS) { /* halve the resolution */
		size_t k = 0;
		for (size_t i = 0; i + 1 < a->nticks; i += 2, k++) {
			struct heap_tick *x = &a->ticks[i], *y = &a->ticks[i + 1];
			bool first = x->max > y->max; /* the pair's highest value */
			a->ticks[k] = (struct heap_tick){x->time_ns, first ? x->max : y->max, y->end};
			if (a->tick_sp) {
				struct tick_spread *sx = &a->tick_sp[i], *sy = &a->tick_sp[i + 1];
				a->tick_sp[k] = (struct tick_spread){first ? sx->max_var : sy->max_var,
								     sy->end_var,
								     first ? sx->max_n : sy->max_n, sy->end_n};
			}
		}
		a->nticks = k;
	}
	HW_GROW(a->ticks, a->nticks, a->tickcap);
	if (a->sample_interval && a->tick_spcap < a->tickcap) { /* zeros before it */
		a->tick_sp = xrealloc(a->tick_sp, a->tickcap * sizeof(*a->tick_sp));
		memset(a->tick_sp + a->tick_spcap, 0,
		       (a->tickcap - a->tick_spcap) * sizeof(*a->tick_sp));
		a->tick_spcap = a->tickcap;
	}
	if (a->tick_sp)
		a->tick_sp[a->nticks] = (struct tick_spread){(double)a->tick_var, (double)a->heap_var,
							     a->tick_n, a->heap_n};
	a->ticks[a->nticks++] = (struct heap_tick){time_ns, max, live};
}

/* A thread's slot (created on first use). */
static struct thread_slot *thread_find(struct thread_table *t, uint32_t tid)
{
	if ((t->n + 1) * 2 > t->mask + 1) {
		size_t mask = t->mask ? t->mask * 2 + 1 : 63;
		struct thread_slot *slots = xcalloc(mask + 1, sizeof(*slots));
		for (size_t i = 0; t->slots && i <= t->mask; i++) {
			if (!t->slots[i].tid)
				continue;
			size_t j = (t->slots[i].tid * 2654435761u) & mask;
			while (slots[j].tid)
				j = (j + 1) & mask;
			slots[j] = t->slots[i];
		}
		free(t->slots);
		t->slots = slots;
		t->mask = mask;
	}
	size_t j = (tid * 2654435761u) & t->mask;
	while (t->slots[j].tid && t->slots[j].tid != tid)
		j = (j + 1) & t->mask;
	if (!t->slots[j].tid) {
		t->slots[j].tid = tid;
		t->n++;
	}
	t->hit = &t->slots[j];
	return t->hit;
}

static inline struct thread_slot *thread_of(struct thread_table *t, uint32_t tid)
{
	tid = tid ? tid : UINT32_MAX; /* 0 marks an empty slot */
	if (t->hit && t->hit->tid == tid)
		return t->hit; /* the same thread as the event before */
	return thread_find(t, tid);
}

static bool label_is(const char *name, size_t len, const char *label)
{
	return label && strlen(label) == len && !memcmp(name, label, len);
}

static void on_definition(void *ctx, const struct cursor *c, const struct hw_record *r)
{
	struct analysis *a = ctx;
	if (!r) { /* the event after the definitions: their time */
		if (c == a->pending_cursor)
			for (size_t i = 0; i < a->npending; i++)
				a->st.nodes[a->pending[i]].def_seq = c->ev[0].seq;
		a->npending = 0;
		return;
	}
	switch (r->tag) {
	case HW_REC_STACK: {
		/* until the event after it comes: the cursor's last event */
		uint32_t i = stack_table_add(&a->st, (uint32_t)r->id, (uint32_t)r->parent,
					     r->frame_kind, r->frame, c->last_seq);
		if (i == HW_NO_NODE)
			break;
		if (a->pending_cursor != c) {
			a->npending = 0;
			a->pending_cursor = c;
		}
		HW_GROW(a->pending, a->npending, a->pendcap);
		a->pending[a->npending++] = i;
		break;
	}
	case HW_REC_MODULE: {
		HW_GROW(a->modules, a->nmodules, a->modcap);
		struct module_rec *m = &a->modules[a->nmodules++];
		memset(m, 0, sizeof(*m));
		m->bias = r->bias;
		m->lo = r->lo;
		m->hi = r->hi;
		m->load_seq = r->seq;
		m->build_id_len = r->build_id_len;
		memcpy(m->build_id, r->build_id, r->build_id_len);
		m->path = xstrndup(r->path, r->path_len);
		break;
	}
	/* MODULE_UNLOAD: a load stands for its addresses until another load
	 * covers them (see modmap_resolve) */
	case HW_REC_CODE:
		pycode_add(&a->codes, (uint32_t)r->id, (int)r->frame, r->path, r->path_len, r->name,
			   r->name_len, r->blob, r->blob_len);
		break;
	case HW_REC_PYTHON:
		a->python_version = r->version;
		a->python_frames = r->frames_ok;
		break;
	case HW_REC_PYTHON_INFO:
		a->python_flags = r->flags;
		snprintf(a->python_layout, sizeof(a->python_layout), "%.*s", (int)r->path_len, r->path);
		snprintf(a->python_off, sizeof(a->python_off), "%.*s", (int)r->name_len, r->name);
		break;
	case HW_REC_SAMPLE:
		a->sample_interval = r->size;
		break;
	case HW_REC_RSS:
		HW_GROW(a->rss, a->nrss, a->rsscap);
		a->rss[a->nrss++] = (struct rss_sample){r->time_ns, r->rss};
		if (r->rss > a->rss_peak)
			a->rss_peak = r->rss;
		break;
	default:
		break;
	}
}

static void leak_snapshot(struct analysis *a, int point, uint64_t seq, uint64_t time_ns)
{
	for (size_t i = 0; i < a->nsites; i++) {
		a->sites[i].leak_bytes = a->sites[i].live_bytes;
		a->sites[i].leak_blocks = a->sites[i].live_blocks;
	}
	for (size_t i = 0; a->spread && i < a->spreadcap && i < a->nsites; i++) {
		a->spread[i].leak_var = a->spread[i].live_var;
		a->spread[i].leak_n = a->spread[i].live_n;
		a->spread[i].leak_cvar = a->spread[i].live_cvar;
	}
	a->leak_point = point;
	a->leak_seq = seq;
	a->leak_time_ns = time_ns;
}

/* The trace ends in an exec: the kernel frees everything the image had,
 * so nothing leaked; what the leak point would have counted (eligible heap
 * sites) is kept as the heap live at exec. */
static void exec_not_leaked(struct analysis *a)
{
	for (size_t i = 0; i < a->nsites; i++) {
		struct site *st = &a->sites[i];
		if (st->cls == CLASS_HEAP && st->eligible) {
			a->exec_live_bytes += st->leak_bytes;
			a->exec_live_blocks += st->leak_blocks;
		}
		st->leak_bytes = st->leak_blocks = 0;
	}
	for (size_t i = 0; a->spread && i < a->spreadcap && i < a->nsites; i++) {
		a->spread[i].leak_var = 0;
		a->spread[i].leak_n = 0;
	}
	a->leak_point = LEAK_AT_EXEC;
	a->leak_seq = a->marks[a->exec_mark].seq;
	a->leak_time_ns = a->marks[a->exec_mark].time_ns;
}

/* An EXIT mark (_exit, _Exit): its label is the status in decimal, from a
 * trace that may say anything: a number only when it is one. */
static void note_exit(struct analysis *a, const char *label, size_t len, uint64_t now)
{
	a->exit_seen = true;
	a->exit_time_ns = now;
	a->exit_status_known = false;
	size_t i = len && label[0] == '-';
	if (len == i || len - i > 10)
		return;
	int64_t v = 0;
	for (size_t j = i; j < len; j++) {
		if (label[j] < '0' || label[j] > '9')
			return;
		v = v * 10 + (label[j] - '0');
	}
	v = i ? -v : v;
	if (v < INT32_MIN || v > INT32_MAX)
		return;
	a->exit_status = (int)v;
	a->exit_status_known = true;
}

/* For every canonical node: does its stack (it and its callers) have a
 * Python frame (bit 0), and a frame of the import machinery
 * (<frozen importlib._bootstrap...>, bit 1)? And the same of the frames
 * above its innermost thread-start frame, the thread's own (bits 2 and 3).
 * One pass in index order: a node's caller comes before it, so each node
 * costs O(1) however deep the stacks are (walking every stack to its root
 * was quadratic in a deep chain of them). */
#define LEAK_PY 1
#define LEAK_IMPORT 2
#define LEAK_OWN_PY 4
#define LEAK_OWN_IMPORT 8
static uint8_t *python_leak_flags(const struct analysis *a)
{
	uint8_t *fl = xmalloc(a->st.ncnodes + 1);
	for (size_t c = 0; c < a->st.ncnodes; c++) {
		const struct cnode *cn = &a->st.cnodes[c];
		uint8_t f = cn->parent < c ? fl[cn->parent] : 0;
		if (cn->frame_kind == HW_FRAME_THREAD) {
			f &= LEAK_PY | LEAK_IMPORT; /* a thread's own frames start here */
		} else if (cn->frame_kind == HW_FRAME_PYTHON) {
			const struct pycode *code = pycode_find(&a->codes, (uint32_t)(cn->frame >> 32));
			if (code)
				f |= strncmp(code->filename, "<frozen importlib._bootstrap", 28)
					     ? LEAK_PY | LEAK_OWN_PY
					     : LEAK_IMPORT | LEAK_OWN_IMPORT;
		}
		fl[c] = f;
	}
	return fl;
}

/* Is a block of the stack with these flags a leak in a Python process? Made
 * under a Python frame and not by the import machinery. A thread that runs
 * Python frames of its own is judged by them: one a module starts while it
 * is imported (its stacks hang under the import's frames, the thread's
 * origin) leaks like any other (before, none of its blocks ever did: a
 * worker keeping 10 MB passed --max-leaked 1M). A thread without Python
 * frames (a native pool) is judged by the frames that started it, as
 * before: OpenBLAS's pool, started at `import numpy`, leaks nothing. */
static bool python_leak_eligible(uint8_t f)
{
	if (f & (LEAK_OWN_PY | LEAK_OWN_IMPORT))
		return (f & (LEAK_OWN_PY | LEAK_OWN_IMPORT)) == LEAK_OWN_PY;
	return (f & (LEAK_PY | LEAK_IMPORT)) == LEAK_PY;
}

static int cmp_rss(const void *x, const void *y)
{
	const struct rss_sample *a = x, *b = y;
	return a->time_ns < b->time_ns ? -1 : a->time_ns > b->time_ns;
}

static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
	return a < b ? -1 : a > b;
}


/* The replay's state between replay_step calls (a follower stops at a
 * window's marks and goes on later, see follow.c). */
struct replay {
	struct analysis *a;
	struct trace *t;
	struct analysis_opts opts;
	struct merge *m;
	const struct hw_event *batch;
	size_t nb, i; /* the batch handed out last, and the next of its events */
	uint64_t now;
	uint32_t tid;
	struct thread_slot nobody, *me;
	bool started, leak_taken, over;
	bool stop_at_marks; /* return at the window's start and end (follow) */
	bool window_only; /* replay_end: figures of the window's callsites only */
	struct hot h;
	uint64_t events, last_seq;
	uint64_t gc_start_live; /* the heap's live bytes at the open GC_START */
	uint64_t exec_open; /* EXEC marks without their EXEC_FAILED */
	struct progress pr;
};

struct replay *replay_begin(struct analysis *a, struct trace *t, const struct analysis_opts *opts,
			    bool follow)
{
	static const struct analysis_opts none;
	if (!opts)
		opts = &none;
	struct replay *r = xcalloc(1, sizeof(*r));
	r->opts = *opts;
	r->started = !opts->from_mark;
	memset(a, 0, sizeof(*a));
	a->trace = t;
	a->hook = opts->hook;
	a->hook_ctx = opts->hook_ctx;
	a->want_ticks = opts->heap_ticks;
	stack_table_init(&a->st);
	pycode_table_init(&a->codes);
	live_map_init(&a->live);
	a->site_mask = 1023;
	a->site_index = xcalloc(a->site_mask + 1, sizeof(*a->site_index));
	for (int i = 0; i < CLASS_COUNT; i++)
		a->peaks[i].id = 1;
	r->a = a;
	r->t = t;
	r->m = follow ? merge_new_follow(t, on_definition, a) : merge_new(t, on_definition, a);
	r->me = &r->nobody; /* until the first EV_THREAD */
	r->h = (struct hot){0, 0, 1, 0};
	r->gc_start_live = UINT64_MAX;
	r->stop_at_marks = follow;
	uint64_t total;
	merge_done(r->m, &total);
	const char *base = strrchr(t->path, '/');
	if (!follow)
		progress_begin(&r->pr, base ? base + 1 : t->path, total);
	return r;
}

struct merge *replay_merge(struct replay *r)
{
	return r->m;
}

void replay_window(struct replay *r, const char *from, const char *to)
{
	r->opts.from_mark = from;
	r->opts.to_mark = to;
	r->started = !from;
}

void replay_window_only(struct replay *r)
{
	r->window_only = true;
}

/* Keeps only the stack nodes of the sites' stacks (and their callers), in
 * their order: a follower's window has few of the session's stacks, and
 * the end of the replay (canonical stacks, Python positions, modules) was
 * over all of them, which grew with each test. A node's canonical path is
 * its callers', so the sites' canonical stacks print the same. */
static void prune_stacks(struct analysis *a)
{
	struct stack_table *old = &a->st;
	uint8_t *need = xcalloc(old->n + 1, 1);
	for (size_t i = 0; i < a->nsites; i++) {
		uint32_t k = stack_table_find(old, a->sites[i].raw_stack);
		while (k != HW_NO_NODE && !need[k]) {
			need[k] = 1;
			uint32_t p = old->nodes[k].parent_raw;
			k = p ? stack_table_find(old, p) : HW_NO_NODE;
		}
	}
	struct stack_table nt;
	stack_table_init(&nt);
	for (size_t i = 0; i < old->n; i++)
		if (need[i])
			stack_table_add(&nt, old->nodes[i].raw_id, old->nodes[i].parent_raw,
					old->nodes[i].frame_kind, old->nodes[i].frame,
					old->nodes[i].def_seq);
	free(need);
	stack_table_free(old);
	a->st = nt;
	a->npending = 0;
}

void replay_unstart(struct replay *r)
{
	r->started = false;
	r->a->window_start_ns = 0;
}

/* Replays the events the merge hands out until it has no more (returns
 * REPLAY_DRAINED), or, with stop_at_marks, right after the marker that
 * starts the window (REPLAY_STARTED) or ends it (REPLAY_OVER). */
int replay_step(struct replay *r)
{
	struct analysis *a = r->a;
	struct merge *m = r->m;
	const struct analysis_opts *opts = &r->opts;
	const struct hw_event *batch = r->batch;
	size_t nb = r->nb, i0 = r->i;
	uint64_t now = r->now;
	uint32_t tid = r->tid;
	struct thread_slot *me = r->me;
	bool started = r->started, leak_taken = r->leak_taken, over = r->over;
	bool stop_at = r->stop_at_marks;
	struct hot h = r->h;
	uint64_t events = r->events, last_seq = r->last_seq;
	uint64_t gc_start_live = r->gc_start_live, exec_open = r->exec_open;
	uint64_t done, total;
	int why = REPLAY_DRAINED;
	if (i0 >= nb) {
		nb = merge_batch(m, &batch);
		i0 = 0;
	}
	for (; nb > 0; nb = merge_batch(m, &batch), i0 = 0) {
		if (!stop_at) {
			done = merge_done(m, &total);
			progress_update(&r->pr, done, total, events);
		}
		for (size_t i = i0; i < nb; i++) {
			if (!over) {
				size_t k = heap_run(a, &h, batch + i, nb - i, me, started, now);
				if (k) {
					events += k;
					last_seq = batch[i + k - 1].seq;
					i += k;
					if (i == nb)
						break;
				}
			}
			const struct hw_event *e = &batch[i];
			if (e->op == EV_TIME) {
				if (a->want_ticks && !over) {
					push_tick(a, now, h.live, h.tick_max);
					h.tick_max = h.live;
					a->tick_var = a->heap_var;
					a->tick_n = a->heap_n;
				}
				now = e->addr;
				if (now > a->end_time_ns) /* the run's, window or not */
					a->end_time_ns = now;
				continue;
			}
			if (e->op == EV_THREAD) {
				tid = (uint32_t)e->addr;
				me = thread_of(&a->threads_tab, tid);
				continue;
			}
			if (over) {
				if (e->op == EV_TRAILER)
					a->clean_exit = true;
				else if (e->op == EV_MARK && e->kind == HW_MARK_EXIT)
					note_exit(a, (const char *)(uintptr_t)e->addr, (size_t)e->size,
						  now);
				continue;
			}
			uint64_t seq = e->seq;
			last_seq = seq;
			events++;
			/* heap_run took the heap's allocations and frees */
			switch (e->op) {
			case EV_ALLOC:
				do_map(a, e->kind, e->addr, e->size, e->stack, started, seq, now);
				break;
			case EV_REALLOC_ALLOC:
				do_map(a, e->kind, e->addr, e->size, e->stack, started, seq, now);
				me->addr = e->addr;
				break;
			case EV_UNMAP:
				do_unmap(a, e->addr, e->size);
				break;
			case EV_REMAP_UNMAP: {
				int k = do_unmap(a, e->addr, e->size);
				me->remap_kind = (uint8_t)(k < 0 ? HW_KIND_MMAP : k);
				break;
			}
			case EV_REMAP_MAP:
				do_map(a, me->remap_kind, e->addr, e->size, e->stack, started, seq, now);
				break;
			case EV_TRAILER:
				a->clean_exit = true;
				a->trailer_allocs = e->addr;
				a->trailer_frees = e->size;
				break;
			case EV_RETAG: {
				/* a free list's object, made again by another
				 * stack: its live block moves there */
				struct block b, old;
				if (!live_map_take(&a->live, e->addr, &b)) {
					a->retags_unknown++;
					break;
				}
				a->retags++;
				heap_gone(a, &h, &b, seq, now);
				b.counted = started;
				b.site = started ? site_cached(a, e->stack, b.kind) : 0;
				live_map_put(&a->live, &b, &old);
				if (started)
					heap_change(a, &h, &a->sites[b.site], (int64_t)b.size, 1, seq, now);
				me->addr = e->addr;
				break;
			}
			case EV_MARK: {
				const char *name = (const char *)(uintptr_t)e->addr;
				size_t len = (size_t)e->size;
				HW_GROW(a->marks, a->nmarks, a->markcap);
				struct mark mk = {seq, now, e->kind, xstrndup(name, len), h.live, 0,
						  (double)a->heap_var, 0, a->heap_n, 0};
				if (e->kind == HW_MARK_GC_START) {
					gc_start_live = h.live;
					a->gc_open = true;
					a->gc_var = 0;
					a->gc_n = 0;
				} else if (e->kind == HW_MARK_GC_END && gc_start_live != UINT64_MAX) {
					mk.freed_bytes = gc_start_live > h.live ? gc_start_live - h.live : 0;
					mk.freed_var = (double)a->gc_var;
					mk.freed_n = a->gc_n;
					gc_start_live = UINT64_MAX;
					a->gc_open = false;
				}
				a->marks[a->nmarks++] = mk;
				if (e->kind == HW_MARK_EXIT)
					note_exit(a, name, len, now);
				if (e->kind == HW_MARK_EXEC) {
					exec_open++;
					a->exec_mark = a->nmarks - 1;
				} else if (e->kind == HW_MARK_EXEC_FAILED && exec_open) {
					exec_open--;
				}
				if (e->kind != HW_MARK_USER) {
					if (e->kind == HW_MARK_PY_FINALIZE && !opts->to_mark &&
					    !leak_taken) {
						leak_snapshot(a, LEAK_AT_FINALIZE, seq, now);
						leak_taken = true;
					}
				} else if (!started && label_is(name, len, opts->from_mark)) {
					started = true;
					a->window_start_ns = now;
					if (stop_at) {
						i0 = i + 1;
						why = REPLAY_STARTED;
						goto out;
					}
				} else if (started && opts->to_mark && label_is(name, len, opts->to_mark)) {
					leak_snapshot(a, LEAK_AT_MARK, seq, now);
					leak_taken = true;
					over = true;
					if (stop_at) {
						i0 = i + 1;
						why = REPLAY_OVER;
						goto out;
					}
				}
				break;
			}
			default:
				break;
			}
		}
	}
	i0 = nb = 0;
out:
	r->batch = batch;
	r->nb = nb;
	r->i = i0;
	r->now = now;
	r->tid = tid;
	r->me = me;
	r->started = started;
	r->leak_taken = leak_taken;
	r->over = over;
	r->h = h;
	r->events = events;
	r->last_seq = last_seq;
	r->gc_start_live = gc_start_live;
	r->exec_open = exec_open;
	return why;
}

void replay_abandon(struct replay *r)
{
	if (!r->stop_at_marks)
		progress_end(&r->pr);
	merge_free(r->m);
	free(r);
}

enum hw_err replay_end(struct replay *r)
{
	struct analysis *a = r->a;
	struct trace *t = r->t;
	struct analysis_opts opts_copy = r->opts;
	const struct analysis_opts *opts = &opts_copy;
	bool started = r->started, leak_taken = r->leak_taken;
	uint64_t now = r->now, exec_open = r->exec_open;
	struct hot h = r->h;
	a->events = r->events;
	a->last_seq = r->last_seq;
	bool window_only = r->window_only;
	replay_abandon(r);
	hot_put(a, &h);
	if (window_only)
		prune_stacks(a);
	if (!window_only) /* a window: its blocks are a few of the live ones */
		heap_kind_totals(a);
	if (a->want_ticks)
		push_tick(a, now, h.live, h.tick_max);
	a->window = opts->from_mark || opts->to_mark;
	if (!started) {
		err_print("%s: marker \"%s\" is not in the trace", t->path, opts->from_mark);
		return HW_ERR_USAGE;
	}
	if (opts->to_mark && !leak_taken) {
		err_print("%s: marker \"%s\" is not in the trace after \"%s\"", t->path, opts->to_mark,
			  opts->from_mark ? opts->from_mark : "the start");
		return HW_ERR_USAGE;
	}
	if (a->nrss > 1)
		qsort(a->rss, a->nrss, sizeof(*a->rss), cmp_rss);
	if (a->nrss && a->rss[a->nrss - 1].time_ns > a->end_time_ns)
		a->end_time_ns = a->rss[a->nrss - 1].time_ns;
	if (!leak_taken)
		leak_snapshot(a, LEAK_AT_END, a->last_seq, a->end_time_ns);
	/* an EXEC no EXEC_FAILED cancelled: exec'd, unless the process then
	 * exited (its trailer: a thread's exec was under way when another
	 * ended the process) or recording stopped (a failure after the stop
	 * left no EXEC_FAILED: whether it exec'd is not known) */
	a->execd = exec_open > 0 && !a->clean_exit && !t->stop.reason;
	a->exited = a->exit_seen && !a->clean_exit && !a->execd;
	/* Threads write a code object under ids of their own: frames of equal
	 * code objects must become equal before stacks are canonicalized. */
	pycode_dedup(&a->codes);
	/* Two instructions at one source position (BUILD_LIST and LIST_EXTEND
	 * of [1, 2, 3]) are one frame: stacks that print the same are one
	 * callsite. Frames of different positions of a line stay apart, and
	 * the reports show their columns where they would print the same. */
	struct pycode_frame *pf = xmalloc((a->st.n + 1) * sizeof(*pf));
	size_t npf = 0;
	for (size_t i = 0; i < a->st.n; i++) {
		struct node *n = &a->st.nodes[i];
		if (n->frame_kind != HW_FRAME_PYTHON)
			continue;
		const struct pycode *c = pycode_find(&a->codes, (uint32_t)(n->frame >> 32));
		uint32_t instr = (uint32_t)n->frame; /* instruction + 1; 0 = none */
		if (c)
			pf[npf++] = (struct pycode_frame){
				c->canon, instr && instr <= INT32_MAX ? (int32_t)instr - 1 : -1, (uint32_t)i};
	}
	pycode_first_positions(&a->codes, pf, npf);
	for (size_t k = 0; k < npf; k++) {
		struct node *n = &a->st.nodes[pf[k].node];
		uint32_t instr = pf[k].lasti >= 0 ? (uint32_t)pf[k].lasti + 1 : (uint32_t)n->frame;
		n->frame = (uint64_t)a->codes.codes[pf[k].code].id << 32 | instr;
	}
	free(pf);
	modmap_resolve(a);
	stack_table_canonicalize(&a->st);
	usercode_index(a);

	uint32_t *tids = xmalloc((t->nchunks + 1) * sizeof(*tids));
	for (size_t i = 0; i < t->nchunks; i++)
		tids[i] = t->chunks[i].thread;
	if (t->nchunks > 1)
		qsort(tids, t->nchunks, sizeof(*tids), cmp_u32);
	for (size_t i = 0; i < t->nchunks; i++)
		a->threads += !i || tids[i] != tids[i - 1];
	free(tids);

	/* The Python leak definition needs Python frames: a trace recorded
	 * without them is judged as a native one (everything live at the end),
	 * never by a filter that would keep nothing. A Python process's leaks:
	 * stacks with a Python frame and none of the import machinery's. */
	bool filter = a->python_version && a->python_frames && !opts->include_all;
	if (a->python_version && !a->python_frames && !opts->hook)
		warn_print("%s: %s", t->path, analysis_python_off(a, NULL, 0));
	char stop[400]; /* every report: its figures end at the stop */
	if (!opts->hook && trace_stop_note(t, stop, sizeof(stop)))
		warn_print("%s: %s", t->path, stop);
	uint8_t *fl = filter ? python_leak_flags(a) : NULL;
	for (size_t i = 0; i < a->nsites; i++) {
		uint32_t c = stack_table_canon(&a->st, a->sites[i].raw_stack);
		a->sites[i].canon = c;
		a->sites[i].eligible = !filter || (c != HW_NO_NODE && python_leak_eligible(fl[c]));
	}
	free(fl);
	if (a->execd && a->leak_point == LEAK_AT_END)
		exec_not_leaked(a);
	return HW_OK;
}

enum hw_err analysis_run(struct analysis *a, struct trace *t, const struct analysis_opts *opts)
{
	struct replay *r = replay_begin(a, t, opts, false);
	replay_step(r);
	return replay_end(r);
}

const char *analysis_python_off(const struct analysis *a, char *buf, size_t cap)
{
	static char own[HW_MAX_PY_REASON + 200];
	if (!buf) {
		buf = own;
		cap = sizeof(own);
	}
	if (!a->python_version || a->python_frames)
		return NULL;
	snprintf(buf, cap,
		 "Python %u.%u: Python frames were off (%s); stacks are native and leaks are "
		 "everything live at the end",
		 (unsigned)(a->python_version >> 24 & 0xff), (unsigned)(a->python_version >> 16 & 0xff),
		 a->python_off[0] ? a->python_off : "the shim could not read this version's frames");
	return buf;
}

void analysis_release_replay(struct analysis *a)
{
	stack_table_free(&a->st);
	if (a->sites)
		munmap(a->sites, a->sitecap * sizeof(struct site));
	a->sites = NULL;
	a->nsites = a->sitecap = 0;
	free(a->site_index);
	a->site_index = NULL;
	free(a->spread);
	a->spread = NULL;
	a->spreadcap = 0;
	live_map_free(&a->live);
	range_map_free(&a->maps);
	free(a->threads_tab.slots);
	memset(&a->threads_tab, 0, sizeof(a->threads_tab));
	free(a->ticks);
	a->ticks = NULL;
	a->nticks = a->tickcap = 0;
	free(a->tick_sp);
	a->tick_sp = NULL;
	a->tick_spcap = 0;
}

void analysis_free(struct analysis *a)
{
	stack_table_free(&a->st);
	pycode_table_free(&a->codes);
	free(a->py_node);
	free(a->user_node);
	for (size_t i = 0; i < a->nmodules; i++)
		free(a->modules[i].path);
	free(a->modules);
	free(a->files);
	free(a->pending);
	if (a->sites)
		munmap(a->sites, a->sitecap * sizeof(struct site));
	free(a->site_index);
	free(a->spread);
	live_map_free(&a->live);
	range_map_free(&a->maps);
	free(a->rss);
	free(a->threads_tab.slots);
	free(a->ticks);
	free(a->tick_sp);
	for (size_t i = 0; i < a->nmarks; i++)
		free(a->marks[i].label);
	free(a->marks);
	memset(a, 0, sizeof(*a));
}
