/* heapwise lines (analyzer, reports stage): the program's source, line by
 * line, with what each line allocated, had live at the heap's peak and
 * leaked, and how many allocations it made: memory_profiler's view, exact
 * and for the whole run. The figures are top --group-by line's rows (the
 * same build, the blamed line of usercode.h), summed over memory classes. */
#include "report_lines.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "escape.h"
#include "sampled.h"
#include "util.h"

/* A file longer than this shows only its lines with figures and a little
 * context around them, unless --all. */
#define SHORT_FILE 80
#define CONTEXT 2
/* Source files larger than this are not read (lines with figures only). */
#define MAX_SOURCE (64u << 20)

struct line_fig {
	const char *file; /* the code objects' co_filename */
	int line; /* 0: not known */
	uint64_t alloc, peak, leaked, leaked_blocks, count;
	/* a sampled trace: the variances and samples of the estimates */
	double alloc_var, peak_var, leaked_var;
	uint64_t alloc_n, peak_n, leaked_n;
};

struct source {
	char *text;
	size_t len;
	char **lines; /* starts; lines[i] is line i + 1, NUL-terminated */
	size_t *lens;
	size_t n;
	int err; /* errno when it could not be read, else 0 */
};

static int cmp_figs(const void *x, const void *y)
{
	const struct line_fig *a = x, *b = y;
	int c = strcmp(a->file, b->file);
	if (c)
		return c;
	return a->line < b->line ? -1 : a->line > b->line;
}

static bool g_no_sources;
static bool g_sampled; /* the report's trace is sampled: show the intervals */
static uint64_t g_interval; /* its interval */
static uint64_t g_start_ns; /* the trace's start, ns since the epoch (0: not known) */

void report_lines_no_sources(void)
{
	g_no_sources = true;
}

/* A source modified after the run started shows its lines now against the
 * line numbers of then: says so (a file is read once per report). */
static void warn_if_changed(int fd, const char *path)
{
	struct stat st;
	if (!g_start_ns || fstat(fd, &st))
		return;
	uint64_t mtime = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec;
	if (st.st_mtim.tv_sec < 0 || mtime <= g_start_ns)
		return;
	char shown[600], when[64], start[64];
	text_escape(shown, sizeof(shown), path);
	struct tm tm;
	time_t t = st.st_mtim.tv_sec, s0 = (time_t)(g_start_ns / 1000000000u);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
	strftime(start, sizeof(start), "%Y-%m-%d %H:%M:%S", localtime_r(&s0, &tm));
	warn_print("lines: %s was modified at %s, after the run started (%s): the source shown may "
		   "not be the one the line numbers are of",
		   shown, when, start);
}

/* Reads a file the trace names: only a regular file, never blocking
 * (symbolize_open_regular), at most MAX_SOURCE bytes. */
static void source_read(struct source *src, const char *path)
{
	memset(src, 0, sizeof(*src));
	if (g_no_sources) {
		src->err = EPERM;
		return;
	}
	if (path[0] == '<') { /* <frozen ...>, <string>: no file */
		src->err = -1;
		return;
	}
	int fd = symbolize_open_regular(path);
	if (fd < 0) {
		src->err = errno ? errno : EINVAL;
		return;
	}
	warn_if_changed(fd, path);
	size_t cap = 1 << 16, len = 0;
	char *buf = xmalloc(cap + 1);
	for (;;) {
		if (len == cap) {
			if (cap >= MAX_SOURCE) {
				src->err = EFBIG;
				break;
			}
			cap *= 2;
			buf = xrealloc(buf, cap + 1);
		}
		ssize_t k = read(fd, buf + len, cap - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			src->err = errno;
			break;
		}
		if (!k)
			break;
		len += (size_t)k;
	}
	close(fd);
	if (src->err) {
		free(buf);
		return;
	}
	buf[len] = 0;
	src->text = buf;
	src->len = len;
	size_t n = 0, lcap = 0;
	for (size_t i = 0; i < len;) {
		size_t e = i;
		while (e < len && buf[e] != '\n')
			e++;
		size_t l = e - i;
		if (l && buf[i + l - 1] == '\r') /* CRLF */
			l--;
		if (n == lcap) {
			lcap = lcap ? lcap * 2 : 256;
			src->lines = xrealloc(src->lines, lcap * sizeof(*src->lines));
			src->lens = xrealloc(src->lens, lcap * sizeof(*src->lens));
		}
		buf[i + l] = 0;
		src->lines[n] = buf + i;
		src->lens[n++] = l;
		i = e + 1;
	}
	src->n = n;
}

