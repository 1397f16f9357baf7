/* `heapwise diff BASE NEW` (analyzer, reports + gate stages): per-callsite
 * change of peak, leaked and allocated bytes between two runs, sorted by
 * growth; --max-peak-growth PCT makes it a gate (exit 1). Callsites are
 * matched by their symbolized frames, since addresses differ between runs. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "commands.h"
#include "report.h"
#include "sampled.h"
#include "util.h"

static const char diff_usage[] =
	"usage: heapwise diff BASE NEW [--json] [--max-peak-growth PCT]\n"
	"                     [--group-by stack|line|function|file] [--sysroot DIR]\n"
	"                     [--blame user|innermost] [-n N]\n"
	"  exit status: 0 (or growth within the limit), 1 the peak grew more than PCT, 2 usage\n";

struct side {
	struct trace t;
	struct analysis a;
	struct symbolizer *s;
	struct report r;
	bool loaded;
};

/* A callsite's figures on one side: the sum of every row whose frames print
 * the same (two stacks that differ only where a report does not look, such
 * as two instructions of one Python line, are one callsite to a user). */
struct vals {
	bool present;
	uint64_t peak, leaked, alloc, count;
	/* a sampled side: the variances and samples of its estimates */
	double peak_var, leaked_var, alloc_var;
	uint64_t peak_n, leaked_n, alloc_n;
};

struct drow {
	char *key;
	struct row *any; /* frames to print: the new side's, else the base's */
	struct row *base_row; /* a base row of it (NULL: none) */
	struct side *from; /* any's */
	int cls;
	struct vals base, now;
	int64_t d_peak, d_leaked, d_alloc;
};

static int load_side(struct side *s, const char *path, enum group_by g)
{
	memset(s, 0, sizeof(*s));
	if (trace_open(path, &s->t) != HW_OK) {
		trace_close(&s->t);
		return 2;
	}
	if (analysis_run(&s->a, &s->t, NULL) != HW_OK) {
		analysis_free(&s->a);
		trace_close(&s->t);
		return 2;
	}
	s->s = symbolizer_new(&s->a);
	if (g == GROUP_STACK) /* keyed by report_row_hash, framed when shown */
		report_build_bare(&s->r, &s->a, s->s, g, BY_PEAK);
	else
		report_build(&s->r, &s->a, s->s, g, BY_PEAK, false);
	s->loaded = true;
	return 0;
}

static void free_side(struct side *s, bool hints)
{
	if (!s->loaded)
		return;
	if (hints)
		symbolizer_print_hints(s->s);
	report_free(&s->r);
	symbolizer_free(s->s);
	analysis_free(&s->a);
	trace_close(&s->t);
}

static int cmp_key(const void *x, const void *y)
{
	return strcmp(((const struct drow *)x)->key, ((const struct drow *)y)->key);
}

static int cmp_growth(const void *x, const void *y)
{
	const struct drow *a = x, *b = y;
	if (a->d_peak != b->d_peak)
		return a->d_peak > b->d_peak ? -1 : 1;
	if (a->d_leaked != b->d_leaked)
		return a->d_leaked > b->d_leaked ? -1 : 1;
	if (a->d_alloc != b->d_alloc)
		return a->d_alloc > b->d_alloc ? -1 : 1;
	/* as much growth: the larger callsite first */
	uint64_t va[] = {a->now.peak, a->now.leaked, a->now.alloc, a->base.peak, a->base.alloc};
	uint64_t vb[] = {b->now.peak, b->now.leaked, b->now.alloc, b->base.peak, b->base.alloc};
	for (size_t i = 0; i < sizeof(va) / sizeof(*va); i++)
		if (va[i] != vb[i])
			return va[i] > vb[i] ? -1 : 1;
	return strcmp(a->key, b->key);
}

/* " ± X (N samples)" of one side's figure when its trace is sampled
 * (interval not 0), "" otherwise. */
static void side_pm(char *buf, size_t cap, uint64_t interval, uint64_t value, double var,
		    uint64_t samples)
{
	char t[96];
	buf[0] = 0;
	if (interval)
		snprintf(buf, cap, " %s", sample_pm(t, value, var, samples));
}

static const char *signed_size(char *buf, int64_t v)
{
	char tmp[32];
	fmt_size(tmp, (uint64_t)(v < 0 ? -v : v));
	snprintf(buf, 40, "%s%s", v < 0 ? "-" : v > 0 ? "+" : "", tmp);
	return buf;
}

static double pct(uint64_t base, uint64_t now)
{
	if (!base)
		return now ? INFINITY : 0;
	return 100.0 * ((double)now - (double)base) / (double)base;
}

