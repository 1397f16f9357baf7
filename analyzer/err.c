/* Error table and diagnostics of the analyzer (all stages). */
#include "err.h"

#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"

static const char *const messages[] = {
#define HW_X(code, msg) [code] = msg,
	HW_ERRORS(HW_X)
#undef HW_X
};

const char *err_message(enum hw_err e)
{
	return messages[e];
}

/* Names in a message come from the command line or a trace: the message is
 * written in the display form (escape.h), so no byte of them reaches the
 * terminal raw. */
static void vprint(const char *prefix, const char *fmt, va_list ap)
{
	char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	flockfile(stderr); /* one message whole among threads' (compress_traces) */
	fputs(prefix, stderr);
	if (msg)
		text_str(stderr, msg);
	else
		fputs(fmt, stderr); /* out of memory: at least what went wrong */
	fputc('\n', stderr);
	funlockfile(stderr);
	free(msg);
}

void err_print(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprint("heapwise: error: ", fmt, ap);
	va_end(ap);
}

void warn_print(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprint("heapwise: warning: ", fmt, ap);
	va_end(ap);
}

/* The long option argv[optind - 1] names, without the leading "--" and the
 * "=value"; NULL when that argument is not a long option. */
static const char *long_name(int argc, char **argv, size_t *len)
{
	if (optind < 1 || optind > argc)
		return NULL;
	const char *a = argv[optind - 1];
	if (strncmp(a, "--", 2) || !a[2])
		return NULL;
	a += 2;
	*len = strcspn(a, "=");
	return a;
}

int err_getopt(const char *cmd, int argc, char **argv, const char *shortopts,
	       const struct option *longopts)
{
	/* ':' first (after a '+'): a missing value returns ':' instead of '?' */
	char spec[64];
	bool plus = shortopts[0] == '+';
	snprintf(spec, sizeof(spec), "%s:%s", plus ? "+" : "", shortopts + plus);
	opterr = 0;
	int c = getopt_long(argc, argv, spec, longopts, NULL);
	if (c != '?' && c != ':')
		return c;
	size_t len = 0;
	const char *name = long_name(argc, argv, &len);
	if (c == ':') {
		if (name)
			err_print("%s: option --%.*s needs a value", cmd, (int)len, name);
		else
			err_print("%s: option -%c needs a value", cmd, optopt);
		return '?';
	}
	if (optopt && name) {
		/* a long option given a value it does not take (--json=1)? */
		for (const struct option *o = longopts; o->name; o++)
			if (o->val == optopt && o->has_arg == no_argument &&
			    !strncmp(o->name, name, len) && name[len] == '=') {
				err_print("%s: option --%s takes no value", cmd, o->name);
				return '?';
			}
	}
	if (optopt) {
		err_print("%s: unknown option -%c", cmd, isprint(optopt) ? optopt : '?');
		return '?';
	}
	if (!name) {
		err_print("%s: unknown option", cmd);
		return '?';
	}
	char alts[256] = "";
	size_t matches = 0, used = 0;
	for (const struct option *o = longopts; o->name; o++)
		if (!strncmp(o->name, name, len)) {
			int w = snprintf(alts + used, sizeof(alts) - used, "%s--%s",
					 matches ? ", " : "", o->name);
			if (w > 0 && (size_t)w < sizeof(alts) - used)
				used += (size_t)w;
			matches++;
		}
	if (matches > 1)
		err_print("%s: option --%.*s is ambiguous (%s)", cmd, (int)len, name, alts);
	else
		err_print("%s: unknown option --%.*s", cmd, (int)len, name);
	return '?';
}
