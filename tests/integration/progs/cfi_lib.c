/* A library for cfiload.c (integration test): cfi_alloc calls malloc from
 * a frame of its own that saves callee-saved registers, so its unwind
 * information has a few rules; test_stress.py damages that information in
 * copies of the library (or builds it without any) before they are loaded. */
#include <stdlib.h>

__attribute__((noinline)) void *cfi_alloc(size_t n)
{
	/* keep values live across the call: pushes and CFA offsets */
	volatile size_t a = n, b = n * 3, c = n * 5, d = n * 7;
	/* five callee-saved registers pushed: the FDE has room for a rule of
	 * a dozen bytes */
	__asm__ volatile("" ::: "rbx", "r12", "r13", "r14", "r15");
	void *p = malloc(n);
	size_t s = a + b + c + d;
	if (p)
		((char *)p)[0] = (char)s;
	return p;
}
