/* analyzer/reader.c: a good trace decodes record by record; bad headers are
 * refused with the right error; damaged and cut chunks stop at the first bad
 * record and mark the trace damaged without losing what came before. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>
#include <cmocka.h>

#include "heapwise/varint.h"
#include "cols.h"
#include "compress.h"
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
	cursor_done(&c);
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

/* The header's stop record (trace_format.h): zeros (every older trace) read
 * as not stopped; a record reads as its reason and time; a record the
 * header's text reaches into (an older trace with a long command line) and a
 * wrong magic are ignored. */
static void stop_record(void **state)
{
	(void)state;
	struct trace t;
	char buf[400];
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	tb_chunk(&b, 1);
	tb_alloc(&b, HW_KIND_MALLOC, 1, 0x1000, 10, 0);
	tb_write(&b, path);
	assert_int_equal(trace_open(path, &t), HW_OK);
	assert_int_equal(t.stop.reason, 0);
	assert_null(trace_stop_note(&t, buf, sizeof(buf)));
	assert_null(trace_stop_code(&t));
	trace_close(&t);

	struct hw_stop_record r = {HW_STOP_MAGIC, HW_STOP_SIZE_CAP, 1500000000ull, 2u << 20, 4242};
	memcpy(b.buf + HW_STOP_OFFSET, &r, sizeof(r));
	tb_write(&b, path);
	assert_int_equal(trace_open(path, &t), HW_OK);
	assert_int_equal(t.stop.reason, HW_STOP_SIZE_CAP);
	assert_string_equal(trace_stop_note(&t, buf, sizeof(buf)),
			    "recording stopped at 1.500 s: the trace reached its size cap "
			    "(HEAPWISE_MAX_SIZE, 2.0 MiB): figures are up to then");
	assert_string_equal(trace_stop_code(&t), "size_cap");
	trace_close(&t);

	r.reason = HW_STOP_REOPEN;
	r.value = EACCES;
	memcpy(b.buf + HW_STOP_OFFSET, &r, sizeof(r));
	tb_write(&b, path);
	assert_int_equal(trace_open(path, &t), HW_OK);
	assert_non_null(strstr(trace_stop_note(&t, buf, sizeof(buf)),
			       ": the trace file could not be reopened (Permission denied): "));
	assert_string_equal(trace_stop_code(&t), "reopen_failed");
	trace_close(&t);

	/* an older trace's text reaching into the record's bytes */
	((struct hw_file_header *)b.buf)->cmdline_len = HW_STOP_OFFSET - HW_HEADER_FIXED_SIZE + 1;
	tb_write(&b, path);
	assert_int_equal(trace_open(path, &t), HW_OK);
	assert_int_equal(t.stop.reason, 0);
	trace_close(&t);
	((struct hw_file_header *)b.buf)->cmdline_len = 1;
	r.magic = 0;
	memcpy(b.buf + HW_STOP_OFFSET, &r, sizeof(r));
	tb_write(&b, path);
	assert_int_equal(trace_open(path, &t), HW_OK);
	assert_int_equal(t.stop.reason, 0);
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
/* The four events of slabs_and_thread_serials' trace, in order, each on
 * its thread. */
static void check_slab_events(const struct trace *t)
{
	struct merge *m = merge_new(t, no_def, NULL);
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
}

/* The trace t compressed by compress_to_fd (HEAPWISE_ANALYZER_THREADS as
 * threads says, NULL: unset), its bytes in *out. */
static size_t compress_with(const struct trace *t, const char *threads, uint8_t **out,
			    struct compress_stats *st)
{
	if (threads)
		setenv("HEAPWISE_ANALYZER_THREADS", threads, 1);
	else
		unsetenv("HEAPWISE_ANALYZER_THREADS");
	int fd = memfd_create("two-threads", MFD_CLOEXEC);
	assert_true(fd >= 0);
	memset(st, 0, sizeof(*st));
	assert_int_equal(compress_to_fd(t, fd, 3, st), 0);
	unsetenv("HEAPWISE_ANALYZER_THREADS");
	off_t n = lseek(fd, 0, SEEK_END);
	assert_true(n > 0);
	*out = malloc((size_t)n);
	assert_int_equal(pread(fd, *out, (size_t)n, 0), n);
	close(fd);
	return (size_t)n;
}

/* `heapwise compress` on two threads (issue 17): the second compresses the
 * chunks before the first's (up to ZBATCH at a time: runs of 3, 1 and 2
 * blocks, then one of 30 that takes whole and part batches), and the file
 * is byte for byte the one a single thread writes, chunks in file order,
 * also around a zero block, a damaged chunk and a chunk cut by the end of
 * the file. */
static void compress_two_threads_as_one(void **state)
{
	(void)state;
	const uint32_t cs = HW_MIN_CHUNK_SIZE;
	const int nblk = 40;
	struct tb b;
	tb_init(&b, cs, "x", 1);
	size_t size = HW_HEADER_SIZE + (size_t)nblk * cs - cs / 2; /* the last one cut */
	uint8_t *f = calloc(1, HW_HEADER_SIZE + (size_t)nblk * cs);
	memcpy(f, b.buf, HW_HEADER_SIZE);
	tb_free_builder(&b);
	for (int i = 0; i < nblk; i++) {
		uint8_t *blk = f + HW_HEADER_SIZE + (size_t)i * cs;
		if (i == 3 || i == 9)
			continue; /* a zero block */
		uint8_t *p = raw_chunk(blk, 1 + (uint32_t)i % 3, (uint32_t)i);
		/* each chunk its own events: the outputs of two chunks swapped differ */
		for (int k = 0; k < 40 + 13 * i && p + 64 < blk + cs; k++) {
			p = raw_event(p, HW_REC_ALLOC, 1, 48 * (k + i), (size_t)(16 + 8 * (k % 5) + i));
			if (k % 3 == 2)
				p = raw_event(p, HW_REC_FREE, 1, -48, 0);
		}
		raw_done(blk, p);
		if (i == 5) /* a damaged header: says more than the chunk holds */
			memcpy(blk + offsetof(struct hw_chunk_header, used), &(uint32_t){cs}, 4);
	}
	struct trace t;
	assert_int_equal(trace_open_buffer(f, size, "two", &t), HW_OK);
	struct compress_stats one, two;
	uint8_t *z1, *z2;
	size_t n1 = compress_with(&t, "1", &z1, &one);
	size_t n2 = compress_with(&t, NULL, &z2, &two);
	assert_int_equal(one.chunks2, 0);
	if (sysconf(_SC_NPROCESSORS_ONLN) >= 2)
		assert_true(two.chunks2 >= 10); /* 0, 6, and half of 10-39 */
	assert_int_equal(one.chunks, 37); /* 0-2, 4, 6-8, 10-39 (39 cut) */
	assert_int_equal(two.chunks, one.chunks);
	assert_int_equal(two.chunks_raw, one.chunks_raw);
	assert_int_equal(n1, n2);
	assert_memory_equal(z1, z2, n1);
	trace_close(&t);
	free(z1);
	free(z2);
	free(f);
}

/* Blocks that are not chunks (magic 0): only an all-zero one is left out
 * of the compressed file; one with a byte set anywhere, the last byte or
 * the second, is copied as it was. */
static void compress_drops_only_zero_blocks(void **state)
{
	(void)state;
	const uint32_t cs = HW_MIN_CHUNK_SIZE;
	const int nblk = 6;
	struct tb b;
	tb_init(&b, cs, "x", 1);
	size_t size = HW_HEADER_SIZE + (size_t)nblk * cs;
	uint8_t *f = calloc(1, size);
	memcpy(f, b.buf, HW_HEADER_SIZE);
	tb_free_builder(&b);
	for (int i = 0; i < nblk; i += 5) { /* chunks 0 and 5 */
		uint8_t *blk = f + HW_HEADER_SIZE + (size_t)i * cs;
		uint8_t *p = raw_chunk(blk, 1, (uint32_t)i);
		for (int k = 0; k < 50; k++)
			p = raw_event(p, HW_REC_ALLOC, 1, 48 * k, 32);
		raw_done(blk, p);
	}
	/* block 1 all zero; 2: its last byte set; 3: its second; 4: its
	 * middle one */
	f[HW_HEADER_SIZE + 3 * (size_t)cs - 1] = 7;
	f[HW_HEADER_SIZE + 3 * (size_t)cs + 1] = 1;
	f[HW_HEADER_SIZE + 4 * (size_t)cs + cs / 2] = 0x80;
	struct trace t;
	assert_int_equal(trace_open_buffer(f, size, "zero", &t), HW_OK);
	struct compress_stats st;
	uint8_t *z;
	size_t n = compress_with(&t, "1", &z, &st);
	assert_int_equal(st.chunks, 2);
	assert_int_equal(st.chunks_raw, 3);
	for (int i = 2; i <= 4; i++) {
		const uint8_t *blk = f + HW_HEADER_SIZE + (size_t)i * cs;
		assert_non_null(memmem(z, n, blk, cs));
	}
	trace_close(&t);
	free(z);
	free(f);
}

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
	check_slab_events(&t);
	/* compressed (issue 17): each slot becomes a compressed chunk of its
	 * own, the slabs go, and it reads the same */
	int zfd = memfd_create("slabs-z", MFD_CLOEXEC);
	assert_true(zfd >= 0);
	struct compress_stats st = {0};
	assert_int_equal(compress_to_fd(&t, zfd, 3, &st), 0);
	assert_int_equal(st.chunks, 4);
	assert_int_equal(st.chunks_raw, 0);
	off_t zsize = lseek(zfd, 0, SEEK_END);
	assert_true(zsize > 0 && zsize < (off_t)(HW_HEADER_SIZE + cs));
	uint8_t *zf = malloc((size_t)zsize);
	assert_int_equal(pread(zfd, zf, (size_t)zsize, 0), zsize);
	close(zfd);
	struct trace zt;
	assert_int_equal(trace_open_buffer(zf, (size_t)zsize, "slabs-z", &zt), HW_OK);
	assert_int_equal(zt.nchunks, 4);
	assert_int_equal(zt.ncompressed, 4);
	assert_false(zt.damaged);
	check_slab_events(&zt);
	trace_close(&zt);
	free(zf);
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

/* --- compressed chunks (issue 17) ---------------------------------------- */

static uint8_t *slurp(const char *p, size_t *n)
{
	FILE *f = fopen(p, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	*n = (size_t)ftell(f);
	rewind(f);
	uint8_t *d = malloc(*n + 1);
	assert_int_equal(fread(d, 1, *n, f), *n);
	fclose(f);
	return d;
}

/* The definitions the merge passes (on its decoding thread), as text. */
struct defs_text {
	char *s;
	size_t len, cap;
};

static void defs_def(void *ctx, const struct cursor *c, const struct hw_record *r)
{
	struct defs_text *d = ctx;
	if (d->cap - d->len < 512) {
		d->cap = d->cap ? d->cap * 2 : 4096;
		d->s = realloc(d->s, d->cap);
	}
	if (!r) /* the event after them */
		d->len += (size_t)snprintf(d->s + d->len, d->cap - d->len, "then %llu\n",
					   (unsigned long long)c->ev[0].seq);
	else
		d->len += (size_t)snprintf(
			d->s + d->len, d->cap - d->len,
			"def %u/%u kind %u id %llu parent %llu frame %u:%llx seq %llu time %llu "
			"after %llu path %zu name %zu blob %zu\n",
			r->tag, r->raw_tag, r->kind, (unsigned long long)r->id,
			(unsigned long long)r->parent, r->frame_kind, (unsigned long long)r->frame,
			(unsigned long long)r->seq, (unsigned long long)r->time_ns,
			(unsigned long long)c->last_seq, r->path_len, r->name_len, r->blob_len);
}

/* Every event of a trace, in merge order, as text (MARK labels included),
 * then the definitions (STACK, CODE, MODULE... records) the merge passed,
 * each with the sequence number before it and after them. */
static char *events_text(const char *p)
{
	struct trace t;
	assert_int_equal(trace_open(p, &t), HW_OK);
	struct defs_text defs = {0};
	struct merge *m = merge_new(&t, defs_def, &defs);
	size_t cap = 1 << 16, len = 0;
	char *out = malloc(cap);
	const struct hw_event *ev;
	size_t n;
	while ((n = merge_batch(m, &ev)) > 0) {
		for (size_t i = 0; i < n; i++) {
			if (cap - len < 512) {
				cap *= 2;
				out = realloc(out, cap);
			}
			if (ev[i].op == EV_MARK)
				len += (size_t)snprintf(out + len, cap - len, "mark %.*s\n", (int)ev[i].size,
							(const char *)(uintptr_t)ev[i].addr);
			else
				len += (size_t)snprintf(out + len, cap - len, "%d %llu %llx %llu %u\n", ev[i].op,
							(unsigned long long)ev[i].seq,
							(unsigned long long)ev[i].addr,
							(unsigned long long)ev[i].size, ev[i].stack);
		}
	}
	merge_free(m); /* the decoding thread is done with defs */
	trace_close(&t);
	out = realloc(out, len + defs.len + 4);
	memcpy(out + len, "--\n", 3);
	len += 3;
	if (defs.len)
		memcpy(out + len, defs.s, defs.len);
	len += defs.len;
	free(defs.s);
	out[len] = 0;
	return out;
}

/* Two threads, three chunks each, a mark: a raw trace of 7 blocks. */
static void build_threads(const char *p)
{
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	uint64_t seq = 1;
	for (int c = 0; c < 3; c++)
		for (uint32_t tid = 1; tid <= 2; tid++) {
			tb_chunk(&b, tid);
			memcpy(b.buf + b.chunk_off + 12, &(uint32_t){(uint32_t)c}, 4); /* index */
			tb_time(&b, seq * 10);
			/* first in its chunk: the next chunk's records, decompressed
			 * into the same buffer, cover the label */
			if (c == 1 && tid == 2)
				tb_mark(&b, seq++, HW_MARK_USER, "the label");
			for (int i = 0; i < 500; i++, seq++)
				tb_alloc(&b, HW_KIND_MALLOC, seq, 0x10000 + seq * 32, 24 + (seq % 7), 0);
			uint32_t used = (uint32_t)(b.size - b.chunk_off - HW_CHUNK_HEADER_SIZE);
			memcpy(b.buf + b.chunk_off + 8, &used, 4);
		}
	tb_chunk(&b, 3); /* an unused block at the end: claimed, never written */
	memset(b.buf + b.chunk_off, 0, HW_CHUNK_HEADER_SIZE);
	tb_write(&b, p);
	tb_free_builder(&b);
}

static void compressed_reads_the_same(void **state)
{
	(void)state;
	build_threads(path);
	char *raw = events_text(path);
	struct stat st0;
	assert_int_equal(stat(path, &st0), 0);
	struct compress_stats cs;
	assert_int_equal(compress_trace(path, 3, true, &cs), COMPRESS_DONE);
	assert_int_equal(cs.chunks, 6);
	struct stat st1;
	assert_int_equal(stat(path, &st1), 0);
	assert_true(st1.st_size < st0.st_size / 4);
	assert_int_equal(st1.st_mode & 0777, st0.st_mode & 0777);
	struct trace t;
	assert_int_equal(trace_open(path, &t), HW_OK);
	assert_int_equal(t.nchunks, 6);
	assert_int_equal(t.ncompressed, 6);
	assert_false(t.damaged);
	trace_close(&t);
	char *packed = events_text(path);
	assert_string_equal(raw, packed);
	assert_non_null(strstr(packed, "mark the label\n"));
	/* a second time: nothing to do, the file is not touched */
	assert_int_equal(compress_trace(path, 3, true, &cs), COMPRESS_ALREADY);
	struct stat st2;
	assert_int_equal(stat(path, &st2), 0);
	assert_int_equal(st2.st_ino, st1.st_ino);
	free(raw);
	free(packed);
}

/* One thread, four chunks of short-form records: with reverse, blocks made
 * one after another and freed newest first (a list built and dropped:
 * c_large_buffers), whose column streams come to more bytes than the
 * records (a reference per free, a hint per ALLOC); else two blocks made
 * and freed again and again at far-apart addresses, whose streams are
 * smaller (hints where the records hold long address deltas). */
static void build_reuse(const char *p, bool reverse)
{
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	b.short_forms = true;
	uint64_t seq = 1;
	for (uint32_t c = 0; c < 4; c++) {
		tb_chunk_at(&b, 1, c);
		tb_time(&b, seq * 10);
		for (int r = 0; r < 2; r++) {
			if (reverse) {
				for (int i = 0; i < 800; i++)
					tb_alloc(&b, HW_KIND_PYOBJ, seq++, 0x7f0000100000 + 32 * (uint64_t)i, 28, 5);
				for (int i = 800; i-- > 0;)
					tb_free(&b, HW_KIND_PYOBJ, seq++, 0x7f0000100000 + 32 * (uint64_t)i);
			} else {
				for (int i = 0; i < 250; i++) {
					tb_alloc(&b, HW_KIND_PYOBJ, seq++, 0x7f0000100000, 28, 5);
					tb_alloc(&b, HW_KIND_PYOBJ, seq++, 0x7f0000900000, 4000, 6);
					tb_free(&b, HW_KIND_PYOBJ, seq++, 0x7f0000100000);
					tb_free(&b, HW_KIND_PYOBJ, seq++, 0x7f0000900000);
				}
			}
		}
		uint32_t used = (uint32_t)(b.size - b.chunk_off - HW_CHUNK_HEADER_SIZE);
		assert_true(used <= HW_MIN_CHUNK_SIZE - HW_CHUNK_HEADER_SIZE);
		memcpy(b.buf + b.chunk_off + 8, &used, 4);
	}
	tb_write(&b, p);
	tb_free_builder(&b);
}

/* compress stores records whose column streams are bigger than the records
 * as plain zstd frames, which the analyzer reads faster than the columns
 * (compress.c, plain_reads_faster), and keeps the columns of others; both
 * read back the events the raw trace holds. */
static void compress_keeps_plain_where_columns_read_slower(void **state)
{
	(void)state;
	for (int reverse = 0; reverse <= 1; reverse++) {
		build_reuse(path, reverse);
		char *raw = events_text(path);
		struct compress_stats cs;
		assert_int_equal(compress_trace(path, 3, true, &cs), COMPRESS_DONE);
		assert_int_equal(cs.chunks, 4);
		struct trace t;
		assert_int_equal(trace_open(path, &t), HW_OK);
		assert_int_equal(t.nchunks, 4);
		for (size_t i = 0; i < t.nchunks; i++) {
			assert_true(t.chunks[i].zlen > 0);
			if (reverse) { /* plain frames */
				assert_false(t.chunks[i].cols);
				assert_int_equal(t.chunks[i].gk, 0);
			} else { /* one group */
				assert_true(t.chunks[i].cols);
				assert_int_equal(t.chunks[i].gk, 4);
			}
		}
		assert_false(t.damaged);
		trace_close(&t);
		char *packed = events_text(path);
		assert_string_equal(raw, packed);
		free(raw);
		free(packed);
	}
}

static char *events_and_warnings(const char *p, bool *damaged);

/* Every compressed chunk `heapwise compress` writes (a plain frame, a
 * column chunk, a group) ends in its seal and its frames carry no checksum
 * of their own; a byte changed anywhere in its payload makes the chunk a
 * damaged one, said once, as a frame's own checksum did. */
static void compressed_chunks_are_sealed(void **state)
{
	(void)state;
	bool seen[3] = {false, false, false}; /* plain, columns, group */
	for (int kind = 0; kind < 3; kind++) {
		if (kind < 2)
			build_reuse(path, kind == 0);
		else
			build_threads(path);
		struct compress_stats cs;
		assert_int_equal(compress_trace(path, 3, true, &cs), COMPRESS_DONE);
		size_t n;
		uint8_t *file = slurp(path, &n);
		struct trace t;
		assert_int_equal(trace_open(path, &t), HW_OK);
		size_t nch = t.nchunks;
		struct chunk_ref ch[8];
		assert_true(nch <= 8);
		memcpy(ch, t.chunks, nch * sizeof(*ch));
		trace_close(&t);
		for (size_t i = 0; i < nch; i++) {
			if (ch[i].gk && ch[i].gj) /* a group's later chunks: its first's payload */
				continue;
			const uint8_t *pay = file + ch[i].offset + HW_ZCHUNK_HEADER_SIZE;
			assert_true(ch[i].zlen > 2 * HW_ZSEAL_SIZE);
			seen[ch[i].gk ? 2 : ch[i].cols ? 1 : 0] = true;
			assert_null(cols_seal_broken(pay, ch[i].zlen));
			uint32_t magic;
			memcpy(&magic, pay + ch[i].zlen - HW_ZSEAL_SIZE, 4);
			assert_int_equal(magic, 0x184D2A5Eu); /* a zstd skippable frame */
			if (!ch[i].cols) /* the frame header's descriptor: no Content_Checksum_flag */
				assert_int_equal(pay[4] & 0x04, 0);
			/* a byte of the payload changed: the chunk is damaged */
			uint8_t *bad = malloc(n);
			memcpy(bad, file, n);
			bad[ch[i].offset + HW_ZCHUNK_HEADER_SIZE + ch[i].zlen / 2] ^= 0x04;
			FILE *f = fopen(path, "wb");
			assert_non_null(f);
			assert_int_equal(fwrite(bad, 1, n, f), n);
			fclose(f);
			bool damaged;
			char *out = events_and_warnings(path, &damaged);
			assert_true(damaged);
			char want[160];
			snprintf(want, sizeof(want),
				 "damaged compressed chunk at offset %llu (its checksum does not match its "
				 "bytes); it is skipped",
				 (unsigned long long)ch[i].offset);
			assert_non_null(strstr(out, want));
			free(out);
			free(bad);
		}
		free(file);
	}
	assert_true(seen[0] && seen[1] && seen[2]);
}

/* A file of the header of a small trace and one hand-made compressed chunk. */
static void write_zchunk(uint32_t used_field, uint32_t zlen_field, const void *frame, size_t n,
			 size_t cut)
{
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	fwrite(b.buf, 1, HW_HEADER_SIZE, f);
	struct hw_chunk_header ch = {HW_CHUNK_MAGIC, 1, used_field, 0};
	uint8_t *blob = malloc(HW_ZCHUNK_HEADER_SIZE + n);
	memcpy(blob, &ch, sizeof(ch));
	memcpy(blob + HW_CHUNK_HEADER_SIZE, &zlen_field, 4);
	memcpy(blob + HW_ZCHUNK_HEADER_SIZE, frame, n);
	size_t len = HW_ZCHUNK_HEADER_SIZE + n - cut;
	fwrite(blob, 1, len, f);
	fclose(f);
	free(blob);
	tb_free_builder(&b);
}

/* The records of the only chunk, or -1 when there is none. */
static long read_zchunk(bool *damaged)
{
	struct trace t;
	assert_int_equal(trace_open(path, &t), HW_OK);
	long n = -1;
	if (t.nchunks) {
		enum read_result last;
		n = (long)count_records(&t, 0, &last);
	}
	*damaged = t.damaged;
	trace_close(&t);
	return n;
}

static void hostile_compressed_chunks(void **state)
{
	(void)state;
	/* records: 100 allocations */
	struct tb r;
	tb_init(&r, HW_MIN_CHUNK_SIZE, "x", 1);
	tb_chunk(&r, 1);
	for (int i = 0; i < 100; i++)
		tb_alloc(&r, HW_KIND_MALLOC, (uint64_t)i + 1, 0x1000 + (uint64_t)i * 16, 16, 0);
	const uint8_t *rec = r.buf + r.chunk_off + HW_CHUNK_HEADER_SIZE;
	uint32_t used = (uint32_t)(r.size - r.chunk_off - HW_CHUNK_HEADER_SIZE);
	size_t bound = ZSTD_compressBound(HW_MAX_CHUNK_SIZE);
	uint8_t *z = malloc(bound);
	size_t n = ZSTD_compress(z, bound, rec, used, 3);
	assert_false(ZSTD_isError(n));
	bool damaged;

	write_zchunk(HW_CHUNK_ZSTD | used, (uint32_t)n, z, n, 0); /* the good one */
	assert_int_equal(read_zchunk(&damaged), 100);
	assert_false(damaged);
	/* the size lies: more than the frame holds, less, more than a chunk */
	write_zchunk(HW_CHUNK_ZSTD | (used + 1), (uint32_t)n, z, n, 0);
	assert_int_equal(read_zchunk(&damaged), 0);
	assert_true(damaged);
	write_zchunk(HW_CHUNK_ZSTD | (used - 1), (uint32_t)n, z, n, 0);
	assert_int_equal(read_zchunk(&damaged), 0);
	assert_true(damaged);
	write_zchunk(HW_CHUNK_ZSTD | HW_CHUNK_USED_MASK, (uint32_t)n, z, n, 0);
	assert_int_equal(read_zchunk(&damaged), -1);
	assert_true(damaged);
	/* the compressed length lies: past the end of the file (cut), zero */
	write_zchunk(HW_CHUNK_ZSTD | used, (uint32_t)n + 1, z, n, 0);
	assert_int_equal(read_zchunk(&damaged), -1);
	assert_true(damaged);
	write_zchunk(HW_CHUNK_ZSTD | used, (uint32_t)n, z, n, 1);
	assert_int_equal(read_zchunk(&damaged), -1);
	assert_true(damaged);
	write_zchunk(HW_CHUNK_ZSTD | used, 0, z, 0, 0);
	assert_int_equal(read_zchunk(&damaged), -1);
	assert_true(damaged);
	/* a damaged frame: the checksum (or the decoder) refuses it */
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
	size_t m = ZSTD_compress2(cc, z, bound, rec, used);
	assert_false(ZSTD_isError(m));
	z[m - 1] ^= 0x55;
	write_zchunk(HW_CHUNK_ZSTD | used, (uint32_t)m, z, m, 0);
	assert_int_equal(read_zchunk(&damaged), 0);
	assert_true(damaged);
	/* a bomb: 16 MiB of zeros said to be 1000 bytes of records */
	uint8_t *zeros = calloc(1, HW_MAX_CHUNK_SIZE);
	size_t k = ZSTD_compress(z, bound, zeros, HW_MAX_CHUNK_SIZE, 19);
	assert_false(ZSTD_isError(k));
	write_zchunk(HW_CHUNK_ZSTD | 1000, (uint32_t)k, z, k, 0);
	assert_int_equal(read_zchunk(&damaged), 0);
	assert_true(damaged);
	ZSTD_freeCCtx(cc);
	free(zeros);
	free(z);
	tb_free_builder(&r);
}

/* --- short forms (format 3, issue 17: ALLOC_NEXT, FREE_NEXT) -------------- */

static char *events_and_warnings(const char *p, bool *damaged);

/* The same events in two chunks, in short forms where they apply (sf) or
 * all long: a kind change, a stack that goes down, a sequence gap, a
 * REALLOC and an UNMAP between them, and the restart at a chunk. */
static void short_form_events(struct tb *b, bool sf)
{
	tb_init(b, HW_MIN_CHUNK_SIZE, "x", 1);
	b->short_forms = sf;
	for (uint32_t c = 0; c < 2; c++) {
		tb_chunk_at(b, 1, c);
		tb_time(b, 5 + c);
		uint64_t s = c * 100 + 1;
		tb_alloc(b, HW_KIND_MALLOC, s++, 0x5000, 100, 7); /* chunk 1: s is 101 */
		tb_alloc(b, HW_KIND_PYOBJ, s++, 0x7f0000001000, 32, 9);
		tb_alloc(b, HW_KIND_PYOBJ, s++, 0x7f0000001020, 48, 3); /* stack goes down */
		tb_alloc(b, HW_KIND_PYOBJ, s++, 0x7f0000001040, 48, 4000000000u);
		tb_free(b, HW_KIND_PYOBJ, s++, 0x7f0000001020);
		tb_free(b, HW_KIND_PYOBJ, s + 5, 0x7f0000001000); /* a gap */
		s += 6;
		tb_realloc(b, s, s + 1, 0x5000, 0x6000, 200, 12);
		s += 2;
		tb_alloc(b, HW_KIND_MALLOC, s++, 0x6100, 16, 11); /* 12 - 1 */
		tb_unmap(b, s++, 0x900000, 4096);
		tb_free(b, HW_KIND_MALLOC, s++, 0x6100);
		tb_alloc(b, HW_KIND_MALLOC, s++, 0x6200, 16, 0);
	}
}

/* Short forms read as the long ones (record by record, events in merge
 * order, kinds included), and are what the shim writes where they apply. */
static void short_forms_read_as_long(void **state)
{
	(void)state;
	struct tb b;
	enum read_result last[2];
	size_t nrec[2], nshort = 0, size[2];
	struct hw_record rec[2][64];
	char *ev[2];
	for (int sf = 0; sf < 2; sf++) {
		short_form_events(&b, sf);
		size[sf] = 0;
		for (size_t off = HW_HEADER_SIZE; off < b.size; off += HW_MIN_CHUNK_SIZE)
			size[sf] += ((struct hw_chunk_header *)(b.buf + off))->used;
		tb_write(&b, path);
		tb_free_builder(&b);
		struct trace t;
		assert_int_equal(trace_open(path, &t), HW_OK);
		assert_int_equal(t.nchunks, 2);
		nrec[sf] = 0;
		for (size_t i = 0; i < t.nchunks; i++) {
			struct cursor c;
			cursor_init(&c, &t, i);
			while ((last[sf] = cursor_next(&c, &rec[sf][nrec[sf]])) == READ_RECORD) {
				struct hw_record *r = &rec[sf][nrec[sf]++];
				if (sf)
					nshort += r->raw_tag == HW_REC_ALLOC_NEXT || r->raw_tag == HW_REC_FREE_NEXT;
				else
					assert_true(r->raw_tag != HW_REC_ALLOC_NEXT && r->raw_tag != HW_REC_FREE_NEXT);
			}
			cursor_done(&c);
		}
		assert_false(t.damaged);
		trace_close(&t);
		ev[sf] = events_text(path);
	}
	assert_int_equal(last[1], READ_END);
	assert_int_equal(nrec[0], nrec[1]);
	for (size_t i = 0; i < nrec[0]; i++) {
		const struct hw_record *x = &rec[0][i], *y = &rec[1][i];
		assert_int_equal(x->tag, y->tag);
		assert_int_equal(x->kind, y->kind);
		assert_int_equal(x->seq, y->seq);
		assert_int_equal(x->seq2, y->seq2);
		assert_int_equal(x->addr, y->addr);
		assert_int_equal(x->addr2, y->addr2);
		assert_int_equal(x->size, y->size);
		assert_int_equal(x->stack, y->stack);
		assert_int_equal(x->time_ns, y->time_ns);
	}
	/* per chunk: ALLOC (MALLOC, seq + 1 of 0 in chunk 0 only), the second
	 * and third PYOBJ ALLOC, the first FREE, the ALLOC after the REALLOC,
	 * the FREE and the ALLOC after the UNMAP */
	assert_int_equal(nshort, 13);
	assert_true(size[1] < size[0]);
	assert_string_equal(ev[0], ev[1]);
	free(ev[0]);
	free(ev[1]);
}

/* Short forms that lie: a stack id that leaves 0..2^32-1 after the delta
 * (below 0, over 2^32 - 1), a sequence number that wraps, a cut record:
 * one warning, the records before kept, the rest of the chunk skipped. */
static void hostile_short_forms(void **state)
{
	(void)state;
	static const uint8_t below_zero[] = {HW_REC_ALLOC_NEXT, 0x02, 0x10, 0x01}; /* 0 - 1 */
	static const uint8_t top[] = {HW_REC_ALLOC | HW_KIND_MALLOC, 0x05, 0x02, 0x10, 0xff, 0xff, 0xff, 0xff, 0x0f,
				      HW_REC_ALLOC_NEXT, 0x02, 0x10, 0x02}; /* 2^32 - 1 + 1 */
	/* 2^64 - 2, then + 1: no event takes the last number */
	static const uint8_t wraps[] = {HW_REC_FREE, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
					0x02, HW_REC_FREE_NEXT, 0x02};
	static const uint8_t cut[] = {HW_REC_ALLOC_NEXT, 0x02, 0x10};
	static const uint8_t cut_free[] = {HW_REC_FREE_NEXT};
	struct {
		const uint8_t *b;
		size_t n, good; /* records read before the bad one */
	} cases[] = {{below_zero, sizeof(below_zero), 0}, {top, sizeof(top), 1}, {wraps, sizeof(wraps), 1},
		     {cut, sizeof(cut), 0}, {cut_free, sizeof(cut_free), 0}};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct tb b;
		tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
		b.short_forms = true;
		tb_chunk(&b, 1);
		tb_alloc(&b, HW_KIND_MALLOC, 1, 0x1000, 10, 2);
		tb_free(&b, HW_KIND_MALLOC, 2, 0x1000);
		tb_chunk_at(&b, 1, 1); /* the bases restart here */
		tb_raw(&b, cases[k].b, cases[k].n);
		tb_write(&b, path);
		tb_free_builder(&b);
		struct trace t;
		assert_int_equal(trace_open(path, &t), HW_OK);
		enum read_result last;
		assert_int_equal(count_records(&t, 0, &last), 2);
		assert_int_equal(last, READ_END);
		assert_false(t.damaged);
		assert_int_equal(count_records(&t, 1, &last), cases[k].good);
		assert_int_equal(last, READ_BAD);
		assert_true(t.damaged);
		trace_close(&t);
		/* the replay: the same, one warning */
		bool damaged;
		char *out = events_and_warnings(path, &damaged);
		assert_true(damaged);
		assert_non_null(strstr(out, "damaged record at offset"));
		free(out);
	}
}

/* --- column chunks (issue 17, HW_CHUNK_COLS) ----------------------------- */

/* Records of every kind the columns split: allocations, frees of blocks
 * of this chunk and of no known block, reallocs, stacks, the others. */
static void column_records(struct tb *r)
{
	tb_init(r, HW_MIN_CHUNK_SIZE, "x", 1);
	tb_chunk(r, 1);
	tb_time(r, 5);
	uint64_t seq = 1;
	for (uint32_t s = 1; s <= 20; s++)
		tb_stack(r, s, s - 1, 0x400000 + s * 8);
	tb_pystack(r, 21, 3, 7, 12);
	for (int i = 0; i < 300; i++) {
		r->short_forms = i >= 150; /* format 3's short forms in the second half */
		uint64_t a = 0x7f0000001000 + (uint64_t)(i % 50) * 64 + (uint64_t)(i / 50) * 0x10000;
		tb_alloc(r, i % 3 ? HW_KIND_PYOBJ : HW_KIND_MALLOC, seq++, a, 32 + (i % 5) * 16,
			 (uint32_t)(i % 21) + 1);
		if (i % 4 == 3)
			tb_free(r, HW_KIND_PYOBJ, seq++, a - 64);
		if (i % 17 == 0)
			tb_free(r, HW_KIND_MALLOC, seq++, 0x5000 + (uint64_t)i); /* not allocated here */
		if (i % 29 == 0) {
			tb_realloc(r, seq, seq + 1, a, a + 0x100000, 4096, 2);
			seq += 2;
		}
	}
	tb_unmap(r, seq++, 0x7f0000100000, 8192);
	tb_retag(r, seq++, 0x7f0000001040, 4);
	tb_mark(r, seq++, HW_MARK_USER, "label");
	tb_rss(r, 10, 1 << 20);
	tb_alloc(r, HW_KIND_MALLOC, seq++, 0x9000, 24, 1);
}

static void good_column_chunk(void **state)
{
	(void)state;
	struct tb r;
	column_records(&r);
	const uint8_t *rec = r.buf + r.chunk_off + HW_CHUNK_HEADER_SIZE;
	size_t used = r.size - r.chunk_off - HW_CHUNK_HEADER_SIZE;
	/* the raw chunk's records, counted */
	bool damaged;
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	tb_chunk(&b, 1);
	tb_raw(&b, rec, used);
	memcpy(b.buf + b.chunk_off + 8, &(uint32_t){(uint32_t)used}, 4);
	tb_write(&b, path);
	tb_free_builder(&b);
	char *raw = events_text(path);
	struct trace t;
	assert_int_equal(trace_open(path, &t), HW_OK);
	enum read_result last;
	long nraw = (long)count_records(&t, 0, &last);
	trace_close(&t);

	struct cols_work w = {0};
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	size_t cap = cols_bound(HW_MIN_CHUNK_SIZE);
	uint8_t *z = malloc(cap);
	size_t n = cols_encode(&w, cc, rec, used, z, cap);
	assert_true(n > 0);
	write_zchunk(HW_CHUNK_ZSTD | HW_CHUNK_COLS | (uint32_t)used, (uint32_t)n, z, n, 0);
	assert_int_equal(read_zchunk(&damaged), nraw);
	assert_false(damaged);
	char *packed = events_text(path);
	assert_string_equal(raw, packed);
	/* the rebuilt bytes are the raw ones */
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	uint8_t *back = malloc(used);
	const char *why = "unset";
	assert_int_equal(cols_decode(&w, dc, z, n, back, used, &why), used);
	assert_memory_equal(back, rec, used);
	/* a chunk the columns do not split to its end (a zero byte, then
	 * bytes): the rest rides along as it was */
	uint8_t *odd = malloc(used + 3);
	memcpy(odd, rec, used);
	memcpy(odd + used, "\0\x41\x42", 3);
	n = cols_encode(&w, cc, odd, used + 3, z, cap);
	assert_true(n > 0);
	uint8_t *back2 = malloc(used + 3);
	assert_int_equal(cols_decode(&w, dc, z, n, back2, used + 3, &why), used + 3);
	assert_memory_equal(back2, odd, used + 3);
	/* a varint written in more bytes than it needs (0x81 0x00 for 1) would
	 * come back shorter: from that record on, the chunk rides along as it
	 * is, and rebuilds byte for byte */
	uint8_t lax[] = {HW_REC_ALLOC, 0x01, 0x02, 0x10, 0x00, HW_REC_ALLOC, 0x81, 0x00, 0x02, 0x10, 0x00};
	n = cols_encode(&w, cc, lax, sizeof(lax), z, cap);
	assert_true(n > 0);
	uint8_t back3[sizeof(lax)];
	assert_int_equal(cols_decode(&w, dc, z, n, back3, sizeof(lax), &why), sizeof(lax));
	assert_memory_equal(back3, lax, sizeof(lax));
	free(odd);
	free(back);
	free(back2);
	free(raw);
	free(packed);
	free(z);
	cols_free(&w);
	ZSTD_freeCCtx(cc);
	ZSTD_freeDCtx(dc);
	tb_free_builder(&r);
}

/* A chunk of n ALLOC_NEXT records (4 bytes each) at distinct addresses
 * (16, 32, ...), then a FREE_NEXT of each of the first nfree addresses in
 * an order of their own. Returns its bytes. */
static size_t distinct_allocs(uint8_t *rec, size_t n, size_t nfree)
{
	size_t used = 0;
	for (size_t i = 0; i < n; i++) {
		rec[used++] = HW_REC_ALLOC_NEXT;
		rec[used++] = 32; /* the address + 16, zigzag */
		rec[used++] = 16; /* size */
		rec[used++] = 0; /* the same stack */
	}
	uint64_t addr = 16 * (uint64_t)n;
	for (size_t k = 0; k < nfree; k++) {
		uint64_t a = 16 * (1 + (k * 7919) % nfree);
		rec[used++] = HW_REC_FREE_NEXT;
		used = (size_t)(hw_put_varint(rec + used, hw_zigzag((int64_t)(a - addr))) - rec);
		addr = a;
	}
	return used;
}

/* The encoder's address table grows with the addresses a chunk allocates
 * (from 1024 slots, never more than half full) and is emptied at every
 * chunk: in a chunk of 8000 ALLOCs at distinct addresses and a FREE of
 * each, every FREE finds its ALLOC (a reference, no address delta), also
 * after a chunk of 16K ALLOCs (4 bytes each: the most a chunk of 64 KiB
 * holds) and a small chunk; a FREE of a block of the chunk before is no
 * reference (the table was emptied); each comes back byte for byte. */
static void column_map_grows(void **state)
{
	(void)state;
	enum { N = 8000, CHUNK = 64 * 1024 };
	struct cols_work w = {0};
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	size_t cap = cols_bound(CHUNK);
	uint8_t *z = malloc(cap), *rec = malloc(CHUNK), *back = malloc(CHUNK);
	const char *why;
	for (int round = 0; round < 5; round++) {
		/* the frees, the most ALLOCs, a few, the frees again, 10 ALLOCs
		 * and the frees of the chunk before's */
		size_t n = round == 1 ? CHUNK / 4 : round >= 2 && round != 3 ? 10 : N;
		size_t nfree = round == 1 || round == 2 ? 0 : N;
		size_t used = distinct_allocs(rec, n, nfree);
		assert_true(used <= CHUNK);
		size_t zn = cols_encode(&w, cc, rec, used, z, cap);
		assert_true(zn > 0);
		assert_true(w.map_cap >= 2 * n);
		if (round == 0 || round == 3) {
			assert_int_equal(w.slen[HW_COLS_FDELTA], 0);
			assert_null(memchr(w.s[HW_COLS_REF], 0, w.slen[HW_COLS_REF]));
		}
		if (round == 4) { /* the FREEs of this chunk's 10 blocks only */
			size_t zeros = 0;
			for (size_t i = 0; i < w.slen[HW_COLS_REF]; i++)
				zeros += w.s[HW_COLS_REF][i] == 0;
			assert_int_equal(w.slen[HW_COLS_REF], N);
			assert_int_equal(zeros, N - 10);
		}
		assert_int_equal(cols_decode(&w, dc, z, zn, back, used, &why), used);
		assert_memory_equal(back, rec, used);
	}
	free(z);
	free(rec);
	free(back);
	cols_free(&w);
	ZSTD_freeCCtx(cc);
	ZSTD_freeDCtx(dc);
}

/* events_text with what went to stderr (the warnings) after it, and
 * whether the trace was found damaged. */
static char *events_and_warnings(const char *p, bool *damaged)
{
	char tmp[64];
	snprintf(tmp, sizeof(tmp), "/tmp/hw-test-reader-err-%d", (int)getpid());
	fflush(stderr);
	int saved = dup(2);
	int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, 2);
	char *ev = events_text(p);
	struct trace t;
	assert_int_equal(trace_open(p, &t), HW_OK);
	enum read_result last = READ_END;
	for (size_t i = 0; i < t.nchunks; i++)
		count_records(&t, i, &last);
	*damaged = t.damaged;
	trace_close(&t);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	off_t n = lseek(fd, 0, SEEK_END);
	char *out = malloc(strlen(ev) + (size_t)n + 1);
	strcpy(out, ev);
	assert_int_equal(pread(fd, out + strlen(ev), (size_t)n, 0), n);
	out[strlen(ev) + (size_t)n] = 0;
	close(fd);
	unlink(tmp);
	free(ev);
	return out;
}

