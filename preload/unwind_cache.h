/* Cached native unwinding (shim, stacks stage): frame recipes read from the
 * objects' .eh_frame, kept per thread by return address, for --native's
 * every-event unwind. No libunwind here: stack_native.c falls back to it. */
#ifndef HW_PRELOAD_UNWIND_CACHE_H
#define HW_PRELOAD_UNWIND_CACHE_H

#include <stdbool.h>
#include <stdint.h>

/* per thread: 512 sets of 4 (one cache line each), 32 KiB */
#define HW_UNWIND_SETS 512
#define HW_UNWIND_WAYS 4

/* How to step from a frame that is at a return address to its caller:
 * CFA = (rsp or rbp) + cfa_off, return address at CFA - 8, rbp unchanged or
 * saved at CFA + rbp_off, rsp = CFA. The same frames libunwind's own fast
 * path (x86_64 tdep_trace) steps through; any other frame is left to it. */
struct unwind_recipe {
	uintptr_t ip; /* the return address it is for; 0: empty slot */
	int32_t cfa_off;
	int16_t rbp_off; /* 0: rbp is not saved by this frame */
	uint8_t kind; /* enum recipe_kind (unwind_cache.c) */
	uint8_t pad;
};

/* A frame as an unwind stepped into it: the address in it, its stack
 * pointer (the CFA of the step) and rbp, and where the step read that rbp
 * (0: the callee's, unchanged). */
struct unwind_frame {
	uintptr_t ip, sp, bp, slot;
};

/* The frames of a past unwind, root first (unwind_cache.c: an unwind that
 * steps into one of them takes its callers from here, each after re-reading
 * the slots its step read), and how the walk from the outermost ended. */
#define HW_UNWIND_MEMO 512
struct unwind_memo {
	int n; /* frames; 0: none */
	uint8_t end; /* enum memo_end (unwind_cache.c) */
	uintptr_t end_slot; /* END_SLOT: the return address slot that ended it */
	uintptr_t stack_hi; /* the bound its steps were checked against */
	bool exact; /* f[0..n) are the last unwind's frames (the memo's user's) */
	struct unwind_frame f[HW_UNWIND_MEMO];
	struct unwind_frame t[HW_UNWIND_MEMO]; /* the unwind's own, innermost first */
};

/* A thread's recipes; lives in its thread state (zeroed memory is an empty
 * cache). Keyed by address: forgotten when an object may have been
 * unloaded (g_module_epoch: dlclose and modules_unloaded move it), with the
 * memo. */
struct unwind_cache {
	uint32_t epoch; /* g_module_epoch then */
	bool valid;
	/* the last unwind_cache_backtrace's outermost frames (root first) that
	 * are the previous one's: 0 when not known */
	unsigned same_root;
	uint32_t serial; /* stack_native_unwind's calls on the thread */
	struct unwind_recipe r[HW_UNWIND_SETS * HW_UNWIND_WAYS];
	struct unwind_memo memo;
};

/* Return addresses of the calling thread, innermost first, at most max,
 * without the shim's own frames on top (those in [self_lo, self_hi)): what
 * unw_backtrace(buf, total) gives for the same frames once those are
 * dropped. -1 when a frame needs more than a recipe (no unwind
 * information, a signal frame, an unusual rule, a stack outside
 * [stack_lo, stack_hi)): the caller then unwinds the slow way. Reads only
 * the thread's own stack between its stack pointer and stack_hi. Call
 * inside tracker_unwind_enter (it calls dl_iterate_phdr). */
int unwind_cache_backtrace(struct unwind_cache *c, uintptr_t *ips, int max, int total,
			   uintptr_t self_lo, uintptr_t self_hi, uintptr_t stack_lo,
			   uintptr_t stack_hi);

#endif
