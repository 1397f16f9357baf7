/* preload/python_layout.h against one CPython's own headers: compiled once per
 * interpreter whose headers are present (tests/meson.build passes -I for its
 * include directory and HW_PY_HEADERS, its path), it finds the row for this
 * PY_VERSION_HEX and build, and checks every field with offsetof(), the frame
 * owner numbers, the str state bits and (3.13+) where _Py_DebugOffsets
 * publishes each field. Then the shim's start-up check of a row against
 * debug offsets (python_layout_check_debug) accepts a copy of what this
 * interpreter would publish and refuses one that differs anywhere.
 * Prints what it checked; exits 1 on any difference. */
#define Py_BUILD_CORE 1
#include <Python.h>

/* first: 3.13t's pycore_stackref.h (through pycore_frame.h) calls
 * _PyObject_HasDeferredRefcount, which pycore_object.h declares */
#include <internal/pycore_object.h>
#include <internal/pycore_code.h>
#include <internal/pycore_frame.h>
#include <internal/pycore_pystate.h>
#include <internal/pycore_runtime.h>
#include <internal/pycore_interp.h>
#if __has_include(<internal/pycore_interpframe_structs.h>)
#include <internal/pycore_interpframe_structs.h>
#endif
#if __has_include(<internal/pycore_debug_offsets.h>)
#include <internal/pycore_debug_offsets.h>
#endif
#if __has_include(<internal/pycore_stackref.h>)
#include <internal/pycore_stackref.h>
#endif

#include <stdio.h>
#include <string.h>

#include "python_layout.h"

#ifdef Py_GIL_DISABLED
#define FT 1
#else
#define FT 0
#endif

static int failures, checked;

static void check(const char *row, const char *field, uint64_t have, uint64_t want)
{
	checked++;
	if (have == want)
		return;
	printf("  %s: .%s = %llu, but this interpreter's headers say %llu\n", row, field,
	       (unsigned long long)have, (unsigned long long)want);
	failures++;
}

#define CHECK(field, want) check(L->name, #field, (uint64_t)L->field, (uint64_t)(want))

/* The bit position of a str state bit field, found by setting it. */
#define STATE_SHIFT(member, value)                                                            \
	({                                                                                    \
		PyASCIIObject o_;                                                             \
		memset(&o_, 0, sizeof(o_));                                                   \
		o_.state.member = (value);                                                    \
		uint32_t w_;                                                                  \
		memcpy(&w_, (char *)&o_ + offsetof(PyASCIIObject, state), 4);                 \
		(unsigned)__builtin_ctz(w_);                                                  \
	})

