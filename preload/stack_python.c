/* Python frames (shim, stacks stage): walks the calling thread's interpreter
 * frames from its thread state, recording (code object, instruction index);
 * line numbers are computed offline from the code object's line table, which
 * is written once per code object. Reads the objects directly, never calls
 * into Python. */
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

#include "heapwise/compiler.h"
#include "heapwise/trace_format.h"
#include "heapwise/varint.h"
#include "log.h"
#include "python.h"
#include "config.h"
#include "stack.h"
#include "stack_tree.h"
#include "tracker.h"
#include "writer.h"


_Atomic int g_py_state;
const struct python_layout *g_py_layout;
static void *(*g_py_get_tstate)(void);
static void *(*g_py_current_tstate)(void); /* _PyThreadState_GetCurrent (3.12+) */
static uintptr_t g_code_type; /* &PyCode_Type */
_Atomic uint32_t g_code_gen[HW_CODE_GEN_SLOTS];
static _Atomic uint32_t g_next_code = 1;
static uintptr_t g_eval_lo, g_eval_hi;
static void (*g_code_dealloc)(void *);
static void *g_py_runtime; /* &_PyRuntime */
static const uintptr_t g_no_finalizing;
/* &_PyRuntime._finalizing once attached, for good (no NULL test) */
static const uintptr_t *g_py_finalizing_at = &g_no_finalizing;

/* Is pthread_self() the thread pointer (checked once when attaching)? It is
 * in glibc and musl on x86_64 (the TCB's first word points at itself, and
 * pthread_self returns the TCB); then the walker reads it without a call. */
static bool g_self_is_tp;

#if defined(__x86_64__)
static inline unsigned long thread_pointer(void)
{
	unsigned long tp;
	__asm__("mov %%fs:0, %0" : "=r"(tp));
	return tp;
}
#endif

static inline unsigned long thread_self(void)
{
#if defined(__x86_64__)
	if (HW_LIKELY(g_self_is_tp))
		return thread_pointer();
#endif
	return (unsigned long)pthread_self();
}

#define gen_slot stack_python_gen_slot
#define MAX_PY HW_MAX_PY_FRAMES
#define PY_BIT HW_FRAME_KEY_PYTHON

/* Installed as PyCode_Type.tp_dealloc's wrapper: a code object address that
 * dies gets a new generation, so per-thread (address -> id) caches of it go
 * stale. Runs on any thread, without the GIL in free-threaded builds. */
_Atomic uint32_t g_code_deaths;

static void code_dealloc(void *op)
{
	atomic_fetch_add_explicit(&g_code_gen[gen_slot((uintptr_t)op)], 1, memory_order_release);
	atomic_fetch_add_explicit(&g_code_deaths, 1, memory_order_release);
	g_code_dealloc(op);
}

/* Functions found to run an eval call (below): a split-off part of
 * _PyEval_EvalFrameDefault, a tail-calling interpreter's handlers. */
#define MAX_EVAL_RANGES 512
static struct {
	uintptr_t lo, hi;
} g_eval_ranges[MAX_EVAL_RANGES];
_Atomic unsigned g_neval_ranges; /* python_eval_ranges */
static atomic_flag g_eval_ranges_busy = ATOMIC_FLAG_INIT;

bool python_is_eval(uintptr_t ip)
{
	if (ip >= g_eval_lo && ip < g_eval_hi)
		return true;
	unsigned n = atomic_load_explicit(&g_neval_ranges, memory_order_acquire);
	for (unsigned i = 0; i < n; i++)
		if (ip > g_eval_ranges[i].lo && ip <= g_eval_ranges[i].hi) /* a return address */
			return true;
	return false;
}

void python_learn_eval(uintptr_t lo, uintptr_t hi)
{
	if (python_is_eval(lo + 1) || atomic_flag_test_and_set_explicit(&g_eval_ranges_busy,
									 memory_order_acquire))
		return;
	unsigned n = atomic_load_explicit(&g_neval_ranges, memory_order_relaxed);
	if (n < MAX_EVAL_RANGES) {
		g_eval_ranges[n].lo = lo;
		g_eval_ranges[n].hi = hi;
		atomic_store_explicit(&g_neval_ranges, n + 1, memory_order_release);
	}
	atomic_flag_clear_explicit(&g_eval_ranges_busy, memory_order_release);
}

bool python_thread_has_state(void)
{
	return g_py_get_tstate && g_py_get_tstate() != NULL;
}

#define LOAD(type, base, off) (*(type *)((uintptr_t)(base) + (off)))

/* 3.12+ keep the attached thread state in a thread-local variable,
 * _Py_tss_tstate, read by the exported _PyThreadState_GetCurrent(). In a
 * shared libpython that function is a call through the PLT into
 * __tls_get_addr (about 20 instructions an event; 3.11's gilstate was a
 * load from _PyRuntime). The variable is not exported, so its place is
 * read from the function's code, which comes in three forms, each taken
 * only when its bytes match exactly:
 *   local exec (libpython in the executable):
 *     [endbr64] mov %fs:OFF,%rax; ret
 *   initial exec (a shared libpython built so):
 *     [endbr64] mov GOT(%rip),%rax; mov %fs:(%rax),%rax; ret
 *   general dynamic (a shared libpython, as pyenv builds it):
 *     [endbr64] [sub $8,%rsp] data16 lea TI(%rip),%rdi;
 *     data16 data16 rex.W call __tls_get_addr; mov (%rax),%rax
 * Each thread finds its variable's address once (hw_tls.py_tstate_slot)
 * and takes it only after the address held what the function returned; a
 * thread's thread-local variables stay where they are while it lives. */
enum { TSS_NONE, TSS_TPOFF, TSS_TLS_INDEX };
static _Atomic int g_tss_kind = TSS_NONE;
static intptr_t g_tss_tpoff; /* TSS_TPOFF: the variable's offset from the thread pointer */
static void *g_tss_index; /* TSS_TLS_INDEX: its tls_index, for __tls_get_addr */
static void *(*g_tls_get_addr)(void *);

