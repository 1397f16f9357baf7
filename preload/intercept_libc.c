/* The exported libc allocator and mapping functions (shim, intercept stage):
 * each one calls the real function and reports to the tracker. Rules: the
 * guard surrounds the real call too (nested allocations are not counted
 * twice); frees are recorded before the real free, allocations after the real
 * allocation; errno is what the real function left. */
/* Both mmap and mmap64 are interposed by name: no large-file renaming here. */
#undef _FILE_OFFSET_BITS
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "heapwise/compiler.h"
#include "heapwise/trace_format.h"
#include "hooks.h"
#include "modules.h"
#include "python.h"
#include "sample.h"
#include "tracker.h"

#define PAGE 4096u

/* The exported allocator functions' own frame: none (their fast path is a
 * few tests and a tail call; the rest is a function of its own, which has
 * one). GCC only: clang has no such attribute (its build keeps the frame,
 * three instructions). */
#if defined(__GNUC__) && !defined(__clang__)
#define HW_NO_FRAME __attribute__((optimize("omit-frame-pointer")))
#else
#define HW_NO_FRAME
#endif

#define ENSURE(name)                                                                      \
	do {                                                                              \
		if (HW_UNLIKELY(!g_real.name))                                            \
			hooks_resolve();                                                  \
	} while (0)

/* Until the interpreter is initialized, CPython may replace our PyMem hooks
 * (PYTHONMALLOC, -X dev): every libc allocation looks whether it did. In a
 * process without Python yet, it looks whether an object was loaded since
 * the last look (python_check_late). */
static inline void watch_python(void)
{
	int s = atomic_load_explicit(&g_py_state, memory_order_relaxed);
	if (HW_LIKELY(s == PY_READY))
		return;
	if (s == PY_WAITING) {
		python_check_hooks();
		return;
	}
	const unsigned long long *adds = g_loader_adds;
	if (adds && __atomic_load_n(adds, __ATOMIC_RELAXED) !=
			    atomic_load_explicit(&g_py_late_seen, memory_order_relaxed))
		python_check_late();
}

static inline void record_alloc(struct thread_state *ts, int kind, void *p, size_t n)
{
	if (ts) {
		int e = *ts->errnop;
		watch_python();
		if (p)
			tracker_record_alloc(ts, kind, p, n);
		*ts->errnop = e;
		tracker_leave();
	}
}

/* The sampling mode's allocation (sample.h): the real call under the guard
 * (what it allocates inside is not the program's), then the countdown. */
#define SAMPLED_ALLOC(kind, n, call)                                                      \
	do {                                                                              \
		if (HW_LIKELY(sample_enter_fast(n))) {                                    \
			void *p_ = call;                                                  \
			watch_python();                                                   \
			hw_tls.guard = 0;                                                 \
			return p_;                                                        \
		}                                                                         \
		enum sample_entry s_ = sample_enter_slow(n);                              \
		void *p_ = call;                                                          \
		if (s_ != SAMPLE_NESTED) {                                                \
			watch_python();                                                   \
			hw_tls.guard = 0;                                                 \
			if (s_ == SAMPLE_SAMPLED && p_)                                   \
				sample_record_alloc(kind, p_, n);                         \
		}                                                                         \
		return p_;                                                                \
	} while (0)

/* The sampling mode's malloc and calloc, apart from the exported ones so
 * that their exact paths do not set up their frames for them. */
static __attribute__((noinline)) void *sampled_malloc(size_t n)
{
	SAMPLED_ALLOC(HW_KIND_MALLOC, n, g_real.malloc(n));
}

static __attribute__((noinline)) void *sampled_calloc(size_t n, size_t size)
{
	SAMPLED_ALLOC(HW_KIND_MALLOC, n * size, g_real.calloc(n, size));
}

static __attribute__((noinline)) void *malloc_slow(size_t n)
{
	ENSURE(malloc);
	if (HW_UNLIKELY(!g_real.malloc))
		return hooks_boot_alloc(n, 16);
	if (g_sample_interval)
		return sampled_malloc(n);
	struct thread_state *ts = tracker_enter();
	void *p = g_real.malloc(n);
	record_alloc(ts, HW_KIND_MALLOC, p, n);
	return p;
}

