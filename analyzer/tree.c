/* Several traces of one process tree (analyzer, reports stage). */
#include "tree.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "sampled.h"
#include "util.h"

int tree_load(struct tree *tr, char *const *paths, size_t n, const struct analysis_opts *opts)
{
	struct analysis_opts o = *opts;
	o.heap_ticks = n > 1;
	tr->p = xcalloc(n + 1, sizeof(*tr->p));
	tr->n = 0;
	for (size_t i = 0; i < n; i++) {
		struct proc *p = &tr->p[i];
		if (trace_open(paths[i], &p->t) != HW_OK) {
			trace_close(&p->t);
			tree_free(tr);
			return 2;
		}
		if (analysis_run(&p->a, &p->t, &o) != HW_OK) {
			analysis_free(&p->a);
			trace_close(&p->t);
			tree_free(tr);
			return 2;
		}
		if (p->t.damaged && !p->t.warned)
			warn_print("%s: trace is damaged; figures cover what could be read", paths[i]);
		p->s = symbolizer_new(&p->a);
		tr->n++;
	}
	return 0;
}

void tree_free(struct tree *tr)
{
	for (size_t i = 0; i < tr->n; i++) {
		symbolizer_free(tr->p[i].s);
		analysis_free(&tr->p[i].a);
		trace_close(&tr->p[i].t);
	}
	free(tr->p);
	memset(tr, 0, sizeof(*tr));
}

void tree_proc_name(const struct proc *p, char *buf, size_t size)
{
	const struct trace *t = &p->t;
	int n = snprintf(buf, size, "pid %" PRIu64 " (parent %" PRIu64 "): ", t->hdr.pid, t->hdr.ppid);
	if (n >= 0 && (size_t)n < size)
		text_escape(buf + n, size - (size_t)n, t->cmdline[0] ? t->cmdline : t->exe);
}

struct by_pid {
	uint64_t pid, start;
	size_t i;
};

static int cmp_by_pid(const void *x, const void *y)
{
	const struct by_pid *a = x, *b = y;
	if (a->pid != b->pid)
		return a->pid < b->pid ? -1 : 1;
	if (a->start != b->start)
		return a->start < b->start ? -1 : 1;
	return a->i < b->i ? -1 : a->i > b->i;
}

static size_t find_root(size_t *up, size_t i)
{
	while (up[i] != i) {
		up[i] = up[up[i]];
		i = up[i];
	}
	return i;
}

/* The last entry of pid `pid` that started before `start` (strictly), or
 * SIZE_MAX. */
static size_t started_before(const struct by_pid *v, size_t n, uint64_t pid, uint64_t start)
{
	size_t lo = 0, hi = n;
	while (lo < hi) { /* first entry > (pid, start - 1) */
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].pid < pid || (v[mid].pid == pid && v[mid].start < start))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && v[lo - 1].pid == pid ? lo - 1 : SIZE_MAX;
}

