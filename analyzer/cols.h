/* A compressed chunk's records split into columns (issue 17, compact traces;
 * the layout is drawn in heapwise/trace_format.h, HW_CHUNK_COLS).
 *
 * `heapwise compress` re-encodes a chunk's records before zstd: every field
 * goes to its own stream (tags, sequence deltas, sizes, stack ids, ...),
 * and addresses are written as what a reader can predict them from: a
 * FREE's address as the distance back to the ALLOC that made it, an
 * ALLOC's as the block a FREE of its size class gave back last, or else
 * the difference to the last ALLOC of that class. The reader rebuilds the
 * chunk's exact record bytes when it inflates it, so every command reads
 * the ordinary record stream. The encoder splits only what the decoder
 * writes back byte for byte (varints in their shortest form, known tags);
 * the rest of a chunk from the first record it does not split rides along
 * as it is. */
#ifndef HEAPWISE_COLS_H
#define HEAPWISE_COLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heapwise/trace_format.h"

/* Per-chunk working memory of the encoder and decoder, reused across
 * chunks (zeroed before first use, freed by cols_free). */
struct cols_work {
	uint8_t *buf; /* decoder: the decompressed streams */
	size_t buf_cap;
	uint8_t *s[HW_COLS_ALL]; /* encoder: the streams */
	size_t slen[HW_COLS_ALL], scap[HW_COLS_ALL];
	uint64_t *al_addr; /* ALLOCs of the chunk, in order */
	uint32_t *al_cls; /* their classes: byte offsets into cls */
	size_t al_cap;
	struct cols_class *cls; /* HW_COLS_CLASSES */
	struct cols_slot *map; /* encoder: address -> latest ALLOC */
	size_t map_cap, map_n; /* its slots, and the chunk's entries in it */
	uint32_t gen;
	unsigned shift; /* the address deltas' unit: 1 << shift bytes (a group's) */
	uint64_t dor; /* encoder: the address deltas of a group ORed */
	bool v2; /* a group's model (FSEL), not a column chunk's */
};

void cols_free(struct cols_work *w);

/* Encodes the `used` record bytes at rec into out (cap bytes): the payload
 * of a HW_CHUNK_COLS chunk. cctx: a zstd compression context (void * to
 * keep zstd.h out of the callers). Returns the payload's length, or 0 when
 * the chunk is to be stored otherwise (its streams would outgrow what a
 * reader accepts, or the payload does not fit in cap). */
size_t cols_encode(struct cols_work *w, void *cctx, const uint8_t *rec, size_t used, uint8_t *out,
		   size_t cap);

/* Rebuilds into dst the `used` record bytes of a payload of zlen bytes.
 * dctx: a zstd decompression context. Returns used, or 0 with *why set
 * (a damaged or hostile payload: nothing is read or written out of
 * bounds). */
size_t cols_decode(struct cols_work *w, void *dctx, const uint8_t *z, size_t zlen, uint8_t *dst,
		   size_t used, const char **why);

/* In the records cols_dec_piece writes: one run of ALLOC, FREE and
 * REALLOC records, handed out as events (never a record tag: no body
 * format has it, so the column decoder never writes it as a record). */
#define HW_COLS_RUN 0xff
/* Likewise one run of STACK records: one HW_COLS_DEFS byte in dst and, in
 * *ev, a header event (op EV_RUN_HEADER, seq: the records, addr: their raw
 * bytes) and one entry a record (stack: its id, size: its parent, addr:
 * its frame, kind: its frame kind), decoded and checked as the raw reading
 * would (cursor_next hands them out as records). */
#define HW_COLS_DEFS 0xfe

struct hw_event;
struct cols_group;

/* The replay's decoder of a column chunk: like cols_decode, but each run
 * of ALLOC, FREE and REALLOC records comes out as one HW_COLS_RUN byte in
 * dst (each run of STACK records as one HW_COLS_DEFS byte) and, in *ev
 * (grown as needed, *ev_cap events), a header event (op EV_RUN_HEADER,
 * seq: the number of events after it, addr: the raw bytes of the run,
 * stack and kind: the last ALLOC's stack id and the kind after the run,
 * where the raw reading of the records after it starts from) and the
 * events of its records, as the raw reading would give them; every other
 * record is rebuilt byte for byte. It goes a piece at a time: a piece's
 * events stay in the first-level cache from the decoder to the merge
 * that reads them (a whole chunk's, 13,000 events of 32 bytes, did not).
 * One a reader of chunks (a cursor), kept from chunk to chunk. */
struct cols_dec;
struct cols_dec *cols_dec_new(void);
void cols_dec_free(struct cols_dec *x);
/* Starts on a column chunk (payload z of zlen bytes, `used` record bytes)
 * or on chunk j of an inflated group (which must stay as it is until the
 * chunk's last piece). false with *why: damaged. */
bool cols_dec_begin(struct cols_dec *x, void *dctx, const uint8_t *z, size_t zlen, size_t used,
		    const char **why);
bool cols_dec_begin_group(struct cols_dec *x, const struct cols_group *g, uint32_t j, size_t used,
			  const char **why);
