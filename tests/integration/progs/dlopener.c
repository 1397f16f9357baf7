/* Loads dlib.so, allocates through it, unloads it, loads it again and
 * allocates again (integration test). Usage: dlopener PATH-TO-dlib.so */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	for (int round = 0; round < 2; round++) {
		void *h = dlopen(argv[1], RTLD_NOW);
		if (!h) {
			fprintf(stderr, "%s\n", dlerror());
			return 1;
		}
		void *(*fn)(void) = (void *(*)(void))dlsym(h, "dlib_alloc");
		if (!fn || !fn())
			return 1;
		dlclose(h);
	}
	return 0;
}
