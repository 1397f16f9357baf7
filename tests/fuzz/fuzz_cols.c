/* libFuzzer target (fuzz_cols): a column chunk whose streams hold any
 * bytes, read the two ways the reader has. The input is the streams
 * themselves, before zstd (so that the fuzzer shapes what the decoder
 * walks, not zstd frames):
 *   used:u16  then per stream (HW_COLS_STREAMS of them, in order):
 *   len:u16 and len bytes (the input ends early: the rest are empty)
 * The harness compresses each stream into its frame, puts the payload in
 * a one-chunk trace, and checks that the replay's events (the column runs
 * decoded straight into events, cols_dec_piece) are those of the raw
 * records the same payload rebuilds to (cols_decode, then the raw reading),
 * in pieces of 1 to 16 records, and that a payload the byte-for-byte
 * reading refuses is a damaged chunk to the replay too.
 * Then the same streams as both chunks of a group (HW_CHUNK_GROUP), with
 * after them (when the input has them) the group's FSEL stream (len:u16 and
 * len bytes) and its address shift (u8, modulo HW_COLS_SHIFT_MAX + 1): its
 * events against those of the raw chunks it rebuilds to, the same way. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "cols.h"
#include "heapwise/varint.h"
#include "events.h"
#include "reader.h"
#include "util.h"

#define CHUNK (64u * 1024u)

/* A format-3 file header of CHUNK-byte chunks at b. */
static void put_file_header(uint8_t *b)
{
	struct hw_file_header h = {.version = HW_FORMAT_VERSION,
				   .header_size = HW_HEADER_SIZE,
				   .chunk_size = CHUNK,
				   .page_size = 4096};
	memcpy(h.magic, HW_MAGIC, sizeof(h.magic));
	memcpy(b, &h, sizeof(h));
}

/* A format-3 trace: the header, then one chunk of thread 1 (head: its 16
 * bytes, and for a compressed chunk its zlen; body: what follows). */
static uint8_t *trace_with(const struct hw_chunk_header *ch, const void *zlen, const void *body,
			   size_t body_len, size_t *size)
{
	size_t head = HW_CHUNK_HEADER_SIZE + (zlen ? 4u : 0u);
	size_t n = HW_HEADER_SIZE + head + body_len;
	if (!zlen && n < HW_HEADER_SIZE + CHUNK)
		n = HW_HEADER_SIZE + CHUNK;
	uint8_t *b = xcalloc(1, n);
	put_file_header(b);
	memcpy(b + HW_HEADER_SIZE, ch, sizeof(*ch));
	if (zlen)
		memcpy(b + HW_HEADER_SIZE + HW_CHUNK_HEADER_SIZE, zlen, 4);
	memcpy(b + HW_HEADER_SIZE + head, body, body_len);
	*size = n;
	return b;
}

/* A format-3 trace of n raw chunks of thread 1 (indexes 0..n-1), chunk j's
 * records rec[j] (len[j] bytes). */
static uint8_t *raw_trace(uint8_t *const *rec, const size_t *len, size_t n, size_t *size)
{
	size_t total = HW_HEADER_SIZE + n * CHUNK;
	uint8_t *b = xcalloc(1, total);
	put_file_header(b);
	for (size_t j = 0; j < n; j++) {
		struct hw_chunk_header ch = {HW_CHUNK_MAGIC, 1, (uint32_t)len[j], (uint32_t)j};
		memcpy(b + HW_HEADER_SIZE + j * CHUNK, &ch, sizeof(ch));
		memcpy(b + HW_HEADER_SIZE + j * CHUNK + HW_CHUNK_HEADER_SIZE, rec[j], len[j]);
	}
	*size = total;
	return b;
}

/* The streams s (len bytes each) as both chunks of a group of used bytes
 * each, shift sh: the replay's events against those of the records the
 * group rebuilds to, read raw. */
/* The events of two traces' readings are the same (what: which kind of
 * chunk was rebuilt, for the message), or the run aborts. refused: the
 * byte-for-byte reading refused the chunk (raw has no records): the
 * replay's decoder, a piece at a time, may have handed out the pieces
 * before the one where that shows, and must say the chunk is damaged. */
static void same_events(struct trace *raw, struct trace *z, const char *what, bool refused)
{
	size_t n1, n2;
	uint8_t *e1 = fuzz_events_of(raw, &n1), *e2 = fuzz_events_of(z, &n2);
	if (refused && !z->damaged) {
		fprintf(stderr, "%s refused by the byte-for-byte reading, not by the replay's\n", what);
		abort();
	}
	if (!refused && (n1 != n2 || memcmp(e1, e2, n1))) {
		fprintf(stderr, "%s events: %zu bytes, their records read raw: %zu: they differ\n",
			what, n2, n1);
		abort();
	}
	free(e1);
	free(e2);
}

