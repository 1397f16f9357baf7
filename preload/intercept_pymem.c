/* CPython's allocator domains (shim, intercept stage): hooks on the PyMem MEM
 * and OBJ domains that wrap whatever allocator was there. Each hook keeps the
 * allocator it wraps in its own ctx (a global would break when tracemalloc or
 * the debug hooks wrap us in turn). PYTHONMALLOC and -X dev replace the
 * allocators while the interpreter starts: until Py_IsInitialized() the libc
 * interposers call python_check_hooks, which installs the hooks again. */
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "heapwise/trace_format.h"
#include "heapwise/varint.h"
#include "log.h"
#include "modules.h"
#include "python.h"
#include "sample.h"
#include "stack_native.h"
#include "tracker.h"

enum { DOMAIN_RAW = 0, DOMAIN_MEM = 1, DOMAIN_OBJ = 2 };

/* PyMemAllocatorEx, declared here so the shim needs no Python headers. */
struct pymem_allocator {
	void *ctx;
	void *(*malloc)(void *ctx, size_t size);
	void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
	void *(*realloc)(void *ctx, void *ptr, size_t size);
	void (*free)(void *ctx, void *ptr);
};

struct hook_ctx {
	struct pymem_allocator prev;
	int kind;
};

#define MAX_INSTALLS 16
static struct hook_ctx g_ctx[MAX_INSTALLS]; /* never reused: old chains stay valid */
static unsigned g_ninstalls;
static uint32_t g_py_version;

static void (*py_get_allocator)(int, struct pymem_allocator *);
static void (*py_set_allocator)(int, struct pymem_allocator *);
static int (*py_is_initialized)(void);
static char g_py_off[HW_MAX_PY_REASON]; /* why frames are off; "" when on */
uint32_t g_py_flags; /* HW_PY_* */

/* Py_Version is 3.11+; older interpreters say it in Py_GetVersion()'s text
 * ("3.10.13 (main, ..."), which needs no initialized interpreter. */
static uint32_t version_from_text(void)
{
	const char *(*get)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "Py_GetVersion");
	const char *s = get ? get() : NULL;
	unsigned part[3] = {0, 0, 0};
	for (int i = 0; s && i < 3; i++) {
		while (*s >= '0' && *s <= '9')
			part[i] = part[i] * 10 + (unsigned)(*s++ - '0');
		if (*s != '.')
			break;
		s++;
	}
	return part[0] < 256 && part[1] < 256 && part[2] < 256
		       ? part[0] << 24 | part[1] << 16 | part[2] << 8
		       : 0;
}

/* A realloc on the OBJ domain while the reference tracer runs (3.13+): as
 * hook_record_alloc's allocation, for a block that moved or grew. */
static inline void obj_realloc(struct thread_state *ts, uint64_t seq_free, void *old, void *p,
			       size_t n)
{
	ts->py_last = (uintptr_t)p;
	ts->py_last_size = n;
	uint32_t epoch = g_tags_on ? atomic_load(&g_tag_epoch) : 0;
	uint32_t stack = tracker_realloc(ts, HW_KIND_PYOBJ, seq_free, old, p, n);
	if (g_tags_on)
		python_tag(p, stack, epoch);
}

/* The sampling mode's hooks (sample.h), installed instead of the exact
 * mode's: the countdown and the guard around the wrapped call; a free or
 * realloc looks in the set of sampled blocks. */
static __attribute__((noinline)) void *sampled_alloc(struct hook_ctx *c, size_t nelem,
						     size_t n, bool zero)
{
	size_t size = zero ? nelem * n : n;
	enum sample_entry s = sample_enter_slow(size);
	void *p = zero ? c->prev.calloc(c->prev.ctx, nelem, n) : c->prev.malloc(c->prev.ctx, n);
	if (s != SAMPLE_NESTED) {
		hw_tls.guard = 0;
		if (s == SAMPLE_SAMPLED && p)
			sample_record_alloc(c->kind, p, size);
	}
	return p;
}

