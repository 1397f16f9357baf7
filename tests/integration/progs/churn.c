/* Many allocations, then a chosen exit status (integration test: a full disk
 * or a crash of the tracer never changes what the program does).
 * Usage: churn N STATUS [segv] */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 100000;
	int status = argc > 2 ? atoi(argv[2]) : 0;
	long sum = 0;
	for (long i = 0; i < n; i++) {
		char *p = malloc((size_t)(i % 100) + 1);
		p[0] = (char)i;
		sum += p[0];
		free(p);
	}
	if (argc > 3 && !strcmp(argv[3], "segv"))
		raise(SIGSEGV);
	return status + (int)(sum & 0);
}
