/* Leak suppressions (analyzer, gate stage). */
#include "suppress.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

enum hw_err suppressions_load(struct suppressions *s, const char *path)
{
	memset(s, 0, sizeof(*s));
	FILE *f = fopen(path, "r");
	if (!f) {
		err_print("cannot open suppressions %s: %s", path, strerror(errno));
		return HW_ERR_USAGE;
	}
	char line[4096];
	unsigned no = 0;
	enum hw_err rc = HW_OK;
	while (fgets(line, sizeof(line), f)) {
		no++;
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char *p = line;
		while (isspace((unsigned char)*p))
			p++;
		size_t len = strlen(p);
		while (len && isspace((unsigned char)p[len - 1]))
			p[--len] = 0;
		if (!len)
			continue;
		if (strncmp(p, "leak:", 5) || !p[5]) {
			err_print("%s:%u: expected leak:PATTERN, got \"%s\"", path, no, p);
			rc = HW_ERR_USAGE;
			break;
		}
		p += 5;
		HW_GROW(s->rules, s->n, s->cap);
		struct suppression *r = &s->rules[s->n++];
		memset(r, 0, sizeof(*r));
		r->line = no;
		if (*p == '^') {
			r->anchor_start = true;
			p++;
		}
		len = strlen(p);
		if (len && p[len - 1] == '$') {
			r->anchor_end = true;
			p[--len] = 0;
		}
		r->pattern = xstrndup(p, len);
	}
	fclose(f);
	if (rc != HW_OK)
		suppressions_free(s);
	return rc;
}

void suppressions_free(struct suppressions *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->rules[i].pattern);
	free(s->rules);
	memset(s, 0, sizeof(*s));
}

/* Iterative glob with '*' and backtracking to the last star. */
static bool glob_at(const char *pat, const char *str, bool to_end)
{
	const char *star = NULL, *resume = NULL;
	while (*str) {
		if (*pat == '*') {
			star = pat++;
			resume = str;
		} else if (*pat && *pat == *str) {
			pat++;
			str++;
		} else if (!*pat && !to_end) {
			return true;
		} else if (star) {
			pat = star + 1;
			str = ++resume;
		} else {
			return false;
		}
	}
	while (*pat == '*')
		pat++;
	return !*pat;
}

bool suppress_glob(const struct suppression *rule, const char *name)
{
	if (!name)
		return false;
	if (rule->anchor_start)
		return glob_at(rule->pattern, name, rule->anchor_end);
	for (const char *p = name;; p++) {
		if (glob_at(rule->pattern, p, rule->anchor_end))
			return true;
		if (!*p)
			return false;
	}
}

struct suppression *suppressions_match(struct suppressions *s, const struct frame_info *frames,
				       size_t n)
{
	for (size_t r = 0; r < s->n; r++)
		for (size_t i = 0; i < n; i++)
			if (suppress_glob(&s->rules[r], frames[i].function) ||
			    suppress_glob(&s->rules[r], frames[i].file) ||
			    suppress_glob(&s->rules[r], frames[i].module))
				return &s->rules[r];
	return NULL;
}
