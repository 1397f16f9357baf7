/* Timelines (analyzer, aggregation + reports stages): live heap bytes over
 * time for the top callsites (by their bytes at the heap's peak), grouped as
 * `top` groups them (stack, line, function or file), the rest as "other",
 * the process's RSS beside them, and the trace's markers. Each value is the
 * highest live byte count of its series within its interval, so a
 * short-lived spike is never averaged away, and the fall after it shows in
 * the next interval. Two replays: the first picks the series (report rows,
 * O(S log n) for S callsites), the second records them (O(1) an event). */
#include "report_timeline.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "sampled.h"
#include "usercode.h"
#include "util.h"

#define BUCKETS 400

/* A sampled trace's series: the variance of its current value and the
 * samples behind it (its sites' live_var and live_n, kept up by their
 * changes), and per bucket those of max, when it was reached. Apart from
 * struct series, which an exact trace's replay walks at every event. */
struct series_spread {
	unsigned __int128 cur_var;
	uint64_t cur_n;
	double *var;
	uint64_t *nsamp;
};

struct series {
	const struct row *row; /* NULL: "other" */
	uint64_t cur;
	uint64_t *max; /* per bucket */
	struct series_spread *sp; /* a sampled trace's, else NULL */
	char *label; /* by stack: report_stack_labels' (never two the same) */
};

struct timeline {
	struct series *s;
	size_t n; /* tracked series; s[n] is "other" */
	enum group_by group;
	int32_t *site_series; /* site index -> series (-1: other) */
	size_t nsites;
	uint64_t duration_ns;
	size_t bucket; /* current bucket */
	uint64_t edge; /* the time the next bucket starts */
	uint64_t tracked_cur;
	uint64_t *rss;
	const struct mark *marks;
	size_t nmarks;
	uint64_t sample_interval; /* a sampled trace: the series are estimates */
	/* a sampled trace: each site's live_var and live_n as last seen (a
	 * change is the difference), and the tracked series' sums */
	unsigned __int128 *site_var;
	uint64_t *site_n;
	size_t site_cap;
	unsigned __int128 heap_var, tracked_var;
	uint64_t heap_n, tracked_n;
};

static size_t bucket_of(const struct timeline *tl, uint64_t t)
{
	if (!tl->duration_ns)
		return 0;
	uint64_t b = t >= tl->duration_ns ? BUCKETS - 1 : t * BUCKETS / tl->duration_ns;
	return b >= BUCKETS ? BUCKETS - 1 : (size_t)b;
}

/* The first time in bucket b + 1. */
static uint64_t edge_after(const struct timeline *tl, size_t b)
{
	if (b + 1 >= BUCKETS)
		return UINT64_MAX;
	/* the least t with t * BUCKETS / duration >= b + 1 */
	return ((b + 1) * tl->duration_ns + BUCKETS - 1) / BUCKETS;
}

/* Moves to bucket b: the buckets passed over start at the current values
 * (a sampled trace's spread: advance_spread, so that this stays small and
 * the exact trace's hook keeps its registers across the call). */
static void advance(struct timeline *tl, size_t b)
{
	while (tl->bucket < b) {
		tl->bucket++;
		for (size_t i = 0; i <= tl->n; i++)
			tl->s[i].max[tl->bucket] = tl->s[i].cur;
	}
	tl->edge = edge_after(tl, tl->bucket);
}

/* The same for each series' spread, over the buckets after `from` that
 * advance passed. */
static void advance_spread(struct timeline *tl, size_t from)
{
	for (size_t b = from + 1; b <= tl->bucket; b++)
		for (size_t i = 0; i <= tl->n; i++) {
			struct series_spread *sp = tl->s[i].sp;
			sp->var[b] = (double)sp->cur_var;
			sp->nsamp[b] = sp->cur_n;
		}
}

/* A sampled trace: the change of site's variance and samples since the
 * last change (the replay updated its spread before calling the hook). */
static void spread_delta(struct timeline *tl, const struct analysis *a, size_t site,
			 unsigned __int128 *dv, uint64_t *dn)
{
	*dv = 0;
	*dn = 0;
	if (!a->spread || site >= a->spreadcap)
		return;
	if (site >= tl->site_cap) {
		size_t cap = a->spreadcap > site ? a->spreadcap : site + 1;
		tl->site_var = xrealloc(tl->site_var, cap * sizeof(*tl->site_var));
		tl->site_n = xrealloc(tl->site_n, cap * sizeof(*tl->site_n));
		memset(tl->site_var + tl->site_cap, 0, (cap - tl->site_cap) * sizeof(*tl->site_var));
		memset(tl->site_n + tl->site_cap, 0, (cap - tl->site_cap) * sizeof(*tl->site_n));
		tl->site_cap = cap;
	}
	const struct site_spread *p = &a->spread[site];
	*dv = p->live_var - tl->site_var[site]; /* modulo 2^128: a fall wraps */
	*dn = p->live_n - tl->site_n[site];
	tl->site_var[site] = p->live_var;
	tl->site_n[site] = p->live_n;
}

