/* analyzer/replay.c + merge.c: events of several chunks replay in sequence
 * order; the peak snapshot gives each callsite's bytes at the high-water
 * mark; leaks are what is live at the end; anomalies are counted. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "analysis.h"
#include "merge.h"
#include "report.h"
#include "sampled.h"
#include "symbolize.h"
#include "trace_builder.h"
#include "util.h"
#include "tree.h"

static char path[64];

static int setup(void **state)
{
	(void)state;
	snprintf(path, sizeof(path), "/tmp/hw-test-analysis-%d.hwt", (int)getpid());
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

static const struct site *site_of(const struct analysis *a, uint32_t stack, int cls)
{
	for (size_t i = 0; i < a->nsites; i++)
		if (a->sites[i].raw_stack == stack && a->sites[i].cls == cls)
			return &a->sites[i];
	return NULL;
}

/* Writes the built trace, replays it with o into *a and closes the trace
 * (what the assertions read stays in *a). */
static void replay_built(struct tb *b, const struct analysis_opts *o, struct analysis *a)
{
	struct trace t;
	assert_int_equal(tb_write(b, path), 0);
	tb_free_builder(b);
	assert_int_equal(trace_open(path, &t), HW_OK);
	assert_int_equal(analysis_run(a, &t, o), HW_OK);
	trace_close(&t);
}

static void peak_snapshot_per_callsite(void **state)
{
	(void)state;
	/* stack 1 grows to 300 then falls to 100; stack 2 reaches its own
	 * maximum (500) only after the global peak, when stack 1 is small. */
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	tb_chunk(&b, 1);
	tb_alloc(&b, HW_KIND_MALLOC, 1, 0x1000, 100, 1);
	tb_alloc(&b, HW_KIND_MALLOC, 2, 0x2000, 200, 1);
	tb_alloc(&b, HW_KIND_MALLOC, 3, 0x3000, 250, 2); /* total 550: the peak */
	tb_free(&b, HW_KIND_MALLOC, 4, 0x2000); /* 350 */
	tb_free(&b, HW_KIND_MALLOC, 5, 0x3000); /* 100 */
	tb_alloc(&b, HW_KIND_MALLOC, 6, 0x4000, 400, 2); /* 500 < 550 */
	tb_trailer(&b, 7, 1, 4, 2);
	struct analysis a;
	replay_built(&b, NULL, &a);
	assert_int_equal(a.peaks[CLASS_HEAP].peak, 550);
	assert_int_equal(a.peaks[CLASS_HEAP].peak_seq, 3);
	assert_int_equal(site_peak_bytes(&a, site_of(&a, 1, CLASS_HEAP)), 300);
	assert_int_equal(site_peak_bytes(&a, site_of(&a, 2, CLASS_HEAP)), 250);
	assert_int_equal(site_of(&a, 1, CLASS_HEAP)->live_bytes, 100); /* leaked */
	assert_int_equal(site_of(&a, 2, CLASS_HEAP)->live_bytes, 400);
	assert_int_equal(a.kinds[HW_KIND_MALLOC].allocs, 4);
	assert_int_equal(a.kinds[HW_KIND_MALLOC].frees, 2);
	assert_true(a.clean_exit);
	analysis_free(&a);
}

/* A RETAG (a free list's object made again by another stack) moves the live
 * block to the new stack: live, peak and leaked bytes follow it, allocation
 * counts stay calls into the allocator; an unknown block is only counted. */
static void retag_moves_a_live_block(void **state)
{
	(void)state;
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	tb_chunk(&b, 1);
	tb_alloc(&b, HW_KIND_PYOBJ, 1, 0x1000, 56, 1);
	tb_alloc(&b, HW_KIND_PYOBJ, 2, 0x2000, 56, 1);
	tb_retag(&b, 3, 0x1000, 2); /* stack 1's block reused on stack 2 */
	tb_retag(&b, 4, 0x9000, 2); /* never allocated: ignored */
	tb_alloc(&b, HW_KIND_PYOBJ, 5, 0x3000, 100, 3); /* the peak: 212 */
	tb_free(&b, HW_KIND_PYOBJ, 6, 0x3000);
	tb_trailer(&b, 7, 1, 3, 1);
	struct analysis a;
	replay_built(&b, NULL, &a);
	assert_int_equal(a.retags, 1);
	assert_int_equal(a.retags_unknown, 1);
	assert_int_equal(site_of(&a, 1, CLASS_HEAP)->live_bytes, 56);
	assert_int_equal(site_of(&a, 2, CLASS_HEAP)->live_bytes, 56);
	assert_int_equal(site_of(&a, 1, CLASS_HEAP)->allocs, 2);
	assert_int_equal(site_of(&a, 2, CLASS_HEAP)->allocs, 0);
	assert_int_equal(site_peak_bytes(&a, site_of(&a, 2, CLASS_HEAP)), 56);
	assert_int_equal(a.peaks[CLASS_HEAP].peak, 212);
	assert_int_equal(a.kinds[HW_KIND_PYOBJ].allocs, 3);
	analysis_free(&a);
}

