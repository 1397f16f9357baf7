/* Row model (analyzer, reports stage): turns per-site aggregates into rows,
 * symbolizing each canonical stack once and grouping by key. */
#include "report.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "escape.h"
#include "usercode.h"
#include "util.h"

#define MAX_FRAMES 2048 /* the shim writes 1,536 at most (1,024 Python + 512 native) */

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

static enum blame g_blame = BLAME_USER;

void report_set_blame(enum blame b)
{
	g_blame = b;
}

enum blame report_blame(void)
{
	return g_blame;
}

/* per canonical node: decoded line and column (1-based, 0 = none),
 * line INT32_MIN = not yet */
static struct line_col {
	int line, col;
} *g_lines;
static const struct analysis *g_lines_for;
static struct pycode_cache g_tables; /* g_lines_for's code objects' */

static void lines_for(const struct analysis *a)
{
	if (g_lines && g_lines_for == a)
		return;
	free(g_lines);
	pycode_cache_free(&g_tables);
	g_lines = xmalloc((a->st.ncnodes + 1) * sizeof(*g_lines));
	for (size_t i = 0; i <= a->st.ncnodes; i++)
		g_lines[i].line = INT32_MIN;
	g_lines_for = a;
}

void report_stack_frames_done(void)
{
	pycode_cache_free(&g_tables);
	free(g_lines);
	g_lines = NULL;
	g_lines_for = NULL;
}

/* "... at least N frames not recorded ...", one string per N for the life of the
 * process (rows keep the pointer) */
static const char *not_recorded_name(uint32_t n)
{
	static struct {
		uint32_t n;
		char *name;
	} *names;
	static size_t count, cap;
	for (size_t i = 0; i < count; i++)
		if (names[i].n == n)
			return names[i].name;
	if (count == cap) {
		cap = cap ? 2 * cap : 8;
		names = xrealloc(names, cap * sizeof(*names));
	}
	char buf[64];
	snprintf(buf, sizeof(buf), "... at least %" PRIu32 " frame%s not recorded ...", n,
		 n == 1 ? "" : "s");
	size_t len = strlen(buf) + 1;
	names[count].n = n;
	names[count].name = memcpy(xmalloc(len), buf, len);
	return names[count++].name;
}

static bool python_frame(const struct analysis *a, uint32_t c, struct frame_info *out)
{
	const struct cnode *cn = &a->st.cnodes[c];
	if (!(cn->frame >> 32) && (uint32_t)cn->frame) {
		/* code id 0: the shim's marker for the frames of a deeper stack
		 * it did not record (trace_format.h) */
		*out = (struct frame_info){.not_recorded = (uint32_t)cn->frame,
					   .function = not_recorded_name((uint32_t)cn->frame),
					   .module = "heapwise"};
		return true;
	}
	const struct pycode *code = pycode_find(&a->codes, (uint32_t)(cn->frame >> 32));
	if (!code)
		return false;
	uint32_t instr = (uint32_t)cn->frame; /* instruction + 1 */
	int lasti = instr && instr <= INT32_MAX ? (int)instr - 1 : -1;
	struct line_col *lc = &g_lines[c];
	if (lc->line == INT32_MIN) {
		struct pycode_pos pos;
		int line;
		bool found = pycode_cached_pos(&g_tables, &a->codes, code, lasti, &line, &pos);
		lc->line = line;
		lc->col = found && pos.line == line && pos.col >= 0 ? pos.col + 1 : 0;
	}
	*out = (struct frame_info){.python = true,
				   .function = code->qualname,
				   .file = code->filename,
				   .line = lc->line > 0 ? lc->line : 0,
				   .column = lc->line > 0 ? lc->col : 0};
	return true;
}

/* Symbolized frames of a canonical stack, innermost first. With more (a text
 * report) only the frames it prints: from the blamed Python frame (the
 * user's, see usercode.h) REPORT_TEXT_FRAMES outwards (without a Python
 * frame: the first REPORT_TEXT_FRAMES), and the library and native frames
 * below it; the stack entries past them are only counted, in *more. The
 * debug information of the libraries at the bottom of every stack (libc's
 * start-up code) was the slowest part of `top`. */
static uint32_t g_not_recorded; /* the last stack_frames's marker (frame_info) */