static void on_change(void *ctx, const struct analysis *a, size_t site, int64_t delta,
		      uint64_t heap, uint64_t time_ns)
{
	struct timeline *tl = ctx;
	(void)a;
	if (time_ns >= tl->edge)
		advance(tl, bucket_of(tl, time_ns));
	int32_t k = site < tl->nsites ? tl->site_series[site] : -1;
	if (k >= 0) {
		struct series *sr = &tl->s[k];
		sr->cur += (uint64_t)delta; /* unsigned wrap-around: a fall */
		tl->tracked_cur += (uint64_t)delta;
		if (sr->cur > sr->max[tl->bucket])
			sr->max[tl->bucket] = sr->cur;
	}
	struct series *other = &tl->s[tl->n];
	other->cur = heap > tl->tracked_cur ? heap - tl->tracked_cur : 0;
	if (other->cur > other->max[tl->bucket])
		other->max[tl->bucket] = other->cur;
}

/* The same for a sampled trace, with each series' variance and samples
 * (a hook of its own: an exact trace's replay does none of this). */
static void on_change_sampled(void *ctx, const struct analysis *a, size_t site, int64_t delta,
			      uint64_t heap, uint64_t time_ns)
{
	struct timeline *tl = ctx;
	if (time_ns >= tl->edge) {
		size_t from = tl->bucket;
		advance(tl, bucket_of(tl, time_ns));
		advance_spread(tl, from);
	}
	unsigned __int128 dv;
	uint64_t dn;
	spread_delta(tl, a, site, &dv, &dn);
	tl->heap_var += dv;
	tl->heap_n += dn;
	int32_t k = site < tl->nsites ? tl->site_series[site] : -1;
	if (k >= 0) {
		struct series *sr = &tl->s[k];
		sr->cur += (uint64_t)delta; /* unsigned wrap-around: a fall */
		tl->tracked_cur += (uint64_t)delta;
		sr->sp->cur_var += dv;
		sr->sp->cur_n += dn;
		tl->tracked_var += dv;
		tl->tracked_n += dn;
		if (sr->cur > sr->max[tl->bucket]) {
			sr->max[tl->bucket] = sr->cur;
			sr->sp->var[tl->bucket] = (double)sr->sp->cur_var;
			sr->sp->nsamp[tl->bucket] = sr->sp->cur_n;
		}
	}
	struct series *other = &tl->s[tl->n];
	other->cur = heap > tl->tracked_cur ? heap - tl->tracked_cur : 0;
	other->sp->cur_var = tl->heap_var - tl->tracked_var;
	other->sp->cur_n = tl->heap_n - tl->tracked_n;
	if (other->cur > other->max[tl->bucket]) {
		other->max[tl->bucket] = other->cur;
		other->sp->var[tl->bucket] = (double)other->sp->cur_var;
		other->sp->nsamp[tl->bucket] = other->sp->cur_n;
	}
}

/* One standard error in bytes, for the JSON and CSV. */
static uint64_t stderr_of(double var)
{
	return sample_clamp(var > 0 ? sqrt(var) : 0);
}

/* A series' name, as `top` shows its row (the display form): a stack by its
 * innermost Python frame (else its innermost frame), a line, function or
 * file as top names them. */
static void label(FILE *f, const struct series *s, enum group_by group)
{
	if (!s->row) {
		fputs("other", f);
		return;
	}
	if (s->label) {
		fputs(s->label, f);
		return;
	}
	const struct row *r = s->row;
	if (!r->nframes) {
		fputs("(no stack recorded)", f);
		return;
	}
	size_t py = usercode_blame_frame(r->frames, r->nframes, report_blame());
	report_row_frame_text(f, r, py < r->nframes ? py : 0, group);
}

/* Series by stack get legends that never read the same: each its blamed
 * frame, with its column or its callers where two would read the same
 * (report_stack_labels); series whose frames print the same all the way
 * out become one (the sites of the later go to the first). */
static void distinct_labels(struct timeline *tl, int32_t *site_series, size_t nsites)
{
	size_t n = tl->n;
	const struct frame_info **fr = xcalloc(n + 1, sizeof(*fr));
	size_t *nfr = xcalloc(n + 1, sizeof(*nfr)), *same = xcalloc(n + 1, sizeof(*same));
	char **labels = xcalloc(n + 1, sizeof(*labels));
	for (size_t k = 0; k < n; k++) {
		fr[k] = tl->s[k].row->frames;
		nfr[k] = tl->s[k].row->nframes;
	}
	report_stack_labels(fr, nfr, n, report_blame(), labels, same);
	size_t kept = 0;
	int32_t *to = xmalloc((n + 1) * sizeof(*to));
	for (size_t k = 0; k < n; k++) {
		if (same[k] != k) {
			to[k] = to[same[k]];
			free(labels[k]);
			continue;
		}
		to[k] = (int32_t)kept;
		tl->s[kept] = tl->s[k];
		tl->s[kept++].label = labels[k];
	}
	for (size_t i = 0; i < nsites; i++)
		if (site_series[i] >= 0)
			site_series[i] = to[site_series[i]];
	tl->s[kept] = tl->s[n]; /* "other" */
	tl->n = kept;
	free(to);
	free(labels);
	free(same);
	free(nfr);
	free(fr);
}

/* The label, for a display format: the display form of the text (control
 * bytes and bytes that are not UTF-8 shown as escapes). Free it. */
static char *label_text(const struct series *s, enum group_by group)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	label(f, s, group);
	fclose(f);
	char *shown = text_dup(buf);
	free(buf);
	return shown;
}

