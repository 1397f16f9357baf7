/* A program that closes stderr and opens a data file in its place, then
 * makes heapwise stop recording (it removes its trace; the next chunk claim
 * fails). The "recording stopped" line must not land in the data file.
 * Usage: swaperr DATAFILE [keep]   (keep: stderr stays as it was) */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	int keep = argc > 2 && !strcmp(argv[2], "keep");
	const char *(*trace_path)(void) =
		(const char *(*)(void))dlsym(RTLD_DEFAULT, "hw_trace_path");
	const char *trace = trace_path ? trace_path() : NULL;
	int fd;
	if (keep) {
		fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	} else {
		close(2);
		fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644); /* fd 2 */
		if (fd != 2)
			return 3;
	}
	if (fd < 0)
		return 4;
	if (trace)
		unlink(trace);
	for (int i = 0; i < 100000; i++) {
		char *p = malloc(16 + (size_t)(i % 64));
		if (i % 10000 == 0) {
			char line[64];
			int n = snprintf(line, sizeof(line), "data %d\n", i);
			if (write(fd, line, (size_t)n) != n)
				return 5;
		}
		free(p);
	}
	return trace ? 0 : 6;
}
