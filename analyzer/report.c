/* Row model (analyzer, reports stage): turns per-site aggregates into rows,
 * symbolizing each canonical stack once and grouping by key. */
#include "report.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "util.h"

#define MAX_FRAMES 1024

const char report_html_head[] =
	"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
	"style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n<title>";

const char *sort_name(enum sort_by by)
{
	static const char *const n[] = {"peak", "leaked", "allocated", "count", "temporary"};
	return n[by];
}

bool parse_group_option(const char *cmd, const char *text, enum group_by *out)
{
	for (int g = GROUP_STACK; g <= GROUP_FILE; g++) {
		if (!strcmp(text, group_name((enum group_by)g))) {
			*out = (enum group_by)g;
			return true;
		}
	}
	err_print("%s: --group-by %s: expected stack, line, function or file", cmd, text);
	return false;
}

const char *group_name(enum group_by g)
{
	static const char *const n[] = {"stack", "line", "function", "file"};
	return n[g];
}

static int *g_lines; /* per canonical node: decoded line, INT32_MIN = not yet */
static const struct analysis *g_lines_for;

static void lines_for(const struct analysis *a)
{
	if (g_lines && g_lines_for == a)
		return;
	free(g_lines);
	g_lines = xmalloc((a->st.ncnodes + 1) * sizeof(*g_lines));
	for (size_t i = 0; i <= a->st.ncnodes; i++)
		g_lines[i] = INT32_MIN;
	g_lines_for = a;
}

void report_stack_frames_done(void)
{
	free(g_lines);
	g_lines = NULL;
	g_lines_for = NULL;
}

static bool python_frame(const struct analysis *a, uint32_t c, struct frame_info *out)
{
	const struct cnode *cn = &a->st.cnodes[c];
	const struct pycode *code = pycode_find(&a->codes, (uint32_t)(cn->frame >> 32));
	if (!code)
		return false;
	int lasti = (int)(cn->frame & 0xffffffffu) - 1;
	if (g_lines[c] == INT32_MIN)
		g_lines[c] = pycode_addr2line(code->linetable, code->linetable_len, code->first_line,
					      lasti);
	*out = (struct frame_info){.python = true,
				   .function = code->qualname,
				   .file = code->filename,
				   .line = g_lines[c] > 0 ? g_lines[c] : 0};
	return true;
}

/* Symbolized frames of a canonical stack, innermost first. With more (a text
 * report) only the frames it prints: from the innermost Python frame
 * REPORT_TEXT_FRAMES outwards (without a Python frame: the first
 * REPORT_TEXT_FRAMES) and the native frames below it; the stack entries past
 * them are only counted, in *more. The debug information of the libraries at
 * the bottom of every stack (libc's start-up code) was the slowest part of
 * `top`. */
static size_t stack_frames(const struct analysis *a, struct symbolizer *s, uint32_t canon,
			   struct frame_info *out, size_t max, size_t *more)
{
	size_t n = 0, past = 0, need = SIZE_MAX;
	bool wait_python = false; /* need is set at the first Python frame */
	if (more) {
		need = REPORT_TEXT_FRAMES;
		for (uint32_t c = canon; c != HW_NO_NODE && !wait_python; c = a->st.cnodes[c].parent)
			wait_python = a->st.cnodes[c].frame_kind == HW_FRAME_PYTHON;
		if (wait_python)
			need = SIZE_MAX;
	}
	for (uint32_t c = canon; c != HW_NO_NODE && n + past < max; c = a->st.cnodes[c].parent) {
		const struct cnode *cn = &a->st.cnodes[c];
		struct frame_info py;
		if (cn->frame_kind == HW_FRAME_PYTHON) {
			if (!python_frame(a, c, &py))
				continue;
			if (n >= need) {
				past++;
				continue;
			}
			if (wait_python) {
				need = n + REPORT_TEXT_FRAMES;
				wait_python = false;
			}
			out[n++] = py;
			continue;
		}
		if (cn->frame_kind != HW_FRAME_NATIVE)
			continue;
		if (n >= need) {
			past++; /* one per return address: its inlined calls are not known */
			continue;
		}
		const struct frame_info *fr;
		size_t k = symbolize_native(s, cn->frame, cn->def_seq, &fr);
		for (size_t i = 0; i < k && n < max; i++)
			out[n++] = fr[i];
	}
	if (more)
		*more = past;
	return n;
}

