/* Mixed stacks (shim, stacks stage). With Python frames present:
 *  - auto (default) and none: the Python frames only. Any native unwind costs
 *    more than the whole budget of a Python allocation (see the benchmark);
 *  - below: the Python frames, plus the native frames between the allocator
 *    and the innermost Python frame (a short unwind that stops at
 *    _PyEval_EvalFrameDefault);
 *  - full: the whole native stack with each _PyEval_EvalFrameDefault frame
 *    replaced by the Python frames that call of it was running.
 * A thread without Python frames gets its native stack (unless none). */
#include "stack.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "config.h"
#include "heapwise/compiler.h"
#include "heapwise/trace_format.h"
#include "modules.h"
#include "python.h"
#include "stack_native.h"
#include "tracker.h"

#define MAX_PY HW_MAX_PY_FRAMES
#define SCRATCH(keys) ((struct stack_scratch *)(keys)) /* keys is its first member */
#define PY_BIT HW_FRAME_KEY_PYTHON
#define AUTO_NATIVE_MAX 16 /* native frames looked at below the innermost Python frame */

static inline struct frame_key native_key(uintptr_t ip)
{
	return (struct frame_key){ip, 0};
}

static inline struct frame_key py_key(const struct py_frame *f)
{
	if (HW_UNLIKELY(f->code == HW_PY_ELIDED_CODE)) /* frames not recorded: lasti of them */
		return (struct frame_key){HW_PY_ELIDED, (uint32_t)f->lasti};
	return (struct frame_key){f->code | PY_BIT,
				  (uint32_t)(f->lasti + 1) |
					  (uint64_t)stack_python_code_gen(f->code) << 32};
}

/* The whole native stack (ips, innermost first) with the frame of each eval
 * call replaced by the Python frames that call ran: py is innermost first,
 * each call's frames closed by a marker (code 0). Which native frame is an
 * eval call: with sps (3.12+), the one whose stack holds the marker's entry
 * frame (a local of the eval function: this finds it whatever the
 * function is called, a split-off part of _PyEval_EvalFrameDefault or a
 * tail-calling interpreter's handler included); without (3.11), the frames
 * inside _PyEval_EvalFrameDefault, matched to the calls in order.
 * Root first into out. */
static unsigned splice(const struct py_frame *py, unsigned npy, const uintptr_t *ips,
		       const uintptr_t *sps, unsigned nips, struct frame_key *out, unsigned max)
{
	/* the runs of frames, innermost first: run k is py[lo[k]] .. py[hi[k]-1];
	 * the arrays are the thread state's (out is its scratch's keys), not
	 * the program's stack */
	struct splice_scratch *sc = &SCRATCH(out)->splice;
	unsigned *lo = sc->lo, *hi = sc->hi, nseg = 0, start = 0;
	uintptr_t *entry = sc->entry;
	for (unsigned i = 0; i < npy; i++) {
		if (!py[i].code) {
			entry[nseg] = py[i].entry;
			lo[nseg] = start;
			hi[nseg++] = i;
			start = i + 1;
		}
	}
	if (start < npy) { /* the walk stopped before the outermost call's end */
		entry[nseg] = 0;
		lo[nseg] = start;
		hi[nseg++] = npy;
	}
	/* at[i]: the run that native frame i ran, + 1 (0: none) */
	unsigned short *at = sc->at;
	bool *used = sc->used;
	memset(used, 0, nseg * sizeof(used[0]));
	unsigned matched = 0;
	if (sps) {
		unsigned k = 0;
		for (unsigned i = 0; i < nips; i++) {
			at[i] = 0;
			uintptr_t top = i + 1 < nips ? sps[i + 1] : UINTPTR_MAX;
			/* runs go outwards as the frames do */
			while (k < nseg && entry[k] && entry[k] < sps[i])
				k++;
			if (k < nseg && entry[k] && entry[k] >= sps[i] && entry[k] < top) {
				at[i] = (unsigned short)(k + 1);
				used[k++] = true;
				matched++;
				uintptr_t lo, hi;
				if (!python_is_eval(ips[i]) && stack_native_proc_range(ips[i] - 1, &lo, &hi))
					python_learn_eval(lo, hi);
			}
		}
	} else {
		unsigned k = 0;
		for (unsigned i = 0; i < nips; i++) {
			at[i] = 0;
			if (python_is_eval(ips[i]) && k < nseg) {
				at[i] = (unsigned short)(k + 1);
				used[k++] = true;
				matched++;
			}
		}
	}
	/* Runs no native frame was found for (unwinding stopped early: depth)
	 * are the root ones: they go first. */
	unsigned n = 0;
	for (unsigned seg = nseg; seg-- > 0 && n < max;) {
		if (used[seg])
			continue;
		for (unsigned k = hi[seg]; k-- > lo[seg] && n < max;)
			out[n++] = py_key(&py[k]);
	}
	for (unsigned i = nips; i-- > 0 && n < max;) {
		if (at[i]) {
			unsigned seg = at[i] - 1u;
			for (unsigned k = hi[seg]; k-- > lo[seg] && n < max;)
				out[n++] = py_key(&py[k]);
		} else {
			out[n++] = native_key(ips[i]);
		}
	}
	(void)matched;
	return n;
}

