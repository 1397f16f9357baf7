/* Python frames (shim, stacks stage): walks the calling thread's interpreter
 * frames from its thread state, recording (code object, instruction index);
 * line numbers are computed offline from the code object's line table, which
 * is written once per code object. Reads the objects directly, never calls
 * into Python. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

#include "heapwise/compiler.h"
#include "heapwise/trace_format.h"
#include "heapwise/varint.h"
#include "log.h"
#include "python.h"
#include "stack.h"
#include "tracker.h"
#include "writer.h"


_Atomic int g_py_state;
const struct python_layout *g_py_layout;
void *(*g_py_get_tstate)(void);
_Atomic uint32_t g_code_gen[HW_CODE_GEN_SLOTS];
static _Atomic uint32_t g_next_code = 1;
uintptr_t g_eval_lo, g_eval_hi;

#define gen_slot stack_python_gen_slot

/* Installed as PyCode_Type.tp_dealloc's wrapper (intercept_pymem.c). */
void stack_python_code_dies(uintptr_t code)
{
	atomic_fetch_add_explicit(&g_code_gen[gen_slot(code)], 1, memory_order_release);
}

bool python_is_eval(uintptr_t ip)
{
	return ip >= g_eval_lo && ip < g_eval_hi;
}

#define LOAD(type, base, off) (*(type *)((uintptr_t)(base) + (off)))

void *g_py_runtime; /* &_PyRuntime */
const uintptr_t *g_py_finalizing_at; /* &_PyRuntime._finalizing, for good */

/* Once CPython finalizes, it frees the thread states of the other threads
 * (daemon threads) while those may still run C code that allocates, and
 * PyGILState_GetThisThreadState() still returns their freed state. From then
 * on only the finalizing thread's own state is read. */
static inline bool tstate_usable(const void *ts)
{
	uintptr_t fin = g_py_finalizing_at ? *(const volatile uintptr_t *)g_py_finalizing_at : 0;
	return HW_LIKELY(!fin) || fin == (uintptr_t)ts;
}

/* The calling thread's innermost interpreter frame, or NULL. With the GIL
 * held (PyMem hooks) the thread state is _PyRuntime's GIL holder, checked
 * against pthread_self(); otherwise PyGILState_GetThisThreadState(). */
static inline __attribute__((always_inline)) void *
innermost_frame(const struct python_layout *L, bool gil_held)
{
	void *ts = NULL;
	if (gil_held && g_py_runtime) {
		ts = LOAD(void *, g_py_runtime, L->runtime_tstate_current);
		if (ts && LOAD(unsigned long, ts, L->ts_thread_id) != (unsigned long)pthread_self())
			ts = NULL; /* a caller that does not hold the GIL after all */
	}
	if (!ts)
		ts = g_py_get_tstate();
	if (!ts || !tstate_usable(ts))
		return NULL;
	void *cframe = LOAD(void *, ts, L->ts_cframe);
	return cframe ? LOAD(void *, cframe, L->cframe_current_frame) : NULL;
}

/* One walker, instantiated for each layout row so the offsets are constants. */
static inline __attribute__((always_inline)) unsigned
collect(const struct python_layout *L, struct py_frame *out, unsigned max, bool gil_held)
{
	void *f = innermost_frame(L, gil_held);
	unsigned n = 0;
	while (f && n < max) {
		uintptr_t code = LOAD(uintptr_t, f, L->frame_code);
		uintptr_t first = code + L->code_code_adaptive;
		uintptr_t prev = LOAD(uintptr_t, f, L->frame_prev_instr);
		uint8_t owner = LOAD(uint8_t, f, L->frame_owner);
		/* A frame still being set up has not reached its first traceable
		 * instruction; CPython skips those too (_PyFrame_IsIncomplete). */
		if (HW_LIKELY(owner == L->owner_generator ||
			      prev >= first + 2 * (uintptr_t)LOAD(int32_t, code, L->code_firsttraceable))) {
			out[n].code = code;
			out[n].lasti = (int32_t)(((intptr_t)prev - (intptr_t)first) / 2);
			out[n].is_entry = LOAD(uint8_t, f, L->frame_is_entry);
			n++;
		} else if (n && LOAD(uint8_t, f, L->frame_is_entry)) {
			out[n - 1].is_entry = 1;
		}
		f = LOAD(void *, f, L->frame_previous);
	}
	return n;
}