static size_t stack_frames(const struct analysis *a, struct symbolizer *s, uint32_t canon,
			   struct frame_info *out, size_t max, size_t *more)
{
	g_not_recorded = 0;
	size_t n = 0, past = 0, need = SIZE_MAX;
	uint32_t blamed = HW_NO_NODE; /* need is set at the blamed Python frame */
	if (more) {
		blamed = usercode_blame(a, canon, g_blame);
		need = blamed == HW_NO_NODE ? REPORT_TEXT_FRAMES : SIZE_MAX;
	}
	for (uint32_t c = canon; c != HW_NO_NODE && n + past < max; c = a->st.cnodes[c].parent) {
		const struct cnode *cn = &a->st.cnodes[c];
		struct frame_info py;
		if (cn->frame_kind == HW_FRAME_PYTHON) {
			if (!python_frame(a, c, &py))
				continue;
			if (py.not_recorded)
				g_not_recorded = py.not_recorded;
			if (n >= need) {
				past++;
				continue;
			}
			if (c == blamed)
				need = n + REPORT_TEXT_FRAMES;
			out[n++] = py;
			continue;
		}
		if (cn->frame_kind == HW_FRAME_THREAD) {
			/* the frames after it started the thread */
			if (n >= need)
				past++;
			else
				out[n++] = (struct frame_info){
					.thread_start = true,
					.function = "[thread started by the Python frames shown]"};
			continue;
		}
		if (cn->frame_kind != HW_FRAME_NATIVE)
			continue;
		if (n >= need) {
			past++; /* one per return address: its inlined calls are not known */
			continue;
		}
		const struct frame_info *fr;
		size_t k = symbolize_native(s, cn->mod, cn->key, cn->frame, &fr);
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

/* Rows grouped by stack carry no key text: their key is the canonical stack
 * number, which orders as its ten-digit text did. */
static int cmp_key(const struct row *a, const struct row *b)
{
	if (a->key && b->key)
		return strcmp(a->key, b->key);
	if (!a->key && !b->key)
		return a->canon < b->canon ? -1 : a->canon > b->canon;
	char buf[16];
	snprintf(buf, sizeof(buf), "%010" PRIu32, a->key ? b->canon : a->canon);
	return a->key ? strcmp(a->key, buf) : strcmp(buf, b->key);
}

static int cmp_rows(const void *x, const void *y)
{
	const struct row *a = x, *b = y;
	uint64_t ma = metric(a, g_sort), mb = metric(b, g_sort);
	if (ma != mb)
		return ma > mb ? -1 : 1;
	if (a->allocated_bytes != b->allocated_bytes)
		return a->allocated_bytes > b->allocated_bytes ? -1 : 1;
	return cmp_key(a, b);
}

/* The frame a grouped row is keyed by: the blamed Python frame (the
 * user's innermost, see usercode.h), else the innermost frame; only that
 * one is symbolized. */
static size_t key_frame(const struct analysis *a, struct symbolizer *s, uint32_t canon,
			struct frame_info *out)
{
	if (canon == HW_NO_NODE)
		return 0;
	uint32_t c = usercode_blame(a, canon, g_blame);
	if (c != HW_NO_NODE && python_frame(a, c, out))
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

static int cmp_keys(const void *x, const void *y)
{
	const struct row *a = x, *b = y;
	int c = cmp_key(a, b);
	return c ? c : a->cls - b->cls;
}

/* Merges rows with equal keys and classes (they are sorted by key first);
 * returns how many are left. A merged row shows the frame of the part with
 * the most of `by` (by line: the function that holds the line's bytes, such
 * as a <listcomp>, not whichever came first). */
static size_t merge_rows(struct row *rows, size_t n, enum sort_by by)
{
	if (n > 1)
		qsort(rows, n, sizeof(*rows), cmp_keys);
	size_t out = 0;
	struct row *rep = xmalloc((n + 1) * sizeof(*rep)); /* each merged row's shown part */
	for (size_t i = 0; i < n; i++) {
		if (out && !cmp_keys(&rows[out - 1], &rows[i])) {
			struct row *d = &rows[out - 1];
			if (part_shown_before(&rows[i], &rep[out - 1], by)) {
				struct frame_info *swap = d->frames;
				size_t nswap = d->nframes;
				d->frames = rows[i].frames;
				d->nframes = rows[i].nframes;
				d->canon = rows[i].canon;
				d->sym = rows[i].sym;
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
	return out;
}


/* Interned key texts of one grouping. */
struct keytab {
	struct strtab tab;
	uint32_t *memo; /* per canonical node: its key's id + 1, 0 = not yet */
};

static void keytab_free(struct keytab *t)
{
	strtab_free(&t->tab);
	free(t->memo);
}

#define KEY_NONE UINT32_MAX

/* The group of a site grouped by line, function or file: the key of its
 * key frame, symbolized once per canonical node; KEY_NONE when its stack
 * has no frame at all. */
static uint32_t frame_group(struct keytab *t, const struct analysis *a, struct symbolizer *s,
			    enum group_by group, uint32_t canon)
{
	if (canon == HW_NO_NODE)
		return KEY_NONE;
	uint32_t c = usercode_blame(a, canon, g_blame);
	if (c == HW_NO_NODE)
		c = canon;
	if (t->memo[c])
		return t->memo[c] - 1;
	struct frame_info f;
	uint32_t id = KEY_NONE;
	if (key_frame(a, s, canon, &f))
		id = strtab_take(&t->tab, frame_key(&f, group));
	t->memo[c] = id + 1; /* KEY_NONE + 1 wraps to 0: looked up again */
	return id;
}

/* A site's figures as a row of its own. */
static void site_row(struct row *row, const struct analysis *a, const struct site *st)
{
	memset(row, 0, sizeof(*row));
	row->peak_bytes = site_peak_bytes(a, st);
	row->leaked_bytes = st->eligible ? st->leak_bytes : 0;
	row->leaked_blocks = st->eligible ? st->leak_blocks : 0;
	row->allocated_bytes = st->alloc_bytes;
	row->count = st->allocs;
	row->temporary = st->temp_count;
	row->temporary_bytes = st->temp_bytes;
	row->cls = st->cls;
	row->kind = st->kind;
	row->canon = st->canon;
	if (a->spread) {
		struct spread_fig sf;
		site_spread_fig(a, (size_t)(st - a->sites), &sf);
		row->peak_var = sf.peak_var;
		row->peak_samples = sf.peak_n;
		if (st->eligible) {
			row->leaked_var = sf.leak_var;
			row->leaked_samples = sf.leak_n;
		}
		row->allocated_var = sf.alloc_var;
		row->allocated_samples = sf.alloc_n;
		row->count_var = sf.count_var;
	}
}

struct site_ref {
	uint64_t key; /* the canonical stack, or 1 << 32 | key id */
	uint32_t site;
	uint8_t cls;
};

static int cmp_refs(const void *x, const void *y)
{
	const struct site_ref *a = x, *b = y;
	if (a->cls != b->cls)
		return a->cls - b->cls;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	return a->site < b->site ? -1 : a->site > b->site;
}

/* A group of sites (refs[first, first + n)) with its sort figures, before
 * it becomes a row. */
struct group {
	uint64_t metric, allocated, leaked;
	uint32_t first, n;
};

struct group_ctx {
	const struct site_ref *refs;
	const struct keytab *kt;
	bool by_frame;
};

static const struct group_ctx *g_gctx;

/* The order of cmp_rows, on groups: metric, then allocated bytes, then the
 * key (text, or the stack's number), then the class. */
static int cmp_groups(const void *x, const void *y)
{
	const struct group *a = x, *b = y;
	if (a->metric != b->metric)
		return a->metric > b->metric ? -1 : 1;
	if (a->allocated != b->allocated)
		return a->allocated > b->allocated ? -1 : 1;
	const struct group_ctx *c = g_gctx;
	const struct site_ref *ra = &c->refs[a->first], *rb = &c->refs[b->first];
	struct row x1 = {0}, y1 = {0};
	char ka[16], kb[16];
	x1.canon = (uint32_t)ra->key;
	y1.canon = (uint32_t)rb->key;
	if (ra->key >> 32)
		x1.key = c->kt->tab.s[(uint32_t)ra->key];
	else if (c->by_frame)
		snprintf(x1.key = ka, sizeof(ka), "%010" PRIu32, x1.canon);
	if (rb->key >> 32)
		y1.key = c->kt->tab.s[(uint32_t)rb->key];
	else if (c->by_frame)
		snprintf(y1.key = kb, sizeof(kb), "%010" PRIu32, y1.canon);
	int k = cmp_key(&x1, &y1);
	return k ? k : ra->cls - rb->cls;
}

static uint64_t site_metric(const struct analysis *a, const struct site *st, enum sort_by by)
{
	switch (by) {
	case BY_PEAK:
		return site_peak_bytes(a, st);
	case BY_LEAKED:
		return st->eligible ? st->leak_bytes : 0;
	case BY_ALLOCATED:
		return st->alloc_bytes;
	case BY_TEMPORARY:
		return st->temp_count;
	default:
		return st->allocs;
	}
}

/* Keeps the best `keep` of n groups (a binary heap with the worst kept one
 * on top: O(n log keep)), then sorts those. Returns how many there are. */
static size_t select_best(struct group *g, size_t n, size_t keep)
{
	if (!keep || keep >= n) {
		if (n > 1)
			qsort(g, n, sizeof(*g), cmp_groups);
		return n;
	}
	for (size_t i = 0; i < n; i++) {
		size_t at;
		if (i < keep) { /* g[0, keep): a heap whose root is the worst kept */
			at = i;
			while (at && cmp_groups(&g[(at - 1) / 2], &g[at]) < 0) {
				struct group t = g[at];
				g[at] = g[(at - 1) / 2];
				g[(at - 1) / 2] = t;
				at = (at - 1) / 2;
			}
			continue;
		}
		if (cmp_groups(&g[i], &g[0]) >= 0)
			continue; /* not better than the worst kept */
		g[0] = g[i];
		for (at = 0;;) {
			size_t l = 2 * at + 1, r = l + 1, w = at;
			if (l < keep && cmp_groups(&g[l], &g[w]) > 0)
				w = l;
			if (r < keep && cmp_groups(&g[r], &g[w]) > 0)
				w = r;
			if (w == at)
				break;
			struct group t = g[at];
			g[at] = g[w];
			g[w] = t;
			at = w;
		}
	}
	qsort(g, keep, sizeof(*g), cmp_groups);
	return keep;
}

enum only { ONLY_ALL, ONLY_LEAKS, ONLY_HEAP_PEAK, ONLY_HEAP };

/* A row as text reports print it, for comparing rows: its class, frames and
 * the count of frames past them; with all_columns every Python frame's
 * column, else only those marked show_column. Free it. */
static char *row_text(const struct row *r, bool all_columns)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct row copy = *r;
	copy.frames = xmalloc((r->nframes + 1) * sizeof(*copy.frames));
	for (size_t i = 0; i < r->nframes; i++) {
		copy.frames[i] = r->frames[i];
		copy.frames[i].show_column |= all_columns;
	}
	fprintf(f, "%d|", r->cls);
	report_row_body_text(f, &copy, GROUP_STACK, g_blame);
	free(copy.frames);
	fclose(f);
	return buf;
}

struct dkey {
	char *text;
	size_t i;
};

static int cmp_dkeys(const void *x, const void *y)
{
	const struct dkey *a = x, *b = y;
	int c = strcmp(a->text, b->text);
	return c ? c : (a->i < b->i ? -1 : a->i > b->i);
}

/* Sorted keys of rows [0, n): their text as printed now. */
static struct dkey *row_keys(const struct row *rows, size_t n)
{
	struct dkey *k = xmalloc((n + 1) * sizeof(*k));
	for (size_t i = 0; i < n; i++)
		k[i] = (struct dkey){row_text(&rows[i], false), i};
	if (n > 1)
		qsort(k, n, sizeof(*k), cmp_dkeys);
	return k;
}

static void free_keys(struct dkey *k, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(k[i].text);
	free(k);
}

/* No two of the rows [0, n) may print the same. Where rows print the same
 * but for a Python frame's column (two expressions of one line, such as
 * `("value-%d" % key) * 8`), that frame shows its column in each of them
 * (app.py:19:10); rows that still print the same (two native return
 * addresses of one source line, or stacks that differ only past the frames
 * shown) are merged into the first. Rows [n, total) move up over the merged
 * ones; returns the new total and sets *n_out to the rows left of [0, n). */
static size_t distinguish(struct row *rows, size_t n, size_t total, size_t *n_out)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < rows[i].nframes; j++)
			rows[i].frames[j].show_column = false;
	struct dkey *k = row_keys(rows, n);
	for (size_t g = 0; g < n;) {
		size_t e = g + 1;
		while (e < n && !strcmp(k[e].text, k[g].text))
			e++;
		const struct row *first = &rows[k[g].i];
		for (size_t j = 0; e - g > 1 && j < first->nframes; j++) {
			bool differ = false;
			for (size_t m = g + 1; m < e && !differ; m++)
				differ = j < rows[k[m].i].nframes &&
					 rows[k[m].i].frames[j].column != first->frames[j].column;
			for (size_t m = g; differ && m < e; m++)
				if (j < rows[k[m].i].nframes)
					rows[k[m].i].frames[j].show_column = true;
		}
		g = e;
	}
	free_keys(k, n);
	k = row_keys(rows, n);
	bool *gone = xcalloc(n + 1, sizeof(*gone));
	size_t merged = 0;
	for (size_t g = 0; g < n;) {
		size_t e = g + 1;
		while (e < n && !strcmp(k[e].text, k[g].text)) {
			struct row *into = &rows[k[g].i], *from = &rows[k[e].i]; /* k[g].i is the lowest */
			report_row_add(into, from);
			free(from->key);
			free(from->frames);
			free(from->kinds);
			gone[k[e].i] = true;
			merged++;
			e++;
		}
		g = e;
	}
	free_keys(k, n);
	size_t out = 0;
	for (size_t i = 0; i < total; i++)
		if (i >= n || !gone[i])
			rows[out++] = rows[i];
	free(gone);
	*n_out = n - merged;
	return total - merged;
}

void report_distinct(struct report *r)
{
	report_distinct_first(r, r->n);
}

bool report_distinct_first(struct report *r, size_t n)
{
	size_t left, before = r->n;
	r->n = distinguish(r->rows, n < r->n ? n : r->n, r->n, &left);
	if (r->n == before)
		return false;
	report_sort(r);
	return true;
}

/* One stack's label as report_stack_labels makes it: the blamed frame
 * (with its column when col), then `callers` of its callers. */
static char *stack_label(const struct frame_info *frames, size_t n, size_t blamed, bool col,
			 size_t ext)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!n) {
		fputs("(no stack recorded)", f);
	} else {
		struct frame_info fr = frames[blamed];
		fr.show_column = col;
		report_frame_text(f, &fr);
		size_t out = n - 1 - blamed < ext ? n - 1 - blamed : ext; /* callers */
		for (size_t k = 1; k <= out; k++) {
			fputs(" <- ", f);
			report_frame_text(f, &frames[blamed + k]);
		}
		for (size_t k = 1; k <= ext - out && k <= blamed; k++) { /* then what it called */
			fputs(k == 1 ? " via " : ", ", f);
			report_frame_text(f, &frames[blamed - k]);
		}
	}
	fclose(f);
	return buf;
}

/* stack_label(..., ext) from stack_label(..., ext - 1) in *label: the one
 * frame the ext-th step adds, appended (rebuilding the label at each step
 * cost O(depth^2) for two stacks that differ only deep down). */
static void stack_label_grow(char **label, const struct frame_info *frames, size_t n,
			     size_t blamed, size_t ext)
{
	size_t callers = n - 1 - blamed;
	char *piece = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&piece, &len);
	if (ext <= callers) {
		fputs(" <- ", f);
		report_frame_text(f, &frames[blamed + ext]);
	} else if (ext - callers <= blamed) {
		fputs(ext - callers == 1 ? " via " : ", ", f);
		report_frame_text(f, &frames[blamed - (ext - callers)]);
	}
	fclose(f);
	size_t have = strlen(*label);
	*label = xrealloc(*label, have + len + 1);
	memcpy(*label + have, piece, len + 1);
	free(piece);
}