/* The next piece: cols_piece_records records of runs (up to the end of a
 * decoder's block more) and the other records up to the next run; its
 * records' bytes appended to dst (room: the chunk's used bytes; *dlen:
 * the bytes dst holds, before and after), its events in *ev from *first
 * to *nev (the entries before *first are the decoder's). COLS_MORE: more
 * pieces follow; COLS_LAST: this was the last (*tail_at: where the
 * records the columns did not split start in dst; HW_COLS_RUN and
 * HW_COLS_DEFS bytes lie only before it). When a piece is not well
 * formed (a damaged stream, a reference out of range, more bytes than
 * `used`) or holds a record the raw reading refuses or reads specially
 * (a sequence number that wraps or is the last one, a stack id over 32
 * bits, a STACK node that names itself), the whole chunk is rebuilt byte
 * for byte into dst instead, with the checks and messages of cols_decode:
 * COLS_RAW, *dlen = used (a reader goes on from the raw offset it had
 * reached), or COLS_BAD with *why (damaged: the pieces before it were
 * sound as far as they went). */
enum cols_piece { COLS_MORE, COLS_LAST, COLS_RAW, COLS_BAD };
enum cols_piece cols_dec_piece(struct cols_dec *x, uint8_t *dst, size_t *dlen,
			       struct hw_event **ev, size_t *ev_cap, size_t *first, size_t *nev,
			       size_t *tail_at, const char **why);
/* Records a piece holds (tests lower it to put piece ends everywhere). */
extern size_t cols_piece_records;

/* --- groups (HW_CHUNK_GROUP) --------------------------------------------- */

/* Encodes k (2 to HW_COLS_GROUP_MAX) consecutive chunks of one thread, the
 * records of chunk j at rec[j] (used[j] bytes, their sum at most
 * HW_COLS_GROUP_BYTES), into out (cap bytes, cols_group_bound's; level:
 * cctx's; a group that shrinks less than 12 times is compressed again at
 * poor_level when that is higher, and cctx set back): the
 * payload of a HW_CHUNK_GROUP chunk after its 20-byte head. It stops before
 * the first chunk that would not be stored in columns (cols_encode's 0):
 * *taken, the chunks the payload holds. Returns the payload's length, or 0
 * when it holds fewer than 2 chunks or does not fit. */
size_t cols_group_encode(struct cols_work *w, void *cctx, int level, int poor_level,
			 const uint8_t *const *rec,
			 const uint32_t *used, uint32_t k, uint32_t *taken, uint8_t *out, size_t cap);
/* A group that shrinks less than this many times is compressed again at
 * the poor level (cols_group_encode's, when it is above the level). */
#define HW_COLS_POOR 12u
/* Room for cols_group_encode's payload of k chunks of total_used bytes. */
size_t cols_group_bound(size_t total_used, uint32_t k);

/* A group's head (the chunk's 16 bytes at chunk, zlen bytes of payload
 * after its zlen field; limit: the most record bytes a chunk holds): its
 * chunk count and each chunk's used. false: out of range (damaged). */
bool cols_group_head(const uint8_t *chunk, size_t zlen, size_t limit, uint32_t *k,
		     unsigned *shift, uint32_t used[HW_COLS_GROUP_MAX]);

/* A group's streams, inflated once for all its chunks (the reader keeps a
 * few of them). */
struct cols_group {
	uint64_t key; /* the reader's: the group's offset in the file */
	bool read_all; /* the reader's: its last chunk was read */
	uint32_t pins; /* the reader's: cursors decoding a chunk of it (cols_dec) */
	const char *why; /* damaged: why; NULL: sound */
	uint32_t k;
	unsigned shift; /* the address deltas' unit: 1 << shift bytes */
	uint32_t used[HW_COLS_GROUP_MAX];
	uint8_t *buf; /* the streams, one after another (then slack bytes) */
	size_t cap; /* buf's bytes (kept for the next group inflated here) */
	size_t at[HW_COLS_GROUP_MAX][HW_COLS_ALL]; /* chunk j's part of stream s */
	uint32_t len[HW_COLS_GROUP_MAX][HW_COLS_ALL];
};

/* Inflates the group whose chunk (head) is at chunk, zlen payload bytes
 * after its zlen field, into g (g->why set when it is damaged: nothing is
 * read or written out of bounds). */
void cols_group_inflate(struct cols_group *g, void *dctx, const uint8_t *chunk, size_t zlen,
			size_t limit);
void cols_group_free(struct cols_group *g);
/* cols_decode of the group's chunk j (used bytes). */
size_t cols_group_decode(struct cols_work *w, const struct cols_group *g, uint32_t j, uint8_t *dst,
			 size_t used, const char **why);

/* The largest payload cols_encode can write for a chunk of chunk_size bytes
 * (what a reader accepts as a payload's length). */
size_t cols_bound(size_t chunk_size);

/* --- seal ---------------------------------------------------------------- */

/* A compressed chunk's payload ends in its seal (trace_format.h): a zstd
 * skippable frame of HW_ZSEAL_SIZE bytes holding a hash of the payload's
 * bytes before it, so a damaged chunk is found by hashing what is stored,
 * not what it inflates to (its zstd frames carry no checksum of their
 * content: hashing that cost as much as a tenth of a report's reading). */
#define HW_ZSEAL_SIZE 16u

/* Appends the seal of the len bytes at p (room: HW_ZSEAL_SIZE more bytes
 * after them); returns len + HW_ZSEAL_SIZE. */
size_t cols_seal(uint8_t *p, size_t len);

/* The seal of a payload of zlen bytes: NULL when it is sound or there is
 * none (written before seals: its frames' own checksums, where they have
 * them, are zstd's to check), else why the chunk is damaged. */
const char *cols_seal_broken(const uint8_t *p, size_t zlen);

#endif
