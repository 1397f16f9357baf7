/* libFuzzer target: a trace through the reader, the replay and every report
 * it feeds (summary, top in every grouping and order, leaks, a marker window,
 * JSON and text, flame graphs in every format, pprof, timelines, and the
 * combined reports of a process tree). Symbolization stays
 * offline: a trace names files, and a hostile one must not make the analyzer
 * read them. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "analysis.h"
#include "report.h"
#include "report_flame.h"
#include "report_pprof.h"
#include "report_timeline.h"
#include "symbolize.h"
#include "tree.h"
#include "util.h"

static FILE *sink(void)
{
	static FILE *f;
	if (!f)
		f = fopen("/dev/null", "w");
	return f;
}

static void reports(const struct analysis *a)
{
	FILE *out = sink();
	struct symbolizer *s = symbolizer_new_offline(a);
	report_summary_text(out, a, s);
	report_summary_json(out, a, s);
	for (int g = GROUP_STACK; g <= GROUP_FILE; g++) {
		for (int by = BY_PEAK; by <= BY_COUNT; by++) {
			struct report r;
			report_build(&r, a, s, (enum group_by)g, (enum sort_by)by, by == BY_LEAKED);
			report_top_text(out, a, &r, 5, "top");
			report_rows_json(out, a, &r, 0);
			report_free(&r);
		}
	}
	for (int m = METRIC_PEAK; m <= METRIC_ALLOCATED; m++)
		for (int fmt = FLAME_FOLDED; fmt <= FLAME_HTML; fmt++)
			report_flame(out, a, s, (enum flame_metric)m, (enum flame_format)fmt, "fuzz");
	report_pprof("/dev/null", a, s);
	symbolizer_free(s);
}

/* The trace twice, as a process tree of two: the combined reports. */
static void tree_reports(const uint8_t *data, size_t size)
{
	struct tree tr = {xcalloc(2, sizeof(struct proc)), 0};
	struct analysis_opts o = {.heap_ticks = true};
	for (int i = 0; i < 2; i++) {
		struct proc *p = &tr.p[i];
		if (trace_open_buffer(data, size, "fuzz.hwt", &p->t) != HW_OK ||
		    analysis_run(&p->a, &p->t, &o) != HW_OK) {
			analysis_free(&p->a);
			trace_close(&p->t);
			tree_free(&tr);
			return;
		}
		p->s = symbolizer_new_offline(&p->a);
		tr.n++;
	}
	FILE *out = sink();
	tree_summary_text(out, &tr);
	tree_summary_json(out, &tr);
	struct report r;
	tree_report(&r, &tr, GROUP_FUNCTION, BY_LEAKED, true);
	report_rows_text(out, &r, 0);
	report_callsites_json(out, &r, 0);
	report_free(&r);
	struct flame_proc fp[2] = {{&tr.p[0].a, tr.p[0].s, "a"}, {&tr.p[1].a, tr.p[1].s, "b;c"}};
	report_flame_procs(out, fp, 2, METRIC_PEAK, FLAME_FOLDED, "fuzz");
	struct pprof_proc pp[2] = {{&tr.p[0].a, tr.p[0].s}, {&tr.p[1].a, tr.p[1].s}};
	report_pprof_procs("/dev/null", pp, 2);
	tree_free(&tr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	symbolizer_offline_only();
	struct trace t;
	if (trace_open_buffer(data, size, "fuzz.hwt", &t) == HW_OK) {
		struct analysis a;
		if (analysis_run(&a, &t, NULL) == HW_OK) {
			reports(&a);
			/* a window between the first two markers, if there are any */
			if (a.nmarks >= 2) {
				struct analysis w;
				struct analysis_opts o = {.from_mark = a.marks[0].label,
							  .to_mark = a.marks[1].label,
							  .include_all = true};
				if (analysis_run(&w, &t, &o) == HW_OK)
					reports(&w);
				analysis_free(&w);
			}
		}
		analysis_free(&a);
		tree_reports(data, size);
		report_timeline(sink(), &t, &(struct analysis_opts){0}, 4, TIMELINE_SVG, "fuzz");
		report_timeline(sink(), &t, &(struct analysis_opts){0}, 2, TIMELINE_HTML, "fuzz");
	}
	trace_close(&t);
	return 0;
}
