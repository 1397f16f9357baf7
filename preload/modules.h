/* Module map of the traced process (shim): which ELF objects are loaded where,
 * with their build-ids, so the analyzer can symbolize offline. */
#ifndef HW_PRELOAD_MODULES_H
#define HW_PRELOAD_MODULES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct thread_state;

/* Finds the shim's own code range (its frames are cut from stacks) and reads
 * the initial map. Call once at start, after the first thread state exists. */
void modules_init(struct thread_state *ts);

/* Called before a new native stack node is written: when the loader's
 * add/remove counters moved since the last look, rescans and writes MODULE /
 * MODULE_UNLOAD records. Costs one dl_iterate_phdr callback otherwise. */
void modules_check(struct thread_state *ts);

/* Writes every known module again (a fork child's new file); uses the cached
 * list only, never the loader, whose locks may be held by a vanished thread. */
void modules_emit_all(struct thread_state *ts);

/* Sets the range of code whose frames are cut from the top of stacks
 * (modules_init sets it to the shim's object; tests that link the core into
 * their own binary narrow it). */
void modules_set_self(uintptr_t lo, uintptr_t hi);

/* The shim's own code: [*lo, *hi). */
void modules_self_range(uintptr_t *lo, uintptr_t *hi);

/* True when ip lies in the shim's own code. */
bool modules_is_self(uintptr_t ip);

/* True when the n addresses (at most 8) all lie in the loaded segments of
 * the object that holds addr[0]. Asks the loader (dl_iterate_phdr): dladdr
 * would scan the object's symbols, 55,000-100,000 instructions a call. */
bool modules_same_object(const uintptr_t *addr, unsigned n);


/* Objects unloaded without going through our dlclose (glibc unloads its
 * gconv modules, iconv's converters, with its own internal dlclose while the
 * program runs) leave caches keyed by code address stale once another object
 * is loaded at their addresses. Such a reuse needs a load, which moves the
 * loader's count of objects added before any code of the new object runs:
 * modules_unloaded reads that count (one plain read) and, when it moved,
 * asks the loader for its count of objects removed; when that moved too, it
 * moves the module epoch (caches keyed by address are dropped, as after a
 * dlclose) and returns true. Call before a native stack is taken. */
extern const unsigned long long *g_loader_adds __attribute__((visibility("hidden")));
extern _Atomic unsigned long long g_loader_adds_seen __attribute__((visibility("hidden")));
bool modules_unload_check(struct thread_state *ts);
static inline bool modules_unloaded(struct thread_state *ts)
{
	const unsigned long long *adds = g_loader_adds;
	return __builtin_expect(adds && __atomic_load_n(adds, __ATOMIC_RELAXED) !=
						atomic_load_explicit(&g_loader_adds_seen,
								     memory_order_acquire),
				0) &&
	       modules_unload_check(ts);
}

/* Fork protection of the module list lock (pthread_atfork handlers). */
void modules_fork_prepare(void);
void modules_fork_after(void);
#endif