static void merge_orders_threads_and_realloc_halves(void **state)
{
	(void)state;
	/* Thread 1 reallocs 0x1000 -> 0x2000 (free half seq 2, alloc half seq 4);
	 * thread 2 gets 0x1000 from malloc at seq 3 and frees it at seq 5. In
	 * file order thread 2's chunk comes first. A replay in file order would
	 * see a double allocation at 0x1000. */
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	tb_chunk(&b, 2);
	tb_alloc(&b, HW_KIND_MALLOC, 3, 0x1000, 50, 2);
	tb_free(&b, HW_KIND_MALLOC, 5, 0x1000);
	tb_chunk(&b, 1);
	tb_alloc(&b, HW_KIND_MALLOC, 1, 0x1000, 10, 1);
	tb_realloc(&b, 2, 4, 0x1000, 0x2000, 20, 1);
	struct analysis a;
	replay_built(&b, NULL, &a);
	assert_int_equal(a.replaced_blocks, 0);
	assert_int_equal(a.unmatched_frees, 0);
	assert_int_equal(a.kinds[HW_KIND_MALLOC].live_bytes, 20);
	assert_int_equal(a.kinds[HW_KIND_MALLOC].live_blocks, 1);
	assert_int_equal(a.peaks[CLASS_HEAP].peak, 70); /* 20 + 50 at seq 4 */
	assert_int_equal(a.threads, 2);
	assert_false(a.clean_exit);
	analysis_free(&a);
}

static void mappings_and_anomalies(void **state)
{
	(void)state;
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	tb_chunk(&b, 1);
	tb_free(&b, HW_KIND_MALLOC, 1, 0xdead0); /* made before tracing */
	tb_alloc(&b, HW_KIND_MMAP, 2, 0x100000, 0x10000, 1);
	tb_unmap(&b, 3, 0x104000, 0x1000);
	tb_remap(&b, 4, 5, 0x100000, 0x4000, 0x200000, 0x8000, 1);
	tb_alloc(&b, HW_KIND_MMAP_FILE, 6, 0x300000, 0x2000, 2);
	struct analysis a;
	replay_built(&b, NULL, &a);
	assert_int_equal(a.unmatched_frees, 1);
	/* 0x10000 - 0x1000 (hole) - 0x4000 (moved) + 0x8000 */
	assert_int_equal(a.kinds[HW_KIND_MMAP].live_bytes, 0x13000);
	assert_int_equal(a.peaks[CLASS_MMAP].peak, 0x13000);
	assert_int_equal(a.kinds[HW_KIND_MMAP_FILE].live_bytes, 0x2000);
	assert_int_equal(a.peaks[CLASS_HEAP].peak, 0);
	analysis_free(&a);
}

static void mapping_split_by_holes_is_one_block(void **state)
{
	(void)state;
	/* munmap of every other page of one mapping, then of the rest: one
	 * mapping, one free (each piece's unmap counted one: 8 frees, live
	 * blocks below zero); a hole, then the front piece: 7 pages left of
	 * one live mapping (leaked bytes without a block) */
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	tb_chunk(&b, 1);
	uint64_t seq = 1;
	tb_alloc(&b, HW_KIND_MMAP, seq++, 0x100000, 0x10000, 1);
	for (uint64_t p = 1; p < 16; p += 2)
		tb_unmap(&b, seq++, 0x100000 + (p << 12), 0x1000);
	for (uint64_t p = 0; p < 16; p += 2)
		tb_unmap(&b, seq++, 0x100000 + (p << 12), 0x1000);
	tb_alloc(&b, HW_KIND_MMAP, seq++, 0x400000, 0x10000, 2);
	tb_unmap(&b, seq++, 0x408000, 0x1000);
	tb_unmap(&b, seq++, 0x400000, 0x8000);
	struct analysis a;
	replay_built(&b, NULL, &a);
	assert_int_equal(a.kinds[HW_KIND_MMAP].allocs, 2);
	assert_int_equal(a.kinds[HW_KIND_MMAP].frees, 1);
	assert_int_equal(a.kinds[HW_KIND_MMAP].live_blocks, 1);
	assert_int_equal(a.kinds[HW_KIND_MMAP].live_bytes, 0x7000);
	assert_int_equal(site_of(&a, 1, CLASS_MMAP)->live_bytes, 0);
	assert_int_equal(site_of(&a, 2, CLASS_MMAP)->live_bytes, 0x7000);
	assert_int_equal(site_of(&a, 2, CLASS_MMAP)->live_blocks, 1);
	analysis_free(&a);
}

static void temporaries_per_thread(void **state)
{
	(void)state;
	/* A temporary: a plain free of the thread's last allocation before the
	 * thread allocates again or frees another block. Two threads interleave
	 * (two chunks: with two CPUs the decoding runs on a thread of its own),
	 * so "last" must be per thread. */
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	tb_chunk(&b, 1);
	tb_alloc(&b, HW_KIND_MALLOC, 1, 0x1000, 10, 1);
	tb_free(&b, HW_KIND_MALLOC, 4, 0x1000); /* temporary, though thread 2 allocated at 2 and 3 */
	tb_alloc(&b, HW_KIND_MALLOC, 5, 0x1100, 20, 1);
	tb_free(&b, HW_KIND_MALLOC, 6, 0x2200); /* thread 2's block, freed here: a free in between */
	tb_free(&b, HW_KIND_MALLOC, 7, 0x1100); /* not a temporary */
	tb_alloc(&b, HW_KIND_MALLOC, 8, 0x1200, 30, 1);
	tb_realloc(&b, 9, 10, 0x1200, 0x1300, 40, 1); /* the free half is not one */
	tb_free(&b, HW_KIND_MALLOC, 11, 0x1300); /* the realloc's block: a temporary */
	tb_chunk(&b, 2);
	tb_alloc(&b, HW_KIND_MALLOC, 2, 0x2200, 5, 2);
	tb_alloc(&b, HW_KIND_MALLOC, 3, 0x2000, 50, 2);
	tb_alloc(&b, HW_KIND_MALLOC, 12, 0x2100, 60, 2);
	tb_free(&b, HW_KIND_MALLOC, 13, 0x2000); /* the thread allocated since */
	struct analysis a;
	replay_built(&b, NULL, &a);
	assert_int_equal(a.temporaries, 2);
	assert_int_equal(site_of(&a, 1, CLASS_HEAP)->temp_count, 2);
	assert_int_equal(site_of(&a, 1, CLASS_HEAP)->temp_bytes, 50);
	assert_int_equal(site_of(&a, 2, CLASS_HEAP)->temp_count, 0);
	assert_int_equal(a.unmatched_frees, 0);
	assert_int_equal(a.events, 13); /* a realloc is two */
	assert_int_equal(a.kinds[HW_KIND_MALLOC].live_bytes, 60);
	analysis_free(&a);
}