static void source_free(struct source *src)
{
	free(src->text);
	free(src->lines);
	free(src->lens);
}

/* A source line for display: tabs expanded (stops of 8) and each NUL as
 * the text \x00 (escaped with the rest by the renderer). Free it. */
static char *source_line(const struct source *src, int line)
{
	if (line < 1 || (size_t)line > src->n)
		return NULL;
	const char *s = src->lines[line - 1];
	size_t len = src->lens[line - 1], col = 0, o = 0;
	size_t cap = len * 8 + 1;
	char *out = xmalloc(cap);
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\t') {
			do
				out[o++] = ' ';
			while (++col % 8);
		} else if (!s[i]) {
			memcpy(out + o, "\\x00", 4);
			o += 4;
			col += 4;
		} else {
			out[o++] = s[i];
			col += ((unsigned char)s[i] & 0xc0) != 0x80; /* one per character */
		}
	}
	out[o] = 0;
	return out;
}

/* Does FILE (as given on the command line) name the trace's file? The
 * same text, the trace's path ending in /FILE, or the same file on disk. */
static bool names(const char *arg, const char *real, const char *file)
{
	if (!strcmp(arg, file))
		return true;
	size_t la = strlen(arg), lf = strlen(file);
	if (arg[0] != '/' && lf > la && file[lf - la - 1] == '/' && !strcmp(file + lf - la, arg))
		return true;
	return real && !strcmp(real, file);
}

struct file_group {
	const struct line_fig *figs;
	size_t n;
	struct line_fig total;
	bool named; /* chosen by a FILE argument */
	size_t order; /* the argument's index */
};

static int cmp_groups(const void *x, const void *y)
{
	const struct file_group *a = x, *b = y;
	if (a->order != b->order)
		return a->order < b->order ? -1 : 1;
	if (a->total.peak != b->total.peak)
		return a->total.peak > b->total.peak ? -1 : 1;
	if (a->total.alloc != b->total.alloc)
		return a->total.alloc > b->total.alloc ? -1 : 1;
	return strcmp(a->total.file, b->total.file);
}

static void add(struct line_fig *d, const struct line_fig *s)
{
	d->alloc += s->alloc;
	d->peak += s->peak;
	d->leaked += s->leaked;
	d->leaked_blocks += s->leaked_blocks;
	d->count += s->count;
	d->alloc_var += s->alloc_var;
	d->peak_var += s->peak_var;
	d->leaked_var += s->leaked_var;
	d->alloc_n += s->alloc_n;
	d->peak_n += s->peak_n;
	d->leaked_n += s->leaked_n;
}

static bool has_figures(const struct line_fig *l)
{
	return l->alloc || l->peak || l->leaked || l->count;
}

/* Which lines of a file are shown: all of a short file (or with all),
 * else those with figures and CONTEXT lines around them. */
static bool *shown_lines(const struct file_group *g, const struct source *src, bool all)
{
	size_t n = src->n;
	bool *show = xcalloc(n + 2, sizeof(*show));
	bool every = all || n <= SHORT_FILE;
	for (size_t i = 1; i <= n; i++)
		show[i] = every;
	for (size_t k = 0; k < g->n && !every; k++) {
		int l = g->figs[k].line;
		for (int d = -CONTEXT; d <= CONTEXT; d++)
			if (l + d >= 1 && (size_t)(l + d) <= n)
				show[l + d] = true;
	}
	return show;
}

static const char *source_error(int err)
{
	return err < 0 ? "a pseudo-file, no source" : err == EINVAL ? "not a regular file" : strerror(err);
}

/* The rows of one file's listing, in order: figures without a line number,
 * the source lines shown (a GAP where shown lines skip some), then figures
 * past the end of the source (or of a file that could not be read). */
enum row_kind { ROW_NO_LINE, ROW_LINE, ROW_GAP, ROW_PAST, ROW_END };

struct row_walk {
	const struct file_group *g;
	const struct source *src;
	bool *show;
	size_t k; /* the next figure */
	size_t line; /* the next source line */
	bool skipped; /* lines were skipped since the last row shown */
};

