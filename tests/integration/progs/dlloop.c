/* dlopen/dlclose of a library in a loop while another thread allocates
 * (integration test). Usage: dlloop PATH-TO-dlib.so */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

static atomic_bool stop;

static void *churn(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop))
		free(malloc(100));
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	pthread_t t;
	pthread_create(&t, NULL, churn, NULL);
	int bad = 0;
	for (int i = 0; i < 500; i++) {
		void *h = dlopen(argv[1], RTLD_NOW);
		void *(*fn)(void) = h ? (void *(*)(void))dlsym(h, "dlib_alloc") : NULL;
		if (!fn) {
			bad++;
			continue;
		}
		free(fn());
		dlclose(h);
	}
	atomic_store(&stop, true);
	pthread_join(t, NULL);
	return bad;
}
