/* Timelines (analyzer, reports stage): live bytes over time per callsite. */
#ifndef HW_ANALYZER_REPORT_TIMELINE_H
#define HW_ANALYZER_REPORT_TIMELINE_H

#include <stdio.h>

#include "analysis.h"
#include "err.h"
#include "report.h"

enum timeline_format { TIMELINE_JSON, TIMELINE_CSV, TIMELINE_SVG, TIMELINE_HTML };

/* Replays the trace twice (see report_timeline.c) and writes the live bytes
 * of the top n callsites (grouped by stack, line, function or file) over 400
 * intervals, "other", the RSS and the markers. */
enum hw_err report_timeline(FILE *f, struct trace *t, const struct analysis_opts *opts,
			    size_t n, enum group_by group, enum timeline_format fmt,
			    const char *title);

#endif