static void tss_decode(const uint8_t *c)
{
	/* only the function's own bytes are read (its size from the symbol) */
	Dl_info info;
	const ElfW(Sym) *sym = NULL;
	if (!dladdr1(c, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym || sym->st_size < 10)
		return;
	const uint8_t *end = c + sym->st_size;
	static const uint8_t endbr[] = {0xf3, 0x0f, 0x1e, 0xfa};
	if (!memcmp(c, endbr, 4))
		c += 4;
	static const uint8_t le[] = {0x64, 0x48, 0x8b, 0x04, 0x25};
	if (end - c >= 10 && !memcmp(c, le, 5) && c[9] == 0xc3) {
		int32_t off;
		memcpy(&off, c + 5, 4);
		g_tss_tpoff = off;
		atomic_store(&g_tss_kind, TSS_TPOFF);
		return;
	}
	static const uint8_t ie0[] = {0x48, 0x8b, 0x05}, ie1[] = {0x64, 0x48, 0x8b, 0x00, 0xc3};
	if (end - c >= 12 && !memcmp(c, ie0, 3) && !memcmp(c + 7, ie1, 5)) {
		int32_t rel;
		memcpy(&rel, c + 3, 4);
		g_tss_tpoff = *(const intptr_t *)(c + 7 + rel);
		atomic_store(&g_tss_kind, TSS_TPOFF);
		return;
	}
	static const uint8_t sub8[] = {0x48, 0x83, 0xec, 0x08};
	if (end - c >= 4 && !memcmp(c, sub8, 4))
		c += 4;
	static const uint8_t gd0[] = {0x66, 0x48, 0x8d, 0x3d}, gd1[] = {0x66, 0x66, 0x48, 0xe8},
			     gd2[] = {0x48, 0x8b, 0x00};
	if (end - c >= 19 && !memcmp(c, gd0, 4) && !memcmp(c + 8, gd1, 4) &&
	    !memcmp(c + 16, gd2, 3)) {
		g_tls_get_addr = (void *(*)(void *))dlsym(RTLD_DEFAULT, "__tls_get_addr");
		int32_t rel;
		memcpy(&rel, c + 4, 4);
		g_tss_index = (void *)(c + 8 + rel);
		atomic_store(&g_tss_kind, g_tls_get_addr ? TSS_TLS_INDEX : TSS_NONE);
	}
}

/* The calling thread's current Python thread state, the first time on this
 * thread (or while its slot is not known). */
static inline __attribute__((always_inline)) void *tss_find(void);

static __attribute__((noinline)) void *tss_first(void)
{
	int e = errno; /* HW_KEEPS_ERRNO (__tls_get_addr may allocate) */
	void *ts = tss_find();
	errno = e;
	return ts;
}

static inline __attribute__((always_inline)) void *tss_find(void)
{
	void *ts = g_py_current_tstate();
	int kind = atomic_load_explicit(&g_tss_kind, memory_order_relaxed);
	if (!ts || kind == TSS_NONE)
		return ts;
	void *const *slot;
	if (kind == TSS_TPOFF) {
		uintptr_t tp;
		__asm__("mov %%fs:0, %0" : "=r"(tp));
		slot = (void *const *)(tp + (uintptr_t)g_tss_tpoff);
	} else {
		slot = g_tls_get_addr(g_tss_index);
	}
	/* taken only when it holds what the function returned (a state is
	 * attached here, so not 0) */
	if (slot && *slot == ts)
		hw_tls.py_tstate_slot = slot;
	else
		atomic_store_explicit(&g_tss_kind, TSS_NONE, memory_order_relaxed);
	return ts;
}

static inline void *current_tstate(void)
{
	void *const *slot = hw_tls.py_tstate_slot;
	return HW_LIKELY(slot) ? *slot : tss_first();
}

/* Once CPython finalizes, it frees the thread states of the other threads
 * (daemon threads) while those may still run C code that allocates, and
 * PyGILState_GetThisThreadState() still returns their freed state. From then
 * on only the finalizing thread's own state is read. */
static inline bool tstate_usable(const void *ts)
{
	uintptr_t fin = *(const volatile uintptr_t *)g_py_finalizing_at;
	return HW_LIKELY(!fin) || fin == (uintptr_t)ts;
}

/* The calling thread's innermost interpreter frame, or NULL. A thread in a
 * PyMem hook (attached: it has an attached thread state, the GIL in a GIL
 * build) reads it where the row says; otherwise, or when that gives nothing,
 * PyGILState_GetThisThreadState(). */
static inline __attribute__((always_inline)) void *
innermost_frame(const struct python_layout *L, bool attached)
{
	void *ts = NULL;
	if (attached) {
		if (L->tstate_from == TSTATE_RUNTIME_GILSTATE) {
			/* g_py_runtime is set before any walker can run */
			ts = LOAD(void *, g_py_runtime, L->runtime_tstate_current);
			if (ts && LOAD(unsigned long, ts, L->ts_thread_id) != thread_self())
				ts = NULL; /* a caller that does not hold the GIL after all */
		} else {
			ts = current_tstate();
		}
	}
	if (!ts)
		ts = g_py_get_tstate();
	if (!ts || !tstate_usable(ts))
		return NULL;
	if (L->ts_cframe) {
		void *cframe = LOAD(void *, ts, L->ts_cframe);
		return cframe ? LOAD(void *, cframe, L->frame_current) : NULL;
	}
	return LOAD(void *, ts, L->frame_current);
}

/* What the walker takes from one interpreter frame. */
struct frame_read {
	uintptr_t code;
	int32_t lasti; /* index of the instruction's code unit; -1 before the first */
	uintptr_t instr; /* the instruction pointer */
};

enum frame_kind { FRAME_SKIP, FRAME_PYTHON, FRAME_ENTRY };

/* Reads one frame: FRAME_PYTHON with its code object and instruction,
 * FRAME_ENTRY for an eval call's entry frame (3.12+: see owner_entry),
 * FRAME_SKIP for a frame that is not (yet) running Python code.
 * Only the innermost frame can be one still being set up (CPython's
 * _PyFrame_IsIncomplete: before its first traceable instruction; a frame
 * further out has made a call, so it ran past its prologue) and only there
 * is f_executable's type checked before the code object is read: the frames
 * further out are read without touching their code objects (two cache lines
 * a frame fewer on deep stacks), and a code object is type-checked before
 * its first use anyway (stack_python_code_id). Frames of other owners than
 * the entry's always hold a code object. */
static inline __attribute__((always_inline)) enum frame_kind
read_frame(const struct python_layout *L, const void *f, bool innermost, struct frame_read *r)
{
	uint8_t owner = LOAD(uint8_t, f, L->frame_owner);
	if (L->owner_entry && HW_UNLIKELY(owner >= L->owner_entry))
		return owner == L->owner_entry &&
				       !(L->has_base_frame && !LOAD(void *, f, L->frame_previous))
			       ? FRAME_ENTRY
			       : FRAME_SKIP;
	uintptr_t code = LOAD(uintptr_t, f, L->frame_code) & ~L->code_tag_bits;
	if (HW_UNLIKELY(innermost) && L->code_checked &&
	    (!code || LOAD(uintptr_t, code, L->obj_type) != g_code_type))
		return FRAME_SKIP;
	uintptr_t first = code + L->code_code_adaptive;
	if (L->code_tlbc) {
		/* free-threaded 3.14+: a thread may run its own copy of the
		 * bytecode (co_tlbc->entries[tlbc_index]; 0 is co_code_adaptive) */
		int32_t idx = LOAD(int32_t, f, L->frame_tlbc_index);
		if (idx > 0) {
			uintptr_t tlbc = LOAD(uintptr_t, code, L->code_tlbc);
			if (tlbc && idx < LOAD(intptr_t, tlbc, 0))
				first = LOAD(uintptr_t, tlbc, L->tlbc_entries + 8 * (uintptr_t)idx);
		}
	}
	uintptr_t instr = LOAD(uintptr_t, f, L->frame_instr);
	if (HW_UNLIKELY(innermost) && owner != L->owner_generator &&
	    instr < first + 2 * (uintptr_t)LOAD(int32_t, code, L->code_firsttraceable))
		return FRAME_SKIP;
	r->code = code;
	r->lasti = (int32_t)(((intptr_t)instr - (intptr_t)first) >> 1);
	r->instr = instr;
	return FRAME_PYTHON;
}

/* collect's last entry e, the walk stopped at f: e becomes the count of
 * the Python frames not recorded (e's own, if a frame, and those from f
 * out; rounded down: hw_py_elided_count). Only stacks deeper than HW_MAX_PY_FRAMES come here. */
static __attribute__((noinline)) void elide_rest(const struct python_layout *L, const void *f,
						 struct py_frame *e)
{
	uint64_t rest = e->code ? 1 : 0;
	/* at most HW_PY_DEEP_WALK frames further: the count is "at least" */
	for (unsigned k = 0; f && k < HW_PY_DEEP_WALK; f = LOAD(void *, f, L->frame_previous), k++) {
		struct frame_read r;
		rest += read_frame(L, f, false, &r) == FRAME_PYTHON;
	}
	if (!rest)
		return;
	e->code = HW_PY_ELIDED_CODE;
	e->entry = 0;
	uint32_t count = hw_py_elided_count(rest);
	e->lasti = count > INT32_MAX ? INT32_MAX : (int32_t)count;
}

/* The walk for mixed stacks: frames innermost first, with a marker
 * (code 0) after the last frame of each eval call, so the splice knows which
 * frames each _PyEval_EvalFrameDefault native frame ran (3.11: is_entry on
 * the call's first frame; 3.12+: the call's entry frame). */
static inline __attribute__((always_inline)) unsigned
collect(const struct python_layout *L, struct py_frame *out, unsigned max, bool attached)
{
	void *f = innermost_frame(L, attached);
	unsigned n = 0;
	bool innermost = true;
	for (; f && n < max; f = LOAD(void *, f, L->frame_previous)) {
		struct frame_read r;
		enum frame_kind k = read_frame(L, f, innermost, &r);
		innermost = k == FRAME_SKIP && innermost;
		if (k == FRAME_PYTHON) {
			out[n].code = r.code;
			out[n].entry = 0;
			out[n].lasti = r.lasti;
			n++;
		}
		if (k == FRAME_ENTRY || (L->frame_is_entry && LOAD(uint8_t, f, L->frame_is_entry))) {
			if (n == max)
				break;
			out[n].code = 0;
			out[n].entry = k == FRAME_ENTRY ? (uintptr_t)f : 0;
			out[n].lasti = 0;
			n++;
		}
	}
	/* cut: the outermost entry says how many Python frames were not
	 * recorded (the callers that want the whole stack) */
	if (HW_UNLIKELY(f) && n == max && max >= HW_MAX_PY_FRAMES)
		elide_rest(L, f, &out[n - 1]);
	return n;
}

static void keys_reverse(struct frame_key *k, unsigned i, unsigned j)
{
	for (; i < j; i++, j--) {
		struct frame_key t = k[i];
		k[i] = k[j];
		k[j] = t;
	}
}

/* collect_keys past max (= n) frames, f the next one: a stack deeper than
 * HW_MAX_PY_FRAMES keeps its innermost frames and its outermost
 * HW_PY_KEEP_OUTER, with the marker (HW_PY_ELIDED, b: the frames not
 * recorded, rounded down: hw_py_elided_count) between them; n entries in
 * all. The frames walked are kept in a ring after out's n entries (out has
 * room for HW_MAX_FRAMES: nothing on the thread's stack), the last K of
 * them being the outermost. The root is looked for at most HW_PY_DEEP_WALK
 * frames further, in one walk, so a capture's cost stays bounded and a
 * recursion that allocates at every depth stays linear (walked to its root
 * each time, 30,000 deep took 30x the untraced run); deeper than that, the
 * innermost frames stay and the marker takes the outermost place, counting
 * the frames it saw (at least that many). Only stacks that deep come here. */
static __attribute__((noinline)) unsigned keys_deep(const struct python_layout *L, const void *f,
						     struct frame_key *out, unsigned n)
{
	_Static_assert(HW_PY_KEEP_OUTER + 1 < HW_MAX_PY_FRAMES, "both ends");
	_Static_assert(HW_MAX_PY_FRAMES + HW_PY_KEEP_OUTER <= HW_MAX_FRAMES, "the ring after n");
	if (n <= HW_PY_KEEP_OUTER + 1 || n > HW_MAX_PY_FRAMES)
		return n; /* a caller's short max: its innermost frames */
	const unsigned K = HW_PY_KEEP_OUTER;
	struct frame_key *ring = out + n;
	uint64_t walked = 0; /* Python frames past the n */
	unsigned head = 0; /* where the next one goes: after a wrap, the oldest */
	for (unsigned k = 0; f && k < HW_PY_DEEP_WALK; f = LOAD(void *, f, L->frame_previous), k++) {
		struct frame_read r;
		if (read_frame(L, f, false, &r) != FRAME_PYTHON)
			continue;
		walked++;
		ring[head].a = r.code | HW_FRAME_KEY_PYTHON;
		ring[head].b = (uint32_t)(r.lasti + 1) | (uint64_t)stack_python_code_gen(r.code) << 32;
		head = head + 1 == K ? 0 : head + 1;
	}
	/* the marker counts the frames not recorded: those walked and the
	 * one whose place it takes */
	if (f) { /* deeper still: the innermost frames, the marker outermost */
		out[n - 1].a = HW_PY_ELIDED;
		out[n - 1].b = hw_py_elided_count(walked + 1);
		return n;
	}
	if (!walked)
		return n; /* only entry frames were left: the stack is whole */
	if (walked >= K) {
		/* the ring in order, oldest first: rotated left by head (three
		 * reversals), then the K outermost frames end out */
		if (head) {
			keys_reverse(ring, 0, head - 1);
			keys_reverse(ring, head, K - 1);
			keys_reverse(ring, 0, K - 1);
		}
		memcpy(out + n - K, ring, K * sizeof(*out));
	} else {
		/* the outermost K: out's last K - w, then the w walked */
		unsigned w = (unsigned)walked;
		memmove(out + n - K, out + n - K + w, (K - w) * sizeof(*out));
		memcpy(out + n - w, ring, w * sizeof(*out));
	}
	/* the marker takes the innermost part's last place */
	out[n - K - 1].a = HW_PY_ELIDED;
	out[n - K - 1].b = hw_py_elided_count(walked + 1);
	return n;
}

/* The Python frames as frame keys (innermost first), with their code
 * generations: for the capture without the frame-chain cache, and its check.
 * A stack deeper than max keeps both ends (keys_deep). */
static inline __attribute__((always_inline)) unsigned
collect_keys(const struct python_layout *L, struct frame_key *out, unsigned max, bool attached)
{
	void *f = innermost_frame(L, attached);
	unsigned n = 0;
#define EMIT()                                                                                  \
	do {                                                                                    \
		out[n].a = r.code | HW_FRAME_KEY_PYTHON;                                        \
		out[n].b = (uint32_t)(r.lasti + 1) |                                            \
			   (uint64_t)stack_python_code_gen(r.code) << 32;                       \
		n++;                                                                            \
	} while (0)
	/* the innermost frames up to the first one not skipped: only there
	 * can a frame still be being set up (read_frame) */
	while (f && max) {
		struct frame_read r;
		enum frame_kind k = read_frame(L, f, true, &r);
		f = LOAD(void *, f, L->frame_previous);
		if (k == FRAME_PYTHON)
			EMIT();
		if (k != FRAME_SKIP)
			break;
	}
	for (; f && n < max; f = LOAD(void *, f, L->frame_previous)) {
		struct frame_read r;
		if (read_frame(L, f, false, &r) == FRAME_PYTHON)
			EMIT();
	}
#undef EMIT
	if (HW_UNLIKELY(f))
		return keys_deep(L, f, out, n);
	return n;
}

/* A raw key's b (see g_py_raw_walk): the instruction pointer, unless the
 * row has per-thread bytecode. */
#define RAW_B(L, r) (!(L)->code_tlbc ? (uint64_t)(r).instr : (uint64_t)(uint32_t)((r).lasti + 1))

/* Is the frame r the one of raw key o, for a caller that knows no code
 * object died since o was read (g_code_deaths)? With instruction pointers,
 * b alone decides: the bytecode is inside its code object (co_code_adaptive),
 * so two code objects alive at once never share an instruction address;
 * the frame's code object is alive (the frame holds it), and so was o's
 * until no code object died since. One load a frame fewer. */
#define RAW_SAME(L, o, r)                                                                       \
	(!(L)->code_tlbc ? (o)->b == (uint64_t)(r).instr                                        \
			 : (o)->a == (r).code && (o)->b == (uint64_t)(uint32_t)((r).lasti + 1))

/* The frames walk_keys found different from the previous capture's at the
 * same place from the innermost (at most RAW_DIFFS, then every frame goes
 * to work). */
#define RAW_DIFFS 8

/* The rest of g_py_raw_walk when the depth changed, or too many frames
 * differed: the new keys into keys, and how many of them from the root are
 * the same as before (see walk_keys for what keys and work hold). In line
 * (a_pymalloc_heavy's 3-frame stacks change depth in 19% of its captures:
 * the call cost 1.0 M of its 294 M instructions; pygments' 6%). */
static inline __attribute__((always_inline)) unsigned walk_finish(struct frame_key *keys, unsigned m,
						      struct frame_key *work, unsigned n,
						      unsigned tail, unsigned ndiff,
						      const unsigned *diff)
{
	if (n == m) {
		/* Frames are at the same place from the innermost: the
		 * outermost of the tail's that differs, from the root, and the
		 * tail up to it into keys (those further out are the same). */
		int last = (int)n - 1;
		while (last >= (int)tail && keys[-1 - last].a == work[-1 - last].a &&
		       keys[-1 - last].b == work[-1 - last].b)
			last--;
		for (int i = (int)tail; i <= last; i++)
			keys[-1 - i] = work[-1 - i];
		if (last < (int)tail)
			last = ndiff ? (int)diff[ndiff - 1] : -1;
		return n - 1 - (unsigned)last; /* n when none differed */
	}
	/* Another depth: the frames match root first, so compare the whole
	 * chains. The new keys of the frames before the tail (in keys) join
	 * the tail's in work; the previous keys of those that differed (kept
	 * in work[0 ..]) go back into keys. */
	for (struct frame_key *k = keys - tail, *w = work - tail; k < keys;)
		*w++ = *k++;
	for (unsigned d = 0; d < ndiff; d++)
		keys[-1 - (int)diff[d]] = work[d];
	const struct frame_key *a = keys - m, *b = work - n, *end = b + (m < n ? m : n);
	while (b < end && a->a == b->a && a->b == b->b)
		a++, b++;
	unsigned same = (unsigned)(b - (work - n));
	for (struct frame_key *k = keys - n, *w = work - n; k < keys;) {
		*k++ = *w++;
		/* a few keys: not a call of memmove (the copy is made opaque
		 * to the compiler's loop-to-library-call rewrite) */
		__asm__("" : "+r"(k));
	}
	return same;
}

/* g_py_raw_walk for one row: each frame is compared with the previous
 * capture's at the same place from the innermost as it is walked. One that
 * differs goes into keys at once, the previous key after the end of work
 * (work[0 ..], its place in diff); when the depth is the same in the end
 * (94% of pygments' captures, 80% all the same), keys is then done, with
 * no second pass over the frames. After RAW_DIFFS of them, or below the previous depth, every
 * frame goes into work (the tail). */
static inline __attribute__((always_inline)) uint64_t
walk_keys(const struct python_layout *L, struct frame_key *keys, unsigned m,
	  struct frame_key *work, unsigned max, bool attached)
{
	void *f = innermost_frame(L, attached);
	struct frame_read r;
	unsigned diff[RAW_DIFFS], ndiff = 0;
	int last = -1; /* the outermost frame that differed */
	if (m > max)
		m = max;
	/* o: the previous keys of the frames not yet compared end there, at
	 * olim the first; the frame in hand's index from the innermost is
	 * keys - o. f stays on the frame in hand until it is done with. */
	struct frame_key *o = keys, *olim = keys - m;
	/* Another innermost frame than the previous walk's (a call or a
	 * return since, usually: another depth) makes the frames differ at
	 * the same place from the innermost: straight to the tail then. */
	bool moved = (uintptr_t)f != keys[0].a;
	keys[0].a = (uintptr_t)f;
	/* the innermost frames up to the first one not skipped: only there
	 * can a frame still be being set up (read_frame) */
	for (;;) {
		if (!f)
			goto done;
		enum frame_kind k = read_frame(L, f, true, &r);
		if (k == FRAME_PYTHON) {
			if (moved)
				goto tail;
			goto compare;
		}
		f = LOAD(void *, f, L->frame_previous);
		if (k != FRAME_SKIP)
			break;
	}
	for (;;) {
		if (!f)
			goto done;
		/* further out: a frame of an entry's owner is skipped, any other
		 * holds a code object (read_frame); with instruction pointers,
		 * its code object is read only when the frame differs */
		if (L->code_tlbc) {
			if (read_frame(L, f, false, &r) != FRAME_PYTHON) {
				f = LOAD(void *, f, L->frame_previous);
				continue;
			}
		} else {
			if (L->owner_entry && HW_UNLIKELY(LOAD(uint8_t, f, L->frame_owner) >=
							  L->owner_entry)) {
				f = LOAD(void *, f, L->frame_previous);
				continue;
			}
			r.instr = LOAD(uintptr_t, f, L->frame_instr);
		}
	compare:
		if (HW_UNLIKELY(o == olim))
			goto tail; /* deeper than before */
		if (HW_UNLIKELY(!RAW_SAME(L, o - 1, r))) {
			if (ndiff == RAW_DIFFS)
				goto tail;
			if (!L->code_tlbc)
				r.code = LOAD(uintptr_t, f, L->frame_code) & ~L->code_tag_bits;
			last = (int)(keys - o);
			work[ndiff] = o[-1];
			diff[ndiff++] = (unsigned)last;
			o[-1].a = r.code;
			o[-1].b = RAW_B(L, r);
		}
		o--;
		f = LOAD(void *, f, L->frame_previous);
	}
tail:
	/* every frame from here on into work, compared in walk_finish */
	{
		unsigned tail = (unsigned)(keys - o);
		struct frame_key *wo = work - tail, *wlim = work - max;
		if (!L->code_tlbc)
			r.code = LOAD(uintptr_t, f, L->frame_code) & ~L->code_tag_bits;
		for (;;) {
			if (wo == wlim)
				break;
			wo--;
			wo->a = r.code;
			wo->b = RAW_B(L, r);
			enum frame_kind k;
			do {
				f = LOAD(void *, f, L->frame_previous);
				if (!f)
					goto tail_end;
				k = read_frame(L, f, false, &r);
			} while (k != FRAME_PYTHON);
		}
	tail_end:;
		unsigned n = (unsigned)(work - wo);
		return n | (uint64_t)walk_finish(keys, m, work, n, tail, ndiff, diff) << 32;
	}
done:
	if (HW_LIKELY(o == olim))
		return m | (uint64_t)(m - 1 - (unsigned)last) << 32; /* m when none differed */
	unsigned n = (unsigned)(keys - o);
	return n | (uint64_t)walk_finish(keys, m, work, n, n, ndiff, diff) << 32;
}

/* capture_raw's frame i (raw key k, under parent) that its memo entry m
 * does not have: its generation, instruction, code id and node into m.
 * false when the code id or the node could not be had. Out of line: the
 * capture's registers stay free of what this needs. */
static inline __attribute__((always_inline)) bool
memo_fill_in(struct thread_state *ts, const struct frame_key *k, unsigned i, uint32_t parent,
	     uint32_t deaths, struct stack_raw_memo *m)
{
	uintptr_t code_addr = (uintptr_t)k->a;
	uint32_t gen = stack_python_code_gen(code_addr), instr = stack_python_raw_instr(code_addr, k->b);
	/* the same code object one instruction on: the code id is known */
	uint32_t code = i < ts->last_depth && ts->last_keys[i].a == (k->a | PY_BIT) &&
				(uint32_t)(ts->last_keys[i].b >> 32) == gen
			? ts->last_code[i]
			: stack_python_code_id(ts, code_addr, gen);
	uint32_t id = code ? stack_tree_intern_python(ts, &ts->tree, parent, (uint64_t)code << 32 | instr)
			   : 0;
	if (!id)
		return false;
	*m = (struct stack_raw_memo){.a = k->a, .b = k->b, .parent = parent, .deaths = deaths,
				     .id = id, .code = code, .instr = instr, .gen = gen};
	return true;
}

static __attribute__((noinline)) bool memo_fill(struct thread_state *ts, const struct frame_key *k,
						 unsigned i, uint32_t parent, uint32_t deaths,
						 struct stack_raw_memo *m)
{
	int e = errno; /* HW_KEEPS_ERRNO (a CODE record, a chunk claim) */
	bool ok = memo_fill_in(ts, k, i, parent, deaths, m);
	errno = e;
	return ok;
}

/* The Python-only modes with Python frames (the common case), through the
 * thread's frame-chain cache: the frames are walked without their code
 * generations, and compared with the previous capture's as they are walked
 * (g_py_raw_walk); the frames that match from the root (usually all but the
 * innermost, or all) keep their nodes, and only the others get their
 * generation, code id and node. The walk itself cannot be skipped: a frame
 * is not known to be the same call as before by anything cheaper than its
 * chain (a frame's address is reused by the next call at that depth, a
 * generator's frame is resumed from anywhere), but it reads a few words a
 * frame. A match is exact while no code object has died since the previous
 * capture (g_code_deaths): then no generation has moved, and a frame with
 * the same code address and instruction has the same key (code address,
 * instruction, generation) as before. After a death, every frame takes its
 * generation again. raw: the frames' raw keys, root first; same: how many
 * of them are the previous capture's. */
static inline __attribute__((always_inline)) uint32_t
capture_raw(struct thread_state *ts, const struct frame_key *raw, unsigned n, unsigned same,
	    uint32_t deaths, bool attached, bool check)
{
	if (!ts->py_cached || deaths != ts->py_deaths)
		same = 0;
	uint32_t parent = same ? ts->last_ids[same - 1] : ts->root;
	for (unsigned i = same; i < n; i++) {
		const struct frame_key *k = &raw[i];
		struct stack_raw_memo *m = stack_tree_raw_memo(&ts->tree, parent, k->b);
		if (HW_UNLIKELY(m->b != k->b || m->a != k->a || m->parent != parent ||
				m->deaths != deaths || !m->id) &&
		    !memo_fill(ts, k, i, parent, deaths, m)) {
			ts->last_depth = 0;
			return 0;
		}
		uint32_t gen = m->gen, instr = m->instr, code = m->code;
		parent = m->id;
		ts->last_code[i] = code;
		ts->last_keys[i].a = k->a | PY_BIT;
		ts->last_keys[i].b = instr | (uint64_t)gen << 32;
		ts->last_ids[i] = parent;
	}
	ts->last_depth = n;
	ts->py_cached = true;
	ts->py_deaths = deaths;
	if (check)
		stack_check_cached(ts, attached);
	return parent;
}

/* The walk (raw keys, root first, at the end of py_raw's first MAX_PY
 * entries: where the previous capture left its own) and capture_raw; a
 * thread without Python frames goes on to stack_capture_other. The
 * walk compares with the previous keys only when no code object died since
 * they were taken (g_py_raw_walk's condition); the count read after the
 * walk decides whether their nodes are kept (a code object that died
 * during it is seen). */
static inline __attribute__((always_inline)) uint32_t
capture_python(const struct python_layout *L, struct thread_state *ts, bool attached, bool check)
{
	struct frame_key *keys = ts->py_raw + MAX_PY;
	uint32_t before = atomic_load_explicit(&g_code_deaths, memory_order_acquire);
	unsigned m = 0;
	if (HW_LIKELY(ts->py_cached)) {
		if (before == ts->py_deaths)
			m = ts->last_depth;
	} else if (HW_UNLIKELY(ts->last_depth == MAX_PY)) {
		/* the previous capture was a deep one (below): most likely
		 * this one is too, and the cached walk would stop at MAX_PY
		 * frames for nothing */
		return stack_capture_other(ts, attached);
	}
	uint64_t walked = walk_keys(L, keys, m, ts->scratch.keys + MAX_PY, MAX_PY, attached);
	unsigned n = (uint32_t)walked, same = (unsigned)(walked >> 32);
	/* no frame, or maybe more than MAX_PY: the uncached capture (which
	 * keeps both ends of a deeper stack) */
	if (!n || HW_UNLIKELY(n == MAX_PY))
		return stack_capture_other(ts, attached);
	uint32_t deaths = atomic_load_explicit(&g_code_deaths, memory_order_acquire);
	return capture_raw(ts, keys - n, n, same, deaths, attached, check);
}

/* Are the calling thread's raw keys (what g_py_raw_walk gives) exactly
 * raw[0] .. raw[n - 1] (root first)? The same walk,
 * comparing as it goes, innermost first: a changed innermost frame (the
 * usual difference) ends it at once, and nothing is stored. */
static inline __attribute__((always_inline)) bool
same_keys(const struct python_layout *L, const struct frame_key *raw, unsigned n, bool attached)
{
	void *f = innermost_frame(L, attached);
	const struct frame_key *k = raw + n; /* the next one to match, from the end */
#define MATCH()                                                                                 \
	do {                                                                                    \
		if (k == raw || !RAW_SAME(L, --k, r))                                           \
			return false;                                                           \
	} while (0)
	while (f) {
		struct frame_read r;
		enum frame_kind kind = read_frame(L, f, true, &r);
		f = LOAD(void *, f, L->frame_previous);
		if (kind == FRAME_PYTHON)
			MATCH();
		if (kind != FRAME_SKIP)
			break;
	}
	for (; f; f = LOAD(void *, f, L->frame_previous)) {
		struct frame_read r;
		if (read_frame(L, f, false, &r) == FRAME_PYTHON)
			MATCH();
	}
#undef MATCH
	return k == raw;
}

/* One walker per layout row: the row's offsets are constants in each. */
#define HW_ROW_WALKERS(i)                                                                   \
	static unsigned collect_row##i(struct py_frame *out, unsigned max, bool attached)  \
	{                                                                                   \
		return collect(&python_layouts[i], out, max, attached);                     \
	}                                                                                   \
	static unsigned keys_row##i(struct frame_key *out, unsigned max, bool attached)    \
	{                                                                                   \
		return collect_keys(&python_layouts[i], out, max, attached);                \
	}                                                                                   \
	static uint64_t raw_row##i(struct frame_key *keys, unsigned m, struct frame_key *work, \
				   unsigned max, bool attached)                                  \
	{                                                                                   \
		return walk_keys(&python_layouts[i], keys, m, work, max, attached);         \
	}                                                                                   \
	static uint32_t capture_row##i(struct thread_state *ts, bool attached)             \
	{                                                                                   \
		return capture_python(&python_layouts[i], ts, attached, false);             \
	}                                                                                   \
	static uint32_t attached_row##i(struct thread_state *ts, bool attached)            \
	{                                                                                   \
		(void)attached;                                                             \
		return capture_python(&python_layouts[i], ts, true, false);                 \
	}                                                                                   \
	static uint32_t check_row##i(struct thread_state *ts, bool attached)               \
	{                                                                                   \
		return capture_python(&python_layouts[i], ts, attached, true);              \
	}                                                                                   \
	static bool same_row##i(const struct frame_key *raw, unsigned n, bool attached)    \
	{                                                                                   \
		return same_keys(&python_layouts[i], raw, n, attached);                     \
	}