static void row_walk_init(struct row_walk *w, const struct file_group *g, const struct source *src,
			  bool all)
{
	*w = (struct row_walk){g, src, shown_lines(g, src, all), 0, 1, false};
}

/* The next row: its kind, its line (ROW_LINE, ROW_PAST) and its figures
 * (*l NULL on a source line without any). */
static enum row_kind row_next(struct row_walk *w, size_t *line, const struct line_fig **l)
{
	const struct file_group *g = w->g;
	*l = NULL;
	if (w->line == 1 && w->k < g->n && g->figs[w->k].line < 1) {
		*l = &g->figs[w->k++];
		return ROW_NO_LINE;
	}
	for (; w->line <= w->src->n; w->line++) {
		if (!w->show[w->line]) {
			if (w->k < g->n && g->figs[w->k].line == (int)w->line)
				w->k++;
			w->skipped = true;
			continue;
		}
		if (w->skipped) {
			w->skipped = false;
			return ROW_GAP;
		}
		*line = w->line++;
		if (w->k < g->n && g->figs[w->k].line == (int)*line)
			*l = &g->figs[w->k++];
		return ROW_LINE;
	}
	if (w->skipped) {
		w->skipped = false;
		return ROW_GAP;
	}
	if (w->k < g->n) {
		*l = &g->figs[w->k++];
		*line = (size_t)(*l)->line;
		return ROW_PAST;
	}
	return ROW_END;
}

static void text_figs(FILE *f, const struct line_fig *l)
{
	char b1[32], b2[32], b3[32];
	if (!l || !has_figures(l)) {
		fprintf(f, "%-11s %-11s %-11s %-9s ", "", "", "", "");
		if (g_sampled)
			fprintf(f, "%-14s ", "");
		return;
	}
	fprintf(f, "%-11s %-11s %-11s %-9" PRIu64 " ", fmt_size(b1, l->alloc), fmt_size(b2, l->peak),
		l->leaked ? fmt_size(b3, l->leaked) : "", l->count);
	if (g_sampled) {
		/* the half width of the peak's 95% interval; "?" under
		 * HW_FEW_SAMPLES samples */
		char pm[48] = "exact";
		double h = sample_half95(l->peak_var);
		if (l->peak_var >= 1 || !l->peak) /* as sample_pm */
			snprintf(pm, sizeof(pm), "\u00b1 %s%s", fmt_size(b1, sample_clamp(h)),
				 l->peak_n < HW_FEW_SAMPLES ? " ?" : "");
		fprintf(f, "%-15s ", pm); /* "\u00b1" is two bytes */
	}
}

static void text_file(FILE *f, const struct file_group *g, bool all, bool color)
{
	struct source src;
	source_read(&src, g->total.file);
	char b1[32], b2[32], b3[32];
	fputs("\n", f);
	text_str(f, g->total.file);
	fprintf(f, ": %s allocated in %" PRIu64 " allocation%s, %s live at the heap's peak, %s leaked\n",
		fmt_size(b1, g->total.alloc), g->total.count, g->total.count == 1 ? "" : "s",
		fmt_size(b2, g->total.peak),
		fmt_size(b3, g->total.leaked));
	if (src.err)
		fprintf(f, "  (source not shown: %s; the lines with figures only)\n",
			source_error(src.err));
	if (g_sampled)
		fprintf(f, "  PEAK \u00b1 is its 95%% interval (? under %d samples: unreliable)\n",
			HW_FEW_SAMPLES);
	fprintf(f, "  %6s  %-11s %-11s %-11s %-9s %s%s\n", "LINE", "ALLOCATED", "PEAK", "LEAKED",
		"COUNT", g_sampled ? "PEAK \u00b1         " : "", "SOURCE");
	struct row_walk w;
	row_walk_init(&w, g, &src, all);
	size_t line;
	const struct line_fig *l;
	for (enum row_kind kind; (kind = row_next(&w, &line, &l)) != ROW_END;) {
		if (kind == ROW_GAP) {
			fputs("     ...\n", f);
			continue;
		}
		bool dim = color && !l;
		if (dim)
			fputs("\033[2m", f);
		if (kind == ROW_NO_LINE)
			fprintf(f, "  %6s  ", "?");
		else
			fprintf(f, "  %6zu  ", line);
		text_figs(f, l);
		if (kind == ROW_LINE) {
			char *s = source_line(&src, (int)line);
			text_str(f, s);
			free(s);
		} else if (kind == ROW_NO_LINE) {
			fputs("(no line number)", f);
		} else if (!src.err) {
			fputs("(past the end of the file: it changed since the trace?)", f);
		}
		fputs(dim ? "\033[0m\n" : "\n", f);
	}
	free(w.show);
	source_free(&src);
}

