/* A library whose PyMem_SetAllocator is an IFUNC (latefork.c): the shim's
 * look for a Python loaded late (dlsym(RTLD_DEFAULT, "PyMem_SetAllocator"))
 * runs its resolver, so the program gets control in the middle of that
 * look: the resolver tells the program through lateprobe_in and waits until
 * it writes a byte to lateprobe_go, and says "not found". Later calls give
 * the definition of the libpython the program loaded (lateprobe_python, its
 * handle), if any. */
#include <dlfcn.h>
#include <unistd.h>

int lateprobe_in = -1, lateprobe_go = -1;
void *lateprobe_python;
int lateprobe_calls;

static void (*resolve(void))(void)
{
	if (lateprobe_calls++ == 0 && lateprobe_in >= 0) {
		char c = 1;
		(void)write(lateprobe_in, &c, 1);
		(void)read(lateprobe_go, &c, 1);
		return 0; /* the shim goes on as in a process without Python */
	}
	return lateprobe_python ? (void (*)(void))dlsym(lateprobe_python, "PyMem_SetAllocator") : 0;
}

void PyMem_SetAllocator(void) __attribute__((ifunc("resolve")));
