/* Analyzer errors: one table of code and message; main maps them to exit
 * codes (2 = could not run; 1 is reserved for gates that ran and failed). */
#ifndef HW_ANALYZER_ERR_H
#define HW_ANALYZER_ERR_H

#define HW_ERRORS(X)                                                              \
	X(HW_OK, "success")                                                       \
	X(HW_ERR_USAGE, "usage error")                                            \
	X(HW_ERR_OPEN, "cannot open the trace")                                   \
	X(HW_ERR_NOT_TRACE, "not a heapwise trace (bad magic)")                   \
	X(HW_ERR_VERSION, "unsupported trace format version")                     \
	X(HW_ERR_HEADER, "damaged trace header")                                  \
	X(HW_ERR_NOMEM, "out of memory")                                          \
	X(HW_ERR_OUTPUT, "cannot write the output")                               \
	X(HW_ERR_EXEC, "cannot run the command")

enum hw_err {
#define HW_X(code, msg) code,
	HW_ERRORS(HW_X)
#undef HW_X
};

const char *err_message(enum hw_err e);

/* Print "heapwise: error: <message>" (warning: ...) and a newline to stderr,
 * the message in the display form of escape.h (names in it are hostile). */
void err_print(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warn_print(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct option;
/* getopt_long for a subcommand CMD: returns what getopt_long returns, except
 * that a bad option (unknown, ambiguous, missing or unwanted value) is
 * reported here in one "heapwise: error: CMD: ..." line and returns '?'.
 * SHORTOPTS as getopt's, optionally starting with '+'. */
int err_getopt(const char *cmd, int argc, char **argv, const char *shortopts,
	       const struct option *longopts);

#endif
