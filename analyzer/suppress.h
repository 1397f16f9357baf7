/* Leak suppressions for `heapwise check` (analyzer, gate stage), in a syntax
 * close to LeakSanitizer's: one `leak:PATTERN` a line, `#` comments. A
 * pattern matches a frame's function, file or module name: `*` is any run of
 * characters, a leading `^` / trailing `$` anchor it, otherwise it may match
 * anywhere in the name. */
#ifndef HW_ANALYZER_SUPPRESS_H
#define HW_ANALYZER_SUPPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "symbolize.h"

struct suppression {
	char *pattern; /* without the anchors */
	bool anchor_start, anchor_end;
	unsigned line;
	uint64_t blocks, bytes; /* what it suppressed */
};

struct suppressions {
	struct suppression *rules;
	size_t n, cap;
};

/* Reads FILE; on a bad line prints "FILE:LINE: ..." and returns HW_ERR_USAGE. */
enum hw_err suppressions_load(struct suppressions *s, const char *path);
void suppressions_free(struct suppressions *s);

/* The first rule matching any frame, or NULL. */
struct suppression *suppressions_match(struct suppressions *s, const struct frame_info *frames,
				       size_t n);

/* Glob match of one name (exposed for tests). */
bool suppress_glob(const struct suppression *rule, const char *name);

#endif
