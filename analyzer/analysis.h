/* The result of one pass over a trace (analyzer, aggregation stage): totals
 * per allocator kind, the peak of each memory class with the callsites' live
 * bytes at that moment, what is live at the end, and the RSS samples. */
#ifndef HW_ANALYZER_ANALYSIS_H
#define HW_ANALYZER_ANALYSIS_H

#include <stdbool.h>
#include <stdint.h>

#include "live_map.h"
#include "pycode.h"
#include "reader.h"
#include "stack_table.h"

/* Memory classes: each has its own peak. The heap is the malloc family (and
 * the Python allocator domains); mappings are counted apart so they are not
 * added to the heap twice (pymalloc's arenas are mappings). */
enum mem_class { CLASS_HEAP = 0, CLASS_MMAP = 1, CLASS_FILE = 2, CLASS_COUNT = 3 };

struct kind_totals {
	uint64_t allocs, frees, alloc_bytes, live_bytes, live_blocks;
};

struct peak {
	uint64_t live, peak, peak_seq, peak_time_ns;
	uint64_t id; /* bumps at each new high-water mark */
};

/* Per-thread state, in a small open-addressing table keyed by thread id. */
struct thread_slot {
	uint32_t tid; /* 0 = empty */
	uint8_t remap_kind; /* what the free half of the thread's mremap unmapped */
	uint64_t addr; /* the thread's last heap allocation (temporaries) */
};

struct thread_table {
	struct thread_slot *slots;
	size_t mask, n;
	struct thread_slot *hit; /* the slot returned last */
};

struct mark {
	uint64_t seq, time_ns;
	uint8_t kind; /* HW_MARK_* */
	char *label;
	uint64_t live_bytes; /* the heap's live bytes at the mark */
	uint64_t freed_bytes; /* HW_MARK_GC_END: the live bytes the collection
			       * took away (live at its GC_START minus live here) */
	/* a sampled trace: the variance (bytes squared) and samples behind
	 * live_bytes, and behind freed_bytes: every sampled block that came or
	 * went between GC_START and here (a block both made and freed there
	 * counts twice though it cancels: the interval errs wide) */
	double live_var, freed_var;
	uint64_t live_n, freed_n;
};

/* A sampled trace's spread per site (analysis_weigh_var), beside a->sites:
 * the estimated variance of the site's weighed bytes (in bytes squared,
 * summed exactly as integers so that a free takes away what its allocation
 * added) and the recorded blocks behind it that stand for more than
 * themselves ("samples"), live now (live_*), at its class's peak (snap_*,
 * kept as site.snap_bytes is), at the leak point (leak_*) and over all its
 * allocations (alloc_*). */
struct site_spread {
	unsigned __int128 live_var, snap_var, leak_var, alloc_var;
	unsigned __int128 count_var; /* of the estimated count of allocations */
	/* of the estimated count of live blocks, now and at the leak point */
	unsigned __int128 live_cvar, leak_cvar;
	uint64_t live_n, snap_n, leak_n, alloc_n;
	uint64_t seen;
};

struct analysis;

/* Called after every change of a heap callsite's live bytes: the site
 * (index into sites), the change, and the heap's live bytes after it. */
typedef void (*site_hook_fn)(void *ctx, const struct analysis *a, size_t site, int64_t delta,
			     uint64_t heap_live, uint64_t time_ns);

/* What part of the trace to analyse. */
struct analysis_opts {
	const char *from_mark, *to_mark; /* window: from the first marker with
					  * this label to the next with the other */
	bool include_all; /* Python: no leak filter */
	site_hook_fn hook; /* optional (timelines) */
	void *hook_ctx;
	bool heap_ticks; /* keep the heap's live bytes per clock tick (ticks) */
};

/* The heap's live bytes over one tick of the trace clock: the highest value
 * in it and the value at its end. Several processes' ticks, put on their
 * common monotonic clock, give the process tree's combined peak. */
struct heap_tick {
	uint64_t time_ns, max, end;
};

