/* Report rows (analyzer, reports stage): one model shared by every renderer.
 * A row is a callsite (a whole stack, or the innermost frame when grouping
 * by line, function or file) with its metrics and symbolized frames. */
#ifndef HW_ANALYZER_REPORT_H
#define HW_ANALYZER_REPORT_H

#include <stdio.h>

#include "analysis.h"
#include "symbolize.h"
#include "usercode.h"

enum sort_by { BY_PEAK, BY_LEAKED, BY_ALLOCATED, BY_COUNT, BY_TEMPORARY };
enum group_by { GROUP_STACK, GROUP_LINE, GROUP_FUNCTION, GROUP_FILE };

/* One allocator kind's part of a row. */
struct kind_part {
	uint64_t peak_bytes, leaked_bytes, allocated_bytes, count;
};

struct row {
	uint64_t peak_bytes, leaked_bytes, leaked_blocks, allocated_bytes, count;
	uint64_t temporary, temporary_bytes; /* freed before the thread allocated again */
	/* a sampled trace: the variance of the estimated peak, leaked and
	 * allocated bytes and the samples behind each (site_spread_fig) */
	double peak_var, leaked_var, allocated_var, count_var;
	uint64_t peak_samples, leaked_samples, allocated_samples;
	int cls;
	int kind; /* the kind that holds most of the row (report_sort settles it) */
	/* each kind's part when the row has more than one kind (a Python line
	 * with objects and malloc'd buffers); NULL when it has one */
	struct kind_part *kinds;
	struct frame_info *frames; /* innermost first */
	size_t nframes;
	size_t more; /* stack entries past frames, not symbolized (text reports) */
	/* text reports: the stack's marker for Python frames the shim did not
	 * record (frame_info), among frames or past them; 0: none */
	uint32_t not_recorded;
	char *key;
	uint32_t canon; /* the canonical stack (by stack: the row's own) */
	struct symbolizer *sym; /* that named the frames (symbolizer_shown) */
};

struct report {
	struct row *rows;
	size_t n;
	enum sort_by by;
	enum group_by group;
	enum blame blame; /* the frame a row shows first (report_set_blame) */
	uint64_t sample_interval; /* the trace's (0: exact): rows carry their spread */
};

/* Which frame reports blame (usercode.h): BLAME_USER unless the command line
 * says --blame innermost. Every report built afterwards uses it. */
void report_set_blame(enum blame b);
enum blame report_blame(void);

/* Builds and sorts the rows (largest first); with only_leaks, rows without
 * leaked bytes are dropped (a row kept has all its figures: allocated and
 * count of the whole row, not of its sites that leaked). */
void report_build(struct report *r, const struct analysis *a, struct symbolizer *s,
		  enum group_by group, enum sort_by by, bool only_leaks);
void report_free(struct report *r);
/* Groups the rows of a report grouped by stack (each with its whole stack)
 * by line, function or file of their blamed frame, as report_build would:
 * for a report whose rows were filtered by stack first (check's
 * suppressions). */
void report_regroup(struct report *r, enum group_by group);
/* The live set at the heap's peak by stack, for the summary: rows sorted by
 * peak, and only the first max heap rows with peak bytes (the ones a summary
 * shows) get frames: with one_line their innermost Python frame (else their
 * innermost frame), else all. Symbolizing only what is shown keeps a summary
 * from loading the debug information of every library in every stack. */
void report_build_peak(struct report *r, const struct analysis *a, struct symbolizer *s,
		       size_t max, bool one_line);

/* report_build for a report that shows only its first `shown` rows (0 =
 * all): grouped by stack, only those rows get frames, and with text only the
 * frames report_top_text prints (the rest is counted in row->more). */
void report_build_shown(struct report *r, const struct analysis *a, struct symbolizer *s,
			enum group_by group, enum sort_by by, bool only_leaks, size_t shown, bool text);

