/* Crafted traces that once made the analyzer super-linear (tests and
 * tools/bench_analyzer.py): make_scale KIND N OUT.
 *   stacks N   a Python process with N distinct stacks (3 Python frames over
 *              two native ones), 4 events each, a block of each kept live
 *   leaves N   the same stacks with one allocation each, nothing else
 *   chain N    a Python stack N frames deep with an allocation at every depth
 *   wide N     N functions called from one line of <module>, each allocating
 *              once: one frame with N children
 *   lines N    a module of N lines, each allocating once (N at most 8192:
 *              the shim cuts a line table at HW_MAX_LINETABLE bytes)
 *   mmaps N    N one-page anonymous mappings (top-down, as the kernel places
 *              them), all unmapped at the end
 *   dlopen N   N dlopen/dlclose cycles of LIB (the 4th argument) at one
 *              address, each with an allocation inside it (fresh stack ids
 *              after each dlclose, as the shim writes them)
 *   modules N  N libraries of distinct paths (none of them on disk), a
 *              native frame and an allocation in each
 *   module OFF a native frame at offset OFF (hex) of the module PATH (the 4th
 *              argument: a library, or a FIFO that must not stall a report)
 * Times advance 1 us per event, so every report sees a run of N us or more.
 * Chunks are 64 KiB (MAKE_SCALE_CHUNK=BYTES: another power of two). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace_builder.h"

static uint32_t CHUNK = 1u << 16; /* MAKE_SCALE_CHUNK=BYTES changes it */

struct gen {
	struct tb b;
	uint64_t seq, t;
	size_t used_at; /* b.size when the chunk began */
	uint32_t tid;
};

/* Starts a new chunk of the same thread when this one is nearly full. */
static void room(struct gen *g)
{
	if (g->b.size - g->used_at > CHUNK - 4096) {
		tb_chunk(&g->b, g->tid);
		g->used_at = g->b.chunk_off;
		tb_time(&g->b, g->t);
	}
}

static void thread(struct gen *g, uint32_t tid)
{
	g->tid = tid;
	tb_chunk(&g->b, tid);
	g->used_at = g->b.chunk_off;
	tb_time(&g->b, g->t);
}

static void tick(struct gen *g)
{
	g->t += 1000;
	tb_time(&g->b, g->t);
}

static void stacks(struct gen *g, uint32_t n, bool one)
{
	uint32_t k = 1;
	while (k * k < n)
		k++;
	tb_python(&g->b, 1, 0x030b07f0, 1, NULL);
	/* native start-up frames under the Python ones */
	tb_stack(&g->b, 1, 0, 0x401000);
	tb_stack(&g->b, 2, 1, 0x402000);
	tb_code(&g->b, 1, 1, "main.py", "<module>");
	tb_pystack(&g->b, 3, 2, 1, 0);
	for (uint32_t i = 0; i < k; i++) {
		char file[64], fn[64];
		snprintf(file, sizeof(file), "pkg/mod%u.py", i % 97);
		snprintf(fn, sizeof(fn), "outer_%u", i);
		tb_code(&g->b, 2 + i, 10 + i, file, fn);
		snprintf(fn, sizeof(fn), "inner_%u", i);
		tb_code(&g->b, 2 + k + i, 20 + i % 50, "pkg/util.py", fn);
	}
	uint32_t id = 4;
	uint64_t addr = 0x10000000;
	for (uint32_t i = 0; i < k && id - 4 < 2 * n; i++) {
		uint32_t outer = id++;
		tb_pystack(&g->b, outer, 3, 2 + i, 0);
		for (uint32_t j = 0; j < k && id - 4 < 2 * n; j++) {
			room(g);
			uint32_t leaf = id++;
			tb_pystack(&g->b, leaf, outer, 2 + k + j, 0);
			if (one) {
				tb_alloc(&g->b, HW_KIND_PYOBJ, g->seq++, addr, 64, leaf);
				addr += 64;
				if (j % 64 == 0)
					tick(g);
				continue;
			}
			/* a temporary, a block kept, a realloc'ed one */
			tb_alloc(&g->b, HW_KIND_PYOBJ, g->seq++, addr, 64, leaf);
			tb_free(&g->b, HW_KIND_PYOBJ, g->seq++, addr);
			tb_alloc(&g->b, HW_KIND_MALLOC, g->seq++, addr + 64, 32 + (i * 7 + j) % 512, leaf);
			tb_alloc(&g->b, HW_KIND_PYOBJ, g->seq++, addr + 1024, 100, leaf);
			tb_free(&g->b, HW_KIND_PYOBJ, g->seq++, addr + 1024);
			addr += 4096;
			tick(g);
		}
	}
}