size_t report_stack_frames(const struct analysis *a, struct symbolizer *s, uint32_t raw_stack,
			   struct frame_info *out, size_t max)
{
	lines_for(a);
	return stack_frames(a, s, stack_table_canon(&a->st, raw_stack), out, max, NULL);
}

size_t report_first_python(const struct frame_info *frames, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (frames[i].python)
			return i;
	return n;
}

static char *frame_key(const struct frame_info *f, enum group_by g)
{
	char buf[2048];
	const char *fn = f->function ? f->function : "??";
	const char *mod = f->module ? f->module : "??";
	switch (g) {
	case GROUP_LINE:
		if (f->python)
			snprintf(buf, sizeof(buf), "py\x1f%s:%d", f->file, f->line);
		else if (f->file)
			snprintf(buf, sizeof(buf), "%s:%d", f->file, f->line);
		else
			snprintf(buf, sizeof(buf), "%s+%" PRIx64, mod, f->module_offset);
		break;
	case GROUP_FUNCTION:
		snprintf(buf, sizeof(buf), "%s\x1f%s", fn, f->function ? mod : "");
		if (f->python)
			snprintf(buf, sizeof(buf), "py\x1f%s\x1f%s", fn, f->file);
		else if (!f->function)
			snprintf(buf, sizeof(buf), "%s+%" PRIx64, mod, f->module_offset);
		break;
	default:
		snprintf(buf, sizeof(buf), "%s", f->file ? f->file : mod);
		break;
	}
	return xstrndup(buf, strlen(buf));
}

static uint64_t metric(const struct row *r, enum sort_by by)
{
	switch (by) {
	case BY_PEAK:
		return r->peak_bytes;
	case BY_LEAKED:
		return r->leaked_bytes;
	case BY_ALLOCATED:
		return r->allocated_bytes;
	case BY_TEMPORARY:
		return r->temporary;
	default:
		return r->count;
	}
}

static enum sort_by g_sort;

static int cmp_rows(const void *x, const void *y)
{
	const struct row *a = x, *b = y;
	uint64_t ma = metric(a, g_sort), mb = metric(b, g_sort);
	if (ma != mb)
		return ma > mb ? -1 : 1;
	if (a->allocated_bytes != b->allocated_bytes)
		return a->allocated_bytes > b->allocated_bytes ? -1 : 1;
	return strcmp(a->key, b->key);
}

static int cmp_keys(const void *x, const void *y)
{
	const struct row *a = x, *b = y;
	int c = strcmp(a->key, b->key);
	if (c)
		return c;
	return a->cls - b->cls;
}

/* The frame a grouped row is keyed by: the innermost Python frame, else
 * the innermost frame; only that one is symbolized. */
static size_t key_frame(const struct analysis *a, struct symbolizer *s, uint32_t canon,
			struct frame_info *out)
{
	for (uint32_t c = canon; c != HW_NO_NODE; c = a->st.cnodes[c].parent)
		if (a->st.cnodes[c].frame_kind == HW_FRAME_PYTHON && python_frame(a, c, out))
			return 1;
	return stack_frames(a, s, canon, out, 1, NULL);
}

static int cmp_text(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "");
}

/* Which of two parts of a merged row names it: more of `by`, then of
 * allocated bytes, then the function and file names (a fixed choice). */
static bool part_shown_before(const struct row *x, const struct row *y, enum sort_by by)
{
	uint64_t mx = metric(x, by), my = metric(y, by);
	if (mx != my)
		return mx > my;
	if (x->allocated_bytes != y->allocated_bytes)
		return x->allocated_bytes > y->allocated_bytes;
	const struct frame_info *fx = x->nframes ? &x->frames[0] : NULL;
	const struct frame_info *fy = y->nframes ? &y->frames[0] : NULL;
	if (!fx || !fy)
		return fx != NULL;
	int c = cmp_text(fx->function, fy->function);
	return c ? c < 0 : cmp_text(fx->file, fy->file) < 0;
}