/* --- --native: the merge, keeping the previous one's outer part ---------------
 * splice's no-sps merge, root first: with N the native frames and P the
 * Python entries (frames and markers), both root first, a marker starts a
 * run (the outermost run has none when the walk stopped inside it), and
 * d = runs - eval frames of N, the merge is: the first d runs (unused),
 * then each native frame of N, an eval frame replaced by run e + d (e: the
 * eval frames before it) when there is one. So the merged frames up to
 * native frame j's part are a function of N[0..j), P up to the end of the
 * last run they hold, and d; and of what turns an entry into a frame key and
 * a native frame into an eval frame: the code objects' generations
 * (unchanged while no code object died, g_code_deaths) and the learned eval
 * functions (python_eval_ranges). Each capture compares N and P with the
 * previous one's from the root (a few words a frame, all re-read), and when
 * d and those are unchanged, keeps the previous merged frames up to the
 * outermost native frame where the equal part ends: they are last_keys's
 * (the same stack tree: module epoch, and root), so neither written,
 * compared nor interned again. The rest is merged as splice does.
 * HEAPWISE_STACK_CACHE=check merges every such stack whole too (splice) and
 * counts those that differ; =0 always merges whole. */

_Atomic uint64_t g_merge_checks, g_merge_kept, g_merge_check_misses;


struct merge_out {
	unsigned known; /* merged frames kept: last_keys[0..known) */
	bool had; /* the memo was valid when the capture started */
	bool memo; /* the memo describes this capture (made valid once interned) */
};

/* A run's frames from P[p] (after its marker, if any) into out[n..]. */
static inline unsigned merge_run(const struct py_frame *py, unsigned npy, unsigned *pp,
				 struct frame_key *out, unsigned n, unsigned max)
{
	unsigned p = *pp;
	if (p < npy && !py[npy - 1 - p].code)
		p++;
	for (; p < npy && py[npy - 1 - p].code; p++)
		if (n < max)
			out[n++] = py_key(&py[npy - 1 - p]);
	*pp = p;
	return n;
}

/* Returns the depth, or -1 when an eval call has no native frame known to
 * run it (3.12+: splice with stack pointers, after which the memo is not
 * valid). */