static void *sampled_hook_malloc(void *ctx, size_t n)
{
	struct hook_ctx *c = ctx;
	if (HW_LIKELY(sample_enter_fast(n))) {
		void *p = c->prev.malloc(c->prev.ctx, n);
		hw_tls.guard = 0;
		return p;
	}
	return sampled_alloc(c, 1, n, false);
}

/* pymalloc (the MEM and OBJ domains' allocator unless PYTHONMALLOC, -X dev
 * or an embedder chose another; free-threaded builds use mimalloc) gets
 * hooks of its own in the sampling mode:
 * - It serves 1-512 bytes from its pools without the allocators the hooks
 *   see, except for a new arena, whose allocator (wrap_arenas) takes the
 *   guard, and the bookkeeping of one (its arena table grows by realloc,
 *   its address map by calloc: a few, small, per new arena of 1 MiB; they
 *   count as the libc allocations they are). For those sizes the malloc
 *   hook needs no guard and tail-calls it: a compare, the countdown, a jump
 *   (15 instructions instead of 23 on x86-64).
 * - A sampled block is asked of it at 513 bytes at least: pymalloc gives
 *   those to PyMem_RawMalloc (libc's malloc, under the guard), and its
 *   free and realloc give a block that is not in its arenas back to
 *   PyMem_RawFree and PyMem_RawRealloc. So a sampled block's free reaches
 *   the libc free hook, which finds it in the set, and the domain's free
 *   needs no hook at all: the allocator installed has pymalloc's own free
 *   (CPython calls it inline again), and its address test, which it makes
 *   anyway, is the tag test of the unsampled frees. A sampled block takes
 *   a libc chunk of 513 bytes or more instead of a pool slot: about 530
 *   bytes more for each SIZE bytes of live small objects (0.1% at 512K). */
#define PYMALLOC_MAX 512 /* SMALL_REQUEST_THRESHOLD, 3.11-3.15 */

/* The size asked of pymalloc for a sampled block of n bytes. */
static inline size_t pymalloc_raw_size(size_t n)
{
	return n > PYMALLOC_MAX ? n : PYMALLOC_MAX + 1;
}

static __attribute__((noinline)) void *sampled_alloc_pymalloc(struct hook_ctx *c, size_t nelem,
							      size_t n, bool zero)
{
	size_t size = n;
	bool overflow = zero && __builtin_mul_overflow(nelem, n, &size);
	if (HW_LIKELY(!overflow) && HW_LIKELY(sample_enter_fast(size))) {
		/* over 512 bytes: pymalloc asks libc, under the guard */
		void *p = zero ? c->prev.calloc(c->prev.ctx, nelem, n) : c->prev.malloc(c->prev.ctx, n);
		hw_tls.guard = 0;
		return p;
	}
	enum sample_entry s = sample_enter_slow(size);
	void *p;
	if (s == SAMPLE_SAMPLED && !overflow)
		p = zero ? c->prev.calloc(c->prev.ctx, 1, pymalloc_raw_size(size))
			 : c->prev.malloc(c->prev.ctx, pymalloc_raw_size(size));
	else
		p = zero ? c->prev.calloc(c->prev.ctx, nelem, n) : c->prev.malloc(c->prev.ctx, n);
	if (s != SAMPLE_NESTED) {
		hw_tls.guard = 0;
		if (s == SAMPLE_SAMPLED && p && !overflow)
			sample_record_alloc(c->kind, p, size);
	}
	return p;
}

static void *sampled_hook_malloc_pymalloc(void *ctx, size_t n)
{
	struct hook_ctx *c = ctx;
	if (HW_LIKELY(n - 1 < PYMALLOC_MAX) && HW_LIKELY(sample_count_fast(n)))
		return c->prev.malloc(c->prev.ctx, n);
	return sampled_alloc_pymalloc(c, 1, n, false);
}

