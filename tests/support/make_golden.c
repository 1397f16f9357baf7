/* Writes the committed golden traces (tests/golden/basic.hwt, cut.hwt, ...). Run it when
 * the format or the scenarios change: make_golden OUTDIR. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heapwise/varint.h"

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

/* Python frames whose file and function names are markup (escaping). */
static void hostile(struct tb *b)
{
	tb_init(b, HW_MIN_CHUNK_SIZE, "python3 x.py", 12);
	tb_chunk(b, 9);
	tb_time(b, 1000);
	const char *file = "<script>alert(1)</script>.py";
	const char *func = "f\";</svg><img src=x onerror=alert(2)>";
	/* a CODE record: id 1, first line 1, a one-entry line table (line 1) */
	uint8_t rec[512], *p = rec;
	*p++ = HW_REC_CODE;
	*p++ = 1;
	*p++ = 1;
	*p++ = (uint8_t)strlen(file);
	memcpy(p, file, strlen(file));
	p += strlen(file);
	*p++ = (uint8_t)strlen(func);
	memcpy(p, func, strlen(func));
	p += strlen(func);
	*p++ = 2;
	*p++ = 0x80 | (13 << 3) | 7; /* 8 units, line delta follows */
	*p++ = 0; /* delta 0 */
	tb_raw(b, rec, (size_t)(p - rec));
	/* a Python stack node: code 1, instruction 2 (+1) */
	uint8_t node[16], *q = node;
	*q++ = HW_REC_STACK;
	*q++ = 1;
	*q++ = 0;
	*q++ = HW_FRAME_PYTHON;
	q = hw_put_varint(q, (uint64_t)1 << 32 | 3);
	tb_raw(b, node, (size_t)(q - node));
	tb_alloc(b, HW_KIND_PYOBJ, 1, 0x1000, 4096, 1);
	tb_trailer(b, 2, 2000, 1, 0);
}

/* A CODE record: every instruction on first_line (a one-entry line table). */
static void code(struct tb *b, uint64_t id, const char *file, const char *func, uint64_t first_line)
{
	uint8_t rec[1024], *p = rec;
	size_t fl = strlen(file), nl = strlen(func);
	*p++ = HW_REC_CODE;
	p = hw_put_varint(p, id);
	p = hw_put_varint(p, first_line);
	p = hw_put_varint(p, fl);
	memcpy(p, file, fl);
	p += fl;
	p = hw_put_varint(p, nl);
	memcpy(p, func, nl);
	p += nl;
	*p++ = 2;
	*p++ = 0x80 | (13 << 3) | 7; /* 8 units, line delta follows */
	*p++ = 0; /* delta 0 */
	tb_raw(b, rec, (size_t)(p - rec));
}

/* A Python stack node: code object, instruction (recorded + 1). */
static void pystack(struct tb *b, uint64_t id, uint64_t parent, uint64_t code_id, uint64_t instr)
{
	uint8_t node[40], *q = node;
	*q++ = HW_REC_STACK;
	q = hw_put_varint(q, id);
	q = hw_put_varint(q, parent);
	*q++ = HW_FRAME_PYTHON;
	q = hw_put_varint(q, code_id << 32 | (instr + 1));
	tb_raw(b, node, (size_t)(q - node));
}

/* Names a terminal, a parser or a spreadsheet must not take at face value:
 * escape sequences (retitle, clear), a newline that fakes a row, a bidi
 * override, bytes that are not UTF-8 (a script under a Latin-1 path, the
 * surrogateescape form CPython writes for one), formula prefixes, C1 and
 * DEL, in file and function names, the command line, a module path and
 * marker labels. */
