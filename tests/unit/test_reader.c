/* analyzer/reader.c: a good trace decodes record by record; bad headers are
 * refused with the right error; damaged and cut chunks stop at the first bad
 * record and mark the trace damaged without losing what came before. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "heapwise/varint.h"
#include "merge.h"
#include "reader.h"
#include "trace_builder.h"

static char path[64];

static int setup(void **state)
{
	(void)state;
	snprintf(path, sizeof(path), "/tmp/hw-test-reader-%d.hwt", (int)getpid());
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

static size_t count_records(struct trace *t, size_t chunk, enum read_result *last)
{
	struct cursor c;
	struct hw_record r;
	size_t n = 0;
	cursor_init(&c, t, chunk);
	while ((*last = cursor_next(&c, &r)) == READ_RECORD)
		n++;
	return n;
}

static void decodes_every_kind(void **state)
{
	(void)state;
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "prog\0arg", 8);
	tb_chunk(&b, 11);
	tb_time(&b, 5);
	tb_module(&b, 1, 0x1000, 0x1000, 0x2000, "/bin/prog");
	tb_stack(&b, 1, 0, 0x1234);
	tb_alloc(&b, HW_KIND_MALLOC, 1, 0x5000, 100, 1);
	tb_realloc(&b, 2, 3, 0x5000, 0x4000, 200, 1);
	tb_free(&b, HW_KIND_MALLOC, 4, 0x4000);
	tb_alloc(&b, HW_KIND_MMAP, 5, 0x7000, 8192, 1);
	tb_remap(&b, 6, 7, 0x7000, 8192, 0x9000, 16384, 1);
	tb_unmap(&b, 8, 0x9000, 16384);
	tb_rss(&b, 6, 1 << 20);
	tb_trailer(&b, 9, 7, 3, 2);
	assert_int_equal(tb_write(&b, path), 0);
	tb_free_builder(&b);

	struct trace t;
	assert_int_equal(trace_open(path, &t), HW_OK);
	assert_int_equal(t.nchunks, 1);
	assert_int_equal(t.chunks[0].thread, 11);
	assert_string_equal(t.cmdline, "prog arg");
	struct cursor c;
	struct hw_record r;
	cursor_init(&c, &t, 0);
	assert_int_equal(cursor_next(&c, &r), READ_RECORD);
	assert_int_equal(r.tag, HW_REC_TIME);
	assert_int_equal(cursor_next(&c, &r), READ_RECORD);
	assert_int_equal(r.tag, HW_REC_MODULE);
	assert_int_equal(r.path_len, 9);
	assert_memory_equal(r.path, "/bin/prog", 9);
	assert_int_equal(cursor_next(&c, &r), READ_RECORD);
	assert_int_equal(r.tag, HW_REC_STACK);
	assert_int_equal(r.frame, 0x1234);
	assert_int_equal(cursor_next(&c, &r), READ_RECORD);
	assert_int_equal(r.tag, HW_REC_ALLOC);
	assert_int_equal(r.addr, 0x5000);
	assert_int_equal(r.size, 100);
	assert_int_equal(r.time_ns, 5);
	assert_int_equal(cursor_next(&c, &r), READ_RECORD);
	assert_int_equal(r.tag, HW_REC_REALLOC);
	assert_int_equal(r.seq, 2);
	assert_int_equal(r.seq2, 3);
	assert_int_equal(r.addr, 0x5000);
	assert_int_equal(r.addr2, 0x4000);
	assert_int_equal(cursor_next(&c, &r), READ_RECORD);
	assert_int_equal(r.tag, HW_REC_FREE);
	assert_int_equal(r.addr, 0x4000);
	assert_int_equal(cursor_next(&c, &r), READ_RECORD);
	assert_int_equal(r.kind, HW_KIND_MMAP);
	assert_int_equal(cursor_next(&c, &r), READ_RECORD);
	assert_int_equal(r.tag, HW_REC_REMAP);
	assert_int_equal(r.size, 8192);
	assert_int_equal(r.size2, 16384);
	assert_int_equal(r.addr2, 0x9000);
	assert_int_equal(cursor_next(&c, &r), READ_RECORD);
	assert_int_equal(r.tag, HW_REC_UNMAP);
	assert_int_equal(cursor_next(&c, &r), READ_RECORD);
	assert_int_equal(r.rss, 1 << 20);
	assert_int_equal(cursor_next(&c, &r), READ_RECORD);
	assert_int_equal(r.tag, HW_REC_TRAILER);
	assert_int_equal(r.allocs, 3);
	assert_int_equal(cursor_next(&c, &r), READ_END);
	assert_false(t.damaged);
	trace_close(&t);
}

static void write_bytes(const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	fwrite(p, 1, n, f);
	fclose(f);
}

static void bad_headers(void **state)
{
	(void)state;
	struct trace t;
	assert_int_equal(trace_open("/nonexistent/x.hwt", &t), HW_ERR_OPEN);
	trace_close(&t);
	write_bytes("hello", 5);
	assert_int_equal(trace_open(path, &t), HW_ERR_NOT_TRACE);
	trace_close(&t);
	char junk[HW_HEADER_SIZE] = "NOTATRACE";
	write_bytes(junk, sizeof(junk));
	assert_int_equal(trace_open(path, &t), HW_ERR_NOT_TRACE);
	trace_close(&t);

	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	((struct hw_file_header *)b.buf)->version = 99;
	tb_write(&b, path);
	assert_int_equal(trace_open(path, &t), HW_ERR_VERSION);
	trace_close(&t);
	((struct hw_file_header *)b.buf)->version = HW_FORMAT_VERSION;
	((struct hw_file_header *)b.buf)->chunk_size = 7;
	tb_write(&b, path);
	assert_int_equal(trace_open(path, &t), HW_ERR_HEADER);
	trace_close(&t);
	((struct hw_file_header *)b.buf)->chunk_size = HW_MIN_CHUNK_SIZE;
	((struct hw_file_header *)b.buf)->cmdline_len = 1u << 30;
	tb_write(&b, path);
	assert_int_equal(trace_open(path, &t), HW_ERR_HEADER);
	trace_close(&t);
	tb_free_builder(&b);
}

static void damaged_record_keeps_prefix(void **state)
{
	(void)state;
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	tb_chunk(&b, 1);
	tb_alloc(&b, HW_KIND_MALLOC, 1, 0x1000, 10, 0);
	tb_alloc(&b, HW_KIND_MALLOC, 2, 0x2000, 10, 0);
	const uint8_t bad[] = {0x7e, 0x01, 0x02};
	tb_raw(&b, bad, sizeof(bad));
	tb_alloc(&b, HW_KIND_MALLOC, 3, 0x3000, 10, 0);
	tb_chunk(&b, 2);
	const uint8_t bad_kind[] = {HW_REC_ALLOC | 7, 0x01, 0x01}; /* kind 7 does not exist */
	tb_raw(&b, bad_kind, sizeof(bad_kind));
	tb_write(&b, path);
	tb_free_builder(&b);
	struct trace t;
	assert_int_equal(trace_open(path, &t), HW_OK);
	enum read_result last;
	assert_int_equal(count_records(&t, 0, &last), 2);
	assert_int_equal(last, READ_BAD);
	assert_int_equal(count_records(&t, 1, &last), 0);
	assert_int_equal(last, READ_BAD);
	assert_true(t.damaged);
	trace_close(&t);
}