/* A sampled trace's tick (beside its heap_tick): the variance of the
 * estimated live heap (bytes squared) and the samples behind it, at the
 * tick's highest value and at its end. */
struct tick_spread {
	double max_var, end_var;
	uint64_t max_n, end_n;
};

/* A callsite: one stack and one allocator kind (so one memory class). The fields the replay changes
 * at every event come first and fill one cache line (the array is 64-byte
 * aligned): a free lands on the site of an old block, a random one. */
struct site {
	uint64_t live_bytes, live_blocks;
	/* seen: its class's peak id when the site first changed after that
	 * peak; snap_bytes: its live bytes just before that change, so at the
	 * peak (see site_peak_bytes) */
	uint64_t seen, snap_bytes;
	uint64_t allocs, alloc_bytes;
	uint8_t cls;
	uint8_t kind;
	/* second line */
	uint32_t raw_stack __attribute__((aligned(64)));
	uint32_t canon; /* its canonical stack (HW_NO_NODE: none), set at the end */
	bool eligible; /* counts as a leak (see analysis_run) */
	uint64_t leak_bytes, leak_blocks; /* live at the leak point */
	uint64_t temp_count, temp_bytes; /* freed before the thread allocated again */
};

/* A loaded object, as the shim saw it load (one record per load: a library
 * dlopen'ed again after a dlclose is another). */
struct module_rec {
	uint64_t bias, lo, hi;
	uint64_t load_seq; /* the sequence number of the first event after its load */
	uint8_t build_id[HW_MAX_BUILD_ID];
	size_t build_id_len;
	char *path;
	uint32_t file; /* index into files (set at the end of the replay) */
};

/* An object file: every load of one path with one build-id. Frames are
 * symbolized per file, wherever it was loaded. */
struct module_file {
	uint32_t first; /* its first load in modules[]: path, build-id, bias */
};

struct rss_sample {
	uint64_t time_ns, rss;
};

#define HW_SITE_CACHE 4096
#define HW_MAX_TICKS 65536 /* then neighbouring ticks are merged */

struct site_slot {
	uint32_t stack;
	uint8_t kind;
	uint32_t site; /* index + 1; 0 = empty */
};

