/* Tracker (shim core): per-thread state, event encoding into the thread's
 * chunk, time and RSS records, the registry of thread states, the trailer.
 * The hot path is: take the guard (tracker_enter), unwind, one atomic add
 * for the sequence number, a few varints into the mapped chunk, one release
 * store of the chunk's used length. No lock, no syscall. */
#include "tracker.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "heapwise/trace_format.h"
#include "heapwise/varint.h"
#include "nocancel.h"
#include "python.h"
#include "stack.h"
#include "writer.h"

#define RSS_INTERVAL_NS 10000000ull

__thread struct tls hw_tls __attribute__((tls_model("initial-exec")));
_Atomic int g_run_state;
_Atomic int g_unwind_gate;
bool g_unwind_unsafe;
_Atomic uint64_t g_seq = 1;
_Atomic uint32_t g_module_epoch;
_Atomic uint32_t g_module_busy;
uintptr_t g_not_finalizing;
uintptr_t *_Atomic g_py_finalizing = HW_NOT_FINALIZING;
uint64_t g_start_monotonic_ns;

static struct thread_state *g_threads; /* registry */
/* States of exited threads for the next ones, with their stack trees and
 * code maps: a new thread then neither maps and faults in its state nor
 * writes again the stack nodes and code objects the trace has (their ids
 * are the process's, and definitions may be in any chunk). Unmapping a
 * state at each thread exit cost an inter-processor interrupt per CPU (TLB
 * shootdown), the most of what a short-lived thread cost. */
#define POOL_MAX 64
static struct thread_state *g_pool;
static unsigned g_pool_n;
static _Atomic uint32_t g_thread_serials; /* handed out in this process */
static atomic_flag g_threads_lock = ATOMIC_FLAG_INIT;
static _Atomic uint64_t g_last_rss_ns;
static _Atomic uint64_t g_allocs_done, g_frees_done; /* of exited threads */
pthread_key_t g_thread_key;


void tracker_registry_lock(void)
{
	while (atomic_flag_test_and_set_explicit(&g_threads_lock, memory_order_acquire))
		;
}

void tracker_registry_unlock(void)
{
	atomic_flag_clear_explicit(&g_threads_lock, memory_order_release);
}

void tracker_fork_drain(void)
{
	atomic_store(&g_unwind_gate, 1); /* seq_cst: before the loads below */
	struct thread_state *self = hw_tls.state;
	tracker_registry_lock();
	for (struct thread_state *ts = g_threads; ts; ts = ts->next)
		while (ts != self && atomic_load(&ts->unwinding))
			sched_yield();
	tracker_registry_unlock();
}

bool tracker_had_other_threads(void)
{
	for (struct thread_state *ts = g_threads; ts; ts = ts->next)
		if (ts != hw_tls.state)
			return true;
	return false;
}

uint64_t tracker_monotonic_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static inline uint64_t coarse_ns(void)
{
	return tracker_since_start(tracker_coarse_raw());
}

static void write_time(struct thread_state *ts, uint64_t t)
{
	uint8_t *p = ts->wp;
	*p++ = HW_REC_TIME;
	p = hw_put_varint(p, t);
	tracker_commit(ts, p);
	ts->time_ns = t;
}

/* Room the records opening a chunk take: TIME, and THREAD in chunk 0. */
#define CHUNK_OPENING (2 + 3 * HW_VARINT_MAX)

/* A thread's chunk 0 is a small slot and chunk 1 a medium one, the others
 * whole blocks: a thread that lives for a few events costs about what they
 * take (a first record too big for a slot skips ahead). */
