/* heapwise CLI entry (analyzer, front): dispatches subcommands and parses the
 * options of the report commands. Exit codes: 0 success, 1 a gate failed,
 * 2 usage error or unreadable input. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "analysis.h"
#include "commands.h"
#include "err.h"
#include "escape.h"
#include "report.h"
#include "sampled.h"
#include "report_flame.h"
#include "report_lines.h"
#include "report_pprof.h"
#include "report_timeline.h"
#include "symbolize.h"
#include "tree.h"
#include "util.h"

/* Each command's synopsis: every option it takes (the report commands'
 * shared ones as [REPORT OPTIONS]); `heapwise --help` lists them all, and
 * `heapwise CMD --help` of a report command prints its own. run, check,
 * diff, compress and dump print a longer usage of their own for --help. */
static const struct {
	const char *name, *synopsis;
} synopses[] = {
	{"run", "run [-o PATH] [--native|--no-native] [--no-follow] [--no-compress]\n"
		"      [--sample SIZE] -- CMD [ARG...]\n"},
	{"summary", "summary TRACE... [--json] [REPORT OPTIONS]\n"},
	{"top", "top TRACE... [--by peak|leaked|allocated|count|temporary]\n"
		"      [--group-by stack|line|function|file] [-n N] [--json] [REPORT OPTIONS]\n"},
	{"leaks", "leaks TRACE... [--group-by stack|line|function|file] [-n N] [--json]\n"
		  "      [REPORT OPTIONS]\n"},
	{"check", "check TRACE... [--max-peak SIZE] [--max-leaked SIZE] [--max-allocations N]\n"
		  "      [--suppressions FILE] [--junit FILE] [--between MARK_A MARK_B]\n"
		  "      [--include-all] [--allow-sampled] [--allow-incomplete]\n"
		  "      [--sysroot DIR] [--blame user|innermost] [-n N]\n"},
	{"flamegraph", "flamegraph TRACE... [--metric peak|leaked|allocated]\n"
		       "      -o OUT.html|OUT.svg|OUT.folded [REPORT OPTIONS]\n"},
	{"timeline", "timeline TRACE [-n N] [--group-by stack|line|function|file]\n"
		     "      -o OUT.html|OUT.json|OUT.csv|OUT.svg [REPORT OPTIONS]\n"},
	{"lines", "lines TRACE [FILE...] [--all] [--json] [-o OUT.html|OUT.json|OUT.txt]\n"
		  "      [REPORT OPTIONS]\n"},
	{"export", "export TRACE... --format json|folded|pprof -o OUT\n"
		   "      [--metric peak|leaked|allocated] [REPORT OPTIONS]\n"},
	{"diff", "diff BASE NEW [--json] [--max-peak-growth PCT]\n"
		 "      [--group-by stack|line|function|file] [--sysroot DIR]\n"
		 "      [--blame user|innermost] [-n N]\n"},
	{"dump", "dump TRACE [--sysroot DIR]\n"},
	{"compress", "compress [--level N] TRACE...\n"},
	{"follow", "follow TRACE  (judges --between windows of a live trace, requests on\n"
		   "      stdin: the pytest plugin's; heapwise follow --help)\n"},
};

static const char usage_head[] = "usage: heapwise COMMAND [ARGS]  (heapwise COMMAND --help: "
				 "one command's)\n";
static const char usage_traces[] =
	"TRACE...: several traces of one process tree give each process and the tree\n"
	"  combined\n";
static const char report_options[] =
	"REPORT OPTIONS: --between MARK_A MARK_B (only what was allocated between two\n"
	"  hw_mark() markers), --include-all (Python: every callsite counts as a leak),\n"
	"  --sysroot DIR (the program ran in the chroot or container root DIR: name\n"
	"  native frames from its files),\n"
	"  --blame user|innermost (the Python line a row is charged to: the innermost\n"
	"  in your code, outside the standard library and site-packages (default), or\n"
	"  the innermost of all, as tracemalloc)\n";
static const char usage_exit[] =
	"exit status: 0 success, 1 a gate failed, 2 usage error or unreadable input,\n"
	"  3 compress: a trace is still open in another process (left as it is)\n";