static int merge(struct thread_state *ts, const struct py_frame *py, unsigned npy,
		 const uintptr_t *ips, unsigned nips, struct frame_key *out, unsigned max,
		 struct merge_out *res)
{
	struct merge_memo *m = &ts->scratch.memo;
	uint32_t deaths = atomic_load_explicit(&g_code_deaths, memory_order_acquire);
	unsigned ranges = python_eval_ranges();
	bool usable = res->had && m->n == ts->last_depth && m->epoch == ts->module_epoch &&
		      m->root == ts->root && m->deaths == deaths && m->ranges == ranges;
	/* the equal outer parts */
	unsigned cn = 0, cp = 0;
	if (usable) {
		unsigned lim = nips < m->nips ? nips : m->nips;
		/* the unwind knows its outermost frames are the previous
		 * unwind's (unwind_cache.c), ours when that was ours */
		if (m->unwind + 1 == ts->unwind.serial && !g_config.no_unwind_cache)
			cn = ts->unwind.same_root < lim ? ts->unwind.same_root : lim;
		const uintptr_t *a = ips + nips - cn, *b = m->ips + cn;
		/* four at a time: a stack's outer 10-20 frames are usually equal */
		for (; cn + 4 <= lim; cn += 4, a -= 4, b += 4)
			if ((a[-1] ^ b[0]) | (a[-2] ^ b[1]) | (a[-3] ^ b[2]) | (a[-4] ^ b[3]))
				break;
		while (cn < lim && *--a == *b++)
			cn++;
		lim = npy < m->npy ? npy : m->npy;
		const struct py_frame *f = py + npy;
		for (; cp + 2 <= lim; cp += 2, f -= 2)
			if ((f[-1].code ^ m->code[cp]) | (f[-1].entry ^ m->entry[cp]) |
			    (uint32_t)(f[-1].lasti ^ m->lasti[cp]) | (f[-2].code ^ m->code[cp + 1]) |
			    (f[-2].entry ^ m->entry[cp + 1]) | (uint32_t)(f[-2].lasti ^ m->lasti[cp + 1]))
				break;
		for (; cp < lim; cp++, f--)
			if ((f[-1].code ^ m->code[cp]) | (f[-1].entry ^ m->entry[cp]) |
			    (uint32_t)(f[-1].lasti ^ m->lasti[cp]))
				break;
	}
	/* eval frames: known for the equal part */
	/* was the first native frame that differs an eval frame too? */
	bool eval_cn = usable && cn < m->nips && m->evals[cn + 1] != m->evals[cn];
	unsigned nevals = cn ? m->evals[cn] : 0;
	for (unsigned j = cn; j < nips; j++) {
		uintptr_t ip = ips[nips - 1 - j];
		m->ips[j] = ip;
		m->evals[j] = (uint16_t)nevals;
		nevals += python_is_eval(ip);
	}
	m->evals[nips] = (uint16_t)nevals;
	/* runs and eval calls: known for the equal part too */
	unsigned marks = m->marks[cp], calls = m->calls[cp];
	for (unsigned q = cp; q < npy; q++) {
		const struct py_frame *f = &py[npy - 1 - q];
		m->marks[q] = (uint16_t)marks;
		m->calls[q] = (uint16_t)calls;
		marks += !f->code;
		calls += !f->code && f->entry;
		m->code[q] = f->code;
		m->entry[q] = f->entry;
		m->lasti[q] = f->lasti;
	}
	m->marks[npy] = (uint16_t)marks;
	m->calls[npy] = (uint16_t)calls;
	unsigned nseg = marks + (npy && py[npy - 1].code);
	if (nevals < calls && nips < g_config.depth && python_entries_on_cstack())
		return -1;
	int d = (int)nseg - (int)nevals;
	/* the outermost native frame whose part is not known the same: the
	 * Python entries before it must be equal, and so must the end of the
	 * run they end with (a marker, or the end of P for both) */
	unsigned j = 0, p = 0, n = 0;
	bool kept = false;
	if (usable && d == m->d) {
		unsigned at = cn;
		for (;; at--) {
			unsigned pp = m->ppos[at];
			if (pp < cp || (pp == cp && cp == npy && npy == m->npy) || !pp) {
				kept = true;
				break;
			}
			if (!at)
				break;
		}
		if (kept) {
			j = at;
			p = m->ppos[at];
			n = m->opos[at];
		}
	}
	unsigned e = m->evals[j];
	if (kept && (j < cn || (j == cn && eval_cn)) && j < nips && m->evals[j + 1] != e &&
	    (int)e + d >= 0) {
		/* Native frame j is an eval frame now and was one before (the
		 * same frame, or one at another place in the eval function: the
		 * address is not in the merge), running the same run (e + d),
		 * whose first frames are equal (else j + 1 would have been
		 * kept): those keep their merged places too. Its opos and ppos
		 * stay. */
		unsigned q = p + (p < cp && !py[npy - 1 - p].code), f = q;
		while (f < cp && py[npy - 1 - f].code)
			f++;
		n += f - q < max - n ? f - q : max - n;
		res->known = n;
		for (p = f; p < npy && py[npy - 1 - p].code; p++)
			if (n < max)
				out[n++] = py_key(&py[npy - 1 - p]);
		e++;
		j++;
	} else {
		res->known = n;
	}
	if (!kept) /* the unused runs */
		for (int r = 0; r < d; r++)
			n = merge_run(py, npy, &p, out, n, max);
	for (; j < nips; j++) {
		m->opos[j] = (uint16_t)n;
		m->ppos[j] = (uint16_t)p;
		bool eval = m->evals[j + 1] != m->evals[j];
		if (eval && (int)e + d >= 0)
			n = merge_run(py, npy, &p, out, n, max);
		else if (n < max)
			out[n++] = native_key(ips[nips - 1 - j]);
		e += eval;
	}
	m->opos[nips] = (uint16_t)n;
	m->ppos[nips] = (uint16_t)p;
	m->nips = nips;
	m->npy = npy;
	m->unwind = ts->unwind.serial;
	m->d = d;
	m->deaths = deaths;
	m->ranges = ranges;
	m->epoch = ts->module_epoch;
	m->root = ts->root;
	m->n = n;
	res->memo = true;
	return (int)n;
}