/* As the malloc hook: pymalloc's calloc serves 1-512 bytes from its pools
 * (and clears them itself). */
static void *sampled_hook_calloc_pymalloc(void *ctx, size_t nelem, size_t n)
{
	struct hook_ctx *c = ctx;
	size_t size;
	if (HW_LIKELY(!__builtin_mul_overflow(nelem, n, &size)) && HW_LIKELY(size - 1 < PYMALLOC_MAX) &&
	    HW_LIKELY(sample_count_fast(size)))
		return c->prev.calloc(c->prev.ctx, nelem, n);
	return sampled_alloc_pymalloc(c, nelem, n, true);
}

static __attribute__((noinline)) void *sampled_realloc_pymalloc(struct hook_ctx *c, void *old,
								size_t n)
{
	struct sample_realloc r;
	if (!sample_realloc_begin(&r, old))
		return c->prev.realloc(c->prev.ctx, old, n);
	/* drawn before the call: a sampled new block must be a raw one */
	bool taken = sample_take(n);
	void *p = c->prev.realloc(c->prev.ctx, old, taken ? pymalloc_raw_size(n) : n);
	sample_realloc_end(&r, c->kind, old, p, n, false, taken);
	return p;
}

static void *sampled_hook_realloc_pymalloc(void *ctx, void *old, size_t n)
{
	struct hook_ctx *c = ctx;
	if (HW_LIKELY(sample_realloc_fast(old, n))) {
		void *p = c->prev.realloc(c->prev.ctx, old, n);
		hw_tls.guard = 0;
		return p;
	}
	return sampled_realloc_pymalloc(c, old, n);
}

/* PyObjectArenaAllocator */
struct arena_allocator {
	void *ctx;
	void *(*alloc)(void *ctx, size_t size);
	void (*free)(void *ctx, void *ptr, size_t size);
};
static struct arena_allocator g_arena_prev;
static bool g_arenas_wrapped;

static void *arena_alloc(void *ctx, size_t n)
{
	(void)ctx;
	int g = hw_tls.guard;
	hw_tls.guard = 1;
	void *p = g_arena_prev.alloc(g_arena_prev.ctx, n);
	hw_tls.guard = g;
	return p;
}

static void arena_free(void *ctx, void *p, size_t n)
{
	(void)ctx;
	int g = hw_tls.guard;
	hw_tls.guard = 1;
	g_arena_prev.free(g_arena_prev.ctx, p, n);
	hw_tls.guard = g;
}

/* The sampling mode: pymalloc's arenas are mapped and unmapped under the
 * guard, whichever hook (or none) is below (sampled_hook_malloc_pymalloc
 * calls pymalloc without it). Checked at every install: an embedder's
 * second Py_Initialize resets the runtime's allocators. */
static void wrap_arenas(void)
{
	static void (*get)(struct arena_allocator *), (*set)(struct arena_allocator *);
	g_arenas_wrapped = false;
	if (!g_sample_interval)
		return;
	if (!get || !set) {
		get = (void (*)(struct arena_allocator *))dlsym(RTLD_DEFAULT, "PyObject_GetArenaAllocator");
		set = (void (*)(struct arena_allocator *))dlsym(RTLD_DEFAULT, "PyObject_SetArenaAllocator");
		if (!get || !set)
			return;
	}
	struct arena_allocator cur;
	get(&cur);
	if (cur.alloc != arena_alloc) {
		if (!cur.alloc || !cur.free)
			return;
		g_arena_prev = cur;
		struct arena_allocator ours = {NULL, arena_alloc, arena_free};
		set(&ours);
	}
	g_arenas_wrapped = true;
}

static void *hook_malloc_mem(void *ctx, size_t n);
static void *hook_malloc_obj(void *ctx, size_t n);

static bool ours_malloc(void *(*f)(void *, size_t))
{
	return f == hook_malloc_mem || f == hook_malloc_obj || f == sampled_hook_malloc ||
	       f == sampled_hook_malloc_pymalloc;
}