static char *const *g_labels; /* for cmp_label_idx */

static int cmp_label_idx(const void *x, const void *y)
{
	size_t a = *(const size_t *)x, b = *(const size_t *)y;
	int c = strcmp(g_labels[a], g_labels[b]);
	return c ? c : (a < b ? -1 : a > b);
}

size_t report_stack_labels(const struct frame_info *const *frames, const size_t *nframes, size_t n,
			   enum blame b, char **out, size_t *same_as)
{
	size_t *blamed = xcalloc(n + 1, sizeof(*blamed)), *callers = xcalloc(n + 1, sizeof(*callers));
	size_t *order = xmalloc((n + 1) * sizeof(*order));
	bool *col = xcalloc(n + 1, sizeof(*col));
	for (size_t i = 0; i < n; i++) {
		blamed[i] = usercode_blame_frame(frames[i], nframes[i], b);
		if (blamed[i] >= nframes[i])
			blamed[i] = 0;
		out[i] = stack_label(frames[i], nframes[i], blamed[i], false, 0);
		order[i] = i;
	}
	/* Labels sorted, each run of equal ones told apart: by the blamed
	 * frame's column where the run's columns differ, else by one more
	 * caller for each stack that has one; again until no run changes.
	 * Every round lengthens a label, so at most depth + 1 rounds of
	 * O(n log n). */
	for (bool again = true; again;) {
		again = false;
		g_labels = out;
		if (n > 1)
			qsort(order, n, sizeof(*order), cmp_label_idx);
		for (size_t g = 0; g < n;) {
			size_t e = g + 1;
			while (e < n && !strcmp(out[order[e]], out[order[g]]))
				e++;
			if (e - g > 1) {
				bool differ = false;
				const struct frame_info *f0 =
					nframes[order[g]] ? &frames[order[g]][blamed[order[g]]] : NULL;
				for (size_t k = g + 1; k < e && f0 && !differ; k++) {
					size_t m = order[k];
					differ = nframes[m] && !col[m] && frames[m][blamed[m]].column != f0->column;
				}
				for (size_t k = g; k < e; k++) {
					size_t m = order[k];
					if (differ && !col[m] && nframes[m]) { /* its column */
						col[m] = true;
						free(out[m]);
						out[m] = stack_label(frames[m], nframes[m], blamed[m], true,
								     callers[m]);
						again = true;
					} else if (!differ && callers[m] + 1 < nframes[m]) { /* one more frame */
						stack_label_grow(&out[m], frames[m], nframes[m], blamed[m],
								 ++callers[m]);
						again = true;
					}
				}
			}
			g = e;
		}
	}
	g_labels = out;
	if (n > 1)
		qsort(order, n, sizeof(*order), cmp_label_idx);
	size_t distinct = 0;
	for (size_t k = 0; k < n; k++) {
		bool same = k && !strcmp(out[order[k]], out[order[k - 1]]);
		same_as[order[k]] = same ? same_as[order[k - 1]] : order[k]; /* the lowest index */
		distinct += !same;
	}
	g_labels = NULL;
	free(order);
	free(blamed);
	free(callers);
	free(col);
	return distinct;
}