/* HEAPWISE_STACK_CACHE=check: the stack just interned from a merge (most
 * kept frames of the previous one), against a whole merge (splice) of the
 * same frames. */
static __attribute__((noinline)) void check_merge(struct thread_state *ts, unsigned known)
{
	struct stack_scratch *sc = &ts->scratch;
	const struct merge_memo *m = &sc->memo;
	/* splice wants the native frames innermost first, as unwound */
	const struct py_frame *py = (const struct py_frame *)sc->py;
	unsigned n = splice(py, m->npy, sc->ips, NULL, m->nips, sc->keys, HW_MAX_FRAMES);
	bool same = n == ts->last_depth;
	for (unsigned i = 0; same && i < n; i++)
		same = sc->keys[i].a == ts->last_keys[i].a && sc->keys[i].b == ts->last_keys[i].b;
	atomic_fetch_add_explicit(&g_merge_checks, 1, memory_order_relaxed);
	if (known)
		atomic_fetch_add_explicit(&g_merge_kept, 1, memory_order_relaxed);
	if (!same)
		atomic_fetch_add_explicit(&g_merge_check_misses, 1, memory_order_relaxed);
}

/* Are there more eval calls (markers with an entry frame) than frames known
 * to run one, on a native stack that was not cut short? */
static bool eval_frames_missing(const struct py_frame *py, unsigned npy, const uintptr_t *ips,
				unsigned nips)
{
	unsigned calls = 0, evals = 0;
	for (unsigned i = 0; i < npy; i++)
		calls += !py[i].code && py[i].entry;
	for (unsigned i = 0; i < nips; i++)
		evals += python_is_eval(ips[i]);
	return evals < calls && nips < g_config.depth;
}