static const char *mark_kind(int kind)
{
	return kind == HW_MARK_USER ? "mark" : mark_kind_name(kind);
}

/* What a marker line says: hw_mark()'s label, or what the shim marked (a
 * collection: the collector's figures and the live bytes it took away, on a
 * sampled trace with its interval). */
static const char *mark_text(const struct timeline *tl, const struct mark *m, char *buf,
			     size_t cap)
{
	if (m->kind == HW_MARK_PY_FINALIZE)
		return "Python finalizes";
	if (m->kind != HW_MARK_GC_END)
		return m->label;
	char size[32], pm[96] = "";
	if (tl->sample_interval && m->freed_bytes) {
		pm[0] = ' ';
		sample_pm(pm + 1, m->freed_bytes, m->freed_var, m->freed_n);
	}
	snprintf(buf, cap, "%s, %s%s freed", m->label, fmt_size(size, m->freed_bytes), pm);
	return buf;
}

/* Collections are many in most programs: the timeline draws those that
 * freed something or were full (generation 2), and labels them only when
 * they are few; the JSON lists every mark. */
#define GC_LABELS_MAX 40

static bool mark_drawn(const struct mark *m)
{
	if (m->kind == HW_MARK_GC_START)
		return false; /* its collection is drawn at its end */
	return m->kind != HW_MARK_GC_END || m->freed_bytes || strstr(m->label, "gen 2");
}

static void write_json(FILE *f, const struct timeline *tl, double step)
{
	fprintf(f, "{\"version\":1,\"group_by\":\"%s\"", group_name(tl->group));
	sample_json(f, tl->sample_interval);
	fputs(",\"times_s\":[", f);
	for (size_t b = 0; b < BUCKETS; b++)
		fprintf(f, "%s%.6f", b ? "," : "", (double)b * step);
	fputs("],\"rss_bytes\":[", f);
	for (size_t b = 0; b < BUCKETS; b++)
		fprintf(f, "%s%" PRIu64, b ? "," : "", tl->rss[b]);
	fputs("],\"marks\":[", f);
	for (size_t i = 0; i < tl->nmarks; i++) {
		const struct mark *m = &tl->marks[i];
		fprintf(f, "%s{\"time_s\":%.6f,\"kind\":\"%s\",\"live_bytes\":%" PRIu64, i ? "," : "",
			(double)m->time_ns / 1e9, mark_kind(m->kind), m->live_bytes);
		if (tl->sample_interval)
			sample_spread_json(f, "live", m->live_var, m->live_n);
		if (m->kind == HW_MARK_GC_END) {
			fprintf(f, ",\"freed_bytes\":%" PRIu64, m->freed_bytes);
			if (tl->sample_interval)
				sample_spread_json(f, "freed", m->freed_var, m->freed_n);
		}
		fputs(",\"label\":", f);
		json_str(f, m->label);
		fputc('}', f);
	}
	fputs("],\"series\":[", f);
	for (size_t i = 0; i <= tl->n; i++) {
		const struct series *s = &tl->s[i];
		fprintf(f, "%s\n{\"callsite\":{\"frames\":", i ? "," : "");
		if (s->row)
			report_frames_json(f, s->row->frames, s->row->nframes);
		else
			fputs("[]", f);
		if (i == tl->n)
			fputs(",\"other\":true", f);
		fputs("},\"label\":", f);
		char *buf = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&buf, &len);
		label(m, s, tl->group);
		fclose(m);
		json_str(f, buf);
		free(buf);
		fputs(",\"live_bytes\":[", f);
		for (size_t b = 0; b < BUCKETS; b++)
			fprintf(f, "%s%" PRIu64, b ? "," : "", s->max[b]);
		if (s->sp) { /* a sampled trace: each value's standard error */
			fputs("],\"live_stderr_bytes\":[", f);
			for (size_t b = 0; b < BUCKETS; b++)
				fprintf(f, "%s%" PRIu64, b ? "," : "", stderr_of(s->sp->var[b]));
			fputs("],\"live_samples\":[", f);
			for (size_t b = 0; b < BUCKETS; b++)
				fprintf(f, "%s%" PRIu64, b ? "," : "", s->sp->nsamp[b]);
		}
		fputs("]}", f);
	}
	fputs("]}\n", f);
}

static void write_csv(FILE *f, const struct timeline *tl, double step)
{
	fputs("time_s,rss_bytes", f);
	for (size_t i = 0; i <= tl->n; i++) {
		char *buf = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&buf, &len);
		label(m, &tl->s[i], tl->group);
		fclose(m);
		fputc(',', f);
		csv_cell(f, buf);
		free(buf);
	}
	/* a sampled trace: then each series' standard error, in the same order */
	bool sampled = tl->s[tl->n].sp != NULL;
	for (size_t i = 0; sampled && i <= tl->n; i++) {
		char *buf = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&buf, &len);
		label(m, &tl->s[i], tl->group);
		fputs(" (stderr bytes)", m);
		fclose(m);
		fputc(',', f);
		csv_cell(f, buf);
		free(buf);
	}
	fputc('\n', f);
	for (size_t b = 0; b < BUCKETS; b++) {
		fprintf(f, "%.6f,%" PRIu64, (double)b * step, tl->rss[b]);
		for (size_t i = 0; i <= tl->n; i++)
			fprintf(f, ",%" PRIu64, tl->s[i].max[b]);
		for (size_t i = 0; sampled && i <= tl->n; i++)
			fprintf(f, ",%" PRIu64, stderr_of(tl->s[i].sp->var[b]));
		fputc('\n', f);
	}
}