/* The rows of a report: the sites grouped (by canonical stack, or by the key
 * of one frame, each symbolized once per node) without a text or an
 * allocation per site, the groups ordered, and only the best `keep` (0 =
 * all) made rows: O(S log S) for S sites. A merged row keeps each kind's
 * part, and a grouped row shows the frame of its part with the most of `by`
 * (by line: the function that holds the line's bytes, such as a <listcomp>).
 * ONLY_LEAKS keeps the groups with leaked bytes, each with all its sites:
 * a row's allocated bytes and count are its line's (stack's...) whole, as
 * top shows them, not those of its sites that leaked.
 * With framed false (by stack only), the rows get no frames. With site_rows,
 * each site's row (or -1) goes there. */
static void build(struct report *r, const struct analysis *a, struct symbolizer *s,
		  enum group_by group, enum sort_by by, enum only only, bool framed, size_t keep,
		  int32_t *site_rows)
{
	memset(r, 0, sizeof(*r));
	r->by = by;
	r->group = group;
	r->blame = g_blame;
	r->sample_interval = a->sample_interval;
	lines_for(a);
	struct keytab kt = {0};
	if (group != GROUP_STACK)
		kt.memo = xcalloc(a->st.ncnodes + 1, sizeof(*kt.memo));
	struct site_ref *refs = xmalloc((a->nsites + 1) * sizeof(*refs));
	size_t n = 0;
	for (size_t i = 0; i < a->nsites; i++) {
		const struct site *st = &a->sites[i];
		if (only == ONLY_HEAP_PEAK && (st->cls != CLASS_HEAP || !site_peak_bytes(a, st)))
			continue;
		if (only == ONLY_HEAP && st->cls != CLASS_HEAP)
			continue;
		uint64_t key = st->canon;
		if (group != GROUP_STACK) {
			uint32_t id = frame_group(&kt, a, s, group, st->canon);
			if (id != KEY_NONE)
				key = (uint64_t)1 << 32 | id;
		}
		refs[n++] = (struct site_ref){key, (uint32_t)i, st->cls};
	}
	if (n > 1)
		qsort(refs, n, sizeof(*refs), cmp_refs);
	struct group *groups = xmalloc((n + 1) * sizeof(*groups));
	size_t ng = 0;
	for (size_t i = 0; i < n; i++) {
		const struct site *st = &a->sites[refs[i].site];
		if (!i || refs[i].key != refs[i - 1].key || refs[i].cls != refs[i - 1].cls)
			groups[ng++] = (struct group){0, 0, 0, (uint32_t)i, 0};
		struct group *g = &groups[ng - 1];
		g->metric += site_metric(a, st, by);
		g->allocated += st->alloc_bytes;
		g->leaked += st->eligible ? st->leak_bytes : 0;
		g->n++;
	}
	if (only == ONLY_LEAKS) { /* the groups that leaked, with all their sites */
		size_t kept = 0;
		for (size_t i = 0; i < ng; i++)
			if (groups[i].leaked)
				groups[kept++] = groups[i];
		ng = kept;
	}
	struct group_ctx ctx = {refs, &kt, group != GROUP_STACK};
	g_gctx = &ctx;
	ng = select_best(groups, ng, keep);
	g_gctx = NULL;
	if (site_rows)
		for (size_t i = 0; i < a->nsites; i++)
			site_rows[i] = -1;
	struct row *rows = xcalloc(ng + 1, sizeof(*rows));
	struct frame_info *tmp = xmalloc(MAX_FRAMES * sizeof(*tmp));
	for (size_t k = 0; k < ng; k++) {
		struct row *row = &rows[k];
		const struct site_ref *first = &refs[groups[k].first];
		struct row best, part;
		struct frame_info best_frame, frame;
		for (uint32_t j = 0; j < groups[k].n; j++) {
			const struct site *st = &a->sites[first[j].site];
			if (site_rows)
				site_rows[first[j].site] = (int32_t)k;
			site_row(&part, a, st);
			if (!j)
				*row = part;
			else
				report_row_add(row, &part);
			if (!(first->key >> 32))
				continue;
			/* a grouped row: which part's frame shows it */
			key_frame(a, s, st->canon, &frame);
			part.frames = &frame;
			part.nframes = 1;
			if (!j || part_shown_before(&part, &best, by)) {
				best = part;
				best_frame = frame;
				best.frames = &best_frame;
			}
		}
		row->sym = s;
		if (first->key >> 32) {
			uint32_t id = (uint32_t)first->key;
			row->key = xstrndup(kt.tab.s[id], strlen(kt.tab.s[id]));
			row->frames = xmalloc(sizeof(*row->frames));
			row->frames[0] = best_frame;
			row->frames[0].column = 0; /* a line's row holds every column */
			if (group != GROUP_LINE)
				row->frames[0].line = 0;
			if (group == GROUP_FILE)
				row->frames[0].function = NULL;
			row->nframes = 1;
		} else if (group != GROUP_STACK) { /* no frame at all: its stack */
			char key[16];
			snprintf(key, sizeof(key), "%010" PRIu32, row->canon);
			row->key = xstrndup(key, strlen(key));
		} else if (framed) {
			size_t nf = stack_frames(a, s, row->canon, tmp, MAX_FRAMES, NULL);
			row->frames = xmalloc((nf + 1) * sizeof(*row->frames));
			memcpy(row->frames, tmp, nf * sizeof(*tmp));
			row->nframes = nf;
		}
	}
	free(tmp);
	free(groups);
	free(refs);
	keytab_free(&kt);
	report_stack_frames_done();
	r->rows = rows;
	r->n = ng;
	report_sort(r); /* settles each row's kind; the order is already this */
}