static unsigned collect_native(struct frame_key *keys, unsigned max)
{
	uintptr_t *ips = SCRATCH(keys)->ips;
	unsigned nips = stack_native_unwind(ips, max < HW_MAX_DEPTH ? max : HW_MAX_DEPTH), n = 0;
	for (unsigned i = nips; i-- > 0;)
		keys[n++] = native_key(ips[i]);
	return n;
}

/* The uncommon modes: Python frames joined with native ones. */
static __attribute__((noinline)) unsigned collect_mixed(struct thread_state *ts,
							 struct frame_key *keys, bool attached,
							 struct merge_out *res)
{
	_Static_assert(sizeof(struct py_frame) * MAX_PY <= sizeof(SCRATCH(keys)->py), "py frames");
	uintptr_t *ips = SCRATCH(keys)->ips;
	struct py_frame *py = (struct py_frame *)SCRATCH(keys)->py;
	unsigned npy = stack_python_collect(py, MAX_PY, attached), n = 0;
	if (!npy)
		return g_config.native == NATIVE_NONE ? 0 : collect_native(keys, g_config.depth);
	if (g_config.native == NATIVE_FULL) {
		unsigned nips = stack_native_unwind(ips, g_config.depth);
		if (HW_LIKELY(!g_config.no_stack_cache)) {
			int merged = merge(ts, py, npy, ips, nips, keys, HW_MAX_FRAMES, res);
			if (merged >= 0)
				return (unsigned)merged;
		} else if (!python_entries_on_cstack() || !eval_frames_missing(py, npy, ips, nips))
			return splice(py, npy, ips, NULL, nips, keys, HW_MAX_FRAMES);
		/* An eval call whose native frame is not known yet: find it by
		 * the stack position of its entry frame (a slower unwind), and
		 * learn the function for the fast path. */
		uintptr_t *sps = SCRATCH(keys)->sps;
		nips = stack_native_unwind_sp(ips, sps, g_config.depth);
		return splice(py, npy, ips, sps, nips, keys, HW_MAX_FRAMES);
	}
	for (unsigned i = npy; i-- > 0;)
		if (py[i].code)
			keys[n++] = py_key(&py[i]);
	if (!n)
		return g_config.native == NATIVE_NONE ? 0 : collect_native(keys, g_config.depth);
	unsigned nips = stack_native_unwind(ips, AUTO_NATIVE_MAX);
	unsigned under = 0;
	while (under < nips && !python_is_eval(ips[under]))
		under++;
	for (unsigned i = under; i-- > 0;)
		keys[n++] = native_key(ips[i]);
	return n;
}

static inline void root_first(struct frame_key *keys, unsigned n)
{
	for (unsigned i = 0, j = n - 1; n && i < j; i++, j--) {
		struct frame_key k = keys[i];
		keys[i] = keys[j];
		keys[j] = k;
	}
}

/* Not enough stack left for libunwind: the Python frames alone, or none. */
static __attribute__((noinline)) unsigned collect_short(struct frame_key *keys, bool attached)
{
	if (!g_py_layout || atomic_load_explicit(&g_py_state, memory_order_relaxed) == PY_NONE)
		return 0;
	unsigned n = g_py_keys(keys, MAX_PY, attached);
	root_first(keys, n);
	return n;
}

/* Root first into keys; returns the depth. */
static inline unsigned collect(struct thread_state *ts, struct frame_key *keys, bool attached,
			       struct merge_out *res)
{
	if (!g_py_layout || atomic_load_explicit(&g_py_state, memory_order_relaxed) == PY_NONE)
		return g_config.native == NATIVE_NONE ? 0 : collect_native(keys, g_config.depth);
	if (g_config.native == NATIVE_FULL || g_config.native == NATIVE_BELOW)
		return collect_mixed(ts, keys, attached, res);
	/* auto and none: Python frames only, walked straight into keys */
	unsigned n = g_py_keys(keys, MAX_PY, attached);
	if (!n) {
		/* No Python frame. Native frames only for threads that have no
		 * Python thread state (native thread pools): not for the
		 * interpreter starting up or a Python thread between frames. Then
		 * a Python process that needs no native stack never starts
		 * libunwind. */
		if (g_config.native == NATIVE_NONE ||
		    atomic_load_explicit(&g_py_state, memory_order_relaxed) == PY_WAITING ||
		    python_thread_has_state())
			return 0;
		return collect_native(keys, g_config.depth);
	}
	root_first(keys, n);
	return n;
}