struct analysis {
	struct trace *trace;
	struct stack_table st;
	struct pycode_table codes;
	/* per canonical node: its stack's innermost Python frame, and the
	 * frame --blame user blames (usercode.h), HW_NO_NODE if none */
	uint32_t *py_node, *user_node;
	uint64_t python_version; /* 0: no Python seen */
	/* a sampled trace (SAMPLE record): the mean interval in bytes, else 0;
	 * every heap figure is then an estimate (analysis_weigh) */
	uint64_t sample_interval;
	struct site_spread *spread; /* sampled traces: per site, else NULL */
	size_t spreadcap;
	bool python_frames; /* the shim could read Python frames */
	uint64_t python_flags; /* HW_PY_* (PYTHON_INFO; format 3) */
	char python_layout[65]; /* the shim's layout row, "" when unknown */
	char python_off[HW_MAX_PY_REASON + 1]; /* why frames were off, "" when unknown */
	struct module_rec *modules;
	size_t nmodules, modcap;
	struct module_file *files;
	size_t nfiles;
	/* stack nodes read since the cursor's last event, whose time is the
	 * next event's (see merge_def_fn) */
	uint32_t *pending;
	size_t npending, pendcap;
	const void *pending_cursor;
	struct site *sites;
	size_t nsites, sitecap;
	uint32_t *site_index; /* (raw stack, kind) -> site + 1 */
	size_t site_mask;
	struct site_slot site_cache[HW_SITE_CACHE];
	struct kind_totals kinds[HW_KIND_COUNT];
	struct peak peaks[CLASS_COUNT];
	struct live_map live;
	struct range_map maps;
	struct rss_sample *rss;
	size_t nrss, rsscap;
	uint64_t rss_peak;
	uint64_t events, unmatched_frees, replaced_blocks;
	uint64_t retags, retags_unknown; /* free-list reuses (RETAG) of known and unknown blocks */
	uint64_t last_seq;
	uint64_t end_time_ns; /* the last time in the trace: the run's, window or not */
	bool clean_exit;
	uint64_t trailer_allocs, trailer_frees;
	unsigned threads;
	struct mark *marks;
	size_t nmarks, markcap;
	/* the leak point: where "leaked" is measured */
	enum { LEAK_AT_END, LEAK_AT_FINALIZE, LEAK_AT_MARK, LEAK_AT_EXEC } leak_point;
	uint64_t leak_seq, leak_time_ns;
	/* the process exec'd: an EXEC mark that no EXEC_FAILED cancelled
	 * (marks[exec_mark] says into what, and when). With the leak point at
	 * the end of the trace it becomes LEAK_AT_EXEC: nothing counts as
	 * leaked (the kernel frees the image), and what would have is
	 * exec_live_bytes in exec_live_blocks */
	bool execd;
	size_t exec_mark;
	/* the process ended through _exit or _Exit (an EXIT mark, no trailer,
	 * not exec'd): when, and its status (exit_status_known false when the
	 * mark's label is not a number) */
	bool exited, exit_seen, exit_status_known;
	int exit_status;
	uint64_t exit_time_ns;
	uint64_t exec_live_bytes, exec_live_blocks;
	bool window; /* --between */
	uint64_t window_start_ns;
	site_hook_fn hook;
	void *hook_ctx;
	struct thread_table threads_tab; /* per thread: last allocation, mremap */
	struct heap_tick *ticks; /* with opts->heap_ticks, at most HW_MAX_TICKS */
	size_t nticks, tickcap;
	/* with ticks, a sampled trace: each tick's spread (NULL for an exact
	 * trace; room for tickcap), and the heap's live variance and samples
	 * now (every site's live_var, live_n) and when the tick's highest
	 * value was reached */
	struct tick_spread *tick_sp;
	size_t tick_spcap;
	unsigned __int128 heap_var, tick_var;
	uint64_t heap_n, tick_n;
	bool want_ticks;
	/* a sampled trace, while a collection is open (GC_START seen): the
	 * variance and samples of every sampled block that came or went */
	unsigned __int128 gc_var;
	uint64_t gc_n;
	bool gc_open;
	/* a sampled trace: the variance of the estimated count of heap frees */
	unsigned __int128 free_cvar;
	uint64_t temporaries;
};

/* Replays the trace once. Never fails on bad data: damaged chunks were cut by
 * the reader and anomalies are counted.
 *
 * Leaks: what is live at the leak point, which is the end of the window
 * (--between), else the moment CPython started to finalize, else the end of
 * the trace; none when the trace ends in an exec (LEAK_AT_EXEC). In a Python process whose frames were recorded a callsite's
 * memory counts as leaked only when its stack has a Python frame and no frame
 * of the import machinery (<frozen importlib._bootstrap...>), unless
 * opts->include_all; without Python frames every callsite counts.
 * With a window, only blocks allocated inside it are counted (peak, leaks,
 * totals), and the replay stops at its end.
 * Returns HW_ERR_USAGE (after printing why) when a marker is not found. */
enum hw_err analysis_run(struct analysis *a, struct trace *t, const struct analysis_opts *opts);
/* analysis_run in steps, for a follower (follow.c) that replays a growing
 * trace once and judges windows of it as they come: replay_begin (follow:
 * a merge of the chunks published so far that takes in more with
 * merge_refresh), replay_step as often as wanted, replay_end once (the
 * figures, as analysis_run leaves them). */
struct replay;
enum { REPLAY_DRAINED, REPLAY_STARTED, REPLAY_OVER };
struct replay *replay_begin(struct analysis *a, struct trace *t, const struct analysis_opts *opts,
			    bool follow);
int replay_step(struct replay *r);
enum hw_err replay_end(struct replay *r);
/* Ends a replay without its figures (the follower at the end of its
 * requests): what it holds is freed; a is then for analysis_free. */
