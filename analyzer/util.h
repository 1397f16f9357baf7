/* Small helpers of the analyzer: checked allocation, growable arrays, a string
 * buffer, size parsing and printing. */
#ifndef HW_ANALYZER_UTIL_H
#define HW_ANALYZER_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "escape.h" /* every renderer escapes names through it */

/* Allocation that cannot fail: prints one line and exits with 2 when memory
 * runs out (the analyzer has nothing to save at that point). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xaligned(size_t align, size_t n); /* aligned_alloc that cannot fail */
void *xrealloc(void *p, size_t n);
char *xstrndup(const char *s, size_t n);

/* Makes room for one more element in *arr (capacity doubling). */
#define HW_GROW(arr, count, cap)                                                        \
	do {                                                                            \
		if ((count) >= (cap)) {                                                 \
			(cap) = (cap) ? (cap) * 2 : 16;                                 \
			(arr) = xrealloc((arr), (cap) * sizeof(*(arr)));                \
		}                                                                       \
	} while (0)

/* A 64-bit key with every bit mixed into every other (murmur3's
 * finalizer): a table's slot is its low bits. hw_hash_bytes ends with it,
 * whose values traces store: never change it. */
static inline uint64_t hw_mix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return k;
}

/* A 32-bit id's slot in a table of ids (its low bits): the id times the
 * golden ratio, the high half folded into the low. */
static inline size_t hw_hash32(uint32_t v)
{
	uint64_t h = v * 0x9e3779b97f4a7c15ull;
	return (size_t)(h ^ (h >> 32));
}

/* A hash of n bytes from h (a seed, or another hash to chain), eight bytes
 * at a time (a byte at a time cost more than the scans it replaced in the
 * flame graph's children). */
uint64_t hw_hash_bytes(const void *p, size_t n, uint64_t h);
uint64_t hw_str_hash(const char *s);

/* Interned strings: each text once, ids from 0 in the order first seen. */
struct strtab {
	char **s;
	size_t n, cap;
	uint32_t *slot; /* id + 1, 0 = empty */
	size_t mask;
};

/* The id of s, copied into the table when new. */
uint32_t strtab_id(struct strtab *t, const char *s);
/* The id of s, a malloc'd text the table takes (freed at once when the
 * table has it already). */
uint32_t strtab_take(struct strtab *t, char *s);
void strtab_free(struct strtab *t);

/* "1.5 MiB", "512 B". buf needs 32 bytes. */
const char *fmt_size(char *buf, uint64_t bytes);

/* The name of a mark kind (HW_MARK_*): "user", "python-finalize", "gc-start",
 * "gc-end", "exec", "exec-failed", or "other" for a kind this heapwise does
 * not know. */
const char *mark_kind_name(int kind);

/* Parses 123, 10K, 10KiB, 5MB, 1.5G (K = 1024). Returns false on bad text. */
bool parse_size(const char *s, uint64_t *out);

/* Parses a count option (-n) from 1 to max; on bad text prints
 * "CMD: -n TEXT: expected a number from 1 to MAX" and returns false. */
bool parse_count_option(const char *cmd, const char *text, size_t max, size_t *out);

/* A progress line on stderr for long analyses: only when stderr is a
 * terminal and the work is large (total bytes of at least 8 MiB), redrawn
 * at most ten times a second, erased at the end. */
struct progress {
	bool on;
	uint64_t next_ns;
	const char *what;
};
void progress_begin(struct progress *p, const char *what, uint64_t total);
void progress_update(struct progress *p, uint64_t done, uint64_t total, uint64_t events);
void progress_end(struct progress *p);

#endif
