/* heapwise lines (analyzer, reports stage): the program's source with, per
 * line, the bytes it allocated, had live at the heap's peak and leaked,
 * and its allocations (memory_profiler's view, exact): text, JSON, HTML. */
#ifndef HW_ANALYZER_REPORT_LINES_H
#define HW_ANALYZER_REPORT_LINES_H

#include <stdbool.h>
#include <stdio.h>

#include "report.h"

enum lines_format { LINES_TEXT, LINES_JSON, LINES_HTML };

/* Writes the lines report of analysis a: every source file the trace has
 * lines of that is the user's (usercode.h; every file when none is), or
 * only those FILE arguments name (the path, or its end at a '/'); each
 * opened only when a regular file. The figures
 * of a line are top --group-by line's (its rows of every memory class
 * summed). A file longer than 80 lines shows its lines with figures and
 * two lines around them, unless all; color dims the lines without figures
 * (a terminal). Returns 0, or 2 when no FILE named a file of the trace
 * (after one message per FILE). */
int report_lines(FILE *f, const struct analysis *a, struct symbolizer *s, char *const *files,
		 size_t nfiles, enum lines_format fmt, bool all, bool color, const char *title);

/* From now on no source file is read (the fuzzer: a trace names files). */
void report_lines_no_sources(void);

#endif
