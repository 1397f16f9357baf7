/* The user's code (analyzer, symbolize stage): which Python frames are the
 * program's own and which belong to the interpreter's standard library or
 * to installed packages, and so which frame a report blames for an
 * allocation. By default it is the innermost frame in the user's code, the
 * way Scalene attributes memory: np.ones(...) and json.loads(...) are
 * charged to the line that called them, not to NumPy's numeric.py or
 * json/decoder.py. tracemalloc's rule, the innermost Python frame whatever
 * its file, is BLAME_INNERMOST. This is the one place the rule lives: every
 * report that shows one line for an allocation asks it.
 *
 * A thread started while Python frames ran has stacks of its own frames, a
 * thread-start frame, then the stack that started it. Under BLAME_USER a
 * thread that has Python frames of its own is blamed within them (its
 * innermost frame in the user's code, else its innermost Python frame): a
 * ThreadPoolExecutor worker running ex.submit(json.loads, big) is not
 * charged to the submit that happened to start the worker. A thread without
 * (a native pool) is blamed as the stack that started it is. */
#ifndef HW_ANALYZER_USERCODE_H
#define HW_ANALYZER_USERCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct analysis;
struct frame_info;

enum blame {
	BLAME_USER, /* the innermost frame in the user's code, else the innermost Python
		     * frame; of the thread's own frames (above) */
	BLAME_INNERMOST, /* the innermost Python frame (tracemalloc's lineno) */
};

/* Is a Python file (a code object's co_filename) library code rather than
 * the user's? Library code is:
 * - a pseudo-file "<...>": frozen modules (<frozen importlib._bootstrap>,
 *   <frozen runpy>), code made by exec or eval (<string>: dataclasses'
 *   and namedtuple's generated methods);
 * - a file under a directory named site-packages, dist-packages or
 *   __pypackages__ (pip, Debian's python3-* packages, virtual
 *   environments, user site-packages);
 * - a file under lib/pythonX.Y (or lib64/, pythonX.Yt, pythonXY.zip): the
 *   standard library of any interpreter (Debian's /usr/lib/python3.11,
 *   pyenv's, uv's, conda's, a virtual environment's base).
 * Everything else (the script, its modules, a package in a source tree) is
 * the user's. NULL and "" are library code (no file to show). */
bool usercode_is_library(const char *file);

/* Finds, for every canonical stack node of the analysis, its stack's
 * innermost Python frame and the frame BLAME_USER blames (one pass in index
 * order: a node's caller comes first, so O(1) a node). Called once at the
 * end of analysis_run; the arrays are freed by analysis_free. */
void usercode_index(struct analysis *a);

/* The canonical node of the Python frame blamed for stack `canon` under
 * rule b, or HW_NO_NODE when the stack has no Python frame (whose code is
 * known). O(1). */
uint32_t usercode_blame(const struct analysis *a, uint32_t canon, enum blame b);

/* The same rule on symbolized frames (innermost first, thread-start frames
 * included): the index of the blamed Python frame, or n when there is none. */
size_t usercode_blame_frame(const struct frame_info *frames, size_t n, enum blame b);

/* Parses --blame user|innermost; on bad text prints one line naming CMD and
 * returns false. */
bool parse_blame_option(const char *cmd, const char *text, enum blame *out);
const char *blame_name(enum blame b);

#endif