HW_PY_ROW_INDEXES(HW_ROW_WALKERS)
#undef HW_ROW_WALKERS

static unsigned (*const row_collect[])(struct py_frame *, unsigned, bool) = {
#define HW_X(i) collect_row##i,
	HW_PY_ROW_INDEXES(HW_X)
#undef HW_X
};
static unsigned (*const row_keys[])(struct frame_key *, unsigned, bool) = {
#define HW_X(i) keys_row##i,
	HW_PY_ROW_INDEXES(HW_X)
#undef HW_X
};

static uint64_t (*const row_raw[])(struct frame_key *, unsigned, struct frame_key *, unsigned,
				   bool) = {
#define HW_X(i) raw_row##i,
	HW_PY_ROW_INDEXES(HW_X)
#undef HW_X
};

static uint32_t (*const row_capture[])(struct thread_state *, bool) = {
#define HW_X(i) capture_row##i,
	HW_PY_ROW_INDEXES(HW_X)
#undef HW_X
};

static uint32_t (*const row_attached[])(struct thread_state *, bool) = {
#define HW_X(i) attached_row##i,
	HW_PY_ROW_INDEXES(HW_X)
#undef HW_X
};

static uint32_t (*const row_check[])(struct thread_state *, bool) = {
#define HW_X(i) check_row##i,
	HW_PY_ROW_INDEXES(HW_X)
#undef HW_X
};

