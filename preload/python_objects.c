/* CPython objects the allocator hooks do not see (shim, intercept stage):
 * objects CPython takes from its free lists instead of the allocator (issue
 * 16 item 1), and the cyclic garbage collector's collections (item 5).
 * Free lists: 3.13+ tells a reference tracer (PyRefTracer) about every new
 * object; one whose memory the thread did not just allocate came from a free
 * list, and a RETAG record gives its block to the stack creating it (what
 * tracemalloc does in _Py_NewReference). 3.11 and 3.12 have no such hook: the
 * free lists of lists and dicts are emptied back into the allocator after
 * each list or dict deallocation, and those of floats and tuples are kept
 * full-but-empty, so those objects come from the allocator the hooks see.
 * GC: every event already loads one flag (finalization); the interpreter's
 * collecting flag is the second, and its changes are written as marks. */
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "heapwise/compiler.h"
#include "heapwise/trace_format.h"
#include "log.h"
#include "python.h"
#include "sample.h"
#include "tracker.h"

#define LOAD(type, base, off) (*(type *)((uintptr_t)(base) + (off)))

int *_Atomic g_py_gc_flag = HW_GC_NO_FLAG;
_Atomic int g_py_gc_seen = HW_GC_UNARMED;

static char *g_interp; /* the main interpreter */
static char *g_runtime; /* &_PyRuntime */
static void *(*g_tstate_current)(void); /* _PyThreadState_GetCurrent (3.12+) */
static void (*g_gc_del)(void *); /* PyObject_GC_Del */
static void (*g_obj_free)(void *); /* PyObject_Free */
static _Atomic int g_objects_off; /* set once CPython finalizes */
static intptr_t g_stats[9]; /* gc statistics when the collection started */

/* --- 3.13+: the reference tracer ------------------------------------------ */

typedef int (*reftracer_fn)(void *op, int event, void *data);
static reftracer_fn g_prev_tracer; /* a tracer set before ours: called first */
static void *g_prev_data;

#define PY_TPFLAGS_HAVE_GC (1ul << 14)
#define PY_TPFLAGS_PREHEADER (1ul << 3 | 1ul << 4) /* managed weakref, dict (3.13+) */

/* The memo of tags (GIL builds, 3.13+): which stack each recent OBJ block
 * was last given, so that a free list's object made again by the stack that
 * made it before needs no RETAG (a loop making a tuple per turn reuses the
 * tuple it freed: most RETAGs). */
struct hw_tag g_tags[HW_TAGS];
bool g_tags_on, g_py_reftracer_on;
_Atomic uint32_t g_tag_epoch = 1;

/* Gives the block of object o, which o's thread did not just allocate (a
 * free list's), to the stack making o. */
static __attribute__((noinline)) void retag(struct thread_state *ts, uintptr_t o)
{
	int e = errno;
	const struct python_layout *L = g_py_layout;
	uintptr_t type = LOAD(uintptr_t, o, L->obj_type);
	unsigned long flags = type ? LOAD(unsigned long, type, L->type_flags) : 0;
	uintptr_t block = o - ((flags & PY_TPFLAGS_HAVE_GC ? L->gc_head : 0) +
			       (flags & PY_TPFLAGS_PREHEADER ? 2 * sizeof(void *) : 0));
	if (g_tags_on) {
		/* the epoch before the record's sequence number: a mark taken
		 * after it makes the memo's tags older than the mark */
		uint32_t epoch = atomic_load(&g_tag_epoch);
		struct hw_tag *t = &g_tags[hw_tag_slot(block)];
		uint32_t same = t->block == block && t->epoch == epoch ? t->stack : 0;
		uint32_t stack = tracker_retag(ts, (const void *)block, same);
		*t = (struct hw_tag){block, stack, epoch};
	} else {
		tracker_retag(ts, (const void *)block, 0);
	}
	errno = e;
}

/* A new object: most are made right after the allocation the OBJ hook saw,
 * which the thread's state tells without taking the guard (only this thread
 * writes py_last; in a fork child made without atfork it may be the
 * parent's state, whose last block the child has too). The block makes one
 * object: an object made in it again before the thread allocates is a free
 * list's, whether or not CPython told its death (3.13.0 sends no DESTROY
 * for what the eval loop's own decref frees, CPython gh-130382: `t = [1]`,
 * `del t`, `keep.append([])` charged every kept list to the first line). */
static __attribute__((noinline)) int created(void *op)
{
	uintptr_t o = (uintptr_t)op;
	struct thread_state *ts = hw_tls.state;
	if (HW_LIKELY(ts != NULL) && HW_LIKELY(o - ts->py_last < ts->py_last_size)) {
		ts->py_last_size = 0;
		return 0;
	}
	ts = tracker_enter();
	if (!ts)
		return 0;
	if (HW_UNLIKELY(o - ts->py_last >= ts->py_last_size))
		retag(ts, o);
	tracker_leave();
	return 0;
}

