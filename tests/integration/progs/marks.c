/* Markers from C (integration test): links and runs without the shim too. */
#include <stdlib.h>

#include "heapwise/heapwise.h"

__attribute__((noinline)) static void *leak_in_window(void)
{
	return malloc(4321);
}

int main(void)
{
	void *before = malloc(100000);
	HW_MARK("phase-start");
	void *p = leak_in_window();
	free(malloc(50000));
	HW_MARK("phase-end");
	(void)before;
	(void)p;
	return hw_trace_path && hw_trace_path() ? 0 : 5; /* 5: runs untraced */
}
