/* A known allocation pattern for the sampling mode's tests: each callsite's
 * bytes and blocks are known, so a sampled trace's estimates can be held to
 * them. Usage: sampled keep|free [fork]. keep: exits with the kept blocks
 * live (leaked); free: frees everything first (nothing may look leaked).
 * Blocks are freed by other threads than the ones that made them, grown and
 * shrunk by realloc, made by calloc, posix_memalign and mmap. fork: a child
 * frees the parent's blocks and makes its own. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define SMALL_N 200000 /* x 48 bytes = 9.6 MB */
#define MEDIUM_N 2500 /* x 4000 = 10 MB */
#define LARGE_N 10 /* x 1 MiB = 10.5 MB */
#define CALLOC_N 100000 /* x 100 = 10 MB */
#define GROW_N 20000 /* realloc 16 -> 512 in steps of 16: 512 x 20000 = 10.2 MB */
#define CHURN_N 300000 /* x 64, freed at once: 19 MB allocated, none live */
#define THREADS 4
#define THREAD_N 20000 /* x 256 per thread: 5.1 MB each, freed by main */

static void *small[SMALL_N], *medium[MEDIUM_N], *large[LARGE_N], *zeroed[CALLOC_N],
	*grown[GROW_N], *from_threads[THREADS][THREAD_N];

__attribute__((noinline)) static void *site_small(void)
{
	return malloc(48);
}

__attribute__((noinline)) static void *site_medium(void)
{
	void *p = NULL;
	return posix_memalign(&p, 64, 4000) ? NULL : p;
}

__attribute__((noinline)) static void *site_large(void)
{
	return malloc(1 << 20);
}

__attribute__((noinline)) static void *site_calloc(void)
{
	return calloc(1, 100);
}

__attribute__((noinline)) static void *site_grow(void *p, size_t n)
{
	return realloc(p, n);
}

__attribute__((noinline)) static void site_churn(void)
{
	for (int i = 0; i < CHURN_N; i++) {
		volatile char *p = malloc(64);
		p[0] = 1;
		free((void *)p);
	}
}

__attribute__((noinline)) static void *site_thread(void *arg)
{
	void **out = arg;
	for (int i = 0; i < THREAD_N; i++)
		out[i] = malloc(256);
	return NULL;
}

static void make_all(void)
{
	for (int i = 0; i < SMALL_N; i++)
		small[i] = site_small();
	for (int i = 0; i < MEDIUM_N; i++)
		medium[i] = site_medium();
	for (int i = 0; i < LARGE_N; i++)
		memset(large[i] = site_large(), 1, 64);
	for (int i = 0; i < CALLOC_N; i++)
		zeroed[i] = site_calloc();
	for (int i = 0; i < GROW_N; i++) {
		void *p = NULL;
		for (size_t n = 16; n <= 512; n += 16)
			p = site_grow(p, n);
		grown[i] = p;
	}
	site_churn();
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, site_thread, from_threads[i]);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
}

static void free_all(void)
{
	for (int i = 0; i < SMALL_N; i++)
		free(small[i]);
	for (int i = 0; i < MEDIUM_N; i++)
		free(medium[i]);
	for (int i = 0; i < LARGE_N; i++)
		free(large[i]);
	for (int i = 0; i < CALLOC_N; i++)
		free(zeroed[i]);
	for (int i = 0; i < GROW_N; i++)
		grown[i] = realloc(grown[i], 8); /* shrunk, then freed */
	for (int i = 0; i < GROW_N; i++)
		free(grown[i]);
	for (int i = 0; i < THREADS; i++)
		for (int j = 0; j < THREAD_N; j++)
			free(from_threads[i][j]);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	make_all();
	void *map = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED)
		return 1;
	if (argc > 2 && !strcmp(argv[2], "fork")) {
		pid_t pid = fork();
		if (pid == 0) {
			/* the parent's blocks die here: not this trace's */
			free_all();
			munmap(map, 1 << 20);
			for (int i = 0; i < SMALL_N; i++)
				small[i] = site_small();
			for (int i = 0; i < SMALL_N; i++)
				free(small[i]);
			_exit(0);
		}
		int st;
		waitpid(pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st))
			return 1;
	}
	if (!strcmp(argv[1], "free")) {
		free_all();
		munmap(map, 1 << 20);
	}
	return 0;
}