/* A destroyed object: one in the thread's last OBJ block gives that block
 * back (to a free list, or to the allocator), so an object made in it again
 * before the thread allocates is a free list's and needs its RETAG (without
 * this, `y = []` then `return []` in a loop charged every kept list to the
 * first line: 3.13+). Only this thread writes its py_last. */
static inline __attribute__((always_inline)) int destroyed(void *op)
{
	struct thread_state *ts = hw_tls.state;
	if (HW_LIKELY(ts != NULL) && HW_UNLIKELY((uintptr_t)op - ts->py_last < ts->py_last_size))
		ts->py_last_size = 0;
	return 0;
}

/* Set while the tracer before ours runs: one that calls the tracer it found
 * in its place (ours, when python_reftracer_recheck put ours back in front
 * of it) comes back here, and returns at once (each event once, no loop). */
static __thread bool t_in_prev __attribute__((tls_model("initial-exec")));

static __attribute__((noinline)) int chained(void *op, int event)
{
	if (t_in_prev)
		return 0;
	t_in_prev = true;
	g_prev_tracer(op, event, g_prev_data);
	t_in_prev = false;
	return event == 0 ? created(op) : destroyed(op); /* 1: PyRefTracer_DESTROY */
}

/* Called by CPython for every object it makes (CREATE) or destroys, on the
 * thread doing it, with its thread state attached (without the GIL in a
 * free-threaded build). Must not make Python objects. The destroyed ones
 * (a third of the calls) cost two loads and two compares. */
static int reftracer(void *op, int event, void *data)
{
	(void)data;
	if (HW_UNLIKELY(g_prev_tracer != NULL))
		return chained(op, event);
	return event == 0 ? created(op) : destroyed(op);
}

static reftracer_fn (*g_get_tracer)(void **); /* PyRefTracer_GetTracer */
static int (*g_set_tracer)(reftracer_fn, void *); /* PyRefTracer_SetTracer */

/* CPython has one reference tracer: tracemalloc.start() puts its own in our
 * place and tracemalloc.stop() puts none (3.13+; any tool calling
 * PyRefTracer_SetTracer does the same). Without ours every object a free
 * list gives back stayed on the line that first allocated its block (a
 * list kept by one line, 5.3 of its 6.9 MiB shown on a line whose list is
 * freed at once). An OBJ hook calls this every HW_PY_RECHECK allocations of
 * its thread, holding the GIL (GIL builds only: a free-threaded build's
 * tracer is not ours to swap under running threads): a tracer found in our
 * place is called first from then on, as one set before ours. */
void python_reftracer_recheck(void)
{
	if (!g_tags_on || !g_get_tracer || atomic_load(&g_objects_off))
		return;
	void *data = NULL;
	reftracer_fn cur = g_get_tracer(&data);
	if (cur == reftracer)
		return;
	int e = errno;
	g_prev_tracer = cur;
	g_prev_data = data;
	g_set_tracer(reftracer, NULL);
	errno = e;
}

static void start_reftracer(void)
{
	/* The sampling mode records one allocation in many: the hooks keep no
	 * py_last for the others, so every object made after an unsampled
	 * allocation would look like a free list's and get a RETAG of a block
	 * the trace does not have (601,723 of them for 200,000 tuples on 3.14,
	 * a 5.3 MB trace). Free lists' objects keep their block's stack there. */
	if (g_sample_interval)
		return;
	reftracer_fn (*get)(void **) = (reftracer_fn(*)(void **))dlsym(RTLD_DEFAULT, "PyRefTracer_GetTracer");
	int (*set)(reftracer_fn, void *) = (int (*)(reftracer_fn, void *))dlsym(RTLD_DEFAULT, "PyRefTracer_SetTracer");
	if (!get || !set)
		return;
	void *data = NULL;
	reftracer_fn prev = get(&data);
	if (prev == reftracer)
		return;
	g_prev_data = data;
	g_prev_tracer = prev;
	g_get_tracer = get;
	g_set_tracer = set;
	/* the memo's tags are read and written by threads holding the GIL */
	g_tags_on = !g_py_layout->free_threaded;
	g_py_reftracer_on = true;
	set(reftracer, NULL);
}

/* --- 3.11, 3.12: free lists emptied into the allocator --------------------- */

/* A type whose tp_dealloc is wrapped. The slot holds the original while it
 * runs: its trashcan (Py_TRASHCAN_BEGIN, which bounds the C stack a deep
 * structure's deallocation takes) only works when the type's tp_dealloc is
 * the function itself. Deallocations nested in it call the original
 * directly; their objects are emptied from the free list as it returns. */