static bool (*const row_same[])(const struct frame_key *, unsigned, bool) = {
#define HW_X(i) same_row##i,
	HW_PY_ROW_INDEXES(HW_X)
#undef HW_X
};

static bool same_none(const struct frame_key *raw, unsigned n, bool attached)
{
	(void)raw, (void)n, (void)attached;
	return false;
}

static unsigned collect_none(struct py_frame *out, unsigned max, bool attached)
{
	(void)out, (void)max, (void)attached;
	return 0;
}

static unsigned keys_none(struct frame_key *out, unsigned max, bool attached)
{
	(void)out, (void)max, (void)attached;
	return 0;
}

unsigned (*g_py_collect)(struct py_frame *out, unsigned max, bool attached) = collect_none;
unsigned (*g_py_keys)(struct frame_key *out, unsigned max, bool attached) = keys_none;
static uint64_t walk_none(struct frame_key *keys, unsigned m, struct frame_key *work, unsigned max,
			  bool attached)
{
	(void)keys, (void)m, (void)work, (void)max, (void)attached;
	return 0;
}

uint64_t (*g_py_raw_walk)(struct frame_key *keys, unsigned m, struct frame_key *work, unsigned max,
			  bool attached) = walk_none;
uint16_t g_py_raw_first;
uint32_t (*g_py_capture_row[2])(struct thread_state *ts, bool attached);
bool (*g_py_raw_same)(const struct frame_key *raw, unsigned n, bool attached) = same_none;