static void cut_file_reads_what_is_there(void **state)
{
	(void)state;
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	tb_chunk(&b, 1);
	for (int i = 0; i < 100; i++)
		tb_alloc(&b, HW_KIND_MALLOC, (uint64_t)i + 1, 0x1000 + (uint64_t)i * 16, 16, 0);
	size_t half = b.size - 150; /* cut inside the records */
	tb_write(&b, path);
	assert_int_equal(truncate(path, (off_t)half), 0);
	tb_free_builder(&b);
	struct trace t;
	assert_int_equal(trace_open(path, &t), HW_OK);
	assert_true(t.damaged);
	enum read_result last;
	size_t n = count_records(&t, 0, &last);
	assert_true(n > 50 && n < 100);
	trace_close(&t);
	/* cut inside the header: refused */
	assert_int_equal(truncate(path, 100), 0);
	assert_int_equal(trace_open(path, &t), HW_ERR_HEADER);
	trace_close(&t);
}

static void no_def(void *ctx, const struct cursor *c, const struct hw_record *r)
{
	(void)ctx, (void)c, (void)r;
}

/* Format 2 traces of a Python program with a daemon thread: CPython's
 * finalization mark was written before the free (and the realloc) that saw
 * it, whose numbers were taken first, so their deltas wrapped around. They
 * are read, in sequence order, and the chunk goes on. */
