/* CPython struct offsets the shim reads (shim, stacks stage): the only place
 * in preload/ that knows a CPython struct. One row per (minor version,
 * free-threaded build); the frame walker (stack_python.c) is instantiated
 * per row so every offset is a constant there. Every row is checked with
 * offsetof() against that version's own headers by
 * tests/unit/test_python_layout.c (once per interpreter whose headers are
 * present); from 3.13 on the shim also checks its row at start against the
 * interpreter's own _PyRuntime.debug_offsets (the `dbg` positions below) and
 * turns Python frames off on any difference.
 *
 * Adding a field: give it a name here, set it in every row where the
 * interpreter has it, and check it in test_python_layout.c. Optional fields
 * (marked "0: absent") use 0 for "this version has no such field": none of
 * them can be at offset 0 of its struct. */
#ifndef HW_PRELOAD_PYTHON_LAYOUT_H
#define HW_PRELOAD_PYTHON_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifndef HW_PY_FORMAT /* the shim formats with log_snprintf, which never allocates */
#include <stdio.h>
#define HW_PY_FORMAT snprintf
#endif

/* How the walker finds the thread state of a thread that called a PyMem hook
 * (it has an attached thread state); other threads always use
 * PyGILState_GetThisThreadState(). */
enum python_tstate_from {
	/* 3.11: _PyRuntime.gilstate.tstate_current (the GIL holder), checked
	 * against pthread_self() */
	TSTATE_RUNTIME_GILSTATE = 0,
	/* 3.12+: _PyThreadState_GetCurrent() (the attached thread state, a
	 * thread-local of the interpreter) */
	TSTATE_CURRENT_FUNCTION = 1,
};

/* Fields that _Py_DebugOffsets (3.13+) publishes, by their name in struct
 * python_layout: the shim compares each with the interpreter's own value. */
#define HW_PY_DEBUG_FIELDS(X)                                                    \
	X(runtime_finalizing)                                                    \
	X(frame_current)                                                         \
	X(frame_previous)                                                        \
	X(frame_code)                                                            \
	X(frame_instr)                                                           \
	X(frame_owner)                                                           \
	X(frame_tlbc_index)                                                      \
	X(code_filename)                                                         \
	X(code_qualname)                                                         \
	X(code_linetable)                                                        \
	X(code_firstlineno)                                                      \
	X(code_code_adaptive)                                                    \
	X(code_tlbc)                                                             \
	X(obj_type)                                                              \
	X(bytes_size)                                                            \
	X(bytes_data)                                                            \
	X(str_state)                                                             \
	X(str_length)                                                            \
	X(str_ascii_data)

/* Positions inside _Py_DebugOffsets (0: not published by this version). */
struct python_debug_positions {
	uint16_t version, free_threaded;
#define HW_X(f) uint16_t f;
	HW_PY_DEBUG_FIELDS(HW_X)
#undef HW_X
};

struct python_layout {
	uint32_t min_version, max_version; /* Py_Version range (PY_VERSION_HEX) */
	bool free_threaded; /* a Py_GIL_DISABLED build */
	const char *name; /* "3.13t" */

	/* _PyRuntimeState */
	uint16_t runtime_finalizing; /* _finalizing: the finalizing thread's state */
	uint16_t runtime_tstate_current; /* gilstate.tstate_current (TSTATE_RUNTIME_GILSTATE) */
	bool has_debug_offsets; /* debug_offsets, at offset 0 (3.13+) */
	uint8_t tstate_from; /* enum python_tstate_from */

	/* PyThreadState */
	uint16_t ts_thread_id; /* thread_id (pthread_self()) */
	uint16_t ts_cframe; /* cframe (3.11, 3.12); 0: absent, the frame is in the thread state */
	uint16_t frame_current; /* current_frame: of _PyCFrame, else of PyThreadState */

