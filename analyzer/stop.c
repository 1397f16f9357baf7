/* Recording stopped early (analyzer, reader stage): the header's stop record
 * (trace_format.h) in words, for the reports and the gate. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "reader.h"
#include "util.h"

const char *trace_stop_code(const struct trace *t)
{
	switch (t->stop.reason) {
	case HW_STOP_NONE:
		return NULL;
	case HW_STOP_SIZE_CAP:
		return "size_cap";
	case HW_STOP_FSIZE:
		return "file_size_limit";
	case HW_STOP_MIN_FREE:
		return "min_free";
	case HW_STOP_REOPEN:
		return "reopen_failed";
	case HW_STOP_GROW:
		return "grow_failed";
	case HW_STOP_MAP:
		return "map_failed";
	default:
		return "other";
	}
}

const char *trace_stop_note(const struct trace *t, char *buf, size_t size)
{
	const struct hw_stop_record *s = &t->stop;
	if (!s->reason)
		return NULL;
	char b[32], why[200];
	/* errno values: the reasons that name a failed call */
	const char *err = s->value < 4096 ? strerror((int)s->value) : "unknown error";
	switch (s->reason) {
	case HW_STOP_SIZE_CAP:
		snprintf(why, sizeof(why), "the trace reached its size cap (HEAPWISE_MAX_SIZE, %s)",
			 fmt_size(b, s->value));
		break;
	case HW_STOP_FSIZE:
		snprintf(why, sizeof(why), "the trace reached the file size limit (ulimit -f, %s)",
			 fmt_size(b, s->value));
		break;
	case HW_STOP_MIN_FREE:
		snprintf(why, sizeof(why),
			 "the filesystem reached the free-space reserve (HEAPWISE_MIN_FREE, %s)",
			 fmt_size(b, s->value));
		break;
	case HW_STOP_REOPEN:
		snprintf(why, sizeof(why), "the trace file could not be reopened (%s)", err);
		break;
	case HW_STOP_GROW:
		snprintf(why, sizeof(why), "the trace file could not grow (%s)", err);
		break;
	case HW_STOP_MAP:
		snprintf(why, sizeof(why), "the trace file could not be mapped (%s)", err);
		break;
	default:
		snprintf(why, sizeof(why), "reason %" PRIu32 " (a newer heapwise's)", s->reason);
		break;
	}
	snprintf(buf, size, "recording stopped at %.3f s: %s: figures are up to then",
		 (double)s->time_ns / 1e9, why);
	return buf;
}
