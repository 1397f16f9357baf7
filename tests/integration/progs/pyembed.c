/* A program that loads Python at run time, as a plugin host or an embedding
 * server (uwsgi, mod_wsgi) does: dlopen's libpython, runs a leaky script,
 * finalizes, then leaks natively (integration test: the reports say Python
 * was not traced). Usage: pyembed [LIBPYTHON]; exit 3 when it cannot load. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
	const char *lib = argc > 1 ? argv[1] : "libpython3.11.so.1.0";
	void *h = dlopen(lib, RTLD_NOW | RTLD_GLOBAL);
	if (!h) {
		fprintf(stderr, "%s\n", dlerror());
		return 3;
	}
	void (*init)(void) = (void (*)(void))dlsym(h, "Py_Initialize");
	int (*run)(const char *) = (int (*)(const char *))dlsym(h, "PyRun_SimpleString");
	int (*fin)(void) = (int (*)(void))dlsym(h, "Py_FinalizeEx");
	if (!init || !run || !fin)
		return 3;
	init();
	run("LEAK = [bytearray(1000) for _ in range(5000)]\n"
	    "KEEP = [str(i) * 20 for i in range(20000)]\n");
	fin();
	char *volatile c = malloc(12345); /* a native leak after Python */
	(void)c;
	puts("done");
	return 0;
}