static void names(struct tb *b)
{
	static const char cmd[] = "python3\0/tmp/\xff\xfe/evil\x1b]0;pwned\x07.py\0--x=\x1b[2J";
	tb_init(b, HW_MIN_CHUNK_SIZE, cmd, sizeof(cmd));
	tb_chunk(b, 5);
	tb_time(b, 1000000);
	tb_module(b, 0, 0x400000, 0x400000, 0x500000, "/nonexistent/\x1b]2;x\x07lib\xff\xc3.so");
	code(b, 1, "/tmp/\xed\xb3\xbf/caf\xe9\x1b[31m.py", "f\n  1  999 MiB  fake\xe2\x80\xae", 3);
	code(b, 2, "=cmd|' /C calc'!A0.py", "-g\xc2\x9b\x7f", 7);
	pystack(b, 1, 0, 1, 2);
	pystack(b, 2, 1, 2, 2);
	tb_stack(b, 3, 0, 0x401000);
	tb_mark(b, 1, HW_MARK_USER, "start\x1b[2J");
	tb_alloc(b, HW_KIND_PYOBJ, 2, 0x1000, 4096, 1);
	tb_alloc(b, HW_KIND_MALLOC, 3, 0x100000, 1 << 20, 2);
	tb_time(b, 5000000);
	tb_alloc(b, HW_KIND_MALLOC, 4, 0x300000, 3000, 3);
	tb_mark(b, 5, HW_MARK_USER, "end\xff");
	tb_free(b, HW_KIND_MALLOC, 6, 0x100000);
	tb_time(b, 9000000);
	tb_trailer(b, 7, 9000000, 3, 1);
}

/* Two runs of one program for diff: a line that allocates at two
 * instructions (two stacks whose frames print the same), the second
 * growing from 16 bytes to 8 MiB; a callsite that shrinks; one only in the
 * base run, one only in the new run. */
static void grow(struct tb *b, bool grown)
{
	tb_init(b, HW_MIN_CHUNK_SIZE, "python3\0grow.py", 16);
	tb_chunk(b, 3);
	tb_time(b, 1000000);
	code(b, 1, "grow.py", "<module>", 1);
	code(b, 2, "grow.py", "shrink", 9);
	code(b, 3, "grow.py", "gone", 12);
	code(b, 4, "grow.py", "fresh", 15);
	pystack(b, 1, 0, 1, 2); /* grow.py:1, first call */
	pystack(b, 2, 0, 1, 4); /* grow.py:1, second call */
	pystack(b, 3, 1, 2, 2);
	pystack(b, 4, 1, grown ? 4 : 3, 2);
	tb_alloc(b, HW_KIND_MALLOC, 1, 0x100000, 8 << 20, 1);
	tb_alloc(b, HW_KIND_MALLOC, 2, 0x1000000, grown ? 8 << 20 : 16, 2);
	tb_alloc(b, HW_KIND_MALLOC, 3, 0x2000000, grown ? 1000 : 5000, 3);
	tb_alloc(b, HW_KIND_MALLOC, 4, 0x3000000, grown ? 700 : 300, 4);
	tb_time(b, 2000000);
	tb_trailer(b, 5, 2000000, 4, 0);
}

/* One line whose bytes are of several kinds (a NumPy array: a small object,
 * then its data from malloc), a line of objects only, and a malloc total
 * far below the heap's peak. */
static void kinds(struct tb *b)
{
	tb_init(b, HW_MIN_CHUNK_SIZE, "python3\0arrays.py", 18);
	tb_chunk(b, 2);
	tb_time(b, 1000000);
	code(b, 1, "arrays.py", "<module>", 1);
	code(b, 2, "arrays.py", "make_array", 4);
	code(b, 3, "arrays.py", "make_strings", 8);
	pystack(b, 1, 0, 1, 2);
	pystack(b, 2, 1, 2, 2);
	pystack(b, 3, 1, 3, 2);
	tb_alloc(b, HW_KIND_PYOBJ, 1, 0x1000, 112, 2);
	tb_alloc(b, HW_KIND_MALLOC, 2, 0x100000, 1 << 20, 2);
	tb_alloc(b, HW_KIND_PYMEM, 3, 0x2000, 64, 2);
	tb_alloc(b, HW_KIND_PYOBJ, 4, 0x1000000, 16 << 20, 3);
	tb_time(b, 2000000);
	tb_free(b, HW_KIND_PYOBJ, 5, 0x1000000);
	tb_trailer(b, 6, 3000000, 4, 1);
}

