/* The trace file: the one contract between the shim (writer) and the analyzer
 * (reader). Numbers here reach the disk: they are explicit and never reused.
 * All multi-byte header fields are little-endian (the only target is x86_64). */
#ifndef HEAPWISE_TRACE_FORMAT_H
#define HEAPWISE_TRACE_FORMAT_H

#include <stdint.h>

/*
 * File layout
 *
 *   0                HW_HEADER_SIZE                 + chunk_size    + ...
 *   +----------------+------------------------------+---------------+--
 *   | file header    | chunk 0                      | chunk 1       |
 *   +----------------+------------------------------+---------------+--
 *
 * Each chunk_size block after the header is a thread's chunk, or (format 3)
 * a slab of small chunks. A thread is the only writer of its chunks. Chunk:
 *   +--------+--------+--------+--------+---------------------------------+
 *   | magic  | thread | used   | index  | records ...           | zeros   |
 *   | u32    | u32    | u32    | u32    | <- used bytes ->      |         |
 *   +--------+--------+--------+--------+---------------------------------+
 * `used` is published (release store) after each record, so a reader never
 * trusts bytes past it. A block whose magic is neither HW_CHUNK_MAGIC nor
 * HW_SLAB_MAGIC is unused (the file is preallocated ahead of the writers).
 * thread: format 3, the thread's serial number in its process (1, 2, ...,
 * never reused; a THREAD record gives its OS thread id); format 2, the OS
 * thread id, which the kernel reuses. index: the chunk's position in its
 * thread's sequence (0, 1, 2, ...).
 *
 * Slab (format 3): small chunks of one size, so that a thread that lives
 * for a few events costs about what they take, not a whole block. A
 * thread's chunk 0 is a HW_SLOT_SMALL slot, chunk 1 a HW_SLOT_MEDIUM slot,
 * the others whole blocks (a first record too big for a slot skips ahead).
 *   +--------+--------+--------+--------+--------+--------+----+--------+
 *   | magic  | slot   | 0      | 0      | slot 0          | .. | slot n |
 *   | HWSL   | size   |        |        | (a chunk, as    |    |        |
 *   |        |        |        |        |  above)         |    |        |
 *   +--------+--------+--------+--------+--------+--------+----+--------+
 * Slot k starts at 16 + k * size; a slot whose magic is not HW_CHUNK_MAGIC
 * is unused. Records of a slot: size - 16 bytes at most.
 *
 * The top 8 bits of `used` are chunk flags (HW_CHUNK_FLAG_MASK; issue 17):
 * the writer never sets them (a chunk holds less than 16 MiB), and
 * `heapwise compress` sets HW_CHUNK_ZSTD. Compressed chunk (issue 17):
 *   +--------+--------+-------------+--------+--------+------------------+
 *   | magic  | thread | used        | index  | zlen   | zstd frame       |
 *   | u32    | u32    | ZSTD|bytes  | u32    | u32    | <- zlen bytes -> |
 *   +--------+--------+-------------+--------+--------+------------------+
 * used & HW_CHUNK_USED_MASK: the record bytes the frame decompresses to
 * (at most chunk_size - 16, or the chunk is damaged); the frame holds
 * exactly the `used` bytes of records of the raw chunk, so a chunk's
 * records, and their deltas, are the same before and after. A compressed
 * chunk takes 20 + zlen bytes and the next chunk (or block) starts right
 * after it; any other block still takes chunk_size bytes. A compressed
 * file is the raw file's header, then its blocks in file order: chunks
 * compressed, unused (all-zero) blocks dropped, and any block that could
 * not be compressed (a damaged chunk header, a chunk cut by the end of the
 * file, a block of another kind) copied as it was. A slab (format 3)
 * becomes one compressed chunk per used slot, in slot order, its header and
 * unused slots dropped (a chunk is found by its thread and index, not by
 * where it lies); a slab with a slot whose used is 0 or past the slot, or
 * cut by the end of the file, is copied as it was. A slot itself is never
 * compressed in place.
 *
 * Column chunk (issue 17, HW_CHUNK_ZSTD | HW_CHUNK_COLS in `used`): the
 * same 20-byte head, then instead of one zstd frame of the records, the
 * records re-encoded into HW_COLS_STREAMS (13) streams, each its own zstd frame:
 *   +------+-----+-------+------------+------------+--------+-----------+
 *   | head | zlen        | zlen[0]    | ...        | zlen[S-1] | frame 0 |..
 *   | 16   | u32 (all)   | u32        |            | u32       |         |
 *   +------+-----+-------+------------+------------+--------+-----------+
 * zlen[i]: bytes of stream i's frame (0: the stream is empty, no frame);
 * the frames follow in stream order and end exactly at 20 + zlen. The
 * streams decompress to at most 2 * used + 256 bytes together. The reader
 * rebuilds the chunk's exact record bytes (used of them) from the streams,
 * walking one tag per record from the TAG stream; every field goes back
 * in its raw form:
 *   TAG      every record's tag byte, in order
 *   SEQ      the seq varints of event records, as they were (d, and a
 *            REALLOC's second v; none for ALLOC_NEXT and FREE_NEXT)
 *   HINT     per ALLOC (and REALLOC's new block), u8: 0 = the address is
 *            in ADELTA; k >= 1 = the k-th newest block of the ALLOC's class
 *            ring (the blocks FREEs of that class gave back last, at most
 *            HW_COLS_RING, the oldest dropped; the block leaves the ring)
 *   REF      per FREE (and REALLOC's old block), v: k >= 1 = the address of
 *            the k-th ALLOC back in this chunk (1: the last; REALLOC's new
 *            block counts as an ALLOC); 0 = the address is in FDELTA
 *   ADELTA   z: address - the class's last ALLOC in this chunk (none yet:
 *            - the running address, the raw records' previous address)
 *   FDELTA   z: address - the previous FREE's (or REALLOC old block's)
 *            address in this chunk (0 at the start)
 *   SIZE     ALLOC and REALLOC sizes, v as they were
 *   STACK    z: stack id - the previous ALLOC's (or REALLOC's) stack id
 *   OTHER    the bodies (all but the tag) of the other known records, as
 *            they were; a STACK record's frame kind byte
 *   SID      STACK: z: id - (the previous STACK's id + 1)
 *   SPARENT  STACK: z: id - parent
 *   SVALUE   STACK: the value v as it was
 *   TAIL     the chunk's bytes from the first record it does not split (a
 *            zero byte, a tag it does not know, a cut record, a varint of
 *            a rewritten field not in its shortest form) to `used`, as
 *            they were
 * ALLOC_NEXT and FREE_NEXT are ALLOCs and FREEs here: their tag in TAG, the
 * chunk's current kind their kind, an ALLOC_NEXT's raw stack field is the
 * STACK entry itself (the same delta), and the rebuild writes it back as it
 * was.
 * An ALLOC's class: (size <= 1024 ? (size + 15) / 16 : size) * 8 + kind,
 * times 0x9E3779B97F4A7C15 (mod 2^64), top HW_COLS_CLASS_BITS bits; the
 * model (class rings, last ALLOC per class, the ALLOC list) starts empty in
 * every chunk. A reference out of range, a stream that ends early or holds
 * more than its records, or records that rebuild to other than `used`
 * bytes: the chunk is damaged (skipped, one warning). `heapwise compress`
 * stores a chunk in columns, or as one zstd frame of its records
 * (HW_CHUNK_ZSTD alone) when that is smaller.
 *
 * Group (issue 17, HW_CHUNK_ZSTD | HW_CHUNK_COLS | HW_CHUNK_GROUP in
 * `used`): K consecutive chunks of one thread (2 <= K <= HW_COLS_GROUP_MAX,
 * indexes i .. i + K - 1, each used > 0, their used together at most
 * HW_COLS_GROUP_BYTES), each split into column streams as above, the K
 * parts of a stream in one zstd frame:
 *   +------+------+----------+---------------+------+----------+------+-----
 *   | head | zlen | K | sh   | used[1..K-1]  | nlen | zl[0..S] | lens | frames
 *   | 16   | u32  | u32      | u32 each      | u32  | u32 each | nlen |
 *   +------+------+----------+---------------+------+----------+------+-----
 * head: thread, index i, used = flags | used[0] (chunk i's record bytes);
 * the u32 after zlen: K in its low 8 bits, sh (0 to HW_COLS_SHIFT_MAX) in
 * the next 8, zero above; used[j]: chunk i + j's record bytes (1 to
 * chunk_size - 16). The streams are the column chunk's and FSEL
 * (HW_COLS_ALL of them, S + 1 = HW_COLS_ALL); zl[s]: bytes of stream s's
 * frame (0: empty); lens: K * HW_COLS_ALL varints, chunk by chunk, stream
 * by stream: the bytes of chunk j's part of stream s (its parts follow each
 * other in chunk order in the stream; the frame decompresses to exactly
 * their sum, and one chunk's parts together to at most 2 * used[j] + 256
 * bytes); the frames follow in stream order and end exactly at 20 + zlen.
 * Each chunk is rebuilt from its parts as a column chunk is, its model
 * (raw records' state, classes, ALLOC list, the last frees) starting
 * empty, but:
 *   ADELTA   z: (address - base) >> sh, the difference signed, base as in
 *            a column chunk (the reader takes the value << sh)
 *   FDELTA   z: (address - the FSEL-th newest of the last HW_COLS_FRING
 *            FREEs and REALLOC old blocks of the chunk, 0 for those before
 *            the first) >> sh, the difference signed
 *   FSEL     per FDELTA entry, u8 < HW_COLS_FRING: 0 the last free, 1 the
 *            one before, ... (the encoder takes the nearest)
 * A group is one compressed chunk in the file (20 + zlen bytes); the reader
 * finds its K chunks in it. `heapwise compress` stores as a group each run
 * of two or more chunks of a thread that follow each other in the file and
 * in the thread's sequence (cut at HW_COLS_GROUP_MAX chunks, before
 * HW_COLS_GROUP_BYTES, and where a chunk does not split), sh the common low zero bits of all its ADELTA and FDELTA
 * differences (4 for the heap's 16-byte blocks), any other chunk as above. Anything out of range (K, sh, a used, a length,
 * a frame of other than its parts' bytes): the group is damaged (its chunks
 * skipped, one warning).
 *
 * Seal (issue 17): the payload of every compressed chunk `heapwise
 * compress` writes (plain, column chunk, group) ends in 16 bytes, a zstd
 * skippable frame: u32 0x184D2A5E, u32 8, u64 the hash of the payload's
 * bytes before it (its zlen - 16 bytes; util.c hw_hash_bytes, seed
 * 0x184D2A5E: h = seed ^ n * 0x9E3779B97F4A7C15, then for each whole 8
 * bytes w (little-endian) h = (h ^ w) * 0xff51afd7ed558ccd, h ^= h >> 29,
 * then the 0-7 bytes left as w (zero above), h ^= w, h ^= h >> 33,
 * h *= 0xff51afd7ed558ccd, h ^= h >> 33). It is part of the plain frame's bytes, or of the
 * last stream's (TAIL; a group's FSEL): its zlen[] counts it, and a zstd
 * reader skips it. Its frames carry no checksum of their content. A
 * reader that finds a seal whose hash differs treats the chunk as
 * damaged; a payload without one (written before seals) has its frames'
 * own checksums, which zstd checks.
 */