struct wrapped {
	void (**slot)(void *);
	void (*orig)(void *);
};
static struct wrapped g_list, g_dict;

/* The interpreter of the calling thread's thread state, read without a
 * check that could end the process (PyInterpreterState_Get() is fatal on a
 * thread without one); NULL when there is none. */
static char *current_interp(void)
{
	const struct python_layout *L = g_py_layout;
	void *ts = L->tstate_from == TSTATE_RUNTIME_GILSTATE
			   ? LOAD(void *, g_runtime, L->runtime_tstate_current)
			   : g_tstate_current();
	return ts ? LOAD(char *, ts, 2 * sizeof(void *)) : NULL; /* PyThreadState.interp */
}

static void drain_array(char *interp, uint32_t items, uint32_t numfree)
{
	int *n = (int *)(interp + numfree);
	void **item = (void **)(interp + items);
	while (*n > 0) {
		void *op = item[--*n];
		g_gc_del(op);
	}
}

/* Empties the free lists of the interpreter the thread runs in, if it is the
 * main one (a subinterpreter has lists of its own: left alone). Floats and
 * tuples are kept out of their lists by a full count (their deallocation
 * then frees, and their lists stay empty); a full collection empties and
 * resets them (clear_freelists), so this runs after every list or dict
 * deallocation, which programs do all the time. The GIL is held. */
static void drain(void)
{
	if (atomic_load_explicit(&g_objects_off, memory_order_relaxed))
		return;
	char *interp = current_interp();
	if (interp != g_interp)
		return;
	const struct python_layout *L = g_py_layout;
	drain_array(interp, L->fl_list_items, L->fl_list_numfree);
	drain_array(interp, L->fl_dict_items, L->fl_dict_numfree);
	int *fn = (int *)(interp + L->fl_float_numfree);
	if (HW_UNLIKELY(*fn != HW_PY_FLOAT_MAXFREE)) {
		void **head = (void **)(interp + L->fl_float_head);
		while (*head) { /* linked through ob_type */
			void *op = *head;
			*head = LOAD(void *, op, L->obj_type);
			g_obj_free(op);
		}
		*fn = HW_PY_FLOAT_MAXFREE;
	}
	int *tn = (int *)(interp + L->fl_tuple_numfree);
	if (HW_UNLIKELY(tn[0] != HW_PY_TUPLE_MAXFREE)) {
		void **heads = (void **)(interp + L->fl_tuple_heads);
		for (int i = 0; i < HW_PY_TUPLE_NFREE; i++) {
			while (heads[i]) { /* linked through ob_item[0] */
				void *op = heads[i];
				heads[i] = LOAD(void *, op, 3 * sizeof(void *));
				g_gc_del(op);
			}
			tn[i] = HW_PY_TUPLE_MAXFREE;
		}
	}
}

static void list_dealloc(void *op)
{
	*g_list.slot = g_list.orig;
	g_list.orig(op);
	*g_list.slot = list_dealloc;
	drain();
}

static void dict_dealloc(void *op)
{
	*g_dict.slot = g_dict.orig;
	g_dict.orig(op);
	*g_dict.slot = dict_dealloc;
	drain();
}

static void wrap(struct wrapped *w, const char *type, void (*fn)(void *))
{
	char *t = dlsym(RTLD_DEFAULT, type);
	if (!t)
		return;
	w->slot = (void (**)(void *))(t + g_py_layout->type_dealloc);
	if (*w->slot == fn)
		return;
	w->orig = *w->slot;
	*w->slot = fn;
}

static void start_draining(void)
{
	/* The sampling mode leaves the free lists as CPython keeps them, as on
	 * 3.13+ there (no reference tracer): a sampled block a free list reuses
	 * stays on its first line either way, and draining them sends every
	 * list, dict, tuple and float a free list would have served through
	 * the allocator and its hooks (on a_pymalloc_heavy, 3.11, half of the
	 * sampled mode's cost). */
	if (g_sample_interval)
		return;
	g_runtime = dlsym(RTLD_DEFAULT, "_PyRuntime");
	g_tstate_current = (void *(*)(void))dlsym(RTLD_DEFAULT, "_PyThreadState_GetCurrent");
	g_gc_del = (void (*)(void *))dlsym(RTLD_DEFAULT, "PyObject_GC_Del");
	g_obj_free = (void (*)(void *))dlsym(RTLD_DEFAULT, "PyObject_Free");
	if (!g_runtime || !g_gc_del || !g_obj_free ||
	    (g_py_layout->tstate_from != TSTATE_RUNTIME_GILSTATE && !g_tstate_current))
		return;
	wrap(&g_list, "PyList_Type", list_dealloc);
	wrap(&g_dict, "PyDict_Type", dict_dealloc);
}

