/* A library loaded by one thread where another thread's dlclose just
 * unmapped one, before that dlclose returned (integration test): both
 * threads run on one CPU under SCHED_FIFO, the loading one at the higher
 * priority, so the loader's lock, released at the end of dlclose, hands it
 * the CPU at once. A free range above the first library, too small for
 * it, takes what else is mapped meanwhile (a tracer's own small tables), so
 * that the second one can land where the first was. The loading thread first allocates through the first
 * library, then, through the same call site, through the second, loaded at
 * the first one's address. Usage: dlrace FIRST.so SECOND.so; exits 3 when
 * real-time scheduling is not allowed or the second library did not land
 * where the first one was. */
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdio.h>
#include <sys/mman.h>

static const char *second_path;
static void *(*first)(void);
static void *second_at;
static sem_t ready, go;

__attribute__((noinline)) static void *call(void *(*fn)(void))
{
	return fn();
}

static void *loader(void *arg)
{
	(void)arg;
	void *(*fn)(void) = first, *out = NULL;
	for (int i = 0; i < 2; i++) {
		out = call(fn); /* one call site: the stacks differ only in the library */
		if (!out || i)
			break;
		sem_post(&ready);
		sem_wait(&go);
		/* waits for the loader's lock, which the dlclose holds */
		void *h = dlopen(second_path, RTLD_NOW);
		if (!h || !(fn = (void *(*)(void))dlsym(h, "second_alloc")))
			return NULL;
		second_at = (void *)fn;
	}
	return out;
}

static void on_unload(void)
{
	sem_post(&go); /* the loader runs at once, up to its dlopen */
}

static int fifo(pthread_attr_t *a, int prio)
{
	struct sched_param p = {.sched_priority = prio};
	if (a)
		return pthread_attr_setinheritsched(a, PTHREAD_EXPLICIT_SCHED) ||
		       pthread_attr_setschedpolicy(a, SCHED_FIFO) || pthread_attr_setschedparam(a, &p);
	return pthread_setschedparam(pthread_self(), SCHED_FIFO, &p);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	second_path = argv[2];
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu(), &one);
	if (sched_setaffinity(0, sizeof(one), &one) || fifo(NULL, 1))
		return 3;
	/* 16 KiB free above the library (less than its size) */
	void *above = mmap(NULL, 16384, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	void *h = dlopen(argv[1], RTLD_NOW);
	if (!h || above == MAP_FAILED || !(first = (void *(*)(void))dlsym(h, "first_alloc")))
		return 1;
	void (**hook)(void) = (void (**)(void))dlsym(h, "drace_hook");
	if (!first || !hook)
		return 1;
	*hook = on_unload;
	sem_init(&ready, 0, 0);
	sem_init(&go, 0, 0);
	pthread_attr_t a;
	pthread_t t;
	pthread_attr_init(&a);
	if (fifo(&a, 2) || pthread_create(&t, &a, loader, NULL))
		return 3;
	sem_wait(&ready);
	munmap(above, 16384);
	void *at_first = (void *)first;
	dlclose(h);
	void *out = NULL;
	if (pthread_join(t, &out) || !out)
		return 1;
	printf("first at %p, second at %p\n", at_first, second_at);
	return second_at == at_first ? 0 : 3;
}
