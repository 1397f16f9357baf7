/* The process page (shim, all stages): which process the shim's state
 * belongs to, in the one page of the shim the kernel gives every child it
 * makes zeroed (MADV_WIPEONFORK), whether fork's atfork handlers run (fork)
 * or not (the raw system call, _Fork, clone). Every event compares its
 * thread state's generation with the one here already, so a child nobody
 * told about goes to the slow path at its first event at no cost, finds
 * pid 0, and starts a trace of its own instead of writing into its
 * parent's chunks. */
#ifndef HW_PRELOAD_PROC_H
#define HW_PRELOAD_PROC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Alone in its page: a page-aligned object one page long. */
struct proc_page {
	_Atomic uint32_t generation; /* of this process's thread states; 0 when wiped */
	int32_t pid; /* of the process this page belongs to; 0 when wiped */
	/* this process's trace started (init_maybe), or never will (a fork
	 * child not followed); 0 when wiped and in a fork child until its own
	 * starts: the sampling mode's allocations take their slow path until
	 * then (sample.h) */
	_Atomic uint32_t started;
	/* the sampling mode's libc hooks may call glibc without the guard
	 * (sample.h): set once this process's trace started, 0 when wiped */
	_Atomic uint32_t sample_libc;
	char pad[4096 - 16];
} __attribute__((aligned(4096)));

extern struct proc_page g_proc __attribute__((visibility("hidden")));

/* At the first start: asks the kernel to wipe the page in its children
 * (false when it cannot: children made without atfork then go unnoticed),
 * then proc_claim. */
bool proc_setup(void);

/* Makes the calling process the page's owner, with a new generation (at
 * the first start, and in every fork child). */
void proc_claim(void);

/* True in a child the kernel made without atfork handlers that has not yet
 * claimed the page (it reads zero). One load: cheap enough per record. */
extern bool g_proc_wipe_ok;
static inline bool proc_wiped(void)
{
	return g_proc_wipe_ok && !__atomic_load_n(&g_proc.pid, __ATOMIC_RELAXED);
}

#endif
