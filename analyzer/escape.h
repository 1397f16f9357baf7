/* Escaping of names from a trace for every output (analyzer, reports stage):
 * one set of helpers for text, XML/SVG/HTML, JSON and CSV, so no renderer
 * has its own idea of what is safe. A trace's names are hostile bytes: a
 * file or function name, the command line, a module path or a marker label
 * may hold terminal escape sequences, newlines that fake rows, markup,
 * formula prefixes, or bytes that are not UTF-8.
 *
 * The display form (text, XML, CSV) shows a name as itself where it is
 * harmless, and everything else visibly and in ASCII:
 * - a byte that is not part of valid UTF-8 (overlong forms, surrogates and
 *   code points past U+10FFFF included): \xNN; so is the UTF-8 form of
 *   U+DC80-U+DCFF, Python's surrogateescape form of the byte 0xNN in a
 *   file name that is not UTF-8 (a script under such a path);
 * - C0 controls and DEL: \n, \r, \t, else \xNN;
 * - C1 controls, the bidirectional formatting characters (U+061C, U+200E,
 *   U+200F, U+202A-U+202E, U+2066-U+2069), the line and paragraph
 *   separators U+2028/U+2029 and the noncharacters U+FFFE/U+FFFF (not XML
 *   characters): \uXXXX.
 * JSON strings carry the exact name where JSON can (every such character
 * as a JSON \uXXXX escape), and a byte that is not UTF-8 as the text \xNN
 * (a JSON string is Unicode). Every output is therefore valid UTF-8. */
#ifndef HW_ANALYZER_ESCAPE_H
#define HW_ANALYZER_ESCAPE_H

#include <stddef.h>
#include <stdio.h>

/* Writes the display form of s (NULL writes nothing). */
void text_str(FILE *f, const char *s);

/* The display form of s into buf (size > 0), always terminated; cut before
 * an escape or character that does not fit. Returns the length written. */
size_t text_escape(char *buf, size_t size, const char *s);

/* The display form of s, allocated (free it). NULL gives "". */
char *text_dup(const char *s);

/* Writes s for XML/HTML text and attribute values: the display form with
 * &, <, >, " and ' as entities. Newlines and tabs stay as they are (the
 * renderers' own multi-line texts), so pass names through the display form
 * first where a newline must show. */
void xml_text(FILE *f, const char *s);

/* Writes s as a JSON string (with quotes); NULL writes null. <, > and &
 * are escaped too, so the document can sit inside an HTML <script>. */
void json_str(FILE *f, const char *s);

/* Writes s as one quoted CSV cell (RFC 4180) in the display form. A cell
 * that would start with =, +, - or @ gets a ' in front, so a spreadsheet
 * shows it as text and never evaluates it as a formula. */
void csv_cell(FILE *f, const char *s);

#endif
