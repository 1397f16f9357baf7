/* PyMem calls with errno set to a sentinel (integration test; loaded by
 * py/errno_keep.py through ctypes.PyDLL, so with the GIL held): every event
 * in the loop is one of these calls, so one whose out-of-line work (a chunk
 * claim, a failed one, the clock moved on) changes errno is seen here.
 * Returns how many calls changed errno, -1 when Python's API is not found. */
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>

#define SENTINEL 4242

int pymem_errno_changes(long n)
{
	void *(*obj_malloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "PyObject_Malloc");
	void *(*obj_realloc)(void *, size_t) =
		(void *(*)(void *, size_t))dlsym(RTLD_DEFAULT, "PyObject_Realloc");
	void (*obj_free)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "PyObject_Free");
	void *(*mem_malloc)(size_t) = (void *(*)(size_t))dlsym(RTLD_DEFAULT, "PyMem_Malloc");
	void (*mem_free)(void *) = (void (*)(void *))dlsym(RTLD_DEFAULT, "PyMem_Free");
	if (!obj_malloc || !obj_realloc || !obj_free || !mem_malloc || !mem_free)
		return -1;
	int changed = 0;
#define CALL(x)                                                                                 \
	do {                                                                                    \
		errno = SENTINEL;                                                               \
		x;                                                                              \
		changed += errno != SENTINEL;                                                   \
	} while (0)
	for (long i = 0; i < n; i++) {
		void *p, *q;
		CALL(p = obj_malloc(16 + (size_t)(i % 500)));
		CALL(p = obj_realloc(p, 600 + (size_t)(i % 100)));
		CALL(obj_free(p));
		CALL(q = mem_malloc(32 + (size_t)(i % 64)));
		CALL(mem_free(q));
	}
	return changed;
}