static void window_counts_only_blocks_inside(void **state)
{
	(void)state;
	/* Blocks allocated before the window's first marker are not counted,
	 * neither when they are freed inside it; mappings the same. */
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	tb_chunk(&b, 1);
	tb_alloc(&b, HW_KIND_MALLOC, 1, 0x1000, 100, 1);
	tb_alloc(&b, HW_KIND_MMAP, 2, 0x100000, 0x4000, 3);
	tb_mark(&b, 3, HW_MARK_USER, "go");
	tb_free(&b, HW_KIND_MALLOC, 4, 0x1000);
	tb_unmap(&b, 5, 0x100000, 0x4000);
	tb_alloc(&b, HW_KIND_MALLOC, 6, 0x2000, 7, 2);
	tb_alloc(&b, HW_KIND_MMAP, 7, 0x200000, 0x1000, 3);
	struct analysis a;
	struct analysis_opts o = {.from_mark = "go"};
	replay_built(&b, &o, &a);
	assert_null(site_of(&a, 1, CLASS_HEAP));
	assert_int_equal(site_of(&a, 2, CLASS_HEAP)->live_bytes, 7);
	assert_int_equal(a.kinds[HW_KIND_MALLOC].live_bytes, 7);
	assert_int_equal(a.kinds[HW_KIND_MALLOC].frees, 0);
	assert_int_equal(a.kinds[HW_KIND_MMAP].live_bytes, 0x1000);
	assert_int_equal(a.peaks[CLASS_MMAP].peak, 0x1000);
	assert_int_equal(a.unmatched_frees, 0);
	analysis_free(&a);
}

/* heapwise follow's replay (replay_begin with follow) of a trace that grows
 * while it is read: the window comes out as check --between gives it on the
 * finished file. Chunk 1 is read to where its published records ended,
 * then resumed there (its delta bases kept: B and the free are deltas from
 * A); thread 2's chunk appears between the reads with an event (seq 3)
 * older than ones read before the refresh. */
static void followed_trace_grows(void **state)
{
	(void)state;
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	tb_chunk(&b, 1);
	size_t c1 = b.chunk_off;
	tb_alloc(&b, HW_KIND_MALLOC, 1, 0x500, 64, 1); /* before the window */
	tb_mark(&b, 2, HW_MARK_USER, "s");
	tb_alloc(&b, HW_KIND_MALLOC, 3, 0x1000, 1000, 1);
	uint32_t early = (uint32_t)(b.size - c1 - HW_CHUNK_HEADER_SIZE);
	tb_alloc(&b, HW_KIND_MALLOC, 5, 0x2000, 500, 1);
	tb_free(&b, HW_KIND_MALLOC, 6, 0x1000);
	tb_free(&b, HW_KIND_MALLOC, 7, 0x500); /* not counted */
	tb_mark(&b, 9, HW_MARK_USER, "e");
	tb_chunk(&b, 2);
	size_t c2 = b.chunk_off;
	tb_alloc(&b, HW_KIND_MALLOC, 4, 0x9000, 1 << 20, 2);
	tb_alloc(&b, HW_KIND_MALLOC, 8, 0xa000, 100, 2);
	assert_int_equal(tb_write(&b, path), 0);
	size_t size = b.size;
	uint8_t *full = xmalloc(size);
	memcpy(full, b.buf, size);
	tb_free_builder(&b);

	struct analysis_opts o = {.from_mark = "s", .to_mark = "e"};
	struct trace t;
	struct analysis want;
	assert_int_equal(trace_open(path, &t), HW_OK);
	assert_int_equal(analysis_run(&want, &t, &o), HW_OK);
	trace_close(&t);

	/* as the writer had it: chunk 1 published up to A, thread 2's block unused */
	uint8_t *part = xmalloc(size);
	memcpy(part, full, size);
	memcpy(part + c1 + 8, &early, 4);
	memset(part + c2, 0, HW_MIN_CHUNK_SIZE);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(part, 1, size, f), size);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(trace_open_follow(path, &t), HW_OK);
	struct analysis a;
	struct replay *r = replay_begin(&a, &t, &o, true);
	assert_int_equal(replay_step(r), REPLAY_STARTED);
	assert_int_equal(replay_step(r), REPLAY_DRAINED); /* "e" is not written yet */
	/* the writer goes on: the rest of chunk 1, thread 2's chunk */
	f = fopen(path, "r+b");
	assert_non_null(f);
	assert_int_equal(fseek(f, (long)c2, SEEK_SET), 0);
	assert_int_equal(fwrite(full + c2, 1, HW_MIN_CHUNK_SIZE, f), HW_MIN_CHUNK_SIZE);
	assert_int_equal(fseek(f, (long)(c1 + 8), SEEK_SET), 0);
	assert_int_equal(fwrite(full + c1 + 8, 1, 4, f), 4);
	assert_int_equal(fclose(f), 0);
	trace_refresh(&t);
	merge_refresh(replay_merge(r));
	assert_int_equal(replay_step(r), REPLAY_OVER);
	assert_int_equal(replay_end(r), HW_OK);
	assert_int_equal(a.peaks[CLASS_HEAP].peak, 1000 + 500 + (1 << 20));
	assert_int_equal(a.peaks[CLASS_HEAP].peak, want.peaks[CLASS_HEAP].peak);
	uint64_t got_leak, want_leak, blocks;
	report_leaked(&a, &got_leak, &blocks);
	report_leaked(&want, &want_leak, &blocks);
	assert_int_equal(got_leak, 500 + (1 << 20) + 100);
	assert_int_equal(got_leak, want_leak);
	assert_int_equal(a.unmatched_frees, want.unmatched_frees);
	analysis_free(&a);
	analysis_free(&want);
	trace_close(&t);
	free(full);
	free(part);
}