/* True when cur, the allocator the hook of domain wraps, is pymalloc:
 * CPython's own functions (in the object that has PyObject_Malloc), the
 * same in the MEM and OBJ domains, without a ctx, and not the RAW domain's
 * (PYTHONMALLOC=malloc gives all three malloc's; the debug hooks have a
 * ctx; mimalloc has a MEM and an OBJ function of its own). An allocator of
 * an embedder's is not taken for it. */
static bool is_pymalloc(const struct pymem_allocator *cur, int domain)
{
	if (cur->ctx || !g_arenas_wrapped)
		return false;
	uintptr_t addr[3] = {(uintptr_t)dlsym(RTLD_DEFAULT, "PyObject_Malloc"),
			     (uintptr_t)cur->malloc, (uintptr_t)cur->free};
	if (!addr[0] || !modules_same_object(addr, 3))
		return false;
	struct pymem_allocator raw, other;
	py_get_allocator(DOMAIN_RAW, &raw);
	py_get_allocator(domain == DOMAIN_OBJ ? DOMAIN_MEM : DOMAIN_OBJ, &other);
	if (ours_malloc(other.malloc))
		other = ((struct hook_ctx *)other.ctx)->prev;
	return !other.ctx && cur->malloc == other.malloc && cur->free == other.free &&
	       cur->realloc == other.realloc && cur->malloc != raw.malloc;
}

static void *sampled_hook_calloc(void *ctx, size_t nelem, size_t n)
{
	return sampled_alloc(ctx, nelem, n, true);
}

static void *sampled_hook_realloc(void *ctx, void *old, size_t n)
{
	struct hook_ctx *c = ctx;
	if (HW_LIKELY(sample_realloc_fast(old, n))) {
		void *p = c->prev.realloc(c->prev.ctx, old, n);
		hw_tls.guard = 0;
		return p;
	}
	struct sample_realloc r;
	if (!sample_realloc_begin(&r, old))
		return c->prev.realloc(c->prev.ctx, old, n);
	void *p = c->prev.realloc(c->prev.ctx, old, n);
	sample_realloc_end(&r, c->kind, old, p, n, false, -1);
	return p;
}

static __attribute__((noinline)) void sampled_free(struct hook_ctx *c, void *p)
{
	if (hw_tls.guard || !p) {
		c->prev.free(c->prev.ctx, p);
		return;
	}
	sample_free_slow(c->kind, p);
	c->prev.free(c->prev.ctx, p);
	hw_tls.guard = 0;
}

/* An unsampled free goes to the wrapped allocator without the guard, as a
 * tail call (a third of the instructions of a guarded one): what it does
 * inside is a libc free of the same block (not sampled: not in the set) or
 * pymalloc giving an arena back, an munmap the mapping hook records as an
 * UNMAP of a range the trace never had (arenas are mapped under the guard),
 * which the analyzer passes over. */
static void sampled_hook_free(void *ctx, void *p)
{
	struct hook_ctx *c = ctx;
	if (HW_LIKELY(!sample_maybe_sampled(p)) || hw_tls.guard) {
		c->prev.free(c->prev.ctx, p);
		return;
	}
	sampled_free(c, p);
}

/* The exact mode's hooks, one set per domain: the kind is a constant, and
 * the record is written inline (tracker_record_*), one frame an event.
 * errno: the record's own code makes no call that can set it, and each
 * out-of-line path it may take keeps it (HW_KEEPS_ERRNO in tracker.h), so
 * these hooks do not save it around the record (six instructions an
 * event: issue 17); the reference tracer's paths still do. */

/* An allocation's record; on the OBJ domain while the reference tracer
 * runs (3.13+) it notes the thread's last block, and the memo of tags
 * learns the block's stack (obj_alloc). */
