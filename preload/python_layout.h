/* CPython struct offsets the shim reads (shim, stacks stage), one row per
 * interpreter version. Every row was checked with offsetof() against that
 * version's own headers (tests/unit/test_python_layout.c does it again for
 * each interpreter it finds). 3.13 and later publish _Py_DebugOffsets; rows
 * for them come from there when they are added. */
#ifndef HW_PRELOAD_PYTHON_LAYOUT_H
#define HW_PRELOAD_PYTHON_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

struct python_layout {
	uint32_t min_version, max_version; /* Py_Version range (PY_VERSION_HEX) */
	const char *name;
	uint16_t runtime_tstate_current; /* _PyRuntimeState.gilstate.tstate_current */
	uint16_t runtime_finalizing; /* _PyRuntimeState._finalizing */
	uint16_t ts_thread_id; /* PyThreadState.thread_id (pthread_self()) */
	uint16_t ts_cframe; /* PyThreadState.cframe */
	uint16_t cframe_current_frame; /* _PyCFrame.current_frame */
	uint16_t frame_code; /* _PyInterpreterFrame.f_code */
	uint16_t frame_previous;
	uint16_t frame_prev_instr;
	uint16_t frame_is_entry;
	uint16_t frame_owner;
	uint16_t code_firstlineno;
	uint16_t code_filename;
	uint16_t code_qualname;
	uint16_t code_linetable;
	uint16_t code_firsttraceable;
	uint16_t code_code_adaptive; /* first code unit */
	uint16_t bytes_size; /* PyVarObject.ob_size */
	uint16_t bytes_data; /* PyBytesObject.ob_sval */
	uint16_t str_length; /* PyASCIIObject.length */
	uint16_t str_state;
	uint16_t str_ascii_data; /* sizeof(PyASCIIObject) */
	uint16_t str_utf8_length; /* PyCompactUnicodeObject.utf8_length */
	uint16_t str_utf8;
	uint16_t str_compact_data; /* sizeof(PyCompactUnicodeObject) */
	uint16_t type_dealloc; /* PyTypeObject.tp_dealloc */
	uint8_t owner_generator; /* FRAME_OWNED_BY_GENERATOR */
};

static const struct python_layout python_layouts[] = {
	{
		/* 3.11.0 - 3.11.x: checked on Debian 3.11.2 and pyenv 3.11.7 */
		.min_version = 0x030b00f0,
		.max_version = 0x030bffff,
		.name = "3.11",
		.runtime_tstate_current = 576,
		.runtime_finalizing = 24,
		.ts_thread_id = 152,
		.ts_cframe = 56,
		.cframe_current_frame = 8,
		.frame_code = 32,
		.frame_previous = 48,
		.frame_prev_instr = 56,
		.frame_is_entry = 68,
		.frame_owner = 69,
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
		.type_dealloc = 48,
		.owner_generator = 1,
	},
};

/* The row for a Py_Version value, or NULL. */
static inline const struct python_layout *python_layout_find(uint32_t version)
{
	for (size_t i = 0; i < sizeof(python_layouts) / sizeof(python_layouts[0]); i++)
		if (version >= python_layouts[i].min_version && version <= python_layouts[i].max_version)
			return &python_layouts[i];
	return NULL;
}

#endif
