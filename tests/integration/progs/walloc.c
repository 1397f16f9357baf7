/* An allocator of the program's below the shim (test_sample.py): malloc,
 * calloc, realloc and free of its own, which hand the blocks to glibc's
 * (__libc_malloc...) and, every 64th malloc, map a page of bookkeeping
 * through the interposed mmap, as jemalloc or tcmalloc map their metadata
 * and extents. Linked into churn_walloc, so it comes after the preloaded
 * shim: the shim's real malloc is this one, which is not glibc's, so its
 * calls stay under the guard and its pages are not the program's mappings. */
#include <stddef.h>
#include <sys/mman.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static unsigned long g_calls;

static void bookkeeping(void)
{
	if (__atomic_fetch_add(&g_calls, 1, __ATOMIC_RELAXED) % 64 == 0) {
		void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		(void)p; /* kept: bookkeeping for the process's life */
	}
}

void *malloc(size_t n)
{
	bookkeeping();
	return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
	return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
	return __libc_realloc(p, n);
}

void free(void *p)
{
	__libc_free(p);
}
