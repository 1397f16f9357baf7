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

/* Claims the next free chunk for thread `tid`, maps it and writes its header.
 * Returns the mapping (chunk_size bytes) or NULL once the writer has failed
 * (disk full, file gone); the first failure logs one line. No lock is taken
 * unless the file must grow, which happens once per many chunks. */
uint8_t *writer_claim_chunk(uint32_t tid, uint32_t index);

/* Unmaps a chunk obtained from writer_claim_chunk. */
void writer_release_chunk(uint8_t *chunk);

/* Stops new chunk claims and cuts the preallocated tail of the file. Chunks
 * already claimed stay valid. */
void writer_finish(void);

/* Forgets the parent's file in a fork child (without touching it). */
void writer_forget(void);

/* Path of the file being written ("" before writer_open). */
const char *writer_path(void);

bool writer_ok(void);
uint32_t writer_chunk_size(void);

/* Marks the writer failed (after an I/O error seen by a caller). */
void writer_fail(const char *what, int err);

/* Expands a path pattern: %p = pid, %% = %. An empty pattern gives
 * heapwise.<program>.<pid>.hwt. Returns false when the result does not fit. */
bool writer_expand_path(char *out, size_t size, const char *pattern, const char *program,
			long pid);

#endif