/* With framed false (by stack only), the rows get no frames. */
static void build(struct report *r, const struct analysis *a, struct symbolizer *s,
		  enum group_by group, enum sort_by by, bool only_leaks, bool framed)
{
	memset(r, 0, sizeof(*r));
	r->by = by;
	r->group = group;
	struct row *rows = xcalloc(a->nsites + 1, sizeof(*rows));
	size_t n = 0;
	struct frame_info *tmp = xmalloc(MAX_FRAMES * sizeof(*tmp));
	lines_for(a);
	for (size_t i = 0; i < a->nsites; i++) {
		const struct site *st = &a->sites[i];
		struct row *row = &rows[n];
		row->peak_bytes = site_peak_bytes(a, st);
		row->leaked_bytes = st->eligible ? st->leak_bytes : 0;
		row->leaked_blocks = st->eligible ? st->leak_blocks : 0;
		row->allocated_bytes = st->alloc_bytes;
		row->count = st->allocs;
		row->temporary = st->temp_count;
		row->temporary_bytes = st->temp_bytes;
		row->cls = st->cls;
		row->kind = st->kind;
		if (only_leaks && !row->leaked_bytes)
			continue;
		uint32_t canon = stack_table_canon(&a->st, st->raw_stack);
		row->canon = canon;
		row->sym = s;
		/* grouped: only the frame that keys the row is symbolized */
		size_t nf = !framed ? 0
			    : group == GROUP_STACK ? stack_frames(a, s, canon, tmp, MAX_FRAMES, NULL)
						   : key_frame(a, s, canon, tmp);
		if (group == GROUP_STACK || nf == 0) {
			char key[64];
			snprintf(key, sizeof(key), "%010" PRIu32, canon);
			row->key = xstrndup(key, strlen(key));
			row->frames = xmalloc((nf + 1) * sizeof(*row->frames));
			memcpy(row->frames, tmp, nf * sizeof(*tmp));
			row->nframes = nf;
		} else {
			/* tracemalloc's way: the innermost Python frame, if any */
			size_t first = 0;
			row->key = frame_key(&tmp[first], group);
			row->frames = xmalloc(sizeof(*row->frames));
			row->frames[0] = tmp[first];
			if (group != GROUP_LINE)
				row->frames[0].line = 0;
			if (group == GROUP_FILE)
				row->frames[0].function = NULL;
			row->nframes = 1;
		}
		n++;
	}
	free(tmp);
	report_stack_frames_done();
	/* merge rows with equal keys; a merged row shows the frame of the part
	 * with the most of `by` (by line: the function that holds the line's
	 * bytes, such as a <listcomp>, not whichever came first) */
	qsort(rows, n, sizeof(*rows), cmp_keys);
	size_t out = 0;
	struct row *rep = xmalloc((n + 1) * sizeof(*rep)); /* each merged row's shown part */
	for (size_t i = 0; i < n; i++) {
		if (out && !strcmp(rows[out - 1].key, rows[i].key) && rows[out - 1].cls == rows[i].cls) {
			struct row *d = &rows[out - 1];
			if (part_shown_before(&rows[i], &rep[out - 1], by)) {
				struct frame_info *swap = d->frames;
				size_t nswap = d->nframes;
				d->frames = rows[i].frames;
				d->nframes = rows[i].nframes;
				rows[i].frames = swap;
				rows[i].nframes = nswap;
				rep[out - 1] = rows[i];
				rep[out - 1].frames = d->frames;
			}
			report_row_add(d, &rows[i]);
			free(rows[i].key);
			free(rows[i].frames);
			free(rows[i].kinds);
			continue;
		}
		rep[out] = rows[i];
		rows[out++] = rows[i];
	}
	free(rep);
	r->rows = rows;
	r->n = out;
	report_sort(r);
}

void report_build(struct report *r, const struct analysis *a, struct symbolizer *s,
		  enum group_by group, enum sort_by by, bool only_leaks)
{
	build(r, a, s, group, by, only_leaks, true);
}

enum framing { FRAMES_ALL, FRAMES_ONE_LINE, FRAMES_TEXT };

/* Gives a row built without frames its frames (see report_build_peak). */
static void frame_row(struct row *row, const struct analysis *a, struct symbolizer *s,
		      struct frame_info *tmp, enum framing how)
{
	size_t nf = 0;
	row->more = 0;
	row->sym = s;
	if (how == FRAMES_ONE_LINE) {
		nf = key_frame(a, s, row->canon, tmp);
	} else if (how == FRAMES_TEXT) {
		nf = stack_frames(a, s, row->canon, tmp, MAX_FRAMES, &row->more);
	} else {
		nf = stack_frames(a, s, row->canon, tmp, MAX_FRAMES, NULL);
	}
	free(row->frames);
	row->frames = xmalloc((nf + 1) * sizeof(*tmp));
	memcpy(row->frames, tmp, nf * sizeof(*tmp));
	row->nframes = nf;
}

