/* Escaping of names from a trace for every output (analyzer, reports stage);
 * see escape.h for the forms. One decoder walks the bytes as strict UTF-8
 * and one writer puts each unit out in the form its output wants. */
#include "escape.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

enum form { DISPLAY, XML, JSON, CSV };

/* Where units go: a FILE, or a buffer that takes whole units only. */
struct sink {
	FILE *f;
	char *buf;
	size_t size, len;
	bool full;
};

static void put(struct sink *k, const char *s, size_t n)
{
	if (k->f) {
		fwrite(s, 1, n, k->f);
		return;
	}
	if (k->full || k->len + n + 1 > k->size) {
		k->full = true; /* nothing after a unit that did not fit */
		return;
	}
	memcpy(k->buf + k->len, s, n);
	k->len += n;
}

/* Length of the valid UTF-8 sequence at p (its code point in *cp), or 0
 * when p[0] does not start one: overlong forms, surrogates, code points
 * past U+10FFFF and cut sequences are not UTF-8. */
static size_t utf8_next(const unsigned char *p, uint32_t *cp)
{
	unsigned char c = p[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		*cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		*cp = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f; /* no surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		*cp = c & 0x07;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		unsigned char b = p[i]; /* a NUL ends the loop: it is no continuation */
		if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xbf))
			return 0;
		*cp = *cp << 6 | (b & 0x3f);
	}
	return n;
}

/* Characters shown as escapes in the display form: controls, the
 * bidirectional formatting characters (they reorder what a terminal or a
 * browser shows around them), line separators and XML's non-characters. */
static bool unsafe(uint32_t cp)
{
	return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x061c || cp == 0x200e ||
	       cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069) ||
	       cp == 0xfffe || cp == 0xffff;
}

/* A printable ASCII byte written as it is in this form. */
static inline bool as_is(unsigned char c, enum form form)
{
	if (c < 0x20 || c >= 0x7f)
		return false;
	switch (form) {
	case XML: return c != '<' && c != '>' && c != '&' && c != '"' && c != '\'';
	case JSON: return c != '"' && c != '\\' && c != '<' && c != '>' && c != '&';
	case CSV: return c != '"';
	default: return true;
	}
}

/* n bytes that are each a unit of their own (as_is): as many as the sink
 * takes, in one write (one fwrite a byte took 78% of a JSON export's
 * instructions). */
static void put_bytes(struct sink *k, const char *s, size_t n)
{
	if (k->f) {
		fwrite(s, 1, n, k->f);
		return;
	}
	size_t room = k->full || k->len + 1 >= k->size ? 0 : k->size - k->len - 1;
	if (n > room) {
		n = room;
		k->full = true;
	}
	memcpy(k->buf + k->len, s, n);
	k->len += n;
}

static void write_form(struct sink *k, const char *s, enum form form)
{
	char esc[16];
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		const unsigned char *q = p;
		while (as_is(*q, form))
			q++;
		if (q > p) {
			put_bytes(k, (const char *)p, (size_t)(q - p));
			p = q;
			continue;
		}
		uint32_t cp;
		size_t n = utf8_next(p, &cp);
		if (!n) { /* not UTF-8: the byte as visible text */
			unsigned byte = *p;
			size_t skip = 1;
			if (p[0] == 0xed && (p[1] == 0xb2 || p[1] == 0xb3) && (p[2] & 0xc0) == 0x80) {
				/* U+DC80-U+DCFF: Python's surrogateescape form of a
				 * file name byte that is not UTF-8 (CPython encodes
				 * it this way in a code object's file name) */
				byte = 0x80 | (p[1] & 1u) << 6 | (p[2] & 0x3fu);
				skip = 3;
			}
			snprintf(esc, sizeof(esc), form == JSON ? "\\\\x%02x" : "\\x%02x", byte);
			put(k, esc, strlen(esc));
			p += skip;
			continue;
		}
		const char *lit = NULL;
		if (form == XML) {
			lit = cp == '<' ? "&lt;" : cp == '>' ? "&gt;" : cp == '&' ? "&amp;"
			    : cp == '"' ? "&quot;" : cp == '\'' ? "&#39;" : NULL;
			if (cp == '\n' || cp == '\t') {
				put(k, (const char *)p, 1);
				p++;
				continue;
			}
		} else if (form == JSON) {
			lit = cp == '"' ? "\\\"" : cp == '\\' ? "\\\\" : cp == '\n' ? "\\n"
			    : cp == '\t' ? "\\t" : cp == '\r' ? "\\r" : NULL;
			if (!lit && (unsafe(cp) || cp == '<' || cp == '>' || cp == '&')) {
				snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)cp);
				lit = esc;
			}
		} else if (form == CSV && cp == '"') {
			lit = "\"\"";
		}
		if (!lit && unsafe(cp)) {
			if (cp == '\n' || cp == '\t' || cp == '\r')
				lit = cp == '\n' ? "\\n" : cp == '\t' ? "\\t" : "\\r";
			else
				snprintf(esc, sizeof(esc), cp < 0x80 ? "\\x%02x" : "\\u%04x", (unsigned)cp);
			lit = lit ? lit : esc;
		}
		if (lit)
			put(k, lit, strlen(lit));
		else
			put(k, (const char *)p, n);
		p += n;
	}
}

void text_str(FILE *f, const char *s)
{
	if (!s)
		return;
	struct sink k = {.f = f};
	write_form(&k, s, DISPLAY);
}

size_t text_escape(char *buf, size_t size, const char *s)
{
	struct sink k = {.buf = buf, .size = size};
	if (s)
		write_form(&k, s, DISPLAY);
	buf[k.len] = 0;
	return k.len;
}

char *text_dup(const char *s)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return xstrndup("", 0);
	text_str(f, s);
	if (fclose(f) || !out)
		return xstrndup("", 0);
	return out;
}

void xml_text(FILE *f, const char *s)
{
	if (!s)
		return;
	struct sink k = {.f = f};
	write_form(&k, s, XML);
}

void json_str(FILE *f, const char *s)
{
	if (!s) {
		fputs("null", f);
		return;
	}
	struct sink k = {.f = f};
	fputc('"', f);
	write_form(&k, s, JSON);
	fputc('"', f);
}

void csv_cell(FILE *f, const char *s)
{
	struct sink k = {.f = f};
	fputc('"', f);
	if (s && (*s == '=' || *s == '+' || *s == '-' || *s == '@'))
		fputc('\'', f);
	if (s)
		write_form(&k, s, CSV);
	fputc('"', f);
}
