/* pprof export (analyzer, reports stage): gzip'd profile.proto. */
#ifndef HW_ANALYZER_REPORT_PPROF_H
#define HW_ANALYZER_REPORT_PPROF_H

#include <stdbool.h>

#include "analysis.h"
#include "symbolize.h"

/* Writes the heap profile to path; false when it could not be written. */
bool report_pprof(const char *path, const struct analysis *a, struct symbolizer *s);

/* Several processes of one tree in one profile: each sample carries a
 * numeric "pid" label. */
struct pprof_proc {
	const struct analysis *a;
	struct symbolizer *s;
};
bool report_pprof_procs(const char *path, const struct pprof_proc *procs, size_t n);

#endif