void report_build_peak(struct report *r, const struct analysis *a, struct symbolizer *s,
		       size_t max, bool one_line)
{
	build(r, a, s, GROUP_STACK, BY_PEAK, false, false);
	struct frame_info *tmp = xmalloc(MAX_FRAMES * sizeof(*tmp));
	lines_for(a);
	for (size_t i = 0, shown = 0; i < r->n && shown < max; i++) {
		if (r->rows[i].cls != CLASS_HEAP || !r->rows[i].peak_bytes)
			continue;
		frame_row(&r->rows[i], a, s, tmp, one_line ? FRAMES_ONE_LINE : FRAMES_ALL);
		shown++;
	}
	free(tmp);
	report_stack_frames_done();
}

void report_build_shown(struct report *r, const struct analysis *a, struct symbolizer *s,
			enum group_by group, enum sort_by by, bool only_leaks, size_t shown, bool text)
{
	if (group != GROUP_STACK || !shown) { /* other groupings need every row's frames */
		build(r, a, s, group, by, only_leaks, true);
		return;
	}
	build(r, a, s, group, by, only_leaks, false);
	struct frame_info *tmp = xmalloc(MAX_FRAMES * sizeof(*tmp));
	lines_for(a);
	for (size_t i = 0; i < r->n && i < shown; i++)
		frame_row(&r->rows[i], a, s, tmp, text ? FRAMES_TEXT : FRAMES_ALL);
	free(tmp);
	report_stack_frames_done();
}

static void part_add(struct kind_part *p, const struct row *r)
{
	p->peak_bytes += r->peak_bytes;
	p->leaked_bytes += r->leaked_bytes;
	p->allocated_bytes += r->allocated_bytes;
	p->count += r->count;
}

void report_row_add(struct row *d, const struct row *r)
{
	if (!d->kinds && (r->kinds || r->kind != d->kind)) {
		d->kinds = xcalloc(HW_KIND_COUNT, sizeof(*d->kinds));
		part_add(&d->kinds[d->kind], d);
	}
	if (d->kinds && r->kinds) {
		for (int k = 0; k < HW_KIND_COUNT; k++) {
			d->kinds[k].peak_bytes += r->kinds[k].peak_bytes;
			d->kinds[k].leaked_bytes += r->kinds[k].leaked_bytes;
			d->kinds[k].allocated_bytes += r->kinds[k].allocated_bytes;
			d->kinds[k].count += r->kinds[k].count;
		}
	} else if (d->kinds) {
		part_add(&d->kinds[r->kind], r);
	}
	d->peak_bytes += r->peak_bytes;
	d->leaked_bytes += r->leaked_bytes;
	d->leaked_blocks += r->leaked_blocks;
	d->allocated_bytes += r->allocated_bytes;
	d->count += r->count;
	d->temporary += r->temporary;
	d->temporary_bytes += r->temporary_bytes;
}

static uint64_t part_metric(const struct kind_part *p, enum sort_by by)
{
	switch (by) {
	case BY_PEAK:
		return p->peak_bytes;
	case BY_LEAKED:
		return p->leaked_bytes;
	case BY_COUNT:
		return p->count;
	default: /* temporaries are not kept per kind */
		return p->allocated_bytes;
	}
}

/* Kind a ranks before kind b in a row (more of `by`, then of allocated
 * bytes, then the lower kind number). */
static bool kind_before(const struct row *r, enum sort_by by, int a, int b)
{
	const struct kind_part *x = &r->kinds[a], *y = &r->kinds[b];
	if (part_metric(x, by) != part_metric(y, by))
		return part_metric(x, by) > part_metric(y, by);
	if (x->allocated_bytes != y->allocated_bytes)
		return x->allocated_bytes > y->allocated_bytes;
	return a < b;
}

static void settle_kind(struct row *r, enum sort_by by)
{
	if (!r->kinds)
		return;
	int best = -1;
	for (int k = 0; k < HW_KIND_COUNT; k++)
		if (r->kinds[k].count && (best < 0 || kind_before(r, by, k, best)))
			best = k;
	if (best >= 0)
		r->kind = best;
}

