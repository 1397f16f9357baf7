/* Text renderers (analyzer, reports stage): aligned columns, human sizes, the
 * innermost frame first, frames written so terminals and editors can jump to
 * them. */
#include <inttypes.h>
#include <string.h>

#include "report.h"
#include "sampled.h"
#include "util.h"


void report_frame_text(FILE *f, const struct frame_info *fr)
{
	if (fr->thread_start || fr->not_recorded) {
		fputs(fr->function, f);
		return;
	}
	if (fr->python) {
		text_str(f, fr->file ? fr->file : "??");
		fprintf(f, ":%d", fr->line);
		if (fr->show_column && fr->column > 0)
			fprintf(f, ":%d", fr->column);
		fputc(' ', f);
		text_str(f, fr->function ? fr->function : "??");
		return;
	}
	text_str(f, fr->function ? fr->function : "??");
	if (fr->file) {
		fputs(" (", f);
		text_str(f, fr->file);
		fprintf(f, ":%d, ", fr->line);
		text_str(f, fr->module ? fr->module : "??");
		fputc(')', f);
	} else if (fr->module) {
		fputs(" (", f);
		text_str(f, fr->module);
		fprintf(f, "+0x%" PRIx64 ")", fr->module_offset);
	} else {
		fprintf(f, " (0x%" PRIx64 ")", fr->ip);
	}
}

void report_row_frame_text(FILE *f, const struct row *r, size_t j, enum group_by g)
{
	const struct frame_info *fr = &r->frames[j];
	symbolizer_shown(r->sym, fr);
	if (g == GROUP_STACK || g == GROUP_LINE) {
		report_frame_text(f, fr);
	} else if (fr->python) {
		text_str(f, fr->file ? fr->file : "??");
		if (g == GROUP_FUNCTION) {
			fputc(' ', f);
			text_str(f, fr->function ? fr->function : "??");
		}
	} else if (g == GROUP_FUNCTION && fr->function) {
		text_str(f, fr->function);
		fputs(" (", f);
		text_str(f, fr->module ? fr->module : "??");
		fputc(')', f);
	} else if (g == GROUP_FILE && fr->file) {
		text_str(f, fr->file);
		fputs(" (", f);
		text_str(f, fr->module ? fr->module : "??");
		fputc(')', f);
	} else if (g == GROUP_FILE) {
		text_str(f, fr->module ? fr->module : "??");
	} else {
		report_frame_text(f, fr); /* "?? (MODULE+0xOFFSET)" */
	}
}

static void class_totals(const struct analysis *a, int cls, struct kind_totals *t)
{
	memset(t, 0, sizeof(*t));
	for (int k = 0; k < HW_KIND_COUNT; k++) {
		if (kind_class(k) != cls)
			continue;
		t->allocs += a->kinds[k].allocs;
		t->frees += a->kinds[k].frees;
		t->alloc_bytes += a->kinds[k].alloc_bytes;
		t->live_bytes += a->kinds[k].live_bytes;
		t->live_blocks += a->kinds[k].live_blocks;
	}
}

static double secs(uint64_t ns)
{
	return (double)ns / 1e9;
}

static const char *end_note(const struct analysis *a, char *buf, size_t size)
{
	if (a->trace->damaged)
		return "damaged or cut: figures cover what could be read";
	if (report_exec_note(a, buf, size))
		return buf;
	if (a->trace->stop.reason)
		return "recording stopped early";
	if (a->exited) {
		char status[16] = "";
		if (a->exit_status_known)
			snprintf(status, sizeof(status), "%d", a->exit_status);
		snprintf(buf, size,
			 "exited through _exit(%s) at %.3f s: no atexit handlers ran (os._exit in "
			 "Python; a multiprocessing child ends so)",
			 status, secs(a->exit_time_ns));
		return buf;
	}
	return a->clean_exit ? "exited cleanly" : "no clean exit (killed, crashed, exec'd or still running)";
}

static bool all_eligible(const struct analysis *a)
{
	for (size_t i = 0; i < a->nsites; i++)
		if (!a->sites[i].eligible)
			return false;
	return true;
}