static void json_file(FILE *f, const struct file_group *g)
{
	struct source src;
	source_read(&src, g->total.file);
	fputs("{\"file\":", f);
	json_str(f, g->total.file);
	fprintf(f, ",\"source_readable\":%s,\"lines\":[", src.err ? "false" : "true");
	for (size_t k = 0; k < g->n; k++) {
		const struct line_fig *l = &g->figs[k];
		fprintf(f, "%s{\"line\":", k ? "," : "");
		if (l->line > 0)
			fprintf(f, "%d", l->line);
		else
			fputs("null", f);
		fprintf(f,
			",\"allocated_bytes\":%" PRIu64 ",\"peak_bytes\":%" PRIu64
			",\"leaked_bytes\":%" PRIu64 ",\"leaked_blocks\":%" PRIu64 ",\"count\":%" PRIu64
			"",
			l->alloc, l->peak, l->leaked, l->leaked_blocks, l->count);
		if (g_sampled) {
			sample_spread_json(f, "allocated", l->alloc_var, l->alloc_n);
			sample_spread_json(f, "peak", l->peak_var, l->peak_n);
			sample_spread_json(f, "leaked", l->leaked_var, l->leaked_n);
		}
		fputs(",\"source\":", f);
		char *s = source_line(&src, l->line);
		json_str(f, s);
		free(s);
		fputc('}', f);
	}
	fputs("]}", f);
	source_free(&src);
}

static const char html_style[] =
	"<style>body{font:13px system-ui,sans-serif;margin:16px;color:#222}"
	"h2{font-size:15px;margin:22px 0 4px}p{margin:2px 0 8px}"
	"table{border-collapse:collapse}td,th{padding:0 6px;white-space:nowrap;vertical-align:top}"
	"th{text-align:left;border-bottom:1px solid #bbb}"
	"td.n{text-align:right;font-variant-numeric:tabular-nums}"
	"td.s{font:12px ui-monospace,monospace;white-space:pre}"
	"tr.z td{color:#aaa}tr.g td{color:#888;text-align:center}"
	".bar{height:11px;width:160px;position:relative;background:#f4f4f4}"
	".bar div{position:absolute;left:0}.a{top:0;height:11px;background:#c9d7ea}"
	".p{top:2px;height:7px;background:#2f6db5}.l{top:4px;height:3px;background:#d03030}"
	"</style>\n";

static void html_bar(FILE *f, const struct line_fig *l, uint64_t max)
{
	fputs("<td><div class=\"bar\">", f);
	if (l && max) {
		const char *cls[] = {"a", "p", "l"};
		uint64_t v[] = {l->alloc, l->peak, l->leaked};
		for (int i = 0; i < 3; i++)
			if (v[i])
				fprintf(f, "<div class=\"%s\" style=\"width:%.2f%%\"></div>", cls[i],
					100.0 * (double)(v[i] > max ? max : v[i]) / (double)max);
	}
	fputs("</div></td>", f);
}

static void html_row(FILE *f, const char *line, const struct line_fig *l, const char *src,
		     uint64_t max)
{
	char b1[32], b2[32], b3[32];
	fprintf(f, "<tr%s><td class=\"n\">%s</td>", l ? "" : " class=\"z\"", line);
	html_bar(f, l, max);
	char pm[100] = "";
	if (l && g_sampled) {
		char b4[96];
		snprintf(pm, sizeof(pm), " %s", sample_pm(b4, l->peak, l->peak_var, l->peak_n));
	}
	if (l)
		fprintf(f,
			"<td class=\"n\">%s</td><td class=\"n\">%s%s</td><td class=\"n\">%s</td>"
			"<td class=\"n\">%" PRIu64 "</td>",
			fmt_size(b1, l->alloc), fmt_size(b2, l->peak), pm,
			l->leaked ? fmt_size(b3, l->leaked) : "", l->count);
	else
		fputs("<td></td><td></td><td></td><td></td>", f);
	fputs("<td class=\"s\">", f);
	xml_text(f, src ? src : "");
	fputs("</td></tr>\n", f);
}