/* Is this 3.13+ interpreter a free-threaded build? Its _PyRuntime starts
 * with _Py_DebugOffsets: the cookie, the version, then free_threaded (the
 * same in every version that has them; the test checks the rows). */
static bool runtime_free_threaded(const void *runtime, uint32_t version)
{
	if (version < 0x030d0000 || !runtime || memcmp(runtime, "xdebugpy", 8) != 0)
		return false;
	return LOAD(uint64_t, runtime, 16) != 0;
}

bool stack_python_attach(uint32_t version, char *why, size_t cap)
{
#if defined(__x86_64__)
	g_self_is_tp = thread_pointer() == (unsigned long)pthread_self();
#endif
	g_py_runtime = dlsym(RTLD_DEFAULT, "_PyRuntime");
	bool ft = runtime_free_threaded(g_py_runtime, version);
	g_py_flags = ft ? HW_PY_FREE_THREADED : 0;
	const struct python_layout *L = python_layout_find(version, ft);
	if (!L) {
		log_snprintf(why, cap, "no layout for Python %u.%u%s in this heapwise",
			     (version >> 24) & 0xff, (version >> 16) & 0xff, ft ? " (free-threaded)" : "");
		return false;
	}
	g_py_get_tstate = (void *(*)(void))dlsym(RTLD_DEFAULT, "PyGILState_GetThisThreadState");
	g_py_current_tstate = (void *(*)(void))dlsym(RTLD_DEFAULT, "_PyThreadState_GetCurrent");
	void *code_type = dlsym(RTLD_DEFAULT, "PyCode_Type");
	const char *missing = !g_py_get_tstate ? "PyGILState_GetThisThreadState"
			      : !code_type     ? "PyCode_Type"
			      : !g_py_runtime  ? "_PyRuntime"
			      : L->tstate_from == TSTATE_CURRENT_FUNCTION && !g_py_current_tstate
				      ? "_PyThreadState_GetCurrent"
				      : NULL;
	if (missing) {
		log_snprintf(why, cap, "the interpreter does not export %s", missing);
		return false;
	}
	if (L->has_debug_offsets && !python_layout_check_debug(L, g_py_runtime, version, why, cap))
		return false;
	if (L->tstate_from == TSTATE_CURRENT_FUNCTION)
		tss_decode((const uint8_t *)g_py_current_tstate);
	g_code_type = (uintptr_t)code_type;
	void (**slot)(void *) = (void (**)(void *))((char *)code_type + L->type_dealloc);
	if (*slot != code_dealloc) {
		g_code_dealloc = *slot;
		*slot = code_dealloc;
	}
	void *eval = dlsym(RTLD_DEFAULT, "_PyEval_EvalFrameDefault");
	Dl_info info;
	const ElfW(Sym) *sym = NULL;
	if (eval && dladdr1(eval, &info, (void **)&sym, RTLD_DL_SYMENT) && sym) {
		g_eval_lo = (uintptr_t)eval;
		g_eval_hi = (uintptr_t)eval + sym->st_size;
	}
	size_t row = (size_t)(L - python_layouts);
	g_py_layout = L;
	g_py_collect = row_collect[row];
	g_py_keys = row_keys[row];
	g_py_raw_first = L->code_tlbc ? 0 : L->code_code_adaptive;
	g_py_raw_walk = row_raw[row];
	g_py_raw_same = row_same[row];
	g_py_capture_row[0] = g_config.stack_check ? row_check[row] : row_capture[row];
	g_py_capture_row[1] = g_config.stack_check ? row_check[row] : row_attached[row];
	g_py_finalizing_at = (const uintptr_t *)((char *)g_py_runtime + L->runtime_finalizing);
	atomic_store(&g_py_finalizing, (uintptr_t *)g_py_finalizing_at);
	return true;
}