_Atomic uint64_t g_stack_checks, g_stack_check_misses;

static inline __attribute__((always_inline)) void check_cached(struct thread_state *ts,
								bool attached)
{
	struct frame_key *keys = ts->scratch.keys;
	unsigned n = g_py_keys(keys, MAX_PY, attached);
	bool same = n == ts->last_depth;
	for (unsigned i = 0; same && i < n; i++)
		same = keys[n - 1 - i].a == ts->last_keys[i].a && keys[n - 1 - i].b == ts->last_keys[i].b;
	/* and the code ids and nodes the capture took from its memos, against
	 * the code map and the tree (both find them without writing) */
	uint32_t parent = ts->root;
	for (unsigned i = 0; same && i < n; i++) {
		uint32_t gen = (uint32_t)(ts->last_keys[i].b >> 32), instr = (uint32_t)ts->last_keys[i].b;
		uint32_t code = stack_python_code_id(ts, (uintptr_t)(ts->last_keys[i].a & ~PY_BIT), gen);
		parent = code ? stack_tree_intern(ts, parent, HW_FRAME_PYTHON, (uint64_t)code << 32 | instr)
			      : 0;
		same = code == ts->last_code[i] && parent && parent == ts->last_ids[i];
	}
	/* A code object that died on another thread since the capture read
	 * g_code_deaths (a free-threaded build's collector runs on any thread)
	 * may have moved a generation between the two walks: no verdict. */
	if (!same && atomic_load_explicit(&g_code_deaths, memory_order_acquire) != ts->py_deaths)
		return;
	atomic_fetch_add_explicit(&g_stack_checks, 1, memory_order_relaxed);
	if (!same)
		atomic_fetch_add_explicit(&g_stack_check_misses, 1, memory_order_relaxed);
}

/* HEAPWISE_STACK_CHECK: the stack just captured by the frame-chain cache
 * (last_keys) against an uncached walk. */
void stack_check_cached(struct thread_state *ts, bool attached)
{
	int e = errno; /* HW_KEEPS_ERRNO */
	check_cached(ts, attached);
	errno = e;
}

/* Set (never cleared) once Python frames are walked and Python-only stacks
 * go through the frame-chain cache (stack_python_started): the layout row's
 * whole capture (stack_python.c, capture_row##i), one load and one test for
 * what were four. */
uint32_t (*_Atomic g_capture_py[2])(struct thread_state *ts, bool attached);

void stack_python_started(void)
{
	if (g_py_layout && g_py_capture_row[0] && g_py_capture_row[1] &&
	    atomic_load_explicit(&g_py_state, memory_order_relaxed) != PY_NONE &&
	    (g_config.native == NATIVE_AUTO || g_config.native == NATIVE_NONE) &&
	    !g_config.no_stack_cache) {
		atomic_store_explicit(&g_capture_py[1], g_py_capture_row[1], memory_order_release);
		atomic_store_explicit(&g_capture_py[0], g_py_capture_row[0], memory_order_release);
	}
}

static __attribute__((noinline)) void new_module_epoch(struct thread_state *ts, uint32_t epoch)
{
	int e = errno; /* HW_KEEPS_ERRNO (the tree's memory unmapped) */
	/* an object was unloaded: cached nodes may name vanished code */
	stack_tree_release(&ts->tree);
	ts->last_depth = 0;
	ts->module_epoch = epoch;
	errno = e;
}