	/* _PyInterpreterFrame */
	uint16_t frame_code; /* f_code (3.11, 3.12), f_executable (3.13+) */
	uint16_t frame_previous;
	uint16_t frame_instr; /* prev_instr (3.11, 3.12), instr_ptr (3.13+): the
			       * instruction running (or just run); both give
			       * the instruction index as (ptr - bytecode) / 2 */
	uint16_t frame_is_entry; /* is_entry (3.11); 0: absent */
	uint16_t frame_owner;
	uint16_t frame_tlbc_index; /* tlbc_index (3.14t); 0: absent */
	uint8_t owner_generator; /* FRAME_OWNED_BY_GENERATOR */
	uint8_t owner_entry; /* the owner of each eval call's entry frame (3.12+:
			      * FRAME_OWNED_BY_CSTACK in 3.12 and 3.13,
			      * FRAME_OWNED_BY_INTERPRETER from 3.14; owners from
			      * it on are never Python frames); 0: absent (3.11:
			      * is_entry) */
	bool has_base_frame; /* 3.15+: the chain ends at the thread state's
			      * base frame (owner_entry, no previous), which
			      * no eval call pushed */
	bool code_checked; /* f_executable may be None or another object (3.13+) */
	uintptr_t code_tag_bits; /* _PyStackRef tag bits of f_executable (3.14+) */

	/* PyObject, PyCodeObject, bytes, str, type */
	uint16_t obj_type; /* ob_type: 8, 24 in free-threaded builds */
	uint16_t code_firstlineno;
	uint16_t code_filename;
	uint16_t code_qualname;
	uint16_t code_linetable;
	uint16_t code_firsttraceable;
	uint16_t code_code_adaptive; /* first code unit */
	uint16_t code_tlbc; /* co_tlbc (3.14t): per-thread bytecode copies; 0: absent */
	uint16_t tlbc_entries; /* _PyCodeArray.entries */
	uint16_t bytes_size; /* PyVarObject.ob_size */
	uint16_t bytes_data; /* PyBytesObject.ob_sval */
	uint16_t str_length; /* PyASCIIObject.length */
	uint16_t str_state;
	uint16_t str_ascii_data; /* sizeof(PyASCIIObject) */
	uint16_t str_utf8_length; /* PyCompactUnicodeObject.utf8_length */
	uint16_t str_utf8;
	uint16_t str_compact_data; /* sizeof(PyCompactUnicodeObject) */
	uint8_t str_kind_shift, str_compact_shift, str_ascii_shift; /* bits of state */
	uint16_t type_dealloc; /* PyTypeObject.tp_dealloc */
	uint16_t type_flags; /* PyTypeObject.tp_flags */
	uint8_t gc_head; /* bytes of PyGC_Head before a GC object (0: free-threaded) */

	/* PyInterpreterState (python_objects.c: GC marks, free lists) */
	uint32_t interp_gc_collecting; /* gc.collecting (int) */
	uint32_t interp_gc_stats; /* gc.generation_stats[3] of {collections,
				   * collected, uncollectable}; 0: absent (3.15
				   * keeps them elsewhere) */
	/* The free lists of 3.11 and 3.12 (3.13+ reports reuse through
	 * PyRefTracer; 0: absent): float_state {numfree, free_list}, tuple
	 * {free_list[20], numfree[20]}, list {free_list[80], numfree},
	 * dict_state {free_list[80], numfree} */
	uint32_t fl_float_numfree, fl_float_head;
	uint32_t fl_tuple_heads, fl_tuple_numfree;
	uint32_t fl_list_items, fl_list_numfree;
	uint32_t fl_dict_items, fl_dict_numfree;

	struct python_debug_positions dbg; /* where _Py_DebugOffsets says the same */
};

/* The free-list limits of 3.11 and 3.12 (the same in both; checked against
 * their headers) */
#define HW_PY_FLOAT_MAXFREE 100
#define HW_PY_TUPLE_NFREE 20
#define HW_PY_TUPLE_MAXFREE 2000
#define HW_PY_LIST_MAXFREE 80
#define HW_PY_DICT_MAXFREE 80

