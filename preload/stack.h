/* Stack capture (shim, stacks stage): the mixed stack of one event, Python
 * frames and native frames, interned into the thread's stack tree. */
#ifndef HW_PRELOAD_STACK_H
#define HW_PRELOAD_STACK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct thread_state;

/* A frame as captured, before interning: native (a = return address, b = 0)
 * or Python (a = code object | top bit, b = instruction index + 1 in the low
 * half and the address's code generation in the high half). Two captures are
 * the same frame when both words match. Whole 64-bit words on purpose: the
 * comparison right after the capture must not straddle two narrower stores
 * (a store-forwarding stall cost a third of the capture). */
struct frame_key {
	uint64_t a, b;
};

#define HW_FRAME_KEY_PYTHON (1ull << 63)
#define HW_MAX_UNWIND 512 /* native frames unwound at most */
#define HW_UNWIND_SELF 8 /* frames of the shim's own above them */
/* Python frames recorded at most: a stack as deep as Python's default
 * recursion limit (1000) is recorded whole. A deeper one keeps its
 * outermost HW_PY_KEEP_OUTER frames (where the user's code usually is) and
 * its innermost ones, with a marker between them for those not recorded
 * (HW_PY_ELIDED: a Python frame of code id 0 in the trace, see
 * trace_format.h); HW_MAX_PY_FRAMES entries in all. */
#define HW_MAX_PY_FRAMES 1024
#define HW_PY_KEEP_OUTER 256
/* how far past HW_MAX_PY_FRAMES a capture looks for the outermost frames:
 * a stack deeper than HW_MAX_PY_FRAMES + HW_PY_DEEP_WALK keeps only its
 * innermost ones, the marker outermost (bounded cost a capture) */
#define HW_PY_DEEP_WALK 2048
/* the marker's key: a Python key of code address 0, b the frames not
 * recorded (no generation), rounded down (hw_py_elided_count) */
#define HW_PY_ELIDED HW_FRAME_KEY_PYTHON

/* The count a marker records for n frames not recorded: n rounded down to
 * its two leading binary digits (1024, 1536, 2048, 3072, ...). The marker
 * is the parent of the innermost part's nodes: an exact count would give a
 * recursion that goes up and down past the limit new nodes for all of
 * that part at every depth (767 a depth: a DFS 100,000 deep would make
 * ~77 million); so about two a doubling. */
static inline uint32_t hw_py_elided_count(uint64_t n)
{
	if (n > UINT32_MAX)
		n = UINT32_MAX;
	if (n < 4)
		return (uint32_t)n;
	int k = 63 - __builtin_clzll(n);
	return (uint32_t)(n >> (k - 1) << (k - 1));
}
/* a capture's frames at most: Python ones and native ones (--native) */
#define HW_MAX_FRAMES (HW_MAX_PY_FRAMES + HW_MAX_UNWIND)

/* splice's arrays (stack.c) */
struct splice_scratch {
	unsigned lo[HW_MAX_PY_FRAMES + 1], hi[HW_MAX_PY_FRAMES + 1];
	uintptr_t entry[HW_MAX_PY_FRAMES + 1];
	unsigned short at[HW_MAX_UNWIND];
	bool used[HW_MAX_PY_FRAMES + 1];
};

/* --native's previous merge (stack.c, merge), root first: what the thread's
 * last_keys[0..n) were made of, and where each native frame's part of them
 * starts. Kept across captures; valid only while the capture that made it
 * is the thread's last one. */
struct merge_memo {
	bool valid;
	int32_t d; /* Python runs - eval frames */
	uint32_t epoch, deaths, root, ranges; /* module epoch, g_code_deaths,
					       * ts->root, python_eval_ranges() */
	unsigned nips, npy, n; /* native frames, Python entries, merged frames */
	uint32_t unwind; /* the unwind its native frames came from (unwind.serial) */
	uintptr_t ips[HW_MAX_UNWIND];
	uintptr_t code[HW_MAX_PY_FRAMES], entry[HW_MAX_PY_FRAMES];
	int32_t lasti[HW_MAX_PY_FRAMES];
	/* markers, and markers with an entry frame, before each entry */
	uint16_t marks[HW_MAX_PY_FRAMES + 1], calls[HW_MAX_PY_FRAMES + 1];
	/* for native frame j: eval frames before it, the merged frames and
	 * Python entries before its part */
	uint16_t evals[HW_MAX_UNWIND + 1], opos[HW_MAX_UNWIND + 1], ppos[HW_MAX_UNWIND + 1];
};

