/* Trace reader (analyzer, first stage): validates the header, finds the
 * chunks, and decodes records with every byte bounds-checked. A damaged or
 * truncated chunk ends at its first bad record and marks the trace truncated. */
#ifndef HW_ANALYZER_READER_H
#define HW_ANALYZER_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "heapwise/trace_format.h"

struct cols_work;

struct chunk_ref {
	uint64_t offset; /* of the chunk header in the file */
	uint32_t thread; /* serial in its process (format 3), OS thread id (format 2) */
	uint32_t index;
	uint32_t used; /* record bytes that may be read (decompressed) */
	uint32_t zlen; /* a compressed chunk: bytes of its zstd frame; 0: raw */
	bool cols; /* a compressed chunk in column streams (HW_CHUNK_COLS) */
	/* a chunk of a group (HW_CHUNK_GROUP): its position in the group and
	 * the group's size (0: not in a group); offset and zlen: the group's */
	uint8_t gj, gk;
};

struct trace {
	char *path;
	const uint8_t *data;
	size_t size;
	struct hw_file_header hdr;
	char *cmdline; /* arguments joined with spaces */
	char *exe;
	struct chunk_ref *chunks;
	size_t nchunks;
	bool damaged; /* a chunk had a bad record or the file was cut */
	bool mapped; /* data is our own mapping */
	bool warned;
	size_t ncompressed; /* chunks stored compressed */
	struct hw_stop_record stop; /* recording stopped early (reason != 0), else zeros */
	/* decompression: one context, used by one thread at a time (the
	 * merge's decoding thread, or the caller's) */
	void *dctx;
	struct cols_work *cols; /* the column decoder's memory (same thread) */
	/* groups inflated last (HW_CHUNK_GROUP), by their offset, the oldest
	 * replaced (same thread): 8 slots, more while cursors pin them */
	struct cols_group **groups;
	size_t ngroups, group_next;
	/* labels of MARK records read from compressed chunks: the chunk's
	 * buffer goes, the event still points at its label */
	char **labels;
	size_t nlabels, labelcap;
	/* buffers of compressed chunks read to the end, for the next ones
	 * (freeing and mapping 64 KiB each time cost page faults) */
	struct spare_buf {
		uint8_t *p;
		size_t cap;
	} spare[8];
	size_t nspare;
	/* a trace followed as it grows (trace_open_follow) */
	struct follow_state *follow;
};

struct hw_record {
	uint8_t tag;
	uint8_t raw_tag; /* the tag byte as written (HW_REC_ALLOC_NEXT for an ALLOC's short form) */
	uint8_t kind;
	uint8_t frame_kind;
	uint32_t stack;
	uint64_t seq, seq2; /* seq2: the alloc half of REALLOC/REMAP */
	uint64_t addr, addr2; /* addr2: new address of REALLOC/REMAP */
	uint64_t size, size2; /* REMAP: old length, new length */
	uint64_t id, parent, frame;
	uint64_t time_ns, rss;
	uint64_t bias, lo, hi;
	const uint8_t *build_id;
	size_t build_id_len;
	const char *path;
	size_t path_len;
	uint64_t allocs, frees;
	/* CODE: id in `id`, first line in `frame`, file in path, and: */
	const char *name;
	size_t name_len;
	const uint8_t *blob; /* the line table */
	size_t blob_len;
	/* PYTHON */
	uint64_t version;
	uint8_t frames_ok;
	/* PYTHON_INFO: flags, the layout row's name in path, the reason in name */
	uint64_t flags;
	/* THREAD: serial in id, and */
	uint64_t os_tid;
};

enum read_result { READ_RECORD, READ_END, READ_BAD };

/* What an event does. A REALLOC or REMAP comes out as two events: its free
 * half (at seq) and its alloc half (at seq2). EV_TIME and EV_THREAD are not
 * events of the program: they set the time and thread of the events after
 * them. */
enum ev_op {
	EV_ALLOC, /* addr, size, stack, kind */
	EV_FREE, /* addr, kind */
	EV_REALLOC_FREE, /* addr (the old block), kind */
	EV_REALLOC_ALLOC, /* addr (the new block), size, stack, kind */
	EV_UNMAP, /* addr, size (length) */
	EV_REMAP_UNMAP, /* addr, size (old length) */
	EV_REMAP_MAP, /* addr, size (new length), stack (kind: what the free half unmapped) */
	EV_TRAILER, /* addr: allocations, size: frees */
	EV_MARK, /* addr: label (pointer into the trace), size: its length, kind */
	EV_TIME, /* addr: time in ns */
	EV_THREAD, /* addr: the thread (chunk_ref.thread) */
	EV_RETAG, /* addr (a live block), stack: its new owner (a free list's reuse) */
	/* inside the reader only: a run of a column chunk's events (cols.h) */
	EV_RUN_HEADER = 0xff,
};

struct __attribute__((aligned(16))) hw_event {
	uint64_t seq;
	uint64_t addr;
	uint64_t size;
	uint32_t stack;
	uint8_t op; /* enum ev_op */
	uint8_t kind;
};