/* The replay's decoding of a whole column chunk (payload z of zlen bytes,
 * or chunk j of group g) in one piece: the bytes it writes into dst, its
 * events in *ev (*nev entries; none when it was rebuilt byte for byte),
 * where its tail starts, or 0 with *why. */
static size_t decode_piece(struct cols_dec *x, bool begun, uint8_t *dst, struct hw_event **ev,
			   size_t *evcap, size_t *nev, size_t *tail_at, const char **why)
{
	*nev = *tail_at = 0;
	size_t dlen = 0, first = 0;
	enum cols_piece r = COLS_BAD;
	if (begun) {
		size_t saved = cols_piece_records;
		cols_piece_records = SIZE_MAX;
		r = cols_dec_piece(x, dst, &dlen, ev, evcap, &first, nev, tail_at, why);
		cols_piece_records = saved;
		assert_int_not_equal(r, COLS_MORE);
		assert_int_equal(first, 0);
	}
	cols_dec_free(x);
	return r == COLS_BAD ? 0 : dlen;
}

static size_t decode_events(ZSTD_DCtx *dc, const uint8_t *z, size_t zlen, uint8_t *dst, size_t used,
			    struct hw_event **ev, size_t *evcap, size_t *nev, size_t *tail_at,
			    const char **why)
{
	struct cols_dec *x = cols_dec_new();
	bool begun = cols_dec_begin(x, dc, z, zlen, used, why);
	return decode_piece(x, begun, dst, ev, evcap, nev, tail_at, why);
}

