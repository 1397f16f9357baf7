/* analyzer/util.c: sizes are parsed and printed as the command line promises;
 * JSON strings are escaped so no input can break the document. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "util.h"

static void parse_sizes(void **state)
{
	(void)state;
	uint64_t v;
	assert_true(parse_size("123", &v));
	assert_int_equal(v, 123);
	assert_true(parse_size("10K", &v));
	assert_int_equal(v, 10240);
	assert_true(parse_size("10KiB", &v));
	assert_int_equal(v, 10240);
	assert_true(parse_size("5MB", &v));
	assert_int_equal(v, 5 * 1024 * 1024);
	assert_true(parse_size("1.5G", &v));
	assert_int_equal(v, 1610612736ull);
	assert_false(parse_size("", &v));
	assert_false(parse_size("-1", &v));
	assert_false(parse_size("10X", &v));
	assert_false(parse_size("10KB2", &v));
	assert_false(parse_size("abc", &v));
	assert_false(parse_size("99999999999P", &v));
}

static void format_sizes(void **state)
{
	(void)state;
	char b[32];
	assert_string_equal(fmt_size(b, 0), "0 B");
	assert_string_equal(fmt_size(b, 1023), "1023 B");
	assert_string_equal(fmt_size(b, 1024), "1.0 KiB");
	assert_string_equal(fmt_size(b, 5u << 20), "5.0 MiB");
}

static void json_escape(void **state)
{
	(void)state;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	json_str(f, "a\"b\\c\n<script>\x01");
	fputc(' ', f);
	json_str(f, NULL);
	fclose(f);
	assert_string_equal(out, "\"a\\\"b\\\\c\\n\\u003cscript\\u003e\\u0001\" null");
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse_sizes),
		cmocka_unit_test(format_sizes),
		cmocka_unit_test(json_escape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