/* A capture's working arrays, kept in the thread's state rather than on
 * the stack of the program's thread (about 113 KiB, most of it touched
 * only by deep stacks or --native; a thread may have only 16 KiB of
 * stack). keys comes first: the collecting functions get keys and reach
 * the rest from it. */
struct stack_scratch {
	struct frame_key keys[HW_MAX_FRAMES];
	uintptr_t ips[HW_MAX_UNWIND + HW_UNWIND_SELF];
	uintptr_t sps[HW_MAX_UNWIND + HW_UNWIND_SELF];
	struct splice_scratch splice;
	_Alignas(16) unsigned char py[HW_MAX_PY_FRAMES * 32]; /* struct py_frame */
	struct merge_memo memo; /* not scratch: kept from capture to capture */
};

/* The chains behind recent RETAG decisions (stack_capture_is): a stack's
 * leaf node and the raw Python frames it was captured from (root first, see
 * g_py_raw_walk), with what the nodes depend on besides the frames. */
#define HW_CHAIN_SLOTS 16
#define HW_CHAIN_DEPTH 64
struct chain_memo {
	uint32_t leaf; /* 0: empty */
	uint32_t depth;
	uint32_t deaths; /* g_code_deaths */
	uint32_t module_epoch; /* the thread's stack tree */
	uint32_t root; /* parent of the outermost frame */
	struct frame_key raw[HW_CHAIN_DEPTH];
};

/* Returns the leaf node id of the calling thread's stack (0: no stack).
 * Which frames: see enum native_mode in config.h. Consecutive stacks of a
 * thread share their root side; only frames that changed are interned.
 * attached: called from a PyMem hook (the thread has an attached Python
 * thread state). */
uint32_t stack_capture(struct thread_state *ts, bool attached);

/* The layout row's Python-only capture once stack_python_started found
 * the mode goes through the frame-chain cache, else NULL: what
 * stack_capture calls for a thread whose module epoch is current. The
 * hooks call it themselves (tracker_capture): one call an event fewer. */
extern uint32_t (*_Atomic g_capture_py[2])(struct thread_state *ts, bool attached)
	__attribute__((visibility("hidden"))); /* [attached] */

/* stack_capture without the layout row's Python-only capture (which calls
 * it for a thread that has no Python frame): every other mode. */
uint32_t stack_capture_other(struct thread_state *ts, bool attached);

/* Python frames are walked from now on (after g_py_state left PY_NONE):
 * Python-only stacks go through the row's capture when the mode allows. */
void stack_python_started(void);

/* HEAPWISE_STACK_CACHE=check: the stack a Python-only capture just left in
 * last_keys against an uncached walk. */
void stack_check_cached(struct thread_state *ts, bool attached);

/* stack_capture(ts, true) for a RETAG decision (3.13+: is the thread's
 * stack the one the block has, `same`?): returns the same id, but when the
 * thread's raw Python frames are those it last found `same` from, with no
 * code object dead and the same stack tree and root since, returns `same`
 * without interning (the frames alone decide the nodes then). */
uint32_t stack_capture_is(struct thread_state *ts, uint32_t same);

/* HEAPWISE_STACK_CACHE=check: captures checked, and those that differed;
 * RETAG decisions taken from the chain memo checked against a capture, and
 * those that differed. */
extern _Atomic uint64_t g_stack_checks, g_stack_check_misses;
extern _Atomic uint64_t g_chain_checks, g_chain_check_misses;
/* and --native merges checked against a whole merge, those among them
 * that kept the previous one's outer part, and those that differed */
extern _Atomic uint64_t g_merge_checks, g_merge_kept, g_merge_check_misses;

#endif