static void check_row(const struct python_layout *L)
{
	CHECK(free_threaded, FT);
	CHECK(runtime_finalizing, offsetof(_PyRuntimeState, _finalizing));
#if PY_VERSION_HEX < 0x030c0000
	CHECK(runtime_tstate_current, offsetof(_PyRuntimeState, gilstate.tstate_current));
	CHECK(tstate_from, TSTATE_RUNTIME_GILSTATE);
#else
	CHECK(runtime_tstate_current, 0);
	CHECK(tstate_from, TSTATE_CURRENT_FUNCTION);
#endif
#if PY_VERSION_HEX >= 0x030d0000
	CHECK(has_debug_offsets, 1);
	check(L->name, "(debug_offsets at 0 of _PyRuntime)", 0, offsetof(_PyRuntimeState, debug_offsets));
#else
	CHECK(has_debug_offsets, 0);
#endif
	CHECK(ts_thread_id, offsetof(PyThreadState, thread_id));
#if PY_VERSION_HEX < 0x030d0000
	CHECK(ts_cframe, offsetof(PyThreadState, cframe));
	CHECK(frame_current, offsetof(_PyCFrame, current_frame));
	CHECK(frame_code, offsetof(_PyInterpreterFrame, f_code));
	CHECK(frame_instr, offsetof(_PyInterpreterFrame, prev_instr));
	CHECK(code_checked, 0);
#else
	CHECK(ts_cframe, 0);
	CHECK(frame_current, offsetof(PyThreadState, current_frame));
	CHECK(frame_code, offsetof(_PyInterpreterFrame, f_executable));
	CHECK(frame_instr, offsetof(_PyInterpreterFrame, instr_ptr));
	CHECK(code_checked, 1);
#endif
	CHECK(frame_previous, offsetof(_PyInterpreterFrame, previous));
	CHECK(frame_owner, offsetof(_PyInterpreterFrame, owner));
	check(L->name, "(sizeof owner)", 1, sizeof(((_PyInterpreterFrame *)0)->owner));
#if PY_VERSION_HEX < 0x030c0000
	CHECK(frame_is_entry, offsetof(_PyInterpreterFrame, is_entry));
	CHECK(owner_entry, 0);
#elif PY_VERSION_HEX < 0x030e0000
	CHECK(frame_is_entry, 0);
	CHECK(owner_entry, FRAME_OWNED_BY_CSTACK); /* the owner of ceval.c's entry_frame */
#else
	CHECK(frame_is_entry, 0);
	CHECK(owner_entry, FRAME_OWNED_BY_INTERPRETER); /* ceval.c's entry.frame */
#endif
#if PY_VERSION_HEX >= 0x030f0000
	CHECK(has_base_frame, 1);
	check(L->name, "(PyThreadState.base_frame)", 1, offsetof(PyThreadState, base_frame) > 0);
#else
	CHECK(has_base_frame, 0);
#endif
#if PY_VERSION_HEX >= 0x030e0000
	CHECK(code_tag_bits, Py_TAG_BITS);
#else
	CHECK(code_tag_bits, 0);
#endif
	CHECK(owner_generator, FRAME_OWNED_BY_GENERATOR);
#if FT && PY_VERSION_HEX >= 0x030e0000
	CHECK(frame_tlbc_index, offsetof(_PyInterpreterFrame, tlbc_index));
	CHECK(code_tlbc, offsetof(PyCodeObject, co_tlbc));
	CHECK(tlbc_entries, offsetof(_PyCodeArray, entries));
	check(L->name, "(_PyCodeArray.size at 0)", 0, offsetof(_PyCodeArray, size));
#else
	CHECK(frame_tlbc_index, 0);
	CHECK(code_tlbc, 0);
#endif
	CHECK(obj_type, offsetof(PyObject, ob_type));
	CHECK(code_firstlineno, offsetof(PyCodeObject, co_firstlineno));
	CHECK(code_filename, offsetof(PyCodeObject, co_filename));
	CHECK(code_qualname, offsetof(PyCodeObject, co_qualname));
	CHECK(code_linetable, offsetof(PyCodeObject, co_linetable));
	CHECK(code_firsttraceable, offsetof(PyCodeObject, _co_firsttraceable));
	CHECK(code_code_adaptive, offsetof(PyCodeObject, co_code_adaptive));
	check(L->name, "(sizeof _co_firsttraceable)", 4, sizeof(((PyCodeObject *)0)->_co_firsttraceable));
	check(L->name, "(sizeof co_firstlineno)", 4, sizeof(((PyCodeObject *)0)->co_firstlineno));
	CHECK(bytes_size, offsetof(PyVarObject, ob_size));
	CHECK(bytes_data, offsetof(PyBytesObject, ob_sval));
	CHECK(str_length, offsetof(PyASCIIObject, length));
	CHECK(str_state, offsetof(PyASCIIObject, state));
	CHECK(str_ascii_data, sizeof(PyASCIIObject));
	CHECK(str_utf8_length, offsetof(PyCompactUnicodeObject, utf8_length));
	CHECK(str_utf8, offsetof(PyCompactUnicodeObject, utf8));
	CHECK(str_compact_data, sizeof(PyCompactUnicodeObject));
	CHECK(str_kind_shift, STATE_SHIFT(kind, 1));
	CHECK(str_compact_shift, STATE_SHIFT(compact, 1));
	CHECK(str_ascii_shift, STATE_SHIFT(ascii, 1));
	CHECK(type_dealloc, offsetof(PyTypeObject, tp_dealloc));
	CHECK(type_flags, offsetof(PyTypeObject, tp_flags));
	CHECK(gc_head, FT ? 0 : sizeof(PyGC_Head));
	CHECK(interp_gc_collecting, offsetof(PyInterpreterState, gc.collecting));
	/* python_objects.c reads a thread state's interpreter there */
	check(L->name, "(PyThreadState.interp)", 2 * sizeof(void *), offsetof(PyThreadState, interp));
#if PY_VERSION_HEX < 0x030f0000
	CHECK(interp_gc_stats, offsetof(PyInterpreterState, gc.generation_stats));
	check(L->name, "(gc stats: 3 of collections, collected, uncollectable)", 0,
	      sizeof(((PyInterpreterState *)0)->gc.generation_stats) != 3 * 3 * sizeof(Py_ssize_t) ||
		      offsetof(struct gc_generation_stats, collected) != sizeof(Py_ssize_t) ||
		      offsetof(struct gc_generation_stats, uncollectable) != 2 * sizeof(Py_ssize_t));
#else
	CHECK(interp_gc_stats, 0);
#endif
#if PY_VERSION_HEX < 0x030d0000
	/* python_objects.c's free-list code knows these sizes and limits */
	CHECK(fl_float_numfree, offsetof(PyInterpreterState, float_state.numfree));
	CHECK(fl_float_head, offsetof(PyInterpreterState, float_state.free_list));
	CHECK(fl_tuple_heads, offsetof(PyInterpreterState, tuple.free_list));
	CHECK(fl_tuple_numfree, offsetof(PyInterpreterState, tuple.numfree));
	CHECK(fl_list_items, offsetof(PyInterpreterState, list.free_list));
	CHECK(fl_list_numfree, offsetof(PyInterpreterState, list.numfree));
	CHECK(fl_dict_items, offsetof(PyInterpreterState, dict_state.free_list));
	CHECK(fl_dict_numfree, offsetof(PyInterpreterState, dict_state.numfree));
	check(L->name, "(PyFloat_MAXFREELIST)", HW_PY_FLOAT_MAXFREE, PyFloat_MAXFREELIST);
	check(L->name, "(PyTuple_NFREELISTS)", HW_PY_TUPLE_NFREE, PyTuple_NFREELISTS);
	check(L->name, "(PyTuple_MAXFREELIST)", HW_PY_TUPLE_MAXFREE, PyTuple_MAXFREELIST);
	check(L->name, "(PyList_MAXFREELIST)", HW_PY_LIST_MAXFREE, PyList_MAXFREELIST);
	check(L->name, "(PyDict_MAXFREELIST)", HW_PY_DICT_MAXFREE, PyDict_MAXFREELIST);
	check(L->name, "(numfree ints)", 0,
	      sizeof(((PyInterpreterState *)0)->float_state.numfree) != 4 ||
		      sizeof(((PyInterpreterState *)0)->tuple.numfree[0]) != 4 ||
		      sizeof(((PyInterpreterState *)0)->list.numfree) != 4 ||
		      sizeof(((PyInterpreterState *)0)->dict_state.numfree) != 4);
#else
	CHECK(fl_float_numfree, 0);
	CHECK(fl_list_items, 0);
#endif

#if PY_VERSION_HEX >= 0x030d0000
#define DBG(field, path) check(L->name, "dbg." #field, L->dbg.field, offsetof(_Py_DebugOffsets, path))
	DBG(version, version);
	DBG(free_threaded, free_threaded);
	DBG(runtime_finalizing, runtime_state.finalizing);
	DBG(frame_current, thread_state.current_frame);
	DBG(frame_previous, interpreter_frame.previous);
	DBG(frame_code, interpreter_frame.executable);
	DBG(frame_instr, interpreter_frame.instr_ptr);
	DBG(frame_owner, interpreter_frame.owner);
	DBG(code_filename, code_object.filename);
	DBG(code_qualname, code_object.qualname);
	DBG(code_linetable, code_object.linetable);
	DBG(code_firstlineno, code_object.firstlineno);
	DBG(code_code_adaptive, code_object.co_code_adaptive);
	DBG(obj_type, pyobject.ob_type);
	DBG(bytes_size, bytes_object.ob_size);
	DBG(bytes_data, bytes_object.ob_sval);
	DBG(str_state, unicode_object.state);
	DBG(str_length, unicode_object.length);
	DBG(str_ascii_data, unicode_object.asciiobject_size);
#if FT && PY_VERSION_HEX >= 0x030e0000
	DBG(frame_tlbc_index, interpreter_frame.tlbc_index);
	DBG(code_tlbc, code_object.co_tlbc);
#else
	check(L->name, "dbg.frame_tlbc_index", L->dbg.frame_tlbc_index, 0);
	check(L->name, "dbg.code_tlbc", L->dbg.code_tlbc, 0);
#endif
#else
	struct python_debug_positions none;
	memset(&none, 0, sizeof(none));
	check(L->name, "dbg (none before 3.13)", memcmp(&L->dbg, &none, sizeof(none)) != 0, 0);
#endif
}

