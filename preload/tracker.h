/* The shim's core (intercept -> guard -> tracker): turns one allocator call
 * into records in the calling thread's chunk. It knows nothing about symbol
 * interposition, so tests drive it directly. */
#ifndef HW_PRELOAD_TRACKER_H
#define HW_PRELOAD_TRACKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "heapwise/compiler.h"
#include "heapwise/trace_format.h"
#include "heapwise/varint.h"
#include "proc.h"
#include "stack.h"
#include "unwind_cache.h"
#include "stack_tree.h"
#include "writer.h"

/* Largest record the hot path writes (REMAP: tag + 6 varints + stack). */
#define HW_MAX_EVENT_RECORD 80u

/* Stack the shim may use below the program's frame for one event: with a
 * native unwind (libunwind's frames are most of it), and without (about
 * 0.7 KiB measured; a chunk claim's system calls included). With less left
 * the event gets no native frames, or is not recorded. The integration test
 * stackuse checks the shim stays under them on every path. */
#define HW_STACK_NATIVE (8u << 10)
#define HW_STACK_MIN (2u << 10)

struct thread_state {
	uint32_t generation; /* g_proc.generation when made; a fork child drops older ones */
	uint32_t tid; /* the OS's, reused */
	uint32_t serial; /* in this process, from 1, never reused: the trace's thread */
	/* a stack pointer in [stack_ok, stack_ok + stack_span) leaves room for
	 * any event (HW_STACK_NATIVE above the thread's stack bottom); other
	 * ones go to tracker_stack_room. Unknown bounds: 0 and all addresses */
	uintptr_t stack_ok, stack_span;
	uintptr_t stack_lo, stack_hi; /* the thread's stack, 0 when unknown */
	/* the bounds were not asked for: the thread was inside
	 * pthread_getattr_np (tracker_stack_bounds_pending asks when it returns) */
	bool stack_pending;
	uint8_t *chunk; /* current chunk (lease.map), NULL before the first event */
	/* where its next record goes, and the end of its room; both NULL
	 * while there is no chunk */
	uint8_t *wp, *wend;
	uint32_t chunk_index;
	/* inside libunwind or dl_iterate_phdr (tracker_unwind_enter): written by
	 * its thread only, read by a fork's prepare handler */
	_Atomic uint32_t unwinding;
	uint64_t last_seq; /* delta bases, reset with each chunk */
	uint64_t last_addr;
	uint32_t last_stack; /* of the chunk's last ALLOC or REALLOC (ALLOC_NEXT) */
	uint32_t last_kind; /* of its last ALLOC, FREE or REALLOC (the _NEXT tags) */
	uint64_t time_ns; /* last TIME record of this chunk; UINT64_MAX: none yet */
	uint64_t clock_raw; /* the coarse clock's reading time_ns was last checked at */
	/* tracker_note_time_often: events until the next look at the clock
	 * (1: this one), and the stride it was last set to */
	uint32_t clock_skip, clock_stride;
	int *errnop; /* the thread's errno (&errno: a call each time) */
	_Atomic uint64_t allocs, frees; /* events recorded, for the trailer (read by
					 * another thread at exit: atomic, but only
					 * ever written by the owner) */
	uint8_t exiting; /* the rounds of key destructors the thread's ran in */
	uint32_t module_epoch; /* g_module_epoch its stack tree was built in */
	unsigned last_depth; /* previous stack, root first, with its nodes */
	bool py_cached; /* last_* are a Python-only capture's (stack.c), whose
			 * frames without generations are py_raw */
	uint32_t root; /* parent of the stacks' outermost frames: 0, or the
			* THREAD node under the stack that started the thread */
	uintptr_t py_last; /* the thread's last OBJ-domain block (python_objects.c) */
	size_t py_last_size;
	uint32_t py_recheck; /* OBJ allocations since the thread last looked
			      * whether the reference tracer is still ours */
	struct thread_state *next; /* registry of live states */
	/* The arrays below are mapped whole and touched as used: a thread
	 * that lives for a few events faults in the first page of the ones
	 * it uses (the fields above share the first page with them). */
	/* the walk's raw keys end at py_raw[HW_MAX_PY_FRAMES]; that entry
	 * holds the innermost frame's address (stack_python.c, walk_keys) */
	struct frame_key py_raw[HW_MAX_PY_FRAMES + 1];
	uint32_t py_deaths; /* g_code_deaths when they were made */
	struct frame_key last_keys[HW_MAX_FRAMES];
	uint32_t last_ids[HW_MAX_FRAMES];
	uint32_t last_code[HW_MAX_FRAMES]; /* code ids of the Python frames among them */
	struct stack_tree tree;
	struct code_map *codes; /* Python code objects this thread has written */
	struct chunk_lease lease; /* of the current chunk */
	struct stack_scratch scratch; /* stack_capture's arrays */
	struct unwind_cache unwind; /* --native's frame recipes (unwind_cache.c) */
	struct chain_memo chains[HW_CHAIN_SLOTS]; /* RETAG decisions (stack.c) */
};

