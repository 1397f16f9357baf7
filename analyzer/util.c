/* Helpers shared by every analyzer stage. */
#include "heapwise/trace_format.h"
#include "util.h"

#include "err.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <string.h>

static void *check(void *p)
{
	if (!p) {
		fputs("heapwise: error: out of memory\n", stderr);
		exit(2);
	}
	return p;
}

void *xmalloc(size_t n)
{
	return check(malloc(n ? n : 1));
}

void *xaligned(size_t align, size_t n)
{
	n = (n + align - 1) / align * align; /* aligned_alloc wants a multiple */
	return check(aligned_alloc(align, n ? n : align));
}

void *xcalloc(size_t n, size_t size)
{
	return check(calloc(n ? n : 1, size ? size : 1));
}

void *xrealloc(void *p, size_t n)
{
	return check(realloc(p, n ? n : 1));
}

char *xstrndup(const char *s, size_t n)
{
	char *d = xmalloc(n + 1);
	memcpy(d, s, n);
	d[n] = 0;
	return d;
}

const char *fmt_size(char *buf, uint64_t bytes)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	if (bytes < 1024) {
		snprintf(buf, 32, "%llu B", (unsigned long long)bytes);
		return buf;
	}
	double v = (double)bytes;
	unsigned u = 0;
	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	snprintf(buf, 32, "%.1f %s", v, units[u]);
	return buf;
}

bool parse_size(const char *s, uint64_t *out)
{
	char *end;
	if (!s || !*s || !(isdigit((unsigned char)*s) || *s == '.'))
		return false;
	double v = strtod(s, &end);
	if (end == s || v < 0 || !isfinite(v))
		return false;
	double mul = 1;
	if (*end) {
		char unit = (char)toupper((unsigned char)*end);
		const char *units = "KMGTP";
		const char *u = strchr(units, unit);
		if (!u)
			return false;
		mul = pow(1024.0, (double)(u - units + 1));
		end++;
		if (!strcasecmp(end, "iB") || !strcasecmp(end, "B"))
			end += strlen(end);
		if (*end)
			return false;
	}
	v *= mul;
	if (v > 1.8e19)
		return false;
	*out = (uint64_t)(v + 0.5);
	return true;
}

bool parse_count_option(const char *cmd, const char *text, size_t max, size_t *out)
{
	char *end;
	long long v = strtoll(text, &end, 10);
	if (end == text || *end || v < 1 || (unsigned long long)v > max) {
		err_print("%s: -n %s: expected a number from 1 to %zu", cmd, text, max);
		return false;
	}
	*out = (size_t)v;
	return true;
}

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

void progress_begin(struct progress *p, const char *what, uint64_t total)
{
	p->on = total >= ((uint64_t)8 << 20) && isatty(STDERR_FILENO);
	p->what = what;
	p->next_ns = 0;
}

void progress_update(struct progress *p, uint64_t done, uint64_t total, uint64_t events)
{
	if (!p->on)
		return;
	uint64_t t = now_ns();
	if (t < p->next_ns)
		return;
	p->next_ns = t + 100000000u;
	unsigned pct = total ? (unsigned)(done * 100 / total) : 0;
	fputs("\rheapwise: reading ", stderr);
	text_str(stderr, p->what);
	fprintf(stderr, " %3u%% (%.1f M events)\033[K", pct > 100 ? 100 : pct, (double)events / 1e6);
	fflush(stderr);
}

void progress_end(struct progress *p)
{
	if (p->on && p->next_ns) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
	}
	p->on = false;
}

const char *mark_kind_name(int kind)
{
	switch (kind) {
	case HW_MARK_USER:
		return "user";
	case HW_MARK_PY_FINALIZE:
		return "python-finalize";
	case HW_MARK_GC_START:
		return "gc-start";
	case HW_MARK_GC_END:
		return "gc-end";
	case HW_MARK_EXEC:
		return "exec";
	case HW_MARK_EXEC_FAILED:
		return "exec-failed";
	case HW_MARK_EXIT:
		return "exit";
	default:
		return "other";
	}
}

/* Its values are stored in traces (the seal of a compressed chunk,
 * trace_format.h): it must never change. */
uint64_t hw_hash_bytes(const void *p, size_t n, uint64_t h)
{
	const unsigned char *s = p;
	uint64_t w;
	h ^= n * 0x9E3779B97F4A7C15ull;
	for (; n >= 8; n -= 8, s += 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 29;
	}
	w = 0;
	memcpy(&w, s, n);
	return hw_mix64(h ^ w);
}

uint64_t hw_str_hash(const char *s)
{
	return hw_hash_bytes(s, strlen(s), 0);
}

/* The slot of s: its id + 1 there, or 0 where it goes (room made first). */
static size_t strtab_slot(struct strtab *t, const char *s)
{
	if ((t->n + 1) * 2 > t->mask + 1) {
		size_t mask = t->mask ? t->mask * 2 + 1 : 255;
		uint32_t *slot = xcalloc(mask + 1, sizeof(*slot));
		for (size_t i = 0; i < t->n; i++) {
			size_t j = hw_str_hash(t->s[i]) & mask;
			while (slot[j])
				j = (j + 1) & mask;
			slot[j] = (uint32_t)i + 1;
		}
		free(t->slot);
		t->slot = slot;
		t->mask = mask;
	}
	size_t j = hw_str_hash(s) & t->mask;
	while (t->slot[j] && strcmp(t->s[t->slot[j] - 1], s))
		j = (j + 1) & t->mask;
	return j;
}

static uint32_t strtab_add(struct strtab *t, size_t j, char *s)
{
	HW_GROW(t->s, t->n, t->cap);
	t->s[t->n] = s;
	t->slot[j] = (uint32_t)++t->n;
	return (uint32_t)t->n - 1;
}

uint32_t strtab_id(struct strtab *t, const char *s)
{
	size_t j = strtab_slot(t, s);
	return t->slot[j] ? t->slot[j] - 1 : strtab_add(t, j, xstrndup(s, strlen(s)));
}

uint32_t strtab_take(struct strtab *t, char *s)
{
	size_t j = strtab_slot(t, s);
	if (!t->slot[j])
		return strtab_add(t, j, s);
	free(s);
	return t->slot[j] - 1;
}

void strtab_free(struct strtab *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->s[i]);
	free(t->s);
	free(t->slot);
}