static inline __attribute__((always_inline)) void hook_record_alloc(struct thread_state *ts,
								    int kind, void *p, size_t n)
{
	if (kind == HW_KIND_PYOBJ && HW_UNLIKELY(g_py_reftracer_on)) {
		int e = *ts->errnop;
		ts->py_last = (uintptr_t)p;
		ts->py_last_size = n;
		bool tags = g_tags_on;
		/* the epoch before the record's sequence number */
		uint32_t epoch = tags ? atomic_load(&g_tag_epoch) : 0;
		uint32_t stack = tracker_record_alloc(ts, kind, p, n);
		if (tags)
			python_tag(p, stack, epoch);
		if (HW_UNLIKELY(++ts->py_recheck >= HW_PY_RECHECK)) {
			ts->py_recheck = 0;
			python_reftracer_recheck();
		}
		*ts->errnop = e;
	} else {
		tracker_record_alloc(ts, kind, p, n);
	}
}

static inline __attribute__((always_inline)) void *hook_malloc_of(void *ctx, size_t n, int kind)
{
	struct hook_ctx *c = ctx;
	struct thread_state *ts = tracker_enter();
	void *p = c->prev.malloc(c->prev.ctx, n);
	if (ts) {
		if (p)
			hook_record_alloc(ts, kind, p, n);
		tracker_leave();
	}
	return p;
}

static inline __attribute__((always_inline)) void *hook_calloc_of(void *ctx, size_t n, size_t size,
								  int kind)
{
	struct hook_ctx *c = ctx;
	struct thread_state *ts = tracker_enter();
	void *p = c->prev.calloc(c->prev.ctx, n, size);
	if (ts) {
		if (p)
			hook_record_alloc(ts, kind, p, n * size);
		tracker_leave();
	}
	return p;
}

static inline __attribute__((always_inline)) void *hook_realloc_of(void *ctx, void *old, size_t n,
								   int kind)
{
	struct hook_ctx *c = ctx;
	struct thread_state *ts = tracker_enter();
	uint64_t seq_free = ts && old ? tracker_event_seq(ts) : 0;
	void *p = c->prev.realloc(c->prev.ctx, old, n);
	if (ts) {
		if (p && !old) {
			hook_record_alloc(ts, kind, p, n);
		} else if (p) {
			if (kind == HW_KIND_PYOBJ && g_py_reftracer_on) {
				int e = *ts->errnop;
				obj_realloc(ts, seq_free, old, p, n);
				*ts->errnop = e;
			} else {
				tracker_record_realloc(ts, kind, seq_free, old, p, n);
			}
		}
		tracker_leave();
	}
	return p;
}

static inline __attribute__((always_inline)) void hook_free_of(void *ctx, void *p, int kind)
{
	struct hook_ctx *c = ctx;
	struct thread_state *ts = p ? tracker_enter() : NULL;
	if (ts)
		tracker_record_free(ts, kind, tracker_event_seq(ts), p);
	c->prev.free(c->prev.ctx, p);
	if (ts)
		tracker_leave();
}

#define HOOKS(dom, kind)                                                                  \
	static void *hook_malloc_##dom(void *ctx, size_t n)                               \
	{                                                                                 \
		return hook_malloc_of(ctx, n, kind);                                      \
	}                                                                                 \
	static void *hook_calloc_##dom(void *ctx, size_t n, size_t size)                  \
	{                                                                                 \
		return hook_calloc_of(ctx, n, size, kind);                                \
	}                                                                                 \
	static void *hook_realloc_##dom(void *ctx, void *old, size_t n)                   \
	{                                                                                 \
		return hook_realloc_of(ctx, old, n, kind);                                \
	}                                                                                 \
	static void hook_free_##dom(void *ctx, void *p)                                   \
	{                                                                                 \
		hook_free_of(ctx, p, kind);                                               \
	}
HOOKS(mem, HW_KIND_PYMEM)
HOOKS(obj, HW_KIND_PYOBJ)