void report_peak_lines(FILE *f, const struct report *r, size_t max)
{
	char b1[32];
	for (size_t i = 0, shown = 0; i < r->n && shown < max; i++) {
		const struct row *row = &r->rows[i];
		if (row->cls != CLASS_HEAP || !row->peak_bytes)
			continue;
		fprintf(f, "    %-10s ", fmt_size(b1, row->peak_bytes));
		if (r->sample_interval) {
			char pm[96];
			fprintf(f, "%-30s ",
				sample_pm(pm, row->peak_bytes, row->peak_var, row->peak_samples));
		}
		size_t u = usercode_blame_frame(row->frames, row->nframes, r->blame);
		if (row->nframes)
			report_row_frame_text(f, row, u < row->nframes ? u : 0, r->group);
		else
			fputs("(no stack recorded)", f);
		fputc('\n', f);
		shown++;
	}
}

/* One cell of the summary table's interval row: "± 1.1 MiB", "exact" for
 * a figure made only of blocks that count as themselves, nothing for 0. */
static const char *pm_cell(char *buf, size_t size, uint64_t value, double var, bool bytes)
{
	char b[32];
	if (!value)
		buf[0] = 0;
	else if (var < 1)
		snprintf(buf, size, "exact");
	else if (bytes)
		snprintf(buf, size, "\u00b1 %s", fmt_size(b, sample_clamp(sample_half95(var))));
	else
		snprintf(buf, size, "\u00b1 %" PRIu64, sample_clamp(sample_half95(var)));
	return buf;
}

/* Under a row of the summary's table of a sampled trace: its figures' 95%
 * half-widths, column under column. */
static void kind_pm_row(FILE *f, const struct kind_totals *kt, uint64_t at_peak,
			const struct spread_fig *sp)
{
	char c[4][40];
	pm_cell(c[0], sizeof(c[0]), kt->allocs, sp->count_var, false);
	pm_cell(c[1], sizeof(c[1]), kt->alloc_bytes, sp->alloc_var, true);
	pm_cell(c[2], sizeof(c[2]), at_peak, sp->peak_var, true);
	pm_cell(c[3], sizeof(c[3]), kt->live_bytes, sp->live_var, true);
	char line[160];
	size_t n = (size_t)snprintf(line, sizeof(line), "  %-10s", "");
	for (int i = 0; i < 4; i++) /* "±" is two bytes and one column */
		n += (size_t)snprintf(line + n, sizeof(line) - n, " %*s", c[i][0] == '\xc2' ? 13 : 12,
				      c[i]);
	while (n && line[n - 1] == ' ')
		n--;
	fprintf(f, "%.*s\n", (int)n, line);
}

