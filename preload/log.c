/* Allocation-free formatter and stderr logger for the shim (all stages use it).
 * Only the conversions the shim needs are supported. */
#include "log.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

struct out {
	char *buf;
	size_t size;
	size_t len;
};

static void put(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void put_str(struct out *o, const char *s)
{
	if (!s)
		s = "(null)";
	while (*s)
		put(o, *s++);
}

static void put_uint(struct out *o, unsigned long long v, unsigned base)
{
	char tmp[24];
	int n = 0;
	do {
		unsigned d = (unsigned)(v % base);
		tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
		v /= base;
	} while (v);
	while (n)
		put(o, tmp[--n]);
}

size_t log_format(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = {buf, size, 0};
	for (const char *f = fmt; *f; f++) {
		if (*f != '%') {
			put(&o, *f);
			continue;
		}
		f++;
		int longs = 0;
		int is_size = 0;
		while (*f == 'l') {
			longs++;
			f++;
		}
		if (*f == 'z') {
			is_size = 1;
			f++;
		}
		switch (*f) {
		case 's':
			put_str(&o, va_arg(ap, const char *));
			break;
		case 'd': {
			long long v = longs ? (longs > 1 ? va_arg(ap, long long) : va_arg(ap, long))
					    : va_arg(ap, int);
			if (v < 0) {
				put(&o, '-');
				put_uint(&o, (unsigned long long)(-(v + 1)) + 1, 10);
			} else {
				put_uint(&o, (unsigned long long)v, 10);
			}
			break;
		}
		case 'u':
		case 'x': {
			unsigned long long v;
			if (is_size)
				v = va_arg(ap, size_t);
			else if (longs > 1)
				v = va_arg(ap, unsigned long long);
			else if (longs)
				v = va_arg(ap, unsigned long);
			else
				v = va_arg(ap, unsigned);
			put_uint(&o, v, *f == 'x' ? 16 : 10);
			break;
		}
		case 'p':
			put_str(&o, "0x");
			put_uint(&o, (uintptr_t)va_arg(ap, void *), 16);
			break;
		case '%':
			put(&o, '%');
			break;
		case '\0':
			f--;
			break;
		default:
			put(&o, '?');
			break;
		}
	}
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return o.len < size ? o.len : (size ? size - 1 : 0);
}

size_t log_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t n = log_format(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

int g_log_only_tty;

void log_line(const char *fmt, ...)
{
	int saved = errno;
	if (g_log_only_tty && !isatty(STDERR_FILENO)) {
		errno = saved;
		return;
	}
	char buf[512];
	size_t n = log_snprintf(buf, sizeof(buf), "%s", "heapwise: ");
	va_list ap;
	va_start(ap, fmt);
	n += log_format(buf + n, sizeof(buf) - n - 1, fmt, ap);
	va_end(ap);
	buf[n++] = '\n';
	const char *p = buf;
	while (n) {
		ssize_t w = write(STDERR_FILENO, p, n);
		if (w <= 0) {
			if (w < 0 && errno == EINTR)
				continue;
			break;
		}
		p += w;
		n -= (size_t)w;
	}
	errno = saved;
}
