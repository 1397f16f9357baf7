/* Python awareness of the shim: allocator hooks on CPython's PyMem MEM and OBJ
 * domains (intercept_pymem.c) and the calling thread's Python frames
 * (stack_python.c). CPython is found at run time with dlsym; the shim never
 * links libpython. */
#ifndef HW_PRELOAD_PYTHON_H
#define HW_PRELOAD_PYTHON_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "log.h"
#define HW_PY_FORMAT log_snprintf
#include "python_layout.h"

struct thread_state;

enum py_state {
	PY_NONE = 0, /* no CPython in this process */
	PY_WAITING = 1, /* hooks installed; CPython may still replace them */
	PY_READY = 2, /* Py_IsInitialized(): hooks stay */
};

extern _Atomic int g_py_state;
extern const struct python_layout *g_py_layout; /* NULL: frames off */

/* Finds CPython in the process, installs the allocator hooks, wraps the code
 * object destructor and writes the PYTHON record. Called once at start (and
 * again in a fork child, where it only writes the record). */
void python_start(struct thread_state *ts);
void python_emit_info(struct thread_state *ts);

/* While PY_WAITING: reinstalls the hooks when PYTHONMALLOC, -X dev or
 * another allocator change replaced them, and turns PY_READY once the
 * interpreter is initialized. Called from the libc interposers. */
void python_check_hooks(void);

/* A libpython loaded after start (dlopen with RTLD_GLOBAL, as programs that
 * embed Python on demand do): while there is no Python (PY_NONE), a libc
 * allocation that finds the loader's count of objects added moved since
 * g_py_late_seen calls python_check_late, which looks for CPython's
 * allocator API (dlsym, once a load) and starts the Python part as at
 * start (python_start) when it is there. Never while the loader's lock is
 * held: an object being loaded may not be relocated yet. */
extern _Atomic unsigned long long g_py_late_seen;
void python_check_late(void);
/* In a fork child (init_fork_child: atfork's child handler, or the first
 * event of a child made without them): forgets a look another thread of
 * the parent was in the middle of. */
void python_fork_child(void);

/* A Python frame for the mixed stacks; code 0 is a marker that ends the
 * frames of one _PyEval_EvalFrameDefault call (see stack.c's splice). */
#define HW_PY_ELIDED_CODE ((uintptr_t)1) /* never a code object's address */

struct py_frame {
	/* 0: a marker; HW_PY_ELIDED_CODE: the frames further out that were not
	 * recorded, lasti of them (a stack deeper than HW_MAX_PY_FRAMES) */
	uintptr_t code;
	/* a marker (3.12+): the address of the call's entry frame, a local of
	 * the eval function on the C stack; 0 in 3.11 */
	uintptr_t entry;
	int32_t lasti; /* index of the instruction's code unit; -1 before the first */
};

/* The calling thread's Python frames, innermost first (at most max entries,
 * markers included). Returns 0 for a thread without a Python thread state.
 * No GIL is needed: a thread's frame chain changes only on that thread.
 * attached: the caller is a PyMem hook, so the thread has an attached thread
 * state (holds the GIL in a GIL build), which the row says how to find fast. */
extern unsigned (*g_py_collect)(struct py_frame *out, unsigned max, bool attached);

static inline unsigned stack_python_collect(struct py_frame *out, unsigned max, bool attached)
{
	return g_py_collect(out, max, attached);
}

struct frame_key;
/* The same frames as frame keys (see stack.h), innermost first. */
extern unsigned (*g_py_keys)(struct frame_key *out, unsigned max, bool attached);

/* The same frames as raw keys, compared with the previous capture's before
 * anything else is done with them. keys: the end of an array whose last m
 * entries are the previous raw keys, root first (keys[-1] the innermost);
 * keys[0].a holds the innermost frame's address of the walk before (only
 * to choose how to compare); work: scratch, max entries before it and 8
 * from it. Returns n | same << 32: the last n entries of keys (n at most
 * max) are then the frames' raw keys, and the first same of them, from the
 * root, are the previous ones. m must be 0 unless no code object died
 * (g_code_deaths) since the previous keys were read: the walk takes a frame
 * with the same instruction pointer for the same code object.
 * A raw key's a is the code object's address (no HW_FRAME_KEY_PYTHON); its
 * b the frame's instruction pointer when g_py_raw_first is not 0 (the
 * instruction index is then computed only for the frames that changed:
 * stack_python_raw_instr), and instruction index + 1 otherwise
 * (free-threaded 3.14+, where a frame may run a per-thread copy of the
 * bytecode); never a generation. Within one code object, equal instruction
 * pointers are equal instructions. */
extern uint64_t (*g_py_raw_walk)(struct frame_key *keys, unsigned m, struct frame_key *work,
				 unsigned max, bool attached);
extern uint16_t g_py_raw_first; /* code_code_adaptive of the row, or 0 */

/* Would g_py_raw_walk give exactly raw[0] .. raw[n - 1] (root first, n <=
 * HW_MAX_PY_FRAMES)? Walks and compares without storing. */
extern bool (*g_py_raw_same)(const struct frame_key *raw, unsigned n, bool attached);

/* The layout row's whole Python-only capture through the thread's
 * frame-chain cache (stack_capture's common case, see stack.c), or NULL:
 * [1] for attached callers (the PyMem hooks), which it takes as a constant;
 * with HEAPWISE_STACK_CACHE=check, the row's capture that checks itself. */
