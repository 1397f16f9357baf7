/* Runs Python source in a libpython the caller dlopen'd (handle h):
 * Py_Initialize, PyRun_SimpleString, Py_FinalizeEx. 0, or 3 when a symbol
 * is missing (the test programs' "cannot load"). */
#ifndef HW_TESTS_EMBED_H
#define HW_TESTS_EMBED_H

#include <dlfcn.h>

static int embed_run(void *h, const char *source)
{
	void (*init)(void) = (void (*)(void))dlsym(h, "Py_Initialize");
	int (*run)(const char *) = (int (*)(const char *))dlsym(h, "PyRun_SimpleString");
	int (*fin)(void) = (int (*)(void))dlsym(h, "Py_FinalizeEx");
	if (!init || !run || !fin)
		return 3;
	init();
	run(source);
	fin();
	return 0;
}

#endif