static void chain(struct gen *g, uint32_t n)
{
	tb_python(&g->b, 1, 0x030b07f0, 1, NULL);
	for (uint32_t c = 1; c <= 64; c++) {
		char fn[32];
		snprintf(fn, sizeof(fn), "recurse_%u", c);
		tb_code(&g->b, c, c, "deep.py", fn);
	}
	for (uint32_t i = 1; i <= n; i++) {
		room(g);
		tb_pystack(&g->b, i, i - 1, 1 + i % 64, 0);
		tb_alloc(&g->b, HW_KIND_PYOBJ, g->seq++, 0x10000000 + (uint64_t)i * 64, 48, i);
		if (i % 64 == 0)
			tick(g);
	}
}

static void wide(struct gen *g, uint32_t n)
{
	tb_python(&g->b, 1, 0x030b07f0, 1, NULL);
	tb_code(&g->b, 1, 1, "main.py", "<module>");
	tb_pystack(&g->b, 1, 0, 1, 0);
	for (uint32_t i = 0; i < n; i++) {
		char fn[32];
		room(g);
		snprintf(fn, sizeof(fn), "handler_%u", i);
		tb_code(&g->b, 2 + i, 10 + i, "handlers.py", fn);
		tb_pystack(&g->b, 2 + i, 1, 2 + i, 0);
		tb_alloc(&g->b, HW_KIND_PYOBJ, g->seq++, 0x10000000 + (uint64_t)i * 64, 48, 2 + i);
		if (i % 64 == 0)
			tick(g);
	}
}

static void lines(struct gen *g, uint32_t n)
{
	tb_python(&g->b, 1, 0x030b07f0, 1, NULL);
	/* one code unit a line: code 13 (no columns), line delta +1 */
	if (n > HW_MAX_LINETABLE / 2)
		n = HW_MAX_LINETABLE / 2;
	uint8_t *table = malloc(2 * (size_t)n + 1);
	for (uint32_t i = 0; i < n; i++) {
		table[2 * i] = 0x80 | (13 << 3);
		table[2 * i + 1] = 2; /* +1, as CPython's signed varint */
	}
	tb_code_table(&g->b, 1, 1, "data.py", "<module>", table, 2 * (size_t)n);
	free(table);
	for (uint32_t i = 0; i < n; i++) {
		room(g);
		tb_pystack(&g->b, 1 + i, 0, 1, i + 1);
		tb_alloc(&g->b, HW_KIND_PYOBJ, g->seq++, 0x10000000 + (uint64_t)i * 64, 48, 1 + i);
		if (i % 64 == 0)
			tick(g);
	}
}

static void mmaps(struct gen *g, uint32_t n)
{
	tb_stack(&g->b, 1, 0, 0x401000);
	uint64_t top = 0x7f0000000000;
	for (uint32_t i = 0; i < n; i++) {
		room(g);
		tb_alloc(&g->b, HW_KIND_MMAP, g->seq++, top - (uint64_t)(i + 1) * 8192, 4096, 1);
		if (i % 64 == 0)
			tick(g);
	}
	for (uint32_t i = 0; i < n; i++) {
		room(g);
		tb_unmap(&g->b, g->seq++, top - (uint64_t)(i + 1) * 8192, 4096);
		if (i % 64 == 0)
			tick(g);
	}
}