size_t tree_split(struct tree *tr, size_t *counts)
{
	size_t n = tr->n;
	if (n <= 1) {
		if (n)
			counts[0] = 1;
		return n;
	}
	/* the wall clock orders processes of different boots too; a child
	 * starts (writes its header) after its parent */
	struct by_pid *v = xmalloc(n * sizeof(*v));
	size_t *up = xmalloc(n * sizeof(*up)), *parent_of = xmalloc(n * sizeof(*parent_of));
	for (size_t i = 0; i < n; i++) {
		v[i] = (struct by_pid){tr->p[i].t.hdr.pid, tr->p[i].t.hdr.start_realtime_ns, i};
		up[i] = i;
	}
	qsort(v, n, sizeof(*v), cmp_by_pid);
	for (size_t i = 0; i < n; i++) {
		const struct hw_file_header *h = &tr->p[i].t.hdr;
		uint64_t start = h->start_realtime_ns;
		size_t j = started_before(v, n, h->ppid, start + 1); /* the parent, by then */
		size_t k = started_before(v, n, h->pid, start); /* an earlier image */
		if (k != SIZE_MAX && tr->p[v[k].i].t.hdr.ppid != h->ppid)
			k = SIZE_MAX;
		size_t parent = k != SIZE_MAX ? v[k].i : j != SIZE_MAX ? v[j].i : SIZE_MAX;
		parent_of[i] = parent != i ? parent : SIZE_MAX;
		if (parent_of[i] != SIZE_MAX)
			up[find_root(up, i)] = find_root(up, parent);
	}
	/* trees in the order of their first trace, processes in the order given */
	size_t *tree_of = xmalloc(n * sizeof(*tree_of)), *first = xmalloc(n * sizeof(*first));
	size_t ntrees = 0;
	for (size_t i = 0; i < n; i++)
		first[i] = SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		size_t r = find_root(up, i);
		if (first[r] == SIZE_MAX) {
			first[r] = ntrees;
			counts[ntrees++] = 0;
		}
		tree_of[i] = first[r];
		counts[tree_of[i]]++;
	}
	if (ntrees > 1) {
		/* each tree's root process first (it names the tree), then the
		 * others in the order given */
		struct proc *sorted = xmalloc(n * sizeof(*sorted));
		bool *taken = xcalloc(n, sizeof(*taken));
		size_t at = 0;
		for (size_t t = 0; t < ntrees; t++) {
			for (size_t i = 0; i < n; i++)
				if (tree_of[i] == t && parent_of[i] == SIZE_MAX && !taken[i]) {
					sorted[at++] = tr->p[i];
					taken[i] = true;
					break;
				}
			for (size_t i = 0; i < n; i++)
				if (tree_of[i] == t && !taken[i])
					sorted[at++] = tr->p[i];
		}
		free(taken);
		memcpy(tr->p, sorted, n * sizeof(*sorted));
		free(sorted);
		/* the procs moved: each analysis points at its trace, and each
		 * symbolizer at its analysis (nothing is symbolized yet) */
		for (size_t i = 0; i < n; i++) {
			tr->p[i].a.trace = &tr->p[i].t;
			symbolizer_free(tr->p[i].s);
			tr->p[i].s = symbolizer_new(&tr->p[i].a);
		}
	}
	free(tree_of);
	free(first);
	free(parent_of);
	free(up);
	free(v);
	return ntrees;
}

char *tree_describe(const struct tree *tr, const size_t *counts, size_t ntrees)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	for (size_t t = 0, at = 0; t < ntrees; at += counts[t], t++) {
		const struct proc *p = &tr->p[at];
		fprintf(f, "%spid %" PRIu64 " (%zu process%s: ", t ? "; " : "", p->t.hdr.pid, counts[t],
			counts[t] == 1 ? "" : "es");
		for (size_t i = 0; i < counts[t] && i < 3; i++) {
			fputs(i ? " " : "", f);
			text_str(f, tr->p[at + i].t.path);
		}
		fputs(counts[t] > 3 ? " ...)" : ")", f);
	}
	fclose(f);
	return buf;
}

struct tick_ref {
	uint64_t at; /* on the monotonic clock */
	uint32_t proc;
	const struct heap_tick *tick;
	const struct tick_spread *sp; /* a sampled trace's, else NULL */
};

static int cmp_tick(const void *x, const void *y)
{
	const struct tick_ref *a = x, *b = y;
	if (a->at != b->at)
		return a->at < b->at ? -1 : 1;
	return a->proc < b->proc ? -1 : a->proc > b->proc;
}

/* The combined peak: walk every process's ticks in time order, keeping each
 * process's live bytes; at a tick, its process contributes the tick's
 * highest value and the others their current one. Exact to the resolution
 * of the trace clock (events in one tick of two processes may not have
 * been at their highest together). */
