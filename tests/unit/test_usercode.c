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

/* A thread's stack: its own frames, a thread-start frame, then its
 * starter's. Under BLAME_USER a thread with Python frames of its own is
 * blamed within them; one without, as its starter is. */
static void blamed_frame_of_a_thread(void **state)
{
	(void)state;
	const struct frame_info native = {.python = false, .function = "malloc"};
	const struct frame_info start = {.thread_start = true, .function = "[thread started]"};
	const struct frame_info decoder = {.python = true, .file = "/usr/lib/python3.11/json/decoder.py",
					   .line = 353};
	const struct frame_info pool = {
		.python = true, .file = "/usr/lib/python3.11/concurrent/futures/thread.py", .line = 58};
	const struct frame_info work = {.python = true, .file = "/home/u/app.py", .line = 7};
	const struct frame_info submit = {.python = true, .file = "/home/u/app.py", .line = 12};
	/* a pool's worker running library code only: its own library line, not
	 * the submit that started it */
	struct frame_info lib[] = {native, decoder, pool, start, submit};
	assert_int_equal(usercode_blame_frame(lib, 5, BLAME_USER), 1);
	assert_int_equal(usercode_blame_frame(lib, 5, BLAME_INNERMOST), 1);
	/* its own function of the user's */
	struct frame_info own[] = {native, decoder, work, pool, start, submit};
	assert_int_equal(usercode_blame_frame(own, 6, BLAME_USER), 2);
	/* a native thread (or one before its first Python frame): its starter's line */
	struct frame_info nat[] = {native, native, start, decoder, submit};
	assert_int_equal(usercode_blame_frame(nat, 5, BLAME_USER), 4);
	assert_int_equal(usercode_blame_frame(nat, 5, BLAME_INNERMOST), 3);
	/* ... whose starter is a thread with library frames only: that thread's line */
	struct frame_info nested[] = {native, start, decoder, pool, start, submit};
	assert_int_equal(usercode_blame_frame(nested, 6, BLAME_USER), 2);
	/* ... started by a native thread: the line that started that one */
	struct frame_info twice[] = {native, start, native, start, decoder, submit};
	assert_int_equal(usercode_blame_frame(twice, 6, BLAME_USER), 5);
	/* no Python frame anywhere */
	struct frame_info none[] = {native, start, native};
	assert_int_equal(usercode_blame_frame(none, 3, BLAME_USER), 3);
	assert_int_equal(usercode_blame_frame(none, 3, BLAME_INNERMOST), 3);
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

/* A trace's first chunk with the code objects of app.py's <module> and
 * main (1, 2) and json's loads and raw_decode (3, 4). */
static void app_and_json(struct tb *b)
{
	tb_init(b, HW_MIN_CHUNK_SIZE, "python3", 8);
	tb_chunk(b, 1);
	code_rec(b, 1, "app.py", "<module>");
	code_rec(b, 2, "app.py", "main");
	code_rec(b, 3, "/usr/lib/python3.11/json/__init__.py", "loads");
	code_rec(b, 4, "/usr/lib/python3.11/json/decoder.py", "raw_decode");
}

/* Writes the built trace to a file, opens and replays it (the file is gone
 * after). */
static void replay_built(struct tb *b, struct trace *t, struct analysis *a)
{
	char path[] = "/tmp/hw-usercode-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(tb_write(b, path), 0);
	tb_free_builder(b);
	assert_int_equal(trace_open(path, t), HW_OK);
	assert_int_equal(analysis_run(a, t, NULL), HW_OK);
	unlink(path);
}

static void blamed_node_of_a_replayed_stack(void **state)
{
	(void)state;
	/* app.py <module> > app.py main > json loads > decoder > native malloc;
	 * a second stack with library frames only; a native-only stack */
	struct tb b;
	app_and_json(&b);
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
	struct trace t;
	struct analysis a;
	replay_built(&b, &t, &a);
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

static void thread_node(struct tb *b, uint32_t id, uint32_t parent)
{
	uint8_t rec[40], *p = rec;
	*p++ = HW_REC_STACK;
	p = hw_put_varint(p, id);
	p = hw_put_varint(p, parent);
	*p++ = HW_FRAME_THREAD;
	p = hw_put_varint(p, 0);
	tb_raw(b, rec, (size_t)(p - rec));
}

/* The same rule on a replayed trace's stacks, and the same answers as on
 * their symbolized frames (blamed_frame_of_a_thread). */
static void blamed_node_of_a_thread(void **state)
{
	(void)state;
	struct tb b;
	app_and_json(&b);
	code_rec(&b, 6, "/usr/lib/python3.11/concurrent/futures/thread.py", "_worker");
	code_rec(&b, 7, "app.py", "work");
	py_node(&b, 1, 0, 1);
	py_node(&b, 2, 1, 2); /* the submit that starts the threads */
	/* a pool's worker running json.loads: its own library line */
	thread_node(&b, 10, 2);
	py_node(&b, 11, 10, 6);
	py_node(&b, 12, 11, 3);
	py_node(&b, 13, 12, 4);
	tb_stack(&b, 14, 13, 0x401000);
	tb_stack(&b, 15, 10, 0x401100); /* before its first Python frame */
	/* a worker running a function of the user's: that function */
	thread_node(&b, 20, 2);
	py_node(&b, 21, 20, 6);
	py_node(&b, 22, 21, 7);
	py_node(&b, 23, 22, 3);
	tb_stack(&b, 24, 23, 0x401200);
	/* a native thread: the submit's line */
	thread_node(&b, 30, 2);
	tb_stack(&b, 31, 30, 0x401300);
	/* a native thread the json worker started: the worker's line */
	thread_node(&b, 40, 13);
	tb_stack(&b, 41, 40, 0x401400);
	/* a native thread the native thread started: the submit's line */
	thread_node(&b, 50, 31);
	tb_stack(&b, 51, 50, 0x401500);
	static const uint32_t leaves[] = {14, 15, 24, 31, 41, 51};
	for (size_t i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++)
		tb_alloc(&b, HW_KIND_MALLOC, i + 1, 0x1000 * (i + 1), 100, leaves[i]);
	tb_trailer(&b, 7, 1, 6, 0);
	struct trace t;
	struct analysis a;
	replay_built(&b, &t, &a);
#define NODE(id) stack_table_canon(&a.st, id)
	assert_int_equal(usercode_blame(&a, NODE(14), BLAME_USER), NODE(13));
	assert_int_equal(usercode_blame(&a, NODE(14), BLAME_INNERMOST), NODE(13));
	assert_int_equal(usercode_blame(&a, NODE(15), BLAME_USER), NODE(2));
	assert_int_equal(usercode_blame(&a, NODE(24), BLAME_USER), NODE(22));
	assert_int_equal(usercode_blame(&a, NODE(24), BLAME_INNERMOST), NODE(23));
	assert_int_equal(usercode_blame(&a, NODE(31), BLAME_USER), NODE(2));
	assert_int_equal(usercode_blame(&a, NODE(41), BLAME_USER), NODE(13));
	assert_int_equal(usercode_blame(&a, NODE(51), BLAME_USER), NODE(2));
	assert_int_equal(usercode_blame(&a, NODE(51), BLAME_INNERMOST), NODE(2));
#undef NODE
	analysis_free(&a);
	trace_close(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(library_files),
		cmocka_unit_test(blamed_frame),
		cmocka_unit_test(blamed_node_of_a_replayed_stack),
		cmocka_unit_test(blamed_frame_of_a_thread),
		cmocka_unit_test(blamed_node_of_a_thread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
