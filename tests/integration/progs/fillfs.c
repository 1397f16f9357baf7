/* Allocates, then writes a file of its own (integration test: the trace,
 * on the same filesystem, leaves the program the space it needs).
 * Usage: fillfs ALLOCATIONS DATAFILE BYTES; exit 1 when the write fails. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	long n = atol(argv[1]);
	for (long i = 0; i < n; i++)
		free(malloc(16 + (size_t)(i % 300)));
	int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return 3;
	static char buf[65536];
	memset(buf, 'x', sizeof(buf));
	long left = atol(argv[3]);
	while (left > 0) {
		ssize_t w = write(fd, buf, left < (long)sizeof(buf) ? (size_t)left : sizeof(buf));
		if (w <= 0) {
			fprintf(stderr, "fillfs: write: %s\n", strerror(errno));
			return 1;
		}
		left -= w;
	}
	return close(fd) ? 1 : 0;
}