static uint64_t total_leaked(const struct analysis *a)
{
	uint64_t b, n;
	report_leaked(a, &b, &n);
	return b;
}

static uint64_t total_allocated(const struct analysis *a)
{
	uint64_t sum = 0;
	for (int k = 0; k < HW_KIND_COUNT; k++)
		if (kind_class(k) == CLASS_HEAP)
			sum += a->kinds[k].alloc_bytes;
	return sum;
}

static void json_side(FILE *f, const struct vals *v, bool sampled)
{
	if (!v->present) {
		fputs("null", f);
		return;
	}
	fprintf(f, "{\"peak_bytes\":%" PRIu64 ",\"leaked_bytes\":%" PRIu64 ",\"allocated_bytes\":%" PRIu64
		   ",\"count\":%" PRIu64,
		v->peak, v->leaked, v->alloc, v->count);
	if (sampled) {
		sample_spread_json(f, "peak", v->peak_var, v->peak_n);
		sample_spread_json(f, "leaked", v->leaked_var, v->leaked_n);
		sample_spread_json(f, "allocated", v->alloc_var, v->alloc_n);
	}
	fputc('}', f);
}

static void add_row(struct vals *v, const struct row *r)
{
	v->present = true;
	v->peak += r->peak_bytes;
	v->leaked += r->leaked_bytes;
	v->alloc += r->allocated_bytes;
	v->count += r->count;
	v->peak_var += r->peak_var;
	v->leaked_var += r->leaked_var;
	v->alloc_var += r->allocated_var;
	v->peak_n += r->peak_samples;
	v->leaked_n += r->leaked_samples;
	v->alloc_n += r->allocated_samples;
}

static struct drow side_row(struct side *s, struct report_keys *k, struct row *r, bool is_new)
{
	struct drow d = {.any = r, .base_row = is_new ? NULL : r, .from = s, .cls = r->cls};
	/* by stack: the hash of what the row would print */
	d.key = k ? report_row_hash_key(k, r) : report_row_key(r);
	add_row(is_new ? &d.now : &d.base, r);
	return d;
}

/* By line, the function the base names a line with when it is not the one
 * shown (the new side's): a line is file:line on both sides, and 3.11 runs
 * a comprehension in f.<locals>.<listcomp> where 3.12+ inline it in f.
 * NULL when they agree or a side has no such row. */
static const char *base_function(const struct drow *d, enum group_by g)
{
	const struct row *b = d->base_row, *n = d->any;
	if (g != GROUP_LINE || !b || b == n || !d->now.present || !b->nframes || !n->nframes)
		return NULL;
	const char *bf = b->frames[0].function, *nf = n->frames[0].function;
	if (bf == nf || (bf && nf && !strcmp(bf, nf)))
		return NULL;
	return bf ? bf : "??";
}

