/* Allocates, says so, then waits to be killed (integration test: a SIGKILL
 * keeps every allocation made before it). Usage: hold N */
#include <stdlib.h>
#include <unistd.h>

__attribute__((noinline)) static void hold(int n)
{
	for (int i = 0; i < n; i++)
		(void)!malloc(1000);
}

int main(int argc, char **argv)
{
	hold(argc > 1 ? atoi(argv[1]) : 1000);
	(void)!write(1, "ready\n", 6);
	for (;;)
		pause();
}
