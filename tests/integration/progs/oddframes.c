/* Native unwinding through odd frames (integration test): coroutines
 * (makecontext/swapcontext) on stacks in the thread's stack, in the heap and
 * in a 16 KiB mapping; code made at run time (an anonymous executable page
 * that calls back), also while that page is unmapped or not executable; a
 * stack whose outermost return address is a garbage word with the top bit
 * set (what a greenlet's switched stack leaves the unwinder: gevent).
 * Prints a sum that depends on every allocation having worked.
 * Usage: oddframes ctx|jit|unmapped|noexec|garbage */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

static long total;
__attribute__((noinline)) static void leaf_alloc(int i)
{
	char *p = malloc(100 + (size_t)(i % 50));
	p[0] = 1;
	total += p[0];
	free(p);
}
__attribute__((noinline)) static void deep(int d, int i)
{
	volatile char pad[256];
	pad[0] = (char)d;
	if (d > 0)
		deep(d - 1, i);
	else
		leaf_alloc(i);
	total += pad[0];
}

static ucontext_t main_ctx, co_ctx;
static void co_main(void)
{
	for (int i = 0; i < 2000; i++) {
		deep(i % 8, i);
		swapcontext(&co_ctx, &main_ctx);
	}
}
static void run_ctx(char *stack, size_t size)
{
	getcontext(&co_ctx);
	co_ctx.uc_stack.ss_sp = stack;
	co_ctx.uc_stack.ss_size = size;
	co_ctx.uc_link = &main_ctx;
	makecontext(&co_ctx, co_main, 0);
	for (int i = 0; i < 2000; i++) {
		swapcontext(&main_ctx, &co_ctx);
		leaf_alloc(i);
	}
	swapcontext(&main_ctx, &co_ctx); /* let it end */
}

/* code: sub $8,%rsp; call *%rdi; add $8,%rsp; ret  (calls fn(arg) in rsi->rdi) */
static const unsigned char tramp[] = {0x48, 0x83, 0xec, 0x08, 0x48, 0x89, 0xf8, 0x48, 0x89, 0xf7,
				      0xff, 0xd0, 0x48, 0x83, 0xc4, 0x08, 0xc3};
static unsigned char *page;
static int what;
static void in_jit(long i)
{
	if (what == 1) { /* unmapped: the return address's page is gone meanwhile */
		munmap(page, 4096);
		leaf_alloc((int)i);
		void *p = mmap(page, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (p != page) abort();
		memcpy(page, tramp, sizeof(tramp));
		mprotect(page, 4096, PROT_READ | PROT_EXEC);
	} else if (what == 2) { /* not executable meanwhile */
		mprotect(page, 4096, PROT_READ);
		leaf_alloc((int)i);
		mprotect(page, 4096, PROT_READ | PROT_EXEC);
	} else {
		leaf_alloc((int)i);
	}
}
static void run_jit(void)
{
	page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memcpy(page, tramp, sizeof(tramp));
	mprotect(page, 4096, PROT_READ | PROT_EXEC);
	void (*t)(void (*)(long), long) = (void (*)(void (*)(long), long))page;
	for (long i = 0; i < 2000; i++)
		t(in_jit, i);
}

/* garbage: a function entered with a jump onto a stack of its own whose
 * return address slot holds a word no code has; it never returns there */
static jmp_buf back;
__attribute__((noinline, noreturn, used)) static void on_odd_stack(void)
{
	for (int i = 0; i < 2000; i++)
		deep(i % 8, i);
	longjmp(back, 1);
}
static void run_garbage(void)
{
	static uintptr_t stack[8192] __attribute__((aligned(16)));
	uintptr_t *top = stack + 8192;
	/* at entry (rsp + 8) is 16-byte aligned, rsp points at the return address */
	top[-3] = (uintptr_t)0xe422e13ba2daf500ull;
	if (!setjmp(back)) {
#if defined(__x86_64__)
		__asm__ volatile("mov %0, %%rsp\n\tjmp *%1" : : "r"(&top[-3]), "r"(on_odd_stack) : "memory");
#else
		on_odd_stack();
#endif
	}
}

int main(int argc, char **argv)
{
	const char *m = argc > 1 ? argv[1] : "ctx";
	if (!strcmp(m, "ctx")) {
		char local[65536];
		run_ctx(local, sizeof(local));
		char *heap = malloc(65536);
		run_ctx(heap, 65536);
		free(heap);
		char *mm = mmap(NULL, 16384, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		run_ctx(mm, 16384);
	} else if (!strcmp(m, "garbage")) {
		run_garbage();
	} else {
		what = !strcmp(m, "unmapped") ? 1 : !strcmp(m, "noexec") ? 2 : 0;
		run_jit();
	}
	printf("%ld\n", total);
	return 0;
}