/* A process tree: a parent (pid 100), a fork child (101) that exec'd a
 * new image (101 again, started later), each leaking a known amount. */
static void family(struct tb *b, int which)
{
	static const char *const cmds[] = {"./family", "./family", "./family\0child-exec"};
	static const size_t lens[] = {9, 9, 20};
	static const uint64_t pids[] = {100, 101, 101}, starts[] = {0, 5000000, 8000000};
	tb_init(b, HW_MIN_CHUNK_SIZE, cmds[which], lens[which]);
	tb_process(b, pids[which], which ? 100 : 1, starts[which]);
	tb_chunk(b, (uint32_t)pids[which]);
	tb_time(b, 1000000);
	tb_module(b, 0, 0x400000, 0x400000, 0x500000, "/nonexistent/family");
	tb_stack(b, 1, 0, 0x401000);
	tb_stack(b, 2, 1, 0x402000 + 0x100 * (uint64_t)which);
	tb_alloc(b, HW_KIND_MALLOC, 1, 0x10000, 2000u + 1000u * (uint64_t)which, 2);
	tb_alloc(b, HW_KIND_MALLOC, 2, 0x20000, 1 << 20, 1);
	tb_time(b, 3000000);
	tb_free(b, HW_KIND_MALLOC, 3, 0x20000);
	tb_trailer(b, 4, 4000000, 2, 1);
}

/* A Python line called from native code in a library that cannot be read:
 * a report that shows only the line says nothing of the library. */
static void hidden(struct tb *b)
{
	tb_init(b, HW_MIN_CHUNK_SIZE, "python3\0app.py", 15);
	tb_chunk(b, 2);
	tb_time(b, 1000000);
	tb_module(b, 0, 0x400000, 0x400000, 0x500000, "/nonexistent/libhidden.so");
	code(b, 1, "app.py", "work", 5);
	tb_stack(b, 1, 0, 0x401000);
	tb_stack(b, 2, 1, 0x402000);
	pystack(b, 3, 2, 1, 2);
	tb_alloc(b, HW_KIND_MALLOC, 1, 0x10000, 5000, 3);
	tb_time(b, 2000000);
	tb_trailer(b, 2, 2000000, 1, 0);
}

/* A location table entry: `units` code units at `line` (relative to the
 * entry before, the first to first_line), columns [col, end_col) (col -1:
 * none). */
struct loc {
	int units, line_delta, col, end_col;
};

/* A CODE record with a CPython 3.11 location table of long-form entries
 * (code 14: line delta, end line delta, column + 1, end column + 1), or
 * line-only entries (code 13) where col is -1. */
static void code_locs(struct tb *b, uint64_t id, const char *file, const char *func,
		      uint64_t first_line, const struct loc *locs, size_t n)
{
	uint8_t rec[2048], *p = rec, table[512], *t = table;
	for (size_t i = 0; i < n; i++) {
		int d = locs[i].line_delta;
		unsigned sv = d < 0 ? ((unsigned)-d << 1) | 1 : (unsigned)d << 1;
		*t++ = (uint8_t)(0x80 | ((locs[i].col < 0 ? 13 : 14) << 3) | (locs[i].units - 1));
		do { /* 6-bit varints, bit 6 = more */
			*t++ = (uint8_t)((sv & 63) | (sv > 63 ? 64 : 0));
			sv >>= 6;
		} while (sv);
		if (locs[i].col >= 0) {
			*t++ = 0; /* end line: the same */
			*t++ = (uint8_t)(locs[i].col + 1);
			*t++ = (uint8_t)(locs[i].end_col + 1);
		}
	}
	size_t fl = strlen(file), nl = strlen(func);
	*p++ = HW_REC_CODE;
	p = hw_put_varint(p, id);
	p = hw_put_varint(p, first_line);
	p = hw_put_varint(p, fl);
	memcpy(p, file, fl);
	p += fl;
	p = hw_put_varint(p, nl);
	memcpy(p, func, nl);
	p += nl;
	p = hw_put_varint(p, (uint64_t)(t - table));
	memcpy(p, table, (size_t)(t - table));
	p += t - table;
	tb_raw(b, rec, (size_t)(p - rec));
}