static void one_unmap_of_many_mappings(void **state)
{
	(void)state;
	/* One munmap over 6,000 mappings ends each of them: more pieces than a
	 * batch of events holds (a second thread's chunk: with two CPUs the
	 * batches go to the replay on another thread). */
	struct tb b;
	tb_init(&b, 1u << 20, "x", 1);
	tb_chunk(&b, 1);
	uint64_t seq = 1;
	for (uint64_t i = 0; i < 6000; i++)
		tb_alloc(&b, HW_KIND_MMAP, seq++, 0x10000000 + i * 0x2000, 0x1000, (uint32_t)(1 + i % 7));
	tb_unmap(&b, seq++, 0x10000000, 6000 * 0x2000);
	tb_alloc(&b, HW_KIND_MMAP, seq++, 0x10000000, 0x3000, 1);
	tb_chunk(&b, 2);
	tb_alloc(&b, HW_KIND_MALLOC, seq++, 0x1000, 16, 8);
	struct analysis a;
	replay_built(&b, NULL, &a);
	assert_int_equal(a.peaks[CLASS_MMAP].peak, 6000 * 0x1000);
	assert_int_equal(a.kinds[HW_KIND_MMAP].frees, 6000);
	assert_int_equal(a.kinds[HW_KIND_MMAP].live_bytes, 0x3000);
	assert_int_equal(site_of(&a, 1, CLASS_MMAP)->live_bytes, 0x3000);
	assert_int_equal(site_of(&a, 1, CLASS_MMAP)->allocs, 859); /* 858 of the 6000, and the last */
	assert_int_equal(a.events, 6003);
	analysis_free(&a);
}

/* A Python process whose frames were not recorded (a version the shim has no
 * layout for): its stacks are native, so the Python leak definition ("under a
 * Python frame") would keep nothing and a 3 MiB leak would pass a gate. Such
 * a trace is judged by the native definition: everything live at the end. */
static void python_without_frames_leaks_natively(void **state)
{
	(void)state;
	for (int frames = 0; frames < 2; frames++) {
		struct tb b;
		tb_init(&b, HW_MIN_CHUNK_SIZE, "python3.16 app.py", 17);
		tb_chunk(&b, 1);
		tb_python(&b, 1, 0x031000f0, frames, frames ? NULL : "no layout for Python 3.16");
		tb_stack(&b, 1, 0, 0x401000); /* native frames only */
		tb_stack(&b, 2, 1, 0x401100);
		tb_alloc(&b, HW_KIND_PYOBJ, 2, 0x10000, 3u << 20, 2);
		tb_alloc(&b, HW_KIND_PYOBJ, 3, 0x900000, 100, 1);
		tb_free(&b, HW_KIND_PYOBJ, 4, 0x900000);
		tb_trailer(&b, 5, 1, 2, 1);
		struct analysis a;
		replay_built(&b, NULL, &a);
		const struct site *s = site_of(&a, 2, CLASS_HEAP);
		assert_non_null(s);
		assert_int_equal(s->leak_bytes, 3u << 20);
		assert_int_equal(a.python_frames, frames);
		/* with frames a native-only stack is interpreter start-up: no leak */
		assert_int_equal(s->eligible, !frames);
		if (!frames) {
			assert_string_equal(a.python_off, "no layout for Python 3.16");
			assert_non_null(strstr(analysis_python_off(&a, NULL, 0), "no layout for Python 3.16"));
		} else {
			assert_null(analysis_python_off(&a, NULL, 0));
		}
		analysis_free(&a);
	}
}

/* The module of a frame's row, by the row's innermost frame's address. */
static const char *module_at(const struct report *r, uint64_t ip, uint64_t *offset)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->rows[i].nframes && r->rows[i].frames[0].ip == ip) {
			*offset = r->rows[i].frames[0].module_offset;
			return r->rows[i].frames[0].module;
		}
	return NULL;
}

/* A library dlopen'ed at the addresses another one had before it was
 * dlclose'd, running on a new thread: its frames are its own, resolved by
 * the time their stack nodes were made (the event after them), not the
 * first library's; equal addresses in the two are different callsites. So
 * is a node that an old thread defines in its old chunk after the second
 * library came. */
