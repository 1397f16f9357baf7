/* Sampling mode (shim, between intercept and tracker): Poisson sampling by
 * bytes, the way tcmalloc, heapprofd and V8 do it. Each thread counts down
 * the bytes to its next sample point, drawn from an exponential distribution
 * of mean HEAPWISE_SAMPLE; an allocation that reaches it is recorded (the
 * analyzer weighs it), the others cost a subtraction. A free is recorded only
 * for a sampled block: the process keeps their addresses in a small hash set
 * that a free reads without a lock. Mappings (mmap, munmap, mremap) are
 * system calls already: they are recorded whole, as in the exact mode. */
#ifndef HW_PRELOAD_SAMPLE_H
#define HW_PRELOAD_SAMPLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heapwise/compiler.h"
#include "proc.h"
#include "tracker.h"

/* The mean sampling interval in bytes; 0 in the exact mode. Set at start
 * (config) and never changed after. */
extern uint64_t g_sample_interval;
#define HW_SAMPLE_MAX HW_SAMPLE_INTERVAL_MAX /* larger intervals are refused */

/* Reads HEAPWISE_SAMPLE into g_sample_interval (hooks_resolve calls it
 * before the first event; an invalid value leaves 0 and config_read says
 * so). */
void sample_read_env(void);

/* The set of sampled live blocks: open addressing, linear probing,
 * deletion by backward shift (no tombstones), changed under a lock by
 * sampled events only. A reader probes without the lock and trusts a miss
 * only when the version did not move meanwhile (a seqlock), so a moving
 * entry is never missed; anything else sends it to sample_set_take, which
 * looks again under the lock. Tables replaced by a bigger one stay mapped
 * (a reader may still probe them): at most the size of the newest. */
struct sample_table {
	size_t mask;
	unsigned shift; /* 64 - log2(slots) */
	size_t used;
	_Atomic uint64_t slot[]; /* an address, 0 = empty */
};

struct sample_set {
	struct sample_table *_Atomic table; /* NULL until the first sample */
	_Atomic uint32_t version; /* odd while the lock holder changes slots */
};
extern struct sample_set g_sample_set;

static inline size_t sample_home(const struct sample_table *t, uint64_t a)
{
	return (size_t)((a * 0x9e3779b97f4a7c15ull) >> t->shift);
}

/* In front of the set: per hash bucket of addresses, how many sampled
 * blocks are live (saturating at 255, which then stays). A free whose
 * bucket holds none is not of a sampled block: a multiply and a byte load.
 * A count is raised before its block reaches the program and lowered only
 * by that block's own removal, so it is never 0 while the block lives. */
#define SAMPLE_FILTER_BITS 15
extern uint8_t g_sample_filter[1u << SAMPLE_FILTER_BITS] __attribute__((visibility("hidden")));

static inline size_t sample_filter_slot(uint64_t a)
{
	return (size_t)((a * 0x9e3779b97f4a7c15ull) >> (64 - SAMPLE_FILTER_BITS));
}

/* The set itself (sample_maybe_sampled's second step): one load of the
 * table pointer and the version, and mostly one slot. */
static inline bool sample_probe(const void *p)
{
	uint32_t v = atomic_load_explicit(&g_sample_set.version, memory_order_acquire);
	struct sample_table *t = atomic_load_explicit(&g_sample_set.table, memory_order_acquire);
	if (HW_LIKELY(!t))
		return false;
	uint64_t a = (uintptr_t)p;
	for (size_t i = sample_home(t, a);; i = (i + 1) & t->mask) {
		/* acquire (a plain load on x86): the version is read after */
		uint64_t s = atomic_load_explicit(&t->slot[i], memory_order_acquire);
		if (s == a)
			return true;
		if (!s)
			break;
	}
	return v & 1 || atomic_load_explicit(&g_sample_set.version, memory_order_relaxed) != v;
}

/* False when p is surely not a sampled block (almost every free). */
static inline bool sample_maybe_sampled(const void *p)
{
	if (HW_LIKELY(!__atomic_load_n(&g_sample_filter[sample_filter_slot((uintptr_t)p)],
				       __ATOMIC_RELAXED)))
		return false;
	return sample_probe(p);
}

/* Adds a sampled block's address (a new table when it fills). False when
 * no memory could be had for it: then the block is not recorded. */
bool sample_set_add(const void *p);
/* Removes p; true when it was there (a sampled block). */
bool sample_set_take(const void *p);
/* A fork child: the parent's blocks are the parent's trace's. */
void sample_fork_child(void);

/* What the countdown found for an allocation of n bytes that reached the
 * sample point (or a thread's first, which draws its first countdown):
 * true when it is sampled. Draws the next countdown. */
bool sample_point(size_t n);

/* False until this process's trace started: before the first start, in a
 * fork child until its own trace starts, and in a child made without
 * atfork handlers (proc.h: the kernel zeroed the process page), whose
 * countdown and generator are still its parent's. Then allocations take
 * sample_enter_slow, which starts the trace (with its SAMPLE record, as the
 * exact mode's first event does) and so gives a child made without atfork
 * handlers an empty set and a stream of its own at its first allocation,
 * as fork's child handler does. One compare with memory. */
static inline bool sample_ready(void)
{
	return atomic_load_explicit(&g_proc.started, memory_order_relaxed) != 0;
}

/* True when an allocation of n bytes is sampled (realloc's). */
static inline bool sample_take(size_t n)
{
	if (HW_LIKELY(n < hw_tls.sample_left) && HW_LIKELY(sample_ready())) {
		hw_tls.sample_left -= n;
		return false;
	}
	return sample_point(n);
}