/* A step of 1, 2 or 5 times a power of ten that cuts span into about `want`
 * pieces. */
static double nice_step(double span, int want)
{
	if (!(span > 0))
		return 1;
	double raw = span / want, mag = pow(10, floor(log10(raw)));
	double f = raw / mag;
	return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

/* A time on an axis whose ticks are `step` seconds apart: in s, ms or us,
 * with the decimals the step needs. */
static void fmt_time(char *buf, size_t size, double t, double step)
{
	const char *unit = "s";
	double scale = 1;
	if (step < 1e-3) {
		unit = "us";
		scale = 1e6;
	} else if (step < 1) {
		unit = "ms";
		scale = 1e3;
	}
	double v = t * scale, st = step * scale;
	int dec = st >= 1 ? 0 : (int)ceil(-log10(st) - 1e-9);
	snprintf(buf, size, "%.*f %s", dec, fabs(v) < 0.5 * pow(10, -dec) ? 0.0 : v, unit);
}

/* Bytes on an axis whose ticks are `step` bytes apart, in the binary unit
 * of the step. */
static void fmt_bytes(char *buf, size_t size, double v, double step)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int u = 0;
	while (u < 4 && step >= 1024) {
		step /= 1024;
		v /= 1024;
		u++;
	}
	int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
	snprintf(buf, size, "%.*f %s", dec, v, units[u]);
}

/* A byte step of 1, 2 or 5 times a power of ten of a binary unit. */
static double nice_bytes(double span, int want)
{
	double unit = 1;
	while (span / unit >= 1024 * want && unit < 1099511627776.0)
		unit *= 1024;
	return nice_step(span / unit, want) * unit;
}

