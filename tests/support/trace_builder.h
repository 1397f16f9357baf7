/* Builds synthetic traces in memory for tests: a header, then chunks filled
 * with records through the same varint encoding the shim uses. */
#ifndef HW_TEST_TRACE_BUILDER_H
#define HW_TEST_TRACE_BUILDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heapwise/trace_format.h"

struct tb {
	uint8_t *buf;
	size_t size, cap;
	uint32_t chunk_size;
	size_t chunk_off; /* current chunk, 0 = none */
	uint64_t last_seq, last_addr;
	/* format 3's short forms (ALLOC_NEXT, FREE_NEXT), written by tb_alloc and
	 * tb_free where the shim writes them: set short_forms to have them */
	bool short_forms;
	uint32_t last_stack, last_kind;
};

void tb_init(struct tb *b, uint32_t chunk_size, const char *cmdline, size_t cmdline_len);
/* Sets the header's process: pid, parent pid and start time (wall clock and
 * monotonic, in ns). tb_init makes pid 4242, parent 1, start 0. */
void tb_process(struct tb *b, uint64_t pid, uint64_t ppid, uint64_t start_ns);
/* Starts a chunk for thread tid (delta bases restart); its index is 0. */
void tb_chunk(struct tb *b, uint32_t tid);
/* The same with the chunk's index in its thread's sequence. */
void tb_chunk_at(struct tb *b, uint32_t thread, uint32_t index);
/* A THREAD record (format 3): serial's OS thread id. */
void tb_thread(struct tb *b, uint32_t serial, uint32_t tid);
void tb_time(struct tb *b, uint64_t t_ns);
void tb_alloc(struct tb *b, int kind, uint64_t seq, uint64_t addr, uint64_t size, uint32_t stack);
void tb_free(struct tb *b, int kind, uint64_t seq, uint64_t addr);
void tb_retag(struct tb *b, uint64_t seq, uint64_t addr, uint32_t stack);
void tb_realloc(struct tb *b, uint64_t seq_free, uint64_t seq_alloc, uint64_t old, uint64_t new_addr,
		uint64_t size, uint32_t stack);
void tb_unmap(struct tb *b, uint64_t seq, uint64_t addr, uint64_t len);
void tb_remap(struct tb *b, uint64_t seq_free, uint64_t seq_alloc, uint64_t old, uint64_t old_len,
	      uint64_t new_addr, uint64_t new_len, uint32_t stack);
void tb_stack(struct tb *b, uint32_t id, uint32_t parent, uint64_t ip);
void tb_module(struct tb *b, uint64_t seq, uint64_t bias, uint64_t lo, uint64_t hi, const char *path);
/* PYTHON (and, with a reason, PYTHON_INFO) records. */
void tb_python(struct tb *b, uint64_t seq, uint32_t version, int frames_ok, const char *reason);
void tb_module_unload(struct tb *b, uint64_t seq, uint64_t bias, uint64_t lo);
/* A Python frame: code object code_id at instruction index instr. */
void tb_pystack(struct tb *b, uint32_t id, uint32_t parent, uint32_t code_id, uint32_t instr);
/* A code object whose every instruction is on first_line. */
void tb_code(struct tb *b, uint32_t id, uint32_t first_line, const char *file, const char *qualname);
/* The same with a line table of its own (len bytes). */
void tb_code_table(struct tb *b, uint32_t id, uint32_t first_line, const char *file,
		   const char *qualname, const uint8_t *table, size_t len);
void tb_rss(struct tb *b, uint64_t t_ns, uint64_t rss);
void tb_mark(struct tb *b, uint64_t seq, int kind, const char *label);
void tb_trailer(struct tb *b, uint64_t seq, uint64_t t_ns, uint64_t allocs, uint64_t frees);
/* Raw bytes into the current chunk (for damaged input). */
void tb_raw(struct tb *b, const void *p, size_t n);
/* Writes the trace to path (0600); returns 0 or -1. */
int tb_write(struct tb *b, const char *path);
void tb_free_builder(struct tb *b);

#endif