#define HW_MAGIC "HEAPWISE"
#define HW_FORMAT_VERSION 3u
#define HW_FORMAT_VERSION_MIN 2u /* the oldest version the reader still reads */
#define HW_HEADER_SIZE 4096u
#define HW_CHUNK_MAGIC 0x4b435748u /* "HWCK" */
#define HW_SLAB_MAGIC 0x4c535748u /* "HWSL" */
#define HW_SLAB_HEADER_SIZE 16u
#define HW_SLOT_SMALL 512u
#define HW_SLOT_MEDIUM 4096u
#define HW_SLOT_MIN 64u /* what a reader accepts */
#define HW_CHUNK_HEADER_SIZE 16u
#define HW_DEFAULT_CHUNK_SIZE (64u * 1024u)
#define HW_MIN_CHUNK_SIZE (16u * 1024u)
#define HW_MAX_CHUNK_SIZE (16u * 1024u * 1024u)

/*
 * File header (first HW_HEADER_SIZE bytes):
 *   off size field
 *     0    8 magic "HEAPWISE"
 *     8    4 format version
 *    12    4 header size
 *    16    4 chunk size
 *    20    4 flags (HW_HDR_*)
 *    24    8 pid
 *    32    8 parent pid
 *    40    8 start time, CLOCK_REALTIME, ns since the epoch
 *    48    8 start time, CLOCK_MONOTONIC, ns (record times are relative to it)
 *    56    4 command line length (bytes, arguments separated by NUL)
 *    60    4 executable path length
 *    64    8 page size of the traced process
 *    72  ... command line bytes, then executable path bytes
 */