static size_t group_decode_events(const struct cols_group *g, uint32_t j, uint8_t *dst, size_t used,
				  struct hw_event **ev, size_t *evcap, size_t *nev, size_t *tail_at,
				  const char **why)
{
	struct cols_dec *x = cols_dec_new();
	bool begun = cols_dec_begin_group(x, g, j, used, why);
	return decode_piece(x, begun, dst, ev, evcap, nev, tail_at, why);
}

/* The replay reads a column chunk's ALLOC, FREE and REALLOC records from
 * the columns straight into events (cursor_init_events): what it hands
 * out, the warning (with the damaged record's offset in the raw records)
 * and what it skips are those of the raw chunk, also for records the raw
 * reading refuses or reads specially after runs of decoded events. */
/* A chunk of records REC read raw and as one compressed column chunk:
 * the same events and warnings, damaged or not as DAMAGED says. */
static void raw_as_cols(struct cols_work *w, ZSTD_CCtx *cc, uint8_t *z, size_t cap, const uint8_t *rec,
			size_t used, bool damaged)
{
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	tb_chunk(&b, 1);
	assert_int_equal(b.chunk_off, HW_HEADER_SIZE); /* where write_zchunk puts it */
	tb_raw(&b, rec, used);
	memcpy(b.buf + b.chunk_off + 8, &(uint32_t){(uint32_t)used}, 4);
	tb_write(&b, path);
	tb_free_builder(&b);
	bool dr, dz;
	char *raw = events_and_warnings(path, &dr);
	size_t n = cols_encode(w, cc, rec, used, z, cap);
	assert_true(n > 0);
	write_zchunk(HW_CHUNK_ZSTD | HW_CHUNK_COLS | (uint32_t)used, (uint32_t)n, z, n, 0);
	char *packed = events_and_warnings(path, &dz);
	assert_string_equal(raw, packed);
	assert_int_equal(dr, dz);
	assert_int_equal(dr, damaged);
	assert_int_equal(strstr(raw, "damaged record at offset") != NULL, damaged);
	free(raw);
	free(packed);
}