static void modules_by_the_time_of_the_stack(void **state)
{
	(void)state;
	const uint64_t X = 0x7f0000000000;
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	tb_chunk(&b, 1);
	tb_module(&b, 1, X, X, X + 0x10000, "/nonexistent/libfirst.so");
	tb_stack(&b, 1, 0, X + 0x1234);
	tb_alloc(&b, HW_KIND_MALLOC, 1, 0x1000, 100, 1);
	tb_stack(&b, 3, 0, X + 0x1300); /* defined after libsecond came (seq 2) */
	tb_alloc(&b, HW_KIND_MALLOC, 4, 0x3000, 300, 3);
	tb_chunk(&b, 2); /* a new thread */
	tb_module_unload(&b, 2, X, X);
	tb_module(&b, 2, X, X, X + 0x10000, "/nonexistent/libsecond.so");
	tb_stack(&b, 2, 0, X + 0x1234);
	tb_alloc(&b, HW_KIND_MALLOC, 2, 0x2000, 200, 2);
	struct analysis a;
	replay_built(&b, NULL, &a);
	struct symbolizer *s = symbolizer_new_offline(&a);
	struct report r;
	report_build(&r, &a, s, GROUP_STACK, BY_PEAK, false);
	assert_int_equal(r.n, 3);
	uint64_t off = 0;
	assert_string_equal(module_at(&r, X + 0x1234, &off), "libsecond.so"); /* 200 B: first */
	assert_int_equal(off, 0x1234);
	assert_int_equal(r.rows[0].peak_bytes, 300);
	assert_string_equal(r.rows[0].frames[0].module, "libsecond.so");
	assert_int_equal(r.rows[0].frames[0].module_offset, 0x1300);
	assert_int_equal(r.rows[1].peak_bytes, 200);
	assert_string_equal(r.rows[1].frames[0].module, "libsecond.so");
	assert_int_equal(r.rows[2].peak_bytes, 100);
	assert_string_equal(r.rows[2].frames[0].module, "libfirst.so");
	report_free(&r);
	symbolizer_free(s);
	analysis_free(&a);
}

/* The same library loaded again at another address (dlopen after dlclose):
 * one callsite, whatever the address. */
static void one_library_at_two_addresses(void **state)
{
	(void)state;
	const uint64_t X = 0x7f0000000000, Y = 0x7f4000000000;
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	tb_chunk(&b, 1);
	tb_module(&b, 1, X, X, X + 0x10000, "/nonexistent/libcycle.so");
	tb_stack(&b, 1, 0, X + 0x1234);
	tb_alloc(&b, HW_KIND_MALLOC, 1, 0x1000, 100, 1);
	tb_module_unload(&b, 2, X, X);
	tb_module(&b, 2, Y, Y, Y + 0x10000, "/nonexistent/libcycle.so");
	tb_stack(&b, 2, 0, Y + 0x1234);
	tb_alloc(&b, HW_KIND_MALLOC, 2, 0x2000, 200, 2);
	struct analysis a;
	replay_built(&b, NULL, &a);
	struct symbolizer *s = symbolizer_new_offline(&a);
	struct report r;
	report_build(&r, &a, s, GROUP_STACK, BY_PEAK, false);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.rows[0].peak_bytes, 300);
	assert_int_equal(r.rows[0].count, 2);
	assert_string_equal(r.rows[0].frames[0].module, "libcycle.so");
	assert_int_equal(r.rows[0].frames[0].module_offset, 0x1234);
	report_free(&r);
	symbolizer_free(s);
	analysis_free(&a);
}

/* A sampled trace (SAMPLE record): each heap block stands for size / p
 * bytes and about 1 / p blocks, p = 1 - exp(-size / interval); the free of
 * a block takes back what its allocation added; mappings weigh what they
 * are. */
static void sampled_blocks_are_weighed(void **state)
{
	(void)state;
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	tb_chunk(&b, 1);
	uint8_t rec[] = {HW_REC_SAMPLE, 1, 0xe8, 0x07}; /* seq 1, interval 1000 */
	tb_raw(&b, rec, sizeof(rec));
	tb_alloc(&b, HW_KIND_PYOBJ, 2, 0x1000, 100, 1); /* p = 0.0952: 1050.8 bytes */
	tb_alloc(&b, HW_KIND_MALLOC, 3, 0x2000, 10000, 2); /* p = 0.99995 */
	tb_alloc(&b, HW_KIND_MMAP, 4, 0x10000, 4096, 3); /* a mapping: itself */
	tb_free(&b, HW_KIND_PYOBJ, 5, 0x1000);
	tb_trailer(&b, 6, 1, 3, 1);
	struct analysis a;
	replay_built(&b, NULL, &a);
	assert_int_equal(a.sample_interval, 1000);
	assert_int_equal(a.kinds[HW_KIND_PYOBJ].alloc_bytes, 1051);
	assert_int_equal(a.kinds[HW_KIND_MALLOC].alloc_bytes, 10000);
	assert_int_equal(a.peaks[CLASS_HEAP].peak, 11051);
	assert_int_equal(a.peaks[CLASS_HEAP].live, 10000);
	assert_int_equal(a.kinds[HW_KIND_PYOBJ].live_bytes, 0);
	assert_int_equal(a.kinds[HW_KIND_PYOBJ].live_blocks, 0);
	uint64_t blocks = a.kinds[HW_KIND_PYOBJ].allocs;
	assert_true(blocks == 10 || blocks == 11); /* 1 / p = 10.51 */
	assert_int_equal(a.kinds[HW_KIND_PYOBJ].frees, blocks);
	assert_int_equal(site_of(&a, 1, CLASS_HEAP)->live_blocks, 0);
	assert_int_equal(a.kinds[HW_KIND_MALLOC].allocs, 1);
	assert_int_equal(a.peaks[CLASS_MMAP].peak, 4096);
	analysis_free(&a);
}

/* The block counts' random rounding is unbiased, and the same for a
 * block's allocation and its free (address and size). */
static void sample_weights_are_unbiased(void **state)
{
	(void)state;
	uint64_t bytes, blocks, total = 0, again;
	const uint64_t n = 200000;
	for (uint64_t i = 0; i < n; i++) {
		analysis_weigh(1000, 0x10000 + i * 48, 700, &bytes, &blocks);
		analysis_weigh(1000, 0x10000 + i * 48, 700, &bytes, &again);
		assert_int_equal(blocks, again);
		total += blocks;
	}
	double want = 1.0 / -expm1(-0.7); /* 1.9863 */
	assert_true(fabs((double)total / (double)n - want) < 0.005);
	assert_int_equal(bytes, (uint64_t)llround(700 * want));
	analysis_weigh(0, 0x1000, 700, &bytes, &blocks);
	assert_int_equal(bytes, 700);
	assert_int_equal(blocks, 1);
}