static void combined_peak(const struct tree *tr, uint64_t *peak, uint64_t *at_ns,
			  struct spread_fig *spread)
{
	size_t total = 0;
	uint64_t first = UINT64_MAX;
	for (size_t i = 0; i < tr->n; i++) {
		total += tr->p[i].a.nticks;
		if (tr->p[i].t.hdr.start_monotonic_ns < first)
			first = tr->p[i].t.hdr.start_monotonic_ns;
	}
	struct tick_ref *refs = xmalloc((total + 1) * sizeof(*refs));
	size_t k = 0;
	for (size_t i = 0; i < tr->n; i++) {
		const struct proc *p = &tr->p[i];
		for (size_t j = 0; j < p->a.nticks; j++)
			refs[k++] = (struct tick_ref){p->t.hdr.start_monotonic_ns + p->a.ticks[j].time_ns,
						      (uint32_t)i, &p->a.ticks[j],
						      p->a.tick_sp ? &p->a.tick_sp[j] : NULL};
	}
	qsort(refs, k, sizeof(*refs), cmp_tick);
	uint64_t *live = xcalloc(tr->n + 1, sizeof(*live));
	uint64_t sum = 0;
	size_t best = SIZE_MAX;
	*peak = 0;
	*at_ns = 0;
	for (size_t j = 0; j < k; j++) {
		uint32_t i = refs[j].proc;
		uint64_t high = sum - live[i] + refs[j].tick->max;
		if (high > *peak) {
			*peak = high;
			*at_ns = refs[j].at - first;
			best = j;
		}
		sum = sum - live[i] + refs[j].tick->end;
		live[i] = refs[j].tick->end;
	}
	/* the peak's spread: each process's at that moment (the highest value
	 * of the peak's tick in its process, the others' at the end of their
	 * last tick before it), added; found again by a second walk so that
	 * the sums are made once, not kept up by subtraction */
	if (best != SIZE_MAX) {
		const struct tick_spread **cur = xcalloc(tr->n + 1, sizeof(*cur));
		for (size_t j = 0; j < best; j++)
			cur[refs[j].proc] = refs[j].sp;
		for (size_t i = 0; i < tr->n; i++) {
			const struct tick_spread *x = i == refs[best].proc ? refs[best].sp : cur[i];
			if (!x)
				continue;
			bool hi = i == refs[best].proc;
			spread->peak_var += hi ? x->max_var : x->end_var;
			spread->peak_n += hi ? x->max_n : x->end_n;
		}
		free(cur);
	}
	free(live);
	free(refs);
}

void tree_totals(const struct tree *tr, struct tree_totals *out)
{
	memset(out, 0, sizeof(*out));
	out->all_clean = true;
	for (size_t i = 0; i < tr->n; i++) {
		const struct analysis *a = &tr->p[i].a;
		for (int k = 0; k < HW_KIND_COUNT; k++) {
			if (kind_class(k) != CLASS_HEAP)
				continue;
			out->allocs += a->kinds[k].allocs;
			out->frees += a->kinds[k].frees;
			out->alloc_bytes += a->kinds[k].alloc_bytes;
		}
		uint64_t b, n;
		report_leaked(a, &b, &n);
		out->leaked += b;
		out->leaked_blocks += n;
		out->events += a->events;
		out->rss_peak_sum += a->rss_peak;
		struct spread_fig hs;
		sample_heap_spread(a, &hs);
		out->spread.leak_var += hs.leak_var;
		out->spread.leak_n += hs.leak_n;
		out->spread.alloc_var += hs.alloc_var;
		out->spread.alloc_n += hs.alloc_n;
		out->spread.count_var += hs.count_var;
		out->spread.free_count_var += hs.free_count_var;
		out->spread.leak_count_var += hs.leak_count_var;
		out->damaged |= tr->p[i].t.damaged;
		out->all_clean &= a->clean_exit || a->execd || a->exited;
		out->stopped += tr->p[i].t.stop.reason != 0;
	}
	combined_peak(tr, &out->peak, &out->peak_time_ns, &out->spread);
}

struct keyed {
	char *key;
	struct row row;
};

static int cmp_keyed(const void *x, const void *y)
{
	return strcmp(((const struct keyed *)x)->key, ((const struct keyed *)y)->key);
}