struct hw_file_header {
	char magic[8];
	uint32_t version;
	uint32_t header_size;
	uint32_t chunk_size;
	uint32_t flags;
	uint64_t pid;
	uint64_t ppid;
	uint64_t start_realtime_ns;
	uint64_t start_monotonic_ns;
	uint32_t cmdline_len;
	uint32_t exe_len;
	uint64_t page_size;
	/* followed by cmdline_len + exe_len bytes of text */
};
#define HW_HEADER_FIXED_SIZE 72u
_Static_assert(sizeof(struct hw_file_header) == HW_HEADER_FIXED_SIZE, "header layout");

/*
 * Recording stopped (the last HW_STOP_SIZE bytes of the header page): the
 * shim stores this record once, when it stops recording before the process
 * ends (a limit, a file it cannot reopen, grow or map), through a shared
 * mapping of the header page it keeps from the start, so the record is in
 * the file whatever the process does next (runs on, is killed, drops its
 * privileges). All zero: recording did not stop (every older trace).
 *   off  size field
 *   4064    4 magic HW_STOP_MAGIC (stored last)
 *   4068    4 reason (HW_STOP_*)
 *   4072    8 time of the stop, ns since the start (CLOCK_MONOTONIC)
 *   4080    8 value: the limit in bytes (HW_STOP_SIZE_CAP, _FSIZE,
 *             _MIN_FREE), else the errno of the failed call
 *   4088    8 pid of the process that stopped (the header's pid)
 * The header text (command line, executable) ends before it; a reader
 * ignores the record when the text would reach into it (a trace older than
 * the record whose text was that long).
 */
