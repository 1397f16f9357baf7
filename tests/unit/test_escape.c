/* analyzer/escape.c: every form of a hostile name is what escape.h promises:
 * control bytes, bidirectional controls and bytes that are not UTF-8 shown
 * visibly; XML, JSON and CSV syntax escaped; formulas neutralised; every
 * output valid UTF-8 whatever the input. */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "escape.h"

typedef void (*writer)(FILE *, const char *);

static char *run(writer w, const char *s)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	w(f, s);
	fclose(f);
	return out;
}

static void check(writer w, const char *in, const char *want)
{
	char *got = run(w, in);
	assert_string_equal(got, want);
	free(got);
}

/* Strict UTF-8 with no control character but \n and \t. */
static bool clean_utf8(const char *s, bool allow_nl)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		if (*p < 0x20 && !(allow_nl && (*p == '\n' || *p == '\t')))
			return false;
		if (*p == 0x7f)
			return false;
		if (*p < 0x80) {
			p++;
			continue;
		}
		size_t n = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : 2;
		if (*p < 0xc2 || *p > 0xf4)
			return false;
		for (size_t i = 1; i < n; i++)
			if ((p[i] & 0xc0) != 0x80)
				return false;
		p += n;
	}
	return true;
}

static void display_form(void **state)
{
	(void)state;
	check(text_str, "app.py", "app.py");
	check(text_str, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	/* a terminal title and a clear screen, a faked row */
	check(text_str, "\x1b]0;pwned\x07\x1b[2Jx", "\\x1b]0;pwned\\x07\\x1b[2Jx");
	check(text_str, "a\nb\tc\rd\x7f", "a\\nb\\tc\\rd\\x7f");
	/* not UTF-8: a lone continuation, a cut sequence, overlong, surrogate,
	 * past U+10FFFF, a byte that never starts one */
	check(text_str, "\x80", "\\x80");
	check(text_str, "\xc3", "\\xc3");
	check(text_str, "\xc3(", "\\xc3(");
	check(text_str, "\xc0\xaf", "\\xc0\\xaf");
	check(text_str, "\xed\xa0\x80", "\\xed\\xa0\\x80");
	check(text_str, "\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80");
	check(text_str, "\xff", "\\xff");
	/* a path byte 0xff as CPython writes it (surrogateescape: U+DCFF) */
	check(text_str, "/tmp/\xed\xb3\xbf/a.py", "/tmp/\\xff/a.py");
	check(text_str, "\xed\xb2\x80\xed\xa0\x80", "\\x80\\xed\\xa0\\x80");
	/* C1 (CSI as U+009B), bidi override, line separator, noncharacter */
	check(text_str, "\xc2\x9b" "2J", "\\u009b2J");
	check(text_str, "x\xe2\x80\xaey", "x\\u202ey");
	check(text_str, "\xe2\x81\xa6\xe2\x80\xa8\xef\xbf\xbe", "\\u2066\\u2028\\ufffe");
	check(text_str, NULL, "");
	char *d = text_dup("a\x1b");
	assert_string_equal(d, "a\\x1b");
	free(d);
}

static void display_into_a_buffer(void **state)
{
	(void)state;
	char b[8];
	assert_int_equal(text_escape(b, sizeof(b), "abc"), 3);
	assert_string_equal(b, "abc");
	/* an escape that does not fit is left out whole */
	assert_int_equal(text_escape(b, sizeof(b), "abcd\x1b"), 4);
	assert_string_equal(b, "abcd");
	assert_int_equal(text_escape(b, sizeof(b), "abcde\xc3\xa9z"), 7);
	assert_string_equal(b, "abcde\xc3\xa9");
	assert_int_equal(text_escape(b, sizeof(b), "abcdef\xc3\xa9"), 6);
	assert_string_equal(b, "abcdef");
	/* plain characters are written a run at a time, cut where the room
	 * ends as one at a time would be */
	assert_int_equal(text_escape(b, sizeof(b), "abcdefghij"), 7);
	assert_string_equal(b, "abcdefg");
	assert_int_equal(text_escape(b, sizeof(b), "ab\x1b" "defghij"), 7);
	assert_string_equal(b, "ab\\x1bd");
	assert_int_equal(text_escape(b, 1, "abc"), 0);
	assert_string_equal(b, "");
	assert_int_equal(text_escape(b, sizeof(b), NULL), 0);
}

static void xml_form(void **state)
{
	(void)state;
	check(xml_text, "<a href=\"x\">&'</a>", "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
	check(xml_text, "line\n\tnext", "line\n\tnext");
	check(xml_text, "\x01\x1b\r\xff\xef\xbf\xbf", "\\x01\\x1b\\r\\xff\\uffff");
	check(xml_text, NULL, "");
}

static void json_form(void **state)
{
	(void)state;
	check(json_str, "a\"b\\c\n<script>\x01", "\"a\\\"b\\\\c\\n\\u003cscript\\u003e\\u0001\"");
	check(json_str, NULL, "null");
	/* exact where JSON can be; a byte that is not UTF-8 as the text \xNN */
	check(json_str, "\x1b\x7f\xc2\x9b\xe2\x80\xae\xe2\x80\xa8&", "\"\\u001b\\u007f\\u009b\\u202e\\u2028\\u0026\"");
	check(json_str, "\xff\xc3" "caf\xc3\xa9", "\"\\\\xff\\\\xc3caf\xc3\xa9\"");
}

static void csv_form(void **state)
{
	(void)state;
	check(csv_cell, "app.py:3 f", "\"app.py:3 f\"");
	check(csv_cell, "say \"hi\"", "\"say \"\"hi\"\"\"");
	check(csv_cell, "a,b\nc", "\"a,b\\nc\"");
	check(csv_cell, "=cmd|' /C calc'!A0", "\"'=cmd|' /C calc'!A0\"");
	check(csv_cell, "+1", "\"'+1\"");
	check(csv_cell, "-1", "\"'-1\"");
	check(csv_cell, "@SUM(A1)", "\"'@SUM(A1)\"");
	check(csv_cell, "\t=1", "\"\\t=1\"");
	check(csv_cell, NULL, "\"\"");
}

/* Every byte string of up to three bytes from an alphabet of the hard
 * cases comes out as clean UTF-8 in every form. */
static void any_bytes_give_valid_utf8(void **state)
{
	(void)state;
	static const unsigned char alpha[] = {0x01, 0x0a, 0x1b, '"', '<', '&', 'a', 0x7f,
					      0x80, 0x9b, 0xbf, 0xc2, 0xc3, 0xe0, 0xe2, 0xed,
					      0xef, 0xf0, 0xf4, 0xf5, 0xff};
	const size_t na = sizeof(alpha);
	char in[4];
	for (size_t i = 0; i < na * na * na; i++) {
		in[0] = (char)alpha[i % na];
		in[1] = (char)alpha[i / na % na];
		in[2] = (char)alpha[i / na / na];
		in[3] = 0;
		writer ws[] = {text_str, xml_text, json_str, csv_cell};
		for (size_t w = 0; w < 4; w++) {
			char *got = run(ws[w], in);
			if (!clean_utf8(got, ws[w] == xml_text))
				fail_msg("form %zu of %02x %02x %02x: %s", w, alpha[i % na],
					 alpha[i / na % na], alpha[i / na / na], got);
			free(got);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(display_form),
		cmocka_unit_test(display_into_a_buffer),
		cmocka_unit_test(xml_form),
		cmocka_unit_test(json_form),
		cmocka_unit_test(csv_form),
		cmocka_unit_test(any_bytes_give_valid_utf8),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