void tree_report(struct report *out, const struct tree *tr, enum group_by group, enum sort_by by,
		 bool only_leaks, size_t shown)
{
	/* by stack, rows are joined on a hash of what they print
	 * (report_row_hash) and only the first ones get frames: the text of
	 * every stack of every process cost O(rows x depth) */
	bool bare = group == GROUP_STACK && shown;
	size_t total = 0;
	struct report *each = xcalloc(tr->n + 1, sizeof(*each));
	for (size_t i = 0; i < tr->n; i++) {
		if (bare)
			report_build_bare(&each[i], &tr->p[i].a, tr->p[i].s, group, by);
		else /* every row: a row that leaked in one process has the
		      * allocations of the others too; filtered after the join */
			report_build(&each[i], &tr->p[i].a, tr->p[i].s, group, by, false);
		total += each[i].n;
	}
	struct keyed *all = xcalloc(total + 1, sizeof(*all));
	size_t k = 0;
	for (size_t i = 0; i < tr->n; i++) {
		struct report_keys *keys = bare ? report_keys_new(&tr->p[i].a, tr->p[i].s) : NULL;
		for (size_t j = 0; j < each[i].n; j++) {
			struct row *r = &each[i].rows[j];
			all[k].row = *r;
			all[k].key = bare ? report_row_hash_key(keys, r) : report_row_key(&all[k].row);
			k++;
		}
		report_keys_free(keys);
		free(each[i].rows); /* the rows' keys and frames moved to all */
	}
	free(each);
	qsort(all, k, sizeof(*all), cmp_keyed);
	memset(out, 0, sizeof(*out));
	out->by = by;
	out->group = group;
	out->blame = report_blame();
	out->sample_interval = tree_sample_interval(tr); /* rows carry their spread */
	out->rows = xcalloc(k + 1, sizeof(*out->rows));
	for (size_t j = 0; j < k; j++) {
		struct row *r = &all[j].row;
		if (out->n && !strcmp(all[j].key, all[j - 1].key)) {
			report_row_add(&out->rows[out->n - 1], r);
			free(r->key);
			free(r->frames);
			free(r->kinds);
		} else {
			out->rows[out->n++] = *r;
		}
	}
	for (size_t j = 0; j < k; j++)
		free(all[j].key);
	free(all);
	if (only_leaks) {
		size_t kept = 0;
		for (size_t j = 0; j < out->n; j++) {
			struct row *r = &out->rows[j];
			if (r->leaked_bytes) {
				out->rows[kept++] = *r;
				continue;
			}
			free(r->key);
			free(r->frames);
			free(r->kinds);
		}
		out->n = kept;
	}
	report_sort(out);
	if (!bare) {
		report_distinct(out);
		return;
	}
	/* frames for the rows shown: the first `shown`, and on until `shown`
	 * heap rows with bytes at the peak (the summary's lines); those rows
	 * never print the same (report_distinct_first), and when merging them
	 * moved other rows into the shown ones, these get frames too */
	for (;;) {
		size_t j = 0;
		for (size_t heap = 0; j < out->n && (j < shown || heap < shown); j++) {
			struct row *r = &out->rows[j];
			for (size_t i = 0; i < tr->n && !r->frames; i++)
				if (tr->p[i].s == r->sym) {
					report_row_frame(r, &tr->p[i].a, tr->p[i].s);
					break;
				}
			heap += r->cls == CLASS_HEAP && r->peak_bytes;
		}
		if (!report_distinct_first(out, j))
			break;
	}
}

static double secs(uint64_t ns)
{
	return (double)ns / 1e9;
}

uint64_t tree_sample_interval(const struct tree *tr)
{
	uint64_t v = 0;
	for (size_t i = 0; i < tr->n; i++)
		if (tr->p[i].a.sample_interval > v)
			v = tr->p[i].a.sample_interval;
	return v;
}