struct tls {
	int guard; /* set while shim code runs on this thread */
	int dead; /* the thread's key destructor has run */
	struct thread_state *state;
	/* where this thread's current Python thread state lives (CPython's
	 * thread-local _Py_tss_tstate, 3.12+; stack_python.c), NULL until
	 * found: what _PyThreadState_GetCurrent() returns, read directly */
	void *const *py_tstate_slot;
	uint32_t origin; /* the stack that started this thread under Python, 0: none */
	/* sampling mode (sample.h): bytes to the next sample point (0: not
	 * drawn yet), and the thread's random generator (0: not seeded) */
	uint64_t sample_left;
	uint64_t sample_rng;
	/* the alternate signal stack this thread set through sigaltstack;
	 * both 0: none (tracker_stack_alt) */
	uintptr_t alt_lo, alt_hi;
	/* calls of pthread_getattr_np under way on this thread (the program's:
	 * it holds the thread's own lock while it allocates) */
	int in_getattr;
};

/* RUN_STOPPED: recording stopped for good (a full disk, a limit); the trace
 * is still this process's, to be trimmed at exit. */
enum run_state { RUN_NOT_STARTED = 0, RUN_STARTING = 1, RUN_ON = 2, RUN_OFF = 3, RUN_STOPPED = 4 };

extern __thread struct tls hw_tls __attribute__((tls_model("initial-exec")));
/* hidden (like the others the hot path reads): addressed directly, not
 * through the GOT */
extern _Atomic int g_run_state __attribute__((visibility("hidden")));
extern _Atomic int g_unwind_gate __attribute__((visibility("hidden"))); /* 1 during a fork */
extern bool g_unwind_unsafe; /* this process may never unwind natively */
extern _Atomic uint64_t g_seq __attribute__((visibility("hidden")));
/* moved by dlclose (before and after the call) and when the loader's
 * counters show an object unloaded behind our back (glibc's gconv modules) */
extern _Atomic uint32_t g_module_epoch __attribute__((visibility("hidden")));
/* dlcloses under way (intercept_libc.c) */
extern _Atomic uint32_t g_module_busy;
extern uint64_t g_start_monotonic_ns __attribute__((visibility("hidden")));

/* Starts recording if it has not started (init.c); true when it is on. */
bool init_maybe(void);

struct thread_state *tracker_thread_state_slow(void);

/* Bytes of stack below sp: on the thread's own stack, or on the signal
 * stack it runs on (one sigaltstack call); SIZE_MAX on a stack the shim
 * does not know (makecontext, a coroutine library). */
size_t tracker_stack_room(const struct thread_state *ts, uintptr_t sp);
/* The calling thread set its alternate signal stack to [lo, hi) (0, 0:
 * disabled) through sigaltstack. One that lies inside the thread's own
 * stack (an array in one of its frames) sends every stack check of the
 * thread to tracker_stack_room, which measures what is left of that array. */
void tracker_stack_alt(uintptr_t lo, uintptr_t hi);
/* After the program's pthread_getattr_np returned on this thread: the stack
 * bounds its first event could not ask for inside that call, asked now. */
void tracker_stack_bounds_pending(void);

/* True when an event at sp has room for a native unwind. */
static inline bool tracker_stack_native_ok(const struct thread_state *ts, uintptr_t sp)
{
	return HW_LIKELY(sp - ts->stack_ok < ts->stack_span) ||
	       tracker_stack_room(ts, sp) >= HW_STACK_NATIVE;
}

