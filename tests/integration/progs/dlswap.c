/* Loads dswap_first.so and allocates through it, unloads it, loads
 * dswap_second.so (the kernel gives it the addresses the first one had) and
 * allocates through it on a new thread (integration test: frames are named
 * by the library loaded at their time). Usage: dlswap FIRST.so SECOND.so;
 * exits 3 when the second library did not land where the first one was. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

static void *(*second)(void);

static void *worker(void *arg)
{
	(void)arg;
	return second();
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	void *h = dlopen(argv[1], RTLD_NOW);
	if (!h)
		return 1;
	void *(*first)(void) = (void *(*)(void))dlsym(h, "first_alloc");
	if (!first || !first())
		return 1;
	void *at_first = (void *)first;
	dlclose(h);
	h = dlopen(argv[2], RTLD_NOW);
	if (!h)
		return 1;
	second = (void *(*)(void))dlsym(h, "second_alloc");
	if (!second)
		return 1;
	if ((void *)second != at_first) /* not the same address: nothing to test */
		return 3;
	pthread_t t;
	void *out = NULL;
	if (pthread_create(&t, NULL, worker, NULL) || pthread_join(t, &out) || !out)
		return 1;
	return 0;
}