static const char *const palette[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
				       "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};

static void write_svg(FILE *f, const struct timeline *tl, double step, const char *title)
{
	const double W = 1000, H = 360, L = 80, T = 40;
	const double span = step * BUCKETS;
	uint64_t top = 1;
	/* a sampled trace: the 95% interval of the stacked total (the series
	 * hold disjoint blocks, sampled independently: their variances add) */
	double *band = xcalloc(BUCKETS, sizeof(double));
	for (size_t b = 0; b < BUCKETS; b++) {
		uint64_t sum = 0;
		double var = 0;
		for (size_t i = 0; i <= tl->n; i++) {
			sum += tl->s[i].max[b];
			var += tl->s[i].sp ? tl->s[i].sp->var[b] : 0;
		}
		band[b] = sample_half95(var);
		if (band[b] > 0)
			sum = sample_clamp((double)sum + band[b]);
		if (sum > top)
			top = sum;
		if (tl->rss[b] > top)
			top = tl->rss[b];
	}
	double legend = 22.0 * (double)(tl->n + 2);
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
		   "font-family=\"sans-serif\" font-size=\"12\">\n"
		   "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n<text x=\"%.0f\" y=\"24\" font-size=\"15\">",
		W + L + 20, H + T + 50 + legend, L);
	xml_text(f, title);
	fputs("</text>\n", f);
	/* grid and ticks: bytes on the left, time below */
	char b1[64];
	double ys = nice_bytes((double)top, 5);
	for (int i = 0; (double)i * ys <= (double)top * 1.0000001; i++) {
		double v = (double)i * ys, y = T + H - H * v / (double)top;
		fmt_bytes(b1, sizeof(b1), v, ys);
		fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
			   "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
			L, y, L + W, y, L - 4, y + 4, b1);
	}
	double xs = nice_step(span, 8);
	for (int i = 0; (double)i * xs <= span * 1.0000001; i++) {
		double t = (double)i * xs, x = L + W * t / span;
		fmt_time(b1, sizeof(b1), t, xs);
		fprintf(f, "<line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" stroke=\"#444\"/>"
			   "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%s</text>\n",
			x, T + H, x, T + H + 5, x, T + H + 18, b1);
	}
	/* stacked areas, from "other" at the bottom up */
	double *base = xcalloc(BUCKETS, sizeof(double));
	for (size_t k = tl->n + 1; k-- > 0;) {
		const struct series *s = &tl->s[k];
		fprintf(f, "<polygon fill=\"%s\" fill-opacity=\"0.85\" points=\"",
			k == tl->n ? "#cccccc" : palette[k % 10]);
		for (size_t b = 0; b < BUCKETS; b++) {
			double y = base[b] + (double)s->max[b];
			fprintf(f, "%.1f,%.1f ", L + W * (double)b / (BUCKETS - 1), T + H - H * y / (double)top);
		}
		for (size_t b = BUCKETS; b-- > 0;)
			fprintf(f, "%.1f,%.1f ", L + W * (double)b / (BUCKETS - 1),
				T + H - H * base[b] / (double)top);
		fputs("\"><title>", f);
		char *l = label_text(s, tl->group);
		xml_text(f, l);
		free(l);
		fputs("</title></polygon>\n", f);
		for (size_t b = 0; b < BUCKETS; b++)
			base[b] += (double)s->max[b];
	}
	if (tl->sample_interval) {
		fputs("<polygon class=\"band\" fill=\"#000\" fill-opacity=\"0.12\" points=\"", f);
		for (size_t b = 0; b < BUCKETS; b++)
			fprintf(f, "%.1f,%.1f ", L + W * (double)b / (BUCKETS - 1),
				T + H - H * (base[b] + band[b]) / (double)top);
		for (size_t b = BUCKETS; b-- > 0;) {
			double lo = base[b] > band[b] ? base[b] - band[b] : 0;
			fprintf(f, "%.1f,%.1f ", L + W * (double)b / (BUCKETS - 1),
				T + H - H * lo / (double)top);
		}
		fputs("\"><title>95% interval of the estimated heap</title></polygon>\n", f);
	}
	free(base);
	free(band);
	fputs("<polyline fill=\"none\" stroke=\"#000\" stroke-width=\"1.5\" points=\"", f);
	for (size_t b = 0; b < BUCKETS; b++)
		fprintf(f, "%.1f,%.1f ", L + W * (double)b / (BUCKETS - 1),
			T + H - H * (double)tl->rss[b] / (double)top);
	fputs("\"><title>RSS</title></polyline>\n", f);
	fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#444\"/>\n", L, T + H,
		L + W, T + H);
	/* markers: a dashed line each, the label at its top; collections a
	 * green line, labelled when they are few */
	size_t ngc = 0;
	for (size_t i = 0; i < tl->nmarks; i++)
		ngc += tl->marks[i].kind == HW_MARK_GC_END && mark_drawn(&tl->marks[i]);
	for (size_t i = 0; i < tl->nmarks; i++) {
		const struct mark *m = &tl->marks[i];
		if (!mark_drawn(m))
			continue;
		char buf[HW_MAX_LABEL + 64];
		if (m->kind == HW_MARK_GC_END) {
			double gx = L + W * ((double)m->time_ns / 1e9) / (span > 0 ? span : 1);
			if (gx > L + W)
				gx = L + W;
			fprintf(f, "<g class=\"mark gc\"><line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" "
				   "stroke=\"#2e7d32\" stroke-width=\"1\"/><title>",
				gx, T - 4, gx, T + H);
			xml_text(f, mark_text(tl, m, buf, sizeof(buf)));
			fputs("</title>", f);
			if (ngc <= GC_LABELS_MAX) {
				bool rt = gx > L + W - 120;
				fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" font-size=\"11\" fill=\"#2e7d32\"%s>",
					rt ? gx - 3 : gx + 3, T + H - 6 - 12.0 * (double)(i % 3),
					rt ? " text-anchor=\"end\"" : "");
				xml_text(f, mark_text(tl, m, buf, sizeof(buf)));
				fputs("</text>", f);
			}
			fputs("</g>\n", f);
			continue;
		}
		double x = L + W * ((double)m->time_ns / 1e9) / (span > 0 ? span : 1);
		if (x > L + W)
			x = L + W;
		bool right = x > L + W - 120; /* the label to the left of its line */
		fprintf(f, "<g class=\"mark\"><line x1=\"%.1f\" y1=\"%.0f\" x2=\"%.1f\" y2=\"%.0f\" "
			   "stroke=\"%s\" stroke-dasharray=\"4 3\"/><text x=\"%.1f\" y=\"%.0f\" "
			   "font-size=\"11\" fill=\"%s\"%s>",
			x, T - 4, x, T + H, m->kind == HW_MARK_USER ? "#7a3fb0" : "#b03f3f",
			right ? x - 3 : x + 3, T + 8 + 12.0 * (double)(i % 3),
			m->kind == HW_MARK_USER ? "#7a3fb0" : "#b03f3f", right ? " text-anchor=\"end\"" : "");
		xml_text(f, mark_text(tl, m, buf, sizeof(buf)));
		fputs("</text></g>\n", f);
	}
	double y = T + H + 40;
	fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#000\" stroke-width=\"2\"/>"
		   "<text x=\"%.0f\" y=\"%.0f\">RSS</text>\n",
		L, y - 4, L + 14, y - 4, L + 20, y);
	for (size_t k = 0; k <= tl->n; k++) {
		y += 22;
		fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"14\" height=\"12\" fill=\"%s\"/><text x=\"%.0f\" y=\"%.0f\">",
			L, y - 11, k == tl->n ? "#cccccc" : palette[k % 10], L + 20, y);
		char *l = label_text(&tl->s[k], tl->group);
		xml_text(f, l);
		free(l);
		fputs("</text>\n", f);
	}
	fputs("</svg>\n", f);
}

/* The page: the JSON document in a data block, drawn as SVG by a small
 * script. Names reach the DOM only through textContent. */
static const char html_mid[] =
	"</title>\n<style>body{font:13px sans-serif;margin:12px;color:#222}#chart{width:100%;"
	"user-select:none}#info{min-height:3em;font:12px monospace;white-space:pre}"
	"#legend div{margin:2px 0}#legend span{display:inline-block;width:12px;height:12px;"
	"margin-right:6px;vertical-align:middle}</style></head><body>\n<h3 id=\"title\"></h3>\n"
	"<div>drag to zoom into a time window, double-click to zoom out "
	"<button id=\"reset\">reset</button></div>\n<div id=\"chart\"></div>\n"
	"<div id=\"info\"></div>\n<div id=\"legend\"></div>\n"
	"<script type=\"application/json\" id=\"data\">";