/* Begins shim work on this thread: returns its state with the reentrancy
 * guard set, or NULL (guard untouched) when this call must not be recorded:
 * recording is off, or shim code is already running on this thread. */
static inline struct thread_state *tracker_enter(void)
{
	if (HW_UNLIKELY(atomic_load_explicit(&g_run_state, memory_order_acquire) != RUN_ON) &&
	    !init_maybe())
		return NULL;
	if (hw_tls.guard)
		return NULL;
	hw_tls.guard = 1;
	struct thread_state *ts = hw_tls.state;
	if (HW_UNLIKELY(!ts || ts->generation != atomic_load_explicit(&g_proc.generation,
								      memory_order_relaxed))) {
		ts = tracker_thread_state_slow();
		if (!ts) {
			hw_tls.guard = 0;
			return NULL;
		}
	}
	/* one subtraction and compare: room for anything, or look closer
	 * (a small stack nearly used up, a signal handler's alternate stack) */
	if (HW_UNLIKELY((uintptr_t)__builtin_frame_address(0) - ts->stack_ok >= ts->stack_span) &&
	    tracker_stack_room(ts, (uintptr_t)__builtin_frame_address(0)) < HW_STACK_MIN) {
		hw_tls.guard = 0;
		return NULL; /* not recorded: it could not be without overflowing */
	}
	return ts;
}

static inline void tracker_leave(void)
{
	hw_tls.guard = 0;
}

/* Takes the next global sequence number (one atomic add). */
static inline uint64_t tracker_take_seq(void)
{
	return atomic_fetch_add_explicit(&g_seq, 1, memory_order_relaxed);
}

/* Event entry points; ts comes from tracker_enter. Allocations are recorded
 * after the real call returned, frees before the real free runs. */
void tracker_alloc(struct thread_state *ts, int kind, const void *ptr, size_t size);
/* tracker_alloc_stack and tracker_realloc return the stack the record names,
 * 0 when none was written. */
uint32_t tracker_alloc_stack(struct thread_state *ts, int kind, const void *ptr, size_t size);
void tracker_free(struct thread_state *ts, int kind, const void *ptr);
/* A free whose sequence number was taken with tracker_event_seq before the
 * real call (realloc to 0). */
void tracker_free_at(struct thread_state *ts, int kind, uint64_t seq, const void *ptr);
/* seq_free was taken with tracker_event_seq before the real realloc ran. */
uint32_t tracker_realloc(struct thread_state *ts, int kind, uint64_t seq_free, const void *old,
		     const void *new_ptr, size_t size);
void tracker_unmap(struct thread_state *ts, const void *addr, size_t len);
void tracker_remap(struct thread_state *ts, uint64_t seq_free, const void *old, size_t old_len,
		   const void *new_ptr, size_t new_len);

/* A MARK event (HW_MARK_*) with a label. */
void tracker_mark(struct thread_state *ts, int kind, const char *label);

/* While CPython has not started to finalize: the address of
 * _PyRuntime._finalizing, watched by every event (one load); else
 * HW_NOT_FINALIZING, a word that stays 0 (no test for NULL on the hot
 * path). */
extern uintptr_t *_Atomic g_py_finalizing __attribute__((visibility("hidden")));
extern uintptr_t g_not_finalizing __attribute__((visibility("hidden")));
#define HW_NOT_FINALIZING (&g_not_finalizing)
void tracker_finalize_seen(struct thread_state *ts);

/* Once the interpreter runs: the address of its gc.collecting flag,
 * watched by every event (one load); g_py_gc_seen is the value the last
 * mark was written for (HW_GC_UNARMED until python_objects.c started).
 * Before and after: HW_GC_NO_FLAG, g_py_gc_seen itself, which never
 * differs from itself (no test for NULL on the hot path). */
#define HW_GC_UNARMED (-1)
#define HW_GC_BUSY (-2)
extern int *_Atomic g_py_gc_flag __attribute__((visibility("hidden")));
extern _Atomic int g_py_gc_seen __attribute__((visibility("hidden")));
#define HW_GC_NO_FLAG ((int *)&g_py_gc_seen)
/* attached: called from a PyMem hook (an attached thread state) */
void tracker_gc_seen(struct thread_state *ts, bool attached);
/* Python finalizes: a collection that ended since the last event that
 * looked (in the sampling mode, the last sampled one) gets its end mark; one
 * that is running then (finalization collects) gets none. */
