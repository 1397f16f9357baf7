/* `heapwise check` (analyzer, gate stage): limits on peak, leaked bytes and
 * allocation count, with suppressions, turned into an exit code (0 every
 * limit holds, 1 one failed, 2 could not check: also a trace whose
 * recording stopped early, or that recorded nothing) and optional JUnit XML. */
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
#include "suppress.h"
#include "util.h"

#define OFFENDERS 5

static const char check_usage[] =
	"usage: heapwise check TRACE... [--max-peak SIZE] [--max-leaked SIZE] [--max-allocations N]\n"
	"                      [--suppressions FILE] [--junit FILE] [--between MARK_A MARK_B]\n"
	"                      [--include-all] [--allow-sampled] [--allow-incomplete]\n"
	"                      [--sysroot DIR] [--blame user|innermost] [-n N]\n"
	"  SIZE: 123, 10K, 10KiB, 5MB, 1.5G (K = 1024)\n"
	"  --allow-sampled     check a sampled trace's estimates (refused otherwise: exit 2)\n"
	"  --allow-incomplete  check the figures of a trace whose recording stopped early\n"
	"                      (a size limit, an I/O error) or that recorded nothing, up to\n"
	"                      where it stopped (refused otherwise: exit 2)\n"
	"  exit status: 0 every limit holds, 1 a limit failed, 2 usage error, unreadable\n"
	"  trace, or a trace that cannot be judged (sampled, stopped early, empty)\n";

struct limit {
	const char *name;
	bool set, failed;
	uint64_t max, value;
	double var; /* a sampled trace: the estimate's variance (sampled.h) */
	char *detail; /* offending callsites, text */
};

struct check_opts {
	struct limit peak, leaked, allocs;
	const char *suppressions, *junit;
	struct analysis_opts an;
	size_t n;
	bool allow_sampled; /* limits against a sampled trace's estimates */
	bool allow_incomplete; /* limits against a stopped or empty trace's figures */
	int junit_errors; /* limits of traces it could not judge, as JUnit errors */
};

/* A trace whose limits cannot be judged (recording stopped early, nothing
 * recorded): each limit becomes a JUnit test case in error, with why. */
static void junit_refused(FILE *junit, struct check_opts *o, const char *path, const char *why)
{
	const struct limit *limits[] = {&o->peak, &o->leaked, &o->allocs};
	for (size_t i = 0; junit && i < 3; i++) {
		if (!limits[i]->set)
			continue;
		fprintf(junit, "  <testcase classname=\"heapwise.check\" name=\"");
		xml_text(junit, limits[i]->name);
		fputs(" (", junit);
		xml_text(junit, path);
		fputs(")\">\n    <error message=\"", junit);
		xml_text(junit, why);
		fputs("\"/>\n  </testcase>\n", junit);
		o->junit_errors++;
	}
}

/* One line per offending line of code (the user's, see usercode.h): the
 * stacks the suppressions leave, grouped by their blamed line. */
static char *offenders(const struct analysis *a, struct symbolizer *s, enum sort_by by,
		       struct suppressions *sup, size_t n, bool leaks)
{
	struct report r;
	report_build(&r, a, s, GROUP_STACK, by, leaks);
	size_t kept = 0;
	for (size_t i = 0; i < r.n; i++) {
		struct row *row = &r.rows[i];
		if (row->cls != CLASS_HEAP ||
		    (leaks && sup && suppressions_match(sup, row->frames, row->nframes))) {
			free(row->key);
			free(row->frames);
			free(row->kinds);
			continue;
		}
		r.rows[kept++] = *row;
	}
	r.n = kept;
	report_regroup(&r, GROUP_LINE);
	char *buf = NULL;
	size_t len = 0, shown = 0;
	FILE *f = open_memstream(&buf, &len);
	for (size_t i = 0; i < r.n && shown < n; i++) {
		const struct row *row = &r.rows[i];
		uint64_t v = leaks ? row->leaked_bytes : row->peak_bytes;
		if (!v)
			continue;
		char b[32];
		fprintf(f, "      %-10s", fmt_size(b, v));
		if (a->sample_interval) {
			char pm[96];
			fprintf(f, " %-30s",
				leaks ? sample_pm(pm, v, row->leaked_var, row->leaked_samples)
				      : sample_pm(pm, v, row->peak_var, row->peak_samples));
		}
		if (leaks)
			fprintf(f, " in %" PRIu64 " block%s", row->leaked_blocks,
				row->leaked_blocks == 1 ? " " : "s");
		fputs("  ", f);
		if (row->nframes)
			report_row_frame_text(f, row, 0, GROUP_LINE);
		else
			fputs("(no stack recorded)", f);
		fputc('\n', f);
		shown++;
	}
	fclose(f);
	report_free(&r);
	return buf;
}

