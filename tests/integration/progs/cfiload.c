/* Loads each library named (cfi_lib.c, maybe with damaged or no unwind
 * information), calls its cfi_alloc 1,000 times with 1,000 + i bytes, frees
 * the blocks and unloads it (integration test: native unwinding through
 * such a frame never crashes or hangs the program). Usage: cfiload LIB... */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	for (int a = 1; a < argc; a++) {
		void *h = dlopen(argv[a], RTLD_NOW);
		if (!h) {
			fprintf(stderr, "%s\n", dlerror());
			return 1;
		}
		void *(*fn)(size_t) = (void *(*)(size_t))dlsym(h, "cfi_alloc");
		if (!fn)
			return 1;
		for (size_t i = 0; i < 1000; i++) {
			void *p = fn(1000 + i);
			if (!p)
				return 1;
			free(p);
		}
		dlclose(h);
	}
	return 0;
}
