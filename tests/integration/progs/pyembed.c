/* A program that loads Python at run time, as a plugin host or an embedding
 * server does: dlopen's libpython (RTLD_GLOBAL, or RTLD_LOCAL with "local"),
 * runs a leaky script, finalizes, then leaks natively (integration tests:
 * Python loaded with RTLD_GLOBAL is traced from its load on; with
 * RTLD_LOCAL the reports say it was not traced). Usage: pyembed [LIBPYTHON
 * [local]]; exit 3 when it cannot load. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"

int main(int argc, char **argv)
{
	const char *lib = argc > 1 ? argv[1] : "libpython3.11.so.1.0";
	int scope = argc > 2 && !strcmp(argv[2], "local") ? RTLD_LOCAL : RTLD_GLOBAL;
	void *h = dlopen(lib, RTLD_NOW | scope);
	if (!h) {
		fprintf(stderr, "%s\n", dlerror());
		return 3;
	}
	if (embed_run(h, "LEAK = [bytearray(1000) for _ in range(5000)]\n"
			  "KEEP = [str(i) * 20 for i in range(20000)]\n"))
		return 3;
	char *volatile c = malloc(12345); /* a native leak after Python */
	(void)c;
	puts("done");
	return 0;
}