struct hw_stop_record {
	uint32_t magic;
	uint32_t reason;
	uint64_t time_ns;
	uint64_t value;
	uint64_t pid;
};
#define HW_STOP_SIZE 32u
#define HW_STOP_OFFSET (HW_HEADER_SIZE - HW_STOP_SIZE)
#define HW_STOP_MAGIC 0x50545348u /* "HSTP" */
_Static_assert(sizeof(struct hw_stop_record) == HW_STOP_SIZE, "stop record layout");

enum hw_stop_reason {
	HW_STOP_NONE = 0,
	HW_STOP_SIZE_CAP = 1, /* the next block would pass HEAPWISE_MAX_SIZE */
	HW_STOP_FSIZE = 2, /* ... the file size limit (ulimit -f) */
	HW_STOP_MIN_FREE = 3, /* ... leave less free space than HEAPWISE_MIN_FREE */
	HW_STOP_REOPEN = 4, /* the file could not be reopened (errno) */
	HW_STOP_GROW = 5, /* the file could not grow (errno: ENOSPC, a full disk) */
	HW_STOP_MAP = 6, /* a block of the file could not be mapped (errno) */
};

#define HW_HDR_NATIVE_STACKS 0x1u /* events carry full native stacks */
#define HW_HDR_NATIVE_AUTO 0x2u /* native frames below the innermost Python frame */

struct hw_chunk_header {
	uint32_t magic;
	uint32_t thread; /* serial (format 3) or OS thread id (format 2) */
	uint32_t used; /* bytes of records after this header */
	uint32_t index; /* position of the chunk in its thread's sequence */
};
_Static_assert(sizeof(struct hw_chunk_header) == HW_CHUNK_HEADER_SIZE, "chunk layout");

