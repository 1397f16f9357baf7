/* The shim's public API (include/heapwise/heapwise.h): markers and the trace
 * path, exported next to the interposed allocator functions. */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "heapwise/compiler.h"
#include "heapwise/trace_format.h"
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

HW_EXPORT const char *hw_trace_path(void)
{
	if (atomic_load(&g_run_state) != RUN_ON || !writer_ok())
		return NULL;
	return writer_path();
}