/* The user's lines (shop.py, committed beside the traces for `lines`) with
 * what libraries allocated under them: json's decoder, NumPy's ones in a
 * virtual environment, the import machinery; a line with two expressions
 * (two columns: two rows) and two instructions of one expression (one
 * row); a stack with no frame of the user's. The start time is past any
 * checkout's mtime, so shop.py is not taken as changed since the trace. */
static void attr(struct tb *b)
{
	static const char cmd[] = "python3\0shop.py";
	tb_init(b, HW_MIN_CHUNK_SIZE, cmd, sizeof(cmd));
	tb_process(b, 4242, 1, 2400000000000000000ull);
	tb_chunk(b, 9);
	tb_time(b, 1000000);
	static const struct loc module[] = {{2, 19, 9, 19}, {2, 1, 14, 22}, {2, 1, 0, 9}, {2, 1, 0, 10}};
	static const struct loc load[] = {{2, 2, 11, 27}};
	static const struct loc build[] = {{2, 2, 11, 32}, {2, 1, 18, 34}, {2, 0, 17, 39}, {2, 0, 17, 39}};
	static const struct loc decoder[] = {{8, 10, -1, -1}};
	static const struct loc ones[] = {{8, 69, 4, 40}};
	static const struct loc frozen[] = {{8, 8, -1, -1}};
	code_locs(b, 1, "shop.py", "<module>", 1, module, 4);
	code_locs(b, 2, "shop.py", "load", 5, load, 1);
	code_locs(b, 3, "shop.py", "build", 10, build, 4);
	code_locs(b, 4, "/usr/lib/python3.11/json/decoder.py", "JSONDecoder.raw_decode", 343,
		  decoder, 1);
	code_locs(b, 5, "/srv/venv/lib/python3.11/site-packages/numpy/core/numeric.py", "ones", 136,
		  ones, 1);
	code_locs(b, 6, "<frozen importlib._bootstrap>", "_call_with_frames_removed", 233, frozen, 1);
	pystack(b, 1, 0, 1, 0); /* shop.py:20 */
	pystack(b, 2, 1, 2, 0); /* load, shop.py:7 */
	pystack(b, 3, 2, 4, 0); /* json/decoder.py:353 */
	pystack(b, 4, 0, 1, 2); /* shop.py:21 */
	pystack(b, 5, 4, 3, 0); /* build, shop.py:12 */
	pystack(b, 6, 5, 5, 0); /* numeric.py:205 */
	pystack(b, 7, 4, 3, 2); /* shop.py:13:19, the % */
	pystack(b, 8, 4, 3, 4); /* shop.py:13:18, the * */
	pystack(b, 9, 4, 3, 6); /* the * again: another instruction, the same position */
	pystack(b, 10, 0, 1, 6); /* shop.py:23, an import */
	pystack(b, 11, 10, 6, 0);
	pystack(b, 12, 0, 6, 3); /* the import machinery alone */
	tb_alloc(b, HW_KIND_PYOBJ, 1, 0x10000, 3 << 20, 3);
	tb_alloc(b, HW_KIND_PYMEM, 2, 0x400000, 4000, 3);
	tb_alloc(b, HW_KIND_MALLOC, 3, 0x1000000, 8000000, 6);
	tb_alloc(b, HW_KIND_PYOBJ, 4, 0x2000000, 112, 6);
	tb_alloc(b, HW_KIND_PYOBJ, 5, 0x3000000, 100000, 7);
	tb_alloc(b, HW_KIND_PYOBJ, 6, 0x4000000, 800000, 8);
	tb_alloc(b, HW_KIND_PYOBJ, 7, 0x5000000, 80000, 9);
	tb_alloc(b, HW_KIND_PYOBJ, 8, 0x6000000, 50000, 11);
	tb_alloc(b, HW_KIND_PYOBJ, 9, 0x7000000, 20000, 12);
	tb_time(b, 2000000);
	tb_free(b, HW_KIND_PYOBJ, 10, 0x3000000);
	tb_free(b, HW_KIND_PYOBJ, 11, 0x7000000);
	tb_time(b, 3000000);
	tb_trailer(b, 12, 3000000, 9, 2);
}