/* Copies a str object's text as UTF-8 into dst (at most cap bytes); returns
 * the length. Handles compact ASCII, and compact objects with a UTF-8 cache
 * or 1/2/4-byte kinds. */
static size_t str_utf8(uintptr_t s, char *dst, size_t cap)
{
	const struct python_layout *L = g_py_layout;
	if (!s)
		return 0;
	uint32_t state = LOAD(uint32_t, s, L->str_state);
	unsigned kind = (state >> L->str_kind_shift) & 7, compact = (state >> L->str_compact_shift) & 1,
		 ascii = (state >> L->str_ascii_shift) & 1;
	size_t len = (size_t)LOAD(intptr_t, s, L->str_length);
	if (!compact)
		return 0;
	if (ascii) {
		if (len > cap)
			len = cap;
		memcpy(dst, (const void *)(s + L->str_ascii_data), len);
		return len;
	}
	const char *utf8 = LOAD(const char *, s, L->str_utf8);
	if (utf8) {
		size_t n = (size_t)LOAD(intptr_t, s, L->str_utf8_length);
		if (n > cap)
			n = cap;
		memcpy(dst, utf8, n);
		return n;
	}
	size_t out = 0;
	const uint8_t *data = (const uint8_t *)(s + L->str_compact_data);
	for (size_t i = 0; i < len; i++) {
		uint32_t c = kind == 1 ? data[i] : kind == 2 ? ((const uint16_t *)data)[i]
							   : ((const uint32_t *)data)[i];
		uint8_t b[4];
		size_t k;
		if (c < 0x80) {
			b[0] = (uint8_t)c;
			k = 1;
		} else if (c < 0x800) {
			b[0] = (uint8_t)(0xc0 | c >> 6);
			b[1] = (uint8_t)(0x80 | (c & 0x3f));
			k = 2;
		} else if (c < 0x10000) {
			b[0] = (uint8_t)(0xe0 | c >> 12);
			b[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
			b[2] = (uint8_t)(0x80 | (c & 0x3f));
			k = 3;
		} else {
			b[0] = (uint8_t)(0xf0 | c >> 18);
			b[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3f));
			b[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3f));
			b[3] = (uint8_t)(0x80 | (c & 0x3f));
			k = 4;
		}
		if (out + k > cap)
			break;
		memcpy(dst + out, b, k);
		out += k;
	}
	return out;
}

