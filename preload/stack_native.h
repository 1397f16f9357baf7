/* Native stacks (shim, stacks stage): unwinds the calling thread with
 * libunwind and interns the frames into the thread's stack tree. */
#ifndef HW_PRELOAD_STACK_NATIVE_H
#define HW_PRELOAD_STACK_NATIVE_H

#include <stdint.h>

struct thread_state;

/* Sets libunwind up (per-thread caches: no global lock in an unwind). */
void stack_native_init(void);

/* Returns the leaf node id of the calling thread's native stack below the
 * shim (0 when stacks are off or the unwind failed). Consecutive stacks of a
 * thread share their root side, so only the frames that changed are interned. */
uint32_t stack_native_capture(struct thread_state *ts);

#endif