/* Rows with their figures and canonical stacks but no frames, for a report
 * that keys them otherwise (diff by stack: report_row_hash) and frames the
 * ones it shows (report_row_frame). */
void report_build_bare(struct report *r, const struct analysis *a, struct symbolizer *s,
		       enum group_by group, enum sort_by by);
void report_row_frame(struct row *r, const struct analysis *a, struct symbolizer *s);
/* A 128-bit hash of a row grouped by stack: its class and the frames of its
 * whole stack as report_row_key prints them (which stops at 1024), from a
 * memo per canonical node: O(nodes) for every row of a trace, where the
 * keys' text was O(rows x depth). */
struct report_keys;
struct report_keys *report_keys_new(const struct analysis *a, struct symbolizer *s);
void report_row_hash(struct report_keys *k, const struct row *r, uint64_t out[2]);
void report_keys_free(struct report_keys *k);
/* That hash as a key string for a sort by key (free it). */
char *report_row_hash_key(struct report_keys *k, const struct row *r);

/* The heap's callsites grouped as report_build groups them, the best n by
 * bytes at the peak (with every frame when grouped by stack): the series of a
 * timeline. site_row[i] (room for a->nsites) gets site i's row, or -1. */
void report_build_series(struct report *r, const struct analysis *a, struct symbolizer *s,
			 enum group_by group, size_t n, int32_t *site_row);

/* Frames a text report prints from the innermost Python frame outwards, and
 * of the native frames below it. */
#define REPORT_TEXT_FRAMES 8

/* Sorts the rows by r->by, largest first, and settles each row's kind: the
 * one with the most of r->by (then of allocated bytes). */
void report_sort(struct report *r);
/* No two rows of a report (each with its frames) print the same: a Python
 * frame shows its column where that tells rows apart (app.py:19:10), and
 * rows that still print the same are merged; then sorted again. */
void report_distinct(struct report *r);
/* report_distinct over the first n rows only (those with frames: the rows a
 * report shows); true when rows were merged (and the report sorted again). */
bool report_distinct_first(struct report *r, size_t n);
/* Labels of n stacks (frames[i], nframes[i] frames, innermost first) shown
 * one line each, such as timeline legends and diff's rows by stack: each
 * stack's blamed frame (see usercode.h) as text reports write it. Where two
 * labels would be the same, the frame shows its column if that tells them
 * apart (app.py:19:10), else the labels go on with callers ("app.py:10
 * load <- app.py:32 main"), then with the frames it called ("app.py:5
 * <module> via <frozen importlib._bootstrap>:241 ...") until they differ.
 * Stacks whose labels are still the same print the same all the way:
 * same_as[i] is the first such stack (i itself if none), for the caller to
 * merge. out[i] is allocated (free it). Returns the number of distinct
 * labels. O(n log n * depth). */
size_t report_stack_labels(const struct frame_info *const *frames, const size_t *nframes, size_t n,
			   enum blame b, char **out, size_t *same_as);
/* A row's frames as report_rows_text prints them below its figures (the
 * blamed frame and its callers, then the library and native frames below
 * it, each list cut at REPORT_TEXT_FRAMES). */
void report_row_body_text(FILE *f, const struct row *row, enum group_by g, enum blame b);
/* Adds row src's figures (and kinds) to dst. */
void report_row_add(struct row *dst, const struct row *src);
/* A row's kinds for text: "malloc", or "malloc+pyobj" (largest first by
 * `by`) when several kinds hold bytes. buf needs 64 bytes. */
const char *report_kind_label(const struct row *r, enum sort_by by, char *buf);
/* Writes a row's "kind" and "kinds" members for JSON: "kinds" has each
 * kind's peak, leaked and allocated bytes and count. */
void report_kinds_json(FILE *f, const struct row *r);
/* A row's identity across traces: its class and frames as text (addresses
 * and stack ids differ between processes and runs); a row grouped by line,
 * function or file, its class and that key only (a line is file:line,
 * whatever function the row shows: 3.11 runs a comprehension in
 * f.<locals>.<listcomp>, 3.12+ in f). Free it. */