/* The hot path of an allocation: true when n bytes do not reach the sample
 * point and no shim or allocator code runs on this thread below us; then
 * the countdown moved on and the guard is taken (the real call's own
 * allocations are not the program's): call the real function, drop the
 * guard. Else sample_enter_slow. Deciding before the real call keeps
 * nothing live across it (no frame to save in the hooks). */
static inline bool sample_enter_fast(size_t n)
{
	if (HW_LIKELY(n < hw_tls.sample_left) && HW_LIKELY(!hw_tls.guard) &&
	    HW_LIKELY(sample_ready())) {
		hw_tls.sample_left -= n;
		hw_tls.guard = 1;
		return true;
	}
	return false;
}

/* The hot path of an allocation whose real call allocates nothing the hooks
 * could see (pymalloc's own sizes, intercept_pymem.c): as sample_enter_fast
 * without taking the guard, so the caller tail-calls the real function. It
 * still tests it: a hook of ours may wrap another allocator that wraps this
 * one (-X tracemalloc starts between two installs), and the bytes the
 * outer hook counted are not counted again here. */
static inline bool sample_count_fast(size_t n)
{
	if (HW_LIKELY(n < hw_tls.sample_left) && HW_LIKELY(!hw_tls.guard) &&
	    HW_LIKELY(sample_ready())) {
		hw_tls.sample_left -= n;
		return true;
	}
	return false;
}

/* The libc hooks' fast path (intercept_libc.c): true when the real malloc,
 * calloc, realloc and free are glibc's (2.34 or newer: no malloc hooks),
 * the sampling mode is on, this process's trace started (sample_ready) and
 * no interpreter is starting (PY_WAITING: then every libc allocation looks
 * whether CPython replaced our PyMem hooks).
 * glibc's allocator calls no function the shim interposes (its mmap, brk,
 * munmap and mremap are its own internal calls, its corruption checks
 * write with its own write and abort), so the real call needs no guard:
 * an unsampled allocation is the countdown and a tail call, an unsampled
 * free the filter's byte and a tail call, and a call made while the guard
 * is held (shim code, or a guarded PyMem hook above: not the program's) a
 * tail call. Anything else (jemalloc, tcmalloc, libc_malloc_debug, an
 * older glibc) keeps the guarded path. The flag lives in the process page
 * (proc.h), which the kernel zeroes in every child: one load tells both
 * that this process started and that the fast path applies. */
static inline bool sample_libc_on(void)
{
	return atomic_load_explicit(&g_proc.sample_libc, memory_order_relaxed) != 0;
}
/* Recomputes the flag: after the trace started (in every process, also a
 * fork child never traced), and after g_py_state changed. The allocator is
 * looked at once per process tree, by sample_emit_info. */
void sample_libc_update(void);

/* The libc hooks' countdown when sample_libc_on(): true when the real
 * function may be called at once, without the guard: the guard is held
 * (a nested call, not counted), or n bytes do not reach the sample point
 * (counted). */
static inline bool sample_libc_pass(size_t n)
{
	if (HW_UNLIKELY(hw_tls.guard))
		return true;
	if (HW_LIKELY(n < hw_tls.sample_left)) {
		hw_tls.sample_left -= n;
		return true;
	}
	return false;
}

/* What sample_enter_slow found: NESTED, call the real function and nothing
 * else; UNSAMPLED or SAMPLED, the guard is taken: drop it after the real
 * call and, when SAMPLED, give the block to sample_record_alloc. */
enum sample_entry { SAMPLE_NESTED = 0, SAMPLE_UNSAMPLED = 1, SAMPLE_SAMPLED = 2 };
enum sample_entry sample_enter_slow(size_t n);

/* Records a sampled allocation (guard not held): adds it to the set. */
void sample_record_alloc(int kind, void *p, size_t n);

/* A free in the sampling mode, before the real free runs (guard not held):
 * records it when p was a sampled block. Returns true when it took the
 * guard (then the caller runs the real free and calls tracker_leave). */
bool sample_free_slow(int kind, void *p);

/* realloc in the sampling mode, around the real call: sample_realloc_begin
 * takes the guard (false: it was held, call the real function and return)
 * and, when old was a sampled block, takes it out of the set and its free's
 * sequence number before the real call; sample_realloc_end records what
 * happened (freed: the call freed old and returned NULL, as realloc to 0;
 * taken_before: whether the new block is sampled, when the caller drew it
 * before the real call with sample_take, or -1: drawn here) and drops the
 * guard. */
struct sample_realloc {
	struct thread_state *ts; /* NULL when old was not sampled or not recordable */
	bool was_sampled;
	uint64_t seq_free;
};
bool sample_realloc_begin(struct sample_realloc *r, void *old);

/* realloc's hot path: old is not sampled and the new size does not reach
 * the sample point; as sample_enter_fast. */
static inline bool sample_realloc_fast(const void *old, size_t n)
{
	if (HW_LIKELY(n < hw_tls.sample_left) && HW_LIKELY(!hw_tls.guard) &&
	    HW_LIKELY(sample_ready()) && HW_LIKELY(!old || !sample_maybe_sampled(old))) {
		hw_tls.sample_left -= n;
		hw_tls.guard = 1;
		return true;
	}
	return false;
}
void sample_realloc_end(struct sample_realloc *r, int kind, void *old, void *p, size_t n,
			bool freed, int taken_before);

/* Writes the SAMPLE record at the start of a trace (nothing in the exact
 * mode), and looks whether the allocator below is glibc's. */
void sample_emit_info(struct thread_state *ts);

#endif