void report_regroup(struct report *r, enum group_by group)
{
	if (group == GROUP_STACK)
		return;
	for (size_t i = 0; i < r->n; i++) {
		struct row *row = &r->rows[i];
		if (!row->nframes)
			continue;
		size_t u = usercode_blame_frame(row->frames, row->nframes, r->blame);
		struct frame_info f = row->frames[u < row->nframes ? u : 0];
		free(row->key);
		row->key = frame_key(&f, group);
		f.column = 0;
		f.show_column = false;
		if (group != GROUP_LINE)
			f.line = 0;
		if (group == GROUP_FILE)
			f.function = NULL;
		row->frames[0] = f;
		row->nframes = 1;
		row->more = 0;
	}
	r->group = group;
	r->n = merge_rows(r->rows, r->n, r->by);
	report_sort(r);
}

void report_build(struct report *r, const struct analysis *a, struct symbolizer *s,
		  enum group_by group, enum sort_by by, bool only_leaks)
{
	build(r, a, s, group, by, only_leaks ? ONLY_LEAKS : ONLY_ALL, true, 0, NULL);
}

enum framing { FRAMES_ALL, FRAMES_ONE_LINE, FRAMES_TEXT };

/* Gives a row built without frames its frames (see report_build_peak). */
static void frame_row(struct row *row, const struct analysis *a, struct symbolizer *s,
		      struct frame_info *tmp, enum framing how)
{
	size_t nf = 0;
	row->more = 0;
	row->not_recorded = 0;
	row->sym = s;
	if (how == FRAMES_ONE_LINE) {
		nf = key_frame(a, s, row->canon, tmp);
	} else if (how == FRAMES_TEXT) {
		nf = stack_frames(a, s, row->canon, tmp, MAX_FRAMES, &row->more);
		row->not_recorded = g_not_recorded;
	} else {
		nf = stack_frames(a, s, row->canon, tmp, MAX_FRAMES, NULL);
	}
	free(row->frames);
	row->frames = xmalloc((nf + 1) * sizeof(*tmp));
	memcpy(row->frames, tmp, nf * sizeof(*tmp));
	row->nframes = nf;
}