/* The exported functions begin with the sampling mode's path over glibc
 * (sample.h): no frame, a test or three and a tail call; everything else
 * in a function of its own. NESTED: then a call made under the guard (shim
 * code, or the allocator a hook wraps: pymalloc asks libc for a block over
 * 512 bytes) goes straight to the real function, as the slow path would
 * after its frame and checks (every mode leaves a nested call alone). */
HW_EXPORT HW_NO_FRAME void *malloc(size_t n)
{
	if (HW_LIKELY(sample_libc_on()) && HW_LIKELY(sample_libc_pass(n)))
		return g_real.malloc(n);
	if (HW_UNLIKELY(hw_tls.guard) && HW_LIKELY(g_real.malloc != NULL))
		return g_real.malloc(n); /* nested: see NESTED */
	return malloc_slow(n);
}

static __attribute__((noinline)) void *calloc_slow(size_t n, size_t size)
{
	ENSURE(calloc);
	if (HW_UNLIKELY(!g_real.calloc)) {
		size_t total;
		if (__builtin_mul_overflow(n, size, &total))
			return NULL;
		return hooks_boot_alloc(total, 16);
	}
	if (g_sample_interval)
		return sampled_calloc(n, size);
	struct thread_state *ts = tracker_enter();
	void *p = g_real.calloc(n, size);
	record_alloc(ts, HW_KIND_MALLOC, p, n * size);
	return p;
}

HW_EXPORT HW_NO_FRAME void *calloc(size_t n, size_t size)
{
	size_t total;
	if (HW_LIKELY(sample_libc_on()) && HW_LIKELY(!__builtin_mul_overflow(n, size, &total)) &&
	    HW_LIKELY(sample_libc_pass(total)))
		return g_real.calloc(n, size);
	if (HW_UNLIKELY(hw_tls.guard) && HW_LIKELY(g_real.calloc != NULL))
		return g_real.calloc(n, size); /* nested: see NESTED */
	return calloc_slow(n, size);
}

/* Only a sampled block's free is recorded; the guard covers the real free
 * (glibc may unmap a chunk in it). Apart from free so that free's exact
 * path does not set up its frame for it. */
static __attribute__((noinline)) void sampled_free(void *p)
{
	if (HW_LIKELY(!hw_tls.guard) && HW_LIKELY(!sample_maybe_sampled(p))) {
		hw_tls.guard = 1;
		g_real.free(p);
		hw_tls.guard = 0;
		return;
	}
	if (hw_tls.guard) {
		g_real.free(p);
		return;
	}
	sample_free_slow(HW_KIND_MALLOC, p);
	g_real.free(p);
	hw_tls.guard = 0;
}

static __attribute__((noinline)) void free_slow(void *p)
{
	if (!p || HW_UNLIKELY(hooks_is_boot(p)))
		return;
	ENSURE(free);
	if (g_sample_interval)
		return sampled_free(p);
	struct thread_state *ts = tracker_enter();
	if (ts) {
		int e = *ts->errnop;
		tracker_record_free(ts, HW_KIND_MALLOC, tracker_event_seq(ts), p);
		*ts->errnop = e;
	}
	g_real.free(p);
	if (ts)
		tracker_leave();
}

HW_EXPORT HW_NO_FRAME void free(void *p)
{
	/* the sampling mode over glibc: a block the filter says was not
	 * sampled (sample.h) goes to glibc's free, guard or not, as a tail
	 * call */
	if (HW_LIKELY(sample_libc_on()) &&
	    HW_LIKELY(!__atomic_load_n(&g_sample_filter[sample_filter_slot((uintptr_t)p)],
				       __ATOMIC_RELAXED)) &&
	    HW_LIKELY(!hooks_is_boot(p)))
		return g_real.free(p);
	if (HW_UNLIKELY(hw_tls.guard) && HW_LIKELY(g_real.free != NULL) &&
	    HW_LIKELY(!hooks_is_boot(p)))
		return g_real.free(p); /* nested: see NESTED */
	free_slow(p);
}

static void *realloc_boot(void *old, size_t n)
{
	/* Bootstrap blocks move into the real heap and stay where they were. */
	void *p = malloc(n);
	if (p && old) {
		size_t have = hooks_boot_size(old);
		memcpy(p, old, have < n ? have : n);
	}
	return p;
}