static void print_usage(FILE *f)
{
	fputs(usage_head, f);
	for (size_t i = 0; i < sizeof(synopses) / sizeof(*synopses); i++) {
		fputs("  ", f);
		fputs(synopses[i].synopsis, f);
	}
	fputs(usage_traces, f);
	fputs(report_options, f);
	fputs(usage_exit, f);
}

/* A report command's usage: its synopsis and the report options. */
static void print_command_usage(FILE *f, const char *cmd)
{
	for (size_t i = 0; i < sizeof(synopses) / sizeof(*synopses); i++)
		if (!strcmp(synopses[i].name, cmd)) {
			fputs("usage: heapwise ", f);
			fputs(synopses[i].synopsis, f);
		}
	fputs(usage_traces, f);
	fputs(report_options, f);
}

struct report_opts {
	struct analysis_opts an;
	const char *trace; /* the first */
	char **traces;
	size_t ntraces;
	const char *output, *format;
	enum flame_metric metric;
	bool json;
	enum sort_by by;
	enum group_by group;
	size_t n;
};

/* The options a report command takes beside the REPORT OPTIONS: --by,
 * --group-by, --json, -n, -o, --format, --metric */
enum {
	ALLOW_BY = 1,
	ALLOW_GROUP = 2,
	ALLOW_JSON = 4,
	ALLOW_N = 8,
	ALLOW_OUTPUT = 16,
	ALLOW_FORMAT = 32,
	ALLOW_METRIC = 64,
};

/* Whether cmd takes the option c (its letter in parse_report_opts); says
 * not when it does not. */
static bool allowed(const char *cmd, int c, int allow)
{
	static const struct {
		int c, bit;
		const char *name;
	} own[] = {{'o', ALLOW_OUTPUT, "-o"},	    {'F', ALLOW_FORMAT, "--format"},
		   {'M', ALLOW_METRIC, "--metric"}, {'j', ALLOW_JSON, "--json"},
		   {'n', ALLOW_N, "-n"}};
	for (size_t i = 0; i < sizeof(own) / sizeof(*own); i++)
		if (own[i].c == c && !(allow & own[i].bit)) {
			err_print("%s: %s is not an option of %s", cmd, own[i].name, cmd);
			return false;
		}
	return true;
}

static int parse_report_opts(const char *cmd, int argc, char **argv, struct report_opts *o,
			     int allow)
{
	static const struct option opts[] = {
		{"json", no_argument, NULL, 'j'},
		{"by", required_argument, NULL, 'b'},
		{"group-by", required_argument, NULL, 'g'},
		{"between", required_argument, NULL, 'B'},
		{"output", required_argument, NULL, 'o'},
		{"format", required_argument, NULL, 'F'},
		{"metric", required_argument, NULL, 'M'},
		{"include-all", no_argument, NULL, 'I'},
		{"sysroot", required_argument, NULL, 'S'},
		{"blame", required_argument, NULL, 'L'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0},
	};
	int c;
	optind = 1;
	while ((c = err_getopt(cmd, argc, argv, "n:o:h", opts)) != -1) {
		if (!allowed(cmd, c, allow))
			goto bad;
		switch (c) {
		case 'o':
			o->output = optarg;
			break;
		case 'F':
			o->format = optarg;
			break;
		case 'M':
			if (!strcmp(optarg, "peak"))
				o->metric = METRIC_PEAK;
			else if (!strcmp(optarg, "leaked"))
				o->metric = METRIC_LEAKED;
			else if (!strcmp(optarg, "allocated"))
				o->metric = METRIC_ALLOCATED;
			else {
				err_print("%s: --metric %s: expected peak, leaked or allocated", cmd, optarg);
				return 2;
			}
			break;
		case 'j':
			o->json = true;
			break;
		case 'b':
			if (!(allow & ALLOW_BY)) {
				err_print("%s: --by is an option of top only", cmd);
				goto bad;
			}
			if (!strcmp(optarg, "peak"))
				o->by = BY_PEAK;
			else if (!strcmp(optarg, "leaked"))
				o->by = BY_LEAKED;
			else if (!strcmp(optarg, "allocated"))
				o->by = BY_ALLOCATED;
			else if (!strcmp(optarg, "count"))
				o->by = BY_COUNT;
			else if (!strcmp(optarg, "temporary"))
				o->by = BY_TEMPORARY;
			else {
				err_print("%s: --by %s: expected peak, leaked, allocated, count or temporary",
					  cmd, optarg);
				return 2;
			}
			break;
		case 'g':
			if (!(allow & ALLOW_GROUP)) {
				err_print("%s: --group-by is an option of top, leaks, timeline and diff only", cmd);
				goto bad;
			}
			if (!parse_group_option(cmd, optarg, &o->group))
				return 2;
			break;
		case 'n':
			if (!parse_count_option(cmd, optarg, 1000000, &o->n))
				return 2;
			break;
		case 'B':
			if (optind >= argc) {
				err_print("%s: --between needs two marker labels", cmd);
				return 2;
			}
			o->an.from_mark = optarg;
			o->an.to_mark = argv[optind++];
			break;
		case 'I':
			o->an.include_all = true;
			break;
		case 'S':
			symbolizer_set_sysroot(optarg);
			break;
		case 'L': {
			enum blame b;
			if (!parse_blame_option(cmd, optarg, &b))
				return 2;
			report_set_blame(b);
			break;
		}
		case 'h':
			print_command_usage(stdout, cmd);
			exit(0);
		default:
			goto bad;
		}
	}
	if (optind >= argc) {
		err_print("%s: no trace given", cmd);
		goto bad;
	}
	o->trace = argv[optind];
	o->traces = &argv[optind];
	o->ntraces = (size_t)(argc - optind);
	return 0;
bad:
	print_command_usage(stderr, cmd);
	return 2;
}