static const char html_tail[] =
	"</script>\n<script>\n(function(){\n"
	"var d=JSON.parse(document.getElementById('data').textContent);\n"
	"var T=d.times_s,S=d.series,R=d.rss_bytes,M=d.marks||[],N=T.length,lo=0,hi=N-1,NS='http://www.w3.org/2000/svg';\n"
	"var dt=N>1?T[1]-T[0]:1;\n"
	"document.title=d.title;document.getElementById('title').textContent=d.title;\n"
	"var C=['#4e79a7','#f28e2b','#59a14f','#e15759','#76b7b2','#edc948','#b07aa1','#ff9da7','#9c755f','#bab0ac'];\n"
	"function col(k){return S[k].callsite.other?'#ccc':C[k%10]}\n"
	"function lab(s){return s.label}\n"
	/* a sampled trace: the 95% interval's half width of the stacked total
	 * (the series hold disjoint blocks: their variances add) and of one
	 * value */
	"function half(se){return 1.96*se}\n"
	"function band(i){if(!d.sample_interval)return 0;var v=0;for(var k=0;k<S.length;k++){var e=S[k].live_stderr_bytes[i];v+=e*e}return half(Math.sqrt(v))}\n"
	"function pmv(v,e,n){return !d.sample_interval||!v?'':!e?' exact':' \\u00b1 '+size(Math.round(half(e)))+' ('+n+' sample'+(n==1?'':'s')+(n<5?', unreliable':'')+')'}\n"
	"function pm(s,i){return pmv(s.live_bytes[i],s.live_stderr_bytes[i],s.live_samples[i])}\n"
	"function nice(span,want){if(!(span>0))return 1;var r=span/want,m=Math.pow(10,Math.floor(Math.log10(r))),f=r/m;"
	"return (f<=1?1:f<=2?2:f<=5?5:10)*m}\n"
	"function dec(st){return st>=1?0:Math.ceil(-Math.log10(st)-1e-9)}\n"
	"function ftime(t,st){var u='s',k=1;if(st<1e-3){u='\\u00b5s';k=1e6}else if(st<1){u='ms';k=1e3}"
	"var v=t*k;return (Math.abs(v)<1e-9?0:v).toFixed(dec(st*k))+' '+u}\n"
	"function size(v){var u=['B','KiB','MiB','GiB','TiB'],i=0;while(v>=1024&&i<4){v/=1024;i++}"
	"return (i?v.toFixed(1):v)+' '+u[i]}\n"
	"function fbytes(v,st){var u=['B','KiB','MiB','GiB','TiB'],i=0;while(i<4&&st>=1024){st/=1024;v/=1024;i++}"
	"return v.toFixed(dec(st))+' '+u[i]}\n"
	"function nbytes(span,want){var u=1;while(span/u>=1024*want&&u<1099511627776)u*=1024;return nice(span/u,want)*u}\n"
	"var box=document.getElementById('chart'),info=document.getElementById('info'),down=-1;\n"
	"function el(n,a){var e=document.createElementNS(NS,n);for(var k in a)e.setAttribute(k,a[k]);return e}\n"
	"function text(x,y,s,a){var t=el('text',a||{});t.setAttribute('x',x);t.setAttribute('y',y);t.textContent=s;return t}\n"
	"function draw(){box.textContent='';var W0=box.clientWidth||1000,LM=72,W=Math.max(200,W0-LM-10),H=340,TM=40,top=1,i,k;\n"
	"for(i=lo;i<=hi;i++){var s=0;for(k=0;k<S.length;k++)s+=S[k].live_bytes[i];top=Math.max(top,s+band(i),R[i])}\n"
	"var t0=T[lo],t1=T[hi]+dt,X=function(t){return LM+(t-t0)/(t1-t0)*W},XI=function(i){return X(T[i]+dt/2)},"
	"MX=function(t){return Math.min(LM+W,Math.max(LM,X(t)))},"
	"Y=function(v){return TM+H-H*v/top};\n"
	"var svg=el('svg',{width:LM+W+10,height:TM+H+24}),base=[];for(i=0;i<N;i++)base.push(0);\n"
	"var ys=nbytes(top,5);for(var v=0;v<=top*1.0000001;v+=ys){svg.appendChild(el('line',{x1:LM,x2:LM+W,y1:Y(v),y2:Y(v),stroke:'#e4e4e4'}));"
	"svg.appendChild(text(LM-4,Y(v)+4,fbytes(v,ys),{'text-anchor':'end'}))}\n"
	"var xs=nice(t1-t0,8);for(var t=Math.ceil(t0/xs-1e-9)*xs;t<=t1+1e-12;t+=xs){svg.appendChild(el('line',{x1:X(t),x2:X(t),y1:TM+H,y2:TM+H+5,stroke:'#444'}));"
	"svg.appendChild(text(X(t),TM+H+18,ftime(t,xs),{'text-anchor':'middle'}))}\n"
	"for(k=S.length-1;k>=0;k--){var pts=[];for(i=lo;i<=hi;i++)pts.push(XI(i)+','+Y(base[i]+S[k].live_bytes[i]));"
	"for(i=hi;i>=lo;i--)pts.push(XI(i)+','+Y(base[i]));var p=el('polygon',{points:pts.join(' '),fill:col(k),'fill-opacity':0.85});"
	"var tt=el('title',{});tt.textContent=lab(S[k]);p.appendChild(tt);svg.appendChild(p);"
	"for(i=lo;i<=hi;i++)base[i]+=S[k].live_bytes[i]}\n"
	"if(d.sample_interval){var bp=[];for(i=lo;i<=hi;i++)bp.push(XI(i)+','+Y(base[i]+band(i)));"
	"for(i=hi;i>=lo;i--)bp.push(XI(i)+','+Y(Math.max(0,base[i]-band(i))));"
	"var bd=el('polygon',{points:bp.join(' '),fill:'#000','fill-opacity':0.12,'class':'band'});"
	"var bt=el('title',{});bt.textContent='95% interval of the estimated heap';bd.appendChild(bt);svg.appendChild(bd)}\n"
	"var r=[];for(i=lo;i<=hi;i++)r.push(XI(i)+','+Y(R[i]));"
	"svg.appendChild(el('polyline',{points:r.join(' '),fill:'none',stroke:'#000','stroke-width':1.5}));\n"
	"svg.appendChild(el('line',{x1:LM,x2:LM+W,y1:TM+H,y2:TM+H,stroke:'#444'}));\n"
	"var GC=M.filter(function(m){return m.kind==='gc-end'&&(m.freed_bytes>0||m.label.indexOf('gen 2')>=0)}).length;\n"
	"M.forEach(function(m,j){if((lo>0&&m.time_s<t0)||(hi<N-1&&m.time_s>t1)||m.kind==='gc-start')return;"
	"if(m.kind==='gc-end'){if(!(m.freed_bytes>0||m.label.indexOf('gen 2')>=0))return;"
	"var gt=m.label+', '+size(m.freed_bytes)+pmv(m.freed_bytes,m.freed_stderr_bytes,m.freed_samples)+' freed',gg=el('g',{'class':'mark gc'});"
	"gg.appendChild(el('line',{x1:MX(m.time_s),x2:MX(m.time_s),y1:TM-4,y2:TM+H,stroke:'#2e7d32'}));"
	"if(GC<=40){var grt=MX(m.time_s)>LM+W-120;gg.appendChild(text(MX(m.time_s)+(grt?-3:3),TM+H-6-12*(j%3),gt,{fill:'#2e7d32','font-size':11,'text-anchor':grt?'end':'start'}))}"
	"var gti=el('title',{});gti.textContent=gt+' at '+m.time_s.toFixed(6)+' s';gg.appendChild(gti);svg.appendChild(gg);return}"
	"var c=m.kind==='mark'?'#7a3fb0':'#b03f3f',g=el('g',{'class':'mark'});"
	"g.appendChild(el('line',{x1:MX(m.time_s),x2:MX(m.time_s),y1:TM-4,y2:TM+H,stroke:c,'stroke-dasharray':'4 3'}));"
	"var rt=MX(m.time_s)>LM+W-120;g.appendChild(text(MX(m.time_s)+(rt?-3:3),TM+8+12*(j%3),m.kind==='python-finalize'?'Python finalizes':m.label,{fill:c,'font-size':11,'text-anchor':rt?'end':'start'}));"
	"var mt=el('title',{});mt.textContent=(m.kind==='python-finalize'?'Python finalizes':'marker '+m.label)+' at '+m.time_s.toFixed(6)+' s';g.appendChild(mt);svg.appendChild(g)});\n"
	"var cur=el('line',{y1:TM,y2:TM+H,stroke:'#888'});svg.appendChild(cur);\n"
	"function at(ev){var b=svg.getBoundingClientRect(),t=t0+(ev.clientX-b.left-LM)/W*(t1-t0);"
	"return Math.max(lo,Math.min(hi,Math.floor(t/dt)))}\n"
	"svg.onmousemove=function(ev){var i=at(ev);cur.setAttribute('x1',XI(i));cur.setAttribute('x2',XI(i));"
	"var s=T[i].toFixed(3)+' s   RSS '+size(R[i]);for(var k=0;k<S.length;k++)if(S[k].live_bytes[i])s+='\\n'+size(S[k].live_bytes[i])+pm(S[k],i)+'  '+lab(S[k]);"
	"info.textContent=s};\n"
	"svg.onmousedown=function(ev){down=at(ev)};svg.onmouseup=function(ev){var u=at(ev);"
	"if(down>=0&&Math.abs(u-down)>1){lo=Math.max(0,Math.min(down,u));hi=Math.min(N-1,Math.max(down,u));draw()}down=-1};\n"
	"svg.ondblclick=function(){lo=0;hi=N-1;draw()};box.appendChild(svg)}\n"
	"var lg=document.getElementById('legend');var d0=document.createElement('div');d0.textContent='\\u2014 RSS';lg.appendChild(d0);\n"
	"S.forEach(function(s,k){var e=document.createElement('div'),c=document.createElement('span');"
	"c.style.background=col(k);e.appendChild(c);e.appendChild(document.createTextNode(lab(s)));lg.appendChild(e)});\n"
	"document.getElementById('reset').onclick=function(){lo=0;hi=N-1;draw()};window.onresize=draw;draw();\n"
	"})();\n</script>\n</body></html>\n";