/* The rows. The walker is instantiated once per row (HW_PY_ROW_INDEXES). */
static const struct python_layout python_layouts[] = {
	{
		/* 3.11.0 - 3.11.x: checked on Debian 3.11.2 and pyenv 3.11.7 */
		.min_version = 0x030b00f0,
		.max_version = 0x030bffff,
		.name = "3.11",
		.runtime_finalizing = 24,
		.runtime_tstate_current = 576,
		.tstate_from = TSTATE_RUNTIME_GILSTATE,
		.ts_thread_id = 152,
		.ts_cframe = 56,
		.frame_current = 8,
		.frame_code = 32,
		.frame_previous = 48,
		.frame_instr = 56,
		.frame_is_entry = 68,
		.frame_owner = 69,
		.owner_generator = 1,
		.obj_type = 8,
		.code_firstlineno = 72,
		.code_filename = 112,
		.code_qualname = 128,
		.code_linetable = 136,
		.code_firsttraceable = 168,
		.code_code_adaptive = 184,
		.bytes_size = 16,
		.bytes_data = 32,
		.str_length = 16,
		.str_state = 32,
		.str_ascii_data = 48,
		.str_utf8_length = 48,
		.str_utf8 = 56,
		.str_compact_data = 72,
		.str_kind_shift = 2,
		.str_compact_shift = 5,
		.str_ascii_shift = 6,
		.type_dealloc = 48,
		.type_flags = 168,
		.gc_head = 16,
		.interp_gc_collecting = 848,
		.interp_gc_stats = 776,
		.fl_float_numfree = 3608,
		.fl_float_head = 3616,
		.fl_tuple_heads = 3632,
		.fl_tuple_numfree = 3792,
		.fl_list_items = 3872,
		.fl_list_numfree = 4512,
		.fl_dict_items = 4520,
		.fl_dict_numfree = 5160,
	},
	{
		/* 3.12: the thread state is a thread-local (no gilstate.tstate_current);
		 * no is_entry: each eval call pushes an entry frame owned by the C stack */
		.min_version = 0x030c0000,
		.max_version = 0x030cffff,
		.name = "3.12",
		.runtime_finalizing = 24,
		.tstate_from = TSTATE_CURRENT_FUNCTION,
		.ts_thread_id = 136,
		.ts_cframe = 56,
		.frame_current = 0,
		.frame_code = 0,
		.frame_previous = 8,
		.frame_instr = 56,
		.frame_owner = 70,
		.owner_generator = 1,
		.owner_entry = 3,
		.obj_type = 8,
		.code_firstlineno = 68,
		.code_filename = 112,
		.code_qualname = 128,
		.code_linetable = 136,
		.code_firsttraceable = 176,
		.code_code_adaptive = 192,
		.bytes_size = 16,
		.bytes_data = 32,
		.str_length = 16,
		.str_state = 32,
		.str_ascii_data = 40,
		.str_utf8_length = 40,
		.str_utf8 = 48,
		.str_compact_data = 56,
		.str_kind_shift = 2,
		.str_compact_shift = 5,
		.str_ascii_shift = 6,
		.type_dealloc = 48,
		.type_flags = 168,
		.gc_head = 16,
		.interp_gc_collecting = 312,
		.interp_gc_stats = 240,
		.fl_float_numfree = 267408,
		.fl_float_head = 267416,
		.fl_tuple_heads = 269832,
		.fl_tuple_numfree = 269992,
		.fl_list_items = 270072,
		.fl_list_numfree = 270712,
		.fl_dict_items = 270736,
		.fl_dict_numfree = 272016,
	},
	{
		/* 3.13: current_frame in the thread state, f_executable (a code
		 * object, None or another object), instr_ptr; debug offsets */
		.min_version = 0x030d0000,
		.max_version = 0x030dffff,
		.name = "3.13",
		.runtime_finalizing = 608,
		.has_debug_offsets = true,
		.tstate_from = TSTATE_CURRENT_FUNCTION,
		.ts_thread_id = 152,
		.frame_current = 72,
		.frame_code = 0,
		.frame_previous = 8,
		.frame_instr = 56,
		.frame_owner = 70,
		.owner_generator = 1,
		.owner_entry = 3,
		.code_checked = true,
		.obj_type = 8,
		.code_firstlineno = 68,
		.code_filename = 112,
		.code_qualname = 128,
		.code_linetable = 136,
		.code_firsttraceable = 184,
		.code_code_adaptive = 200,
		.bytes_size = 16,
		.bytes_data = 32,
		.str_length = 16,
		.str_state = 32,
		.str_ascii_data = 40,
		.str_utf8_length = 40,
		.str_utf8 = 48,
		.str_compact_data = 56,
		.str_kind_shift = 2,
		.str_compact_shift = 5,
		.str_ascii_shift = 6,
		.type_dealloc = 48,
		.type_flags = 168,
		.gc_head = 16,
		.interp_gc_collecting = 7600,
		.interp_gc_stats = 7528,
		.dbg = {.version = 8, .free_threaded = 16, .runtime_finalizing = 32,
			.frame_current = 184, .frame_previous = 232, .frame_code = 240,
			.frame_instr = 248, .frame_owner = 264, .code_filename = 280,
			.code_qualname = 296, .code_linetable = 304, .code_firstlineno = 312,
			.code_code_adaptive = 344, .obj_type = 360, .bytes_size = 520,
			.bytes_data = 528, .str_state = 544, .str_length = 552,
			.str_ascii_data = 560},
	},
	{
		/* 3.13t: free-threaded (PyObject is 32 bytes: object fields move;
		 * no per-thread bytecode yet) */
		.min_version = 0x030d0000,
		.max_version = 0x030dffff,
		.free_threaded = true,
		.name = "3.13t",
		.runtime_finalizing = 608,
		.has_debug_offsets = true,
		.tstate_from = TSTATE_CURRENT_FUNCTION,
		.ts_thread_id = 152,
		.frame_current = 72,
		.frame_code = 0,
		.frame_previous = 8,
		.frame_instr = 56,
		.frame_owner = 70,
		.owner_generator = 1,
		.owner_entry = 3,
		.code_checked = true,
		.obj_type = 24,
		.code_firstlineno = 84,
		.code_filename = 128,
		.code_qualname = 144,
		.code_linetable = 152,
		.code_firsttraceable = 200,
		.code_code_adaptive = 216,
		.bytes_size = 32,
		.bytes_data = 48,
		.str_length = 32,
		.str_state = 48,
		.str_ascii_data = 56,
		.str_utf8_length = 56,
		.str_utf8 = 64,
		.str_compact_data = 72,
		.str_kind_shift = 2,
		.str_compact_shift = 5,
		.str_ascii_shift = 6,
		.type_dealloc = 64,
		.type_flags = 184,
		.gc_head = 0,
		.interp_gc_collecting = 7600,
		.interp_gc_stats = 7528,
		.dbg = {.version = 8, .free_threaded = 16, .runtime_finalizing = 32,
			.frame_current = 184, .frame_previous = 232, .frame_code = 240,
			.frame_instr = 248, .frame_owner = 264, .code_filename = 280,
			.code_qualname = 296, .code_linetable = 304, .code_firstlineno = 312,
			.code_code_adaptive = 344, .obj_type = 360, .bytes_size = 520,
			.bytes_data = 528, .str_state = 544, .str_length = 552,
			.str_ascii_data = 560},
	},
	{
		/* 3.14: f_executable is a _PyStackRef; the entry frame's owner is
		 * FRAME_OWNED_BY_INTERPRETER (3), FRAME_OWNED_BY_CSTACK moved to 4 */
		.min_version = 0x030e0000,
		.max_version = 0x030effff,
		.name = "3.14",
		.runtime_finalizing = 784,
		.has_debug_offsets = true,
		.tstate_from = TSTATE_CURRENT_FUNCTION,
		.ts_thread_id = 152,
		.frame_current = 72,
		.frame_code = 0,
		.frame_previous = 8,
		.frame_instr = 56,
		.frame_owner = 74,
		.owner_generator = 1,
		.owner_entry = 3,
		.code_checked = true,
		.code_tag_bits = 3,
		.obj_type = 8,
		.code_firstlineno = 68,
		.code_filename = 112,
		.code_qualname = 128,
		.code_linetable = 136,
		.code_firsttraceable = 192,
		.code_code_adaptive = 208,
		.bytes_size = 16,
		.bytes_data = 32,
		.str_length = 16,
		.str_state = 32,
		.str_ascii_data = 40,
		.str_utf8_length = 40,
		.str_utf8 = 48,
		.str_compact_data = 56,
		.str_kind_shift = 2,
		.str_compact_shift = 5,
		.str_ascii_shift = 6,
		.type_dealloc = 48,
		.type_flags = 168,
		.gc_head = 16,
		.interp_gc_collecting = 7600,
		.interp_gc_stats = 7528,
		.dbg = {.version = 8, .free_threaded = 16, .runtime_finalizing = 32,
			.frame_current = 208, .frame_previous = 256, .frame_code = 264,
			.frame_instr = 272, .frame_owner = 288, .code_filename = 320,
			.code_qualname = 336, .code_linetable = 344, .code_firstlineno = 352,
			.code_code_adaptive = 384, .obj_type = 408, .bytes_size = 600,
			.bytes_data = 608, .str_state = 624, .str_length = 632,
			.str_ascii_data = 640},
	},
	{
		/* 3.15: no FRAME_OWNED_BY_CSTACK; every thread's chain ends at
		 * the thread state's base frame */
		.min_version = 0x030f0000,
		.max_version = 0x030fffff,
		.name = "3.15",
		.runtime_finalizing = 912,
		.has_debug_offsets = true,
		.tstate_from = TSTATE_CURRENT_FUNCTION,
		.ts_thread_id = 176,
		.frame_current = 72,
		.frame_code = 0,
		.frame_previous = 8,
		.frame_instr = 56,
		.frame_owner = 74,
		.owner_generator = 1,
		.owner_entry = 3,
		.has_base_frame = true,
		.code_checked = true,
		.code_tag_bits = 3,
		.obj_type = 8,
		.code_firstlineno = 68,
		.code_filename = 112,
		.code_qualname = 128,
		.code_linetable = 136,
		.code_firsttraceable = 192,
		.code_code_adaptive = 208,
		.bytes_size = 16,
		.bytes_data = 32,
		.str_length = 16,
		.str_state = 32,
		.str_ascii_data = 40,
		.str_utf8_length = 40,
		.str_utf8 = 48,
		.str_compact_data = 56,
		.str_kind_shift = 2,
		.str_compact_shift = 5,
		.str_ascii_shift = 6,
		.type_dealloc = 48,
		.type_flags = 168,
		.gc_head = 16,
		.interp_gc_collecting = 7512,
		.dbg = {.version = 8, .free_threaded = 16, .runtime_finalizing = 32,
			.frame_current = 208, .frame_previous = 320, .frame_code = 328,
			.frame_instr = 336, .frame_owner = 352, .code_filename = 384,
			.code_qualname = 400, .code_linetable = 408, .code_firstlineno = 416,
			.code_code_adaptive = 448, .obj_type = 472, .bytes_size = 696,
			.bytes_data = 704, .str_state = 720, .str_length = 728,
			.str_ascii_data = 736},
	},
	{
		/* 3.14t: free-threaded (PyObject is 32 bytes: every object field
		 * moves; str state's interned is a whole byte); a thread may run a
		 * copy of the bytecode of its own (tlbc_index into co_tlbc) */
		.min_version = 0x030e0000,
		.max_version = 0x030effff,
		.free_threaded = true,
		.name = "3.14t",
		.runtime_finalizing = 784,
		.has_debug_offsets = true,
		.tstate_from = TSTATE_CURRENT_FUNCTION,
		.ts_thread_id = 152,
		.frame_current = 72,
		.frame_code = 0,
		.frame_previous = 8,
		.frame_instr = 56,
		.frame_owner = 78,
		.frame_tlbc_index = 72,
		.owner_generator = 1,
		.owner_entry = 3,
		.code_checked = true,
		.code_tag_bits = 1,
		.obj_type = 24,
		.code_firstlineno = 84,
		.code_filename = 128,
		.code_qualname = 144,
		.code_linetable = 152,
		.code_firsttraceable = 208,
		.code_code_adaptive = 232,
		.code_tlbc = 224,
		.tlbc_entries = 8,
		.bytes_size = 32,
		.bytes_data = 48,
		.str_length = 32,
		.str_state = 48,
		.str_ascii_data = 56,
		.str_utf8_length = 56,
		.str_utf8 = 64,
		.str_compact_data = 72,
		.str_kind_shift = 8,
		.str_compact_shift = 11,
		.str_ascii_shift = 12,
		.type_dealloc = 64,
		.type_flags = 184,
		.gc_head = 0,
		.interp_gc_collecting = 7600,
		.interp_gc_stats = 7528,
		.dbg = {.version = 8, .free_threaded = 16, .runtime_finalizing = 32,
			.frame_current = 208, .frame_previous = 256, .frame_code = 264,
			.frame_instr = 272, .frame_owner = 288, .frame_tlbc_index = 304,
			.code_filename = 320, .code_qualname = 336, .code_linetable = 344,
			.code_firstlineno = 352, .code_code_adaptive = 384, .code_tlbc = 392,
			.obj_type = 408, .bytes_size = 600, .bytes_data = 608, .str_state = 624,
			.str_length = 632, .str_ascii_data = 640},
	},
};