struct code_entry {
	uintptr_t code; /* 0 = empty */
	uint32_t gen;
	uint32_t id;
};

struct code_map {
	struct code_entry *slots;
	uint32_t mask, count;
};

static bool map_grow(struct code_map *m)
{
	uint32_t cap = m->slots ? (m->mask + 1) * 2 : 256;
	struct code_entry *s = mmap(NULL, cap * sizeof(*s), PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s == MAP_FAILED)
		return false;
	if (m->slots) {
		for (uint32_t i = 0; i <= m->mask; i++) {
			if (!m->slots[i].code)
				continue;
			uint32_t j = (uint32_t)(gen_slot(m->slots[i].code) * 31 + (m->slots[i].code >> 4)) & (cap - 1);
			while (s[j].code)
				j = (j + 1) & (cap - 1);
			s[j] = m->slots[i];
		}
		munmap(m->slots, (m->mask + 1) * sizeof(*s));
	}
	m->slots = s;
	m->mask = cap - 1;
	return true;
}

void stack_python_release(struct code_map *m)
{
	if (!m)
		return;
	if (m->slots)
		munmap(m->slots, (m->mask + 1) * sizeof(*m->slots));
	munmap(m, sizeof(*m));
}

/* Reads a location table varint (6 bits a byte, bit 6 = more) at t[*i],
 * never past n. */
