/* Native stacks (shim, stacks stage): unwinds the calling thread with
 * libunwind. */
#ifndef HW_PRELOAD_STACK_NATIVE_H
#define HW_PRELOAD_STACK_NATIVE_H

#include <stdint.h>

/* Return addresses of the calling thread below the shim, innermost first;
 * at most max. */
unsigned stack_native_unwind(uintptr_t *ips, unsigned max);

#endif