void tracker_gc_flush(struct thread_state *ts);

/* The watches of each event: CPython finalizing, its collector running. */
static inline void tracker_watch_python(struct thread_state *ts, bool attached)
{
	uintptr_t *fin = atomic_load_explicit(&g_py_finalizing, memory_order_relaxed);
	if (HW_UNLIKELY(*(volatile uintptr_t *)fin))
		tracker_finalize_seen(ts);
	int *gc = atomic_load_explicit(&g_py_gc_flag, memory_order_relaxed);
	if (HW_UNLIKELY(*(volatile int *)gc != atomic_load_explicit(&g_py_gc_seen, memory_order_relaxed)))
		tracker_gc_seen(ts, attached);
}

/* The same for an event that does not come from a PyMem hook. */
static inline void tracker_watch_finalize(struct thread_state *ts)
{
	tracker_watch_python(ts, false);
}

/* The sequence number of a free (or of the free half of a realloc or
 * mremap) taken before the real call. CPython's finalization mark is written
 * first when this is the event that sees it: the mark takes its number
 * before the free's, so a chunk's numbers only ever grow (a free written
 * after a mark with a newer number had a negative delta, and the reader
 * dropped the rest of the chunk). */
static inline uint64_t tracker_event_seq(struct thread_state *ts)
{
	tracker_watch_finalize(ts);
	return tracker_take_seq();
}

/* True for a state of another process: in a child made by fork without
 * atfork handlers, from a signal handler that interrupted an event of this
 * thread, the event goes on in the child too. Its chunk is the parent's,
 * which has written on since: the child writes nothing into it, and never
 * publishes a shorter length that would cut the parent's records. */
static inline bool tracker_foreign(const struct thread_state *ts)
{
	return ts->generation != atomic_load_explicit(&g_proc.generation, memory_order_relaxed);
}

/* errno and an event: the inline path of a record (tracker_enter,
 * tracker_record_*, tracker_capture up to the layout row's walk) makes no
 * call that can set it, and every out-of-line path it can take keeps errno
 * as it found it. Those marked HW_KEEPS_ERRNO save it: tracker_reserve_slow,
 * tracker_clock_look around tracker_time_moved, tracker_finalize_seen,
 * tracker_gc_seen, stack_capture_other, stack_check_cached, stack.c's
 * new_module_epoch, stack_python.c's memo_fill and tss_first, each in one
 * frame (a native unwind keeps HW_UNWIND_SELF frames of the shim's);
 * tracker_thread_state_slow, tracker_stack_room and init_maybe did already.
 * The PyMem hooks rely on that and save nothing: a new out-of-line call on
 * the record path must keep errno too. */
uint8_t *tracker_reserve_slow(struct thread_state *ts, size_t max);
/* A RETAG event: CPython reused the live block at block (from a free list)
 * for an object the calling thread's stack makes; none when that stack is
 * `same` (the block's already). Returns the stack, 0 when none was written. */
uint32_t tracker_retag(struct thread_state *ts, const void *block, uint32_t same);

/* Writes a record of at most `max` bytes: returns where to write, or NULL when
 * recording has failed; tracker_commit publishes it. Switching to a new chunk
 * restarts the delta bases and the time. */
static inline uint8_t *tracker_reserve(struct thread_state *ts, size_t max)
{
	if (HW_UNLIKELY((uintptr_t)ts->wp + max > (uintptr_t)ts->wend || tracker_foreign(ts)))
		return tracker_reserve_slow(ts, max);
	uint8_t *p = ts->wp;
	if (!p) /* in a chunk (wp and wend are both NULL without one): the
		 * callers' test of the result is left to the slow path */
		__builtin_unreachable();
	return p;
}

static inline void tracker_commit(struct thread_state *ts, uint8_t *end)
{
	ts->wp = end;
	if (HW_UNLIKELY(tracker_foreign(ts)))
		return;
	uint8_t *chunk = ts->chunk;
	struct hw_chunk_header *h = (struct hw_chunk_header *)chunk;
	atomic_store_explicit((_Atomic uint32_t *)&h->used,
			      (uint32_t)(end - (chunk + HW_CHUNK_HEADER_SIZE)), memory_order_release);
}

