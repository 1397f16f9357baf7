/* Shim configuration, read once at start from HEAPWISE_* environment variables
 * (`heapwise run` sets them from its flags). */
#ifndef HW_PRELOAD_CONFIG_H
#define HW_PRELOAD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#define HW_MAX_DEPTH 256

/* Which native frames a stack gets (HEAPWISE_NATIVE). */
enum native_mode {
	NATIVE_NONE = 0, /* none: Python frames only */
	NATIVE_FULL = 1, /* the whole native stack, Python frames spliced in */
	NATIVE_AUTO = 2, /* default: Python frames where there are any, whole
			  * native stacks where there are none */
	NATIVE_BELOW = 3, /* Python frames and the native frames below the
			   * innermost one (a short unwind) */
};

struct config {
	char output[1024]; /* path pattern; empty = heapwise.<program>.%p.hwt */
	enum native_mode native;
	unsigned depth; /* native frames kept per stack */
	bool follow; /* trace fork/exec children */
	long root_pid; /* with follow off: the only pid traced (0 = any) */
	uint32_t chunk_size;
	char manifest[1024]; /* HEAPWISE_MANIFEST: the file `heapwise run` lists
			      * the trees' traces from; empty = none */
	char dir[1024]; /* HEAPWISE_DIR, else the working directory at start: a
			 * relative output path is relative to it in every
			 * descendant, whatever its own working directory */
	bool dir_from_cwd; /* this process is the first: no HEAPWISE_DIR */
	uint64_t max_size; /* HEAPWISE_MAX_SIZE: the trace file's size cap, 0 = none */
	/* HEAPWISE_MIN_FREE: free space the trace leaves on its filesystem,
	 * the smaller of these two (0 = that one does not apply; both 0: no
	 * reserve). Default: 1 GiB or 5% of the filesystem. */
	uint64_t min_free_bytes;
	uint32_t min_free_percent;
	/* HEAPWISE_STACK_CACHE: off walks every Python frame chain without the
	 * frame-chain cache; check also makes every cached capture the uncached
	 * way and counts the differences (reported at exit) */
	bool no_stack_cache, stack_check;
	/* HEAPWISE_UNWIND_CACHE: off unwinds every native stack with libunwind
	 * (not the recipe cache, unwind_cache.c); check also unwinds every
	 * cached one with libunwind and counts the differences (at exit) */
	bool no_unwind_cache, unwind_check;
	uint64_t sample; /* HEAPWISE_SAMPLE: mean sampling interval, 0 = exact */
};

#define HW_DEFAULT_MIN_FREE (1ull << 30)
#define HW_DEFAULT_MIN_FREE_PERCENT 5u

extern struct config g_config;

/* Reads HEAPWISE_OUTPUT, HEAPWISE_NATIVE, HEAPWISE_DEPTH, HEAPWISE_FOLLOW,
 * HEAPWISE_ROOT_PID, HEAPWISE_CHUNK_SIZE, HEAPWISE_MAX_SIZE,
 * HEAPWISE_MIN_FREE, HEAPWISE_MANIFEST, HEAPWISE_STACK_CACHE, HEAPWISE_UNWIND_CACHE,
 * HEAPWISE_SAMPLE
 * and HEAPWISE_DIR (or the working directory) into g_config. Returns false
 * (and has logged one line naming the variable) when a value is invalid. */
bool config_read(void);

/* Parses a size: digits, then K, M, G or T (binary: KiB...), with an
 * optional "B" or "iB". False when the text is not one. */
bool config_parse_size(const char *s, uint64_t *out);

/* Parses a bool setting the way config_read does ("0/1/yes/no/true/false/on/off").
 * Returns -1 when the text is none of those. */
int config_parse_bool(const char *s);

#endif