#define HW_CHUNK_FLAG_MASK 0xff000000u /* chunk flags in `used` (issue 17) */
#define HW_CHUNK_USED_MASK 0x00ffffffu
#define HW_CHUNK_ZSTD 0x80000000u /* records are a zstd frame (see above) */
#define HW_ZCHUNK_HEADER_SIZE 20u /* chunk header + zlen */
#define HW_CHUNK_COLS 0x40000000u /* with HW_CHUNK_ZSTD: column streams (see above) */
#define HW_CHUNK_GROUP 0x20000000u /* with ZSTD | COLS: the streams of a group of chunks */
#define HW_COLS_GROUP_MAX 32u /* chunks of a group, at most */
#define HW_COLS_GROUP_BYTES (2u << 20) /* record bytes of a group's chunks together, at most */
#define HW_COLS_SHIFT_MAX 12u /* a group's address unit: 1 << shift bytes, shift at most */

/* Column chunk streams (HW_CHUNK_COLS), in their order in the chunk */
enum hw_cols_stream {
	HW_COLS_TAG,
	HW_COLS_SEQ,
	HW_COLS_HINT,
	HW_COLS_REF,
	HW_COLS_ADELTA,
	HW_COLS_FDELTA,
	HW_COLS_SIZE,
	HW_COLS_STACK,
	HW_COLS_OTHER,
	HW_COLS_SID,
	HW_COLS_SPARENT,
	HW_COLS_SVALUE,
	HW_COLS_TAIL,
	HW_COLS_STREAMS, /* of a column chunk (HW_CHUNK_COLS) */
	HW_COLS_FSEL = HW_COLS_STREAMS, /* a group's only (HW_CHUNK_GROUP) */
	HW_COLS_ALL, /* of a group */
};
#define HW_COLS_RING 4u /* freed blocks remembered per class */
#define HW_COLS_FRING 8u /* a group's FDELTA bases: the last frees */
#define HW_COLS_CLASS_BITS 10
#define HW_COLS_CLASSES (1u << HW_COLS_CLASS_BITS)

/* A chunk header's `used` flags name a compressed chunk: zstd, plain, columns
 * or a group. */
#define HW_CHUNK_IS_Z(used) \
	(((used) & HW_CHUNK_FLAG_MASK) == HW_CHUNK_ZSTD || \
	 ((used) & HW_CHUNK_FLAG_MASK) == (HW_CHUNK_ZSTD | HW_CHUNK_COLS) || \
	 ((used) & HW_CHUNK_FLAG_MASK) == (HW_CHUNK_ZSTD | HW_CHUNK_COLS | HW_CHUNK_GROUP))