static void print_hints(const struct tree *tr)
{
	for (size_t i = 0; i < tr->n; i++)
		symbolizer_print_hints(tr->p[i].s);
}

/* Loads the traces and splits them into process trees (tree_split). Traces
 * that are not one tree are reported tree by tree, with a warning; with
 * one_tree (a single output file: flame graph, export) they are refused.
 * Returns 0, or 2 after printing why. */
static int load_trees(const char *cmd, struct report_opts *o, struct tree *tr, size_t **counts,
		      size_t *ntrees, bool one_tree)
{
	if (tree_load(tr, o->traces, o->ntraces, &o->an))
		return 2;
	*counts = xcalloc(tr->n + 1, sizeof(**counts));
	*ntrees = tree_split(tr, *counts);
	if (*ntrees <= 1)
		return 0;
	char *what = tree_describe(tr, *counts, *ntrees);
	if (one_tree) {
		err_print("%s: the %zu traces are %zu process trees, not one: %s; give one tree's traces at a time",
			  cmd, tr->n, *ntrees, what);
		free(what);
		free(*counts);
		tree_free(tr);
		return 2;
	}
	warn_print("the %zu traces are %zu process trees, not one (no process of one is the parent of another's): %s; each tree is reported on its own",
		   tr->n, *ntrees, what);
	free(what);
	return 0;
}

/* The processes of tree t of tr (tree_split put them together): a view that
 * owns nothing. */
static struct tree tree_view(const struct tree *tr, const size_t *counts, size_t t)
{
	size_t at = 0;
	for (size_t i = 0; i < t; i++)
		at += counts[i];
	return (struct tree){tr->p + at, counts[t]};
}

/* The heading of tree t of n in text reports. */
static void tree_heading(const struct tree *v, size_t t, size_t n)
{
	char name[600];
	tree_proc_name(&v->p[0], name, sizeof(name));
	printf("%sprocess tree %zu of %zu: %s%s\n\n", t ? "\n" : "", t + 1, n, name,
	       v->n > 1 ? " and its children" : "");
}

static void summary_of(const struct tree *tr, const struct report_opts *o)
{
	bool json = o->json;
	if (tr->n == 1 && json) {
		report_summary_json(stdout, &tr->p[0].a, tr->p[0].s);
	} else if (tr->n == 1) {
		report_summary_text(stdout, &tr->p[0].a, tr->p[0].s);
	} else if (json) {
		fputs("{\"version\":1,\"combined\":", stdout);
		tree_summary_json(stdout, tr);
		fputs(",\"processes\":[", stdout);
		for (size_t i = 0; i < tr->n; i++) {
			if (i)
				fputc(',', stdout);
			report_summary_json(stdout, &tr->p[i].a, tr->p[i].s);
		}
		fputs("]}\n", stdout);
	} else {
		tree_summary_text(stdout, tr);
		for (size_t i = 0; i < tr->n; i++) {
			fputc('\n', stdout);
			report_summary_text(stdout, &tr->p[i].a, tr->p[i].s);
		}
	}
}

