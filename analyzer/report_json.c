/* JSON renderers (analyzer, reports stage). Every document has a top-level
 * "version"; every string from the trace goes through json_str. */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "report.h"
#include "sampled.h"
#include "util.h"

#define JSON_VERSION 1

void report_frames_json(FILE *f, const struct frame_info *frames, size_t n)
{
	fputc('[', f);
	for (size_t j = 0; j < n; j++) {
		const struct frame_info *fr = &frames[j];
		if (fr->not_recorded) {
			/* Python frames the shim did not record (a deeper stack;
			 * the count rounded down, trace_format.h) */
			fprintf(f, "%s{\"kind\":\"not_recorded\",\"frames_not_recorded_at_least\":%" PRIu32
				   ",\"function\":",
				j ? "," : "", fr->not_recorded);
			json_str(f, fr->function);
			fputs(",\"file\":null,\"line\":null,\"module\":null}", f);
			continue;
		}
		fprintf(f, "%s{\"kind\":\"%s\",\"function\":", j ? "," : "",
			fr->python ? "python" : fr->thread_start ? "thread" : "native");
		json_str(f, fr->function);
		fputs(",\"file\":", f);
		json_str(f, fr->file);
		if (fr->line > 0)
			fprintf(f, ",\"line\":%d", fr->line);
		else
			fputs(",\"line\":null", f);
		if (fr->python && fr->column > 0)
			fprintf(f, ",\"column\":%d", fr->column);
		else if (fr->python)
			fputs(",\"column\":null", f);
		fputs(",\"module\":", f);
		json_str(f, fr->module);
		if (!fr->python && !fr->thread_start)
			fprintf(f, ",\"address\":\"0x%" PRIx64 "\"", fr->ip);
		fputc('}', f);
	}
	fputc(']', f);
}

static void frames_json(FILE *f, const struct row *r)
{
	report_frames_json(f, r->frames, r->nframes);
}

/* sp: a sampled trace's spread of the kind (NULL for an exact trace) */
static void totals_json(FILE *f, const struct kind_totals *k, uint64_t at_peak,
			const struct spread_fig *sp)
{
	fprintf(f,
		"{\"allocations\":%" PRIu64 ",\"frees\":%" PRIu64 ",\"allocated_bytes\":%" PRIu64
		",\"live_bytes\":%" PRIu64 ",\"live_blocks\":%" PRIu64 ",\"live_at_peak_bytes\":%" PRIu64,
		k->allocs, k->frees, k->alloc_bytes, k->live_bytes, k->live_blocks, at_peak);
	if (sp) {
		fprintf(f, ",\"allocations_stderr\":%" PRIu64, sample_clamp(sqrt(sp->count_var)));
		sample_spread_json(f, "allocated", sp->alloc_var, sp->alloc_n);
		sample_spread_json(f, "live", sp->live_var, sp->live_n);
		sample_spread_json(f, "live_at_peak", sp->peak_var, sp->peak_n);
	}
	fputc('}', f);
}

