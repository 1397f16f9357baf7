/* Allocation-free formatter and stderr logger for the shim (all stages use it).
 * Only the conversions the shim needs are supported. */
#include "log.h"
#include "nocancel.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
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

/* The stderr the program started with: its file and how it was opened. */
static struct {
	enum { ERR_UNKNOWN, ERR_KNOWN, ERR_NONE } state;
	dev_t dev;
	ino_t ino;
	int flags;
} g_err;

#define ERR_FLAGS (O_ACCMODE | O_APPEND)

static bool stderr_identity(dev_t *dev, ino_t *ino, int *flags)
{
	struct stat st;
	int fl = fcntl(STDERR_FILENO, F_GETFL);
	if (fl < 0 || fstat(STDERR_FILENO, &st) < 0)
		return false;
	*dev = st.st_dev;
	*ino = st.st_ino;
	*flags = fl & ERR_FLAGS;
	return true;
}

void log_take_stderr(void)
{
	int saved = errno;
	g_err.state = stderr_identity(&g_err.dev, &g_err.ino, &g_err.flags) ? ERR_KNOWN : ERR_NONE;
	errno = saved;
}

/* A program may close its stderr and open something else as fd 2 (a data
 * file, a socket): a line written there would become part of its data. */
static bool stderr_unchanged(void)
{
	if (g_err.state == ERR_UNKNOWN)
		return true;
	dev_t dev;
	ino_t ino;
	int flags;
	return g_err.state == ERR_KNOWN && stderr_identity(&dev, &ino, &flags) &&
	       dev == g_err.dev && ino == g_err.ino && flags == g_err.flags;
}

void log_line(const char *fmt, ...)
{
	int saved = errno;
	int c = hw_cancel_off();
	if ((g_log_only_tty && !isatty(STDERR_FILENO)) || !stderr_unchanged()) {
		hw_cancel_restore(c);
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
	/* stderr may be a pipe whose reader is gone (`prog 2>&1 | head -1`):
	 * the write's SIGPIPE would kill a program that never writes there.
	 * Blocked for the write, and the one it raised (sent to this thread)
	 * taken back unless one was pending already. */
	sigset_t pipe_set, old_mask, pending;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
	bool was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
	bool broken = false;
	const char *p = buf;
	while (n) {
		ssize_t w = write(STDERR_FILENO, p, n);
		if (w <= 0) {
			if (w < 0 && errno == EINTR)
				continue;
			broken = w < 0 && errno == EPIPE;
			break;
		}
		p += w;
		n -= (size_t)w;
	}
	if (broken && !was_pending) {
		const struct timespec now = {0, 0};
		while (sigtimedwait(&pipe_set, NULL, &now) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	hw_cancel_restore(c);
	errno = saved;
}