/* A sampled block's variance, n^2 (1 - p) / p^2 (the brief's form; the
 * analyzer computes w (w - n), w = n / p), with p = 1 - exp(-n / I). */
static double want_var(double n, double interval)
{
	double p = 1 - exp(-n / interval);
	return n * n * (1 - p) / (p * p);
}

/* Each site's spread: the variance of its estimated bytes is the sum of
 * its recorded blocks' at the peak, at the leak point and over its
 * allocations, with the samples behind each; blocks that count as
 * themselves (mappings) add none; an exact trace has none. */
static void sampled_spread_per_site(void **state)
{
	(void)state;
	/* n = I: p = 1 - 1/e, variance 920,674 */
	assert_true(fabs(analysis_weigh_var(1000, 1000) - 920673.9) < 0.5);
	assert_true(fabs(analysis_weigh_var(1000, 1000) - want_var(1000, 1000)) < 1e-6 * 920674);
	assert_true(analysis_weigh_var(0, 1000) == 0); /* exact trace */
	assert_true(analysis_weigh_var(1000, 64000) == 0); /* counts as itself */
	/* small blocks: about I^2 each, so B bytes give a relative error of
	 * about sqrt(I / B) */
	assert_true(fabs(analysis_weigh_var(1u << 20, 48) / ((double)(1u << 20) * (1u << 20)) - 1) <
		    0.001);
	/* counts: (1 - p) / p^2 + 1/4 */
	double p = 1 - exp(-0.1);
	assert_true(fabs(analysis_weigh_count_var(1000, 100) - ((1 - p) / (p * p) + 0.25)) < 1e-9);

	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	tb_chunk(&b, 1);
	uint8_t rec[] = {HW_REC_SAMPLE, 1, 0xe8, 0x07}; /* seq 1, interval 1000 */
	tb_raw(&b, rec, sizeof(rec));
	tb_alloc(&b, HW_KIND_PYOBJ, 2, 0x1000, 100, 1);
	tb_alloc(&b, HW_KIND_PYOBJ, 3, 0x3000, 500, 1);
	tb_alloc(&b, HW_KIND_MALLOC, 4, 0x8000, 3000, 2);
	tb_alloc(&b, HW_KIND_MMAP, 5, 0x10000, 4096, 3); /* a mapping: itself */
	tb_free(&b, HW_KIND_PYOBJ, 6, 0x3000); /* after the heap's peak */
	tb_alloc(&b, HW_KIND_PYOBJ, 7, 0x5000, 200, 1); /* below the peak again */
	tb_trailer(&b, 8, 1, 4, 1);
	struct analysis a;
	replay_built(&b, NULL, &a);
	const struct site *s1 = site_of(&a, 1, CLASS_HEAP), *s2 = site_of(&a, 2, CLASS_HEAP),
			  *s3 = site_of(&a, 3, CLASS_MMAP);
	struct spread_fig f1, f2, f3;
	site_spread_fig(&a, (size_t)(s1 - a.sites), &f1);
	site_spread_fig(&a, (size_t)(s2 - a.sites), &f2);
	site_spread_fig(&a, (size_t)(s3 - a.sites), &f3);
	double v100 = want_var(100, 1000), v500 = want_var(500, 1000), v200 = want_var(200, 1000),
	       v3000 = want_var(3000, 1000);
	/* at the peak (after seq 4): 100 and 500 */
	assert_true(fabs(f1.peak_var - (v100 + v500)) < 2);
	assert_int_equal(f1.peak_n, 2);
	/* at the end (the leak point): 100 and 200 */
	assert_true(fabs(f1.leak_var - (v100 + v200)) < 2);
	assert_int_equal(f1.leak_n, 2);
	/* every allocation */
	assert_true(fabs(f1.alloc_var - (v100 + v500 + v200)) < 3);
	assert_int_equal(f1.alloc_n, 3);
	assert_true(fabs(f2.peak_var - v3000) < 1 && fabs(f2.leak_var - v3000) < 1);
	assert_int_equal(f2.peak_n, 1);
	assert_true(f3.peak_var == 0 && f3.alloc_var == 0 && f3.peak_n == 0);
	/* the heap as a whole */
	struct spread_fig h;
	sample_heap_spread(&a, &h);
	assert_true(fabs(h.peak_var - (v100 + v500 + v3000)) < 3);
	assert_int_equal(h.peak_n, 3);
	assert_true(fabs(h.leak_var - (v100 + v200 + v3000)) < 3);
	analysis_free(&a);

	/* the text: a 95% interval of 1.96 standard errors, marked unreliable
	 * under HW_FEW_SAMPLES samples, "exact" without any */
	char buf[96];
	assert_string_equal(sample_pm(buf, 5000, 1e6, 3), "\u00b1 1.9 KiB (3 samples, unreliable)");
	assert_string_equal(sample_pm(buf, 5000, 1e6, 40), "\u00b1 1.9 KiB (40 samples)");
	assert_string_equal(sample_pm(buf, 5000, 0, 0), "exact");
}

/* A process tree of sampled traces: the combined peak's interval adds each
 * process's live variance at that moment (the peak's tick at its highest
 * value, the other process at the end of its last tick), and the leaks'
 * add theirs. The child's 2000-byte block lives only inside one tick:
 * that tick's highest value has its variance and its end has none. */