/* What a frame prints (report_frame_text), folded into a 128-bit hash: two
 * lanes over every byte, each string's end marked. */
struct khash {
	uint64_t a, b;
};

static void kh_bytes(struct khash *h, const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++) {
		h->a = (h->a ^ c[i]) * 0x100000001b3ull;
		h->b = (h->b + c[i] + 1) * 0x9e3779b97f4a7c15ull;
		h->b ^= h->b >> 29;
	}
}

static void kh_str(struct khash *h, const char *str)
{
	kh_bytes(h, str ? str : "??", strlen(str ? str : "??") + 1);
}

static void kh_u64(struct khash *h, uint64_t v)
{
	kh_bytes(h, &v, sizeof(v));
}

/* Not the column: diff and process trees match callsites by their frames
 * without columns (report_row_key drops them too), so two calls on one line
 * are one callsite there even where a single report shows them apart. */
static void kh_frame(struct khash *h, const struct frame_info *fr)
{
	kh_u64(h, fr->python ? 1 : fr->file ? 2 : fr->module ? 3 : 4);
	if (fr->python || fr->file) {
		kh_str(h, fr->file);
		kh_u64(h, (uint64_t)(int64_t)fr->line);
		kh_str(h, fr->function);
		if (!fr->python)
			kh_str(h, fr->module);
	} else {
		kh_str(h, fr->function);
		if (fr->module) {
			kh_str(h, fr->module);
			kh_u64(h, fr->module_offset);
		} else {
			kh_u64(h, fr->ip);
		}
	}
}