/* A user mark and Python's finalization in the timeline's last bucket: the
 * finalization at the trailer's time, a time whose six-decimal rounding puts
 * it past the rounded bucket times (250091724 ns: 0.250092 against 0.250091),
 * where the HTML timeline once dropped it. */
static void endmark(struct tb *b)
{
	tb_init(b, HW_MIN_CHUNK_SIZE, "python3 end.py", 14);
	tb_chunk(b, 5);
	tb_time(b, 1000000);
	tb_module(b, 0, 0x400000, 0x400000, 0x500000, "/nonexistent/python3");
	tb_stack(b, 1, 0, 0x401000);
	tb_mark(b, 1, HW_MARK_USER, "begin");
	tb_alloc(b, HW_KIND_MALLOC, 2, 0x1000, 100000, 1);
	tb_time(b, 200000000);
	tb_alloc(b, HW_KIND_MALLOC, 3, 0x2000, 50000, 1);
	tb_time(b, 250091724);
	tb_mark(b, 4, HW_MARK_PY_FINALIZE, "python-finalize");
	tb_free(b, HW_KIND_MALLOC, 5, 0x2000);
	tb_trailer(b, 6, 250091724, 2, 1);
}

/* A process that exec'd: an exec that failed (EXEC, then EXEC_FAILED: the
 * process went on), then one that did not come back. What is live at the
 * second is not leaked (the kernel frees the image). */
static void execd(struct tb *b)
{
	static const char cmd[] = "./launcher\0--run";
	tb_init(b, HW_MIN_CHUNK_SIZE, cmd, sizeof(cmd));
	tb_chunk(b, 3);
	tb_time(b, 1000000);
	tb_module(b, 0, 0x400000, 0x400000, 0x500000, "/nonexistent/launcher");
	tb_stack(b, 1, 0, 0x401000);
	tb_stack(b, 2, 1, 0x402000);
	tb_stack(b, 3, 1, 0x403000);
	tb_alloc(b, HW_KIND_MALLOC, 1, 0x1000, 3000, 2);
	tb_alloc(b, HW_KIND_MALLOC, 2, 0x100000, 1 << 20, 3);
	tb_time(b, 200000000);
	tb_mark(b, 3, HW_MARK_EXEC, "/nonexistent/tool");
	tb_mark(b, 4, HW_MARK_EXEC_FAILED, "/nonexistent/tool");
	tb_free(b, HW_KIND_MALLOC, 5, 0x100000);
	tb_alloc(b, HW_KIND_MALLOC, 6, 0x2000, 500, 3);
	tb_time(b, 400000000);
	tb_mark(b, 7, HW_MARK_EXEC, "/usr/bin/tool");
}

/* An exec under way on one thread when another ended the process: its EXEC
 * has no EXEC_FAILED, and the trailer after it says the process exited, so
 * it did not exec: what is live at the end leaked. */
static void exec_exit(struct tb *b)
{
	static const char cmd[] = "./retrier";
	tb_init(b, HW_MIN_CHUNK_SIZE, cmd, sizeof(cmd));
	tb_chunk(b, 3);
	tb_time(b, 1000000);
	tb_module(b, 0, 0x400000, 0x400000, 0x500000, "/nonexistent/retrier");
	tb_stack(b, 1, 0, 0x401000);
	tb_stack(b, 2, 1, 0x402000);
	tb_alloc(b, HW_KIND_MALLOC, 1, 0x100000, 1 << 20, 2);
	tb_time(b, 200000000);
	tb_mark(b, 2, HW_MARK_EXEC, "/nonexistent/x");
	tb_trailer(b, 3, 300000000, 1, 0);
}