const char *report_kind_label(const struct row *r, enum sort_by by, char *buf)
{
	if (r->cls != CLASS_HEAP)
		return class_name(r->cls);
	if (!r->kinds)
		return kind_name(r->kind);
	int order[HW_KIND_COUNT], n = 0;
	for (int k = 0; k < HW_KIND_COUNT; k++) {
		if (!r->kinds[k].count)
			continue;
		int j = n++;
		for (; j > 0 && kind_before(r, by, k, order[j - 1]); j--)
			order[j] = order[j - 1];
		order[j] = k;
	}
	buf[0] = 0;
	for (int i = 0; i < n; i++) {
		if (i)
			strcat(buf, "+");
		strcat(buf, kind_name(order[i]));
	}
	return n ? buf : kind_name(r->kind);
}

void report_kinds_json(FILE *f, const struct row *r)
{
	fprintf(f, "\"kind\":\"%s\",\"kinds\":{",
		r->cls == CLASS_HEAP ? kind_name(r->kind) : class_name(r->cls));
	bool first = true;
	for (int k = 0; k < HW_KIND_COUNT; k++) {
		struct kind_part one = {0};
		const struct kind_part *p = r->kinds ? &r->kinds[k] : &one;
		if (!r->kinds) {
			if (k != r->kind)
				continue;
			part_add(&one, r);
		} else if (!p->count) {
			continue;
		}
		fprintf(f, "%s\"%s\":{\"peak_bytes\":%" PRIu64 ",\"leaked_bytes\":%" PRIu64
			   ",\"allocated_bytes\":%" PRIu64 ",\"count\":%" PRIu64 "}",
			first ? "" : ",", kind_name(k), p->peak_bytes, p->leaked_bytes,
			p->allocated_bytes, p->count);
		first = false;
	}
	fputc('}', f);
}

void report_sort(struct report *r)
{
	for (size_t i = 0; i < r->n; i++)
		settle_kind(&r->rows[i], r->by);
	g_sort = r->by;
	if (r->n > 1)
		qsort(r->rows, r->n, sizeof(*r->rows), cmp_rows);
}

char *report_row_key(const struct row *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	fprintf(f, "%d|", r->cls);
	for (size_t i = 0; i < r->nframes; i++) {
		report_frame_text(f, &r->frames[i]);
		fputc('\n', f);
	}
	fclose(f);
	return buf;
}

void report_kind_peaks(const struct analysis *a, uint64_t out[HW_KIND_COUNT])
{
	for (int k = 0; k < HW_KIND_COUNT; k++)
		out[k] = kind_class(k) == CLASS_HEAP ? 0 : a->peaks[kind_class(k)].peak;
	for (size_t i = 0; i < a->nsites; i++)
		if (a->sites[i].cls == CLASS_HEAP)
			out[a->sites[i].kind] += site_peak_bytes(a, &a->sites[i]);
}

void report_leaked(const struct analysis *a, uint64_t *bytes, uint64_t *blocks)
{
	*bytes = *blocks = 0;
	for (size_t i = 0; i < a->nsites; i++) {
		const struct site *st = &a->sites[i];
		if (st->cls == CLASS_HEAP && st->eligible) {
			*bytes += st->leak_bytes;
			*blocks += st->leak_blocks;
		}
	}
}

const char *report_leak_point(const struct analysis *a, char *buf, size_t size)
{
	switch (a->leak_point) {
	case LEAK_AT_MARK:
		for (size_t i = 0; i < a->nmarks; i++)
			if (a->marks[i].seq == a->leak_seq) {
				char label[256];
				text_escape(label, sizeof(label), a->marks[i].label);
				snprintf(buf, size, "marker \"%s\"", label);
			}
		break;
	case LEAK_AT_FINALIZE:
		snprintf(buf, size, "the start of Python's finalization");
		break;
	default:
		snprintf(buf, size, "%s", a->clean_exit ? "exit" : "the end of the trace");
	}
	return buf;
}

void report_free(struct report *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->rows[i].key);
		free(r->rows[i].frames);
		free(r->rows[i].kinds);
	}
	free(r->rows);
	memset(r, 0, sizeof(*r));
}
