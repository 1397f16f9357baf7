/* A program that closes every descriptor above stderr and opens files in
 * their place (integration test, run with native stacks): the shim must own
 * no descriptor it could see or reuse. libunwind 1.6 kept a pipe on fds 3
 * and 4 from the first native stack on, and used it to check addresses
 * while unwinding frames without unwind information: it read a byte from
 * the program's fd 3 and wrote a byte of memory into its fd 4.
 * Usage: fdreuse INPUT OUTPUT   (INPUT: a file of at least 64 bytes) */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A function without unwind information (no CFI): libunwind falls back to
 * the frame chain, checking each address it reads. */
__asm__(".text\n"
	".globl nocfi_alloc\n"
	".type nocfi_alloc, @function\n"
	"nocfi_alloc:\n"
	"\tpush %rbp\n"
	"\tmov %rsp, %rbp\n"
	"\tcall malloc@PLT\n"
	"\tpop %rbp\n"
	"\tret\n"
	".size nocfi_alloc, .-nocfi_alloc\n");
void *nocfi_alloc(size_t n);

__attribute__((noinline)) static void *plain_alloc(size_t n)
{
	return malloc(n);
}

/* Descriptors above 2 that are open now, except the one reading the list. */
static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && atoi(e->d_name) > 2 && atoi(e->d_name) != dirfd(d)) {
			fprintf(stderr, "open descriptor %s\n", e->d_name);
			n++;
		}
	closedir(d);
	return n;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	free(plain_alloc(10)); /* native stacks from here on */
	if (count_fds() != 0)
		return 3;
	for (int fd = 3; fd < 64; fd++)
		close(fd);
	int in = open(argv[1], O_RDONLY);
	int out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (in != 3 || out != 4)
		return 4;
	for (int i = 0; i < 2000; i++) {
		free(nocfi_alloc(16 + (size_t)i));
		free(plain_alloc(32 + (size_t)i));
		if (i % 100 == 0 && write(out, "line\n", 5) != 5)
			return 5;
	}
	/* the input is read from its start: nobody else read from fd 3 */
	char want[64], got[64];
	int fd = open(argv[1], O_RDONLY);
	if (read(fd, want, sizeof(want)) != (ssize_t)sizeof(want) ||
	    read(in, got, sizeof(got)) != (ssize_t)sizeof(got) || memcmp(want, got, sizeof(got)))
		return 6;
	close(fd);
	close(in);
	close(out);
	return count_fds() == 0 ? 0 : 7;
}