static void old_finalize_mark_before_older_free(void **state)
{
	(void)state;
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	tb_chunk(&b, 1);
	tb_alloc(&b, HW_KIND_PYOBJ, 1, 0x1000, 10, 0);
	tb_alloc(&b, HW_KIND_PYOBJ, 2, 0x2000, 20, 0);
	tb_mark(&b, 5, HW_MARK_PY_FINALIZE, "python-finalize");
	tb_free(&b, HW_KIND_PYOBJ, 4, 0x1000); /* delta 4 - 5 wraps */
	tb_alloc(&b, HW_KIND_PYOBJ, 7, 0x3000, 30, 0);
	tb_mark(&b, 9, HW_MARK_PY_FINALIZE, "python-finalize");
	tb_realloc(&b, 8, 10, 0x2000, 0x4000, 40, 0); /* free half before the mark */
	tb_trailer(&b, 13, 1, 4, 2);
	tb_chunk(&b, 2);
	tb_alloc(&b, HW_KIND_MALLOC, 3, 0x9000, 1, 0);
	tb_free(&b, HW_KIND_MALLOC, 6, 0x9000);
	tb_alloc(&b, HW_KIND_MALLOC, 11, 0xa000, 1, 0);
	tb_free(&b, HW_KIND_MALLOC, 12, 0xa000);
	tb_write(&b, path);
	tb_free_builder(&b);
	struct trace t;
	assert_int_equal(trace_open(path, &t), HW_OK);
	struct merge *m = merge_new(&t, no_def, NULL);
	const struct hw_event *ev;
	size_t n;
	uint64_t want = 1;
	int marks = 0, trailers = 0;
	while ((n = merge_batch(m, &ev)) > 0) {
		for (size_t i = 0; i < n; i++) {
			if (ev[i].op == EV_TIME || ev[i].op == EV_THREAD)
				continue;
			assert_int_equal(ev[i].seq, want);
			want++;
			marks += ev[i].op == EV_MARK;
			trailers += ev[i].op == EV_TRAILER;
		}
	}
	merge_free(m);
	assert_int_equal(want, 14);
	assert_int_equal(marks, 2);
	assert_int_equal(trailers, 1);
	assert_false(t.damaged);
	/* record by record (heapwise dump) the chunk is read to its end too */
	enum read_result last;
	assert_int_equal(count_records(&t, 0, &last), 8);
	assert_int_equal(last, READ_END);
	assert_false(t.damaged);
	trace_close(&t);
}

/* Format 2 named threads by OS id, reused by the kernel: two threads with
 * id 7, two chunks each, the second thread after the first in the file.
 * Chained by index they interleaved (the first thread's chunk 1 after the
 * second's chunk 0: its free came after the second thread's allocation at
 * the same address, which it then freed). */
static void old_reused_thread_ids(void **state)
{
	(void)state;
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	((struct hw_file_header *)b.buf)->version = 2;
	tb_chunk_at(&b, 7, 0);
	tb_alloc(&b, HW_KIND_MALLOC, 1, 0x1000, 10, 0);
	tb_chunk_at(&b, 7, 1);
	tb_free(&b, HW_KIND_MALLOC, 2, 0x1000);
	tb_chunk_at(&b, 7, 0);
	tb_alloc(&b, HW_KIND_MALLOC, 3, 0x1000, 20, 0);
	tb_chunk_at(&b, 7, 1);
	tb_free(&b, HW_KIND_MALLOC, 4, 0x1000);
	tb_write(&b, path);
	tb_free_builder(&b);
	struct trace t;
	assert_int_equal(trace_open(path, &t), HW_OK);
	struct merge *m = merge_new(&t, no_def, NULL);
	const struct hw_event *ev;
	size_t n;
	uint64_t want = 1;
	while ((n = merge_batch(m, &ev)) > 0)
		for (size_t i = 0; i < n; i++)
			if (ev[i].op != EV_TIME && ev[i].op != EV_THREAD)
				assert_int_equal(ev[i].seq, want++);
	merge_free(m);
	assert_int_equal(want, 5);
	trace_close(&t);
}

/* One chunk's header and records at p (a slot or a block). */
static uint8_t *raw_chunk(uint8_t *p, uint32_t thread, uint32_t index)
{
	struct hw_chunk_header h = {HW_CHUNK_MAGIC, thread, 0, index};
	memcpy(p, &h, sizeof(h));
	return p + sizeof(h);
}

static void raw_done(uint8_t *chunk, uint8_t *end)
{
	uint32_t used = (uint32_t)(end - chunk - HW_CHUNK_HEADER_SIZE);
	memcpy(chunk + offsetof(struct hw_chunk_header, used), &used, 4);
}

static uint8_t *raw_event(uint8_t *p, uint8_t tag, uint64_t seq_delta, int64_t addr_delta,
			  uint64_t size)
{
	*p++ = tag;
	p = hw_put_varint(p, seq_delta);
	p = hw_put_varint(p, hw_zigzag(addr_delta));
	if ((tag & ~HW_TAG_KIND_MASK) == HW_REC_ALLOC) {
		p = hw_put_varint(p, size);
		p = hw_put_varint(p, 0);
	}
	return p;
}