static bool new_chunk(struct thread_state *ts, size_t need)
{
	uint64_t t = ts->time_ns;
	if (ts->chunk)
		writer_chunk_left(&ts->lease, (uint32_t)(ts->wp - (ts->chunk + HW_CHUNK_HEADER_SIZE)));
	ts->chunk = NULL; /* the claim gives the old one back */
	ts->wp = ts->wend = NULL; /* tracker_reserve comes here while there is none */
	enum chunk_class cls = ts->chunk_index < CHUNK_FULL ? (enum chunk_class)ts->chunk_index
							    : CHUNK_FULL;
	while (cls < CHUNK_FULL && writer_class_capacity(cls) < need + CHUNK_OPENING)
		cls++;
	if (!writer_claim_chunk(ts->serial, ts->chunk_index, cls, &ts->lease))
		return false;
	ts->chunk = ts->lease.map;
	ts->wp = ts->chunk + HW_CHUNK_HEADER_SIZE;
	ts->wend = ts->chunk + ts->lease.size;
	ts->last_seq = 0;
	ts->last_addr = 0;
	ts->last_stack = 0;
	ts->last_kind = HW_KIND_MALLOC;
	/* Every chunk starts with the thread's time: a reader decodes chunks
	 * independently. */
	write_time(ts, t == UINT64_MAX ? coarse_ns() : t);
	if (ts->chunk_index++ == 0) {
		uint8_t *p = ts->wp;
		*p++ = HW_REC_THREAD;
		p = hw_put_varint(p, ts->serial);
		p = hw_put_varint(p, ts->tid);
		tracker_commit(ts, p);
	}
	return true;
}

static inline __attribute__((always_inline)) uint8_t *reserve_slow(struct thread_state *ts,
								    size_t max)
{
	if (tracker_foreign(ts))
		return NULL;
	if (max + CHUNK_OPENING > writer_class_capacity(CHUNK_FULL))
		return NULL;
	if (!writer_ok() || !new_chunk(ts, max)) {
		/* recording stopped (a full disk, a limit): from now on every
		 * event goes straight to the real function, no stack taken.
		 * Only a trace that is on stops: in a fork child whose handler
		 * interrupted a claim of its parent's, that claim goes on here
		 * and fails (the file is the parent's), and the child's own
		 * trace is still to start at its next event. */
		int on = RUN_ON;
		if (!writer_ok())
			atomic_compare_exchange_strong(&g_run_state, &on, RUN_STOPPED);
		return NULL;
	}
	return ts->wp;
}

uint8_t *tracker_reserve_slow(struct thread_state *ts, size_t max)
{
	int e = errno; /* HW_KEEPS_ERRNO */
	int c = hw_cancel_off();
	uint8_t *p = reserve_slow(ts, max);
	hw_cancel_restore(c);
	errno = e;
	return p;
}