/* The hot path of an event, inline in the hooks that record it (a call
 * and its frame cost about 20 instructions an event: issue 17). */

/* The coarse clock is a read of the vDSO page (a few ns); its 1-4 ms
 * resolution is what the timeline needs. The raw reading, compared as it
 * is; tracker_since_start makes it the trace's time. */
static inline uint64_t tracker_coarse_raw(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static inline uint64_t tracker_since_start(uint64_t raw)
{
	return raw > g_start_monotonic_ns ? raw - g_start_monotonic_ns : 0;
}

void tracker_time_moved(struct thread_state *ts, uint64_t raw);

/* A look at the clock (the rare events; the allocator's take
 * tracker_note_time_often): a TIME record when it moved on (and then the RSS
 * every 10 ms). A chunk starts with the thread's time, which is time_ns,
 * read at clock_raw: a chunk claimed by the event's tracker_reserve has
 * the event's time without a look here. */
static inline __attribute__((always_inline)) void tracker_note_time(struct thread_state *ts)
{
	uint64_t raw = tracker_coarse_raw();
	if (HW_UNLIKELY(raw != ts->clock_raw))
		tracker_time_moved(ts, raw);
}

/* The most events of a thread between two looks at the clock. */
#define HW_CLOCK_STRIDE_MAX 8

void tracker_clock_look(struct thread_state *ts);

/* tracker_note_time for the allocator's events (alloc, free, realloc,
 * retag): a look at the clock every clock_stride events of the thread. The
 * stride goes back to 1 at each look that finds the clock moved on and
 * grows by one at each that does not, up to HW_CLOCK_STRIDE_MAX: a thread
 * that makes fewer events than a few a tick (1-4 ms) looks at every one of
 * them, one that makes thousands (a_pymalloc_heavy: ~6 an microsecond)
 * once every 8, and an event's time is behind the clock only by the few
 * events since the last look (after an idle pause at most 7 events of the
 * thread's keep the time from before it). Reading the clock at every event
 * was ~18 instructions of its ~260 (callgrind, a 200000: 71 M; issue 17). */
static inline __attribute__((always_inline)) void tracker_note_time_often(struct thread_state *ts)
{
	if (HW_LIKELY(--ts->clock_skip != 0)) /* a subtraction from memory and a jump */
		return;
	tracker_clock_look(ts);
}

/* An allocation of this many bytes or more looks at the clock itself: the
 * steps a timeline shows are on time even right after an idle pause (only
 * smaller events, at most 7 of them, can keep the time from before it). */
#define HW_CLOCK_LOOK_SIZE (64u * 1024u)

static inline __attribute__((always_inline)) void tracker_note_time_sized(struct thread_state *ts,
									     size_t size)
{
	if (HW_UNLIKELY(size >= HW_CLOCK_LOOK_SIZE)) {
		tracker_clock_look(ts);
		return;
	}
	tracker_note_time_often(ts);
}

/* Owner-only increment: a plain add, no locked instruction. On x86-64 one
 * add to memory (the relaxed load and store were three instructions an
 * event: issue 17): its store is one aligned 8-byte write, which a reader
 * on another CPU (the trailer, a thread's exit) sees whole. */
static inline void tracker_bump(_Atomic uint64_t *c)
{
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__)
	__asm__("addq $1, %0" : "+m"(*(uint64_t *)c));
#else
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
#endif
}

static inline uint8_t *tracker_put_seq(struct thread_state *ts, uint8_t *p, uint64_t seq)
{
	p = hw_put_varint(p, seq - ts->last_seq);
	ts->last_seq = seq;
	return p;
}

static inline uint8_t *tracker_put_addr(struct thread_state *ts, uint8_t *p, const void *addr)
{
	uint64_t a = (uintptr_t)addr;
	p = hw_put_varint(p, hw_zigzag((int64_t)(a - ts->last_addr)));
	ts->last_addr = a;
	return p;
}

/* The PyMem domains are only called by a thread with an attached thread
 * state (holding the GIL, in a GIL build). */
