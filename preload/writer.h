/* The trace file writer (shim, last stage): creates the file, hands whole
 * chunks to threads through shared mappings of the file, trims it at exit. */
#ifndef HW_PRELOAD_WRITER_H
#define HW_PRELOAD_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Creates the trace file for this process (exclusively, mode 0600, never
 * through a symlink) from the configured pattern, and writes its header.
 * ppid is the parent's pid for the header. Returns false after logging one
 * line when the file cannot be made; recording is then off. */
bool writer_open(uint64_t start_realtime_ns, uint64_t start_monotonic_ns, uint32_t flags);

/* Chunk sizes: a slot of a small or medium slab, or a whole block. */
enum chunk_class { CHUNK_SMALL = 0, CHUNK_MEDIUM = 1, CHUNK_FULL = 2 };

/* A chunk handed to a thread. */
struct chunk_lease {
	uint8_t *map; /* the chunk's header; NULL: none */
	uint32_t size; /* the chunk's bytes, header included */
	struct slab *slab; /* the slab of a slot, NULL for a whole block */
	/* the thread's window of whole blocks (see writer.c): mapped at win,
	 * win_next of its win_blocks handed out */
	uint8_t *win;
	uint32_t win_blocks, win_next;
	uint64_t win_idx; /* the block number of the window's first block */
	uint64_t off; /* the file offset of the chunk's header */
};

/* Claims a chunk of class cls for thread serial `thread` (its index-th),
 * maps it and writes its header; the chunk the lease held before is given
 * back first. False once the writer has failed or
 * stopped (disk full, file gone, a limit); the first failure logs one
 * line. A whole block takes one atomic add (and a lock when the file must
 * grow, once per many blocks); a slot takes the slabs' lock, and a block
 * every (block size / slot size) slots. */
bool writer_claim_chunk(uint32_t thread, uint32_t index, enum chunk_class cls,
			struct chunk_lease *out);

/* Record bytes a chunk of class cls holds. */
uint32_t writer_class_capacity(enum chunk_class cls);

/* Gives back everything a lease holds: its chunk (a slot's slab is unmapped
 * once used up and no thread writes in it any more) and its window of
 * blocks. */
void writer_release_chunk(struct chunk_lease *l);

/* The thread holding lease l leaves its chunk with `used` bytes of
 * records (for another, or at its exit): remembered, so that
 * writer_finish writes that figure into the chunk's header again. A fork
 * child made by a signal handler without atfork handlers (the raw system
 * call, clone) that interrupted the commit of a record goes on with it and
 * may store an older `used` into its parent's chunk after the parent has
 * left it; the records after it would be lost. */
void writer_chunk_left(const struct chunk_lease *l, uint32_t used);

/* Stops new chunk claims, writes the `used` of the chunks left again
 * (writer_chunk_left) and cuts the preallocated tail of the file. Chunks
 * already claimed stay valid. */
void writer_finish(void);

/* The atfork prepare handler's, after the tracker's locks: the writer's
 * locks (slabs, file growth, chunks left), so that a child gets the state
 * they guard whole, not halfway through another thread's change of it;
 * writer_fork_parent gives them back in the parent. */
void writer_fork_prepare(void);
void writer_fork_parent(void);

/* In a fork child, first: the writer's locks may be held by a thread that
 * is not there (a fork without atfork handlers): free ones. */
void writer_fork_child_locks(void);

/* Forgets the parent's file in a fork child (without touching it). LOCKED:
 * the child was made with writer_fork_prepare's locks held; else what they
 * guard may be halfway through a change (the list of chunks left is let
 * go of, not reused). */
void writer_forget(bool locked);

/* Path of the file being written ("" before writer_open). */
const char *writer_path(void);

bool writer_ok(void);
/* The program unmaps, maps over, remaps or protects [addr, addr + len):
 * if that takes the header page the shim keeps for a stop record, the shim
 * lets it go (a stop is then written through the file), so a stop never
 * stores into what is no longer its own. */
void writer_program_maps(const void *addr, size_t len);
/* This process created its trace file (it may have stopped recording since). */
bool writer_made(void);
uint32_t writer_chunk_size(void);

/* Marks the writer failed (after an I/O error seen by a caller). */
void writer_fail(const char *what, int err);

/* May the shim open a descriptor for a moment? True while at least two
 * others stay free below the program's RLIMIT_NOFILE (a few fcntl calls);
 * errno kept. */
bool writer_fd_to_spare(void);

/* Expands a path pattern: %p = pid, %% = %. An empty pattern gives
 * heapwise.<program>.<pid>.hwt. Returns false when the result does not fit. */
bool writer_expand_path(char *out, size_t size, const char *pattern, const char *program,
			long pid);

#endif
