/* The interposed symbols (shim, intercept stage): one X-macro list, the table
 * of the real functions behind them, and the bootstrap arena that serves the
 * allocations dlsym makes before the real functions are known. */
#ifndef HW_PRELOAD_HOOKS_H
#define HW_PRELOAD_HOOKS_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* X(name, return type, parameter list) */
#define HW_HOOKED_SYMBOLS(X)                                                    \
	X(malloc, void *, (size_t))                                             \
	X(calloc, void *, (size_t, size_t))                                     \
	X(realloc, void *, (void *, size_t))                                    \
	X(reallocarray, void *, (void *, size_t, size_t))                       \
	X(free, void, (void *))                                                 \
	X(posix_memalign, int, (void **, size_t, size_t))                       \
	X(aligned_alloc, void *, (size_t, size_t))                              \
	X(memalign, void *, (size_t, size_t))                                   \
	X(valloc, void *, (size_t))                                             \
	X(pvalloc, void *, (size_t))                                            \
	X(mmap, void *, (void *, size_t, int, int, int, off_t))                 \
	X(mmap64, void *, (void *, size_t, int, int, int, off_t))               \
	X(munmap, int, (void *, size_t))                                        \
	X(mprotect, int, (void *, size_t, int))                                 \
	X(mremap, void *, (void *, size_t, size_t, int, ...))                   \
	X(dlclose, int, (void *))                                               \
	X(sigaltstack, int, (const stack_t *, stack_t *))                       \
	X(pthread_create, int, (pthread_t *, const pthread_attr_t *, void *(*)(void *), void *)) \
	X(pthread_getattr_np, int, (pthread_t, pthread_attr_t *))               \
	X(execve, int, (const char *, char *const[], char *const[]))            \
	X(execv, int, (const char *, char *const[]))                            \
	X(execvp, int, (const char *, char *const[]))                           \
	X(execvpe, int, (const char *, char *const[], char *const[]))           \
	X(fexecve, int, (int, char *const[], char *const[]))                    \
	X(execveat, int, (int, const char *, char *const[], char *const[], int)) \
	X(_exit, void, (int))                                                   \
	X(quick_exit, void, (int))

struct real_functions {
#define HW_X(name, ret, params) ret(*name) params;
	HW_HOOKED_SYMBOLS(HW_X)
#undef HW_X
};

extern struct real_functions g_real __attribute__((visibility("hidden")));

/* Looks up every real function with dlsym(RTLD_NEXT). Safe to call from any
 * hook at any time; a thread arriving while another resolves waits, and the
 * resolving thread's own nested calls are served by the bootstrap arena. */
void hooks_resolve(void);

/* Bootstrap arena: a small static buffer, never returned to libc. */
void *hooks_boot_alloc(size_t size, size_t align);
#define HW_BOOT_SIZE (64 * 1024)
extern unsigned char g_boot[HW_BOOT_SIZE] __attribute__((visibility("hidden")));
/* Inline: every free and realloc asks it first (one subtraction and
 * compare). */
static inline bool hooks_is_boot(const void *p)
{
	return (uintptr_t)p - (uintptr_t)g_boot < HW_BOOT_SIZE;
}
size_t hooks_boot_size(const void *p);

#endif