static inline uint32_t tracker_capture(struct thread_state *ts, int kind)
{
	bool attached = kind == HW_KIND_PYMEM || kind == HW_KIND_PYOBJ;
	/* stack_capture's common case in line: the row's Python-only capture */
	uint32_t (*py)(struct thread_state *, bool) =
		atomic_load_explicit(&g_capture_py[attached], memory_order_acquire);
	if (HW_LIKELY(py) &&
	    HW_LIKELY(ts->module_epoch == atomic_load_explicit(&g_module_epoch, memory_order_relaxed)))
		return py(ts, attached);
	return stack_capture(ts, attached);
}

/* tracker_alloc's record; returns the stack it names, 0 when none was
 * written. */
/* The start of a record of an allocation of size bytes (ALLOC or REALLOC):
 * its stack into *stack, a look at the clock, and where to write (NULL:
 * recording has failed). */
static inline __attribute__((always_inline)) uint8_t *
tracker_alloc_begin(struct thread_state *ts, int kind, size_t size, uint32_t *stack)
{
	*stack = tracker_capture(ts, kind);
	tracker_note_time_sized(ts, size);
	return tracker_reserve(ts, HW_MAX_EVENT_RECORD);
}

static inline __attribute__((always_inline)) uint32_t
tracker_record_alloc(struct thread_state *ts, int kind, const void *ptr, size_t size)
{
	tracker_watch_python(ts, kind == HW_KIND_PYMEM || kind == HW_KIND_PYOBJ);
	uint32_t stack;
	uint8_t *p = tracker_alloc_begin(ts, kind, size, &stack);
	if (!p)
		return 0;
	/* the short form when the number follows the chunk's last and the kind
	 * is its last (one byte less, and a stack delta of about one byte
	 * instead of two or three: issue 17) */
	uint64_t seq = tracker_take_seq();
	if (HW_LIKELY(seq - ts->last_seq == 1 && (uint32_t)kind == ts->last_kind)) {
		/* each form written whole: one test of the form, not three */
		*p++ = HW_REC_ALLOC_NEXT;
		ts->last_seq = seq;
		p = tracker_put_addr(ts, p, ptr);
		p = hw_put_varint(p, size);
		p = hw_put_varint(p, hw_zigzag((int64_t)stack - (int64_t)ts->last_stack));
	} else {
		*p++ = (uint8_t)(HW_REC_ALLOC | kind);
		p = tracker_put_seq(ts, p, seq);
		ts->last_kind = (uint32_t)kind;
		p = tracker_put_addr(ts, p, ptr);
		p = hw_put_varint(p, size);
		p = hw_put_varint(p, stack);
	}
	ts->last_stack = stack;
	tracker_commit(ts, p);
	tracker_bump(&ts->allocs);
	return stack;
}

/* tracker_free_at's record. */
static inline __attribute__((always_inline)) void
tracker_record_free(struct thread_state *ts, int kind, uint64_t seq, const void *ptr)
{
	tracker_note_time_often(ts);
	uint8_t *p = tracker_reserve(ts, HW_MAX_EVENT_RECORD);
	if (!p)
		return;
	if (HW_LIKELY(seq - ts->last_seq == 1 && (uint32_t)kind == ts->last_kind)) {
		*p++ = HW_REC_FREE_NEXT;
		ts->last_seq = seq;
	} else {
		*p++ = (uint8_t)(HW_REC_FREE | kind);
		p = tracker_put_seq(ts, p, seq);
		ts->last_kind = (uint32_t)kind;
	}
	p = tracker_put_addr(ts, p, ptr);
	tracker_commit(ts, p);
	tracker_bump(&ts->frees);
}

/* tracker_realloc's record (in line in the PyMem hooks: the call was ~15
 * instructions a realloc, issue 17). */
static inline __attribute__((always_inline)) uint32_t
tracker_record_realloc(struct thread_state *ts, int kind, uint64_t seq_free, const void *old,
		       const void *new_ptr, size_t size)
{
	uint32_t stack;
	uint8_t *p = tracker_alloc_begin(ts, kind, size, &stack);
	if (!p)
		return 0;
	uint64_t seq_alloc = tracker_take_seq();
	*p++ = (uint8_t)(HW_REC_REALLOC | kind);
	p = tracker_put_seq(ts, p, seq_free);
	p = hw_put_varint(p, seq_alloc - seq_free);
	ts->last_seq = seq_alloc;
	p = tracker_put_addr(ts, p, old);
	p = tracker_put_addr(ts, p, new_ptr);
	p = hw_put_varint(p, size);
	p = hw_put_varint(p, stack);
	ts->last_stack = stack;
	ts->last_kind = (uint32_t)kind;
	tracker_commit(ts, p);
	tracker_bump(&ts->allocs);
	tracker_bump(&ts->frees);
	return stack;
}

