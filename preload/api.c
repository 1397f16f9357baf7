/* The shim's public API (include/heapwise/heapwise.h): markers and the trace
 * path, exported next to the interposed allocator functions. */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "heapwise/compiler.h"
#include "heapwise/trace_format.h"
#include "proc.h"
#include "tracker.h"
#include "writer.h"

HW_EXPORT void hw_mark(const char *label)
{
	struct thread_state *ts = tracker_enter();
	if (!ts)
		return;
	int saved = errno;
	tracker_mark(ts, HW_MARK_USER, label ? label : "");
	errno = saved;
	tracker_leave();
}

/* Also once recording stopped (a limit, an I/O error): the file is there and
 * says so in its header, which the analyzer reports and `check` refuses to
 * judge; NULL would tell the program it is not traced at all. */
HW_EXPORT const char *hw_trace_path(void)
{
	if (!writer_made() || proc_wiped())
		return NULL;
	return writer_path();
}