void report_summary_text(FILE *f, const struct analysis *a, struct symbolizer *s)
{
	const struct trace *t = a->trace;
	struct kind_totals heap;
	class_totals(a, CLASS_HEAP, &heap);
	char b1[32], b2[32], note[160], end[200];
	fputs("heapwise summary of ", f);
	text_str(f, t->path);
	fputs("\n  command     ", f);
	text_str(f, t->cmdline[0] ? t->cmdline : t->exe);
	fputc('\n', f);
	fprintf(f, "  process     pid %" PRIu64 ", parent %" PRIu64 ", %u thread%s, %.3f s, %s\n",
		t->hdr.pid, t->hdr.ppid, a->threads, a->threads == 1 ? "" : "s",
		secs(a->end_time_ns), end_note(a, end, sizeof(end)));
	char stop[400];
	if (trace_stop_note(t, stop, sizeof(stop)))
		fprintf(f, "  stopped     %s\n", stop);
	if (a->sample_interval)
		fprintf(f, "  estimates   %s; \u00b1: 95%% intervals\n",
			sample_note(a->sample_interval, note, sizeof(note)));
	struct spread_fig hs;
	sample_heap_spread(a, &hs);
	char pm[96], pm2[100] = "", pmc[48] = "", pmf[48] = "";
	if (a->sample_interval) { /* counts are estimates too */
		snprintf(pmc, sizeof(pmc), " \u00b1 %" PRIu64,
			 sample_clamp(sample_half95(hs.count_var)));
		snprintf(pmf, sizeof(pmf), " \u00b1 %" PRIu64,
			 sample_clamp(sample_half95(hs.free_count_var)));
		snprintf(pm2, sizeof(pm2), " %s",
			 sample_pm(pm, heap.alloc_bytes, hs.alloc_var, hs.alloc_n));
	}
	fprintf(f, "  heap        %" PRIu64 "%s allocations (%s%s), %" PRIu64 "%s frees\n",
		heap.allocs, pmc, fmt_size(b1, heap.alloc_bytes), pm2, heap.frees, pmf);
	pm2[0] = 0;
	if (a->sample_interval)
		snprintf(pm2, sizeof(pm2), " %s",
			 sample_pm(pm, a->peaks[CLASS_HEAP].peak, hs.peak_var, hs.peak_n));
	fprintf(f, "  peak heap   %s%s at %.3f s\n", fmt_size(b1, a->peaks[CLASS_HEAP].peak), pm2,
		secs(a->peaks[CLASS_HEAP].peak_time_ns));
	uint64_t leaked, leaked_blocks;
	char where[300];
	report_leaked(a, &leaked, &leaked_blocks);
	pmc[0] = 0;
	if (a->sample_interval) {
		snprintf(pm2, sizeof(pm2), " %s", sample_pm(pm, leaked, hs.leak_var, hs.leak_n));
		snprintf(pmc, sizeof(pmc), " \u00b1 %" PRIu64,
			 sample_clamp(sample_half95(hs.leak_count_var)));
	}
	fprintf(f, "  leaked      %s%s in %" PRIu64 "%s block%s (heap still live at %s%s)\n",
		fmt_size(b1, leaked), pm2, leaked_blocks, pmc, leaked_blocks == 1 ? "" : "s",
		report_leak_point(a, where, sizeof(where)),
		a->python_version && a->sites && a->nsites && !all_eligible(a)
			? "; allocated under Python frames, import machinery left out"
			: "");
	if (a->python_version) {
		unsigned v = (unsigned)a->python_version;
		fprintf(f, "  python      %u.%u.%u%s, ", v >> 24 & 0xff, v >> 16 & 0xff, v >> 8 & 0xff,
			a->python_flags & HW_PY_FREE_THREADED ? " free-threaded" : "");
		if (a->python_frames)
			fputs("Python frames recorded\n", f);
		else
			fprintf(f, "Python frames OFF: %s\n",
				a->python_off[0] ? a->python_off : "this version's frames could not be read");
	} else {
		char missing[400];
		if (report_python_missing(a, missing, sizeof(missing))) {
			fputs("  python      NOT TRACED: ", f);
			text_str(f, missing);
			fputc('\n', f);
		}
	}
	if (a->window)
		fprintf(f, "  window      between markers, from %.3f s to %.3f s: only blocks allocated in it count\n",
			secs(a->window_start_ns), secs(a->leak_point == LEAK_AT_MARK ? a->leak_time_ns
										       : a->end_time_ns));
	if (a->rss_peak)
		fprintf(f, "  peak RSS    %s\n", fmt_size(b1, a->rss_peak));
	if (s && a->peaks[CLASS_HEAP].peak) {
		/* by line (the user's, see usercode.h), as top --group-by line */
		struct report r;
		report_build(&r, a, s, GROUP_LINE, BY_PEAK, false);
		fprintf(f, "  at the peak (heap live at %.3f s, largest lines):\n",
			secs(a->peaks[CLASS_HEAP].peak_time_ns));
		report_peak_lines(f, &r, 5);
		report_free(&r);
	}
	/* each kind's bytes at its class's peak: a heap kind's share of the
	 * heap's peak, so the rows never claim more than a kind allocated */
	uint64_t at_peak[HW_KIND_COUNT];
	report_kind_peaks(a, at_peak);
	fprintf(f, "\n  %-10s %12s %12s %12s %12s\n", "allocator", "allocations", "allocated",
		"at peak", "live at end");
	/* a sampled trace: each row's intervals on a row under it */
	struct spread_fig ks[HW_KIND_COUNT], heap_sp = {0};
	sample_kind_spread(a, ks);
	for (int k = 0; k < HW_KIND_COUNT; k++)
		if (kind_class(k) == CLASS_HEAP) {
			heap_sp.count_var += ks[k].count_var;
			heap_sp.alloc_var += ks[k].alloc_var;
			heap_sp.peak_var += ks[k].peak_var;
			heap_sp.live_var += ks[k].live_var;
		}
	char b3[32];
	for (int pass = 0; pass < 2; pass++) {
		for (int k = 0; k < HW_KIND_COUNT; k++) {
			const struct kind_totals *kt = &a->kinds[k];
			if ((kind_class(k) == CLASS_HEAP) != (pass == 0) || (!kt->allocs && !kt->live_bytes))
				continue;
			fprintf(f, "  %-10s %12" PRIu64 " %12s %12s %12s\n", kind_name(k), kt->allocs,
				fmt_size(b1, kt->alloc_bytes), fmt_size(b2, at_peak[k]),
				fmt_size(b3, kt->live_bytes));
			if (a->sample_interval)
				kind_pm_row(f, kt, at_peak[k], &ks[k]);
		}
		if (pass == 0) {
			fprintf(f, "  %-10s %12" PRIu64 " %12s %12s %12s\n", "heap", heap.allocs,
				fmt_size(b1, heap.alloc_bytes), fmt_size(b2, a->peaks[CLASS_HEAP].peak),
				fmt_size(b3, heap.live_bytes));
			if (a->sample_interval)
				kind_pm_row(f, &heap, a->peaks[CLASS_HEAP].peak, &heap_sp);
		}
	}
	fprintf(f, "  (heap = the malloc family and Python's allocators; its kinds' \"at peak\" is\n"
		   "   what each had live at the heap's peak, and adds up to it; mmap = anonymous\n"
		   "   mappings, mmap-file = file mappings, each with a peak of its own)\n");
	if (a->unmatched_frees || a->replaced_blocks)
		fprintf(f, "\n  note: %" PRIu64 " frees of blocks allocated before tracing started, %" PRIu64
			   " blocks whose free was not seen\n",
			a->unmatched_frees, a->replaced_blocks);
}

