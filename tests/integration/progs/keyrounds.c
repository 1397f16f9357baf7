/* Key destructors that set their key again (integration test, test_stress.py
 * test_key_destructors_set_again_are_recorded). POSIX lets a thread's key
 * destructor set a value again; glibc then calls destructors for another
 * round, up to PTHREAD_DESTRUCTOR_ITERATIONS (4). Each of N threads (argv[1],
 * default 64) sets two keys: round_alloc's destructor frees its value and,
 * in the first two rounds, allocates 111 bytes and sets its key again;
 * round_free's destructor frees its value. Nothing is left: every block is
 * freed, N * 3 of round_alloc's allocations and N of round_free's.
 * keyrounds N last: the main thread starts the N threads at once, keeps
 * 4,444 bytes (main_keeps) and calls pthread_exit; the last thread to end
 * then calls exit(0) (glibc), after its key destructors. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_key_t k_alloc, k_free;
static __thread int rounds;

__attribute__((noinline)) static void *round_alloc(void)
{
	return malloc(111);
}

__attribute__((noinline)) static void *main_keeps(void)
{
	return malloc(4444);
}

__attribute__((noinline)) static void *round_free(void)
{
	return malloc(222);
}

static void alloc_dtor(void *p)
{
	free(p);
	if (rounds++ < 2)
		pthread_setspecific(k_alloc, round_alloc());
}

static void free_dtor(void *p)
{
	free(p);
}

static void *body(void *arg)
{
	(void)arg;
	pthread_setspecific(k_alloc, round_alloc());
	pthread_setspecific(k_free, round_free());
	return NULL;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 64;
	if (pthread_key_create(&k_alloc, alloc_dtor) || pthread_key_create(&k_free, free_dtor))
		return 1;
	if (argc > 2) {
		for (int i = 0; i < n; i++) {
			pthread_t t;
			if (pthread_create(&t, NULL, body, NULL))
				return 1;
		}
		(void)!main_keeps();
		pthread_exit(NULL);
	}
	for (int i = 0; i < n; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, body, NULL) || pthread_join(t, NULL))
			return 1;
	}
	return 0;
}