/* The frames of one canonical node (report_stack_frames without its
 * callers), innermost first; 0 when it prints none. */
static size_t node_frames(const struct analysis *a, struct symbolizer *s, uint32_t c,
			  const struct frame_info **out, struct frame_info *py)
{
	const struct cnode *cn = &a->st.cnodes[c];
	if (cn->frame_kind == HW_FRAME_PYTHON) {
		*out = py;
		return python_frame(a, c, py) ? 1 : 0;
	}
	if (cn->frame_kind != HW_FRAME_NATIVE)
		return 0;
	return symbolize_native(s, cn->mod, cn->key, cn->frame, out);
}

struct report_keys {
	const struct analysis *a;
	struct symbolizer *s;
	struct khash *h; /* per canonical node: its frames and its callers' */
	uint8_t *done; /* per canonical node: h is set */
	uint32_t *path;
	size_t cap;
};

struct report_keys *report_keys_new(const struct analysis *a, struct symbolizer *s)
{
	struct report_keys *k = xcalloc(1, sizeof(*k));
	k->a = a;
	k->s = s;
	k->h = xmalloc((a->st.ncnodes + 1) * sizeof(*k->h));
	k->done = xcalloc(a->st.ncnodes + 1, 1);
	return k;
}

void report_keys_free(struct report_keys *k)
{
	if (!k)
		return;
	free(k->h);
	free(k->done);
	free(k->path);
	free(k);
}

/* Folds the frames from the outermost inwards, so a hash depends only on
 * the sequence a row prints, not on how its nodes split it: a node's hash is
 * its caller's, continued with its own frames (their last first). Each node
 * is symbolized and hashed once, however many stacks share it. */
void report_row_hash(struct report_keys *k, const struct row *r, uint64_t out[2])
{
	const struct analysis *a = k->a;
	lines_for(a);
	uint32_t canon = r->canon;
	struct khash h = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull};
	if (canon != HW_NO_NODE && canon < a->st.ncnodes) {
		size_t n = 0;
		for (uint32_t c = canon; c != HW_NO_NODE && !k->done[c];) {
			if (n == k->cap) {
				k->cap = k->cap ? 2 * k->cap : 256;
				k->path = xrealloc(k->path, k->cap * sizeof(*k->path));
			}
			k->path[n++] = c;
			uint32_t p = a->st.cnodes[c].parent;
			c = p < c ? p : HW_NO_NODE; /* a caller comes first */
		}
		while (n--) {
			uint32_t c = k->path[n], p = a->st.cnodes[c].parent;
			bool top = p == HW_NO_NODE || p >= c;
			struct khash nh = top ? h : k->h[p];
			struct frame_info py;
			const struct frame_info *fr;
			size_t m = node_frames(a, k->s, c, &fr, &py);
			for (size_t i = m; i-- > 0;)
				kh_frame(&nh, &fr[i]);
			k->h[c] = nh;
			k->done[c] = 1;
		}
		/* the whole stack, also past the MAX_FRAMES a row prints: two
		 * stacks that differ only deeper stay two callsites (hashing
		 * each row's first MAX_FRAMES instead is O(rows x MAX_FRAMES)) */
		h = k->h[canon];
	}
	kh_u64(&h, (uint64_t)r->cls);
	out[0] = h.a;
	out[1] = h.b;
}

char *report_row_hash_key(struct report_keys *k, const struct row *r)
{
	uint64_t h[2];
	char buf[40];
	report_row_hash(k, r, h);
	snprintf(buf, sizeof(buf), "%016" PRIx64 "%016" PRIx64, h[0], h[1]);
	return xstrndup(buf, strlen(buf));
}

void report_row_frame(struct row *r, const struct analysis *a, struct symbolizer *s)
{
	struct frame_info *tmp = xmalloc(MAX_FRAMES * sizeof(*tmp));
	lines_for(a);
	frame_row(r, a, s, tmp, FRAMES_ALL);
	free(tmp);
}

void report_build_bare(struct report *r, const struct analysis *a, struct symbolizer *s,
		       enum group_by group, enum sort_by by)
{
	build(r, a, s, group, by, ONLY_ALL, false, 0, NULL);
}

/* The best `shown` rows by stack (0: all), each with its frames, no two
 * printing the same: the best `keep` groups are built and framed, rows
 * that print the same are merged (distinguish), and when that left fewer
 * than `shown` rows while more groups were not built, again with twice as
 * many (merges are rare: two native return addresses of one source line,
 * stacks that differ only past the frames a text report shows). */
