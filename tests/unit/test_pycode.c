/* analyzer/pycode.c: the offline line-table decoder gives the line CPython's
 * own PyCode_Addr2Line gives, for every instruction of ~200 code objects
 * (fixture recorded from the interpreter by tests/support/
 * gen_pycode_fixture.py); damaged tables never read out of bounds; equal
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

static const char *fixture, *positions;

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

/* Every code unit's position is co_positions()'s, and every instruction
 * moved by pycode_first_positions lands on the first unit with the same
 * line and starting column. */
static void positions_match_the_interpreter(void **state)
{
	(void)state;
	FILE *f = fopen(positions, "r");
	assert_non_null(f);
	static char line[1 << 20];
	static uint8_t table[1 << 19];
	enum { MAXU = 1 << 16 };
	static struct pycode_pos want[MAXU];
	size_t len = 0, codes = 0, checks = 0, mismatches = 0, moved = 0;
	int first = 0, units = 0;
	bool more = true;
	while (more) {
		more = fgets(line, sizeof(line), f) != NULL;
		if (!more || line[0] == 'C') {
			if (codes) { /* the code before: first positions */
				struct pycode_table t;
				pycode_table_init(&t);
				pycode_add(&t, 1, first, "x.py", 4, "f", 1, table, len);
				struct pycode_frame *fr = calloc((size_t)units + 1, sizeof(*fr));
				for (int i = 0; i < units; i++)
					fr[i] = (struct pycode_frame){0, units - 1 - i, (uint32_t)i};
				pycode_first_positions(&t, fr, (size_t)units);
				/* the cached lookups: the uncached ones' answers, for
				 * every unit, in an order that is not the table's */
				struct pycode_cache cache = {0};
				for (int i = units + 1; i-- > -1;) {
					int line, want_line = pycode_addr2line(table, len, first, i);
					struct pycode_pos pos, want_pos;
					bool found = pycode_cached_pos(&cache, &t, &t.codes[0], i, &line, &pos);
					bool want_found = pycode_addr2pos(table, len, first, i, &want_pos);
					if ((line != want_line || found != want_found ||
					     memcmp(&pos, &want_pos, sizeof(pos))) && mismatches++ < 5)
						fprintf(stderr, "code %zu unit %d: cached %d, not %d\n", codes, i,
							line, want_line);
				}
				pycode_cache_free(&cache);
				for (int i = 0; i < units; i++) {
					int orig = units - 1 - (int)fr[i].node, to = fr[i].lasti, lowest = orig;
					for (int k = 0; k < orig; k++)
						if (want[k].line == want[orig].line &&
						    want[k].col == want[orig].col) {
							lowest = k;
							break;
						}
					if (to != lowest && mismatches++ < 5)
						fprintf(stderr, "code %zu: unit %d moved to %d, not %d\n", codes,
							orig, to, lowest);
					moved += to != orig;
				}
				free(fr);
				pycode_table_free(&t);
			}
			if (!more)
				break;
			char *sp = strchr(line + 2, ' ');
			first = atoi(line + 2);
			len = sp ? unhex(sp + 1, table, sizeof(table)) : 0;
			units = 0;
			codes++;
		} else if (line[0] == 'P') {
			int i;
			struct pycode_pos w, got;
			assert_int_equal(sscanf(line, "P %d %d %d %d %d", &i, &w.line, &w.end_line, &w.col,
						&w.end_col), 5);
			assert_true(i < MAXU);
			want[i] = w;
			units = i + 1;
			bool ok = pycode_addr2pos(table, len, first, i, &got);
			if ((!ok || memcmp(&got, &w, sizeof(w))) && mismatches++ < 5)
				fprintf(stderr, "code %zu unit %d: got %d %d %d %d, CPython says %d %d %d %d\n",
					codes, i, got.line, got.end_line, got.col, got.end_col, w.line,
					w.end_line, w.col, w.end_col);
			checks++;
		}
	}
	fclose(f);
	assert_true(codes > 15);
	assert_true(checks > 3000);
	assert_true(moved > 100); /* caches and instructions of one expression */
	assert_int_equal(mismatches, 0);
}

static void damaged_positions(void **state)
{
	(void)state;
	struct pycode_pos p;
	const uint8_t cut[] = {0xf0 | 0x00, 0x43};
	assert_false(pycode_addr2pos(cut, sizeof(cut), 10, 0, &p));
	assert_int_equal(p.line, -1);
	assert_false(pycode_addr2pos(NULL, 0, 10, 0, &p));
	assert_false(pycode_addr2pos(cut, sizeof(cut), 10, -1, &p));
	/* a short form: line 10, columns 8*2 + 3 .. + 5 */
	const uint8_t shortform[] = {0x80 | (2 << 3) | 1, 0x35};
	assert_true(pycode_addr2pos(shortform, sizeof(shortform), 10, 1, &p));
	assert_int_equal(p.line, 10);
	assert_int_equal(p.col, 19);
	assert_int_equal(p.end_col, 24);
	assert_false(pycode_addr2pos(shortform, sizeof(shortform), 10, 2, &p));
	/* frames of a damaged table, of a code not in the table: left alone */
	struct pycode_table t;
	pycode_table_init(&t);
	pycode_add(&t, 1, 5, "x.py", 4, "f", 1, cut, sizeof(cut));
	struct pycode_frame fr[3] = {{0, 7, 0}, {0, -1, 1}, {4, 3, 2}};
	pycode_first_positions(&t, fr, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(fr[i].lasti, fr[i].node == 0 ? 7 : fr[i].node == 1 ? -1 : 3);
	/* cached lookups in a damaged table: as the uncached ones */
	struct pycode_cache cache = {0};
	int line;
	assert_false(pycode_cached_pos(&cache, &t, &t.codes[0], 0, &line, &p));
	assert_int_equal(line, pycode_addr2line(cut, sizeof(cut), 5, 0));
	assert_int_equal(p.line, -1);
	assert_false(pycode_cached_pos(&cache, &t, &t.codes[0], -1, &line, &p));
	assert_int_equal(line, 5);
	pycode_cache_free(&cache);
	pycode_table_free(&t);
}

int main(int argc, char **argv)
{
	fixture = argc > 1 ? argv[1] : "linetable-3.11.txt";
	positions = argc > 2 ? argv[2] : "positions-3.11.txt";
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(matches_the_interpreter),
		cmocka_unit_test(damaged_tables),
		cmocka_unit_test(dedup_by_content),
		cmocka_unit_test(positions_match_the_interpreter),
		cmocka_unit_test(damaged_positions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
