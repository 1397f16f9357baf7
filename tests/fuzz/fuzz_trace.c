/* libFuzzer target: a trace through the reader, the replay and every report
 * it feeds (summary, top in every grouping and order, leaks, a marker window,
 * JSON and text, flame graphs in every format, pprof, lines in every format
 * (no source read), timelines in every
 * grouping and format, and the combined reports of a process tree). Symbolization stays
 * offline: a trace names files, and a hostile one must not make the analyzer
 * read them. Every output it renders is checked: valid UTF-8 with no
 * control character but newline and no C1 control, whatever bytes the
 * trace's names hold (the seed tests/golden/names.hwt has such names).
 * Built with HW_FUZZ_COMPRESS_ONLY (fuzz_compress): only the check that a
 * trace compressed and read back gives the raw trace's events. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "analysis.h"
#include "cols.h"
#include "compress.h"
#include "events.h"
#include "merge.h"
#include "report.h"
#include "report_flame.h"
#include "report_pprof.h"
#include "report_lines.h"
#include "report_timeline.h"
#include "symbolize.h"
#include "tree.h"
#include "util.h"

/* Where the reports write: a memory stream, checked and emptied by
 * check_output. */
static char *g_out;
static size_t g_len;
static FILE *g_sink;

static FILE *sink(void)
{
	if (!g_sink)
		g_sink = open_memstream(&g_out, &g_len);
	return g_sink;
}

/* Aborts (a finding for the fuzzer) unless the output is strict UTF-8 with
 * no control character but newline and no C1 control. */
static void check_output(void)
{
	if (!g_sink)
		return;
	fflush(g_sink);
	const unsigned char *p = (const unsigned char *)g_out, *end = p + g_len;
	while (p < end) {
		unsigned c = *p;
		size_t n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
			 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
		bool ok = n && (size_t)(end - p) >= n;
		uint32_t cp = n == 1 ? c : n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
		for (size_t i = 1; ok && i < n; i++) {
			ok = (p[i] & 0xc0) == 0x80;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		ok = ok && !(n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) &&
		     !(n == 4 && (cp < 0x10000 || cp > 0x10ffff));
		ok = ok && !(cp < 0x20 && cp != '\n') && !(cp >= 0x7f && cp <= 0x9f);
		if (!ok) {
			fprintf(stderr, "output byte %zu: 0x%02x breaks UTF-8 or is a control: %.*s\n",
				(size_t)(p - (const unsigned char *)g_out), c,
				(int)(g_len < 400 ? g_len : 400), g_out);
			abort();
		}
		p += n;
	}
	fclose(g_sink);
	free(g_out);
	g_sink = NULL;
	g_out = NULL;
	g_len = 0;
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
	for (int fmt = LINES_TEXT; fmt <= LINES_HTML; fmt++)
		report_lines(out, a, s, NULL, 0, (enum lines_format)fmt, fmt == LINES_HTML, false, "fuzz");
	symbolizer_free(s);
	check_output();
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
	size_t counts[2];
	tree_split(&tr, counts); /* one trace twice: two trees, the procs moved */
	FILE *out = sink();
	tree_summary_text(out, &tr);
	tree_summary_json(out, &tr);
	struct report r;
	tree_report(&r, &tr, GROUP_FUNCTION, BY_LEAKED, true, 0);
	report_rows_text(out, &r, 0);
	report_callsites_json(out, &r, 0);
	report_free(&r);
	tree_report(&r, &tr, GROUP_STACK, BY_LEAKED, true, 3); /* joined by hash, 3 framed */
	report_rows_text(out, &r, 3);
	report_callsites_json(out, &r, 3);
	report_free(&r);
	struct flame_proc fp[2] = {{&tr.p[0].a, tr.p[0].s, "a"}, {&tr.p[1].a, tr.p[1].s, "b;c"}};
	report_flame_procs(out, fp, 2, METRIC_PEAK, FLAME_FOLDED, "fuzz");
	struct pprof_proc pp[2] = {{&tr.p[0].a, tr.p[0].s}, {&tr.p[1].a, tr.p[1].s}};
	report_pprof_procs("/dev/null", pp, 2);
	tree_free(&tr);
	check_output();
}

/* The trace compressed as `heapwise compress` writes it, read back: the
 * same events in the same order as the raw trace, whatever the input. */
static void compress_round_trip(const uint8_t *data, size_t size)
{
	struct trace t;
	if (trace_open_buffer(data, size, "fuzz.hwt", &t) != HW_OK || t.ncompressed) {
		trace_close(&t);
		return;
	}
	int fd = memfd_create("fuzz-z", MFD_CLOEXEC);
	struct compress_stats st = {0};
	if (fd < 0 || compress_to_fd(&t, fd, 1, &st)) {
		if (fd >= 0)
			close(fd);
		trace_close(&t);
		return;
	}
	size_t zn = (size_t)lseek(fd, 0, SEEK_END);
	uint8_t *z = xmalloc(zn + 1);
	if (pread(fd, z, zn, 0) != (ssize_t)zn)
		abort();
	close(fd);
	struct trace tz;
	if (trace_open_buffer(z, zn, "fuzz.hwt", &tz) != HW_OK) {
		fprintf(stderr, "the compressed trace does not open\n");
		abort();
	}
	/* the replay decodes column chunks in pieces: the default's, or
	 * pieces of 1 to 16 records (their ends everywhere) */
	cols_piece_records = size % 2 ? 1 + size / 2 % 16 : 512;
	size_t n1, n2;
	uint8_t *e1 = fuzz_events_of(&t, &n1), *e2 = fuzz_events_of(&tz, &n2);
	if (n1 != n2 || memcmp(e1, e2, n1)) {
		fprintf(stderr, "compressed trace: %zu bytes of events, raw %zu: they differ\n", n2, n1);
		abort();
	}
	free(e1);
	free(e2);
	trace_close(&tz);
	trace_close(&t);
	free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	symbolizer_offline_only();
	report_lines_no_sources();
#ifdef HW_FUZZ_COMPRESS_ONLY
	/* fuzz_compress: the round trip alone, five times the inputs a second
	 * of the whole target */
	compress_round_trip(data, size);
	return 0;
#endif
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
		/* timelines in every grouping and format (the corpus has a trace
		 * of many stacks: make_scale stacks) */
		static const enum timeline_format fmts[] = {TIMELINE_SVG, TIMELINE_HTML,
							    TIMELINE_JSON, TIMELINE_CSV};
		for (int g = GROUP_STACK; g <= GROUP_FILE; g++)
			report_timeline(sink(), &t, &(struct analysis_opts){0}, g == GROUP_STACK ? 4 : 3,
					(enum group_by)g, fmts[g], "fuzz");
		check_output();
	}
	trace_close(&t);
	compress_round_trip(data, size);
	return 0;
}
