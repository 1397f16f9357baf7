/* Offline symbolization (analyzer, symbolize stage): native addresses to
 * function, file:line and inlined frames through elfutils libdwfl, using the
 * module map recorded in the trace. */
#ifndef HW_ANALYZER_SYMBOLIZE_H
#define HW_ANALYZER_SYMBOLIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analysis.h"

struct frame_info {
	bool python;
	const char *function; /* NULL when unknown */
	const char *file; /* NULL when unknown */
	int line; /* 0 when unknown */
	const char *module; /* base name of the object, NULL when unknown */
	uint64_t ip;
	uint64_t module_offset;
	uint32_t module_id; /* the module file + 1 (0: none), for symbolizer_shown */
	int column; /* Python: the expression's column from 1 (UTF-8 bytes); 0 when unknown */
	bool show_column; /* text prints FILE:LINE:COLUMN (two rows would look the same) */
	bool thread_start; /* not a frame: the thread was started by the frames
			    * after it (issue 16 item 4); function says so */
	/* not a frame: at least that many Python frames between the ones
	 * before and after it were not recorded (a stack deeper than the shim keeps:
	 * HW_MAX_PY_FRAMES); function says so */
	uint32_t not_recorded;
};

struct symbolizer;

struct symbolizer *symbolizer_new(const struct analysis *a);
/* A symbolizer that opens no file: frames get module and offset only (for
 * the fuzzer: a hostile trace must not make the analyzer read arbitrary
 * files). */
struct symbolizer *symbolizer_new_offline(const struct analysis *a);
void symbolizer_free(struct symbolizer *s);
/* From now on every symbolizer is offline (the fuzzer: reports that make
 * their own symbolizer, like timelines, must not open files either). */
void symbolizer_offline_only(void);
/* --sysroot DIR: the traced program ran in DIR (a chroot, a container's
 * root): every module path of the trace is looked up under DIR, and so are
 * separate debug files (DIR/usr/lib/debug). A build-id that differs is still
 * a warning and leaves the module's frames unnamed. */
void symbolizer_set_sysroot(const char *dir);

/* Frames for one return address, innermost (inlined) first: at offset off
 * of module file mod (index + 1 into the analysis's files; 0 = no module,
 * off unused); ip is the address the trace had, shown in the reports. The
 * array is owned by the symbolizer and valid until the next call (copy it).
 * One library loaded at several addresses is one file: symbolized once. */
size_t symbolize_native(struct symbolizer *s, uint32_t mod, uint64_t off, uint64_t ip,
			const struct frame_info **out);

/* A report shows frame f: symbolizer_print_hints speaks only of frames a
 * report showed (a group-by report symbolizes whole stacks to find the
 * frame it shows; a tree joins rows by their whole stacks). */
void symbolizer_shown(struct symbolizer *s, const struct frame_info *f);

/* Opens a file a trace names for reading: only a regular file, and never
 * blocking (a FIFO, a device). Returns the descriptor, or -1 with errno
 * (EINVAL: not a regular file). */
int symbolize_open_regular(const char *path);

/* Prints, once, a hint for every module with shown frames that could not
 * be named (no symbols, file missing or unreadable, build-id mismatch). */
void symbolizer_print_hints(struct symbolizer *s);

#endif