/* A short form's sequence number + 1 that wraps (FREE_NEXT and ALLOC_NEXT
 * after UINT64_MAX) inside a run of short forms: the column decoder's run
 * (which takes + 1 without reading a stream) leaves the chunk to the raw
 * reading, and both say the same. */
static void column_short_form_wrap(void **state)
{
	(void)state;
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	size_t cap = cols_bound(HW_MIN_CHUNK_SIZE);
	uint8_t *z = malloc(cap);
	struct cols_work w = {0};
	for (int wrap_free = 0; wrap_free < 2; wrap_free++) {
		struct tb r;
		tb_init(&r, HW_MIN_CHUNK_SIZE, "x", 1);
		r.short_forms = true;
		tb_chunk(&r, 1);
		tb_time(&r, 5);
		uint64_t s = UINT64_MAX - 40;
		for (int i = 0; i < 20; i++) { /* short forms from the second on */
			tb_alloc(&r, HW_KIND_MALLOC, s++, 0x5000 + 32 * (uint64_t)i, 16, 3);
			tb_free(&r, HW_KIND_MALLOC, s++, 0x5000 + 32 * (uint64_t)i);
		}
		assert_true(s == UINT64_MAX);
		tb_alloc(&r, HW_KIND_MALLOC, s, 0x9000, 16, 3);
		if (wrap_free)
			tb_free(&r, HW_KIND_MALLOC, s + 1, 0x9000); /* FREE_NEXT at 0 */
		else
			tb_alloc(&r, HW_KIND_MALLOC, s + 1, 0x9100, 16, 3); /* ALLOC_NEXT at 0 */
		tb_alloc(&r, HW_KIND_MALLOC, 1, 0x9200, 16, 3);
		const uint8_t *rec = r.buf + r.chunk_off + HW_CHUNK_HEADER_SIZE;
		size_t used = r.size - r.chunk_off - HW_CHUNK_HEADER_SIZE;
		raw_as_cols(&w, cc, z, cap, rec, used, true);
		tb_free_builder(&r);
	}
	cols_free(&w);
	ZSTD_freeCCtx(cc);
	free(z);
}