static __attribute__((noinline)) void *sampled_realloc(void *old, size_t n, size_t count,
							bool array)
{
	if (!array && HW_LIKELY(sample_realloc_fast(old, n))) {
		void *p = g_real.realloc(old, n);
		hw_tls.guard = 0;
		return p;
	}
	struct sample_realloc r;
	if (!sample_realloc_begin(&r, old))
		return array ? g_real.reallocarray(old, count, n) : g_real.realloc(old, n);
	void *p = array ? g_real.reallocarray(old, count, n) : g_real.realloc(old, n);
	size_t size = n;
	bool overflow = array && __builtin_mul_overflow(count, n, &size);
	sample_realloc_end(&r, HW_KIND_MALLOC, old, p, size, !p && old && size == 0 && !overflow, -1);
	return p;
}

static void *do_realloc(void *old, size_t n, size_t count, bool array)
{
	if (g_sample_interval)
		return sampled_realloc(old, n, count, array);
	struct thread_state *ts = tracker_enter();
	uint64_t seq_free = ts && old ? tracker_event_seq(ts) : 0;
	void *p = array ? g_real.reallocarray(old, count, n) : g_real.realloc(old, n);
	if (ts) {
		int e = errno;
		size_t size = n;
		/* a reallocarray whose size overflows failed and left old alive:
		 * nothing to record, whatever count * n wraps to */
		bool overflow = array && __builtin_mul_overflow(count, n, &size);
		if (p && old)
			tracker_realloc(ts, HW_KIND_MALLOC, seq_free, old, p, size);
		else if (p)
			tracker_alloc(ts, HW_KIND_MALLOC, p, size);
		else if (old && size == 0 && !overflow)
			tracker_free_at(ts, HW_KIND_MALLOC, seq_free, old); /* glibc freed it */
		errno = e;
		tracker_leave();
	}
	return p;
}

static __attribute__((noinline)) void *realloc_slow(void *old, size_t n)
{
	ENSURE(realloc);
	if (HW_UNLIKELY(hooks_is_boot(old) || !g_real.realloc)) {
		if (!g_real.malloc) {
			void *p = hooks_boot_alloc(n, 16);
			if (p && old) {
				size_t have = hooks_boot_size(old);
				memcpy(p, old, have < n ? have : n);
			}
			return p;
		}
		return realloc_boot(old, n);
	}
	return do_realloc(old, n, 1, false);
}

HW_EXPORT HW_NO_FRAME void *realloc(void *old, size_t n)
{
	/* the sampling mode over glibc: old was not sampled (or the call is
	 * nested) and n bytes do not reach the sample point */
	if (HW_LIKELY(sample_libc_on()) && HW_LIKELY(!hooks_is_boot(old)) &&
	    (HW_UNLIKELY(hw_tls.guard) ||
	     (HW_LIKELY(!old || !sample_maybe_sampled(old)) && HW_LIKELY(sample_libc_pass(n)))))
		return g_real.realloc(old, n);
	if (HW_UNLIKELY(hw_tls.guard) && HW_LIKELY(g_real.realloc != NULL) &&
	    HW_LIKELY(!hooks_is_boot(old)))
		return g_real.realloc(old, n); /* nested: see NESTED */
	return realloc_slow(old, n);
}

HW_EXPORT void *reallocarray(void *old, size_t count, size_t n)
{
	ENSURE(reallocarray);
	if (HW_UNLIKELY(hooks_is_boot(old) || !g_real.reallocarray)) {
		size_t total;
		if (__builtin_mul_overflow(count, n, &total)) {
			errno = ENOMEM;
			return NULL;
		}
		return realloc(old, total);
	}
	return do_realloc(old, n, count, true);
}

HW_EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	ENSURE(posix_memalign);
	if (HW_UNLIKELY(!g_real.posix_memalign)) {
		*out = hooks_boot_alloc(n, align);
		return *out ? 0 : ENOMEM;
	}
	if (g_sample_interval) {
		enum sample_entry s = sample_enter_slow(n);
		int r = g_real.posix_memalign(out, align, n);
		if (s != SAMPLE_NESTED) {
			hw_tls.guard = 0;
			if (s == SAMPLE_SAMPLED && r == 0)
				sample_record_alloc(HW_KIND_MALLOC, *out, n);
		}
		return r;
	}
	struct thread_state *ts = tracker_enter();
	int r = g_real.posix_memalign(out, align, n);
	record_alloc(ts, HW_KIND_MALLOC, r == 0 ? *out : NULL, n);
	return r;
}