static void build_framed(struct report *r, const struct analysis *a, struct symbolizer *s,
			 enum sort_by by, enum only only, size_t shown, enum framing how)
{
	struct frame_info *tmp = xmalloc(MAX_FRAMES * sizeof(*tmp));
	for (size_t keep = shown;;) {
		build(r, a, s, GROUP_STACK, by, only, false, keep, NULL);
		size_t built = r->n, left;
		lines_for(a);
		for (size_t i = 0; i < r->n; i++)
			frame_row(&r->rows[i], a, s, tmp, how);
		report_stack_frames_done();
		if (how == FRAMES_ALL) /* JSON: every frame, its column and address */
			break;
		r->n = distinguish(r->rows, r->n, r->n, &left);
		report_sort(r);
		if (!keep || built < keep || r->n >= shown || keep > SIZE_MAX / 2)
			break;
		report_free(r);
		keep *= 2;
	}
	free(tmp);
	if (shown && r->n > shown) { /* merged rows grew past the last ones */
		for (size_t i = shown; i < r->n; i++) {
			free(r->rows[i].key);
			free(r->rows[i].frames);
			free(r->rows[i].kinds);
		}
		r->n = shown;
	}
}

void report_build_peak(struct report *r, const struct analysis *a, struct symbolizer *s,
		       size_t max, bool one_line)
{
	build_framed(r, a, s, BY_PEAK, ONLY_HEAP_PEAK, max, one_line ? FRAMES_ONE_LINE : FRAMES_ALL);
}

void report_build_shown(struct report *r, const struct analysis *a, struct symbolizer *s,
			enum group_by group, enum sort_by by, bool only_leaks, size_t shown, bool text)
{
	enum only only = only_leaks ? ONLY_LEAKS : ONLY_ALL;
	if (group != GROUP_STACK || !shown) { /* rows of one frame, or all */
		build(r, a, s, group, by, only, true, shown, NULL);
		return;
	}
	build_framed(r, a, s, by, only, shown, text ? FRAMES_TEXT : FRAMES_ALL);
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
	d->peak_var += r->peak_var;
	d->leaked_var += r->leaked_var;
	d->allocated_var += r->allocated_var;
	d->count_var += r->count_var;
	d->peak_samples += r->peak_samples;
	d->leaked_samples += r->leaked_samples;
	d->allocated_samples += r->allocated_samples;
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

void report_build_series(struct report *r, const struct analysis *a, struct symbolizer *s,
			 enum group_by group, size_t n, int32_t *site_rows)
{
	build(r, a, s, group, BY_PEAK, ONLY_HEAP, true, n, site_rows);
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
	if (r->key && r->nframes) { /* a grouped row: its line (function, file) */
		fputs(r->key, f);
		fclose(f);
		return buf;
	}
	for (size_t i = 0; i < r->nframes; i++) {
		struct frame_info fr = r->frames[i];
		fr.show_column = false; /* two calls on one line are one callsite (diff, trees) */
		report_frame_text(f, &fr);
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

const char *report_exec_note(const struct analysis *a, char *buf, size_t size)
{
	if (!a->execd || a->exec_mark >= a->nmarks)
		return NULL;
	const struct mark *m = &a->marks[a->exec_mark];
	char path[160];
	text_escape(path, sizeof(path), m->label);
	snprintf(buf, size, "exec'd %s at %.3f s", path, (double)m->time_ns / 1e9);
	return buf;
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
	case LEAK_AT_EXEC: {
		char path[160], b[32];
		text_escape(path, sizeof(path), a->marks[a->exec_mark].label);
		snprintf(buf, size,
			 "exec of %s at %.3f s: %s in %" PRIu64
			 " block%s, which the kernel frees, not leaked",
			 path, (double)a->leak_time_ns / 1e9, fmt_size(b, a->exec_live_bytes),
			 a->exec_live_blocks, a->exec_live_blocks == 1 ? "" : "s");
		break;
	}
	default:
		if (a->exited && a->exit_status_known)
			snprintf(buf, size, "_exit(%d)", a->exit_status);
		else
			snprintf(buf, size, "%s", a->clean_exit ? "exit"
						  : a->exited   ? "_exit"
								: "the end of the trace");
	}
	return buf;
}

bool report_python_missing(const struct analysis *a, char *buf, size_t size)
{
	if (a->python_version || !a->nmodules)
		return false;
	uint64_t start = a->modules[0].load_seq;
	for (size_t i = 1; i < a->nmodules; i++)
		if (a->modules[i].load_seq < start)
			start = a->modules[i].load_seq;
	for (size_t i = 0; i < a->nmodules; i++) {
		const struct module_rec *m = &a->modules[i];
		const char *base = m->path ? strrchr(m->path, '/') : NULL;
		base = base ? base + 1 : m->path;
		if (!base || strncmp(base, "libpython3.", 11) || !strstr(base, ".so") ||
		    m->load_seq <= start)
			continue;
		snprintf(buf, size,
			 "%s was loaded after start (dlopen) without RTLD_GLOBAL, where the shim "
			 "cannot find it: its Python frames and pymalloc objects were not traced, "
			 "so the Python figures are missing (its malloc calls are counted, with "
			 "native frames; load it with RTLD_GLOBAL to trace it)",
			 base);
		return true;
	}
	return false;
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