static void limit_message(char *buf, size_t size, const struct limit *l, bool bytes,
			  uint64_t interval)
{
	bool sampled = interval != 0;
	char v[32], m[32];
	int k;
	if (bytes)
		k = snprintf(buf, size, "%s (%" PRIu64 " B) %s %s (%" PRIu64 " B)",
			     fmt_size(v, l->value), l->value, l->failed ? ">" : "<=",
			     fmt_size(m, l->max), l->max);
	else
		k = snprintf(buf, size, "%" PRIu64 " %s %" PRIu64, l->value, l->failed ? ">" : "<=",
			     l->max);
	if (!sampled || k < 0 || (size_t)k >= size)
		return;
	/* The estimate is checked, not a bound of its interval: it is
	 * unbiased, so a program over the limit fails as often as not, and the
	 * interval says how sure that is. */
	double h = sample_half95(l->var);
	double lo = (double)l->value - h, hi = (double)l->value + h;
	if (lo < 0)
		lo = 0;
	/* No block sampled: no variance either, yet B bytes go unsampled with
	 * chance exp(-B / interval), over 5% up to ln(20) intervals (a run
	 * leaking 1.3 MiB read "0 B, interval 0 B to 0 B: under the limit at
	 * 95%" at 512K) */
	if (bytes && l->value == 0 && hi < (double)interval * log(20.0))
		hi = (double)interval * log(20.0);
	const char *verdict = l->failed ? (lo > (double)l->max ? "over the limit at 95%"
							       : "the limit is inside the interval: may be under it")
					: (hi <= (double)l->max ? "under the limit at 95%"
								: "the limit is inside the interval: may be over it");
	if (bytes)
		snprintf(buf + k, size - (size_t)k, "; estimate, 95%% interval %s to %s: %s",
			 fmt_size(v, sample_clamp(lo)), fmt_size(m, sample_clamp(hi)),
			 verdict);
	else
		snprintf(buf + k, size - (size_t)k, "; estimate, 95%% interval %.0f to %.0f: %s", lo, hi,
			 verdict);
}

/* The limits on a trace's replayed figures (check_one's, and a follower's
 * window: follow.c); prints the report; 0 pass, 1 fail, 2 cannot judge. */