/* Loads the traces of o and reports each process tree with report(): text
 * trees under a heading, several JSON trees in one object. Returns the
 * command's exit code. */
static int each_tree(const char *cmd, struct report_opts *o,
		     void (*report)(const struct tree *, const struct report_opts *))
{
	struct tree tr;
	size_t *counts, ntrees;
	if (load_trees(cmd, o, &tr, &counts, &ntrees, false))
		return 2;
	if (ntrees > 1 && o->json)
		fputs("{\"version\":1,\"trees\":[", stdout);
	for (size_t t = 0; t < ntrees; t++) {
		struct tree v = tree_view(&tr, counts, t);
		if (ntrees > 1 && o->json && t)
			fputc(',', stdout);
		else if (ntrees > 1 && !o->json)
			tree_heading(&v, t, ntrees);
		report(&v, o);
	}
	if (ntrees > 1 && o->json)
		fputs("]}\n", stdout);
	if (!o->json)
		print_hints(&tr);
	free(counts);
	tree_free(&tr);
	return 0;
}

int cmd_summary(int argc, char **argv)
{
	struct report_opts o = {0};
	int rc = parse_report_opts("summary", argc, argv, &o, ALLOW_JSON);
	return rc ? rc : each_tree("summary", &o, summary_of);
}

/* top or leaks of one process tree. */
static void rows_of(const struct tree *tr, const struct report_opts *o, bool leaks,
		    const char *title)
{
	struct report r;
	if (tr->n > 1) { /* the tree combined first */
		tree_report(&r, tr, o->group, o->by, leaks, o->n);
		if (o->json) {
			fprintf(stdout, "{\"version\":1,\"sort_by\":\"%s\",\"group_by\":\"%s\","
					"\"combined\":{\"processes\":%zu",
				sort_name(o->by), group_name(o->group), tr->n);
			sample_json(stdout, tree_sample_interval(tr));
			fputs(",\"callsites\":", stdout);
			report_callsites_json(stdout, &r, o->n);
			fputs("},\"processes\":[", stdout);
		} else {
			fprintf(stdout, "%s: %zu processes combined, by %s, grouped by %s\n"
					"PEAK = live at each process's own peak, added; LEAKED = live at each one's leak point\n\n",
				title, tr->n, sort_name(o->by), group_name(o->group));
			char note[160];
			if (tree_sample_interval(tr))
				fprintf(stdout, "%s\n\n",
					sample_note(tree_sample_interval(tr), note, sizeof(note)));
			report_rows_text(stdout, &r, o->n);
		}
		report_free(&r);
	}
	for (size_t i = 0; i < tr->n; i++) {
		struct proc *p = &tr->p[i];
		report_build_shown(&r, &p->a, p->s, o->group, o->by, leaks, o->n, !o->json);
		if (o->json) {
			if (tr->n > 1 && i)
				fputc(',', stdout);
			report_rows_json(stdout, &p->a, &r, o->n);
		} else {
			if (tr->n > 1)
				fputc('\n', stdout);
			report_top_text(stdout, &p->a, &r, o->n, title);
		}
		report_free(&r);
	}
	if (o->json && tr->n > 1)
		fputs("]}\n", stdout);
}

static void top_of(const struct tree *tr, const struct report_opts *o)
{
	rows_of(tr, o, false, "top callsites");
}

static void leaks_of(const struct tree *tr, const struct report_opts *o)
{
	rows_of(tr, o, true, "leaks");
}

static int rows_command(int argc, char **argv, bool leaks)
{
	struct report_opts o = {.by = leaks ? BY_LEAKED : BY_PEAK, .n = 10};
	const char *cmd = leaks ? "leaks" : "top";
	int rc = parse_report_opts(cmd, argc, argv, &o, 
				   ALLOW_GROUP | ALLOW_JSON | ALLOW_N | (leaks ? 0 : ALLOW_BY));
	return rc ? rc : each_tree(cmd, &o, leaks ? leaks_of : top_of);
}

