/* The user's code and the frame a report blames (analyzer, symbolize stage):
 * see usercode.h. The trace names only files, so library code is told by
 * where its file lives (the layout every CPython installation and package
 * installer uses), not by asking the interpreter. */
#include "usercode.h"

#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "err.h"
#include "symbolize.h"
#include "util.h"

static bool comp_is(const char *p, size_t len, const char *name)
{
	return len == strlen(name) && !memcmp(p, name, len);
}

static bool digits(const char **p, const char *end)
{
	const char *s = *p;
	while (*p < end && **p >= '0' && **p <= '9')
		(*p)++;
	return *p > s;
}

/* "python3.11", "python3.13t", "python3.11d", "python311.zip" */
static bool python_dir(const char *p, size_t len)
{
	const char *end = p + len;
	if (len < 7 || memcmp(p, "python", 6))
		return false;
	p += 6;
	if (!digits(&p, end))
		return false;
	if (end - p == 4 && !memcmp(p, ".zip", 4))
		return true;
	if (p < end && *p == '.') {
		p++;
		if (!digits(&p, end))
			return false;
	}
	while (p < end && *p >= 'a' && *p <= 'z')
		p++;
	return p == end || (end - p == 4 && !memcmp(p, ".zip", 4));
}

bool usercode_is_library(const char *file)
{
	if (!file || !*file)
		return true;
	size_t n = strlen(file);
	if (file[0] == '<' && file[n - 1] == '>')
		return true;
	const char *prev = NULL;
	size_t prev_len = 0;
	for (const char *p = file;;) {
		const char *slash = strchr(p, '/');
		if (!slash)
			return false; /* the file's own name */
		size_t len = (size_t)(slash - p);
		if (comp_is(p, len, "site-packages") || comp_is(p, len, "dist-packages") ||
		    comp_is(p, len, "__pypackages__"))
			return true;
		if (prev && (comp_is(prev, prev_len, "lib") || comp_is(prev, prev_len, "lib64")) &&
		    python_dir(p, len))
			return true;
		prev = p;
		prev_len = len;
		p = slash + 1;
	}
}

/* What usercode_index carries from a node to its callees: its innermost
 * Python frame and innermost frame in the user's code since its innermost
 * thread-start node (the thread's own frames; the whole stack when none),
 * and what that thread's starter is blamed on under BLAME_USER (HW_NO_NODE
 * without a thread-start node). */
struct own_frames {
	uint32_t py, user, starter;
};

void usercode_index(struct analysis *a)
{
	size_t n = a->st.ncnodes;
	a->py_node = xmalloc((n + 1) * sizeof(*a->py_node));
	a->user_node = xmalloc((n + 1) * sizeof(*a->user_node));
	struct own_frames *own = xmalloc((n + 1) * sizeof(*own));
	/* per code object: 0 not yet, 1 the user's, 2 library */
	uint8_t *lib = xcalloc(a->codes.n + 1, 1);
	for (size_t c = 0; c < n; c++) {
		const struct cnode *cn = &a->st.cnodes[c];
		bool up = cn->parent < c; /* always, by construction; hostile input is cut */
		uint32_t py = up ? a->py_node[cn->parent] : HW_NO_NODE;
		struct own_frames o = {HW_NO_NODE, HW_NO_NODE, HW_NO_NODE};
		if (up)
			o = own[cn->parent];
		const struct pycode *code = NULL;
		if (cn->frame_kind == HW_FRAME_PYTHON)
			code = pycode_find(&a->codes, (uint32_t)(cn->frame >> 32));
		if (code) {
			size_t k = (size_t)(code - a->codes.codes);
			if (!lib[k])
				lib[k] = usercode_is_library(code->filename) ? 2 : 1;
			py = (uint32_t)c;
			o.py = (uint32_t)c;
			if (lib[k] == 1)
				o.user = (uint32_t)c;
		} else if (cn->frame_kind == HW_FRAME_THREAD) {
			/* the frames after this node are the new thread's own; the
			 * starter is blamed on what its own stack is (up: the
			 * parent's entry is final already) */
			o.starter = up ? a->user_node[cn->parent] : HW_NO_NODE;
			o.py = o.user = HW_NO_NODE;
		}
		a->py_node[c] = py;
		own[c] = o;
		/* the thread's own frames if it ran Python, else its starter's */
		a->user_node[c] = o.user != HW_NO_NODE ? o.user : o.py != HW_NO_NODE ? o.py : o.starter;
	}
	free(own);
	free(lib);
}

uint32_t usercode_blame(const struct analysis *a, uint32_t canon, enum blame b)
{
	if (canon == HW_NO_NODE || canon >= a->st.ncnodes || !a->py_node)
		return HW_NO_NODE;
	return b == BLAME_USER ? a->user_node[canon] : a->py_node[canon];
}

size_t usercode_blame_frame(const struct frame_info *frames, size_t n, enum blame b)
{
	size_t py = n;
	for (size_t i = 0; i < n; i++) {
		if (frames[i].thread_start && b == BLAME_USER) {
			if (py < n)
				return py; /* the thread ran Python frames of its own */
			continue; /* a native thread: blamed as its starter is */
		}
		if (!frames[i].python)
			continue;
		if (py == n)
			py = i;
		if (b != BLAME_USER || !usercode_is_library(frames[i].file))
			return i;
	}
	return py;
}

bool parse_blame_option(const char *cmd, const char *text, enum blame *out)
{
	if (!strcmp(text, "user"))
		*out = BLAME_USER;
	else if (!strcmp(text, "innermost"))
		*out = BLAME_INNERMOST;
	else {
		err_print("%s: --blame %s: expected user or innermost", cmd, text);
		return false;
	}
	return true;
}

const char *blame_name(enum blame b)
{
	return b == BLAME_USER ? "user" : "innermost";
}
