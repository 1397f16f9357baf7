/* heapwise's public API for programs that want to talk to the tracer:
 * markers that delimit a window of interest (`heapwise check --between A B`).
 * Every function is a no-op when the program does not run under heapwise:
 * the declarations are weak, so a program links and runs without the shim.
 *
 *   #include <heapwise/heapwise.h>
 *   HW_MARK("request-start");
 *
 * From Python: ctypes.CDLL(None).hw_mark(b"label") when the shim is loaded
 * (look the symbol up with getattr; it is missing otherwise). */
#ifndef HEAPWISE_HEAPWISE_H
#define HEAPWISE_HEAPWISE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Records a marker with this label (at most 255 bytes are kept), ordered
 * with the allocations around it. Async-signal-unsafe, thread-safe. */
__attribute__((weak)) void hw_mark(const char *label);

/* The absolute path of the trace file this process writes, or NULL when it
 * is not traced. Also when recording stopped early (a size limit, an I/O
 * error): the file's header then says so, and `heapwise check` refuses to
 * judge it (exit 2) unless --allow-incomplete. */
__attribute__((weak)) const char *hw_trace_path(void);

#define HW_MARK(label)                                                                    \
	do {                                                                              \
		if (hw_mark)                                                              \
			hw_mark(label);                                                   \
	} while (0)

#ifdef __cplusplus
}
#endif

#endif
