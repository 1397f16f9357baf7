/* Native stacks (shim, stacks stage): unwinds the calling thread with
 * libunwind. */
#ifndef HW_PRELOAD_STACK_NATIVE_H
#define HW_PRELOAD_STACK_NATIVE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Return addresses of the calling thread below the shim, innermost first;
 * at most max. ips has room for max + HW_UNWIND_SELF entries (the shim's
 * own frames are unwound into it too, then dropped). */
unsigned stack_native_unwind(uintptr_t *ips, unsigned max);

/* HEAPWISE_UNWIND_CACHE=check: unwinds by the recipe cache checked against
 * libunwind, those that differed, and unwinds the cache left to libunwind. */
extern _Atomic uint64_t g_unwind_checks, g_unwind_check_misses, g_unwind_slow;

/* The same frames with each one's stack pointer (sps[i]: frame i's locals
 * lie in [sps[i], sps[i + 1])); a slower walk, for --native's splice. */
unsigned stack_native_unwind_sp(uintptr_t *ips, uintptr_t *sps, unsigned max);

/* The bounds of the function (its unwind entry, symbols or not) that ip is
 * in. */
bool stack_native_proc_range(uintptr_t ip, uintptr_t *lo, uintptr_t *hi);

/* glibc's loader lock (the one dl_iterate_phdr holds, which libunwind
 * takes to find unwind tables): stack_native_find_loader_lock, at the first
 * start, learns where it is; in a fork child stack_native_loader_locked
 * tells whether a thread of the parent held it at the fork (it then stays
 * held for good: the child's first native unwind would wait for ever). False
 * when not known. */
void stack_native_find_loader_lock(void);
bool stack_native_loader_locked(void);
/* Whether a dlopen or dlclose is under way: 0 when none (the loader's load
 * lock and list lock are free), the thread id of the one holding the load
 * lock, -1 when the lock is held by a thread not known or is not known. */
int stack_native_loader_owner(void);

/* Where the loader keeps its count of objects added (dlpi_adds: a plain
 * read, no lock), found with the lock; *adds and *subs: the loader's counts
 * then. NULL when not found. */
const unsigned long long *stack_native_loader_adds(unsigned long long *adds,
						   unsigned long long *subs);

#endif