char *report_row_key(const struct row *r);

/* The start of every HTML report, up to the open <title>: a page that loads
 * nothing from anywhere (its own inline style and script only). */
extern const char report_html_head[];

/* Renderers. n = rows to print (0 = all). */
/* With a symbolizer, the summary has a "peak" section: the callsites live at
 * the heap's high-water mark. */
void report_summary_text(FILE *f, const struct analysis *a, struct symbolizer *s);
void report_summary_json(FILE *f, const struct analysis *a, struct symbolizer *s);
void report_top_text(FILE *f, const struct analysis *a, const struct report *r, size_t n,
		     const char *title);
void report_rows_json(FILE *f, const struct analysis *a, const struct report *r, size_t n);
/* The summary's "at the peak" lines: the first max heap rows with peak
 * bytes, each with its innermost Python frame (else its innermost frame). */
void report_peak_lines(FILE *f, const struct report *r, size_t max);
/* A sampled trace's row: the 95% intervals of its estimates, one line. */
void report_row_spread_text(FILE *f, const struct row *row);
/* The rows of report_top_text without its heading. */
void report_rows_text(FILE *f, const struct report *r, size_t n);
/* The "callsites" array of report_rows_json. */
void report_callsites_json(FILE *f, const struct report *r, size_t n);

/* What each allocator kind had live at its class's peak: the heap kinds'
 * figures add up to the heap's peak; a mapping kind's is its class's peak. */
void report_kind_peaks(const struct analysis *a, uint64_t out[HW_KIND_COUNT]);

/* Heap bytes and blocks that count as leaked (see analysis_run). */
void report_leaked(const struct analysis *a, uint64_t *bytes, uint64_t *blocks);
/* "exit", "the end of the trace", "Python's finalization", "marker X",
 * "exec of PATH at T s: SIZE in N blocks, which the kernel frees, not
 * leaked". */
const char *report_leak_point(const struct analysis *a, char *buf, size_t size);
/* "exec'd PATH at T s" (the path as the program gave it) when the process
 * exec'd (analysis.h), else NULL. */
const char *report_exec_note(const struct analysis *a, char *buf, size_t size);

/* When a Python runtime (a MODULE named libpython3.*.so*) was loaded after
 * start and no Python was found (no PYTHON record: the shim looks for it at
 * start only), says so in buf, unescaped, and returns true: its frames and
 * pymalloc objects were not traced. */
bool report_python_missing(const struct analysis *a, char *buf, size_t size);

/* Writes frames as the JSON array every report uses:
 * [{"kind","function","file","line","module","address"}]. */
void report_frames_json(FILE *f, const struct frame_info *frames, size_t n);

/* Writes one frame the way text reports do:
 * Python "FILE:LINE function", native "function (FILE:LINE, MODULE)". */
void report_frame_text(FILE *f, const struct frame_info *fr);

/* Writes frame j of a row for a text report grouped by g (by stack and line
 * as report_frame_text; by function "FILE function" or "function (MODULE)";
 * by file "FILE" or "MODULE"), and tells the row's symbolizer the frame was
 * shown. */
void report_row_frame_text(FILE *f, const struct row *r, size_t j, enum group_by g);

/* Symbolized frames of a site's stack, innermost first (at most max). */
size_t report_stack_frames(const struct analysis *a, struct symbolizer *s, uint32_t raw_stack,
			   struct frame_info *out, size_t max);
/* Frees what report_stack_frames cached for the analysis. */
void report_stack_frames_done(void);

/* Index of the innermost Python frame, or n when there is none. */
size_t report_first_python(const struct frame_info *frames, size_t n);

/* Parses --group-by; on bad text prints one line naming CMD and returns false. */
bool parse_group_option(const char *cmd, const char *text, enum group_by *out);

const char *sort_name(enum sort_by by);
const char *group_name(enum group_by g);

#endif