static void write_html(FILE *f, const struct timeline *tl, double step, const char *title)
{
	fputs(report_html_head, f);
	xml_text(f, title);
	fputs(html_mid, f);
	/* the JSON document, with the title added in front */
	char *doc = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&doc, &len);
	write_json(m, tl, step);
	fclose(m);
	fputs("{\"title\":", f);
	json_str(f, title);
	fputc(',', f);
	fwrite(doc + 1, 1, len > 3 ? len - 3 : 0, f); /* without its braces and newline */
	fputs("}", f);
	free(doc);
	fputs(html_tail, f);
}

enum hw_err report_timeline(FILE *f, struct trace *t, const struct analysis_opts *opts,
			    size_t n, enum group_by group, enum timeline_format fmt,
			    const char *title)
{
	struct analysis a;
	enum hw_err rc = analysis_run(&a, t, opts);
	if (rc != HW_OK) {
		analysis_free(&a);
		return rc;
	}
	/* pass 1: the series, as top's rows by peak */
	struct symbolizer *s = symbolizer_new(&a);
	struct report rows;
	int32_t *site_series = xmalloc((a.nsites + 1) * sizeof(*site_series));
	report_build_series(&rows, &a, s, group, n, site_series);
	struct timeline tl = {0};
	tl.n = rows.n;
	tl.group = group;
	tl.s = xcalloc(tl.n + 1, sizeof(*tl.s));
	for (size_t k = 0; k < tl.n; k++) {
		tl.s[k].row = &rows.rows[k];
		for (size_t j = 0; j < rows.rows[k].nframes; j++) /* all in the output */
			symbolizer_shown(s, &rows.rows[k].frames[j]);
	}
	if (group == GROUP_STACK)
		distinct_labels(&tl, site_series, a.nsites);
	tl.site_series = site_series;
	tl.nsites = a.nsites;
	tl.duration_ns = a.end_time_ns + 1;
	tl.edge = edge_after(&tl, 0);
	tl.marks = a.marks;
	tl.nmarks = a.nmarks;
	tl.sample_interval = a.sample_interval;
	for (size_t i = 0; i <= tl.n; i++) {
		tl.s[i].max = xcalloc(BUCKETS, sizeof(uint64_t));
		if (tl.sample_interval) {
			tl.s[i].sp = xcalloc(1, sizeof(*tl.s[i].sp));
			tl.s[i].sp->var = xcalloc(BUCKETS, sizeof(double));
			tl.s[i].sp->nsamp = xcalloc(BUCKETS, sizeof(uint64_t));
		}
	}
	tl.rss = xcalloc(BUCKETS, sizeof(uint64_t));
	for (size_t i = 0; i < a.nrss; i++) {
		size_t b = bucket_of(&tl, a.rss[i].time_ns);
		if (a.rss[i].rss > tl.rss[b])
			tl.rss[b] = a.rss[i].rss;
	}
	for (size_t b = 1; b < BUCKETS; b++) /* carry the last sample forward */
		if (!tl.rss[b])
			tl.rss[b] = tl.rss[b - 1];
	/* the rows have their figures and frames: pass 1's replay state goes
	 * before pass 2 makes its own */
	analysis_release_replay(&a);

	/* pass 2: the same replay (sites come in the same order), recording
	 * the series */
	struct analysis_opts o2 = *opts;
	o2.hook = tl.sample_interval ? on_change_sampled : on_change;
	o2.hook_ctx = &tl;
	struct analysis a2;
	rc = analysis_run(&a2, t, &o2);
	if (rc == HW_OK) {
		size_t from = tl.bucket;
		advance(&tl, BUCKETS - 1);
		if (tl.sample_interval)
			advance_spread(&tl, from);
		double step = (double)tl.duration_ns / 1e9 / BUCKETS;
		char full[1400], note[160];
		if (tl.sample_interval) {
			snprintf(full, sizeof(full), "%s (%s)", title,
				 sample_note(tl.sample_interval, note, sizeof(note)));
			title = full;
			if (fmt == TIMELINE_CSV)
				sample_warn(t->path, tl.sample_interval);
		}
		if (fmt == TIMELINE_JSON)
			write_json(f, &tl, step);
		else if (fmt == TIMELINE_CSV)
			write_csv(f, &tl, step);
		else if (fmt == TIMELINE_HTML)
			write_html(f, &tl, step, title);
		else
			write_svg(f, &tl, step, title);
		if (ferror(f))
			rc = HW_ERR_OUTPUT;
	}
	analysis_free(&a2);
	for (size_t i = 0; i <= tl.n; i++) {
		free(tl.s[i].max);
		if (tl.s[i].sp) {
			free(tl.s[i].sp->var);
			free(tl.s[i].sp->nsamp);
			free(tl.s[i].sp);
		}
		free(tl.s[i].label);
	}
	free(tl.site_var);
	free(tl.site_n);
	free(tl.s);
	free(tl.rss);
	free(site_series);
	report_free(&rows);
	symbolizer_print_hints(s);
	symbolizer_free(s);
	analysis_free(&a);
	return rc;
}