extern uint32_t (*g_py_capture_row[2])(struct thread_state *ts, bool attached);

/* instruction index + 1 of a raw key's b (see g_py_raw_walk) */
static inline uint32_t stack_python_raw_instr(uintptr_t code, uint64_t b)
{
	if (!g_py_raw_first)
		return (uint32_t)b;
	return (uint32_t)((int32_t)(((intptr_t)b - (intptr_t)(code + g_py_raw_first)) >> 1) + 1);
}

/* Code objects that died in this process (any address): while it stands
 * still, every code generation does too. */
extern _Atomic uint32_t g_code_deaths;

/* Generation of a code object address: bumped when a code object that hashes
 * to the same slot dies, so a cached (address -> id) is known to be stale. */
#define HW_CODE_GEN_SLOTS 4096u
extern _Atomic uint32_t g_code_gen[HW_CODE_GEN_SLOTS];

static inline size_t stack_python_gen_slot(uintptr_t code)
{
	return (size_t)((code >> 4) * 0x9e3779b97f4a7c15ull >> 52) & (HW_CODE_GEN_SLOTS - 1);
}

static inline uint32_t stack_python_code_gen(uintptr_t code)
{
	return atomic_load_explicit(&g_code_gen[stack_python_gen_slot(code)], memory_order_acquire);
}

/* The per-process code id of a live code object for this thread, writing a
 * CODE record the first time (or after the address was reused). 0 on failure. */
uint32_t stack_python_code_id(struct thread_state *ts, uintptr_t code, uint32_t gen);

/* Does the calling thread have a Python thread state (of its own, attached
 * or not)? */
bool python_thread_has_state(void);

/* Finds the layout row of this interpreter (version, free-threaded or not),
 * checks it against the interpreter's debug offsets (3.13+), resolves what
 * the walker needs, wraps the code type's dealloc and starts the
 * finalization watch. false, with why, leaves Python frames off. */
bool stack_python_attach(uint32_t version, char *why, size_t cap);
extern uint32_t g_py_flags; /* HW_PY_* of the PYTHON_INFO record */

/* True when ip is inside _PyEval_EvalFrameDefault, or a function learned to
 * run eval calls (python_learn_eval). */
bool python_is_eval(uintptr_t ip);
void python_learn_eval(uintptr_t lo, uintptr_t hi);
/* How many functions were learned so (only grows): python_is_eval's answer
 * for an address stays the same while this does. */
static inline unsigned python_eval_ranges(void)
{
	extern _Atomic unsigned g_neval_ranges;
	return atomic_load_explicit(&g_neval_ranges, memory_order_acquire);
}

/* Do the mixed-stack markers carry the address of each eval call's entry
 * frame on the C stack (3.12+)? */
static inline bool python_entries_on_cstack(void)
{
	return g_py_layout && g_py_layout->owner_entry;
}

/* python_objects.c: arms the GC watch once the interpreter exists (the
 * first PyMem event after it then starts the free-list work), and stops
 * both when CPython finalizes (its interpreter state goes away). */
void python_objects_arm(void);
void python_objects_finalizing(void);

/* The memo of tags (python_objects.c): a slot per block address (hashed), the
 * stack that block was last given by an OBJ allocation or a RETAG, and the
 * epoch then. The epoch moves at every mark (a report's window starts and
 * ends at marks: a RETAG left out must not cross one) and in a fork child;
 * a RETAG to the stack the memo holds for the block in the same epoch is
 * left out (it would move the block to where it is). Only in GIL builds
 * with the reference tracer on (g_tags_on): its readers and writers hold
 * the GIL. */
struct hw_tag {
	uintptr_t block;
	uint32_t stack, epoch;
};
#define HW_TAGS 4096 /* 1 << 12: hw_tag_slot's shift is 64 - 12 */
extern struct hw_tag g_tags[HW_TAGS];
extern bool g_tags_on __attribute__((visibility("hidden")));
/* the OBJ hooks then note each thread's last block */
extern bool g_py_reftracer_on __attribute__((visibility("hidden")));
extern _Atomic uint32_t g_tag_epoch __attribute__((visibility("hidden")));
/* Every HW_PY_RECHECK-th OBJ allocation of a thread (reference tracer on,
 * GIL held) looks whether the reference tracer is still the shim's and puts
 * it back if another took its place (tracemalloc.start() and .stop() do). */
#define HW_PY_RECHECK 64
void python_reftracer_recheck(void) __attribute__((visibility("hidden")));

static inline size_t hw_tag_slot(uintptr_t block)
{
	/* Fibonacci hashing: a pool's blocks of 32-64 bytes would use every
	 * second to fourth slot of (block >> 4) and wrap onto each other */
	return (size_t)(((uint64_t)(block >> 4) * 0x9E3779B97F4A7C15ull) >> 52);
}

/* An OBJ block the thread allocated (or moved) at stack, in epoch (the
 * caller checks g_tags_on). */
static inline void python_tag(const void *block, uint32_t stack, uint32_t epoch)
{
	g_tags[hw_tag_slot((uintptr_t)block)] = (struct hw_tag){(uintptr_t)block, stack, epoch};
}

/* Frees a thread's code map (and the map itself). */
struct code_map;
void stack_python_release(struct code_map *m);

#endif