static void column_events_as_raw(void **state)
{
	(void)state;
	struct tb r;
	column_records(&r);
	const uint8_t *rec0 = r.buf + r.chunk_off + HW_CHUNK_HEADER_SIZE;
	size_t used0 = r.size - r.chunk_off - HW_CHUNK_HEADER_SIZE;
	/* after the good records, one the raw reading refuses, then more */
	static const uint8_t big_stack[] = {HW_REC_ALLOC, 0x01, 0x02, 0x10, 0x80, 0x80, 0x80, 0x80, 0x20};
	static const uint8_t stack_loop[] = {HW_REC_STACK, 0x05, 0x05, 0x00, 0x01};
	static const uint8_t wraps[] = {HW_REC_FREE, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02};
	static const uint8_t after[] = {HW_REC_ALLOC, 0x01, 0x04, 0x20, 0x01, HW_REC_FREE, 0x01, 0x01};
	/* a short form whose stack delta (-2^32) leaves 0..2^32-1 */
	static const uint8_t below_zero[] = {HW_REC_ALLOC_NEXT, 0x02, 0x10, 0xff, 0xff, 0xff, 0xff, 0x1f};
	/* a record rebuilt byte for byte that the raw reading refuses (a
	 * CODE of id 0): the records after it, in a later piece, are skipped */
	static const uint8_t code_zero[] = {HW_REC_CODE, 0x00, 0x01, 0x00, 0x00, 0x00};
	/* a run ends at a varint in a longer form than needed (the split
	 * stops there) and short forms follow it: their kind and stack come
	 * from the run's last records, not from the chunk's start */
	static const uint8_t tail_short[] = {HW_REC_ALLOC | HW_KIND_PYOBJ, 0x01, 0x04, 0x20, 0x09,
					     HW_REC_FREE_NEXT, 0x83, 0x00, HW_REC_FREE_NEXT, 0x02,
					     HW_REC_ALLOC_NEXT, 0x04, 0x10, 0x02};
	struct {
		const uint8_t *b;
		size_t n;
		bool damaged;
	} odd[] = {{NULL, 0, false}, {big_stack, sizeof(big_stack), true},
		   {stack_loop, sizeof(stack_loop), true}, {wraps, sizeof(wraps), true},
		   {below_zero, sizeof(below_zero), true}, {tail_short, sizeof(tail_short), false},
		   {code_zero, sizeof(code_zero), true}};
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	size_t cap = cols_bound(HW_MIN_CHUNK_SIZE);
	uint8_t *z = malloc(cap);
	struct cols_work w = {0};
	for (size_t k = 0; k < sizeof(odd) / sizeof(odd[0]); k++) {
		uint8_t *rec = malloc(used0 + 64);
		memcpy(rec, rec0, used0);
		size_t used = used0;
		memcpy(rec + used, odd[k].b ? odd[k].b : after, odd[k].b ? odd[k].n : sizeof(after));
		used += odd[k].b ? odd[k].n : sizeof(after);
		memcpy(rec + used, after, sizeof(after));
		used += sizeof(after);
		raw_as_cols(&w, cc, z, cap, rec, used, odd[k].damaged);
		free(rec);
	}
	/* the decoder's events: a header per run, its events, the raw bytes */
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	uint8_t *dst = malloc(used0);
	struct hw_event *ev = NULL;
	size_t evcap = 0, nev = 0, tail_at = 0, n = cols_encode(&w, cc, rec0, used0, z, cap);
	const char *why = "unset";
	size_t got = decode_events(dc, z, n, dst, used0, &ev, &evcap, &nev, &tail_at, &why);
	assert_null(why);
	assert_true(got > 0 && got < used0 / 4);
	assert_int_equal(tail_at, got);
	size_t runs = 0, raw_in_runs = 0;
	for (size_t i = 0; i < nev; i += 1 + ev[i].seq) {
		assert_int_equal(ev[i].op, EV_RUN_HEADER);
		runs++;
		raw_in_runs += ev[i].addr;
	}
	size_t marks = 0;
	for (size_t i = 0; i < got; i++)
		marks += dst[i] == HW_COLS_RUN;
	assert_true(runs >= 2 && marks >= runs);
	assert_int_equal(got - runs + raw_in_runs, used0);
	/* a lying size: the same message as the byte-for-byte rebuild */
	assert_int_equal(decode_events(dc, z, n, dst, used0 - 1, &ev, &evcap, &nev, &tail_at, &why), 0);
	assert_string_equal(why, "it rebuilds to more bytes than it says");
	free(ev);
	free(dst);
	ZSTD_freeDCtx(dc);
	free(z);
	cols_free(&w);
	ZSTD_freeCCtx(cc);
	tb_free_builder(&r);
}

/* STACK records among the heap's, where the column decoder hands out runs
 * of heap events and runs of STACK nodes without leaving its loop: at the
 * chunk's start and end, one alone between two ALLOCs, a run longer than
 * the decoder's block (512 records), a run before a record of another
 * kind, a REALLOC right after a run; one that names itself (the raw
 * reading refuses it) inside a run. The same events, nodes (each with the
 * sequence numbers around it) and warnings as the raw chunk's. */
static void column_stack_runs_as_raw(void **state)
{
	(void)state;
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	size_t cap = cols_bound(HW_MIN_CHUNK_SIZE);
	uint8_t *z = malloc(cap);
	struct cols_work w = {0};
	/* bad 1: a node that names itself; 2: an unknown tag after all the
	 * runs (the raw reading's warning, at the offset the runs' raw bytes
	 * give) */
	for (int bad = 0; bad < 3; bad++) {
		struct tb r;
		tb_init(&r, HW_MIN_CHUNK_SIZE, "x", 1);
		r.short_forms = true;
		tb_chunk(&r, 1);
		uint32_t id = 1;
		uint64_t seq = 1, a = 0x7f0000001000;
		tb_stack(&r, id, 0, 0x400000); /* the chunk starts with STACK */
		id++;
		tb_stack(&r, id, id - 1, 0x400008);
		id++;
		tb_alloc(&r, HW_KIND_PYOBJ, seq++, a, 32, id - 1);
		tb_stack(&r, id, 1, 0x400010); /* one alone */
		id++;
		tb_alloc(&r, HW_KIND_PYOBJ, seq++, a + 64, 48, id - 1);
		tb_free(&r, HW_KIND_PYOBJ, seq++, a);
		for (int i = 0; i < 700; i++, id++) { /* longer than a block */
			if (bad == 1 && i == 600)
				tb_stack(&r, id, id, 0x500000); /* names itself */
			else
				tb_pystack(&r, id, id - 1, 3, (uint32_t)i * 2);
		}
		tb_realloc(&r, seq, seq + 1, a + 64, a + 0x1000, 4096, id - 1); /* right after */
		seq += 2;
		for (int i = 0; i < 40; i++, id++) { /* short runs of both */
			tb_alloc(&r, HW_KIND_MALLOC, seq++, a + 0x2000 + 32 * (uint64_t)i, 16, id - 1);
			tb_stack(&r, id, id - 1 - (uint32_t)(i % 3), 0x400100 + (uint64_t)i);
			if (i % 5 == 0)
				tb_free(&r, HW_KIND_MALLOC, seq++, a + 0x2000 + 32 * (uint64_t)i);
		}
		tb_stack(&r, id, id - 1, 0x400200); /* before another kind */
		id++;
		tb_time(&r, 9);
		tb_alloc(&r, HW_KIND_MALLOC, seq++, a + 0x9000, 24, 1);
		tb_stack(&r, id, 2, 0x400300); /* at the end */
		if (bad == 2)
			tb_raw(&r, (const uint8_t[]){0x3e, 0x01}, 2);
		const uint8_t *rec = r.buf + r.chunk_off + HW_CHUNK_HEADER_SIZE;
		size_t used = r.size - r.chunk_off - HW_CHUNK_HEADER_SIZE;
		raw_as_cols(&w, cc, z, cap, rec, used, bad);
		if (!bad) { /* read as runs, not rebuilt byte for byte */
			ZSTD_DCtx *dc = ZSTD_createDCtx();
			uint8_t *dst = malloc(used);
			struct hw_event *ev = NULL;
			size_t evcap = 0, nev = 0, tail_at = 0, nodes = 0;
			size_t n = cols_encode(&w, cc, rec, used, z, cap);
			const char *why = "unset";
			size_t got = decode_events(dc, z, n, dst, used, &ev, &evcap, &nev,
							&tail_at, &why);
			assert_null(why);
			size_t marks[2] = {0, 0}, raw = got;
			for (size_t i = 0; i < tail_at; i++) {
				marks[0] += dst[i] == HW_COLS_RUN;
				marks[1] += dst[i] == HW_COLS_DEFS;
			}
			for (size_t i = 0, k = 0; i < nev; i += 1 + ev[i].seq, k++) {
				assert_int_equal(ev[i].op, EV_RUN_HEADER);
				raw += ev[i].addr - 1;
				if (k % 2 == 0) /* STACK first, then heap, and so on */
					nodes += ev[i].seq;
			}
			assert_int_equal(marks[0], 43); /* heap runs */
			assert_int_equal(marks[1], 44); /* STACK runs */
			assert_int_equal(nodes, id);
			assert_int_equal(raw, used); /* each run's raw bytes */
			free(ev);
			free(dst);
			ZSTD_freeDCtx(dc);
		}
		tb_free_builder(&r);
	}
	cols_free(&w);
	ZSTD_freeCCtx(cc);
	free(z);
}

/* A column payload of the given streams (NULL: empty), each a zstd frame. */
static size_t make_cols(uint8_t *out, size_t cap, const uint8_t *const s[HW_COLS_STREAMS],
			const size_t len[HW_COLS_STREAMS])
{
	size_t at = 4u * HW_COLS_STREAMS;
	for (int i = 0; i < HW_COLS_STREAMS; i++) {
		uint32_t zl = 0;
		if (len[i]) {
			size_t k = ZSTD_compress(out + at, cap - at, s[i], len[i], 3);
			assert_false(ZSTD_isError(k));
			zl = (uint32_t)k;
			at += k;
		}
		memcpy(out + 4u * i, &zl, 4);
	}
	return at;
}

/* Hand-made column chunks that lie: one clear warning, the chunk skipped,
 * nothing read out of bounds (the ASan build runs this too). */