/* The flame graph of every process (a frame per process when several). */
static bool flame_tree(FILE *f, const struct tree *tr, enum flame_metric metric,
		       enum flame_format fmt, const char *title)
{
	struct flame_proc *fp = xcalloc(tr->n + 1, sizeof(*fp));
	char (*names)[600] = xcalloc(tr->n + 1, sizeof(*names));
	for (size_t i = 0; i < tr->n; i++) {
		tree_proc_name(&tr->p[i], names[i], sizeof(names[i]));
		fp[i] = (struct flame_proc){&tr->p[i].a, tr->p[i].s, names[i]};
	}
	bool ok = report_flame_procs(f, fp, tr->n, metric, fmt, title);
	free(names);
	free(fp);
	return ok;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && !strcmp(s + n - k, suffix);
}

/* Opens -o for writing: "-" is stdout. */
static FILE *open_output(const char *cmd, const char *path)
{
	if (!strcmp(path, "-"))
		return stdout;
	FILE *f = fopen(path, "w");
	if (!f)
		err_print("%s: cannot write %s: %s", cmd, path, strerror(errno));
	return f;
}

static int close_output(const char *cmd, const char *path, FILE *f, bool ok)
{
	if (f == stdout)
		return fflush(f) || !ok ? 2 : 0;
	if (fclose(f) || !ok) {
		err_print("%s: writing %s failed", cmd, path);
		return 2;
	}
	return 0;
}

int cmd_flamegraph(int argc, char **argv)
{
	struct report_opts o = {.metric = METRIC_PEAK};
	int rc = parse_report_opts("flamegraph", argc, argv, &o, ALLOW_OUTPUT | ALLOW_METRIC);
	if (rc)
		return rc;
	enum flame_format fmt;
	if (!o.output) {
		err_print("flamegraph: -o OUT.html|OUT.svg|OUT.folded is required");
		return 2;
	}
	if (ends_with(o.output, ".html"))
		fmt = FLAME_HTML;
	else if (ends_with(o.output, ".svg"))
		fmt = FLAME_SVG;
	else if (ends_with(o.output, ".folded") || !strcmp(o.output, "-"))
		fmt = FLAME_FOLDED;
	else {
		err_print("flamegraph: %s: the name must end in .html, .svg or .folded", o.output);
		return 2;
	}
	struct tree tr;
	size_t *counts, ntrees;
	if (load_trees("flamegraph", &o, &tr, &counts, &ntrees, true))
		return 2;
	free(counts);
	char title[1200], cmd[1024];
	const struct trace *t0 = &tr.p[0].t;
	text_escape(cmd, sizeof(cmd), t0->cmdline[0] ? t0->cmdline : o.trace);
	if (tr.n > 1)
		snprintf(title, sizeof(title), "heapwise %s flame graph: %zu processes, %s and children",
			 flame_metric_name(o.metric), tr.n, cmd);
	else
		snprintf(title, sizeof(title), "heapwise %s flame graph: %s",
			 flame_metric_name(o.metric), cmd);
	char note[160];
	if (tree_sample_interval(&tr)) {
		size_t len = strlen(title);
		snprintf(title + len, sizeof(title) - len, " (%s)",
			 sample_note(tree_sample_interval(&tr), note, sizeof(note)));
		sample_warn(o.output, tree_sample_interval(&tr));
	}
	FILE *f = open_output("flamegraph", o.output);
	rc = f ? close_output("flamegraph", o.output, f, flame_tree(f, &tr, o.metric, fmt, title)) : 2;
	print_hints(&tr);
	tree_free(&tr);
	return rc;
}