static uint64_t read_rss(void)
{
	char buf[128];
	int fd = writer_fd_to_spare() ? open("/proc/self/statm", O_RDONLY | O_CLOEXEC) : -1;
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	char *p = buf;
	while (*p && *p != ' ')
		p++;
	return strtoull(p, NULL, 10) * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void sample_rss(struct thread_state *ts, uint64_t now)
{
	uint64_t last = atomic_load_explicit(&g_last_rss_ns, memory_order_relaxed);
	if (now - last < RSS_INTERVAL_NS && last)
		return;
	if (!atomic_compare_exchange_strong(&g_last_rss_ns, &last, now))
		return;
	int saved = errno;
	int c = hw_cancel_off();
	uint64_t rss = read_rss();
	hw_cancel_restore(c);
	errno = saved;
	if (!rss) /* not read (no descriptor to spare): the next look reads it */
		return;
	uint8_t *p = tracker_reserve(ts, 1 + 2 * HW_VARINT_MAX);
	if (!p)
		return;
	*p++ = HW_REC_RSS;
	p = hw_put_varint(p, now);
	p = hw_put_varint(p, rss);
	tracker_commit(ts, p);
}

/* An event found the coarse clock moved on (raw: its reading, as
 * tracker_note_time compares it), or no chunk: a TIME record when the
 * thread's time changed, and the process's RSS every RSS_INTERVAL_NS. */
void tracker_time_moved(struct thread_state *ts, uint64_t raw)
{
	uint64_t now = tracker_since_start(raw);
	if (!tracker_reserve(ts, 1 + HW_VARINT_MAX))
		return;
	if (now != ts->time_ns)
		write_time(ts, now);
	ts->clock_raw = raw;
	sample_rss(ts, now);
}

void tracker_clock_look(struct thread_state *ts)
{
	/* (clock_gettime of a clock that exists does not fail: errno stays) */
	uint64_t raw = tracker_coarse_raw();
	uint32_t stride = ts->clock_stride;
	if (raw != ts->clock_raw) {
		int e = errno; /* HW_KEEPS_ERRNO (a chunk claim, the RSS) */
		tracker_time_moved(ts, raw);
		errno = e;
		stride = 1;
	} else if (stride < HW_CLOCK_STRIDE_MAX) {
		stride++;
	}
	ts->clock_stride = stride;
	ts->clock_skip = stride;
}

void tracker_mark(struct thread_state *ts, int kind, const char *label)
{
	atomic_fetch_add(&g_tag_epoch, 1); /* before the mark's sequence number */
	size_t len = strnlen(label, HW_MAX_LABEL - 1);
	tracker_note_time(ts);
	uint8_t *p = tracker_reserve(ts, 3 + 2 * HW_VARINT_MAX + len);
	if (!p)
		return;
	*p++ = HW_REC_MARK;
	p = tracker_put_seq(ts, p, tracker_take_seq());
	*p++ = (uint8_t)kind;
	p = hw_put_varint(p, len);
	memcpy(p, label, len);
	tracker_commit(ts, p + len);
}

void tracker_finalize_seen(struct thread_state *ts)
{
	int e = errno; /* HW_KEEPS_ERRNO */
	uintptr_t *fin = atomic_exchange(&g_py_finalizing, HW_NOT_FINALIZING);
	if (fin != HW_NOT_FINALIZING) { /* the first thread to see it writes the mark */
		tracker_gc_flush(ts);
		python_objects_finalizing();
		tracker_mark(ts, HW_MARK_PY_FINALIZE, "python-finalize");
	}
	errno = e;
}

void tracker_alloc(struct thread_state *ts, int kind, const void *ptr, size_t size)
{
	tracker_record_alloc(ts, kind, ptr, size);
}

uint32_t tracker_alloc_stack(struct thread_state *ts, int kind, const void *ptr, size_t size)
{
	return tracker_record_alloc(ts, kind, ptr, size);
}

uint32_t tracker_retag(struct thread_state *ts, const void *block, uint32_t same)
{
	uint32_t stack = stack_capture_is(ts, same); /* capture(ts, HW_KIND_PYOBJ) */
	if (stack && stack == same)
		return stack;
	tracker_note_time_often(ts);
	uint8_t *p = tracker_reserve(ts, HW_MAX_EVENT_RECORD);
	if (!p)
		return 0;
	*p++ = HW_REC_RETAG;
	p = tracker_put_seq(ts, p, tracker_take_seq());
	p = tracker_put_addr(ts, p, block);
	p = hw_put_varint(p, stack);
	tracker_commit(ts, p);
	return stack;
}

/* Both write the record inline: tracker_free calling tracker_free_at cost
 * about 11 instructions a free (a_pymalloc_heavy, 3.11: 2.2 M of 205,000). */
void tracker_free(struct thread_state *ts, int kind, const void *ptr)
{
	tracker_record_free(ts, kind, tracker_event_seq(ts), ptr);
}

void tracker_free_at(struct thread_state *ts, int kind, uint64_t seq, const void *ptr)
{
	tracker_record_free(ts, kind, seq, ptr);
}

uint32_t tracker_realloc(struct thread_state *ts, int kind, uint64_t seq_free, const void *old,
		     const void *new_ptr, size_t size)
{
	return tracker_record_realloc(ts, kind, seq_free, old, new_ptr, size);
}

void tracker_unmap(struct thread_state *ts, const void *addr, size_t len)
{
	tracker_note_time(ts);
	uint8_t *p = tracker_reserve(ts, HW_MAX_EVENT_RECORD);
	if (!p)
		return;
	*p++ = HW_REC_UNMAP;
	p = tracker_put_seq(ts, p, tracker_take_seq());
	p = tracker_put_addr(ts, p, addr);
	p = hw_put_varint(p, len);
	tracker_commit(ts, p);
}

void tracker_remap(struct thread_state *ts, uint64_t seq_free, const void *old, size_t old_len,
		   const void *new_ptr, size_t new_len)
{
	uint32_t stack = tracker_capture(ts, HW_KIND_MMAP);
	tracker_note_time(ts);
	uint8_t *p = tracker_reserve(ts, HW_MAX_EVENT_RECORD);
	if (!p)
		return;
	uint64_t seq_alloc = tracker_take_seq();
	*p++ = HW_REC_REMAP;
	p = tracker_put_seq(ts, p, seq_free);
	p = hw_put_varint(p, seq_alloc - seq_free);
	ts->last_seq = seq_alloc;
	p = tracker_put_addr(ts, p, old);
	p = hw_put_varint(p, old_len);
	p = tracker_put_addr(ts, p, new_ptr);
	p = hw_put_varint(p, new_len);
	p = hw_put_varint(p, stack);
	tracker_commit(ts, p);
}

static struct thread_state *thread_state_new(void);

struct thread_state *tracker_thread_state_slow(void)
{
	int saved = errno;
	struct thread_state *ts;
	if (HW_UNLIKELY(proc_wiped())) {
		/* the first event of a child made without atfork handlers: do
		 * what they would have done, then start this child's trace */
		init_fork_child(false);
		hw_tls.guard = 0;
		bool on = init_maybe();
		hw_tls.guard = 1;
		ts = on ? hw_tls.state : NULL;
	} else {
		ts = thread_state_new();
	}
	errno = saved;
	return ts;
}

size_t tracker_stack_room(const struct thread_state *ts, uintptr_t sp)
{
	/* first the alternate stack it set, which may lie inside its own */
	if (sp - hw_tls.alt_lo < hw_tls.alt_hi - hw_tls.alt_lo)
		return sp - hw_tls.alt_lo;
	if (sp >= ts->stack_lo && sp < ts->stack_hi)
		return sp - ts->stack_lo;
	int saved = errno;
	stack_t ss;
	bool alt = sigaltstack(NULL, &ss) == 0 && !(ss.ss_flags & SS_DISABLE) &&
		   sp >= (uintptr_t)ss.ss_sp && sp - (uintptr_t)ss.ss_sp < ss.ss_size;
	errno = saved;
	return alt ? sp - (uintptr_t)ss.ss_sp : SIZE_MAX;
}

/* An alternate signal stack inside the thread's known stack: the quick
 * span test (stack_ok, stack_span) would say there is room on it, where a
 * handler has only what is left of the array. The span is then empty and
 * every check goes to tracker_stack_room. Unknown bounds stay as they are. */
static void stack_alt_span(struct thread_state *ts)
{
	if (!ts->stack_hi)
		return;
	bool inside = hw_tls.alt_hi > ts->stack_lo && hw_tls.alt_lo < ts->stack_hi;
	ts->stack_span = inside ? 0 : ts->stack_hi - ts->stack_ok;
}

void tracker_stack_alt(uintptr_t lo, uintptr_t hi)
{
	hw_tls.alt_lo = lo;
	hw_tls.alt_hi = hi;
	if (hw_tls.state)
		stack_alt_span(hw_tls.state);
}

extern void *__libc_stack_end; /* ld.so: near the top of the main thread's stack */

/* The calling thread's stack. A thread made by pthread_create knows it. The
 * main thread's ends just above __libc_stack_end (the arguments, environment
 * and auxiliary vector) and may grow down to its stack size limit; without a
 * limit it is unknown. (pthread_getattr_np would read /proc/self/maps with
 * stdio for it, 2 KiB of stack, maybe at a fork child's first event in a
 * signal handler.) */
static void stack_bounds(struct thread_state *ts)
{
	ts->stack_ok = 0;
	ts->stack_span = UINTPTR_MAX; /* unknown: as if there were room */
	ts->stack_lo = ts->stack_hi = 0;
	ts->stack_pending = false;
	uintptr_t lo = 0, hi = 0;
	if (ts->tid == (uint32_t)getpid()) {
		struct rlimit rl;
		uintptr_t top = ((uintptr_t)__libc_stack_end + 4095) & ~(uintptr_t)4095;
		if (getrlimit(RLIMIT_STACK, &rl) || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= top)
			return;
		lo = top - rl.rlim_cur;
		hi = top;
	} else {
		/* glibc's pthread_getattr_np holds the thread's own lock (not
		 * recursive) while it allocates the affinity mask: asked again
		 * from that allocation (the thread's first event: Python 3.14+
		 * calls it at each thread's start, Rust's threads do) it waited
		 * for ever. Then the bounds stay unknown until the call returns. */
		if (hw_tls.in_getattr) {
			ts->stack_pending = true;
			return;
		}
		pthread_attr_t a;
		if (pthread_getattr_np(pthread_self(), &a))
			return;
		void *addr;
		size_t size;
		if (!pthread_attr_getstack(&a, &addr, &size)) {
			lo = (uintptr_t)addr;
			hi = lo + size;
		}
		pthread_attr_destroy(&a);
	}
	if (hi <= lo)
		return;
	ts->stack_lo = lo;
	ts->stack_hi = hi;
	ts->stack_ok = hi - lo > HW_STACK_NATIVE ? lo + HW_STACK_NATIVE : hi;
	ts->stack_span = hi - ts->stack_ok;
	stack_alt_span(ts);
}

void tracker_stack_bounds_pending(void)
{
	struct thread_state *ts = hw_tls.state;
	if (HW_LIKELY(!ts || !ts->stack_pending) || hw_tls.guard || hw_tls.in_getattr)
		return;
	int e = errno;
	hw_tls.guard = 1; /* its allocations are the shim's */
	stack_bounds(ts);
	hw_tls.guard = 0;
	errno = e;
}

static struct thread_state *thread_state_new(void)
{
	if (hw_tls.dead)
		return NULL;
	struct thread_state *old = hw_tls.state;
	if (old) {
		/* A state from before a fork: the child forgot it already. */
		hw_tls.state = NULL;
	}
	tracker_registry_lock();
	struct thread_state *ts = g_pool;
	if (ts) {
		g_pool = ts->next;
		g_pool_n--;
	}
	tracker_registry_unlock();
	if (ts) {
		/* all but the stack tree, the code map and their epoch */
		ts->chunk = NULL;
		ts->wp = ts->wend = NULL;
		ts->chunk_index = 0;
		ts->last_seq = ts->last_addr = 0;
		atomic_store_explicit(&ts->allocs, 0, memory_order_relaxed);
		atomic_store_explicit(&ts->frees, 0, memory_order_relaxed);
		ts->exiting = 0;
		ts->last_depth = 0;
	} else {
		ts = mmap(NULL, sizeof(*ts), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);
		if (ts == MAP_FAILED)
			return NULL;
	}
	ts->generation = atomic_load(&g_proc.generation);
	ts->serial = atomic_fetch_add(&g_thread_serials, 1) + 1;
	ts->tid = (uint32_t)gettid();
	ts->time_ns = UINT64_MAX;
	ts->clock_raw = UINT64_MAX;
	ts->clock_skip = 1; /* the first event looks */
	ts->clock_stride = 1;
	ts->errnop = &errno;
	stack_bounds(ts);
	tracker_registry_lock();
	ts->next = g_threads;
	g_threads = ts;
	tracker_registry_unlock();
	hw_tls.state = ts;
	pthread_setspecific(g_thread_key, ts);
	/* a state that served another thread had its root */
	ts->root = hw_tls.origin ? stack_tree_intern(ts, hw_tls.origin, HW_FRAME_THREAD, 0) : 0;
	ts->py_last_size = 0;
	return ts;
}

void tracker_set_origin(uint32_t origin)
{
	hw_tls.origin = origin;
	struct thread_state *ts = hw_tls.state; /* made by an event before the start routine */
	if (!ts || hw_tls.guard)
		return;
	hw_tls.guard = 1;
	ts->root = stack_tree_intern(ts, origin, HW_FRAME_THREAD, 0);
	ts->last_depth = 0;
	hw_tls.guard = 0;
}

static void release(struct thread_state *ts)
{
	if (ts->chunk && ts->wp)
		writer_chunk_left(&ts->lease, (uint32_t)(ts->wp - (ts->chunk + HW_CHUNK_HEADER_SIZE)));
	writer_release_chunk(&ts->lease);
	stack_tree_release(&ts->tree);
	stack_python_release(ts->codes);
	munmap(ts, sizeof(*ts));
}

void tracker_thread_exit(struct thread_state *ts)
{
	tracker_registry_lock();
	for (struct thread_state **pp = &g_threads; *pp; pp = &(*pp)->next) {
		if (*pp == ts) {
			*pp = ts->next;
			break;
		}
	}
	tracker_registry_unlock();
	atomic_fetch_add(&g_allocs_done, atomic_load(&ts->allocs));
	atomic_fetch_add(&g_frees_done, atomic_load(&ts->frees));
	hw_tls.state = NULL;
	writer_release_chunk(&ts->lease);
	tracker_registry_lock();
	bool pooled = g_pool_n < POOL_MAX;
	if (pooled) {
		ts->next = g_pool;
		g_pool = ts;
		g_pool_n++;
	}
	tracker_registry_unlock();
	if (!pooled)
		release(ts);
}

void tracker_forget_all_threads(bool interrupted)
{
	/* In a fork child only the calling thread exists; every state is a
	 * copy of the parent's and its chunk mapping is shared with the
	 * parent's file: unmap, never write. */
	struct thread_state *me = interrupted ? hw_tls.state : NULL;
	for (int list = 0; list < 2; list++) {
		/* the pool's trees name stack nodes of the parent's trace */
		struct thread_state *ts = list ? g_pool : g_threads;
		while (ts) {
			struct thread_state *next = ts->next;
			if (ts != me)
				release(ts);
			ts = next;
		}
	}
	g_threads = g_pool = NULL;
	g_pool_n = 0;
	if (me && me->chunk) {
		/* the pages under its chunk (a slot's are shared with others) */
		uintptr_t lo = (uintptr_t)me->chunk & ~(uintptr_t)4095;
		uintptr_t hi = ((uintptr_t)me->chunk + me->lease.size + 4095) & ~(uintptr_t)4095;
		if (mmap((void *)lo, hi - lo, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
			me->chunk = NULL; /* cannot happen for a mapping of this size */
		if (!me->chunk)
			me->wp = me->wend = NULL;
		me->lease = (struct chunk_lease){0}; /* not the child's to give back */
	}
	/* me stays allocated for the code it interrupted (a few pages, in
	 * this child only); its key value would let the thread-exit
	 * destructor release it while that code runs */
	hw_tls.state = NULL;
	pthread_setspecific(g_thread_key, NULL);
	atomic_store(&g_thread_serials, 0); /* a trace of its own */
	hw_tls.origin = 0; /* its stack is in the parent's trace */
	atomic_fetch_add(&g_tag_epoch, 1); /* so are the memo's tags */
	atomic_store(&g_allocs_done, 0);
	atomic_store(&g_frees_done, 0);
	atomic_store(&g_last_rss_ns, 0);
}

void tracker_write_trailer(void)
{
	struct thread_state *ts = tracker_enter();
	if (!ts)
		return;
	uint64_t allocs = atomic_load(&g_allocs_done), frees = atomic_load(&g_frees_done);
	tracker_registry_lock();
	for (struct thread_state *t = g_threads; t; t = t->next) {
		allocs += atomic_load_explicit(&t->allocs, memory_order_relaxed);
		frees += atomic_load_explicit(&t->frees, memory_order_relaxed);
	}
	tracker_registry_unlock();
	tracker_note_time(ts);
	uint8_t *p = tracker_reserve(ts, 1 + 4 * HW_VARINT_MAX);
	if (p) {
		*p++ = HW_REC_TRAILER;
		p = hw_put_varint(p, tracker_take_seq());
		p = hw_put_varint(p, coarse_ns());
		p = hw_put_varint(p, allocs);
		p = hw_put_varint(p, frees);
		tracker_commit(ts, p);
	}
	tracker_leave();
}