/* Format 3: slabs of small chunks. Thread 1's chunk 0 in a small slot,
 * chunk 1 in a medium one, chunk 2 a whole block; thread 2 in the next
 * small slot; an unused slot; a slab of a slot size no writer makes. */
static void slabs_and_thread_serials(void **state)
{
	(void)state;
	const uint32_t cs = HW_MIN_CHUNK_SIZE;
	struct tb b;
	tb_init(&b, cs, "x", 1);
	size_t size = HW_HEADER_SIZE + 4 * (size_t)cs;
	uint8_t *f = calloc(1, size);
	memcpy(f, b.buf, HW_HEADER_SIZE);
	tb_free_builder(&b);
	uint8_t *blk[4];
	for (int i = 0; i < 4; i++)
		blk[i] = f + HW_HEADER_SIZE + (size_t)i * cs;
	struct hw_chunk_header slab = {HW_SLAB_MAGIC, HW_SLOT_SMALL, 0, 0};
	memcpy(blk[0], &slab, sizeof(slab));
	uint8_t *s0 = blk[0] + HW_SLAB_HEADER_SIZE, *s1 = s0 + HW_SLOT_SMALL;
	uint8_t *p = raw_chunk(s0, 1, 0);
	*p++ = HW_REC_THREAD;
	p = hw_put_varint(p, 1);
	p = hw_put_varint(p, 4321);
	p = raw_event(p, HW_REC_ALLOC, 1, 0x1000, 10);
	raw_done(s0, p);
	p = raw_event(raw_chunk(s1, 2, 0), HW_REC_ALLOC, 2, 0x3000, 30);
	raw_done(s1, p);
	slab.thread = HW_SLOT_MEDIUM;
	memcpy(blk[1], &slab, sizeof(slab));
	uint8_t *m0 = blk[1] + HW_SLAB_HEADER_SIZE;
	p = raw_event(raw_chunk(m0, 1, 1), HW_REC_FREE, 3, 0x1000, 0);
	raw_done(m0, p);
	p = raw_event(raw_chunk(blk[2], 1, 2), HW_REC_FREE, 4, 0x3000, 0);
	raw_done(blk[2], p);
	struct trace t;
	assert_int_equal(trace_open_buffer(f, size, "slabs", &t), HW_OK);
	assert_int_equal(t.nchunks, 4);
	assert_false(t.damaged);
	struct merge *m = merge_new(&t, no_def, NULL);
	const struct hw_event *ev;
	size_t n;
	uint64_t want = 1;
	uint32_t thread = 0, threads[4];
	while ((n = merge_batch(m, &ev)) > 0) {
		for (size_t i = 0; i < n; i++) {
			if (ev[i].op == EV_THREAD)
				thread = (uint32_t)ev[i].addr;
			if (ev[i].op == EV_TIME || ev[i].op == EV_THREAD)
				continue;
			threads[want - 1] = thread;
			assert_int_equal(ev[i].seq, want++);
		}
	}
	merge_free(m);
	assert_int_equal(want, 5);
	assert_int_equal(threads[0], 1);
	assert_int_equal(threads[1], 2);
	assert_int_equal(threads[2], 1);
	assert_int_equal(threads[3], 1);
	/* THREAD gives the OS id */
	struct cursor c;
	struct hw_record r;
	cursor_init(&c, &t, 0);
	assert_int_equal(cursor_next(&c, &r), READ_RECORD);
	assert_int_equal(r.tag, HW_REC_THREAD);
	assert_int_equal(r.id, 1);
	assert_int_equal(r.os_tid, 4321);
	trace_close(&t);
	/* a slot size no writer makes: that slab is skipped, the trace damaged */
	slab.thread = 100;
	memcpy(blk[3], &slab, sizeof(slab));
	assert_int_equal(trace_open_buffer(f, size, "slabs", &t), HW_OK);
	assert_int_equal(t.nchunks, 4);
	assert_true(t.damaged);
	trace_close(&t);
	/* format 2 has no slabs */
	((struct hw_file_header *)f)->version = 2;
	assert_int_equal(trace_open_buffer(f, size, "slabs", &t), HW_OK);
	assert_int_equal(t.nchunks, 1);
	trace_close(&t);
	free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(decodes_every_kind),
		cmocka_unit_test(bad_headers),
		cmocka_unit_test(damaged_record_keeps_prefix),
		cmocka_unit_test(cut_file_reads_what_is_there),
		cmocka_unit_test(old_finalize_mark_before_older_free),
		cmocka_unit_test(old_reused_thread_ids),
		cmocka_unit_test(slabs_and_thread_serials),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
