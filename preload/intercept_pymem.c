/* CPython's allocator domains (shim, intercept stage): hooks on the PyMem MEM
 * and OBJ domains that wrap whatever allocator was there. Each hook keeps the
 * allocator it wraps in its own ctx (a global would break when tracemalloc or
 * the debug hooks wrap us in turn). PYTHONMALLOC and -X dev replace the
 * allocators while the interpreter starts: until Py_IsInitialized() the libc
 * interposers call python_check_hooks, which installs the hooks again. */
#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "heapwise/trace_format.h"
#include "heapwise/varint.h"
#include "log.h"
#include "python.h"
#include "tracker.h"

enum { DOMAIN_RAW = 0, DOMAIN_MEM = 1, DOMAIN_OBJ = 2 };

/* PyMemAllocatorEx, declared here so the shim needs no Python headers. */
struct pymem_allocator {
	void *ctx;
	void *(*malloc)(void *ctx, size_t size);
	void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
	void *(*realloc)(void *ctx, void *ptr, size_t size);
	void (*free)(void *ctx, void *ptr);
};

struct hook_ctx {
	struct pymem_allocator prev;
	int kind;
};

#define MAX_INSTALLS 16
static struct hook_ctx g_ctx[MAX_INSTALLS]; /* never reused: old chains stay valid */
static unsigned g_ninstalls;
static uint32_t g_py_version;

static void (*py_get_allocator)(int, struct pymem_allocator *);
static void (*py_set_allocator)(int, struct pymem_allocator *);
static int (*py_is_initialized)(void);
extern void *(*g_py_get_tstate)(void);
extern uintptr_t g_eval_lo, g_eval_hi;
void stack_python_code_dies(uintptr_t code);
void stack_python_use_layout(const struct python_layout *L);
extern void *g_py_runtime;
extern const uintptr_t *g_py_finalizing_at;
static void (*g_code_dealloc)(void *);

static void *hook_malloc(void *ctx, size_t n)
{
	struct hook_ctx *c = ctx;
	struct thread_state *ts = tracker_enter();
	void *p = c->prev.malloc(c->prev.ctx, n);
	if (ts) {
		if (p) {
			int e = errno;
			tracker_alloc(ts, c->kind, p, n);
			errno = e;
		}
		tracker_leave();
	}
	return p;
}

static void *hook_calloc(void *ctx, size_t n, size_t size)
{
	struct hook_ctx *c = ctx;
	struct thread_state *ts = tracker_enter();
	void *p = c->prev.calloc(c->prev.ctx, n, size);
	if (ts) {
		if (p) {
			int e = errno;
			tracker_alloc(ts, c->kind, p, n * size);
			errno = e;
		}
		tracker_leave();
	}
	return p;
}

static void *hook_realloc(void *ctx, void *old, size_t n)
{
	struct hook_ctx *c = ctx;
	struct thread_state *ts = tracker_enter();
	uint64_t seq_free = ts && old ? tracker_take_seq() : 0;
	void *p = c->prev.realloc(c->prev.ctx, old, n);
	if (ts) {
		int e = errno;
		if (p && old)
			tracker_realloc(ts, c->kind, seq_free, old, p, n);
		else if (p)
			tracker_alloc(ts, c->kind, p, n);
		errno = e;
		tracker_leave();
	}
	return p;
}

static void hook_free(void *ctx, void *p)
{
	struct hook_ctx *c = ctx;
	struct thread_state *ts = p ? tracker_enter() : NULL;
	if (ts) {
		int e = errno;
		tracker_free(ts, c->kind, p);
		errno = e;
	}
	c->prev.free(c->prev.ctx, p);
	if (ts)
		tracker_leave();
}

static void install(int domain, int kind)
{
	struct pymem_allocator cur;
	py_get_allocator(domain, &cur);
	if (cur.malloc == hook_malloc)
		return;
	if (g_ninstalls == MAX_INSTALLS)
		return;
	struct hook_ctx *c = &g_ctx[g_ninstalls++];
	c->prev = cur;
	c->kind = kind;
	struct pymem_allocator ours = {c, hook_malloc, hook_calloc, hook_realloc, hook_free};
	py_set_allocator(domain, &ours);
}

void python_check_hooks(void)
{
	if (atomic_load(&g_py_state) != PY_WAITING)
		return;
	bool ready = py_is_initialized();
	install(DOMAIN_MEM, HW_KIND_PYMEM);
	install(DOMAIN_OBJ, HW_KIND_PYOBJ);
	if (ready)
		atomic_store(&g_py_state, PY_READY);
}

static void code_dealloc(void *op)
{
	stack_python_code_dies((uintptr_t)op);
	g_code_dealloc(op);
}

void python_emit_info(struct thread_state *ts)
{
	if (atomic_load(&g_py_state) == PY_NONE)
		return;
	uint8_t *p = tracker_reserve(ts, 2 + 2 * HW_VARINT_MAX);
	if (!p)
		return;
	*p++ = HW_REC_PYTHON;
	p = hw_put_varint(p, atomic_load(&g_seq));
	p = hw_put_varint(p, g_py_version);
	*p++ = g_py_layout != NULL;
	tracker_commit(ts, p);
}

void python_start(struct thread_state *ts)
{
	py_get_allocator = (void (*)(int, struct pymem_allocator *))dlsym(RTLD_DEFAULT, "PyMem_GetAllocator");
	py_set_allocator = (void (*)(int, struct pymem_allocator *))dlsym(RTLD_DEFAULT, "PyMem_SetAllocator");
	py_is_initialized = (int (*)(void))dlsym(RTLD_DEFAULT, "Py_IsInitialized");
	if (!py_get_allocator || !py_set_allocator || !py_is_initialized)
		return; /* not a Python process (or Python is not loaded yet) */
	const unsigned long *version = dlsym(RTLD_DEFAULT, "Py_Version");
	g_py_version = version ? (uint32_t)*version : 0;
	g_py_get_tstate = (void *(*)(void))dlsym(RTLD_DEFAULT, "PyGILState_GetThisThreadState");
	void *code_type = dlsym(RTLD_DEFAULT, "PyCode_Type");
	void *eval = dlsym(RTLD_DEFAULT, "_PyEval_EvalFrameDefault");
	const struct python_layout *L = python_layout_find(g_py_version);
	if (L && g_py_get_tstate && code_type) {
		void (**slot)(void *) = (void (**)(void *))((char *)code_type + L->type_dealloc);
		if (*slot != code_dealloc) {
			g_code_dealloc = *slot;
			*slot = code_dealloc;
		}
		Dl_info info;
		const ElfW(Sym) *sym = NULL;
		if (eval && dladdr1(eval, &info, (void **)&sym, RTLD_DL_SYMENT) && sym) {
			g_eval_lo = (uintptr_t)eval;
			g_eval_hi = (uintptr_t)eval + sym->st_size;
		}
		g_py_runtime = dlsym(RTLD_DEFAULT, "_PyRuntime");
		stack_python_use_layout(L);
		if (g_py_runtime) {
			g_py_finalizing_at =
				(const uintptr_t *)((char *)g_py_runtime + L->runtime_finalizing);
			atomic_store(&g_py_finalizing, (uintptr_t *)g_py_finalizing_at);
		}
	} else {
		log_line("Python %u.%u is not known to this heapwise: allocations are recorded with native stacks, Python frames are off",
			 (g_py_version >> 24) & 0xff, (g_py_version >> 16) & 0xff);
	}
	atomic_store(&g_py_state, PY_WAITING);
	python_check_hooks();
	python_emit_info(ts);
}