void report_top_text(FILE *f, const struct analysis *a, const struct report *r, size_t n,
		     const char *title)
{
	char b1[32];
	fprintf(f, "%s: ", title);
	text_str(f, a->trace->path);
	fprintf(f, " by %s, grouped by %s\n", sort_name(r->by), group_name(r->group));
	char note[160];
	if (a->sample_interval)
		fprintf(f, "%s\n", sample_note(a->sample_interval, note, sizeof(note)));
	char where[300], pm[96], pm2[100] = "";
	if (a->sample_interval) {
		struct spread_fig hs;
		sample_heap_spread(a, &hs);
		snprintf(pm2, sizeof(pm2), " %s",
			 sample_pm(pm, a->peaks[CLASS_HEAP].peak, hs.peak_var, hs.peak_n));
	}
	fprintf(f, "peak heap %s%s at %.3f s; PEAK = live at its class's peak, LEAKED = live at %s\n\n",
		fmt_size(b1, a->peaks[CLASS_HEAP].peak), pm2, secs(a->peaks[CLASS_HEAP].peak_time_ns),
		report_leak_point(a, where, sizeof(where)));
	report_rows_text(f, r, n);
}

/* Frames [from, to) of a row under a heading, innermost first. */
static void frames_below(FILE *f, const struct row *row, size_t from, size_t to, enum group_by g,
			 const char *heading)
{
	if (from >= to)
		return;
	fprintf(f, "         %s:\n", heading);
	for (size_t j = from; j < to && j - from < REPORT_TEXT_FRAMES; j++) {
		fputs("           ", f);
		report_row_frame_text(f, row, j, g);
		fputc('\n', f);
	}
	if (to - from > REPORT_TEXT_FRAMES)
		fprintf(f, "           ... %zu more\n", to - from - REPORT_TEXT_FRAMES);
}