static void tree_combined_spread(void **state)
{
	(void)state;
	char p2[80];
	snprintf(p2, sizeof(p2), "%s.child", path);
	uint8_t rec[] = {HW_REC_SAMPLE, 1, 0xe8, 0x07}; /* seq 1, interval 1000 */
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "parent", 6);
	tb_process(&b, 100, 1, 1000);
	tb_chunk(&b, 1);
	tb_raw(&b, rec, sizeof(rec));
	tb_time(&b, 10);
	tb_alloc(&b, HW_KIND_MALLOC, 2, 0x1000, 500, 1);
	tb_time(&b, 20);
	tb_alloc(&b, HW_KIND_MALLOC, 3, 0x2000, 300, 1);
	tb_time(&b, 30);
	tb_free(&b, HW_KIND_MALLOC, 4, 0x1000);
	tb_time(&b, 50);
	tb_trailer(&b, 5, 50, 2, 1);
	assert_int_equal(tb_write(&b, path), 0);
	tb_free_builder(&b);
	tb_init(&b, HW_MIN_CHUNK_SIZE, "child", 5);
	tb_process(&b, 101, 100, 1001);
	tb_chunk(&b, 1);
	tb_raw(&b, rec, sizeof(rec));
	tb_time(&b, 24); /* 1025 on the common clock: A has 800 live */
	tb_alloc(&b, HW_KIND_MALLOC, 2, 0x9000, 2000, 1);
	tb_free(&b, HW_KIND_MALLOC, 3, 0x9000);
	tb_alloc(&b, HW_KIND_MALLOC, 4, 0xa000, 100, 1);
	tb_time(&b, 40);
	tb_trailer(&b, 5, 40, 2, 1);
	assert_int_equal(tb_write(&b, p2), 0);
	tb_free_builder(&b);

	char *paths[] = {path, p2};
	struct analysis_opts o = {0};
	struct tree tr;
	assert_int_equal(tree_load(&tr, paths, 2, &o), 0);
	struct tree_totals t;
	tree_totals(&tr, &t);
	uint64_t w500, w300, w2000, w100, n;
	analysis_weigh(1000, 0x1000, 500, &w500, &n);
	analysis_weigh(1000, 0x2000, 300, &w300, &n);
	analysis_weigh(1000, 0x9000, 2000, &w2000, &n);
	analysis_weigh(1000, 0xa000, 100, &w100, &n);
	assert_int_equal(t.peak, w500 + w300 + w2000);
	double v500 = want_var(500, 1000), v300 = want_var(300, 1000), v2000 = want_var(2000, 1000),
	       v100 = want_var(100, 1000);
	assert_true(fabs(t.spread.peak_var - (v500 + v300 + v2000)) < 3);
	assert_int_equal(t.spread.peak_n, 3);
	/* leaked: the parent's 300 and the child's 100 */
	assert_int_equal(t.leaked, w300 + w100);
	assert_true(fabs(t.spread.leak_var - (v300 + v100)) < 2);
	assert_int_equal(t.spread.leak_n, 2);
	assert_true(fabs(t.spread.alloc_var - (v500 + v300 + v2000 + v100)) < 4);
	assert_int_equal(t.spread.alloc_n, 4);
	/* the text says it */
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	tree_summary_text(f, &tr);
	fclose(f);
	char want[160], pm[96];
	char sz[32];
	snprintf(want, sizeof(want), "peak heap   %s %s at", fmt_size(sz, t.peak),
		 sample_pm(pm, t.peak, v500 + v300 + v2000, 3));
	assert_non_null(strstr(buf, want));
	assert_non_null(strstr(buf, "; \u00b1: 95% intervals"));
	free(buf);
	/* and the JSON: one standard error, and the samples */
	f = open_memstream(&buf, &len);
	tree_summary_json(f, &tr);
	fclose(f);
	snprintf(want, sizeof(want), "\"peak_stderr_bytes\":%" PRIu64 ",\"peak_samples\":3",
		 sample_clamp(sqrt(v500 + v300 + v2000)));
	assert_non_null(strstr(buf, want));
	snprintf(want, sizeof(want), "\"leaked_stderr_bytes\":%" PRIu64 ",\"leaked_samples\":2",
		 sample_clamp(sqrt(v300 + v100)));
	assert_non_null(strstr(buf, want));
	free(buf);
	tree_free(&tr);
	unlink(p2);
}

/* More clock ticks than HW_MAX_TICKS: neighbouring ticks are merged, and a
 * sampled trace's tick spread with them (the pair's highest value's
 * variance, the second one's end). Even ticks allocate and free 100 bytes,
 * odd ones 200 (the higher value of each pair); from tick 40000 on, 500
 * bytes stay live. */