void report_summary_json(FILE *f, const struct analysis *a, struct symbolizer *s)
{
	const struct trace *t = a->trace;
	struct kind_totals heap = {0};
	for (int k = 0; k < HW_KIND_COUNT; k++) {
		if (kind_class(k) != CLASS_HEAP)
			continue;
		heap.allocs += a->kinds[k].allocs;
		heap.frees += a->kinds[k].frees;
		heap.alloc_bytes += a->kinds[k].alloc_bytes;
		heap.live_bytes += a->kinds[k].live_bytes;
		heap.live_blocks += a->kinds[k].live_blocks;
	}
	fprintf(f, "{\"version\":%d,\"trace\":", JSON_VERSION);
	json_str(f, t->path);
	fprintf(f, ",\"pid\":%" PRIu64 ",\"ppid\":%" PRIu64 ",\"command\":", t->hdr.pid, t->hdr.ppid);
	json_str(f, t->cmdline);
	fputs(",\"executable\":", f);
	json_str(f, t->exe);
	sample_json(f, a->sample_interval);
	uint64_t leaked, leaked_blocks;
	char where[300];
	report_leaked(a, &leaked, &leaked_blocks);
	fprintf(f,
		",\"allocations\":%" PRIu64 ",\"frees\":%" PRIu64 ",\"allocated_bytes\":%" PRIu64
		",\"peak_bytes\":%" PRIu64 ",\"peak_time_s\":%.6f,\"leaked_bytes\":%" PRIu64
		",\"leaked_blocks\":%" PRIu64 ",\"duration_s\":%.6f,\"threads\":%u",
		heap.allocs, heap.frees, heap.alloc_bytes, a->peaks[CLASS_HEAP].peak,
		(double)a->peaks[CLASS_HEAP].peak_time_ns / 1e9, leaked, leaked_blocks,
		(double)a->end_time_ns / 1e9, a->threads);
	if (a->sample_interval) {
		struct spread_fig hs;
		sample_heap_spread(a, &hs);
		sample_spread_json(f, "peak", hs.peak_var, hs.peak_n);
		sample_spread_json(f, "leaked", hs.leak_var, hs.leak_n);
		sample_spread_json(f, "allocated", hs.alloc_var, hs.alloc_n);
		fprintf(f, ",\"allocations_stderr\":%" PRIu64, sample_clamp(sqrt(hs.count_var)));
		fprintf(f, ",\"frees_stderr\":%" PRIu64 ",\"leaked_blocks_stderr\":%" PRIu64,
			sample_clamp(sqrt(hs.free_count_var)), sample_clamp(sqrt(hs.leak_count_var)));
	}
	fputs(",\"leak_point\":", f);
	json_str(f, report_leak_point(a, where, sizeof(where)));
	fprintf(f, ",\"python\":%s", a->python_version ? "true" : "false");
	char missing[400];
	if (report_python_missing(a, missing, sizeof(missing))) { /* loaded after start */
		fputs(",\"python_not_traced\":", f);
		json_str(f, missing);
	}
	if (a->python_version) {
		unsigned v = (unsigned)a->python_version;
		fprintf(f, ",\"python_version\":\"%u.%u.%u\",\"python_free_threaded\":%s,"
			   "\"python_frames\":%s,\"python_frames_off\":",
			v >> 24 & 0xff, v >> 16 & 0xff, v >> 8 & 0xff,
			a->python_flags & HW_PY_FREE_THREADED ? "true" : "false",
			a->python_frames ? "true" : "false");
		if (a->python_frames)
			fputs("null", f);
		else
			json_str(f, a->python_off[0] ? a->python_off
						      : "this version's frames could not be read");
	}
	fprintf(f, ",\"truncated\":%s,\"clean_exit\":%s,\"rss_peak_bytes\":%" PRIu64
		   ",\"unmatched_frees\":%" PRIu64 ",\"events\":%" PRIu64,
		(t->damaged || !(a->clean_exit || a->execd || a->exited)) ? "true" : "false",
		a->clean_exit ? "true" : "false", a->rss_peak, a->unmatched_frees, a->events);
	/* the process replaced its image: into what (the path as the program
	 * gave it), when, and what was live then, which counts as not leaked;
	 * no "exec" key when it did not */
	/* the process ended through _exit or _Exit: its status (null when the
	 * trace's is not a number) and when */
	if (a->exited) {
		fputs(",\"exit_call\":{\"status\":", f);
		if (a->exit_status_known)
			fprintf(f, "%d", a->exit_status);
		else
			fputs("null", f);
		fprintf(f, ",\"time_s\":%.6f}", (double)a->exit_time_ns / 1e9);
	}
	if (a->execd) {
		const struct mark *m = &a->marks[a->exec_mark];
		fputs(",\"exec\":{\"path\":", f);
		json_str(f, m->label);
		fprintf(f, ",\"time_s\":%.6f", (double)m->time_ns / 1e9);
		if (a->leak_point == LEAK_AT_EXEC) /* else leaks were measured before it */
			fprintf(f, ",\"live_bytes\":%" PRIu64 ",\"live_blocks\":%" PRIu64,
				a->exec_live_bytes, a->exec_live_blocks);
		fputc('}', f);
	}
	char stop[400];
	if (trace_stop_note(t, stop, sizeof(stop))) {
		/* only when recording stopped early (the shim's stop record) */
		fprintf(f, ",\"recording_stopped\":{\"time_s\":%.6f,\"reason\":",
			(double)t->stop.time_ns / 1e9);
		json_str(f, trace_stop_code(t));
		fputs(",\"message\":", f);
		json_str(f, stop);
		fputc('}', f);
	}
	uint64_t at_peak[HW_KIND_COUNT];
	report_kind_peaks(a, at_peak);
	struct spread_fig ks[HW_KIND_COUNT];
	sample_kind_spread(a, ks);
	fputs(",\"kinds\":{", f);
	for (int k = 0; k < HW_KIND_COUNT; k++) {
		fprintf(f, "%s\"%s\":", k ? "," : "", kind_name(k));
		totals_json(f, &a->kinds[k], at_peak[k], a->sample_interval ? &ks[k] : NULL);
	}
	fputs("},\"classes\":{", f);
	for (int c = 0; c < CLASS_COUNT; c++)
		fprintf(f, "%s\"%s\":{\"peak_bytes\":%" PRIu64 ",\"peak_time_s\":%.6f}", c ? "," : "",
			class_name(c), a->peaks[c].peak, (double)a->peaks[c].peak_time_ns / 1e9);
	fputs("}", f);
	if (s) {
		/* the live set at the heap's high-water mark, by callsite */
		struct report r;
		report_build_peak(&r, a, s, 10, false);
		fprintf(f, ",\"peak\":{\"bytes\":%" PRIu64 ",\"time_s\":%.6f,\"callsites\":[",
			a->peaks[CLASS_HEAP].peak, (double)a->peaks[CLASS_HEAP].peak_time_ns / 1e9);
		for (size_t i = 0, shown = 0; i < r.n && shown < 10; i++) {
			const struct row *row = &r.rows[i];
			if (row->cls != CLASS_HEAP || !row->peak_bytes)
				continue;
			fprintf(f, "%s{\"peak_bytes\":%" PRIu64, shown ? "," : "", row->peak_bytes);
			if (a->sample_interval)
				sample_spread_json(f, "peak", row->peak_var, row->peak_samples);
			fputs(",\"frames\":", f);
			frames_json(f, row);
			fputc('}', f);
			shown++;
		}
		fputs("]}", f);
		report_free(&r);
	}
	fputs("}\n", f);
}