/* new_module_epoch when the epoch moved since the thread last looked. */
static inline void epoch_check(struct thread_state *ts)
{
	uint32_t epoch = atomic_load_explicit(&g_module_epoch, memory_order_relaxed);
	if (HW_UNLIKELY(epoch != ts->module_epoch))
		new_module_epoch(ts, epoch);
}

/* The Python-only modes with Python frames (the common case) go straight to
 * the layout row's capture (g_capture_py), which comes back to
 * stack_capture_other when the thread has no Python frame: no prologue here. */
uint32_t stack_capture(struct thread_state *ts, bool attached)
{
	epoch_check(ts);
	uint32_t (*py)(struct thread_state *, bool) =
		atomic_load_explicit(&g_capture_py[attached], memory_order_acquire);
	/* tail calls, which keep errno themselves: no frame of this function
	 * under a native unwind (HW_UNWIND_SELF frames of the shim's are) */
	if (HW_LIKELY(py))
		return py(ts, attached);
	return stack_capture_other(ts, attached);
}

static inline __attribute__((always_inline)) uint32_t capture_other(struct thread_state *ts,
								    bool attached);

uint32_t stack_capture_other(struct thread_state *ts, bool attached)
{
	int e = errno; /* HW_KEEPS_ERRNO */
	uint32_t stack = capture_other(ts, attached);
	errno = e;
	return stack;
}

static inline __attribute__((always_inline)) uint32_t capture_other(struct thread_state *ts,
								    bool attached)
{
	ts->py_cached = false;
	bool native = HW_LIKELY(tracker_stack_native_ok(ts, (uintptr_t)__builtin_frame_address(0)));
	/* native frames next: an object unloaded without our dlclose moves
	 * the epoch here, before they are cached (not on a stack too short for
	 * them: then neither is dl_iterate_phdr called) */
	if (native && HW_UNLIKELY(modules_unloaded(ts)))
		epoch_check(ts);
	struct frame_key *keys = ts->scratch.keys;
	/* only a merge that succeeds below leaves a valid memo */
	struct merge_out res = {0, ts->scratch.memo.valid, false};
	ts->scratch.memo.valid = false;
	unsigned depth = native ? collect(ts, keys, attached, &res) : collect_short(keys, attached);
	if (!depth)
		return 0;
	/* keys[0..known) were not written: they are last_keys's */
	unsigned same = res.known;
	while (same < ts->last_depth && same < depth && ts->last_keys[same].a == keys[same].a &&
	       ts->last_keys[same].b == keys[same].b)
		same++;
	uint32_t parent = same ? ts->last_ids[same - 1] : ts->root;
	for (unsigned i = same; i < depth; i++) {
		const struct frame_key *k = &keys[i];
		if (HW_UNLIKELY(k->a == HW_PY_ELIDED)) {
			/* frames not recorded (stack_python.c, keys_deep): code id 0 */
			ts->last_code[i] = 0;
			parent = stack_tree_intern(ts, parent, HW_FRAME_PYTHON, (uint32_t)k->b);
		} else if (k->a & PY_BIT) {
			/* the same code object one instruction on: the code id is known */
			uint32_t gen = (uint32_t)(k->b >> 32), instr = (uint32_t)k->b;
			uint32_t code = i < ts->last_depth && ts->last_keys[i].a == k->a &&
						(uint32_t)(ts->last_keys[i].b >> 32) == gen
					? ts->last_code[i]
					: stack_python_code_id(ts, (uintptr_t)(k->a & ~PY_BIT), gen);
			ts->last_code[i] = code;
			parent = code ? stack_tree_intern(ts, parent, HW_FRAME_PYTHON,
							  (uint64_t)code << 32 | instr)
				      : 0;
		} else {
			parent = stack_tree_intern(ts, parent, HW_FRAME_NATIVE, k->a);
		}
		if (!parent) {
			ts->last_depth = 0;
			return 0;
		}
		ts->last_keys[i] = *k;
		ts->last_ids[i] = parent;
	}
	ts->last_depth = depth;
	if (res.memo) {
		ts->scratch.memo.valid = true;
		if (HW_UNLIKELY(g_config.stack_check))
			check_merge(ts, res.known);
	}
	return parent;
}