static void install(int domain, int kind)
{
	struct pymem_allocator cur;
	py_get_allocator(domain, &cur);
	if (ours_malloc(cur.malloc))
		return;
	if (g_ninstalls == MAX_INSTALLS)
		return;
	struct hook_ctx *c = &g_ctx[g_ninstalls++];
	c->prev = cur;
	c->kind = kind;
	struct pymem_allocator ours =
		kind == HW_KIND_PYOBJ
			? (struct pymem_allocator){c, hook_malloc_obj, hook_calloc_obj, hook_realloc_obj,
						   hook_free_obj}
			: (struct pymem_allocator){c, hook_malloc_mem, hook_calloc_mem, hook_realloc_mem,
						   hook_free_mem};
	if (g_sample_interval && is_pymalloc(&cur, domain))
		ours = (struct pymem_allocator){c, sampled_hook_malloc_pymalloc,
						sampled_hook_calloc_pymalloc,
						sampled_hook_realloc_pymalloc, cur.free};
	else if (g_sample_interval)
		ours = (struct pymem_allocator){c, sampled_hook_malloc, sampled_hook_calloc,
						sampled_hook_realloc, sampled_hook_free};
	py_set_allocator(domain, &ours);
}

/* Threads of a program that embeds Python may allocate while it starts:
 * one of them checks the hooks at a time, the others go on. */
static atomic_flag g_install_busy = ATOMIC_FLAG_INIT;

void python_check_hooks(void)
{
	if (atomic_load(&g_py_state) != PY_WAITING)
		return;
	if (atomic_flag_test_and_set_explicit(&g_install_busy, memory_order_acquire))
		return;
	bool ready = py_is_initialized();
	wrap_arenas();
	install(DOMAIN_MEM, HW_KIND_PYMEM);
	install(DOMAIN_OBJ, HW_KIND_PYOBJ);
	if (ready) {
		python_objects_arm();
		atomic_store(&g_py_state, PY_READY);
		sample_libc_update();
	}
	atomic_flag_clear_explicit(&g_install_busy, memory_order_release);
}

void python_emit_info(struct thread_state *ts)
{
	if (atomic_load(&g_py_state) == PY_NONE)
		return;
	uint8_t *p = tracker_reserve(ts, 2 + 2 * HW_VARINT_MAX);
	if (!p)
		return;
	*p++ = HW_REC_PYTHON;
	p = hw_put_varint(p, atomic_load(&g_seq));
	p = hw_put_varint(p, g_py_version);
	*p++ = g_py_layout != NULL;
	tracker_commit(ts, p);
	const char *layout = g_py_layout ? g_py_layout->name : "";
	size_t llen = strlen(layout), rlen = strlen(g_py_off);
	p = tracker_reserve(ts, 1 + 3 * HW_VARINT_MAX + llen + rlen);
	if (!p)
		return;
	*p++ = HW_REC_PYTHON_INFO;
	p = hw_put_varint(p, g_py_flags);
	p = hw_put_varint(p, llen);
	memcpy(p, layout, llen);
	p += llen;
	p = hw_put_varint(p, rlen);
	memcpy(p, g_py_off, rlen);
	tracker_commit(ts, p + rlen);
}

void python_start(struct thread_state *ts)
{
	py_get_allocator = (void (*)(int, struct pymem_allocator *))dlsym(RTLD_DEFAULT, "PyMem_GetAllocator");
	py_set_allocator = (void (*)(int, struct pymem_allocator *))dlsym(RTLD_DEFAULT, "PyMem_SetAllocator");
	py_is_initialized = (int (*)(void))dlsym(RTLD_DEFAULT, "Py_IsInitialized");
	if (!py_get_allocator || !py_set_allocator || !py_is_initialized) {
		/* not a Python process (or Python is not loaded yet: the loads
		 * after this one are looked at, python_check_late) */
		const unsigned long long *adds = g_loader_adds;
		if (adds)
			atomic_store(&g_py_late_seen, __atomic_load_n(adds, __ATOMIC_RELAXED));
		return;
	}
	const unsigned long *version = dlsym(RTLD_DEFAULT, "Py_Version");
	g_py_version = version ? (uint32_t)*version : version_from_text();
	if (!stack_python_attach(g_py_version, g_py_off, sizeof(g_py_off)))
		log_line("Python %u.%u: Python frames are off (%s); allocations are recorded with native stacks",
			 (g_py_version >> 24) & 0xff, (g_py_version >> 16) & 0xff, g_py_off);
	else
		g_py_off[0] = 0;
	atomic_store(&g_py_state, PY_WAITING);
	stack_python_started();
	sample_libc_update();
	python_check_hooks();
	python_emit_info(ts);
}