void report_rows_json(FILE *f, const struct analysis *a, const struct report *r, size_t n)
{
	if (!n || n > r->n)
		n = r->n;
	fprintf(f, "{\"version\":%d,\"trace\":", JSON_VERSION);
	json_str(f, a->trace->path);
	sample_json(f, a->sample_interval);
	fprintf(f, ",\"sort_by\":\"%s\",\"group_by\":\"%s\",\"peak_bytes\":%" PRIu64 ",\"callsites\":",
		sort_name(r->by), group_name(r->group), a->peaks[CLASS_HEAP].peak);
	report_callsites_json(f, r, n);
	fputs("}\n", f);
}

void report_callsites_json(FILE *f, const struct report *r, size_t n)
{
	if (!n || n > r->n)
		n = r->n;
	fputc('[', f);
	for (size_t i = 0; i < n; i++) {
		const struct row *row = &r->rows[i];
		fprintf(f,
			"%s\n{\"peak_bytes\":%" PRIu64 ",\"leaked_bytes\":%" PRIu64
			",\"leaked_blocks\":%" PRIu64 ",\"allocated_bytes\":%" PRIu64 ",\"count\":%" PRIu64
			",\"temporary\":%" PRIu64 ",\"temporary_bytes\":%" PRIu64,
			i ? "," : "", row->peak_bytes, row->leaked_bytes, row->leaked_blocks,
			row->allocated_bytes, row->count, row->temporary, row->temporary_bytes);
		if (r->sample_interval) {
			sample_spread_json(f, "peak", row->peak_var, row->peak_samples);
			sample_spread_json(f, "leaked", row->leaked_var, row->leaked_samples);
			sample_spread_json(f, "allocated", row->allocated_var, row->allocated_samples);
			fprintf(f, ",\"count_stderr\":%" PRIu64, sample_clamp(sqrt(row->count_var)));
		}
		fputc(',', f);
		report_kinds_json(f, row);
		fputs(",\"frames\":", f);
		frames_json(f, row);
		for (size_t j = 0; j < row->nframes; j++)
			symbolizer_shown(row->sym, &row->frames[j]);
		fputc('}', f);
	}
	fputc(']', f);
}