static void hostile_column_chunks(void **state)
{
	(void)state;
	size_t cap = 1 << 20;
	uint8_t *z = malloc(cap);
	bool damaged;
	const uint8_t *s[HW_COLS_STREAMS];
	size_t len[HW_COLS_STREAMS];
	uint32_t COLS = HW_CHUNK_ZSTD | HW_CHUNK_COLS;
#define RESET() (memset(s, 0, sizeof(s)), memset(len, 0, sizeof(len)))
#define SET(i, ...)                                                                       \
	do {                                                                              \
		static const uint8_t b_[] = {__VA_ARGS__};                                \
		s[i] = b_;                                                                \
		len[i] = sizeof(b_);                                                      \
	} while (0)

	/* good: ALLOC 0x1000 (seq 1, 32 bytes, stack 1), FREE of it by reference:
	 * raw 40 01 80 40 20 01 | 48 01 00: 9 bytes */
	RESET();
	SET(HW_COLS_TAG, HW_REC_ALLOC, HW_REC_FREE);
	SET(HW_COLS_SEQ, 1, 1);
	SET(HW_COLS_HINT, 0);
	SET(HW_COLS_ADELTA, 0x80, 0x40);
	SET(HW_COLS_SIZE, 32);
	SET(HW_COLS_STACK, 2);
	SET(HW_COLS_REF, 1);
	size_t n = make_cols(z, cap, s, len);
	write_zchunk(COLS | 9, (uint32_t)n, z, n, 0);
	assert_int_equal(read_zchunk(&damaged), 2);
	assert_false(damaged);

	/* the FREE refers to the 2nd ALLOC back: there is only one */
	SET(HW_COLS_REF, 2);
	n = make_cols(z, cap, s, len);
	write_zchunk(COLS | 9, (uint32_t)n, z, n, 0);
	assert_int_equal(read_zchunk(&damaged), 0);
	assert_true(damaged);
	struct trace t;
	uint8_t dst[64];
	const char *why = NULL;
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	struct cols_work w = {0};
	assert_int_equal(cols_decode(&w, dc, z, n, dst, 9, &why), 0);
	assert_string_equal(why, "a reference to an ALLOC out of range");
	/* a huge reference (10-byte varint) */
	SET(HW_COLS_REF, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
	n = make_cols(z, cap, s, len);
	assert_int_equal(cols_decode(&w, dc, z, n, dst, 9, &why), 0);
	assert_string_equal(why, "a reference to an ALLOC out of range");
	SET(HW_COLS_REF, 1);

	/* the ALLOC names a freed block of its class: there is none */
	SET(HW_COLS_HINT, 3);
	n = make_cols(z, cap, s, len);
	assert_int_equal(cols_decode(&w, dc, z, n, dst, 9, &why), 0);
	assert_string_equal(why, "a freed-block reference out of range");
	SET(HW_COLS_HINT, 0);

	/* a stream ends early, or holds more than its records */
	SET(HW_COLS_SEQ, 1);
	n = make_cols(z, cap, s, len);
	assert_int_equal(cols_decode(&w, dc, z, n, dst, 9, &why), 0);
	assert_string_equal(why, "a stream ends early");
	SET(HW_COLS_SEQ, 1, 1, 1);
	n = make_cols(z, cap, s, len);
	assert_int_equal(cols_decode(&w, dc, z, n, dst, 9, &why), 0);
	assert_string_equal(why, "a stream holds more than its records");
	SET(HW_COLS_SEQ, 1, 1);

	/* the records rebuild to other than `used` bytes: more, fewer */
	n = make_cols(z, cap, s, len);
	assert_int_equal(cols_decode(&w, dc, z, n, dst, 8, &why), 0);
	assert_string_equal(why, "it rebuilds to more bytes than it says");
	assert_int_equal(cols_decode(&w, dc, z, n, dst, 10, &why), 0);
	assert_string_equal(why, "it rebuilds to fewer bytes than it says");
	write_zchunk(COLS | 10, (uint32_t)n, z, n, 0);
	assert_int_equal(read_zchunk(&damaged), 0);
	assert_true(damaged);

	/* an unknown tag */
	SET(HW_COLS_TAG, 0x7e, HW_REC_FREE);
	n = make_cols(z, cap, s, len);
	assert_int_equal(cols_decode(&w, dc, z, n, dst, 9, &why), 0);
	assert_string_equal(why, "an unknown record tag");
	SET(HW_COLS_TAG, HW_REC_ALLOC, HW_REC_FREE);

	/* the stream table: a frame past the payload, bytes after the last,
	 * a table cut short */
	n = make_cols(z, cap, s, len);
	uint32_t big = (uint32_t)n;
	uint8_t *bad = malloc(n + 1);
	memcpy(bad, z, n);
	memcpy(bad, &big, 4);
	assert_int_equal(cols_decode(&w, dc, bad, n, dst, 9, &why), 0);
	assert_string_equal(why, "a stream runs past the chunk");
	memcpy(bad, z, n);
	bad[n] = 0;
	assert_int_equal(cols_decode(&w, dc, bad, n + 1, dst, 9, &why), 0);
	assert_string_equal(why, "bytes after its last stream");
	assert_int_equal(cols_decode(&w, dc, bad, 4 * HW_COLS_STREAMS - 1, dst, 9, &why), 0);
	assert_string_equal(why, "its stream table is cut");
	write_zchunk(COLS | 9, (uint32_t)n, bad, n - 1, 0); /* zlen says n, file has n-1 */
	assert_int_equal(read_zchunk(&damaged), -1);
	assert_true(damaged);

	/* a bomb: a stream of 1 MiB for 10 bytes of records */
	uint8_t *zeros = calloc(1, 1 << 20);
	s[HW_COLS_TAIL] = zeros;
	len[HW_COLS_TAIL] = 1 << 20;
	n = make_cols(z, cap, s, len);
	assert_int_equal(cols_decode(&w, dc, z, n, dst, 9, &why), 0);
	assert_non_null(why);
	write_zchunk(COLS | 9, (uint32_t)n, z, n, 0);
	assert_int_equal(read_zchunk(&damaged), 0);
	assert_true(damaged);
	(void)t;
#undef SET
#undef RESET
	free(zeros);
	free(bad);
	free(z);
	cols_free(&w);
	ZSTD_freeDCtx(dc);
}

/* The replay's column decoder (decode_events) on runs that lie: the
 * whole chunk goes the byte-for-byte way, so it fails (or not) with the
 * message of cols_decode, and a run it accepts is one whose raw bytes it
 * counted right (a varint not in its shortest form takes more bytes in the
 * stream than in the raw record). */
static void column_events_hostile(void **state)
{
	(void)state;
	size_t cap = 1 << 16;
	uint8_t *z = malloc(cap);
	const uint8_t *s[HW_COLS_STREAMS];
	size_t len[HW_COLS_STREAMS];
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	struct cols_work w = {0};
	struct hw_event *ev = NULL;
	size_t evcap = 0;
#define SET(i, ...)                                                                       \
	do {                                                                              \
		static const uint8_t b_[] = {__VA_ARGS__};                                \
		s[i] = b_;                                                                \
		len[i] = sizeof(b_);                                                      \
	} while (0)
	/* as hostile_column_chunks: ALLOC 0x1000, FREE of it: 9 raw bytes;
	 * each case changes one stream (or what `used` says) */
	for (int k = 0; k < 10; k++) {
		memset(s, 0, sizeof(s));
		memset(len, 0, sizeof(len));
		SET(HW_COLS_TAG, HW_REC_ALLOC, HW_REC_FREE);
		SET(HW_COLS_SEQ, 1, 1);
		SET(HW_COLS_HINT, 0);
		SET(HW_COLS_ADELTA, 0x80, 0x40);
		SET(HW_COLS_SIZE, 32);
		SET(HW_COLS_STACK, 2);
		SET(HW_COLS_REF, 1);
		size_t used = 9;
		const char *want = NULL;
		switch (k) {
		case 0: break;
		case 1: SET(HW_COLS_REF, 2); want = "a reference to an ALLOC out of range"; break;
		case 2: SET(HW_COLS_HINT, 3); want = "a freed-block reference out of range"; break;
		case 3: SET(HW_COLS_SEQ, 1); want = "a stream ends early"; break;
		case 4: SET(HW_COLS_SEQ, 1, 1, 1); want = "a stream holds more than its records"; break;
		case 5: used = 8; want = "it rebuilds to more bytes than it says"; break;
		case 6: used = 10; want = "it rebuilds to fewer bytes than it says"; break;
		case 7: SET(HW_COLS_HINT); want = "a stream ends early"; break;
		/* the size 32 as two bytes: the record is 9 raw bytes, not 10 */
		case 8: SET(HW_COLS_SIZE, 0xa0, 0x00); break;
		case 9: SET(HW_COLS_SIZE, 0xa0, 0x00); used = 10; want = "it rebuilds to fewer bytes than it says"; break;
		}
		size_t n = make_cols(z, cap, s, len);
		uint8_t d1[64], d2[64];
		const char *why1 = "unset", *why2 = "unset";
		size_t nev = 99, tail_at = 99;
		size_t n1 = cols_decode(&w, dc, z, n, d1, used, &why1);
		size_t n2 = decode_events(dc, z, n, d2, used, &ev, &evcap, &nev, &tail_at, &why2);
		if (want) {
			assert_int_equal(n1, 0);
			assert_int_equal(n2, 0);
			assert_string_equal(why1, want);
			assert_string_equal(why2, want);
			continue;
		}
		assert_null(why1);
		assert_null(why2);
		assert_int_equal(n1, used);
		if (nev == 0) { /* rebuilt byte for byte: the records as cols_decode writes them */
			assert_int_equal(k, 8);
			assert_int_equal(n2, used);
			assert_memory_equal(d1, d2, used);
			continue;
		}
		/* one run: its header, the ALLOC and the FREE */
		assert_int_equal(nev, 3);
		assert_int_equal(ev[0].op, EV_RUN_HEADER);
		assert_int_equal(ev[0].addr, used);
		assert_int_equal(ev[1].op, EV_ALLOC);
		assert_int_equal(ev[1].addr, 0x1000);
		assert_int_equal(ev[1].size, 32);
		assert_int_equal(ev[1].stack, 1);
		assert_int_equal(ev[2].op, EV_FREE);
		assert_int_equal(ev[2].addr, 0x1000);
		assert_int_equal(ev[2].seq, 2);
	}
#undef SET
	free(ev);
	cols_free(&w);
	ZSTD_freeDCtx(dc);
	free(z);
}

/* Threads' chunks of per records each, ALLOCs and FREEs, written to p: a
 * thread's chunks one after another in the file (a group when
 * compressed), their events taking turns with the other threads'; noisy:
 * the sizes and stack ids pseudo-random (a group that shrinks poorly). */
static void build_turns(const char *p, uint32_t threads, uint32_t chunks, uint64_t per, bool noisy)
{
	uint64_t x = 0x9E3779B97F4A7C15ull;
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
	for (uint32_t tid = 0; tid < threads; tid++)
		for (uint32_t c = 0; c < chunks; c++) {
			tb_chunk(&b, tid + 1);
			memcpy(b.buf + b.chunk_off + 12, &c, 4); /* index */
			for (uint64_t i = 0; i < per; i++) {
				uint64_t seq = (c * per + i) * threads + tid + 1;
				uint64_t a = 0x100000 * (tid + 1) + 64 * (c * per + i);
				if (i % 2)
					tb_free(&b, HW_KIND_MALLOC, seq, a - 64);
				else if (!noisy)
					tb_alloc(&b, HW_KIND_MALLOC, seq, a, 24 + seq % 7, tid + 1);
				else {
					x ^= x << 13, x ^= x >> 7, x ^= x << 17;
					tb_alloc(&b, HW_KIND_MALLOC, seq, a, 1 + x % 100000,
						 1 + (uint32_t)(x >> 32) % 1000000);
				}
			}
			uint32_t used = (uint32_t)(b.size - b.chunk_off - HW_CHUNK_HEADER_SIZE);
			memcpy(b.buf + b.chunk_off + 8, &used, 4);
		}
	tb_write(&b, p);
	tb_free_builder(&b);
}

/* The trace at path, compressed, and its chunks (t, to be closed); raw:
 * its events before, the same after (checked, freed). */
static void compress_same_events(struct trace *t, char *raw)
{
	struct compress_stats cs;
	assert_int_equal(compress_trace(path, 3, true, &cs), COMPRESS_DONE);
	char *packed = events_text(path);
	assert_string_equal(raw, packed);
	free(raw);
	free(packed);
	assert_int_equal(trace_open(path, t), HW_OK);
}

/* Twelve threads whose chunks take turns, each thread's three chunks
 * compressed as one group: the replay decodes a chunk of every thread at
 * once, a piece at a time, and the reader keeps eight groups. A group a
 * cursor reads is pinned (never inflated over); the events are the raw
 * trace's. */
static void many_threads_pin_their_groups(void **state)
{
	(void)state;
	enum { THREADS = 12, CHUNKS = 3 };
	build_turns(path, THREADS, CHUNKS, 1500, false);
	struct trace t;
	compress_same_events(&t, events_text(path));
	size_t grouped = 0;
	for (size_t i = 0; i < t.nchunks; i++)
		grouped += t.chunks[i].gk > 1;
	trace_close(&t);
	assert_int_equal(grouped, THREADS * CHUNKS);
}

/* A thread's first group holds 4 chunks at most (the replay reads none
 * of a group's records before all its streams are inflated: a 32-chunk
 * startup group held back the first replayed event by 10 ms); the
 * chunks after it are grouped as before. Not when the whole group shrinks
 * poorly (less than HW_COLS_POOR times): the cut would cost more bytes. */
static void first_group_is_small(void **state)
{
	(void)state;
	enum { CHUNKS = 12 };
	build_turns(path, 1, CHUNKS, 1500, false);
	struct trace t;
	compress_same_events(&t, events_text(path));
	assert_int_equal(t.nchunks, CHUNKS);
	for (size_t i = 0; i < CHUNKS; i++) {
		assert_int_equal(t.chunks[i].index, i);
		assert_int_equal(t.chunks[i].gk, i < 4 ? 4 : CHUNKS - 4);
	}
	trace_close(&t);
	build_turns(path, 1, CHUNKS, 1500, true);
	compress_same_events(&t, events_text(path));
	assert_int_equal(t.nchunks, CHUNKS);
	assert_int_equal(t.chunks[0].gk, CHUNKS);
	trace_close(&t);
}

/* A column chunk found damaged in its last piece (its SEQ stream holds a
 * byte more than its records take: seen at the end): the events of the
 * pieces before are handed out and one warning says the rest is skipped;
 * in one piece, the chunk gives none. */
static void column_damage_after_pieces(void **state)
{
	(void)state;
	enum { N = 40, PIECE = 4 };
	uint8_t tag[N], seq[N + 1], hint[N], ad[N], size[N], stack[N];
	memset(tag, HW_REC_ALLOC, N);
	memset(seq, 1, N + 1);
	memset(hint, 0, N);
	memset(ad, 0x40, N); /* +32: the class's last ALLOC's address and 32 */
	memset(size, 32, N);
	memset(stack, 2, N); /* stack ids 1, 2, 3, ... */
	const uint8_t *s[HW_COLS_STREAMS] = {0};
	size_t len[HW_COLS_STREAMS] = {0};
	s[HW_COLS_TAG] = tag, len[HW_COLS_TAG] = N;
	s[HW_COLS_SEQ] = seq, len[HW_COLS_SEQ] = N + 1;
	s[HW_COLS_HINT] = hint, len[HW_COLS_HINT] = N;
	s[HW_COLS_ADELTA] = ad, len[HW_COLS_ADELTA] = N;
	s[HW_COLS_SIZE] = size, len[HW_COLS_SIZE] = N;
	s[HW_COLS_STACK] = stack, len[HW_COLS_STACK] = N;
	size_t cap = 1 << 16;
	uint8_t *z = malloc(cap);
	size_t n = make_cols(z, cap, s, len);
	size_t saved = cols_piece_records;
	for (int pieces = 0; pieces < 2; pieces++) {
		/* the records of the pieces before the last, read raw */
		struct tb b;
		tb_init(&b, HW_MIN_CHUNK_SIZE, "x", 1);
		tb_chunk(&b, 1);
		for (int i = 0; i < (pieces ? N - PIECE : 0); i++)
			tb_alloc(&b, HW_KIND_MALLOC, (uint64_t)i + 1, 0x20 * ((uint64_t)i + 1), 32,
				 (uint32_t)i + 1);
		uint32_t used = (uint32_t)(b.size - b.chunk_off - HW_CHUNK_HEADER_SIZE);
		memcpy(b.buf + b.chunk_off + 8, &used, 4);
		tb_write(&b, path);
		tb_free_builder(&b);
		char *want = events_text(path);
		cols_piece_records = pieces ? PIECE : 512;
		write_zchunk(HW_CHUNK_ZSTD | HW_CHUNK_COLS | 5 * N, (uint32_t)n, z, n, 0);
		bool damaged;
		char *got = events_and_warnings(path, &damaged);
		assert_true(damaged);
		assert_memory_equal(got, want, strlen(want));
		const char *line = got + strlen(want);
		assert_non_null(strstr(line, "damaged compressed chunk at offset 4096 (a stream holds more than its records)"));
		assert_non_null(strstr(line, pieces ? "; the rest of it is skipped\n" : "; it is skipped\n"));
		free(want);
		free(got);
	}
	cols_piece_records = saved;
	free(z);
}

/* The column model starts empty in every chunk, also when the same work
 * area decoded a chunk before (only the classes a chunk uses are reset):
 * an ALLOC of a later chunk naming a freed block of its class that only
 * an earlier chunk gave back is out of range, on both decoding paths. */
static void column_classes_start_empty(void **state)
{
	(void)state;
	size_t cap = 1 << 16;
	uint8_t *z = malloc(cap);
	const uint8_t *s[HW_COLS_STREAMS];
	size_t len[HW_COLS_STREAMS];
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	struct cols_work w = {0};
	struct hw_event *ev = NULL;
	size_t evcap = 0, nev, tail_at;
	uint8_t d[64];
	const char *why;
#define SET(i, ...)                                                                       \
	do {                                                                              \
		static const uint8_t b_[] = {__VA_ARGS__};                                \
		s[i] = b_;                                                                \
		len[i] = sizeof(b_);                                                      \
	} while (0)
	for (int round = 0; round < 3; round++) {
		/* ALLOC 0x1000 (32 bytes), FREE of it: 0x1000 goes to the ring
		 * of the class of 32-byte mallocs */
		memset(s, 0, sizeof(s));
		memset(len, 0, sizeof(len));
		SET(HW_COLS_TAG, HW_REC_ALLOC, HW_REC_FREE);
		SET(HW_COLS_SEQ, 1, 1);
		SET(HW_COLS_HINT, 0);
		SET(HW_COLS_ADELTA, 0x80, 0x40);
		SET(HW_COLS_SIZE, 32);
		SET(HW_COLS_STACK, 2);
		SET(HW_COLS_REF, 1);
		size_t n = make_cols(z, cap, s, len);
		assert_int_equal(cols_decode(&w, dc, z, n, d, 9, &why), 9);
		assert_int_equal(decode_events(dc, z, n, d, 9, &ev, &evcap, &nev, &tail_at, &why), 1); /* one HW_COLS_RUN byte */
		assert_int_equal(nev, 3);
		/* the next chunk: one ALLOC of that class naming the newest
		 * freed block (6 raw bytes if it were 0x1000) */
		memset(s, 0, sizeof(s));
		memset(len, 0, sizeof(len));
		SET(HW_COLS_TAG, HW_REC_ALLOC);
		SET(HW_COLS_SEQ, 1);
		SET(HW_COLS_HINT, 1);
		SET(HW_COLS_SIZE, 32);
		SET(HW_COLS_STACK, 2);
		n = make_cols(z, cap, s, len);
		why = NULL;
		assert_int_equal(cols_decode(&w, dc, z, n, d, 6, &why), 0);
		assert_string_equal(why, "a freed-block reference out of range");
		why = NULL;
		assert_int_equal(decode_events(dc, z, n, d, 6, &ev, &evcap, &nev, &tail_at, &why), 0);
		assert_string_equal(why, "a freed-block reference out of range");
	}
#undef SET
	free(ev);
	cols_free(&w);
	ZSTD_freeDCtx(dc);
	free(z);
}

/* A trace cut by a crash inside its last chunk: compressed, the cut chunk
 * is kept as it was and reads as before. */
static void compress_keeps_a_cut_chunk(void **state)
{
	(void)state;
	build_threads(path);
	size_t n;
	uint8_t *d = slurp(path, &n);
	free(d);
	/* cut in the sixth chunk's records */
	off_t cut = (off_t)(HW_HEADER_SIZE + 5 * HW_MIN_CHUNK_SIZE + 2000);
	assert_int_equal(truncate(path, cut), 0);
	char *raw = events_text(path);
	struct compress_stats cs;
	assert_int_equal(compress_trace(path, 3, true, &cs), COMPRESS_DONE);
	assert_int_equal(cs.chunks, 5);
	assert_int_equal(cs.chunks_raw, 1);
	struct trace t;
	assert_int_equal(trace_open(path, &t), HW_OK);
	assert_true(t.damaged);
	assert_int_equal(t.nchunks, 6);
	trace_close(&t);
	char *packed = events_text(path);
	assert_string_equal(raw, packed);
	free(raw);
	free(packed);
}

/* A write error (here the file size limit, as a full disk would) leaves
 * the trace as it was and no temporary file. */
static void compress_write_error_keeps_the_trace(void **state)
{
	(void)state;
	build_threads(path);
	size_t n0;
	uint8_t *before = slurp(path, &n0);
	pid_t pid = fork();
	if (pid == 0) {
		signal(SIGXFSZ, SIG_IGN);
		struct rlimit rl = {HW_HEADER_SIZE + 100, HW_HEADER_SIZE + 100};
		setrlimit(RLIMIT_FSIZE, &rl);
		struct compress_stats cs;
		_exit(compress_trace(path, 3, true, &cs) == COMPRESS_FAILED ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	size_t n1;
	uint8_t *after = slurp(path, &n1);
	assert_int_equal(n0, n1);
	assert_memory_equal(before, after, n0);
	free(before);
	free(after);
	/* no temporary file left beside it */
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "ls -a /tmp | grep -c '^\\.hw-test-reader-%d' >/dev/null", (int)getpid());
	assert_int_not_equal(system(cmd), 0);
}

/* A trace another process still has mapped (its writer) is left alone. */
static void compress_leaves_a_trace_in_use(void **state)
{
	(void)state;
	build_threads(path);
	int pipefd[2];
	assert_int_equal(pipe(pipefd), 0);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives a failed test */
		int fd = open(path, O_RDWR);
		void *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		close(fd);
		if (m == MAP_FAILED)
			_exit(1);
		char c = 1;
		if (write(pipefd[1], &c, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	char c;
	assert_int_equal(read(pipefd[0], &c, 1), 1);
	struct compress_stats cs;
	assert_int_equal(compress_trace(path, 3, false, &cs), COMPRESS_BUSY);
	assert_int_equal(cs.writer, pid);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(pipefd[0]);
	close(pipefd[1]);
	assert_int_equal(compress_trace(path, 3, false, &cs), COMPRESS_DONE);
}

/* --- groups (issue 17, HW_CHUNK_GROUP) ------------------------------------ */

/* Two chunks of ALLOCs and FREEs (a FREE of a block of the other chunk
 * among them), grouped: each reads back exactly; every field of the head
 * and the table out of range makes the group damaged, with its reason. */
static void group_round_trip_and_hostile_heads(void **state)
{
	(void)state;
	uint8_t recs[2][256];
	uint32_t used[2];
	for (int j = 0; j < 2; j++) {
		uint8_t *o = recs[j];
		uint64_t addr = 0;
		for (int i = 0; i < 8; i++) {
			uint64_t a = 0x7f0000001000ull + (uint64_t)(j * 8 + i) * 0x30;
			*o++ = HW_REC_ALLOC; /* kind 0 */
			o = hw_put_varint(o, 1);
			o = hw_put_varint(o, hw_zigzag((int64_t)(a - addr)));
			o = hw_put_varint(o, 40);
			o = hw_put_varint(o, 3 + (uint64_t)i % 2);
			addr = a;
			if (i % 3 == 2) { /* a FREE of this block, and of an older one */
				uint64_t f = j ? 0x7f0000001000ull + (uint64_t)i * 0x30 : a;
				*o++ = HW_REC_FREE;
				o = hw_put_varint(o, 1);
				o = hw_put_varint(o, hw_zigzag((int64_t)(f - addr)));
				addr = f;
			}
		}
		used[j] = (uint32_t)(o - recs[j]);
	}
	struct cols_work w = {0};
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	const uint8_t *rp[2] = {recs[0], recs[1]};
	size_t cap = cols_group_bound(used[0] + used[1], 2);
	uint8_t *chunk = calloc(1, HW_ZCHUNK_HEADER_SIZE + cap + 16);
	uint32_t taken = 0;
	size_t n = cols_group_encode(&w, cc, 3, 9, rp, used, 2, &taken, chunk + HW_ZCHUNK_HEADER_SIZE, cap);
	assert_int_equal(taken, 2);
	assert_true(n > 0);
	struct hw_chunk_header ch = {HW_CHUNK_MAGIC, 1,
				     HW_CHUNK_ZSTD | HW_CHUNK_COLS | HW_CHUNK_GROUP | used[0], 0};
	memcpy(chunk, &ch, sizeof(ch));
	uint32_t zl = (uint32_t)n;
	memcpy(chunk + HW_CHUNK_HEADER_SIZE, &zl, 4);
	uint8_t *pay = chunk + HW_ZCHUNK_HEADER_SIZE;
	uint32_t ks;
	memcpy(&ks, pay, 4);
	assert_int_equal(ks, 2u | 4u << 8); /* 16-byte units */

	struct cols_group g = {0};
	const size_t limit = 65536 - 16;
	cols_group_inflate(&g, dc, chunk, n, limit);
	assert_null(g.why);
	assert_int_equal(g.k, 2);
	uint8_t dst[256];
	const char *why;
	for (uint32_t j = 0; j < 2; j++) {
		assert_int_equal(cols_group_decode(&w, &g, j, dst, used[j], &why), used[j]);
		assert_memory_equal(dst, recs[j], used[j]);
	}
	assert_int_equal(cols_group_decode(&w, &g, 2, dst, used[0], &why), 0);
	assert_string_equal(why, "not in its group");

	/* each change on a fresh copy: the reason the group is refused */
	uint8_t *bad = malloc(HW_ZCHUNK_HEADER_SIZE + n + 16);
	uint8_t *bp = bad + HW_ZCHUNK_HEADER_SIZE;
	size_t fixed = 4u * 2 + 4u + 4u * HW_COLS_ALL;
	struct {
		size_t at; /* in the payload */
		uint32_t v;
		const char *why;
	} cases[] = {
		{0, 1u | 4u << 8, "its group head is out of range"}, /* K 1 */
		{0, 33u | 4u << 8, "its group head is out of range"}, /* K over the most */
		{0, 2u | 13u << 8, "its group head is out of range"}, /* shift 13 */
		{0, 2u | 4u << 8 | 1u << 16, "its group head is out of range"},
		{4, 0, "its group head is out of range"}, /* used[1] 0 */
		{4, 65536, "its group head is out of range"}, /* used[1] past a chunk */
		{8, 1u << 30, "its stream lengths run past the chunk"}, /* nlen */
		{8, 0, "a stream length out of range"}, /* nlen: no lengths */
		{12, 0, "a stream of other than its chunks' length"}, /* TAG's frame: none */
		{12 + 4u * HW_COLS_TAIL, 1u << 30, "a stream runs past the chunk"}, /* TAIL's: past the end */
	};
	/* a byte changed: the seal says so before anything is read */
	memcpy(bad, chunk, HW_ZCHUNK_HEADER_SIZE + n);
	bp[n / 2] ^= 0x10;
	cols_group_inflate(&g, dc, bad, n, limit);
	assert_string_equal(g.why, "its checksum does not match its bytes");
	/* each case sealed again (a hostile group's seal holds): the checks
	 * of what it says */
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		memcpy(bad, chunk, HW_ZCHUNK_HEADER_SIZE + n);
		memcpy(bp + cases[c].at, &cases[c].v, 4);
		cols_seal(bp, n - HW_ZSEAL_SIZE);
		cols_group_inflate(&g, dc, bad, n, limit);
		assert_non_null(g.why);
		assert_string_equal(g.why, cases[c].why);
		assert_int_equal(cols_group_decode(&w, &g, 0, dst, used[0], &why), 0);
		assert_string_equal(why, cases[c].why);
	}
	/* the first length one more: the chunk's parts no longer add up */
	memcpy(bad, chunk, HW_ZCHUNK_HEADER_SIZE + n);
	assert_true(bp[fixed] < 0x7f);
	bp[fixed]++;
	cols_seal(bp, n - HW_ZSEAL_SIZE);
	cols_group_inflate(&g, dc, bad, n, limit);
	assert_string_equal(g.why, "a stream of other than its chunks' length");
	/* a byte after the last frame, and one short (no seal at the end) */
	memcpy(bad, chunk, HW_ZCHUNK_HEADER_SIZE + n);
	bp[n] = 0;
	cols_group_inflate(&g, dc, bad, n + 1, limit);
	assert_string_equal(g.why, "bytes after its last stream");
	cols_group_inflate(&g, dc, bad, n - 1, limit);
	assert_non_null(g.why);
	cols_group_inflate(&g, dc, bad, 3, limit);
	assert_string_equal(g.why, "its group head is out of range");

	/* in a file (the head read with pread): two chunks, the second one's
	 * index and used from the group's head; a head out of range: no
	 * chunk, one warning, damaged */
	write_zchunk(ch.used, zl, pay, n, 0);
	struct trace t;
	assert_int_equal(trace_open(path, &t), HW_OK);
	assert_int_equal(t.nchunks, 2);
	assert_int_equal(t.chunks[1].index, 1);
	assert_int_equal(t.chunks[1].used, used[1]);
	assert_false(t.damaged);
	trace_close(&t);
	bool damaged;
	assert_int_equal(read_zchunk(&damaged), 10); /* 8 ALLOCs, 2 FREEs */
	assert_false(damaged);
	memcpy(bad, chunk, HW_ZCHUNK_HEADER_SIZE + n);
	uint32_t k40 = 40 | 4u << 8;
	memcpy(bp, &k40, 4);
	write_zchunk(ch.used, zl, bp, n, 0);
	assert_int_equal(read_zchunk(&damaged), -1);
	assert_true(damaged);

	free(bad);
	cols_group_free(&g);
	cols_free(&w);
	ZSTD_freeCCtx(cc);
	ZSTD_freeDCtx(dc);
	free(chunk);
}

/* A group's chunks are read where they lie in the group's buffer (no copy
 * with an end mark after each part): a chunk whose part of a stream is too
 * short must not take the bytes of the next chunk's part that follow it.
 * Chunk 0 lacks one stream's last entry, chunk 1 holds a whole chunk:
 * chunk 0 is refused on both decoding paths with the byte-for-byte
 * reading's reason (the events' reading gives none), chunk 1 reads. */
static size_t group_of_parts(uint8_t *chunk, size_t cap, uint32_t used,
			     const uint8_t *const s[2][HW_COLS_ALL], const size_t len[2][HW_COLS_ALL])
{
	uint8_t *pay = chunk + HW_ZCHUNK_HEADER_SIZE;
	uint32_t ks = 2u, u1 = used;
	memcpy(pay, &ks, 4);
	memcpy(pay + 4, &u1, 4);
	size_t fixed = 4u * 2 + 4u + 4u * HW_COLS_ALL, at = fixed;
	for (int j = 0; j < 2; j++)
		for (int i = 0; i < HW_COLS_ALL; i++)
			at = (size_t)(hw_put_varint(pay + at, len[j][i]) - pay);
	uint32_t nlen = (uint32_t)(at - fixed);
	memcpy(pay + 8, &nlen, 4);
	for (int i = 0; i < HW_COLS_ALL; i++) {
		uint8_t both[64];
		if (len[0][i]) /* an empty stream's pointer may be NULL */
			memcpy(both, s[0][i], len[0][i]);
		if (len[1][i])
			memcpy(both + len[0][i], s[1][i], len[1][i]);
		uint32_t zl = 0;
		if (len[0][i] + len[1][i]) {
			size_t z = ZSTD_compress(pay + at, cap - HW_ZCHUNK_HEADER_SIZE - at, both,
						 len[0][i] + len[1][i], 1);
			assert_false(ZSTD_isError(z));
			zl = (uint32_t)z;
			at += z;
		}
		memcpy(pay + 12 + 4u * i, &zl, 4);
	}
	struct hw_chunk_header ch = {HW_CHUNK_MAGIC, 1,
				     HW_CHUNK_ZSTD | HW_CHUNK_COLS | HW_CHUNK_GROUP | used, 0};
	memcpy(chunk, &ch, sizeof(ch));
	uint32_t zl = (uint32_t)at;
	memcpy(chunk + HW_CHUNK_HEADER_SIZE, &zl, 4);
	return at;
}

static void group_parts_read_in_place(void **state)
{
	(void)state;
	/* as column_events_hostile: ALLOC 0x1000, FREE of it: 9 raw bytes */
	static const uint8_t tag[] = {HW_REC_ALLOC, HW_REC_FREE}, seq[] = {1, 1}, hint[] = {0},
			     ad[] = {0x80, 0x40}, size[] = {32}, stack[] = {2}, ref[] = {1};
	const struct {
		int stream;
		const char *why; /* chunk 0 without the stream's last byte */
	} cases[] = {
		{-1, NULL},
		{HW_COLS_HINT, "a stream ends early"},
		{HW_COLS_SIZE, "a stream ends early"},
		{HW_COLS_REF, "a stream ends early"},
		{HW_COLS_STACK, "a stream ends early"},
		{HW_COLS_SEQ, "a stream ends early"},
		{HW_COLS_ADELTA, "a stream ends early"},
	};
	size_t cap = 1 << 16;
	uint8_t *chunk = calloc(1, cap);
	ZSTD_DCtx *dc = ZSTD_createDCtx();
	struct cols_work w = {0};
	struct cols_group g = {0};
	struct hw_event *ev = NULL;
	size_t evcap = 0;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		const uint8_t *s[2][HW_COLS_ALL] = {{0}};
		size_t len[2][HW_COLS_ALL] = {{0}};
		for (int j = 0; j < 2; j++) {
			s[j][HW_COLS_TAG] = tag, len[j][HW_COLS_TAG] = sizeof(tag);
			s[j][HW_COLS_SEQ] = seq, len[j][HW_COLS_SEQ] = sizeof(seq);
			s[j][HW_COLS_HINT] = hint, len[j][HW_COLS_HINT] = sizeof(hint);
			s[j][HW_COLS_ADELTA] = ad, len[j][HW_COLS_ADELTA] = sizeof(ad);
			s[j][HW_COLS_SIZE] = size, len[j][HW_COLS_SIZE] = sizeof(size);
			s[j][HW_COLS_STACK] = stack, len[j][HW_COLS_STACK] = sizeof(stack);
			s[j][HW_COLS_REF] = ref, len[j][HW_COLS_REF] = sizeof(ref);
		}
		if (cases[c].stream >= 0)
			len[0][cases[c].stream]--;
		size_t n = group_of_parts(chunk, cap, 9, s, len);
		cols_group_inflate(&g, dc, chunk, n, 65536 - 16);
		assert_null(g.why);
		for (uint32_t j = 0; j < 2; j++) {
			uint8_t d1[64], d2[64];
			const char *why1 = "unset", *why2 = "unset";
			size_t nev = 99, tail_at = 99;
			size_t n1 = cols_group_decode(&w, &g, j, d1, 9, &why1);
			size_t n2 = group_decode_events(&g, j, d2, 9, &ev, &evcap, &nev,
							     &tail_at, &why2);
			if (j == 0 && cases[c].why) {
				assert_int_equal(n1, 0);
				assert_int_equal(n2, 0);
				assert_string_equal(why1, cases[c].why);
				assert_string_equal(why2, cases[c].why);
				assert_int_equal(nev, 0);
				continue;
			}
			assert_null(why1);
			assert_null(why2);
			assert_int_equal(n1, 9);
			assert_int_equal(nev, 3);
			assert_int_equal(ev[1].op, EV_ALLOC);
			assert_int_equal(ev[1].addr, 0x1000);
			assert_int_equal(ev[2].op, EV_FREE);
			assert_int_equal(ev[2].addr, 0x1000);
			assert_int_equal(ev[2].seq, 2);
		}
	}
	free(ev);
	cols_group_free(&g);
	cols_free(&w);
	ZSTD_freeDCtx(dc);
	free(chunk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(decodes_every_kind),
		cmocka_unit_test(bad_headers),
		cmocka_unit_test(stop_record),
		cmocka_unit_test(damaged_record_keeps_prefix),
		cmocka_unit_test(cut_file_reads_what_is_there),
		cmocka_unit_test(old_finalize_mark_before_older_free),
		cmocka_unit_test(old_reused_thread_ids),
		cmocka_unit_test(slabs_and_thread_serials),
		cmocka_unit_test(compressed_reads_the_same),
		cmocka_unit_test(hostile_compressed_chunks),
		cmocka_unit_test(good_column_chunk),
		cmocka_unit_test(column_map_grows),
		cmocka_unit_test(hostile_column_chunks),
		cmocka_unit_test(column_events_as_raw),
		cmocka_unit_test(column_stack_runs_as_raw),
		cmocka_unit_test(column_short_form_wrap),
		cmocka_unit_test(column_events_hostile),
		cmocka_unit_test(many_threads_pin_their_groups),
		cmocka_unit_test(first_group_is_small),
		cmocka_unit_test(column_damage_after_pieces),
		cmocka_unit_test(column_classes_start_empty),
		cmocka_unit_test(compress_two_threads_as_one),
		cmocka_unit_test(compress_drops_only_zero_blocks),
		cmocka_unit_test(short_forms_read_as_long),
		cmocka_unit_test(hostile_short_forms),
		cmocka_unit_test(compress_keeps_a_cut_chunk),
		cmocka_unit_test_setup_teardown(compress_keeps_plain_where_columns_read_slower, setup, teardown),
		cmocka_unit_test_setup_teardown(compressed_chunks_are_sealed, setup, teardown),
		cmocka_unit_test(compress_write_error_keeps_the_trace),
		cmocka_unit_test(compress_leaves_a_trace_in_use),
		cmocka_unit_test(group_round_trip_and_hostile_heads),
		cmocka_unit_test(group_parts_read_in_place),
	};
	int failed = cmocka_run_group_tests(tests, setup, teardown);
	/* again with the replay's column chunks in pieces of 1 and 3 records:
	 * a piece ends at every record, and at every other place in a run */
	cols_piece_records = 1;
	failed += cmocka_run_group_tests_name("pieces of 1 record", tests, setup, teardown);
	cols_piece_records = 3;
	failed += cmocka_run_group_tests_name("pieces of 3 records", tests, setup, teardown);
	return failed;
}