#define HW_PY_ROW_INDEXES(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6)

_Static_assert(sizeof(python_layouts) / sizeof(python_layouts[0]) == 7,
	       "HW_PY_ROW_INDEXES must list every row");

/* The row for a Py_Version value and build, or NULL. */
static inline const struct python_layout *python_layout_find(uint32_t version, bool free_threaded)
{
	for (size_t i = 0; i < sizeof(python_layouts) / sizeof(python_layouts[0]); i++)
		if (version >= python_layouts[i].min_version &&
		    version <= python_layouts[i].max_version &&
		    python_layouts[i].free_threaded == free_threaded)
			return &python_layouts[i];
	return NULL;
}

/* Checks a row against the interpreter's _Py_DebugOffsets (3.13+): the
 * cookie, the version, the build and every offset the row uses that the
 * interpreter publishes. Returns false with why (one line) on a difference. */
static inline bool python_layout_check_debug(const struct python_layout *L, const void *dbg,
					     uint32_t version, char *why, size_t cap)
{
	const unsigned char *d = dbg;
	static const struct {
		const char *name;
		uint16_t row, pos;
	} fields[] = {
#define HW_X(f) {#f, offsetof(struct python_layout, f), offsetof(struct python_debug_positions, f)},
		HW_PY_DEBUG_FIELDS(HW_X)
#undef HW_X
	};
	uint64_t v;
	if (memcmp(d, "xdebugpy", 8) != 0) {
		HW_PY_FORMAT(why, cap, "no debug offsets cookie in _PyRuntime");
		return false;
	}
	memcpy(&v, d + L->dbg.version, 8);
	if (v != version) {
		HW_PY_FORMAT(why, cap, "debug offsets of version %x, Py_Version %x", (unsigned)v,
			     (unsigned)version);
		return false;
	}
	memcpy(&v, d + L->dbg.free_threaded, 8);
	if (v != L->free_threaded) {
		HW_PY_FORMAT(why, cap, "the interpreter says free_threaded=%llu", (unsigned long long)v);
		return false;
	}
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		uint16_t pos, want;
		memcpy(&pos, (const char *)&L->dbg + fields[i].pos, 2);
		memcpy(&want, (const char *)L + fields[i].row, 2);
		if (!pos)
			continue;
		memcpy(&v, d + pos, 8);
		if (v != want) {
			HW_PY_FORMAT(why, cap, "the interpreter's debug offsets say %s is %llu, layout %s says %u",
				 fields[i].name, (unsigned long long)v, L->name, want);
			return false;
		}
	}
	return true;
}

#endif