int cmd_timeline(int argc, char **argv)
{
	struct report_opts o = {.n = 8};
	int rc = parse_report_opts("timeline", argc, argv, &o,
				   ALLOW_GROUP | ALLOW_N | ALLOW_OUTPUT);
	if (rc)
		return rc;
	if (o.ntraces > 1) {
		err_print("timeline: one trace at a time (a process's own timeline); summary, top, leaks, flamegraph and export combine several");
		return 2;
	}
	enum timeline_format fmt;
	if (!o.output) {
		err_print("timeline: -o OUT.html|OUT.json|OUT.csv|OUT.svg is required");
		return 2;
	}
	if (ends_with(o.output, ".json") || !strcmp(o.output, "-"))
		fmt = TIMELINE_JSON;
	else if (ends_with(o.output, ".csv"))
		fmt = TIMELINE_CSV;
	else if (ends_with(o.output, ".svg"))
		fmt = TIMELINE_SVG;
	else if (ends_with(o.output, ".html"))
		fmt = TIMELINE_HTML;
	else {
		err_print("timeline: %s: the name must end in .html, .json, .csv or .svg", o.output);
		return 2;
	}
	struct trace t;
	if (trace_open(o.trace, &t) != HW_OK) {
		trace_close(&t);
		return 2;
	}
	char title[1200], cmd[1024];
	text_escape(cmd, sizeof(cmd), t.cmdline[0] ? t.cmdline : o.trace);
	snprintf(title, sizeof(title), "heapwise timeline: %s", cmd);
	FILE *f = open_output("timeline", o.output);
	if (!f) {
		trace_close(&t);
		return 2;
	}
	enum hw_err e = report_timeline(f, &t, &o.an, o.n, o.group, fmt, title);
	rc = close_output("timeline", o.output, f, e == HW_OK);
	trace_close(&t);
	return e == HW_OK ? rc : 2;
}

/* heapwise lines TRACE [FILE...]: the source with figures per line. */
int cmd_lines(int argc, char **argv)
{
	/* --all is this command's own; the rest are the report options */
	char **args = xmalloc(((size_t)argc + 1) * sizeof(*args));
	int nargs = 0;
	bool all = false;
	for (int i = 0; i < argc; i++) {
		if (i && !strcmp(argv[i], "--all"))
			all = true;
		else
			args[nargs++] = argv[i];
	}
	args[nargs] = NULL;
	struct report_opts o = {0};
	int rc = parse_report_opts("lines", nargs, args, &o, ALLOW_JSON | ALLOW_OUTPUT);
	if (rc) {
		free(args);
		return rc;
	}
	enum lines_format fmt = o.json ? LINES_JSON : LINES_TEXT;
	if (o.output && ends_with(o.output, ".html"))
		fmt = LINES_HTML;
	else if (o.output && ends_with(o.output, ".json"))
		fmt = LINES_JSON;
	else if (o.output && strcmp(o.output, "-") && !ends_with(o.output, ".txt")) {
		err_print("lines: %s: the name must end in .html, .json or .txt", o.output);
		free(args);
		return 2;
	}
	struct trace t;
	if (trace_open(o.trace, &t) != HW_OK) {
		trace_close(&t);
		free(args);
		return 2;
	}
	struct analysis a;
	if (analysis_run(&a, &t, &o.an) != HW_OK) {
		analysis_free(&a);
		trace_close(&t);
		free(args);
		return 2;
	}
	char title[1200], cmd[1024];
	text_escape(cmd, sizeof(cmd), t.cmdline[0] ? t.cmdline : o.trace);
	snprintf(title, sizeof(title), "heapwise lines: %s", cmd);
	FILE *f = o.output ? open_output("lines", o.output) : stdout;
	if (f) {
		bool color = f == stdout && fmt == LINES_TEXT && isatty(fileno(stdout)) &&
			     !getenv("NO_COLOR");
		struct symbolizer *s = symbolizer_new(&a);
		int r = report_lines(f, &a, s, o.traces + 1, o.ntraces - 1, fmt, all, color, title);
		symbolizer_free(s);
		rc = o.output ? close_output("lines", o.output, f, !ferror(f)) : (fflush(f) ? 2 : 0);
		rc = r ? r : rc;
	} else {
		rc = 2;
	}
	analysis_free(&a);
	trace_close(&t);
	free(args);
	return rc;
}