/* The same walk, writing frame keys (innermost first) for the Python-only
 * stack modes: no intermediate array, the generation read inline. */
static inline __attribute__((always_inline)) unsigned
collect_keys(const struct python_layout *L, struct frame_key *out, unsigned max, bool gil_held)
{
	void *f = innermost_frame(L, gil_held);
	unsigned n = 0;
	for (; f && n < max; f = LOAD(void *, f, L->frame_previous)) {
		uintptr_t code = LOAD(uintptr_t, f, L->frame_code);
		uintptr_t first = code + L->code_code_adaptive;
		uintptr_t prev = LOAD(uintptr_t, f, L->frame_prev_instr);
		if (HW_UNLIKELY(LOAD(uint8_t, f, L->frame_owner) != L->owner_generator &&
				prev < first + 2 * (uintptr_t)LOAD(int32_t, code, L->code_firsttraceable)))
			continue;
		uint64_t instr = (uint32_t)((int32_t)(((intptr_t)prev - (intptr_t)first) >> 1) + 1);
		out[n].a = code | HW_FRAME_KEY_PYTHON;
		out[n].b = instr | (uint64_t)stack_python_code_gen(code) << 32;
		n++;
	}
	return n;
}

static unsigned keys_row0(struct frame_key *out, unsigned max, bool gil_held)
{
	return collect_keys(&python_layouts[0], out, max, gil_held);
}

static unsigned keys_any(struct frame_key *out, unsigned max, bool gil_held)
{
	return collect_keys(g_py_layout, out, max, gil_held);
}

unsigned (*g_py_keys)(struct frame_key *out, unsigned max, bool gil_held) = keys_any;

static unsigned collect_row0(struct py_frame *out, unsigned max, bool gil_held)
{
	return collect(&python_layouts[0], out, max, gil_held);
}

static unsigned collect_any(struct py_frame *out, unsigned max, bool gil_held)
{
	return collect(g_py_layout, out, max, gil_held);
}

unsigned (*g_py_collect)(struct py_frame *out, unsigned max, bool gil_held) = collect_any;

void stack_python_use_layout(const struct python_layout *L)
{
	g_py_layout = L;
	bool row0 = L->min_version == python_layouts[0].min_version;
	g_py_collect = row0 ? collect_row0 : collect_any;
	g_py_keys = row0 ? keys_row0 : keys_any;
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
	unsigned kind = (state >> 2) & 7, compact = (state >> 5) & 1, ascii = (state >> 6) & 1;
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

static bool emit_code(struct thread_state *ts, uintptr_t code, uint32_t id)
{
	const struct python_layout *L = g_py_layout;
	char filename[HW_MAX_PATH], qualname[512];
	size_t flen = str_utf8(LOAD(uintptr_t, code, L->code_filename), filename, sizeof(filename));
	size_t qlen = str_utf8(LOAD(uintptr_t, code, L->code_qualname), qualname, sizeof(qualname));
	uintptr_t table = LOAD(uintptr_t, code, L->code_linetable);
	size_t tlen = table ? (size_t)LOAD(intptr_t, table, L->bytes_size) : 0;
	size_t room = writer_chunk_size() / 2;
	if (tlen > HW_MAX_LINETABLE)
		tlen = HW_MAX_LINETABLE;
	if (tlen + flen + qlen + 8 * HW_VARINT_MAX > room)
		tlen = 0; /* cannot fit: lines of this code object stay unknown */
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
	if (tlen)
		memcpy(p, (const void *)(table + L->bytes_data), tlen);
	p += tlen;
	tracker_commit(ts, p);
	return true;
}

uint32_t stack_python_code_id(struct thread_state *ts, uintptr_t code, uint32_t gen)
{
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