#define ALIGNED_HOOK(name, params, args, align_expr, size_expr)                          \
	HW_EXPORT void *name params                                                       \
	{                                                                                 \
		ENSURE(name);                                                             \
		if (HW_UNLIKELY(!g_real.name))                                            \
			return hooks_boot_alloc(size_expr, align_expr);                   \
		if (g_sample_interval)                                                    \
			SAMPLED_ALLOC(HW_KIND_MALLOC, size_expr, g_real.name args);       \
		struct thread_state *ts = tracker_enter();                                \
		void *p = g_real.name args;                                               \
		record_alloc(ts, HW_KIND_MALLOC, p, size_expr);                           \
		return p;                                                                 \
	}

ALIGNED_HOOK(aligned_alloc, (size_t align, size_t n), (align, n), align, n)
ALIGNED_HOOK(memalign, (size_t align, size_t n), (align, n), align, n)
ALIGNED_HOOK(valloc, (size_t n), (n), PAGE, n)
ALIGNED_HOOK(pvalloc, (size_t n), (n), PAGE, (n + PAGE - 1) & ~(size_t)(PAGE - 1))

static inline size_t page_round(size_t n)
{
	return (n + PAGE - 1) & ~(size_t)(PAGE - 1);
}

static void *do_mmap(void *(*real)(void *, size_t, int, int, int, off_t), void *addr,
		     size_t len, int prot, int flags, int fd, off_t off)
{
	if (HW_UNLIKELY(!real))
		return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
	if (flags & MAP_FIXED)
		writer_program_maps(addr, len);
	struct thread_state *ts = tracker_enter();
	if (ts && (flags & MAP_FIXED)) {
		int e = errno;
		tracker_unmap(ts, addr, page_round(len)); /* replaces what was there */
		errno = e;
	}
	void *p = real(addr, len, prot, flags, fd, off);
	record_alloc(ts, (flags & MAP_ANONYMOUS) ? HW_KIND_MMAP : HW_KIND_MMAP_FILE,
		     p == MAP_FAILED ? NULL : p, page_round(len));
	return p;
}

HW_EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	ENSURE(mmap);
	return do_mmap(g_real.mmap, addr, len, prot, flags, fd, off);
}

HW_EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	ENSURE(mmap64);
	return do_mmap(g_real.mmap64, addr, len, prot, flags, fd, off);
}

HW_EXPORT int munmap(void *addr, size_t len)
{
	ENSURE(munmap);
	if (HW_UNLIKELY(!g_real.munmap))
		return (int)syscall(SYS_munmap, addr, len);
	writer_program_maps(addr, len);
	struct thread_state *ts = tracker_enter();
	if (ts) {
		int e = errno;
		tracker_unmap(ts, addr, page_round(len));
		errno = e;
	}
	int r = g_real.munmap(addr, len);
	if (ts)
		tracker_leave();
	return r;
}

HW_EXPORT int mprotect(void *addr, size_t len, int prot)
{
	ENSURE(mprotect);
	writer_program_maps(addr, len);
	if (HW_UNLIKELY(!g_real.mprotect))
		return (int)syscall(SYS_mprotect, addr, len, prot);
	return g_real.mprotect(addr, len, prot);
}

HW_EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *new_addr = NULL;
	if (flags & MREMAP_FIXED) {
		va_list ap;
		va_start(ap, flags);
		new_addr = va_arg(ap, void *);
		va_end(ap);
	}
	ENSURE(mremap);
	if (HW_UNLIKELY(!g_real.mremap))
		return (void *)syscall(SYS_mremap, old, old_len, new_len, flags, new_addr);
	writer_program_maps(old, old_len);
	if (flags & MREMAP_FIXED)
		writer_program_maps(new_addr, new_len);
	struct thread_state *ts = tracker_enter();
	uint64_t seq_free = ts ? tracker_event_seq(ts) : 0;
	void *p = g_real.mremap(old, old_len, new_len, flags, new_addr);
	if (ts) {
		if (p != MAP_FAILED) {
			int e = errno;
			tracker_remap(ts, seq_free, old, page_round(old_len), p, page_round(new_len));
			errno = e;
		}
		tracker_leave();
	}
	return p;
}

/* dlclose may free the code a cached stack node or unwind recipe points
 * into, and another object may be mapped there next: the module epoch moves
 * before the call (a thread that unwinds a frame of an object loaded at
 * those addresses after the unmap, which is only possible once the call has
 * released the loader's lock, already sees it moved) and again after it (the
 * object's destructors ran inside it, and the calling thread cached their
 * frames). In between, g_module_busy says a dlclose is under way: caches
 * shared by all threads (libunwind's) keep nothing learned then. dlopen is
 * not interposed: it looks at its caller to find the library search path,
 * and the first new frame in a new object triggers the rescan. */