int cmd_export(int argc, char **argv)
{
	struct report_opts o = {.metric = METRIC_ALLOCATED};
	int rc = parse_report_opts("export", argc, argv, &o,
				   ALLOW_FORMAT | ALLOW_OUTPUT | ALLOW_METRIC);
	if (rc)
		return rc;
	if (!o.format || !o.output) {
		err_print("export: --format json|folded|pprof and -o OUT are required");
		return 2;
	}
	bool json = !strcmp(o.format, "json"), pprof = !strcmp(o.format, "pprof");
	if (!json && !pprof && strcmp(o.format, "folded")) {
		err_print("export: --format %s: expected json, folded or pprof", o.format);
		return 2;
	}
	if (pprof && !strcmp(o.output, "-")) {
		err_print("export: pprof is binary; give -o FILE");
		return 2;
	}
	struct tree tr;
	size_t *counts, ntrees;
	if (load_trees("export", &o, &tr, &counts, &ntrees, true))
		return 2;
	free(counts);
	sample_warn(o.output, tree_sample_interval(&tr));
	if (pprof) {
		struct pprof_proc *pp = xcalloc(tr.n + 1, sizeof(*pp));
		for (size_t i = 0; i < tr.n; i++)
			pp[i] = (struct pprof_proc){&tr.p[i].a, tr.p[i].s};
		rc = report_pprof_procs(o.output, pp, tr.n) ? 0 : 2;
		if (rc)
			err_print("export: cannot write %s", o.output);
		print_hints(&tr);
		free(pp);
		tree_free(&tr);
		return rc;
	}
	FILE *f = open_output("export", o.output);
	bool ok = f != NULL;
	if (f && json) {
		/* everything: the summary and every callsite with its whole stack */
		if (tr.n > 1) {
			struct report r;
			tree_report(&r, &tr, GROUP_STACK, BY_ALLOCATED, false, 0);
			fputs("{\"version\":1,\"combined\":{\"summary\":", f);
			tree_summary_json(f, &tr);
			fputs(",\"callsites\":", f);
			report_callsites_json(f, &r, 0);
			fputs("},\"processes\":[", f);
			report_free(&r);
		}
		for (size_t i = 0; i < tr.n; i++) {
			struct report r;
			report_build(&r, &tr.p[i].a, tr.p[i].s, GROUP_STACK, BY_ALLOCATED, false);
			fprintf(f, "%s{\"version\":1,\"summary\":", i ? "," : "");
			report_summary_json(f, &tr.p[i].a, tr.p[i].s);
			fputs(",\"top\":", f);
			report_rows_json(f, &tr.p[i].a, &r, 0);
			fputs("}", f);
			report_free(&r);
		}
		fputs(tr.n > 1 ? "]}\n" : "\n", f);
	} else if (f) {
		ok = flame_tree(f, &tr, o.metric, FLAME_FOLDED, "");
	}
	rc = f ? close_output("export", o.output, f, ok) : 2;
	print_hints(&tr);
	tree_free(&tr);
	return rc;
}

int cmd_top(int argc, char **argv)
{
	return rows_command(argc, argv, false);
}

int cmd_leaks(int argc, char **argv)
{
	return rows_command(argc, argv, true);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} commands[] = {
		{"run", cmd_run},   {"summary", cmd_summary}, {"top", cmd_top},
		{"leaks", cmd_leaks}, {"dump", cmd_dump}, {"check", cmd_check}, {"follow", cmd_follow},
		{"flamegraph", cmd_flamegraph}, {"export", cmd_export}, {"diff", cmd_diff},
		{"timeline", cmd_timeline}, {"compress", cmd_compress}, {"lines", cmd_lines},
	};
	if (argc < 2) {
		print_usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		print_usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("heapwise %s\n", HW_VERSION);
		return 0;
	}
	/* A report never waits on the network: libdw asks the debuginfod
	 * servers DEBUGINFOD_URLS names for every library without local debug
	 * information, each request up to DEBUGINFOD_TIMEOUT (90 s), from the
	 * build ids a trace names. HEAPWISE_DEBUGINFOD=1 lets it. (Not for
	 * run: the traced program inherits run's environment as it is.) */
	const char *dbg = getenv("HEAPWISE_DEBUGINFOD");
	if (strcmp(argv[1], "run")) {
		if (dbg && *dbg && strcmp(dbg, "0") && strcmp(dbg, "1")) {
			char *shown = text_dup(dbg);
			warn_print("HEAPWISE_DEBUGINFOD=%s: expected 0 or 1; debuginfod servers are "
				   "not asked", shown);
			free(shown);
		}
		if (!dbg || strcmp(dbg, "1"))
			unsetenv("DEBUGINFOD_URLS");
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	err_print("unknown command '%s'", argv[1]);
	print_usage(stderr);
	return 2;
}