static void html_file(FILE *f, const struct file_group *g, uint64_t max, bool all)
{
	struct source src;
	source_read(&src, g->total.file);
	char b1[32], b2[32], b3[32], num[32];
	fputs("<h2>", f);
	xml_text(f, g->total.file);
	fprintf(f, "</h2>\n<p>%s allocated in %" PRIu64 " allocation%s, %s live at the heap's peak, "
		   "%s leaked",
		fmt_size(b1, g->total.alloc), g->total.count, g->total.count == 1 ? "" : "s",
		fmt_size(b2, g->total.peak),
		fmt_size(b3, g->total.leaked));
	if (src.err)
		fprintf(f, " (source not shown: %s)", source_error(src.err));
	fputs("</p>\n<table><tr><th>line</th><th>allocated / peak / leaked</th><th>allocated</th>"
	      "<th>peak</th><th>leaked</th><th>count</th><th>source</th></tr>\n",
	      f);
	struct row_walk w;
	row_walk_init(&w, g, &src, all);
	size_t line;
	const struct line_fig *l;
	for (enum row_kind kind; (kind = row_next(&w, &line, &l)) != ROW_END;) {
		if (kind == ROW_GAP) {
			fputs("<tr class=\"g\"><td colspan=\"7\">&#8942;</td></tr>\n", f);
		} else if (kind == ROW_NO_LINE) {
			html_row(f, "?", l, "(no line number)", max);
		} else if (kind == ROW_PAST) {
			snprintf(num, sizeof(num), "%zu", line);
			html_row(f, num, l, src.err ? "" : "(past the end of the file)", max);
		} else {
			char *s = source_line(&src, (int)line);
			snprintf(num, sizeof(num), "%zu", line);
			html_row(f, num, l, s, max);
			free(s);
		}
	}
	fputs("</table>\n", f);
	free(w.show);
	source_free(&src);
}

