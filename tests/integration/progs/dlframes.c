/* Loads FIRST.so, allocates through its frame_alloc, unloads it, then the
 * same with SECOND.so, which the kernel maps where the first one was
 * (integration test: a native unwind through a return address that is in
 * another object now, with another frame size, is not stepped by the first
 * object's recipe). Usage: dlframes FIRST.so SECOND.so; exits 3 when the
 * second library did not land where the first one was. */
#include <dlfcn.h>
#include <stdlib.h>

static void *at_first;

static int call(const char *path, int second)
{
	void *h = dlopen(path, RTLD_NOW);
	if (!h)
		return 1;
	void *(*f)(void) = (void *(*)(void))dlsym(h, "frame_alloc");
	if (!f)
		return 1;
	if (second && (void *)f != at_first)
		return 3;
	at_first = (void *)f;
	void *p = f();
	if (!p)
		return 1;
	free(p);
	dlclose(h);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	/* twice the first: the first unwinds may map memory of their own
	 * (libunwind's caches, with HEAPWISE_UNWIND_CACHE=check) where the
	 * first library was */
	int r = call(argv[1], 0);
	r = r ? r : call(argv[1], 0);
	return r ? r : call(argv[2], 1);
}