/* --- RETAG decisions (3.13+) ------------------------------------------------
 * A free list's object asks whether the thread's stack is `same`, the stack
 * its block already has (python_objects.c): about 98% of them are (a loop
 * making a tuple a turn gets back the tuple it freed, on the same line), and
 * a full capture for each cost ~300 instructions (a_pymalloc_heavy on 3.13:
 * 80,935 decisions, 1,769 RETAGs written). Such a decision needs the walk:
 * a frame at a reused address may have a new caller, so no frame alone says
 * the chain is the same. But after the walk, the nodes are a function of
 * the raw frames (code address, instruction pointer), the code generations
 * (unchanged while no code object died: g_code_deaths), the stack tree
 * (replaced when a module was unloaded: module_epoch) and the root (a
 * pooled state serves a thread of another origin): when all equal those of
 * a capture that gave `same`, the capture would give `same` again. Kept per
 * thread, a slot per leaf, for decisions only (an allocation's capture
 * interns anyway). */

_Atomic uint64_t g_chain_checks, g_chain_check_misses;

static inline struct chain_memo *chain_slot(struct thread_state *ts, uint32_t leaf)
{
	_Static_assert(HW_CHAIN_SLOTS == 16, "the shift below");
	return &ts->chains[(leaf * 0x9e3779b1u) >> 28];
}

/* HEAPWISE_STACK_CACHE=check: the decision the chain memo took, against a
 * capture. */
static __attribute__((noinline)) uint32_t check_chain(struct thread_state *ts, uint32_t same)
{
	uint32_t leaf = stack_capture(ts, true);
	atomic_fetch_add_explicit(&g_chain_checks, 1, memory_order_relaxed);
	if (leaf != same)
		atomic_fetch_add_explicit(&g_chain_check_misses, 1, memory_order_relaxed);
	return leaf;
}

uint32_t stack_capture_is(struct thread_state *ts, uint32_t same)
{
	uint32_t epoch = atomic_load_explicit(&g_module_epoch, memory_order_relaxed);
	struct chain_memo *c = chain_slot(ts, same);
	if (same && c->leaf == same && c->module_epoch == epoch && epoch == ts->module_epoch &&
	    c->root == ts->root && atomic_load_explicit(&g_capture_py[1], memory_order_relaxed) &&
	    g_py_raw_same(c->raw, c->depth, true) &&
	    /* after the walk, as a capture reads it */
	    c->deaths == atomic_load_explicit(&g_code_deaths, memory_order_acquire))
		return HW_UNLIKELY(g_config.stack_check) ? check_chain(ts, same) : same;
	uint32_t leaf = stack_capture(ts, true);
	/* Kept when the decision was `same` (no RETAG): the next decision on
	 * a block of this stack is then taken from the memo. A RETAG written
	 * makes the memo hold leaf, but most of those (pygments: 100,088 of
	 * 155,595 decisions) are lines that take blocks of other lines, not
	 * worth a copy of the chain. A Python-only capture leaves its raw keys
	 * at the end of py_raw's first MAX_PY entries. */
	unsigned n = ts->last_depth;
	if (leaf && leaf == same && ts->py_cached && n <= HW_CHAIN_DEPTH) {
		c = chain_slot(ts, leaf);
		c->leaf = leaf;
		c->depth = n;
		c->deaths = ts->py_deaths;
		c->module_epoch = ts->module_epoch;
		c->root = ts->root;
		memcpy(c->raw, ts->py_raw + MAX_PY - n, n * sizeof(c->raw[0]));
	}
	return leaf;
}