/*
 * Records. A record is a tag byte followed by fields; v = unsigned LEB128
 * varint, z = zigzag varint of the difference to the previous address in the
 * chunk (starts at 0), d = varint difference to the previous sequence number
 * in the chunk (starts at 0), u8 = one byte, s = varint length + bytes.
 * Tag 0 is never written: a zero byte ends a chunk's records.
 *
 * The three event tags carry the allocator kind in their low 3 bits
 * (HW_REC_ALLOC | kind): the hot path writes one byte less per event.
 *
 *   ALLOC     seq:d addr:z size:v stack:v
 *   FREE      seq:d addr:z
 *   ALLOC_NEXT addr:z size:v stack:zs      (format 3, issue 17: an ALLOC whose
 *   (0x0a)                                 sequence number is the previous
 *                                          one's + 1 and whose kind is the
 *                                          chunk's current kind; stack:zs =
 *                                          zigzag varint of stack id - the
 *                                          chunk's previous stack id)
 *   FREE_NEXT addr:z                       (format 3, issue 17: the same for a
 *   (0x0b)                                 FREE: sequence + 1, current kind)
 *             The chunk's current kind is the kind of its last ALLOC, FREE
 *             or REALLOC record of any form (HW_KIND_MALLOC before the
 *             first); its previous stack id is that of its last ALLOC
 *             (either form) or REALLOC (0 before the first). Both restart
 *             in every chunk, like the other deltas. The writer uses the
 *             short forms whenever they apply; a stack id over 2^32 - 1
 *             after the delta, or a sequence number that wraps, is a damaged
 *             record.
 *   REALLOC   seq_free:d seq_alloc:v(after seq_free) old:z new:z size:v stack:v
 *             (the old block dies at seq_free, taken before the real call;
 *              the new one is born at seq_alloc; a failed realloc writes nothing)
 *   UNMAP     seq:d addr:z len:v          (munmap: ends any mapping in the range)
 *   MARK      seq:d kind:u8 label:s        (HW_MARK_*: hw_mark() from the
 *                                           program, CPython starting to
 *                                           finalize, an exec; an event, so it is
 *                                           ordered with the allocations)
 *   REMAP     seq_free:d seq_alloc:v old:z old_len:v new:z new_len:v stack:v
 *   RETAG     seq:d addr:z stack:v         (format 3, issue 16: CPython took
 *                                           the live block at addr from one of
 *                                           its free lists for a new object,
 *                                           made by this stack: the block now
 *                                           belongs to it, as if allocated
 *                                           here; addr is the block's start
 *                                           (the object minus its GC and
 *                                           managed-dict headers); a block the
 *                                           reader does not know is ignored)
 *   STACK     id:v parent:v frame_kind:u8 value:v
 *             (a node of the stack tree: frame on top of parent; 0 = root;
 *              HW_FRAME_*: a THREAD frame's parent is a stack of another
 *              thread, the one that started this thread)
 *   MODULE    seq:v bias:v lo:v hi:v build_id:s path:s
 *             (a loaded ELF object: load bias, lowest and highest mapped
 *              address of its PT_LOAD segments)
 *   MODULE_UNLOAD seq:v bias:v lo:v
 *   CODE      id:v first_line:v filename:s qualname:s linetable:s
 *             (a CPython code object; the line table is the raw co_linetable
 *              bytes, decoded offline; ids are per process, and one code
 *              object may be written by several threads under several ids)
 *   PYTHON    seq:v version:v frames_ok:u8 (CPython was found: Py_Version;
 *                                           frames_ok:u8 says whether its
 *                                           frames can be read)
 *   PYTHON_INFO flags:v layout:s reason:s (format 3; written right after
 *             PYTHON: HW_PY_* flags, the name of the layout row the shim
 *             read frames with ("3.13t"), and when frames_ok is 0 why
 *             (one line of text, shown by every report))
 *   TIME      t:v                          (ns since start; for the following
 *                                           events of this chunk's thread)
 *   RSS       t:v rss_bytes:v
 *   TRAILER   seq:v t:v allocs:v frees:v   (clean exit)
 *   THREAD    serial:v tid:v               (format 3: the OS thread id of the
 *                                           chunk header's thread serial;
 *                                           first in its chunk 0)
 *   SAMPLE    seq:v interval:v             (format 3, issue 17: the trace is
 *                                           sampled: Poisson sampling by bytes,
 *                                           mean interval in bytes. An ALLOC,
 *                                           REALLOC or FREE of a heap kind
 *                                           (malloc, PyMem, PyObj) is written
 *                                           only for a sampled block; a block
 *                                           of n bytes stands for
 *                                           n / (1 - exp(-n / interval)) bytes
 *                                           and 1 / (1 - exp(-n / interval))
 *                                           blocks. Mappings (mmap kinds,
 *                                           UNMAP, REMAP) are all written and
 *                                           weigh what they are. Written before
 *                                           the process's first event.)
 */
enum hw_record_tag {
	HW_REC_ALLOC = 0x40, /* 0x40-0x47: | kind */
	HW_REC_FREE = 0x48, /* 0x48-0x4f: | kind */
	HW_REC_REALLOC = 0x50, /* 0x50-0x57: | kind */
	HW_REC_ALLOC_NEXT = 0x0a, /* format 3: ALLOC, sequence + 1, current kind */
	HW_REC_FREE_NEXT = 0x0b, /* format 3: FREE, sequence + 1, current kind */
	HW_REC_UNMAP = 0x04,
	HW_REC_REMAP = 0x05,
	HW_REC_MARK = 0x06,
	HW_REC_RETAG = 0x08,
	HW_REC_STACK = 0x10,
	HW_REC_MODULE = 0x11,
	HW_REC_MODULE_UNLOAD = 0x12,
	HW_REC_CODE = 0x13,
	HW_REC_PYTHON = 0x14,
	HW_REC_PYTHON_INFO = 0x15,
	HW_REC_THREAD = 0x18,
	HW_REC_TIME = 0x20,
	HW_REC_RSS = 0x21,
	HW_REC_TRAILER = 0x30,
	HW_REC_SAMPLE = 0x24,
};

#define HW_TAG_KIND_MASK 0x07u
#define HW_TAG_BASE(tag) ((tag) >= 0x40 && (tag) < 0x58 ? (tag) & ~HW_TAG_KIND_MASK : (tag))