int report_lines(FILE *f, const struct analysis *a, struct symbolizer *s, char *const *files,
		 size_t nfiles, enum lines_format fmt, bool all, bool color, const char *title)
{
	struct report r;
	g_sampled = a->sample_interval != 0;
	g_interval = a->sample_interval;
	g_start_ns = a->trace ? a->trace->hdr.start_realtime_ns : 0;
	report_build(&r, a, s, GROUP_LINE, BY_ALLOCATED, false);
	struct line_fig *figs = xmalloc((r.n + 1) * sizeof(*figs));
	size_t n = 0;
	struct line_fig everything = {0};
	for (size_t i = 0; i < r.n; i++) {
		const struct row *row = &r.rows[i];
		struct line_fig l = {NULL,
				     0,
				     row->allocated_bytes,
				     row->peak_bytes,
				     row->leaked_bytes,
				     row->leaked_blocks,
				     row->count,
				     row->allocated_var,
				     row->peak_var,
				     row->leaked_var,
				     row->allocated_samples,
				     row->peak_samples,
				     row->leaked_samples};
		add(&everything, &l);
		if (!row->nframes || !row->frames[0].python || !row->frames[0].file)
			continue;
		l.file = row->frames[0].file;
		l.line = row->frames[0].line;
		figs[n++] = l;
	}
	if (n > 1)
		qsort(figs, n, sizeof(*figs), cmp_figs);
	/* one line of several memory classes (heap, mmap) is one */
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (m && !cmp_figs(&figs[m - 1], &figs[i]))
			add(&figs[m - 1], &figs[i]);
		else
			figs[m++] = figs[i];
	}
	n = m;
	struct file_group *groups = xmalloc((n + 1) * sizeof(*groups));
	size_t ng = 0;
	for (size_t i = 0; i < n; i++) {
		if (!ng || strcmp(groups[ng - 1].total.file, figs[i].file))
			groups[ng++] = (struct file_group){&figs[i], 0, {figs[i].file, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
							   false, SIZE_MAX};
		groups[ng - 1].n++;
		add(&groups[ng - 1].total, &figs[i]);
	}
	int rc = 0;
	if (nfiles) {
		for (size_t j = 0; j < nfiles; j++) {
			char *real = realpath(files[j], NULL);
			bool any = false;
			for (size_t g = 0; g < ng; g++) {
				if (!names(files[j], real, groups[g].total.file))
					continue;
				any = true;
				if (!groups[g].named)
					groups[g].order = j;
				groups[g].named = true;
			}
			free(real);
			if (!any) {
				char shown[600];
				text_escape(shown, sizeof(shown), files[j]);
				warn_print("lines: %s: no line of the trace is in this file (a path as the program named it, or its end: app.py, pkg/mod.py)",
					   shown);
			}
		}
		size_t k = 0;
		for (size_t g = 0; g < ng; g++)
			if (groups[g].named)
				groups[k++] = groups[g];
		ng = k;
		if (!ng) {
			err_print("lines: no FILE given is a file the trace has lines of");
			rc = 2;
		}
	}
	if (!nfiles) { /* the user's files (usercode.h), if the trace has any */
		size_t k = 0;
		for (size_t g = 0; g < ng; g++)
			if (!usercode_is_library(groups[g].total.file))
				groups[k++] = groups[g];
		if (k)
			ng = k;
	}
	if (ng > 1)
		qsort(groups, ng, sizeof(*groups), cmp_groups);
	struct line_fig shown = {0};
	uint64_t max = 0;
	for (size_t g = 0; g < ng; g++) {
		add(&shown, &groups[g].total);
		for (size_t k = 0; k < groups[g].n; k++) {
			const struct line_fig *l = &groups[g].figs[k];
			uint64_t v = l->alloc > l->peak ? l->alloc : l->peak;
			max = v > max ? v : max;
		}
	}
	char b1[32], b2[32];
	if (rc) {
		/* nothing */
	} else if (fmt == LINES_JSON) {
		fputs("{\"version\":1,\"blame\":", f);
		json_str(f, blame_name(report_blame()));
		sample_json(f, g_interval);
		fprintf(f, ",\"allocated_bytes\":%" PRIu64 ",\"files\":[", everything.alloc);
		for (size_t g = 0; g < ng; g++) {
			if (g)
				fputc(',', f);
			json_file(f, &groups[g]);
		}
		fputs("]}\n", f);
	} else if (fmt == LINES_HTML) {
		fputs(report_html_head, f);
		xml_text(f, title);
		fputs("</title>\n", f);
		fputs(html_style, f);
		fputs("</head><body>\n<h1 style=\"font-size:17px\">", f);
		xml_text(f, title);
		fprintf(f, "</h1>\n<p>Per line of the program (its own code's line under library calls, as "
			   "<code>top --group-by line</code>): bytes allocated, live at the heap's peak "
			   "and leaked, and the allocations. Bars: allocated (light), peak (blue), leaked "
			   "(red), against the largest line. These lines hold %s of the %s allocated.</p>\n",
			fmt_size(b1, shown.alloc), fmt_size(b2, everything.alloc));
		if (g_sampled) {
			char note[160];
			fprintf(f, "<p class=\"sampled\">The trace is %s; \u00b1: 95%% intervals.</p>\n",
				sample_note(g_interval, note, sizeof(note)));
		}
		for (size_t g = 0; g < ng; g++)
			html_file(f, &groups[g], max, all);
		fputs("</body></html>\n", f);
	} else {
		text_str(f, title);
		fprintf(f, "\nper line (its own code's line, as top --group-by line): bytes allocated, live at the heap's peak, leaked, and allocations\n");
		if (g_sampled) {
			char note[160];
			fprintf(f, "%s\n", sample_note(g_interval, note, sizeof(note)));
		}
		for (size_t g = 0; g < ng; g++)
			text_file(f, &groups[g], all, color);
		fprintf(f, "\nthese lines hold %s of the %s allocated", fmt_size(b1, shown.alloc),
			fmt_size(b2, everything.alloc));
		fputs(shown.alloc < everything.alloc
			      ? " (the rest: the standard library's, packages' and other files' lines (name them\n"
				"as FILE), or no Python frame: see top --group-by line)\n"
			      : "\n",
		      f);
	}
	free(groups);
	free(figs);
	report_free(&r);
	return rc;
}