_Atomic unsigned long long g_py_late_seen;
static atomic_flag g_late_busy = ATOMIC_FLAG_INIT;
/* This thread holds g_late_busy (python_fork_child) */
static __thread bool t_late_inside __attribute__((tls_model("initial-exec")));
/* The thread last seen loading objects, and how many looks other threads
 * left to it (python_check_late) */
static _Atomic int g_late_loader;
static _Atomic unsigned g_late_deferred;

void python_fork_child(void)
{
	/* Held by a thread this child does not have: nobody would clear it,
	 * and the child would never find a Python it loads. Held by this
	 * thread (a fork from a signal handler, or from code of the
	 * program's that dlsym ran, inside the look): that look goes on in
	 * the child and clears it itself. */
	if (!t_late_inside)
		atomic_flag_clear_explicit(&g_late_busy, memory_order_relaxed);
	/* the loading thread's id is the parent's */
	atomic_store_explicit(&g_late_loader, 0, memory_order_relaxed);
	atomic_store_explicit(&g_late_deferred, 0, memory_order_relaxed);
}

void python_check_late(void)
{
	struct thread_state *ts = hw_tls.state;
	const unsigned long long *at = g_loader_adds;
	if (!ts || !at)
		return;
	int saved = errno;
	int me = (int)ts->tid;
	/* A dlopen under way (the loader's lock held): its object may not be
	 * relocated yet, and dlsym would wait for it. The thread loading it
	 * is the one that looks once it is done: that is the thread that
	 * goes on to initialize the interpreter, most likely, and CPython's
	 * start-up sets the allocators with no lock, which a look from
	 * another thread at the same time could read half-written. Other
	 * threads look only when that thread seems gone (it left 4096 looks
	 * to them). */
	int owner = stack_native_loader_owner();
	if (owner) {
		if (owner == me)
			atomic_store(&g_late_loader, me);
		errno = saved;
		return;
	}
	int loader = atomic_load(&g_late_loader);
	if (loader && loader != me && atomic_fetch_add(&g_late_deferred, 1) < 4096) {
		errno = saved;
		return;
	}
	if (atomic_flag_test_and_set_explicit(&g_late_busy, memory_order_acquire)) {
		errno = saved;
		return;
	}
	t_late_inside = true;
	unsigned long long adds = __atomic_load_n(at, __ATOMIC_RELAXED);
	/* the gate, not tracker_unwind_enter: dlsym takes the loader's locks,
	 * free (above), not libunwind's, so also in a child that may never
	 * unwind (a grandchild of a fork without atfork handlers) */
	if (atomic_load(&g_py_state) == PY_NONE && adds != atomic_load(&g_py_late_seen) &&
	    tracker_gate_enter(ts)) {
		atomic_store(&g_py_late_seen, adds);
		atomic_store(&g_late_loader, 0);
		atomic_store(&g_late_deferred, 0);
		if (dlsym(RTLD_DEFAULT, "PyMem_SetAllocator"))
			python_start(ts);
		tracker_unwind_exit(ts);
	}
	errno = saved;
	t_late_inside = false;
	atomic_flag_clear_explicit(&g_late_busy, memory_order_release);
}