/* Allocator kinds (which API made a block). */
enum hw_alloc_kind {
	HW_KIND_MALLOC = 0, /* malloc family, C++ new */
	HW_KIND_MMAP = 1, /* anonymous mmap */
	HW_KIND_MMAP_FILE = 2, /* file-backed mmap */
	HW_KIND_PYMEM = 3, /* CPython PyMem MEM domain (PyMem_Malloc) */
	HW_KIND_PYOBJ = 4, /* CPython PyMem OBJ domain (PyObject_Malloc) */
	HW_KIND_COUNT = 5,
};

enum hw_mark_kind {
	HW_MARK_USER = 0, /* hw_mark(label) */
	HW_MARK_PY_FINALIZE = 1, /* Py_FinalizeEx passed atexit: Python leaks are measured here */
	/* CPython's cyclic garbage collector (format 3): written at the first
	 * event that sees the interpreter's collecting flag set, and at the
	 * first that sees it clear again (nothing was allocated or freed in
	 * between, so the marks are exact in event order). GC_START's label is
	 * "gc"; GC_END's is "gc gen G: C collected[, U uncollectable][, N
	 * collections]" from the interpreter's own statistics (3.11-3.14), or
	 * "gc" where they cannot be read (3.15) */
	HW_MARK_GC_START = 2,
	HW_MARK_GC_END = 3,
	/* The process is about to replace its image (format 3): execve or
	 * one of glibc's exec functions that do not go through it (execv,
	 * execvp, execvpe, execl, execlp, execle, fexecve, execveat), written
	 * right before the real call; label: the path as the program gave it
	 * (execvp's file before the PATH search; "fd N" for fexecve and for
	 * execveat's AT_EMPTY_PATH, "fd N: path" for execveat's path relative
	 * to a descriptor), cut at HW_MAX_LABEL - 1 bytes. When the call
	 * returns (the exec failed: the process goes on tracing into this
	 * trace) EXEC_FAILED follows with the same label. An EXEC without its
	 * EXEC_FAILED is the end of the process's image: what is live then is
	 * the kernel's to free, not leaked. Never written by a child sharing
	 * its parent's memory (vfork), whose trace is its parent's. A reader
	 * that does not know these kinds sees two marks (the trace stays
	 * readable; the process reads as one that did not exit cleanly). */
	HW_MARK_EXEC = 4,
	HW_MARK_EXEC_FAILED = 5,
	/* The process ends through _exit or _Exit (Python's os._exit, a
	 * multiprocessing child, a program skipping its atexit handlers):
	 * written right before the real call; label: the status in decimal.
	 * No trailer follows (the destructors do not run): the process ended
	 * at its own request, not killed or crashed. Never written by a child
	 * sharing its parent's memory (vfork: its _exit ends nothing of its
	 * parent's). */
	HW_MARK_EXIT = 6,
};

#define HW_MAX_LABEL 256u

/* PYTHON_INFO flags */
#define HW_PY_FREE_THREADED 0x1u /* a Py_GIL_DISABLED build (3.13t, 3.14t) */
#define HW_MAX_PY_REASON 256u

enum hw_frame_kind {
	HW_FRAME_NATIVE = 1, /* value: return address (instruction pointer) */
	/* value: code id << 32 | (instruction index + 1). Code id 0 (no code
	 * object has it) is not a frame: the shim's marker for the Python
	 * frames of a deeper stack that it did not record (value: at least
	 * that many, not 0: the count rounded down to its two leading binary
	 * digits), between the innermost and the outermost ones it kept */
	HW_FRAME_PYTHON = 2,
	/* format 3, issue 16: the root of every stack of a thread that
	 * pthread_create started under a Python frame; its parent is the
	 * creating thread's stack at that call (value: 0) */
	HW_FRAME_THREAD = 3,
};

#define HW_SAMPLE_INTERVAL_MAX (1ull << 40) /* SAMPLE: 1 TiB at most */

#define HW_MAX_BUILD_ID 64u
#define HW_MAX_LINETABLE (16u * 1024u) /* longer line tables are cut */
#define HW_MAX_PATH 1024u /* longer module paths are cut */

#endif