/* The shim's view of a dlopen/dlclose loop: each thread that calls into the
 * library after a (re)load interns its stacks afresh. */
static void dlopen_cycles(struct gen *g, uint32_t n, const char *lib)
{
	const uint64_t bias = 0x7f1000000000, lo = bias, hi = bias + 0x10000;
	tb_module(&g->b, g->seq, 0x400000, 0x400000, 0x500000, "/nonexistent/app");
	uint32_t id = 1;
	for (uint32_t i = 0; i < n; i++) {
		room(g);
		tb_module(&g->b, g->seq, bias, lo, hi, lib);
		tb_stack(&g->b, id, 0, 0x401000);
		tb_stack(&g->b, id + 1, id, bias + 0x1100 + (i % 16) * 0x10);
		tb_stack(&g->b, id + 2, id + 1, bias + 0x1200);
		tb_alloc(&g->b, HW_KIND_MALLOC, g->seq++, 0x20000000 + (uint64_t)i * 64, 40, id + 2);
		tb_free(&g->b, HW_KIND_MALLOC, g->seq++, 0x20000000 + (uint64_t)i * 64);
		tick(g);
		tb_module_unload(&g->b, g->seq, bias, lo);
		id += 3;
	}
}

static void modules(struct gen *g, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		char path[64];
		uint64_t lo = 0x7f0000000000 + (uint64_t)i * 0x100000;
		room(g);
		snprintf(path, sizeof(path), "/nonexistent/lib%u.so", i);
		tb_module(&g->b, g->seq, lo, lo, lo + 0x100000, path);
		tb_stack(&g->b, 1 + i, 0, lo + 0x1234);
		tb_alloc(&g->b, HW_KIND_MALLOC, g->seq++, 0x10000000 + (uint64_t)i * 64, 40, 1 + i);
		if (i % 64 == 0)
			tick(g);
	}
}

static void module(struct gen *g, uint64_t off, const char *path)
{
	tb_module(&g->b, 0, 0x7f0000000000, 0x7f0000000000, 0x7f0000100000, path);
	tb_stack(&g->b, 1, 0, 0x7f0000000000 + off);
	tb_alloc(&g->b, HW_KIND_MALLOC, g->seq++, 0x1000, 100, 1);
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: make_scale stacks|leaves|chain|wide|lines|mmaps|dlopen|modules|module N OUT [PATH]\n");
		return 2;
	}
	const char *kind = argv[1];
	uint32_t n = (uint32_t)strtoul(argv[2], NULL, 0);
	const char *chunk = getenv("MAKE_SCALE_CHUNK");
	if (chunk)
		CHUNK = (uint32_t)strtoul(chunk, NULL, 0);
	struct gen g = {.seq = 1, .t = 1000};
	tb_init(&g.b, CHUNK, "python3 scale.py", 16);
	thread(&g, 1);
	if (!strcmp(kind, "stacks") || !strcmp(kind, "leaves"))
		stacks(&g, n, kind[0] == 'l');
	else if (!strcmp(kind, "chain"))
		chain(&g, n);
	else if (!strcmp(kind, "wide"))
		wide(&g, n);
	else if (!strcmp(kind, "lines"))
		lines(&g, n);
	else if (!strcmp(kind, "modules"))
		modules(&g, n);
	else if (!strcmp(kind, "mmaps"))
		mmaps(&g, n);
	else if (!strcmp(kind, "dlopen") && argc > 4)
		dlopen_cycles(&g, n, argv[4]);
	else if (!strcmp(kind, "module") && argc > 4)
		module(&g, strtoull(argv[2], NULL, 16), argv[4]);
	else {
		fprintf(stderr, "make_scale: unknown kind %s\n", kind);
		return 2;
	}
	tb_trailer(&g.b, g.seq, g.t + 1000, 0, 0);
	int rc = tb_write(&g.b, argv[3]) ? 1 : 0;
	tb_free_builder(&g.b);
	return rc;
}
