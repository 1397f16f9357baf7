/* A program that takes the trace's header page from the shim (a program
 * closing or protecting mappings it did not make): mode "reuse" unmaps it
 * and maps a page of its own at that address, filled with 0xAB; "protect"
 * makes it read-only. Then it allocates until the trace's size cap stops
 * recording (the shim writes its stop record then). Exit 0: its own page is
 * as it left it; 1: a byte changed; 2: no header mapping found. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

void *volatile g_keep[1024]; /* what the loop keeps: 1,024 blocks live */

int main(int argc, char **argv)
{
	int reuse = argc > 1 && !strcmp(argv[1], "reuse");
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	unsigned long lo = 0, hi = 0;
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long a, b, off;
		if (strstr(line, ".hwt") && sscanf(line, "%lx-%lx %*s %lx", &a, &b, &off) == 3 &&
		    off == 0 && b - a == 4096) {
			lo = a;
			hi = b;
		}
	}
	if (f)
		fclose(f);
	if (!lo)
		return 2;
	unsigned char *mine = (unsigned char *)lo;
	if (reuse) {
		munmap((void *)lo, hi - lo);
		mine = mmap((void *)lo, 4096, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
		if (mine == MAP_FAILED)
			return 3;
		memset(mine, 0xAB, 4096);
	} else if (mprotect((void *)lo, hi - lo, PROT_READ)) {
		return 3;
	}
	for (int i = 0; i < 2000000; i++) {
		void *p = malloc(32);
		g_keep[i & 1023] = p;
		if (i % 3)
			free(p);
	}
	if (reuse)
		for (int i = 0; i < 4096; i++)
			if (mine[i] != 0xAB)
				return 1;
	return 0;
}
