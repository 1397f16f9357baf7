/* Native stack capture (shim, stacks stage); the only file that uses
 * libunwind. unw_backtrace is the fast path libunwind offers (it caches frame
 * recipes per address); frames inside the shim are cut off. */
#define UNW_LOCAL_ONLY
#include "stack_native.h"

#include <libunwind.h>
#include <stdatomic.h>
#include <string.h>

#include "heapwise/trace_format.h"
#include "modules.h"
#include "tracker.h"

#define MAX_SELF_FRAMES 8

void stack_native_init(void)
{
	unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
}

uint32_t stack_native_capture(struct thread_state *ts)
{
	uint32_t epoch = atomic_load_explicit(&g_module_epoch, memory_order_relaxed);
	if (HW_UNLIKELY(epoch != ts->module_epoch)) {
		/* an object was unloaded: cached nodes may name vanished code */
		stack_tree_release(&ts->tree);
		ts->last_depth = 0;
		ts->module_epoch = epoch;
	}
	void *raw[HW_MAX_DEPTH + MAX_SELF_FRAMES];
	int n = unw_backtrace(raw, (int)g_config.depth + MAX_SELF_FRAMES);
	int skip = 0;
	while (skip < n && modules_is_self((uintptr_t)raw[skip]))
		skip++;
	int depth = n - skip;
	if (depth > (int)g_config.depth)
		depth = (int)g_config.depth;
	if (depth <= 0)
		return 0;
	/* raw[skip] is the innermost caller; walk root first. */
	unsigned same = 0;
	while (same < ts->last_depth && same < (unsigned)depth &&
	       ts->last_ips[same] == (uintptr_t)raw[skip + depth - 1 - (int)same])
		same++;
	uint32_t parent = same ? ts->last_ids[same - 1] : 0;
	for (unsigned i = same; i < (unsigned)depth; i++) {
		uintptr_t ip = (uintptr_t)raw[skip + depth - 1 - (int)i];
		parent = stack_tree_intern(ts, parent, HW_FRAME_NATIVE, ip);
		if (!parent) {
			ts->last_depth = 0;
			return 0;
		}
		ts->last_ips[i] = ip;
		ts->last_ids[i] = parent;
	}
	ts->last_depth = (unsigned)depth;
	return parent;
}