void tree_summary_text(FILE *f, const struct tree *tr)
{
	struct tree_totals t;
	tree_totals(tr, &t);
	char b1[32], name[600];
	fprintf(f, "heapwise summary of %zu processes of one tree (combined, then each)\n", tr->n);
	for (size_t i = 0; i < tr->n && i < 8; i++) {
		tree_proc_name(&tr->p[i], name, sizeof(name));
		fprintf(f, "  %-11s %s\n", i ? "" : "processes", name);
	}
	if (tr->n > 8)
		fprintf(f, "  %-11s ... %zu more (each has its section below)\n", "", tr->n - 8);
	char note[160], pm[96], pm2[100] = "";
	bool sampled = tree_sample_interval(tr) != 0;
	if (sampled)
		fprintf(f, "  estimates   %s; \u00b1: 95%% intervals\n",
			sample_note(tree_sample_interval(tr), note, sizeof(note)));
	char pmc[48] = "", pmf[48] = "";
	if (sampled) { /* counts are estimates too */
		snprintf(pmc, sizeof(pmc), " \u00b1 %" PRIu64,
			 sample_clamp(sample_half95(t.spread.count_var)));
		snprintf(pmf, sizeof(pmf), " \u00b1 %" PRIu64,
			 sample_clamp(sample_half95(t.spread.free_count_var)));
		snprintf(pm2, sizeof(pm2), " %s",
			 sample_pm(pm, t.alloc_bytes, t.spread.alloc_var, t.spread.alloc_n));
	}
	fprintf(f, "  heap        %" PRIu64 "%s allocations (%s%s), %" PRIu64 "%s frees\n", t.allocs,
		pmc, fmt_size(b1, t.alloc_bytes), pm2, t.frees, pmf);
	if (sampled)
		snprintf(pm2, sizeof(pm2), " %s",
			 sample_pm(pm, t.peak, t.spread.peak_var, t.spread.peak_n));
	fprintf(f, "  peak heap   %s%s at %.3f s after the first process started (the processes' live heap added up)\n",
		fmt_size(b1, t.peak), pm2, secs(t.peak_time_ns));
	pmc[0] = 0;
	if (sampled) {
		snprintf(pm2, sizeof(pm2), " %s",
			 sample_pm(pm, t.leaked, t.spread.leak_var, t.spread.leak_n));
		snprintf(pmc, sizeof(pmc), " \u00b1 %" PRIu64,
			 sample_clamp(sample_half95(t.spread.leak_count_var)));
	}
	fprintf(f, "  leaked      %s%s in %" PRIu64 "%s block%s (each process at its own leak point)\n",
		fmt_size(b1, t.leaked), pm2, t.leaked_blocks, pmc, t.leaked_blocks == 1 ? "" : "s");
	if (t.rss_peak_sum)
		fprintf(f, "  peak RSS    %s at most (each process's peak, added)\n",
			fmt_size(b1, t.rss_peak_sum));
	if (t.stopped)
		fprintf(f, "  note        recording of %" PRIu64 " process%s stopped early (see below): its figures end there\n",
			t.stopped, t.stopped == 1 ? "" : "es");
	else if (t.damaged || !t.all_clean)
		fprintf(f, "  note        %s\n",
			t.damaged ? "a trace is damaged or cut: figures cover what could be read"
				  : "a process did not exit cleanly (killed, crashed, exec'd or still running)");
	struct report r;
	tree_report(&r, tr, GROUP_LINE, BY_PEAK, false, 5);
	fprintf(f, "  largest lines at the processes' peaks:\n");
	report_peak_lines(f, &r, 5);
	report_free(&r);
}

void tree_summary_json(FILE *f, const struct tree *tr)
{
	struct tree_totals t;
	tree_totals(tr, &t);
	fprintf(f,
		"{\"processes\":%zu,\"allocations\":%" PRIu64 ",\"frees\":%" PRIu64
		",\"allocated_bytes\":%" PRIu64 ",\"peak_bytes\":%" PRIu64 ",\"peak_time_s\":%.6f"
		",\"leaked_bytes\":%" PRIu64 ",\"leaked_blocks\":%" PRIu64 ",\"events\":%" PRIu64
		",\"rss_peak_sum_bytes\":%" PRIu64 ",\"truncated\":%s,\"pids\":[",
		tr->n, t.allocs, t.frees, t.alloc_bytes, t.peak, secs(t.peak_time_ns), t.leaked,
		t.leaked_blocks, t.events, t.rss_peak_sum,
		t.damaged || !t.all_clean ? "true" : "false");
	for (size_t i = 0; i < tr->n; i++)
		fprintf(f, "%s%" PRIu64, i ? "," : "", tr->p[i].t.hdr.pid);
	fputc(']', f);
	if (t.stopped) { /* only when a process's recording stopped early */
		fputs(",\"recording_stopped_pids\":[", f);
		for (size_t i = 0, k = 0; i < tr->n; i++)
			if (tr->p[i].t.stop.reason)
				fprintf(f, "%s%" PRIu64, k++ ? "," : "", tr->p[i].t.hdr.pid);
		fputc(']', f);
	}
	sample_json(f, tree_sample_interval(tr));
	if (tree_sample_interval(tr)) {
		sample_spread_json(f, "peak", t.spread.peak_var, t.spread.peak_n);
		sample_spread_json(f, "leaked", t.spread.leak_var, t.spread.leak_n);
		sample_spread_json(f, "allocated", t.spread.alloc_var, t.spread.alloc_n);
		fprintf(f, ",\"allocations_stderr\":%" PRIu64 ",\"frees_stderr\":%" PRIu64
			   ",\"leaked_blocks_stderr\":%" PRIu64,
			sample_clamp(sqrt(t.spread.count_var)), sample_clamp(sqrt(t.spread.free_count_var)),
			sample_clamp(sqrt(t.spread.leak_count_var)));
	}
	fputc('}', f);
}
