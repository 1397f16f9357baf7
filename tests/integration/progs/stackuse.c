/* How much stack an allocator call takes, per path (integration test): the
 * stack below the caller is painted, the call made, and the deepest byte it
 * changed found. Run untraced and traced, the difference is the shim's.
 * Prints "PATH BYTES" lines. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAINT (96 * 1024)
#define GAP 64 /* left alone below the caller's frame */
#define MAGIC 0xa5

enum op { OP_MALLOC, OP_MALLOC_NEW_STACK, OP_FREE, OP_REALLOC, OP_CALLOC, OP_MMAP };

static void *g_block;

__attribute__((noinline)) static void do_op(enum op op, int variant)
{
	switch (op) {
	case OP_MALLOC:
		g_block = malloc(64);
		break;
	case OP_MALLOC_NEW_STACK: {
		/* a call site seen for the first time: new stack nodes, and
		 * libunwind's cache misses */
		static void *(*volatile fn)(size_t) = malloc;
		char *p = __builtin_alloca(16 + (size_t)variant * 16);
		p[0] = 0;
		g_block = fn(100 + (size_t)variant);
		break;
	}
	case OP_FREE:
		free(g_block);
		break;
	case OP_REALLOC:
		g_block = realloc(g_block, 5000);
		break;
	case OP_CALLOC:
		g_block = calloc(10, 10);
		break;
	case OP_MMAP:
		g_block = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		munmap(g_block, 4096);
		break;
	}
}

/* Paints the stack below this frame, runs op, returns the bytes it used
 * below this frame. */
__attribute__((noinline)) static size_t measure(enum op op, int variant)
{
	volatile char anchor = 0;
	char *top = (char *)&anchor - GAP;
	char *bottom = top - PAINT;
	for (char *p = bottom; p < top; p++)
		*(volatile char *)p = (char)MAGIC;
	do_op(op, variant);
	char *p = bottom;
	while (p < top && *(volatile unsigned char *)p == MAGIC)
		p++;
	return (size_t)(top - p) + GAP + (anchor & 0);
}

static void report(const char *name, enum op op, int variant)
{
	printf("%s %zu\n", name, measure(op, variant));
}

static void *thread_main(void *arg)
{
	(void)arg;
	report("first-event-of-thread", OP_MALLOC, 0); /* state, chunk claim */
	report("free", OP_FREE, 0);
	for (int i = 0; i < 3; i++)
		free((report("malloc", OP_MALLOC, 0), g_block));
	report("malloc-new-stack", OP_MALLOC_NEW_STACK, 1);
	free(g_block);
	report("malloc-new-stack-2", OP_MALLOC_NEW_STACK, 2);
	report("realloc", OP_REALLOC, 0);
	free(g_block);
	report("calloc", OP_CALLOC, 0);
	free(g_block);
	report("mmap-munmap", OP_MMAP, 0);
	/* many events: chunk claims on the way */
	size_t worst = 0;
	for (int i = 0; i < 20000; i++) {
		size_t n = measure(OP_MALLOC, 0);
		if (n > worst)
			worst = n;
		free(g_block);
	}
	printf("malloc-worst-of-20000 %zu\n", worst);
	return NULL;
}

int main(void)
{
	/* every function bound once: lazy binding takes 3 KiB of the loader's */
	do_op(OP_MALLOC, 0);
	do_op(OP_REALLOC, 0);
	do_op(OP_FREE, 0);
	do_op(OP_CALLOC, 0);
	do_op(OP_FREE, 0);
	do_op(OP_MMAP, 0);
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 1 << 20);
	pthread_t t;
	pthread_create(&t, &a, thread_main, NULL);
	pthread_join(t, NULL);
	fflush(stdout);
	/* a fork child starts its own trace at its first event */
	pid_t pid = fork();
	if (pid == 0) {
		report("first-event-of-fork-child", OP_MALLOC, 0);
		fflush(stdout);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	return 0;
}
