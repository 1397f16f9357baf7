/* Native stack capture (shim, stacks stage); the only file that uses
 * libunwind. unw_backtrace is libunwind's fast path (it caches frame recipes
 * per address); frames inside the shim are cut off. */
#define UNW_LOCAL_ONLY
#include "stack_native.h"

#include <libunwind.h>

#include "modules.h"

#define MAX_SELF_FRAMES 8
#define MAX_UNWIND 512

void stack_native_init(void)
{
	unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
}

unsigned stack_native_unwind(uintptr_t *ips, unsigned max)
{
	void *raw[MAX_UNWIND + MAX_SELF_FRAMES];
	if (max > MAX_UNWIND)
		max = MAX_UNWIND;
	int n = unw_backtrace(raw, (int)max + MAX_SELF_FRAMES);
	int skip = 0;
	while (skip < n && modules_is_self((uintptr_t)raw[skip]))
		skip++;
	unsigned out = 0;
	for (int i = skip; i < n && out < max; i++)
		ips[out++] = (uintptr_t)raw[i];
	return out;
}