/* A trace sampled every 4 KiB on average (issue 17): callsites of many
 * small blocks, of blocks of the interval's size, one block too large to be
 * weighed (it counts as itself) and one small block (one sample: marked
 * unreliable); the reports give each estimate its 95% interval. */
static void sampled(struct tb *b)
{
	tb_init(b, HW_MIN_CHUNK_SIZE, "./sampled-app", 13);
	tb_chunk(b, 1);
	tb_time(b, 1000000);
	uint8_t rec[] = {HW_REC_SAMPLE, 1, 0x80, 0x20}; /* seq 1, interval 4096 */
	tb_raw(b, rec, sizeof(rec));
	tb_module(b, 2, 0x400000, 0x400000, 0x500000, "/nonexistent/sampled-app");
	tb_stack(b, 1, 0, 0x401000);
	tb_stack(b, 2, 0, 0x402000);
	tb_stack(b, 3, 0, 0x403000);
	tb_stack(b, 4, 0, 0x404000);
	uint64_t seq = 3;
	for (int i = 0; i < 20; i++) /* p = 0.118: each stands for 4.3 KiB */
		tb_alloc(b, HW_KIND_MALLOC, seq++, 0x100000 + (uint64_t)i * 0x1000, 512, 1);
	for (int i = 0; i < 6; i++) /* p = 0.632 */
		tb_alloc(b, HW_KIND_MALLOC, seq++, 0x200000 + (uint64_t)i * 0x2000, 4096, 2);
	tb_alloc(b, HW_KIND_MALLOC, seq++, 0x300000, 300000, 3); /* counts as itself */
	tb_alloc(b, HW_KIND_MALLOC, seq++, 0x700000, 100, 4); /* one sample */
	tb_time(b, 2000000);
	for (int i = 0; i < 10; i++) /* after the peak */
		tb_free(b, HW_KIND_MALLOC, seq++, 0x100000 + (uint64_t)i * 0x1000);
	tb_free(b, HW_KIND_MALLOC, seq++, 0x300000);
	tb_trailer(b, seq, 2000000, 28, 11);
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
	hostile(&b);
	if (tb_write(&b, "hostile.hwt"))
		return 1;
	tb_free_builder(&b);
	names(&b);
	if (tb_write(&b, "names.hwt"))
		return 1;
	tb_free_builder(&b);
	kinds(&b);
	if (tb_write(&b, "kinds.hwt"))
		return 1;
	tb_free_builder(&b);
	static const char *const family_names[] = {"family-parent.hwt", "family-child.hwt",
						   "family-exec.hwt"};
	for (int i = 0; i < 3; i++) {
		family(&b, i);
		if (tb_write(&b, family_names[i]))
			return 1;
		tb_free_builder(&b);
	}
	hidden(&b);
	if (tb_write(&b, "hidden.hwt"))
		return 1;
	tb_free_builder(&b);
	grow(&b, false);
	if (tb_write(&b, "grow-base.hwt"))
		return 1;
	tb_free_builder(&b);
	grow(&b, true);
	if (tb_write(&b, "grow-new.hwt"))
		return 1;
	tb_free_builder(&b);
	attr(&b);
	if (tb_write(&b, "attr.hwt"))
		return 1;
	tb_free_builder(&b);
	endmark(&b);
	if (tb_write(&b, "endmark.hwt"))
		return 1;
	tb_free_builder(&b);
	sampled(&b);
	if (tb_write(&b, "sampled.hwt"))
		return 1;
	tb_free_builder(&b);
	execd(&b);
	if (tb_write(&b, "execd.hwt"))
		return 1;
	tb_free_builder(&b);
	exec_exit(&b);
	if (tb_write(&b, "exec-exit.hwt"))
		return 1;
	tb_free_builder(&b);
	return 0;
}
