/* Native stack capture (shim, stacks stage); the only file that uses
 * libunwind. unw_backtrace is libunwind's fast path (it caches frame recipes
 * per address); frames inside the shim are cut off. */
#define UNW_LOCAL_ONLY
#include "stack_native.h"

#include <libunwind.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "heapwise/compiler.h"

#include "modules.h"

#define MAX_SELF_FRAMES 8
#define MAX_UNWIND 512

static atomic_bool g_ready;

/* libunwind starts at the first native unwind, not at our start: starting it
 * opens a pipe that stays open for good. */
static void unwind_start(void)
{
	if (HW_LIKELY(atomic_load_explicit(&g_ready, memory_order_acquire)))
		return;
	/* per-thread caches: no global lock in an unwind */
	unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
	atomic_store_explicit(&g_ready, true, memory_order_release);
}

unsigned stack_native_unwind(uintptr_t *ips, unsigned max)
{
	unwind_start();
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

unsigned stack_native_unwind_sp(uintptr_t *ips, uintptr_t *sps, unsigned max)
{
	unwind_start();
	unw_context_t uc;
	unw_cursor_t cur;
	if (unw_getcontext(&uc) != 0 || unw_init_local(&cur, &uc) != 0)
		return 0;
	unsigned out = 0, seen = 0;
	bool ours = true;
	do {
		unw_word_t ip, sp;
		if (unw_get_reg(&cur, UNW_REG_IP, &ip) != 0 || unw_get_reg(&cur, UNW_REG_SP, &sp) != 0)
			break;
		if (ours && modules_is_self((uintptr_t)ip) && seen++ < MAX_SELF_FRAMES)
			continue;
		ours = false;
		ips[out] = (uintptr_t)ip;
		sps[out++] = (uintptr_t)sp;
	} while (out < max && out < MAX_UNWIND && unw_step(&cur) > 0);
	return out;
}

bool stack_native_proc_range(uintptr_t ip, uintptr_t *lo, uintptr_t *hi)
{
	unw_proc_info_t pi;
	if (unw_get_proc_info_by_ip(unw_local_addr_space, (unw_word_t)ip, &pi, NULL) != 0 ||
	    pi.end_ip <= pi.start_ip)
		return false;
	*lo = (uintptr_t)pi.start_ip;
	*hi = (uintptr_t)pi.end_ip;
	return true;
}