/* --- the collector's marks -------------------------------------------------- */

static void read_stats(intptr_t out[9])
{
	uint32_t off = g_py_layout->interp_gc_stats;
	if (off)
		memcpy(out, g_interp + off, 9 * sizeof(intptr_t));
	else
		memset(out, 0, 9 * sizeof(intptr_t));
}

static void end_label(char *buf, size_t cap)
{
	intptr_t now[9];
	read_stats(now);
	if (!g_py_layout->interp_gc_stats) {
		log_snprintf(buf, cap, "gc");
		return;
	}
	intptr_t runs = 0, collected = 0, uncollectable = 0;
	int gen = -1;
	for (int g = 0; g < 3; g++) {
		intptr_t n = now[3 * g] - g_stats[3 * g];
		if (n > 0)
			gen = g;
		runs += n;
		collected += now[3 * g + 1] - g_stats[3 * g + 1];
		uncollectable += now[3 * g + 2] - g_stats[3 * g + 2];
	}
	memcpy(g_stats, now, sizeof(now));
	if (gen < 0) {
		log_snprintf(buf, cap, "gc");
		return;
	}
	size_t n = log_snprintf(buf, cap, "gc gen %d: %ld collected", gen, (long)collected);
	if (uncollectable)
		n += log_snprintf(buf + n, cap - n, ", %ld uncollectable", (long)uncollectable);
	if (runs > 1)
		log_snprintf(buf + n, cap - n, ", %ld collections", (long)runs);
}

void python_objects_arm(void)
{
	const struct python_layout *L = g_py_layout;
	if (!L || atomic_load(&g_py_gc_flag) != HW_GC_NO_FLAG)
		return;
	void *(*main_interp)(void) = (void *(*)(void))dlsym(RTLD_DEFAULT, "PyInterpreterState_Main");
	char *interp = main_interp ? main_interp() : NULL;
	if (!interp)
		return;
	g_interp = interp;
	atomic_store(&g_py_gc_flag, (int *)(interp + L->interp_gc_collecting));
}

void python_objects_finalizing(void)
{
	/* the interpreter state is freed at the end of finalization */
	atomic_store(&g_objects_off, 1);
	atomic_store(&g_py_gc_flag, HW_GC_NO_FLAG);
}

static inline __attribute__((always_inline)) void gc_seen(struct thread_state *ts, bool attached)
{
	int *flag = atomic_load_explicit(&g_py_gc_flag, memory_order_relaxed);
	if (flag == HW_GC_NO_FLAG)
		return;
	int now = *(volatile int *)flag;
	int seen = atomic_load(&g_py_gc_seen);
	if (seen == HW_GC_UNARMED) {
		/* the first event of a thread with an attached thread state
		 * (the GIL, in a GIL build) after the interpreter started */
		if (!attached || !atomic_compare_exchange_strong(&g_py_gc_seen, &seen, HW_GC_BUSY))
			return;
		if (g_py_layout->fl_list_items)
			start_draining();
		else
			start_reftracer();
		read_stats(g_stats);
		atomic_store(&g_py_gc_seen, 0);
		return;
	}
	if (seen == HW_GC_BUSY || !atomic_compare_exchange_strong(&g_py_gc_seen, &seen, now))
		return;
	if (now) {
		read_stats(g_stats);
		tracker_mark(ts, HW_MARK_GC_START, "gc");
	} else {
		char label[96];
		end_label(label, sizeof(label));
		tracker_mark(ts, HW_MARK_GC_END, label);
	}
}

void tracker_gc_seen(struct thread_state *ts, bool attached)
{
	int e = errno; /* HW_KEEPS_ERRNO */
	gc_seen(ts, attached);
	errno = e;
}

void tracker_gc_flush(struct thread_state *ts)
{
	int *flag = atomic_load(&g_py_gc_flag);
	int seen = atomic_load(&g_py_gc_seen);
	if (flag == HW_GC_NO_FLAG || seen <= 0)
		return; /* not armed, busy, or no collection open */
	if (*(volatile int *)flag) {
		/* the collector runs now (finalization collects): the open
		 * collection has ended only if the statistics moved since its
		 * start (they count a collection at its end) */
		intptr_t now[9];
		read_stats(now);
		if (!g_py_layout->interp_gc_stats || !memcmp(now, g_stats, sizeof(now)))
			return;
	}
	if (!atomic_compare_exchange_strong(&g_py_gc_seen, &seen, 0))
		return;
	char label[96];
	end_label(label, sizeof(label));
	tracker_mark(ts, HW_MARK_GC_END, label);
}
