/* Error table and diagnostics of the analyzer (all stages). */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const messages[] = {
#define HW_X(code, msg) [code] = msg,
	HW_ERRORS(HW_X)
#undef HW_X
};

const char *err_message(enum hw_err e)
{
	return messages[e];
}

void err_print(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("heapwise: error: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void warn_print(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("heapwise: warning: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}
