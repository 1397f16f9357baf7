/* Writes the committed golden traces (tests/golden/basic.hwt, cut.hwt). Run it when
 * the format or the scenarios change: make_golden OUTDIR. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "trace_builder.h"

static void scenario(struct tb *b)
{
	static const char cmd[] = "./app\0--size\0" "10";
	tb_init(b, HW_MIN_CHUNK_SIZE, cmd, sizeof(cmd));
	tb_chunk(b, 100);
	tb_time(b, 1000000);
	tb_module(b, 0, 0x400000, 0x400000, 0x500000, "/nonexistent/app");
	/* main > load_table > malloc ; main > parse > malloc ; main > mmap */
	tb_stack(b, 1, 0, 0x401000);
	tb_stack(b, 2, 1, 0x402000);
	tb_stack(b, 3, 1, 0x403000);
	tb_stack(b, 4, 1, 0x404000);
	tb_alloc(b, HW_KIND_MALLOC, 1, 0x10000, 4096, 2);
	tb_alloc(b, HW_KIND_MALLOC, 2, 0x20000, 1 << 20, 3);
	tb_time(b, 250000000);
	tb_rss(b, 250000000, 8 << 20);
	tb_alloc(b, HW_KIND_MMAP, 4, 0x7f0000000000, 1 << 21, 4);
	tb_free(b, HW_KIND_MALLOC, 6, 0x20000);
	tb_realloc(b, 7, 8, 0x10000, 0x30000, 8192, 2);
	tb_chunk(b, 101); /* a second thread, interleaved by sequence */
	tb_time(b, 300000000);
	tb_stack(b, 10, 0, 0x401000);
	tb_stack(b, 11, 10, 0x403000);
	tb_alloc(b, HW_KIND_MALLOC, 3, 0x40000, 1000, 11);
	tb_alloc(b, HW_KIND_MALLOC, 5, 0x50000, 3000, 11);
	tb_free(b, HW_KIND_MALLOC, 9, 0x40000);
	tb_unmap(b, 10, 0x7f0000000000, 1 << 20);
	tb_time(b, 500000000);
	tb_trailer(b, 11, 500000000, 6, 3);
}

/* Markers: a block before the window, churn inside it, a leak inside it. */
static void marked(struct tb *b)
{
	tb_init(b, HW_MIN_CHUNK_SIZE, "./server", 8);
	tb_chunk(b, 7);
	tb_time(b, 1000000);
	tb_module(b, 0, 0x400000, 0x400000, 0x500000, "/nonexistent/server");
	tb_stack(b, 1, 0, 0x401000);
	tb_stack(b, 2, 1, 0x402000);
	tb_stack(b, 3, 1, 0x403000);
	tb_alloc(b, HW_KIND_MALLOC, 1, 0x1000, 50000, 2); /* before: not counted */
	tb_mark(b, 2, HW_MARK_USER, "request-start");
	tb_alloc(b, HW_KIND_MALLOC, 3, 0x2000, 700, 3);
	tb_alloc(b, HW_KIND_MALLOC, 4, 0x3000, 300, 3);
	tb_free(b, HW_KIND_MALLOC, 5, 0x3000);
	tb_free(b, HW_KIND_MALLOC, 6, 0x1000); /* freed inside: still not counted */
	tb_mark(b, 7, HW_MARK_USER, "request-end");
	tb_alloc(b, HW_KIND_MALLOC, 8, 0x4000, 90000, 2); /* after: not counted */
	tb_trailer(b, 9, 2000000, 4, 2);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: make_golden OUTDIR\n");
		return 2;
	}
	if (chdir(argv[1]))
		return 2;
	struct tb b;
	scenario(&b);
	if (tb_write(&b, "basic.hwt"))
		return 1;
	/* the same trace cut short inside the second chunk's records */
	b.size = HW_HEADER_SIZE + HW_MIN_CHUNK_SIZE + HW_CHUNK_HEADER_SIZE + 20;
	if (tb_write(&b, "cut.hwt"))
		return 1;
	tb_free_builder(&b);
	marked(&b);
	if (tb_write(&b, "marked.hwt"))
		return 1;
	tb_free_builder(&b);
	return 0;
}