static void group_check(uint32_t used, const uint8_t *const s[HW_COLS_ALL],
			const size_t len[HW_COLS_ALL], unsigned sh)
{
	enum { K = 2 };
	static uint8_t pay[4u * K + 4u + 4u * HW_COLS_ALL + K * HW_COLS_ALL * HW_VARINT_MAX +
			   HW_COLS_ALL * 1024u + 4u * 65536u];
	uint32_t ks = K | sh << 8, u1 = used;
	memcpy(pay, &ks, 4);
	memcpy(pay + 4, &u1, 4);
	size_t fixed = 4u * K + 4u + 4u * HW_COLS_ALL, at = fixed;
	for (int j = 0; j < K; j++)
		for (int i = 0; i < HW_COLS_ALL; i++)
			at = (size_t)(hw_put_varint(pay + at, len[i]) - pay);
	uint32_t nlen = (uint32_t)(at - fixed);
	memcpy(pay + 4u * K, &nlen, 4);
	uint8_t *both = xmalloc(2 * 65536u + 1);
	for (int i = 0; i < HW_COLS_ALL; i++) {
		uint32_t zl = 0;
		if (len[i]) {
			memcpy(both, s[i], len[i]);
			memcpy(both + len[i], s[i], len[i]);
			size_t z = ZSTD_compress(pay + at, sizeof(pay) - at, both, 2 * len[i], 1);
			if (ZSTD_isError(z))
				abort();
			zl = (uint32_t)z;
			at += z;
		}
		memcpy(pay + 4u * K + 4u + 4u * i, &zl, 4);
	}
	free(both);
	uint32_t zlen = (uint32_t)at;
	struct hw_chunk_header ch = {HW_CHUNK_MAGIC, 1,
				     used | HW_CHUNK_ZSTD | HW_CHUNK_COLS | HW_CHUNK_GROUP, 0};
	size_t zn;
	uint8_t *zt = trace_with(&ch, &zlen, pay, at, &zn);
	struct trace tz;
	if (trace_open_buffer(zt, zn, "fuzz.hwt", &tz) != HW_OK) {
		fprintf(stderr, "the group trace does not open\n");
		abort();
	}
	uint8_t *rec[K];
	size_t n[K] = {0, 0};
	for (int j = 0; j < K; j++) {
		rec[j] = xmalloc(used);
		if (tz.nchunks == K)
			n[j] = trace_chunk_decompress(&tz, (size_t)j, rec[j]);
	}
	size_t rn;
	uint8_t *rt = raw_trace(rec, n, K, &rn);
	struct trace tr, tz2;
	if (trace_open_buffer(rt, rn, "fuzz.hwt", &tr) != HW_OK ||
	    trace_open_buffer(zt, zn, "fuzz.hwt", &tz2) != HW_OK)
		abort();
	/* a chunk the group does not rebuild reads as no records (the raw
	 * trace's empty chunk), as does a group that does not open */
	same_events(&tr, &tz2, "group", tz.nchunks != K || n[0] != used || n[1] != used);
	trace_close(&tz2);
	trace_close(&tr);
	trace_close(&tz);
	free(rt);
	for (int j = 0; j < K; j++)
		free(rec[j]);
	free(zt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint32_t used = (uint32_t)(data[0] | data[1] << 8) % (CHUNK - HW_CHUNK_HEADER_SIZE);
	if (!used)
		return 0;
	/* the replay's pieces: of 1 to 16 records (their ends everywhere) */
	cols_piece_records = 1 + size % 16;
	size_t at = 2;
	/* the payload: zlen[i] u32 each, then the frames */
	static uint8_t pay[4u * HW_COLS_STREAMS + HW_COLS_STREAMS * 1024u + 2u * 65536u];
	size_t len = 4u * HW_COLS_STREAMS;
	for (int s = 0; s < HW_COLS_STREAMS; s++) {
		size_t n = 0;
		if (at + 2 <= size) {
			n = (size_t)(data[at] | data[at + 1] << 8);
			at += 2;
			if (n > size - at)
				n = size - at;
		}
		uint32_t zl = 0;
		if (n) {
			size_t z = ZSTD_compress(pay + len, sizeof(pay) - len, data + at, n, 1);
			if (ZSTD_isError(z))
				return 0;
			zl = (uint32_t)z;
			len += z;
			at += n;
		}
		memcpy(pay + 4u * s, &zl, 4);
	}
	/* the streams of the group: these, FSEL, and its shift */
	const uint8_t *gs[HW_COLS_ALL];
	size_t glen[HW_COLS_ALL];
	{
		size_t a = 2;
		for (int s = 0; s < HW_COLS_ALL; s++) {
			size_t k = 0;
			if (a + 2 <= size) {
				k = (size_t)(data[a] | data[a + 1] << 8);
				a += 2;
				if (k > size - a)
					k = size - a;
			}
			gs[s] = data + a;
			glen[s] = k;
			a += k;
		}
		group_check(used, gs, glen, a < size ? data[a] % (HW_COLS_SHIFT_MAX + 1) : 0);
	}
	uint32_t zlen = (uint32_t)len;
	struct hw_chunk_header ch = {HW_CHUNK_MAGIC, 1, used | HW_CHUNK_ZSTD | HW_CHUNK_COLS, 0};
	size_t zn;
	uint8_t *zt = trace_with(&ch, &zlen, pay, len, &zn);
	struct trace tz;
	if (trace_open_buffer(zt, zn, "fuzz.hwt", &tz) != HW_OK) {
		fprintf(stderr, "the column trace does not open\n");
		abort();
	}
	/* the byte-for-byte reading: the records, then the raw trace of them */
	uint8_t *rec = xmalloc(used);
	size_t n = tz.nchunks == 1 ? trace_chunk_decompress(&tz, 0, rec) : 0;
	struct hw_chunk_header rh = {HW_CHUNK_MAGIC, 1, (uint32_t)n, 0};
	size_t rn;
	uint8_t *rt = trace_with(&rh, NULL, rec, n, &rn);
	struct trace tr;
	if (trace_open_buffer(rt, rn, "fuzz.hwt", &tr) != HW_OK) {
		fprintf(stderr, "the raw trace does not open\n");
		abort();
	}
	/* a fresh reading of the column trace (the first one's warning state
	 * and buffers stay out of it) */
	struct trace tz2;
	if (trace_open_buffer(zt, zn, "fuzz.hwt", &tz2) != HW_OK)
		abort();
	same_events(&tr, &tz2, "column", n != used);
	trace_close(&tz2);
	trace_close(&tr);
	trace_close(&tz);
	free(rt);
	free(rec);
	free(zt);
	return 0;
}