HW_EXPORT int dlclose(void *handle)
{
	ENSURE(dlclose);
	atomic_fetch_add(&g_module_busy, 1);
	atomic_fetch_add(&g_module_epoch, 1);
	int r = g_real.dlclose(handle);
	atomic_fetch_add(&g_module_epoch, 1);
	atomic_fetch_sub(&g_module_busy, 1);
	return r;
}

/* An alternate signal stack may be an array inside the thread's own stack,
 * whose bounds would then say there is room where a handler has only what
 * is left of the array: the thread's stack checks use the array's bounds
 * (tracker_stack_alt). The call itself is the program's, unchanged. */
HW_EXPORT int sigaltstack(const stack_t *ss, stack_t *old)
{
	ENSURE(sigaltstack);
	int r = g_real.sigaltstack(ss, old);
	if (r == 0 && ss) {
		bool off = ss->ss_flags & SS_DISABLE;
		tracker_stack_alt(off ? 0 : (uintptr_t)ss->ss_sp,
				  off ? 0 : (uintptr_t)ss->ss_sp + ss->ss_size);
	}
	return r;
}

/* The call is the program's, unchanged; while it runs (glibc holds the
 * thread's own lock in it, and allocates) the shim does not ask for the
 * thread's stack itself, and asks once it returned (tracker.c, stack_bounds). */
HW_EXPORT int pthread_getattr_np(pthread_t thread, pthread_attr_t *attr)
{
	ENSURE(pthread_getattr_np);
	hw_tls.in_getattr++;
	int r = g_real.pthread_getattr_np(thread, attr);
	hw_tls.in_getattr--;
	tracker_stack_bounds_pending();
	return r;
}

/* Threads started under a Python frame (issue 16 item 4): a C extension's
 * workers, OpenBLAS's pool at `import numpy`. The creating thread's stack is
 * captured at the call, and the new thread runs a trampoline that gives it
 * to the thread's state before the start routine runs: every stack of the
 * thread hangs under it. The start arguments travel in a static slot (the
 * trampoline frees it first thing); with all slots taken, or no Python
 * frame on the creating thread, the thread starts as it would untraced. */
struct thread_start {
	_Atomic int busy;
	void *(*fn)(void *);
	void *arg;
	uint32_t origin;
};
#define THREAD_START_SLOTS 256u
static struct thread_start g_starts[THREAD_START_SLOTS];
static _Atomic unsigned g_start_next;

static struct thread_start *start_claim(void)
{
	unsigned first = atomic_fetch_add_explicit(&g_start_next, 1, memory_order_relaxed);
	for (unsigned k = 0; k < THREAD_START_SLOTS; k++) {
		struct thread_start *s = &g_starts[(first + k) % THREAD_START_SLOTS];
		int free_slot = 0;
		if (atomic_compare_exchange_strong(&s->busy, &free_slot, 1))
			return s;
	}
	return NULL;
}

static void *thread_trampoline(void *p)
{
	struct thread_start *s = p;
	void *(*fn)(void *) = s->fn;
	void *arg = s->arg;
	uint32_t origin = s->origin;
	atomic_store_explicit(&s->busy, 0, memory_order_release);
	int e = errno;
	tracker_set_origin(origin);
	errno = e;
	return fn(arg);
}

HW_EXPORT int pthread_create(pthread_t *thread, const pthread_attr_t *attr,
			     void *(*start)(void *), void *arg)
{
	ENSURE(pthread_create);
	uint32_t origin = 0;
	struct thread_state *ts = g_py_layout ? tracker_enter() : NULL;
	if (ts) {
		int e = errno;
		struct py_frame f;
		if (stack_python_collect(&f, 1, false))
			origin = stack_capture(ts, false);
		errno = e;
		tracker_leave();
	}
	struct thread_start *s = origin ? start_claim() : NULL;
	if (!s)
		return g_real.pthread_create(thread, attr, start, arg);
	s->fn = start;
	s->arg = arg;
	s->origin = origin;
	int r = g_real.pthread_create(thread, attr, thread_trampoline, s);
	if (r)
		atomic_store_explicit(&s->busy, 0, memory_order_release);
	return r;
}
