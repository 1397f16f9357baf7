/* Symbol resolution and the bootstrap arena (shim, intercept stage). dlsym may
 * call calloc before any real function is known; those few bytes come from a
 * static buffer and are never freed into libc. */
#include "hooks.h"

#include <dlfcn.h>
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "sample.h"
#include "tracker.h"

#define BOOT_SIZE HW_BOOT_SIZE
#define BOOT_HEADER 16u

struct real_functions g_real;

_Alignas(64) unsigned char g_boot[HW_BOOT_SIZE];
static _Atomic size_t g_boot_used;
static _Atomic int g_resolve_state; /* 0 none, 1 running, 2 done */
static __thread int t_resolving __attribute__((tls_model("initial-exec")));

void *hooks_boot_alloc(size_t size, size_t align)
{
	if (align < BOOT_HEADER)
		align = BOOT_HEADER;
	size_t used = atomic_load(&g_boot_used);
	for (;;) {
		size_t start = (used + BOOT_HEADER + align - 1) & ~(align - 1);
		size_t end = start + ((size + 15) & ~(size_t)15);
		if (end > BOOT_SIZE || end < start)
			return NULL;
		if (atomic_compare_exchange_weak(&g_boot_used, &used, end)) {
			memcpy(g_boot + start - sizeof(size_t), &size, sizeof(size_t));
			return g_boot + start; /* static storage is zeroed */
		}
	}
}

size_t hooks_boot_size(const void *p)
{
	size_t n;
	memcpy(&n, (const unsigned char *)p - sizeof(size_t), sizeof(size_t));
	return n;
}

void hooks_resolve(void)
{
	int s = atomic_load(&g_resolve_state);
	if (s == 2 || t_resolving)
		return;
	int expect = 0;
	if (!atomic_compare_exchange_strong(&g_resolve_state, &expect, 1)) {
		while (atomic_load(&g_resolve_state) != 2)
			sched_yield();
		return;
	}
	t_resolving = 1;
	int saved = errno; /* dlsym may set it */
	sample_read_env();
	struct real_functions r;
#define HW_X(name, ret, params) *(void **)&r.name = dlsym(RTLD_NEXT, #name);
	HW_HOOKED_SYMBOLS(HW_X)
#undef HW_X
	if (!r.mmap64)
		r.mmap64 = r.mmap;
	/* Publish the table in one go; readers check individual pointers. */
#define HW_X(name, ret, params) atomic_store((_Atomic(void *) *)&g_real.name, *(void **)&r.name);
	HW_HOOKED_SYMBOLS(HW_X)
#undef HW_X
	t_resolving = 0;
	atomic_store(&g_resolve_state, 2);
	errno = saved;
}