static void tick_spread_survives_merging(void **state)
{
	(void)state;
	struct tb b;
	tb_init(&b, 4u << 20, "ticks", 5);
	tb_chunk(&b, 1);
	uint8_t rec[] = {HW_REC_SAMPLE, 1, 0xe8, 0x07}; /* seq 1, interval 1000 */
	tb_raw(&b, rec, sizeof(rec));
	enum { N = 70000, KEEP = 40000 };
	uint64_t seq = 2;
	for (uint64_t i = 0; i < N; i++) {
		tb_time(&b, 10 + 10 * i);
		if (i == KEEP)
			tb_alloc(&b, HW_KIND_MALLOC, seq++, 0x100000, 500, 1);
		tb_alloc(&b, HW_KIND_MALLOC, seq++, 0x1000, i % 2 ? 200 : 100, 1);
		tb_free(&b, HW_KIND_MALLOC, seq++, 0x1000);
	}
	tb_time(&b, 10 + 10 * N);
	tb_trailer(&b, seq, 10 + 10 * N, N + 1, N);
	struct analysis_opts o = {.heap_ticks = true};
	struct analysis a;
	replay_built(&b, &o, &a);
	assert_non_null(a.tick_sp);
	assert_true(a.nticks < HW_MAX_TICKS && a.nticks > N / 2);
	double v100 = want_var(100, 1000), v200 = want_var(200, 1000), v500 = want_var(500, 1000);
	size_t checked = 0;
	for (size_t j = 0; j < a.nticks; j++) {
		const struct heap_tick *t = &a.ticks[j];
		const struct tick_spread *sp = &a.tick_sp[j];
		/* the allocation i of its first tick (time 10 + 10 i; the
		 * first tick, at 0, has none: -1); a merged pair (the first
		 * HW_MAX_TICKS / 2) covers i and i + 1, i odd, whose highest
		 * value is i's 200 bytes (w(200) > w(100)) */
		int64_t i = t->time_ns ? ((int64_t)t->time_ns - 10) / 10 : -1;
		bool merged = j < HW_MAX_TICKS / 2;
		int64_t last = merged ? i + 1 : i;
		if ((i <= KEEP && last >= KEEP) || i < 0 || i >= N)
			continue; /* where the 500 came, the start and the end */
		bool kept = i > KEEP;
		double want = (merged || i % 2 ? v200 : v100) + (kept ? v500 : 0);
		assert_true(fabs(sp->max_var - want) < 2);
		assert_int_equal(sp->max_n, kept ? 2 : 1);
		assert_true(fabs(sp->end_var - (kept ? v500 : 0)) < 1);
		assert_int_equal(sp->end_n, kept ? 1 : 0);
		checked++;
	}
	assert_true(checked > N / 2 - 10);
	analysis_free(&a);
}

/* The largest interval a trace may name (HW_SAMPLE_INTERVAL_MAX, 2^40) and
 * 1-byte blocks: each block's variance is about 2^80, past 64 bits: the
 * 128-bit sums keep it (the UBSan build runs this), and text and JSON
 * saturate what does not fit. */
static void hostile_interval_spread(void **state)
{
	(void)state;
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	tb_chunk(&b, 1);
	uint8_t rec[] = {HW_REC_SAMPLE, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20}; /* 2^40 */
	tb_raw(&b, rec, sizeof(rec));
	for (uint64_t i = 0; i < 300; i++)
		tb_alloc(&b, HW_KIND_MALLOC, 2 + i, 0x1000 + i * 16, 1, 1);
	tb_trailer(&b, 400, 1, 300, 0);
	struct analysis a;
	replay_built(&b, NULL, &a);
	assert_int_equal(a.sample_interval, HW_SAMPLE_INTERVAL_MAX);
	struct spread_fig f;
	site_spread_fig(&a, 0, &f);
	assert_int_equal(f.peak_n, 300);
	assert_true(fabs(f.peak_var / (300 * 0x1p80) - 1) < 0.01);
	char buf[96];
	sample_pm(buf, UINT64_MAX, f.peak_var, f.peak_n);
	assert_string_equal(buf, "\u00b1 33.9 TiB (300 samples)"); /* 1.96 sqrt(300) 2^40 */
	assert_int_equal(sample_clamp(1e300), UINT64_MAX);
	assert_int_equal(sample_clamp(-1), 0);
	assert_int_equal(sample_clamp(0x1p63 + 4096), ((uint64_t)1 << 63) + 4096);
	analysis_free(&a);
}

/* An exact trace has no spread at all. */
static void exact_trace_has_no_spread(void **state)
{
	(void)state;
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	tb_chunk(&b, 1);
	tb_alloc(&b, HW_KIND_MALLOC, 1, 0x1000, 100, 1);
	tb_trailer(&b, 2, 1, 0, 1);
	struct analysis a;
	replay_built(&b, NULL, &a);
	struct spread_fig f;
	site_spread_fig(&a, 0, &f);
	assert_true(f.peak_var == 0 && f.peak_n == 0 && f.alloc_n == 0);
	assert_null(a.spread);
	analysis_free(&a);
}

/* A SAMPLE record with no interval is not one: the chunk stops there. */
static void sample_record_without_interval(void **state)
{
	(void)state;
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	tb_chunk(&b, 1);
	uint8_t rec[] = {HW_REC_SAMPLE, 1, 0};
	tb_raw(&b, rec, sizeof(rec));
	tb_alloc(&b, HW_KIND_MALLOC, 2, 0x1000, 100, 1);
	struct analysis a;
	replay_built(&b, NULL, &a);
	assert_int_equal(a.sample_interval, 0);
	assert_int_equal(a.kinds[HW_KIND_MALLOC].allocs, 0);
	analysis_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(peak_snapshot_per_callsite),
		cmocka_unit_test(retag_moves_a_live_block),
		cmocka_unit_test(merge_orders_threads_and_realloc_halves),
		cmocka_unit_test(mappings_and_anomalies),
		cmocka_unit_test(temporaries_per_thread),
		cmocka_unit_test(window_counts_only_blocks_inside),
		cmocka_unit_test(followed_trace_grows),
		cmocka_unit_test(one_unmap_of_many_mappings),
		cmocka_unit_test(mapping_split_by_holes_is_one_block),
		cmocka_unit_test(python_without_frames_leaks_natively),
		cmocka_unit_test(modules_by_the_time_of_the_stack),
		cmocka_unit_test(one_library_at_two_addresses),
		cmocka_unit_test(sampled_blocks_are_weighed),
		cmocka_unit_test(sample_weights_are_unbiased),
		cmocka_unit_test(sample_record_without_interval),
		cmocka_unit_test(sampled_spread_per_site),
		cmocka_unit_test(exact_trace_has_no_spread),
		cmocka_unit_test(hostile_interval_spread),
		cmocka_unit_test(tree_combined_spread),
		cmocka_unit_test(tick_spread_survives_merging),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