void report_row_body_text(FILE *f, const struct row *row, enum group_by g, enum blame b)
{
	size_t nf = row->nframes, all = nf + row->more;
	if (!nf)
		fprintf(f, "         (no stack recorded)\n");
	/* The blamed Python frame first (the user's innermost, see
	 * usercode.h) and its callers outwards; then the library's Python
	 * frames it called, and the native frames below them, each list
	 * innermost first. */
	size_t py = report_first_python(row->frames, nf);
	size_t u = usercode_blame_frame(row->frames, nf, b);
	if (py == nf)
		py = u = 0;
	size_t shown = 0;
	for (size_t j = u; j < nf && shown < REPORT_TEXT_FRAMES; j++, shown++) {
		fputs("         ", f);
		report_row_frame_text(f, row, j, g);
		fputc('\n', f);
	}
	if (all - u > shown)
		fprintf(f, "         ... %zu more frames (--json shows all)\n", all - u - shown);
	frames_below(f, row, py, u, g, "library frames it called");
	frames_below(f, row, 0, py, g, "native frames below it");
	/* the stack was cut (deeper than the shim records): said even when
	 * the marker is not among the frames printed */
	bool marked = false;
	for (size_t j = 0; j < nf && !marked; j++)
		marked = row->frames[j].not_recorded &&
			 ((j >= u && j - u < REPORT_TEXT_FRAMES) ||
			  (j >= py && j < u && j - py < REPORT_TEXT_FRAMES) ||
			  (j < py && j < REPORT_TEXT_FRAMES));
	if (row->not_recorded && !marked)
		fprintf(f, "         ... at least %" PRIu32 " frame%s not recorded (deeper than heapwise keeps)\n",
			row->not_recorded, row->not_recorded == 1 ? "" : "s");
}

void report_row_spread_text(FILE *f, const struct row *row)
{
	char b1[96], b2[96], b3[96];
	fprintf(f, "         95%% interval: peak %s", sample_pm(b1, row->peak_bytes, row->peak_var,
							    row->peak_samples));
	if (row->leaked_bytes || row->leaked_samples)
		fprintf(f, ", leaked %s",
			sample_pm(b2, row->leaked_bytes, row->leaked_var, row->leaked_samples));
	fprintf(f, ", allocated %s\n",
		sample_pm(b3, row->allocated_bytes, row->allocated_var, row->allocated_samples));
}

void report_rows_text(FILE *f, const struct report *r, size_t n)
{
	char b1[32], b2[32], b3[32];
	if (!n || n > r->n)
		n = r->n;
	if (!n) {
		fprintf(f, "  (no callsites)\n");
		return;
	}
	bool temp = r->by == BY_TEMPORARY;
	if (temp)
		fprintf(f, "TEMPORARY = allocations freed before their thread allocated again%s\n\n",
			r->sample_interval
				? " (sampled: before its next recorded allocation, so an upper bound)"
				: "");
	fprintf(f, "  %3s  %-11s %-11s %-11s %-10s %s\n", "#", "PEAK", "LEAKED", "ALLOCATED",
		temp ? "TEMPORARY" : "COUNT", "KIND");
	for (size_t i = 0; i < n; i++) {
		const struct row *row = &r->rows[i];
		char kinds[64];
		fprintf(f, "  %3zu  %-11s %-11s %-11s %-10" PRIu64 " %s\n", i + 1,
			fmt_size(b1, row->peak_bytes), fmt_size(b2, row->leaked_bytes),
			fmt_size(b3, row->allocated_bytes), temp ? row->temporary : row->count,
			report_kind_label(row, r->by, kinds));
		if (r->sample_interval)
			report_row_spread_text(f, row);
		report_row_body_text(f, row, r->group, r->blame);
	}
}