static int check_judge(const char *path, struct check_opts *o, struct suppressions *sup,
		       FILE *junit, struct trace *t, struct analysis *a, bool stopped,
		       const char *stop)
{
	char note[160];
	if (a->sample_interval && !o->allow_sampled) {
		/* a limit is exact; a sampled figure may be over or under it */
		err_print("check: %s is %s; its figures cannot be held to exact limits (--allow-sampled checks the estimates against them)",
			  path, sample_note(a->sample_interval, note, sizeof(note)));
		return 2;
	}
	/* Not one event and no clean exit: nothing of the run was recorded (a
	 * shim that could not write, a process killed at its start) */
	bool empty = !a->events && !a->clean_exit && !a->exited;
	if (empty && !o->allow_incomplete) {
		err_print("check: %s holds no events and no clean exit: nothing of the run was recorded, so no limit can be judged (--allow-incomplete checks it anyway)",
			  path);
		junit_refused(junit, o, path, "the trace holds no events and no clean exit");
		return 2;
	}
	struct symbolizer *s = symbolizer_new(a);
	struct limit *limits[] = {&o->peak, &o->leaked, &o->allocs};
	/* leaked: every eligible heap row, minus what the suppressions take */
	uint64_t leaked = 0, heap_allocs = 0;
	double leaked_var = 0;
	for (int k = 0; k < HW_KIND_COUNT; k++)
		if (kind_class(k) == CLASS_HEAP)
			heap_allocs += a->kinds[k].allocs;
	struct report r;
	report_build(&r, a, s, GROUP_STACK, BY_LEAKED, true);
	for (size_t i = 0; i < r.n; i++) {
		const struct row *row = &r.rows[i];
		if (row->cls != CLASS_HEAP)
			continue;
		struct suppression *rule = sup ? suppressions_match(sup, row->frames, row->nframes) : NULL;
		if (rule) {
			rule->blocks += row->leaked_blocks;
			rule->bytes += row->leaked_bytes;
		} else {
			leaked += row->leaked_bytes;
			leaked_var += row->leaked_var;
		}
	}
	report_free(&r);
	struct spread_fig hs;
	sample_heap_spread(a, &hs);
	o->peak.var = hs.peak_var;
	o->leaked.var = leaked_var;
	o->allocs.var = hs.count_var;
	o->peak.value = a->peaks[CLASS_HEAP].peak;
	o->leaked.value = leaked;
	o->allocs.value = heap_allocs;
	char where[300];
	report_leak_point(a, where, sizeof(where));

	fputs("heapwise check: ", stdout);
	text_str(stdout, path);
	putchar('\n');
	if (a->sample_interval)
		printf("  note: the trace is %s (--allow-sampled)\n",
		       sample_note(a->sample_interval, note, sizeof(note)));
	if (stopped)
		printf("  note: %s (--allow-incomplete)\n", stop);
	if (empty)
		printf("  note: the trace holds no events and no clean exit (--allow-incomplete)\n");
	int failed = 0, checked = 0;
	for (size_t i = 0; i < 3; i++) {
		struct limit *l = limits[i];
		free(l->detail);
		l->detail = NULL;
		if (!l->set)
			continue;
		checked++;
		l->failed = l->value > l->max;
		failed += l->failed;
		char msg[320];
		limit_message(msg, sizeof(msg), l, l != &o->allocs, a->sample_interval);
		printf("  %s  %-16s %s", l->failed ? "FAIL" : "PASS", l->name, msg);
		if (l == &o->leaked)
			printf(" (heap live at %s)", where);
		putchar('\n');
		if (l->failed && l != &o->allocs) {
			bool leaks = l == &o->leaked;
			l->detail = offenders(a, s, leaks ? BY_LEAKED : BY_PEAK, sup, o->n, leaks);
			printf("    top %s lines:\n%s", leaks ? "leaking" : "peak", l->detail);
		}
		if (junit) {
			fprintf(junit, "  <testcase classname=\"heapwise.check\" name=\"");
			xml_text(junit, l->name);
			fputs(" (", junit);
			xml_text(junit, path);
			fputs(")\">\n", junit);
			if (l->failed) {
				fputs("    <failure message=\"", junit);
				xml_text(junit, msg);
				fputs("\">", junit);
				xml_text(junit, l->detail ? l->detail : msg);
				fputs("</failure>\n", junit);
			}
			fputs("  </testcase>\n", junit);
		}
	}
	for (size_t i = 0; sup && i < sup->n; i++) {
		char b[32];
		printf("  suppression line %u leak:%s", sup->rules[i].line,
		       sup->rules[i].anchor_start ? "^" : "");
		text_str(stdout, sup->rules[i].pattern);
		printf("%s matched %" PRIu64 " block%s (%s)\n", sup->rules[i].anchor_end ? "$" : "",
		       sup->rules[i].blocks, sup->rules[i].blocks == 1 ? "" : "s",
		       fmt_size(b, sup->rules[i].bytes));
		sup->rules[i].blocks = sup->rules[i].bytes = 0;
	}
	if (t->damaged)
		printf("  note: the trace is damaged or cut; figures cover what could be read\n");
	char pymiss[400];
	if (report_python_missing(a, pymiss, sizeof(pymiss))) { /* checked natively */
		fputs("  note: Python not traced: ", stdout);
		text_str(stdout, pymiss);
		puts("; the limits were checked without them");
	}
	printf("result: %s (%d of %d limit%s exceeded)\n", failed ? "FAIL" : "PASS", failed, checked,
	       checked == 1 ? "" : "s");
	symbolizer_print_hints(s); /* of the offenders' frames shown */
	symbolizer_free(s);
	return failed ? 1 : 0;
}

int check_window(struct trace *t, struct analysis *a, bool peak, uint64_t max_peak, bool leaked,
		 uint64_t max_leaked)
{
	struct check_opts o = {
		.peak = {.name = "max-peak", .set = peak, .max = max_peak},
		.leaked = {.name = "max-leaked", .set = leaked, .max = max_leaked},
		.allocs = {.name = "max-allocations"},
		.n = OFFENDERS,
	};
	int rc = check_judge(t->path, &o, NULL, NULL, t, a, false, NULL);
	free(o.peak.detail);
	free(o.leaked.detail);
	return rc;
}

/* Checks one trace; returns 0 pass, 1 fail, 2 error. Appends JUnit cases. */
static int check_one(const char *path, struct check_opts *o, struct suppressions *sup, FILE *junit)
{
	struct trace t;
	struct analysis a;
	if (trace_open(path, &t) != HW_OK) {
		trace_close(&t);
		return 2;
	}
	/* Recording stopped early: the figures end where it stopped, and a
	 * limit the program passed afterwards would pass here. Refused before
	 * the replay (a marker after the stop is not there either). */
	char stop[400];
	bool stopped = trace_stop_note(&t, stop, sizeof(stop)) != NULL;
	if (stopped && !o->allow_incomplete) {
		err_print("check: %s: %s; a limit cannot be judged on part of the run (--allow-incomplete checks these figures)",
			  path, stop);
		junit_refused(junit, o, path, stop);
		trace_close(&t);
		return 2;
	}
	if (analysis_run(&a, &t, &o->an) != HW_OK) {
		analysis_free(&a);
		trace_close(&t);
		return 2;
	}
	int rc = check_judge(path, o, sup, junit, &t, &a, stopped, stop);
	analysis_free(&a);
	trace_close(&t);
	return rc;
}


int cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{"max-peak", required_argument, NULL, 'p'},
		{"max-leaked", required_argument, NULL, 'l'},
		{"max-allocations", required_argument, NULL, 'a'},
		{"suppressions", required_argument, NULL, 's'},
		{"junit", required_argument, NULL, 'j'},
		{"between", required_argument, NULL, 'b'},
		{"include-all", no_argument, NULL, 'i'},
		{"sysroot", required_argument, NULL, 'S'},
		{"blame", required_argument, NULL, 'L'},
		{"allow-sampled", no_argument, NULL, 'A'},
		{"allow-incomplete", no_argument, NULL, 'I'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0},
	};
	struct check_opts o = {
		.peak = {.name = "max-peak"},
		.leaked = {.name = "max-leaked"},
		.allocs = {.name = "max-allocations"},
		.n = OFFENDERS,
	};
	int c;
	optind = 1;
	while ((c = err_getopt("check", argc, argv, "n:h", opts)) != -1) {
		switch (c) {
		case 'S':
			symbolizer_set_sysroot(optarg);
			break;
		case 'p':
		case 'l':
			if (!parse_size(optarg, c == 'p' ? &o.peak.max : &o.leaked.max)) {
				err_print("check: --%s %s: expected a size such as 512K, 10MB or 1.5G",
					  c == 'p' ? "max-peak" : "max-leaked", optarg);
				return 2;
			}
			(c == 'p' ? &o.peak : &o.leaked)->set = true;
			break;
		case 'a': {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(optarg, &end, 10);
			if (errno || *end || end == optarg || *optarg == '-') {
				err_print("check: --max-allocations %s: expected a count", optarg);
				return 2;
			}
			o.allocs.max = v;
			o.allocs.set = true;
			break;
		}
		case 's':
			o.suppressions = optarg;
			break;
		case 'j':
			o.junit = optarg;
			break;
		case 'b':
			if (optind >= argc) {
				err_print("check: --between needs two marker labels");
				return 2;
			}
			o.an.from_mark = optarg;
			o.an.to_mark = argv[optind++];
			break;
		case 'i':
			o.an.include_all = true;
			break;
		case 'L': {
			enum blame b;
			if (!parse_blame_option("check", optarg, &b))
				return 2;
			report_set_blame(b);
			break;
		}
		case 'A':
			o.allow_sampled = true;
			break;
		case 'I':
			o.allow_incomplete = true;
			break;
		case 'n':
			if (!parse_count_option("check", optarg, 1000, &o.n))
				return 2;
			break;
		case 'h':
			fputs(check_usage, stdout);
			return 0;
		default:
			fputs(check_usage, stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		err_print("check: no trace given");
		fputs(check_usage, stderr);
		return 2;
	}
	if (!o.peak.set && !o.leaked.set && !o.allocs.set) {
		err_print("check: no limit given (--max-peak, --max-leaked or --max-allocations)");
		return 2;
	}
	struct suppressions sup, *psup = NULL;
	if (o.suppressions) {
		if (suppressions_load(&sup, o.suppressions) != HW_OK)
			return 2;
		psup = &sup;
	}
	FILE *junit = NULL;
	char *jbuf = NULL;
	size_t jlen = 0;
	if (o.junit)
		junit = open_memstream(&jbuf, &jlen);
	int worst = 0, cases = 0, failures = 0;
	for (int i = optind; i < argc; i++) {
		int rc = check_one(argv[i], &o, psup, junit);
		if (rc > worst)
			worst = rc;
		cases += o.peak.set + o.leaked.set + o.allocs.set;
		failures += (o.peak.set && o.peak.failed) + (o.leaked.set && o.leaked.failed) +
			    (o.allocs.set && o.allocs.failed);
		if (rc == 2)
			break;
	}
	if (junit) {
		fclose(junit);
		FILE *f = fopen(o.junit, "w");
		if (!f) {
			err_print("check: cannot write %s: %s", o.junit, strerror(errno));
			worst = 2;
		} else {
			fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
				   "<testsuites>\n<testsuite name=\"heapwise check\" tests=\"%d\" failures=\"%d\" errors=\"%d\">\n",
				cases, failures, o.junit_errors ? o.junit_errors : worst == 2);
			fwrite(jbuf, 1, jlen, f);
			fputs("</testsuite>\n</testsuites>\n", f);
			if (fclose(f)) {
				err_print("check: cannot write %s", o.junit);
				worst = 2;
			}
		}
		free(jbuf);
	}
	free(o.peak.detail);
	free(o.leaked.detail);
	if (psup)
		suppressions_free(psup);
	return worst;
}