int cmd_diff(int argc, char **argv)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"max-peak-growth", required_argument, NULL, 'g'},
		{"group-by", required_argument, NULL, 'G'},
		{"sysroot", required_argument, NULL, 'S'},
		{"blame", required_argument, NULL, 'L'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0},
	};
	bool json = false, gate = false;
	double max_growth = 0;
	enum group_by group = GROUP_STACK;
	size_t n = 10;
	int c;
	optind = 1;
	while ((c = err_getopt("diff", argc, argv, "n:h", opts)) != -1) {
		switch (c) {
		case 'S':
			symbolizer_set_sysroot(optarg);
			break;
		case 'j':
			json = true;
			break;
		case 'g': {
			char *end;
			max_growth = strtod(optarg, &end);
			if (end == optarg || (*end && strcmp(end, "%")) || !isfinite(max_growth) ||
			    max_growth < 0) {
				err_print("diff: --max-peak-growth %s: expected a percentage such as 10 or 2.5",
					  optarg);
				return 2;
			}
			gate = true;
			break;
		}
		case 'G':
			if (!parse_group_option("diff", optarg, &group))
				return 2;
			break;
		case 'L': {
			enum blame b;
			if (!parse_blame_option("diff", optarg, &b))
				return 2;
			report_set_blame(b);
			break;
		}
		case 'n':
			if (!parse_count_option("diff", optarg, 1000000, &n))
				return 2;
			break;
		case 'h':
			fputs(diff_usage, stdout);
			return 0;
		default:
			fputs(diff_usage, stderr);
			return 2;
		}
	}
	if (argc - optind != 2) {
		err_print("diff: expected two traces, BASE and NEW");
		fputs(diff_usage, stderr);
		return 2;
	}
	struct side base, now;
	if (load_side(&base, argv[optind], group)) {
		return 2;
	}
	if (load_side(&now, argv[optind + 1], group)) {
		free_side(&base, false);
		return 2;
	}
	/* join the two row lists on their keys */
	size_t total = base.r.n + now.r.n;
	struct drow *rows = xcalloc(total + 1, sizeof(*rows));
	size_t m = 0;
	for (int side = 0; side < 2; side++) {
		struct side *sd = side ? &now : &base;
		struct report_keys *k = group == GROUP_STACK ? report_keys_new(&sd->a, sd->s) : NULL;
		for (size_t i = 0; i < sd->r.n; i++)
			rows[m++] = side_row(sd, k, &sd->r.rows[i], side);
		report_keys_free(k);
	}
	qsort(rows, m, sizeof(*rows), cmp_key);
	/* rows whose frames print the same are one callsite: their figures add
	 * up on each side (the key has the class) */
	size_t out = 0;
	for (size_t i = 0; i < m; i++) {
		if (out && !strcmp(rows[out - 1].key, rows[i].key)) {
			struct drow *d = &rows[out - 1];
			if (rows[i].base.present) {
				add_row(&d->base, rows[i].any);
				if (!d->base_row)
					d->base_row = rows[i].any;
			}
			if (rows[i].now.present) {
				if (!d->now.present) {
					d->any = rows[i].any;
					d->from = rows[i].from;
				}
				add_row(&d->now, rows[i].any);
			}
			free(rows[i].key);
			continue;
		}
		rows[out++] = rows[i];
	}
	for (size_t i = 0; i < out; i++) {
		struct drow *d = &rows[i];
		d->d_peak = (int64_t)(d->now.peak - d->base.peak);
		d->d_leaked = (int64_t)(d->now.leaked - d->base.leaked);
		d->d_alloc = (int64_t)(d->now.alloc - d->base.alloc);
	}
	qsort(rows, out, sizeof(*rows), cmp_growth);
	/* the heap callsites past the first n, so the rows shown and this line
	 * add up to the headline */
	size_t shown = n < out ? n : out, rest = 0;
	int64_t rest_peak = 0, rest_leaked = 0, rest_alloc = 0;
	for (size_t i = shown; i < out; i++) {
		if (rows[i].cls != CLASS_HEAP)
			continue;
		rest++;
		rest_peak += rows[i].d_peak;
		rest_leaked += rows[i].d_leaked;
		rest_alloc += rows[i].d_alloc;
	}
	uint64_t bpk = base.a.peaks[CLASS_HEAP].peak, npk = now.a.peaks[CLASS_HEAP].peak;
	bool sampled = base.a.sample_interval || now.a.sample_interval;
	struct spread_fig bspread, nspread;
	sample_heap_spread(&base.a, &bspread);
	sample_heap_spread(&now.a, &nspread);
	double growth = pct(bpk, npk);
	bool failed = gate && growth > max_growth;
	if (n > out)
		n = out;
	if (group == GROUP_STACK)
		for (size_t i = 0; i < n; i++)
			report_row_frame(rows[i].any, &rows[i].from->a, rows[i].from->s);
	if (json) {
		printf("{\"version\":1,\"base\":");
		json_str(stdout, argv[optind]);
		printf(",\"new\":");
		json_str(stdout, argv[optind + 1]);
		/* sampled traces: their figures are estimates */
		printf(",\"base_sample_interval\":");
		base.a.sample_interval ? printf("%" PRIu64, base.a.sample_interval) : printf("null");
		printf(",\"new_sample_interval\":");
		now.a.sample_interval ? printf("%" PRIu64, now.a.sample_interval) : printf("null");
		printf(",\"peak_bytes\":{\"base\":%" PRIu64 ",\"new\":%" PRIu64, bpk, npk);
		if (sampled) {
			sample_spread_json(stdout, "base_peak", bspread.peak_var, bspread.peak_n);
			sample_spread_json(stdout, "new_peak", nspread.peak_var, nspread.peak_n);
		}
		printf("},\"peak_growth_pct\":");
		if (isfinite(growth))
			printf("%.3f", growth);
		else
			printf("null");
		printf(",\"leaked_bytes\":{\"base\":%" PRIu64 ",\"new\":%" PRIu64,
		       total_leaked(&base.a), total_leaked(&now.a));
		if (sampled) {
			sample_spread_json(stdout, "base_leaked", bspread.leak_var, bspread.leak_n);
			sample_spread_json(stdout, "new_leaked", nspread.leak_var, nspread.leak_n);
		}
		printf("},\"allocated_bytes\":{\"base\":%" PRIu64 ",\"new\":%" PRIu64,
		       total_allocated(&base.a), total_allocated(&now.a));
		if (sampled) {
			sample_spread_json(stdout, "base_allocated", bspread.alloc_var, bspread.alloc_n);
			sample_spread_json(stdout, "new_allocated", nspread.alloc_var, nspread.alloc_n);
		}
		putchar('}');
		if (gate)
			printf(",\"max_peak_growth_pct\":%.3f,\"passed\":%s", max_growth,
			       failed ? "false" : "true");
		printf(",\"callsites\":[");
		for (size_t i = 0; i < n; i++) {
			const struct drow *d = &rows[i];
			const struct row *any = d->any;
			printf("%s\n{\"class\":\"%s\",\"frames\":", i ? "," : "", class_name(d->cls));
			report_frames_json(stdout, any->frames, any->nframes);
			const char *bfn = base_function(d, group);
			if (bfn) { /* the frames are the new side's */
				printf(",\"base_function\":");
				json_str(stdout, bfn);
			}
			printf(",\"base\":");
			json_side(stdout, &d->base, sampled);
			printf(",\"new\":");
			json_side(stdout, &d->now, sampled);
			printf(",\"delta\":{\"peak_bytes\":%" PRId64 ",\"leaked_bytes\":%" PRId64
			       ",\"allocated_bytes\":%" PRId64,
			       d->d_peak, d->d_leaked, d->d_alloc);
			if (sampled) { /* two independent estimates: their variances add */
				sample_spread_json(stdout, "peak", d->base.peak_var + d->now.peak_var,
						   d->base.peak_n + d->now.peak_n);
				sample_spread_json(stdout, "leaked",
						   d->base.leaked_var + d->now.leaked_var,
						   d->base.leaked_n + d->now.leaked_n);
				sample_spread_json(stdout, "allocated",
						   d->base.alloc_var + d->now.alloc_var,
						   d->base.alloc_n + d->now.alloc_n);
			}
			printf("}}");
		}
		printf("],\"heap_callsites_not_shown\":{\"count\":%zu,\"delta\":{\"peak_bytes\":%" PRId64
		       ",\"leaked_bytes\":%" PRId64 ",\"allocated_bytes\":%" PRId64 "}}}\n",
		       rest, rest_peak, rest_leaked, rest_alloc);
	} else {
		char b1[40], b2[40], b3[40];
		fputs("heapwise diff: ", stdout);
		text_str(stdout, argv[optind]);
		fputs(" -> ", stdout);
		text_str(stdout, argv[optind + 1]);
		printf(" (grouped by %s)\n", group_name(group));
		char note[160];
		if (base.a.sample_interval)
			printf("  base        %s\n",
			       sample_note(base.a.sample_interval, note, sizeof(note)));
		if (now.a.sample_interval)
			printf("  new         %s\n",
			       sample_note(now.a.sample_interval, note, sizeof(note)));
		char pm1[100], pm2[100], pm3[100] = "";
		side_pm(pm1, sizeof(pm1), base.a.sample_interval, bpk, bspread.peak_var, bspread.peak_n);
		side_pm(pm2, sizeof(pm2), now.a.sample_interval, npk, nspread.peak_var, nspread.peak_n);
		if (sampled)
			side_pm(pm3, sizeof(pm3), 1, bpk + npk, bspread.peak_var + nspread.peak_var,
				bspread.peak_n + nspread.peak_n);
		printf("  peak heap   %s%s -> %s%s (%s%s", fmt_size(b1, bpk), pm1, fmt_size(b2, npk), pm2,
		       signed_size(b3, (int64_t)(npk - bpk)), pm3);
		if (isfinite(growth))
			printf(", %+.1f%%)\n", growth);
		else
			printf(")\n");
		/* leaked and allocated: each side's interval (the change's is in
		 * the rows below, per callsite) */
		uint64_t bl = total_leaked(&base.a), nl = total_leaked(&now.a);
		uint64_t ba = total_allocated(&base.a), na = total_allocated(&now.a);
		side_pm(pm1, sizeof(pm1), base.a.sample_interval, bl, bspread.leak_var, bspread.leak_n);
		side_pm(pm2, sizeof(pm2), now.a.sample_interval, nl, nspread.leak_var, nspread.leak_n);
		printf("  leaked      %s%s -> %s%s\n", fmt_size(b1, bl), pm1, fmt_size(b2, nl), pm2);
		side_pm(pm1, sizeof(pm1), base.a.sample_interval, ba, bspread.alloc_var, bspread.alloc_n);
		side_pm(pm2, sizeof(pm2), now.a.sample_interval, na, nspread.alloc_var, nspread.alloc_n);
		printf("  allocated   %s%s -> %s%s\n\n", fmt_size(b1, ba), pm1, fmt_size(b2, na), pm2);
		printf("  %3s  %-12s %-12s %-12s %s\n", "#", "PEAK", "LEAKED", "ALLOCATED", "callsite");
		/* by stack, a row is named by one frame: where two would read the
		 * same, by its column or its callers (report_stack_labels) */
		char **labels = NULL;
		if (group == GROUP_STACK) {
			const struct frame_info **fr = xcalloc(n + 1, sizeof(*fr));
			size_t *nfr = xcalloc(n + 1, sizeof(*nfr)), *same = xcalloc(n + 1, sizeof(*same));
			labels = xcalloc(n + 1, sizeof(*labels));
			for (size_t i = 0; i < n; i++) {
				fr[i] = rows[i].any->frames;
				nfr[i] = rows[i].any->nframes;
				for (size_t j = 0; j < nfr[i]; j++)
					symbolizer_shown(rows[i].any->sym, &fr[i][j]);
			}
			report_stack_labels(fr, nfr, n, report_blame(), labels, same);
			free(fr);
			free(nfr);
			free(same);
		}
		for (size_t i = 0; i < n; i++) {
			const struct drow *d = &rows[i];
			const struct row *any = d->any;
			printf("  %3zu  %-12s %-12s %-12s ", i + 1, signed_size(b1, d->d_peak),
			       signed_size(b2, d->d_leaked), signed_size(b3, d->d_alloc));
			size_t py = usercode_blame_frame(any->frames, any->nframes, report_blame());
			if (labels)
				fputs(labels[i], stdout); /* the display form already */
			else if (any->nframes)
				report_row_frame_text(stdout, any, py < any->nframes ? py : 0, group);
			else
				fputs("(no stack recorded)", stdout);
			const char *bfn = base_function(d, group);
			if (bfn) { /* the function shown is the new side's */
				fputs(" (base: ", stdout);
				text_str(stdout, bfn);
				fputc(')', stdout);
			}
			if (labels)
				free(labels[i]);
			if (d->cls != CLASS_HEAP)
				printf("  [%s]", class_name(d->cls));
			printf("%s\n", !d->base.present ? "  [new]" : !d->now.present ? "  [gone]" : "");
			if (sampled) {
				/* the change's 95% interval: base and new are
				 * independent estimates, their variances add */
				char s1[96], s2[96], s3[96];
				printf("       95%% interval of the change: peak %s, leaked %s, allocated %s\n",
				       sample_pm(s1, d->base.peak + d->now.peak,
						 d->base.peak_var + d->now.peak_var,
						 d->base.peak_n + d->now.peak_n),
				       sample_pm(s2, d->base.leaked + d->now.leaked,
						 d->base.leaked_var + d->now.leaked_var,
						 d->base.leaked_n + d->now.leaked_n),
				       sample_pm(s3, d->base.alloc + d->now.alloc,
						 d->base.alloc_var + d->now.alloc_var,
						 d->base.alloc_n + d->now.alloc_n));
			}
		}
		free(labels);
		if (rest)
			printf("       %-12s %-12s %-12s ... %zu more heap callsite%s (-n shows more)\n",
			       signed_size(b1, rest_peak), signed_size(b2, rest_leaked),
			       signed_size(b3, rest_alloc), rest, rest == 1 ? "" : "s");
		if (gate)
			printf("\n%s: peak growth %s%.1f%% %s the limit of %.1f%%\n",
			       failed ? "FAIL" : "PASS", growth >= 0 ? "+" : "",
			       isfinite(growth) ? growth : 100.0, failed ? "exceeds" : "is within",
			       max_growth);
		if (gate && sampled && bpk) {
			/* the growth of estimates: its interval, from the change's */
			double h = 100.0 * sample_half95(bspread.peak_var + nspread.peak_var) / (double)bpk;
			printf("  (estimates: the growth's 95%% interval is %+.1f%% to %+.1f%%; the gate "
			       "holds the estimate to the limit)\n",
			       growth - h, growth + h);
		}
	}
	for (size_t i = 0; i < out; i++)
		free(rows[i].key);
	free(rows);
	free_side(&base, !json);
	free_side(&now, !json);
	return failed ? 1 : 0;
}