struct cursor {
	const struct trace *trace;
	const struct chunk_ref *chunk;
	const uint8_t *start, *p, *end;
	uint64_t last_seq, last_addr;
	uint64_t last_stack; /* the _NEXT tags' bases (trace_format.h) */
	uint8_t last_kind;
	uint64_t time_ns;
	uint32_t thread; /* the chunk's */
	bool after_mark; /* the record read last was a MARK (see reader.c) */
	/* merge state: the events of the record read last */
	struct hw_record rec;
	struct hw_event ev[3];
	uint64_t ev_time;
	int nev, at;
	uint8_t *buf; /* a compressed chunk's records, decompressed (owned) */
	size_t buf_cap;
	/* a column chunk read by cursor_init_events: its runs of ALLOC, FREE
	 * and REALLOC records are HW_COLS_RUN bytes before run_lim, its runs
	 * of STACK records HW_COLS_DEFS bytes, their events in cev (see
	 * cols_dec_piece) */
	const uint8_t *run_lim;
	struct hw_event *cev; /* owned, kept from chunk to chunk */
	size_t cev_cap, cev_at, cev_n;
	/* the chunk is decoded a piece at a time: the next piece when c->p
	 * reaches c->end (cursor_piece); the decoder is owned and kept from
	 * chunk to chunk, a group's streams pinned while it reads them */
	struct cols_dec *dec;
	struct cols_group *pinned;
	bool piecing;
	uint64_t run_left; /* events (or STACK records) of the current run not handed out yet */
	uint64_t shrink; /* raw bytes of the runs passed, less their one byte each */
	bool bad; /* the chunk ended at a damaged record */
};

/* Opens and maps a trace and finds its chunks. On error prints one line
 * naming the file and returns the error. */
enum hw_err trace_open(const char *path, struct trace *t);
/* The same for a trace already in memory (the buffer must outlive t; it is
 * not freed by trace_close). For the fuzzer and tests. */
enum hw_err trace_open_buffer(const uint8_t *data, size_t size, const char *name, struct trace *t);
void trace_close(struct trace *t);

/* A live trace, followed as the process writes it (heapwise follow): the
 * file is mapped with room to grow (a mapping that never moves, so records
 * read stay where they are) and trace_refresh takes in what was published
 * since: new chunks and slab slots (t->chunks may move; chunk numbers
 * stay), the stop record. Format 3, uncompressed only (else an error line
 * and HW_ERR_VERSION). A chunk's published `used` is read with
 * trace_chunk_used_now. */
enum hw_err trace_open_follow(const char *path, struct trace *t);
void trace_refresh(struct trace *t);
/* The file grew past what trace_open_follow could map: what is past it is
 * not read (the follower gives up: its caller checks another way). */
bool trace_follow_outgrown(const struct trace *t);
/* Chunk i's records published so far (acquire: every byte before them is
 * written), never less than t->chunks[i].used, which it updates. */
uint32_t trace_chunk_used_now(struct trace *t, size_t i);
/* The number of the chunk that follows chunk i in its thread, if it was
 * found yet, else SIZE_MAX. */
size_t trace_next_chunk(const struct trace *t, size_t i);
/* "recording stopped at 1.234 s: <why>: figures are up to then" into buf,
 * or NULL when recording did not stop early (stop.c). */
const char *trace_stop_note(const struct trace *t, char *buf, size_t size);
/* The stop's reason as a word for JSON ("size_cap", ...; stop.c). */
const char *trace_stop_code(const struct trace *t);

/* Positions a cursor at the first record of chunk i. A compressed chunk is
 * decompressed into c->buf, which the caller gives back with cursor_done
 * before the next cursor_init of that cursor; one that does not
 * decompress to exactly its size is damaged (one warning, no records). */
void cursor_init(struct cursor *c, const struct trace *t, size_t i);
/* The same for the replay (merge.c): a column chunk's ALLOC, FREE and
 * REALLOC records are decoded from its columns straight into events
 * rather than rebuilt as bytes and parsed again; what the cursor hands
 * out is the same. The cursor keeps its event buffer from chunk to chunk:
 * c must have been zeroed, or used with cursor_init_events before. */
void cursor_init_events(struct cursor *c, const struct trace *t, size_t i);
/* Gives the cursor's buffer back (to the trace's spares), if any. */
void cursor_done(struct cursor *c);
/* cursor_done, and frees the event buffer of cursor_init_events. */
void cursor_release(struct cursor *c);

/* Decompresses chunk i's records into dst (room for its `used` bytes).
 * Returns the bytes written, which is `used` unless the frame is damaged
 * (then a warning was printed and the trace is marked damaged). */
size_t trace_chunk_decompress(const struct trace *t, size_t i, uint8_t *dst);

/* Decodes the next record. READ_BAD: the chunk ends here (a warning with the
 * offset was printed once per trace, and the trace is marked damaged). */
enum read_result cursor_next(struct cursor *c, struct hw_record *r);

/* Decodes the next record: the events of an event record go to ev (returns
 * 1 to 3, in sequence order, with their time in c->ev_time), a definition to
 * *r (returns 0). Returns -1 at the end of the chunk or at a bad record (see
 * cursor_next). Three events: a MARK and the free or realloc written after
 * it with an older sequence number (traces of heapwise before format 3). */
int cursor_next_events(struct cursor *c, struct hw_record *r, struct hw_event ev[3]);

/* Decodes a run of ALLOC, FREE and REALLOC records into out (at most max
 * events) while their sequence numbers stay below limit; stops before any
 * other record and at the end (the caller goes on with cursor_next_events).
 * Their time is c->time_ns. Returns the number of events. */
size_t cursor_decode_run(struct cursor *c, struct hw_event *out, size_t max, uint64_t limit);

/* cursor_decode_run at a run of a column chunk, which cols_dec_piece
 * decoded already: *ev points at its events where they lie (valid until
 * the cursor moves on), no copy. At anything else *ev is NULL and nothing
 * is read (the caller uses cursor_decode_run). */
size_t cursor_take_run(struct cursor *c, size_t max, uint64_t limit, const struct hw_event **ev);

/* Offset in the file of the cursor's next byte. */
uint64_t cursor_offset(const struct cursor *c);

#endif
