/* analyzer/pycode.c: the offline line-table decoder gives the line CPython's
 * own PyCode_Addr2Line gives, for every instruction of ~200 code objects
 * (fixture recorded from the interpreter by tests/support/
 * gen_linetable_fixture.py); damaged tables never read out of bounds; equal
 * code objects written by different threads are merged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pycode.h"

static const char *fixture;

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;
	while (s[0] && s[1] && s[0] != '\n' && n < cap) {
		unsigned v;
		sscanf(s, "%2x", &v);
		out[n++] = (uint8_t)v;
		s += 2;
	}
	return n;
}

static void matches_the_interpreter(void **state)
{
	(void)state;
	FILE *f = fopen(fixture, "r");
	assert_non_null(f);
	static char line[1 << 20];
	static uint8_t table[1 << 19];
	size_t len = 0, codes = 0, checks = 0, mismatches = 0;
	int first = 0;
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == 'C') {
			char *sp = strchr(line + 2, ' ');
			first = atoi(line + 2);
			len = sp ? unhex(sp + 1, table, sizeof(table)) : 0;
			codes++;
		} else if (line[0] == 'L') {
			int lasti, want;
			assert_int_equal(sscanf(line, "L %d %d", &lasti, &want), 2);
			int got = pycode_addr2line(table, len, first, lasti);
			if (got != want && mismatches++ < 5)
				fprintf(stderr, "code %zu instr %d: got %d, CPython says %d\n", codes, lasti,
					got, want);
			checks++;
		}
	}
	fclose(f);
	assert_true(codes > 150);
	assert_true(checks > 20000);
	assert_int_equal(mismatches, 0);
}

static void damaged_tables(void **state)
{
	(void)state;
	/* a long-form entry cut in its varints; a byte without the entry bit */
	const uint8_t cut[] = {0xf0 | 0x00, 0x43};
	assert_int_equal(pycode_addr2line(cut, sizeof(cut), 10, 0), -1);
	const uint8_t not_entry[] = {0x12, 0x34};
	assert_int_equal(pycode_addr2line(not_entry, sizeof(not_entry), 10, 0), -1);
	uint8_t endless[64];
	memset(endless, 0xff, sizeof(endless)); /* all "no location" */
	assert_int_equal(pycode_addr2line(endless, sizeof(endless), 10, 3), -1);
	assert_int_equal(pycode_addr2line(NULL, 0, 10, 0), -1);
	assert_int_equal(pycode_addr2line(NULL, 0, 10, -1), 10);
	const uint8_t varint_overflow[] = {0xf0, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f};
	assert_int_equal(pycode_addr2line(varint_overflow, sizeof(varint_overflow), 1, 0), -1);
}

static void dedup_by_content(void **state)
{
	(void)state;
	struct pycode_table t;
	pycode_table_init(&t);
	const uint8_t tab[] = {0x80, 0x00};
	pycode_add(&t, 7, 3, "a.py", 4, "f", 1, tab, 2);
	pycode_add(&t, 9, 3, "a.py", 4, "f", 1, tab, 2); /* another thread, same code */
	pycode_add(&t, 11, 3, "a.py", 4, "g", 1, tab, 2);
	pycode_add(&t, 7, 99, "evil.py", 7, "x", 1, tab, 2); /* redefinition ignored */
	pycode_dedup(&t);
	const struct pycode *a = pycode_find(&t, 7), *b = pycode_find(&t, 9), *c = pycode_find(&t, 11);
	assert_non_null(a);
	assert_int_equal(a->first_line, 3);
	assert_int_equal(a->canon, b->canon);
	assert_int_not_equal(a->canon, c->canon);
	assert_null(pycode_find(&t, 8));
	pycode_table_free(&t);
}

int main(int argc, char **argv)
{
	fixture = argc > 1 ? argv[1] : "linetable-3.11.txt";
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(matches_the_interpreter),
		cmocka_unit_test(damaged_tables),
		cmocka_unit_test(dedup_by_content),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
