/* Flame graphs (analyzer, reports stage): the callsites' bytes as a tree of
 * frames, rendered as folded stacks (flamegraph.pl, inferno, speedscope), a
 * static SVG, or a self-contained HTML page (search, zoom, hover). */
#ifndef HW_ANALYZER_REPORT_FLAME_H
#define HW_ANALYZER_REPORT_FLAME_H

#include <stdio.h>

#include "analysis.h"
#include "report.h"
#include "symbolize.h"

enum flame_metric { METRIC_PEAK, METRIC_LEAKED, METRIC_ALLOCATED };
enum flame_format { FLAME_FOLDED, FLAME_SVG, FLAME_HTML };

/* Writes the flame graph of the heap's callsites. Returns false when the
 * output could not be written. */
bool report_flame(FILE *f, const struct analysis *a, struct symbolizer *s,
		  enum flame_metric metric, enum flame_format format, const char *title);

/* Several processes of one tree: each process is a frame under the root,
 * named by `name`. */
struct flame_proc {
	const struct analysis *a;
	struct symbolizer *s;
	const char *name;
};
bool report_flame_procs(FILE *f, const struct flame_proc *procs, size_t n,
			enum flame_metric metric, enum flame_format format, const char *title);

const char *flame_metric_name(enum flame_metric m);

#endif
