/* Python code objects of a trace (analyzer, symbolize stage): the CODE
 * records, deduplicated by content (threads write the same code object under
 * ids of their own), and the offline line-table decoder. */
#ifndef HW_ANALYZER_PYCODE_H
#define HW_ANALYZER_PYCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pycode {
	uint32_t id; /* as in the trace */
	uint32_t canon; /* index of the first code with the same content */
	int first_line;
	char *filename, *qualname;
	uint8_t *linetable;
	size_t linetable_len;
};

struct pycode_table {
	struct pycode *codes;
	size_t n, cap;
	uint32_t *index; /* id -> code + 1 */
	size_t mask;
};

void pycode_table_init(struct pycode_table *t);
void pycode_table_free(struct pycode_table *t);
void pycode_add(struct pycode_table *t, uint32_t id, int first_line, const char *file,
		size_t file_len, const char *qual, size_t qual_len, const uint8_t *table,
		size_t table_len);
/* The code for a trace id, or NULL. */
const struct pycode *pycode_find(const struct pycode_table *t, uint32_t id);
/* Sets canon for every code (equal filename, qualname, first line, table). */
void pycode_dedup(struct pycode_table *t);

/* A source position, as co_positions() gives it: lines from 1, columns
 * 0-based UTF-8 byte offsets; -1 where the location table has none. */
struct pycode_pos {
	int line, end_line, col, end_col;
};

/* The position of instruction index `lasti` (code units) from a CPython
 * 3.11+ location table, as co_positions() gives it (line -1: no location).
 * Returns false when lasti is past the table or the table is damaged
 * (then *out is all -1). Never reads outside [table, table + len). */
bool pycode_addr2pos(const uint8_t *table, size_t len, int first_line, int lasti,
		     struct pycode_pos *out);

/* A Python frame for pycode_first_positions: its code object (an index
 * into the table's codes) and instruction; `node` is the caller's. */
struct pycode_frame {
	uint32_t code;
	int32_t lasti;
	uint32_t node;
};

/* Replaces each frame's instruction by the first instruction of its code
 * object at the same line and starting column: frames that print the same
 * (FILE:LINE:COLUMN) become equal, and so do their stacks (two bytecode
 * offsets of one expression, such as BUILD_LIST and LIST_EXTEND of a list
 * display, or of two expressions that start at one place, a.f(x) and
 * a.f(x).g(y)).
 * Instructions outside their table are left alone. Reorders frames
 * (grouped by code); each table decoded once, O(the size of the tables +
 * n log(a table's entries)). */
void pycode_first_positions(const struct pycode_table *t, struct pycode_frame *frames, size_t n);

/* Lines and positions of many instructions (report.c): each code object's
 * table decoded once, on its first lookup, and kept; a lookup halves its
 * entries. (One decoding from the table's start per instruction was
 * quadratic in a code object of many lines that each allocate: a module
 * of data.) */
struct pycode_locs;
struct pycode_cache {
	struct pycode_locs *codes; /* per code of the table: its entries */
	size_t n;
};
/* Instruction lasti of code c (of t): *line as pycode_addr2line gives it,
 * and its position as pycode_addr2pos (false: none). */
bool pycode_cached_pos(struct pycode_cache *cache, const struct pycode_table *t,
		       const struct pycode *c, int lasti, int *line, struct pycode_pos *pos);
void pycode_cache_free(struct pycode_cache *cache);

/* The line of instruction index `lasti` (code units; -1 = before the first)
 * from a CPython 3.11+ location table, as PyCode_Addr2Line computes it.
 * Returns -1 when the instruction has no line, and first_line for lasti < 0.
 * Never reads outside [table, table + len). */
int pycode_addr2line(const uint8_t *table, size_t len, int first_line, int lasti);

#endif
