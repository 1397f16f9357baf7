/* Several traces of one process tree (analyzer, reports stage): a parent and
 * the children it forked or exec'd each write a trace; the reports show each
 * process and the tree combined. Callsites of different processes are joined
 * by their symbolized frames, and the combined heap peak is found on the
 * processes' common monotonic clock. */
#ifndef HW_ANALYZER_TREE_H
#define HW_ANALYZER_TREE_H

#include <stdio.h>

#include "analysis.h"
#include "report.h"
#include "symbolize.h"

struct proc {
	struct trace t;
	struct analysis a;
	struct symbolizer *s;
};

struct tree {
	struct proc *p; /* in the order given */
	size_t n;
};

struct tree_totals {
	uint64_t allocs, frees, alloc_bytes, leaked, leaked_blocks, events;
	uint64_t peak; /* the highest sum of the processes' live heap */
	uint64_t peak_time_ns; /* since the first process started */
	uint64_t rss_peak_sum; /* each process's peak RSS, added */
	bool damaged, all_clean;
	uint64_t stopped; /* processes whose recording stopped early */
	/* sampled traces: the variances of the estimates (processes are
	 * sampled independently, so they add) and the samples behind them:
	 * the combined peak's (each process's live heap at that moment), the
	 * leaks', the allocated bytes' and the allocation count's */
	struct spread_fig spread;
};

/* Opens and replays every trace (progress on a terminal, one line per
 * trace); on an error prints it and returns 2 after freeing what was done. */
int tree_load(struct tree *tr, char *const *paths, size_t n, const struct analysis_opts *opts);
void tree_free(struct tree *tr);

void tree_totals(const struct tree *tr, struct tree_totals *out);

/* Several traces need not be one process tree (two runs in one directory).
 * Groups the processes into trees: a process's parent is the process of its
 * parent pid that started last before it, or the image of its own pid (with
 * the same parent) it was exec'd from. With several trees, reorders tr->p
 * so each tree's processes are together, its root process first and the
 * others in the order given, the trees in the order of their first trace (before anything is symbolized: the symbolizers are
 * made anew when processes move); returns the number of trees, their sizes in counts
 * (room for tr->n entries). */
size_t tree_split(struct tree *tr, size_t *counts);

/* The trees of tree_split as one line each for messages:
 * "pid 100 (3 processes: a.hwt ...)"; free it. */
char *tree_describe(const struct tree *tr, const size_t *counts, size_t ntrees);

/* The rows of every process joined by frames, sorted by `by`. Peak bytes of
 * a joined row are the sum of what each process had live at its own peak.
 * With shown (not 0), grouped by stack, only the rows a report shows get
 * frames: the first `shown`, and on until `shown` heap rows with peak bytes. */
void tree_report(struct report *out, const struct tree *tr, enum group_by group, enum sort_by by,
		 bool only_leaks, size_t shown);

/* "pid 123 (parent 1): python3 app.py", the command line in the display
 * form of escape.h. */
void tree_proc_name(const struct proc *p, char *buf, size_t size);

/* Renderers of the combined part. */
void tree_summary_text(FILE *f, const struct tree *tr);
/* The sampling interval of the tree's traces: the largest (0: all exact). */
uint64_t tree_sample_interval(const struct tree *tr);
void tree_summary_json(FILE *f, const struct tree *tr);

#endif