static unsigned long lt_varint(const uint8_t *t, size_t n, size_t *i)
{
	unsigned long v = 0;
	for (unsigned shift = 0; *i < n && shift < 42; shift += 6) {
		uint8_t b = t[(*i)++];
		v |= (unsigned long)(b & 63) << shift;
		if (!(b & 64))
			break;
	}
	return v;
}

static long lt_svarint(const uint8_t *t, size_t n, size_t *i)
{
	unsigned long u = lt_varint(t, n, i);
	return (u & 1) ? -(long)(u >> 1) : (long)(u >> 1);
}

/* One entry of a compacted table (see compact_linetable) at out + len, if
 * it fits in cap; false when it does not. */
static bool lt_put(uint8_t *out, size_t *len, size_t cap, bool none, long delta, unsigned units)
{
	uint8_t e[1 + 12];
	size_t k = 0;
	e[k++] = (uint8_t)(0x80 | (none ? 15 : 13) << 3 | (units - 1));
	if (!none) {
		unsigned long u = delta < 0 ? (unsigned long)-delta << 1 | 1 : (unsigned long)delta << 1;
		while (u >= 64) {
			e[k++] = (uint8_t)(64 | (u & 63));
			u >>= 6;
		}
		e[k++] = (uint8_t)u;
	}
	if (*len + k > cap)
		return false;
	if (out)
		memcpy(out + *len, e, k);
	*len += k;
	return true;
}

/* A location table longer than a CODE record may hold (a long script's
 * module code: 20-32 bytes a line with its columns, so a script of some 600
 * lines on 3.11; everything past the cut had no line) rewritten without
 * columns: an entry (code 13: line delta; 15: no location) per run of up to
 * 8 code units on one line, about 2 bytes per 8 units. At most cap bytes,
 * whole entries (the code units past them have no line, as before); into
 * out, or only measured when out is NULL. Returns the length. */
static size_t compact_linetable(const uint8_t *t, size_t n, uint8_t *out, size_t cap)
{
	size_t i = 0, len = 0;
	long line = 0, out_line = 0, run_line = 0;
	unsigned run = 0; /* code units in the pending run */
	bool run_none = false;
	while (i < n) {
		uint8_t b = t[i++];
		if (!(b & 0x80))
			break; /* not at an entry: stop there */
		unsigned code = (b >> 3) & 15, units = (b & 7) + 1;
		bool none = code == 15;
		if (code == 14) {
			line += lt_svarint(t, n, &i);
			lt_varint(t, n, &i);
			lt_varint(t, n, &i);
			lt_varint(t, n, &i);
		} else if (code == 13) {
			line += lt_svarint(t, n, &i);
		} else if (code >= 10 && code <= 12) {
			line += (long)code - 10;
			i += 2;
		} else if (!none) {
			i += 1;
		}
		if (i > n)
			break; /* a cut entry */
		if (run && run_none == none && (none || run_line == line)) {
			unsigned take = units < 8 - run ? units : 8 - run;
			run += take;
			units -= take;
			if (!units)
				continue;
		}
		if (run) {
			if (!lt_put(out, &len, cap, run_none, run_line - out_line, run))
				return len;
			if (!run_none)
				out_line = run_line;
		}
		run = units;
		run_none = none;
		run_line = line;
	}
	if (run)
		lt_put(out, &len, cap, run_none, run_line - out_line, run);
	return len;
}

static bool emit_code(struct thread_state *ts, uintptr_t code, uint32_t id)
{
	const struct python_layout *L = g_py_layout;
	char filename[HW_MAX_PATH], qualname[512];
	size_t flen = str_utf8(LOAD(uintptr_t, code, L->code_filename), filename, sizeof(filename));
	size_t qlen = str_utf8(LOAD(uintptr_t, code, L->code_qualname), qualname, sizeof(qualname));
	uintptr_t table = LOAD(uintptr_t, code, L->code_linetable);
	size_t raw = table ? (size_t)LOAD(intptr_t, table, L->bytes_size) : 0;
	const uint8_t *data = table ? (const uint8_t *)(table + L->bytes_data) : NULL;
	size_t room = writer_chunk_size() / 2, fixed = flen + qlen + 8 * HW_VARINT_MAX;
	size_t cap = room > fixed ? room - fixed : 0;
	if (cap > HW_MAX_LINETABLE)
		cap = HW_MAX_LINETABLE;
	bool compact = raw > cap;
	size_t tlen = compact ? compact_linetable(data, raw, NULL, cap) : raw;
	uint8_t *p = tracker_reserve(ts, 1 + 5 * HW_VARINT_MAX + flen + qlen + tlen);
	if (!p)
		return false;
	*p++ = HW_REC_CODE;
	p = hw_put_varint(p, id);
	p = hw_put_varint(p, (uint64_t)LOAD(int32_t, code, L->code_firstlineno));
	p = hw_put_varint(p, flen);
	memcpy(p, filename, flen);
	p += flen;
	p = hw_put_varint(p, qlen);
	memcpy(p, qualname, qlen);
	p += qlen;
	p = hw_put_varint(p, tlen);
	if (compact)
		compact_linetable(data, raw, p, tlen);
	else if (tlen)
		memcpy(p, data, tlen);
	p += tlen;
	tracker_commit(ts, p);
	return true;
}

uint32_t stack_python_code_id(struct thread_state *ts, uintptr_t code, uint32_t gen)
{
	const struct python_layout *L = g_py_layout;
	if (L->code_checked && LOAD(uintptr_t, code, L->obj_type) != g_code_type)
		return 0; /* not a code object: never read as one */
	struct code_map *m = ts->codes;
	if (!m) {
		m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			return 0;
		ts->codes = m;
	}
	if ((m->count + 1) * 2 > m->mask + 1 && !map_grow(m))
		return 0;
	uint32_t j = (uint32_t)(gen_slot(code) * 31 + (code >> 4)) & m->mask;
	while (m->slots[j].code && m->slots[j].code != code)
		j = (j + 1) & m->mask;
	struct code_entry *e = &m->slots[j];
	if (e->code == code && e->gen == gen)
		return e->id;
	uint32_t id = atomic_fetch_add_explicit(&g_next_code, 1, memory_order_relaxed);
	if (!emit_code(ts, code, id))
		return 0;
	if (!e->code)
		m->count++;
	e->code = code;
	e->gen = gen;
	e->id = id;
	return id;
}
