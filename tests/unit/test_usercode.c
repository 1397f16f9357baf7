/* analyzer/usercode.c: which files are library code, and which frame of a
 * stack is blamed (the innermost in the user's code, else the innermost
 * Python frame), on symbolized frames and on a replayed trace's stacks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "heapwise/varint.h"

#include "analysis.h"
#include "symbolize.h"
#include "trace_builder.h"
#include "usercode.h"

static void library_files(void **state)
{
	(void)state;
	static const char *const library[] = {
		"/usr/lib/python3.11/json/decoder.py",
		"/usr/lib/python3/dist-packages/numpy/core/numeric.py",
		"/usr/local/lib/python3.11/dist-packages/requests/api.py",
		"/root/.pyenv/versions/3.11.7/lib/python3.11/json/__init__.py",
		"/home/u/proj/.venv/lib/python3.12/site-packages/pandas/core/frame.py",
		"/home/u/.local/lib/python3.13t/site-packages/x.py",
		"/opt/conda/lib64/python3.10/threading.py",
		"/usr/lib/python311.zip/json/decoder.py",
		"/home/u/proj/__pypackages__/3.11/lib/attr/__init__.py",
		"site-packages/six.py",
		"<frozen importlib._bootstrap>",
		"<frozen runpy>",
		"<string>",
		"",
		NULL,
	};
	static const char *const user[] = {
		"app.py",
		"/home/u/proj/app.py",
		"/home/u/proj/src/pkg/mod.py",
		"/home/u/lib/python/app.py", /* "python" without a version */
		"/home/u/python3.11/app.py", /* not under lib/ */
		"/srv/lib/python3.x/app.py", /* not a version */
		"/srv/lib/python3.11-old/app.py",
		"/home/u/site-packages.py", /* the file's own name */
		"/home/u/proj/tests/test_site-packages/t.py",
		"<stdin",
	};
	for (size_t i = 0; i < sizeof(library) / sizeof(library[0]); i++) {
		if (!usercode_is_library(library[i]))
			fail_msg("%s taken for the user's code", library[i] ? library[i] : "NULL");
	}
	for (size_t i = 0; i < sizeof(user) / sizeof(user[0]); i++) {
		if (usercode_is_library(user[i]))
			fail_msg("%s taken for library code", user[i]);
	}
}

static void blamed_frame(void **state)
{
	(void)state;
	struct frame_info f[5] = {
		{.python = false, .function = "malloc"},
		{.python = true, .file = "/usr/lib/python3.11/json/decoder.py", .line = 353},
		{.python = true, .file = "/usr/lib/python3.11/json/__init__.py", .line = 346},
		{.python = true, .file = "/home/u/app.py", .line = 12},
		{.python = true, .file = "/home/u/app.py", .line = 30},
	};
	assert_int_equal(usercode_blame_frame(f, 5, BLAME_USER), 3);
	assert_int_equal(usercode_blame_frame(f, 5, BLAME_INNERMOST), 1);
	/* no frame of the user's: the innermost Python frame */
	assert_int_equal(usercode_blame_frame(f, 3, BLAME_USER), 1);
	/* no Python frame at all */
	assert_int_equal(usercode_blame_frame(f, 1, BLAME_USER), 1);
	assert_int_equal(usercode_blame_frame(f, 0, BLAME_USER), 0);
}

/* A CODE record with a one-entry line table (8 code units on first_line). */
static void code_rec(struct tb *b, uint32_t id, const char *file, const char *func)
{
	uint8_t rec[512], *p = rec;
	*p++ = HW_REC_CODE;
	p = hw_put_varint(p, id);
	p = hw_put_varint(p, 1);
	p = hw_put_varint(p, strlen(file));
	memcpy(p, file, strlen(file));
	p += strlen(file);
	p = hw_put_varint(p, strlen(func));
	memcpy(p, func, strlen(func));
	p += strlen(func);
	*p++ = 2;
	*p++ = 0x80 | (13 << 3) | 7;
	*p++ = 0;
	tb_raw(b, rec, (size_t)(p - rec));
}

static void py_node(struct tb *b, uint32_t id, uint32_t parent, uint32_t code)
{
	uint8_t rec[40], *p = rec;
	*p++ = HW_REC_STACK;
	p = hw_put_varint(p, id);
	p = hw_put_varint(p, parent);
	*p++ = HW_FRAME_PYTHON;
	p = hw_put_varint(p, (uint64_t)code << 32 | 1);
	tb_raw(b, rec, (size_t)(p - rec));
}

static void blamed_node_of_a_replayed_stack(void **state)
{
	(void)state;
	/* app.py <module> > app.py main > json loads > decoder > native malloc;
	 * a second stack with library frames only; a native-only stack */
	struct tb b;
	tb_init(&b, HW_MIN_CHUNK_SIZE, "python3", 8);
	tb_chunk(&b, 1);
	code_rec(&b, 1, "app.py", "<module>");
	code_rec(&b, 2, "app.py", "main");
	code_rec(&b, 3, "/usr/lib/python3.11/json/__init__.py", "loads");
	code_rec(&b, 4, "/usr/lib/python3.11/json/decoder.py", "raw_decode");
	code_rec(&b, 5, "<frozen importlib._bootstrap>", "_load");
	py_node(&b, 1, 0, 1);
	py_node(&b, 2, 1, 2);
	py_node(&b, 3, 2, 3);
	py_node(&b, 4, 3, 4);
	tb_stack(&b, 5, 4, 0x401000);
	py_node(&b, 6, 0, 5);
	py_node(&b, 7, 6, 3);
	tb_stack(&b, 8, 0, 0x402000);
	tb_alloc(&b, HW_KIND_MALLOC, 1, 0x1000, 100, 5);
	tb_alloc(&b, HW_KIND_MALLOC, 2, 0x2000, 100, 7);
	tb_alloc(&b, HW_KIND_MALLOC, 3, 0x3000, 100, 8);
	tb_trailer(&b, 4, 1, 3, 0);
	char path[] = "/tmp/hw-usercode-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(tb_write(&b, path), 0);
	tb_free_builder(&b);
	struct trace t;
	struct analysis a;
	assert_int_equal(trace_open(path, &t), HW_OK);
	assert_int_equal(analysis_run(&a, &t, NULL), HW_OK);
	unlink(path);
	uint32_t leaf = stack_table_canon(&a.st, 5), main_node = stack_table_canon(&a.st, 2);
	uint32_t decoder = stack_table_canon(&a.st, 4);
	assert_int_equal(usercode_blame(&a, leaf, BLAME_USER), main_node);
	assert_int_equal(usercode_blame(&a, leaf, BLAME_INNERMOST), decoder);
	uint32_t lib = stack_table_canon(&a.st, 7);
	assert_int_equal(usercode_blame(&a, lib, BLAME_USER), lib);
	assert_int_equal(usercode_blame(&a, lib, BLAME_INNERMOST), lib);
	uint32_t native = stack_table_canon(&a.st, 8);
	assert_int_equal(usercode_blame(&a, native, BLAME_USER), HW_NO_NODE);
	assert_int_equal(usercode_blame(&a, HW_NO_NODE, BLAME_USER), HW_NO_NODE);
	analysis_free(&a);
	trace_close(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(library_files),
		cmocka_unit_test(blamed_frame),
		cmocka_unit_test(blamed_node_of_a_replayed_stack),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