void replay_abandon(struct replay *r);
struct merge *replay_merge(struct replay *r);
/* The window to look for next (the markers' labels, kept by the caller). */
void replay_window(struct replay *r, const char *from, const char *to);
/* replay_end keeps only what a window's check needs: the stacks of its
 * callsites (not the session's), and no per-kind live totals (a->kinds'
 * live_bytes, live_blocks, frees stay 0; the allocations are there). */
void replay_window_only(struct replay *r);
/* Back to before the window's start (the follower's parent after its fork). */
void replay_unstart(struct replay *r);
void analysis_free(struct analysis *a);
/* Frees what only the replay and the per-site figures need (live set,
 * sites, stack table), keeping the code objects, modules, markers and RSS
 * samples that symbolized frames and labels point into. */
void analysis_release_replay(struct analysis *a);

/* One line saying that the trace's Python frames were off and why, or NULL
 * when Python frames were recorded (or there is no Python). buf NULL: a
 * static buffer. analysis_run prints it as a warning for every report. */
const char *analysis_python_off(const struct analysis *a, char *buf, size_t cap);

/* The module map by time (modmap.c): groups the loads into files, and
 * gives every native stack node the file and offset of the object loaded
 * at its address at the node's time (the latest load at or before it that
 * covers the address, else the first one after it). O((n + m) log m) for n
 * nodes and m loads. */
void modmap_resolve(struct analysis *a);

/* Bytes and blocks a site had live at its class's peak. */
uint64_t site_peak_bytes(const struct analysis *a, const struct site *s);

/* A sampled trace's figures for site i: the variance of its estimated bytes
 * at its class's peak, at the leak point and over its allocations, and the
 * samples behind each (see struct site_spread). All 0 for an exact trace. */
struct spread_fig {
	double peak_var, leak_var, alloc_var;
	double count_var; /* of the estimated count of allocations */
	double leak_count_var; /* of the estimated count of leaked blocks */
	double free_count_var; /* of the estimated count of frees (the heap's only) */
	uint64_t peak_n, leak_n, alloc_n;
	double live_var; /* live now (at the end of the replay) */
	uint64_t live_n;
};
void site_spread_fig(const struct analysis *a, size_t i, struct spread_fig *out);

static inline int kind_class(int kind)
{
	return kind == HW_KIND_MMAP ? CLASS_MMAP : kind == HW_KIND_MMAP_FILE ? CLASS_FILE : CLASS_HEAP;
}
const char *kind_name(int kind);
const char *class_name(int cls);

/* What a heap block of `size` bytes recorded in a trace sampled at mean
 * interval `interval` stands for: size / p bytes and 1 / p blocks, p = 1 -
 * exp(-size / interval) the chance it was sampled (the unbiased estimate).
 * The block count is rounded up or down at random, seeded by the block's
 * address and size, so that it is unbiased too and the same at the block's
 * allocation and free. interval 0: the block itself. */
void analysis_weigh(uint64_t interval, uint64_t addr, uint64_t size, uint64_t *bytes,
		    uint64_t *blocks);

/* The variance that one recorded block of `size` bytes adds to an estimate
 * of bytes, as an unbiased estimate of it from the block having been
 * recorded: the weighed bytes are X = w * 1{recorded} with w = size / p, so
 * Var X = w^2 p (1 - p), and 1{recorded} * w^2 (1 - p) = w (w - size) has
 * that expectation. Blocks are recorded independently (Poisson points on
 * disjoint byte ranges), so a row's variance is the sum over its recorded
 * blocks. 0 for an exact trace and for blocks analysis_weigh counts as
 * themselves. */
double analysis_weigh_var(uint64_t interval, uint64_t size);
/* The same for an estimate of blocks: each recorded block counts 1 / p
 * (rounded at random between its neighbours, which adds at most 1/4), so
 * (1 - p) / p^2 + 1/4. */
double analysis_weigh_count_var(uint64_t interval, uint64_t size);
#endif
