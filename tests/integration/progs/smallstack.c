/* Allocations on small stacks (integration test): threads with 16 KiB and
 * 24 KiB stacks that allocate a few KiB deep, and a signal handler on a
 * 16 KiB alternate stack that calls malloc. Untraced they run; traced, the
 * shim must not need more stack than is left (it records a shorter stack
 * instead). altinside: the 16 KiB alternate stack is an array in a frame of
 * the main thread's own stack, and the handler uses 9 KiB of it before it
 * allocates. selfattr: 16 KiB threads whose first call is
 * pthread_getattr_np of themselves (Python 3.14+ and Rust do that at a
 * thread's start; glibc allocates in it holding the thread's lock), then
 * allocate as `threads` does. Usage: smallstack [threads] [altstack]
 * [altinside] [selfattr] */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_long handled;

__attribute__((noinline)) static void *small_alloc(size_t n)
{
	return malloc(n);
}

/* Uses about depth KiB of stack, then allocates. */
__attribute__((noinline)) static void deep(int depth, long *sum)
{
	volatile char pad[1000];
	memset((char *)pad, depth, sizeof(pad));
	if (depth > 0) {
		deep(depth - 1, sum);
		return;
	}
	for (int i = 0; i < 200; i++) {
		char *p = small_alloc(16 + (size_t)i);
		p = realloc(p, 400 + (size_t)i);
		*sum += p[0] = (char)i;
		free(p);
	}
	*sum += pad[0];
}

static void *thread_main(void *arg)
{
	long sum = 0;
	int kib = (int)(long)arg;
	for (int d = 0; d < kib; d++)
		deep(d, &sum);
	return (void *)sum;
}

static atomic_int attr_failed;

static void *attr_main(void *arg)
{
	pthread_attr_t a;
	void *addr = NULL;
	size_t size = 0;
	if (pthread_getattr_np(pthread_self(), &a) == 0) {
		pthread_attr_getstack(&a, &addr, &size);
		pthread_attr_destroy(&a);
	}
	if (!size)
		atomic_store(&attr_failed, 1);
	return thread_main(arg);
}

static int run_thread_of(void *(*fn)(void *), size_t stack, int deep_kib)
{
	pthread_attr_t a;
	pthread_attr_init(&a);
	if (pthread_attr_setstacksize(&a, stack))
		return -1;
	pthread_t t;
	if (pthread_create(&t, &a, fn, (void *)(long)deep_kib))
		return -1;
	pthread_join(t, NULL);
	pthread_attr_destroy(&a);
	return 0;
}

static int run_thread(size_t stack, int deep_kib)
{
	return run_thread_of(thread_main, stack, deep_kib);
}

static void on_signal(int sig)
{
	(void)sig;
	/* not async-signal-safe, on purpose: programs do this */
	long sum = 0;
	deep(2, &sum);
	free(small_alloc(48));
	atomic_fetch_add(&handled, 1);
}

static void on_signal_deep(int sig)
{
	(void)sig;
	long sum = 0;
	deep(8, &sum);
	free(small_alloc(48));
	atomic_fetch_add(&handled, 1);
}

/* The alternate stack inside this frame: raise's frames lie just below it,
 * and a handler that overflows it overwrites them. */
__attribute__((noinline)) static int run_inside(void)
{
	char inside[16384];
	stack_t ss = {.ss_sp = inside, .ss_size = sizeof(inside)};
	if (sigaltstack(&ss, NULL))
		return 2;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal_deep;
	sa.sa_flags = SA_ONSTACK;
	sigaction(SIGUSR2, &sa, NULL);
	for (int i = 0; i < 200; i++)
		raise(SIGUSR2);
	ss.ss_flags = SS_DISABLE;
	sigaltstack(&ss, NULL);
	return 0;
}

int main(int argc, char **argv)
{
	int threads = argc < 2 || !strcmp(argv[1], "threads") || (argc > 2 && !strcmp(argv[2], "threads"));
	int alt = argc < 2 || !strcmp(argv[1], "altstack") || (argc > 2 && !strcmp(argv[2], "altstack"));
	if (threads) {
		/* glibc keeps its thread descriptor and TLS in the stack too */
		if (run_thread(16384, 6) || run_thread(24576, 14))
			return 1;
	}
	if (alt) {
		stack_t ss = {.ss_sp = malloc(16384), .ss_size = 16384};
		if (sigaltstack(&ss, NULL))
			return 2;
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sa.sa_flags = SA_ONSTACK;
		sigaction(SIGUSR1, &sa, NULL);
		for (int i = 0; i < 200; i++)
			raise(SIGUSR1);
		if (atomic_load(&handled) != 200)
			return 3;
	}
	if (argc > 1 && !strcmp(argv[1], "selfattr")) {
		for (int i = 0; i < 20; i++)
			if (run_thread_of(attr_main, 16384, 6) || run_thread_of(attr_main, 24576, 14))
				return 5;
		if (atomic_load(&attr_failed))
			return 6;
	}
	if (argc > 1 && !strcmp(argv[1], "altinside")) {
		if (run_inside() || atomic_load(&handled) != 200)
			return 4;
	}
	return 0;
}