/* The start-up check: an image of _PyRuntime's head as this interpreter
 * publishes it passes; each published field changed in turn fails, naming it. */
static void check_debug_check(const struct python_layout *L)
{
#if PY_VERSION_HEX >= 0x030d0000
	static _Py_DebugOffsets d;
	memset(&d, 0, sizeof(d));
	memcpy(d.cookie, _Py_Debug_Cookie, sizeof(d.cookie));
	d.version = PY_VERSION_HEX;
	d.free_threaded = FT;
#define SET(field, path) d.path = L->field
	SET(runtime_finalizing, runtime_state.finalizing);
	SET(frame_current, thread_state.current_frame);
	SET(frame_previous, interpreter_frame.previous);
	SET(frame_code, interpreter_frame.executable);
	SET(frame_instr, interpreter_frame.instr_ptr);
	SET(frame_owner, interpreter_frame.owner);
	SET(code_filename, code_object.filename);
	SET(code_qualname, code_object.qualname);
	SET(code_linetable, code_object.linetable);
	SET(code_firstlineno, code_object.firstlineno);
	SET(code_code_adaptive, code_object.co_code_adaptive);
	SET(obj_type, pyobject.ob_type);
	SET(bytes_size, bytes_object.ob_size);
	SET(bytes_data, bytes_object.ob_sval);
	SET(str_state, unicode_object.state);
	SET(str_length, unicode_object.length);
	SET(str_ascii_data, unicode_object.asciiobject_size);
#if FT && PY_VERSION_HEX >= 0x030e0000
	SET(frame_tlbc_index, interpreter_frame.tlbc_index);
	SET(code_tlbc, code_object.co_tlbc);
#endif
	char why[256];
	checked++;
	if (!python_layout_check_debug(L, &d, PY_VERSION_HEX, why, sizeof(why))) {
		printf("  %s: the debug offsets this interpreter publishes were refused: %s\n", L->name, why);
		failures++;
	}
	/* every published position, changed, is noticed */
	unsigned char *img = (unsigned char *)&d;
	uint16_t pos[] = {
#define HW_X(f) L->dbg.f,
		HW_PY_DEBUG_FIELDS(HW_X)
#undef HW_X
	};
	for (size_t i = 0; i < sizeof(pos) / sizeof(pos[0]); i++) {
		if (!pos[i])
			continue;
		checked++;
		img[pos[i]] ^= 8;
		if (python_layout_check_debug(L, &d, PY_VERSION_HEX, why, sizeof(why))) {
			printf("  %s: a changed debug offset at %u was not noticed\n", L->name, pos[i]);
			failures++;
		}
		img[pos[i]] ^= 8;
	}
	checked++;
	d.cookie[0] ^= 1;
	if (python_layout_check_debug(L, &d, PY_VERSION_HEX, why, sizeof(why))) {
		printf("  %s: a wrong cookie was not noticed\n", L->name);
		failures++;
	}
	d.cookie[0] ^= 1;
	checked++;
	d.free_threaded ^= 1;
	if (python_layout_check_debug(L, &d, PY_VERSION_HEX, why, sizeof(why))) {
		printf("  %s: a wrong free_threaded was not noticed\n", L->name);
		failures++;
	}
	d.free_threaded ^= 1;
#else
	(void)L;
#endif
}

int main(void)
{
	const char *build = FT ? " free-threaded" : "";
	const struct python_layout *L = python_layout_find(PY_VERSION_HEX, FT);
	if (!L) {
		/* not an error: the shim runs such a version with Python frames
		 * off (the integration tests require rows for 3.11 to 3.15) */
		printf("norow %s%s (%s): python_layout.h has no row for this version\n", PY_VERSION,
		       build, HW_PY_HEADERS);
		return 0;
	}
	check_row(L);
	check_debug_check(L);
	printf("%s %s%s: row %s, %d checks against %s%s\n", failures ? "FAIL" : "ok", PY_VERSION,
	       build, L->name, checked, HW_PY_HEADERS, failures ? "" : ", all equal");
	return failures ? 1 : 0;
}