/* Writes the trailer for a clean exit from the calling thread. */
void tracker_write_trailer(void);

/* Called first on a thread pthread_create started under a Python frame:
 * origin is the creating thread's stack at that call; this thread's stacks
 * hang under a THREAD frame on top of it. */
void tracker_set_origin(uint32_t origin);

/* Called by the thread-exit key destructor and in a fork child. */
void tracker_thread_exit(struct thread_state *ts);
/* In a fork child: drops the parent's thread states and unmaps their chunks
 * (never writes to them). interrupted: the fork came from a signal handler
 * that interrupted shim code on this thread, which runs on with its state
 * once the handler returns: that state is kept, its chunk replaced by
 * private memory, so what it writes reaches nobody's file. */
void tracker_forget_all_threads(bool interrupted);

/* init.c: what a fork child does; called by the atfork child handler and by
 * the first event of a child made without it. drained: the prepare handler
 * drained the unwinders (tracker_fork_drain) before the fork. */
void init_fork_child(bool drained);
/* init.c: the parent's side of vfork (intercept_exec.c), once the child
 * has exec'd or ended: when a child sharing its memory ran its exit
 * handlers, the shim's end of the trace is put back where this process's
 * exit still finds it. errno kept. */
void init_vfork_parent(void);
void tracker_registry_lock(void);
void tracker_registry_unlock(void);

/* Fork and the locks of libunwind and the loader. libunwind holds locks of
 * its own while it unwinds (its global cache's, with every signal blocked)
 * and takes the loader's through dl_iterate_phdr; a thread that holds one
 * when another forks holds it in the child for good, and the child's first
 * native unwind waited for ever (the fork storm that hung CI). Every call
 * of the shim into libunwind or dl_iterate_phdr is inside
 * tracker_unwind_enter/exit; fork's prepare handler closes the gate and
 * waits until no other thread is inside (tracker_fork_drain), the parent and
 * child handlers open it. A thread that finds the gate closed does not
 * wait (it may hold a lock fork needs, an nss or stdio one): its event gets
 * no native frames. Nesting is allowed.
 * tracker_gate_enter is the gate alone: for the loader's locks only (dlsym),
 * which the caller saw free, also in a process that may never unwind
 * natively (a child made without the drain: libunwind's locks may be held
 * there for good, but glibc's fork gives the loader's lock to its child
 * free). */
static inline bool tracker_gate_enter(struct thread_state *ts)
{
	if (!ts)
		return true;
	/* a store, then a load of another variable: both sequentially
	 * consistent (the exchange is a full barrier), so that this thread or
	 * the prepare handler sees the other's store (Dekker) */
	uint32_t n = atomic_exchange(&ts->unwinding,
				     atomic_load_explicit(&ts->unwinding, memory_order_relaxed) + 1);
	if (HW_LIKELY(!atomic_load(&g_unwind_gate)))
		return true;
	atomic_store_explicit(&ts->unwinding, n, memory_order_release);
	return false;
}

static inline bool tracker_unwind_enter(struct thread_state *ts)
{
	if (HW_UNLIKELY(g_unwind_unsafe))
		return false;
	return tracker_gate_enter(ts);
}

static inline void tracker_unwind_exit(struct thread_state *ts)
{
	if (ts)
		atomic_store_explicit(&ts->unwinding,
				      atomic_load_explicit(&ts->unwinding, memory_order_relaxed) - 1,
				      memory_order_release);
}

/* fork's prepare handler: closes the gate and waits until no other thread
 * is inside it. */
void tracker_fork_drain(void);
/* In a child: true when a thread other than the caller had a state (it may
 * have held a lock of libunwind's or the loader's at the fork). */
bool tracker_had_other_threads(void);

uint64_t tracker_monotonic_ns(void);
extern pthread_key_t g_thread_key;

#endif
