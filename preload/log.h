/* Diagnostics of the shim: one line to stderr, formatted into a stack buffer
 * and written with write(2), so logging can never call back into malloc. */
#ifndef HW_PRELOAD_LOG_H
#define HW_PRELOAD_LOG_H

#include <stdarg.h>
#include <stddef.h>

/* When set, log_line writes only if stderr is a terminal: a traced child's
 * captured stderr must stay what the program wrote. */
extern int g_log_only_tty;

/* Notes which file fd 2 is (device, inode, access mode and O_APPEND): from
 * then on log_line writes only while fd 2 is still that file, and never when
 * fd 2 was closed here. Called once at start; a fork child keeps its
 * parent's. */
void log_take_stderr(void);

/* Formats with %s, %d, %u, %lu, %llu, %zu, %x, %p, %% only; prefixes
 * "heapwise: " and appends a newline. Never allocates. */
void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The formatter behind log_line, exposed for tests and for building file
 * names: writes at most size-1 bytes and always NUL-terminates; returns the
 * length written. */
size_t log_format(char *buf, size_t size, const char *fmt, va_list ap);
size_t log_snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
