/* pprof export (analyzer, reports stage): a gzip'd protocol buffer in the
 * layout of pprof's profile.proto, with the sample types go tool pprof and
 * Pyroscope read for heap profiles: alloc_objects, alloc_space (everything
 * allocated), inuse_objects, inuse_space (live at the leak point). Python and
 * native frames become functions and lines. zlib writes the gzip stream. */
#include "report_pprof.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "report.h"
#include "sampled.h"
#include "util.h"

#define MAX_FRAMES 2048 /* the shim writes 1,536 at most (1,024 Python + 512 native) */

struct pb {
	uint8_t *b;
	size_t n, cap;
};

static void pb_bytes(struct pb *p, const void *src, size_t len)
{
	if (!len)
		return; /* src may be NULL (an empty message) */
	while (p->n + len > p->cap) {
		p->cap = p->cap ? p->cap * 2 : 4096;
		p->b = xrealloc(p->b, p->cap);
	}
	memcpy(p->b + p->n, src, len);
	p->n += len;
}

static void pb_varint(struct pb *p, uint64_t v)
{
	uint8_t tmp[10];
	size_t k = 0;
	do {
		tmp[k++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
		v >>= 7;
	} while (v);
	pb_bytes(p, tmp, k);
}

static void pb_uint(struct pb *p, unsigned field, uint64_t v)
{
	pb_varint(p, (uint64_t)field << 3);
	pb_varint(p, v);
}

static void pb_msg(struct pb *p, unsigned field, const struct pb *m)
{
	pb_varint(p, (uint64_t)field << 3 | 2);
	pb_varint(p, m->n);
	pb_bytes(p, m->b, m->n);
}

/* pprof's string table: ids of strtab_id, NULL as "". */
static int64_t str_id(struct strtab *t, const char *s)
{
	return strtab_id(t, s ? s : "");
}

/* Functions and locations, deduplicated by their text. */
struct ids {
	struct strtab keys;
	struct pb out; /* the encoded messages */
};

static uint64_t function_id(struct ids *fn, struct strtab *st, const struct frame_info *f)
{
	char key[2048];
	const char *name = f->function ? f->function : NULL;
	char unknown[128];
	if (!name) {
		if (f->module)
			snprintf(unknown, sizeof(unknown), "%s+0x%" PRIx64, f->module, f->module_offset);
		else
			snprintf(unknown, sizeof(unknown), "0x%" PRIx64, f->ip);
		name = unknown;
	}
	snprintf(key, sizeof(key), "%s\x1f%s", name, f->file ? f->file : "");
	size_t before = fn->keys.n;
	uint64_t id = (uint64_t)str_id(&fn->keys, key) + 1;
	if (fn->keys.n != before) {
		struct pb m = {0};
		pb_uint(&m, 1, id);
		pb_uint(&m, 2, (uint64_t)str_id(st, name));
		if (f->python) {
			/* pprof takes a name with <...> for a demangled C++ name and
			 * strips the "template arguments": <module> and <listcomp>
			 * became <unknown>. It leaves a function alone whose name
			 * differs from its system name ("already demangled"), so a
			 * Python function's system name is FILE:QUALNAME. */
			char sys[2048];
			snprintf(sys, sizeof(sys), "%s:%s", f->file ? f->file : "??", name);
			pb_uint(&m, 3, (uint64_t)str_id(st, sys));
		} else {
			pb_uint(&m, 3, (uint64_t)str_id(st, name));
		}
		pb_uint(&m, 4, (uint64_t)str_id(st, f->file));
		pb_msg(&fn->out, 5, &m);
		free(m.b);
	}
	return id;
}

static uint64_t location_id(struct ids *loc, struct ids *fn, struct strtab *st,
			    const struct frame_info *f)
{
	char key[2048];
	snprintf(key, sizeof(key), "%d\x1f%s\x1f%s\x1f%d\x1f%" PRIx64, f->python,
		 f->function ? f->function : "", f->file ? f->file : "", f->line,
		 f->python ? 0 : f->ip);
	size_t before = loc->keys.n;
	uint64_t id = (uint64_t)str_id(&loc->keys, key) + 1;
	if (loc->keys.n != before) {
		struct pb line = {0}, m = {0};
		pb_uint(&line, 1, function_id(fn, st, f));
		pb_uint(&line, 2, (uint64_t)(f->line > 0 ? f->line : 0));
		pb_uint(&m, 1, id);
		if (!f->python)
			pb_uint(&m, 3, f->ip);
		pb_msg(&m, 4, &line);
		pb_msg(&loc->out, 4, &m);
		free(line.b);
		free(m.b);
	}
	return id;
}

static void value_type(struct pb *p, struct strtab *st, unsigned field, const char *type,
		       const char *unit)
{
	struct pb m = {0};
	pb_uint(&m, 1, (uint64_t)str_id(st, type));
	pb_uint(&m, 2, (uint64_t)str_id(st, unit));
	pb_msg(p, field, &m);
	free(m.b);
}

bool report_pprof(const char *path, const struct analysis *a, struct symbolizer *s)
{
	struct pprof_proc one = {a, s};
	return report_pprof_procs(path, &one, 1);
}

bool report_pprof_procs(const char *path, const struct pprof_proc *procs, size_t nprocs)
{
	struct strtab st = {0};
	struct ids fn = {0}, loc = {0};
	struct pb prof = {0}, samples = {0};
	str_id(&st, ""); /* string_table[0] must be the empty string */
	value_type(&prof, &st, 1, "alloc_objects", "count");
	value_type(&prof, &st, 1, "alloc_space", "bytes");
	value_type(&prof, &st, 1, "inuse_objects", "count");
	value_type(&prof, &st, 1, "inuse_space", "bytes");
	struct frame_info *frames = xmalloc(MAX_FRAMES * sizeof(*frames));
	uint64_t start = UINT64_MAX, end = 0;
	int64_t pid_key = nprocs > 1 ? str_id(&st, "pid") : 0;
	for (size_t p = 0; p < nprocs; p++) {
		const struct analysis *a = procs[p].a;
		struct symbolizer *s = procs[p].s;
		if (a->trace->hdr.start_realtime_ns < start)
			start = a->trace->hdr.start_realtime_ns;
		if (a->trace->hdr.start_realtime_ns + a->end_time_ns > end)
			end = a->trace->hdr.start_realtime_ns + a->end_time_ns;
		for (size_t i = 0; i < a->nsites; i++) {
			const struct site *site = &a->sites[i];
			if (site->cls != CLASS_HEAP || !site->allocs)
				continue;
			size_t nf = report_stack_frames(a, s, site->raw_stack, frames, MAX_FRAMES);
			struct pb m = {0}, ids = {0}, vals = {0}, label = {0};
			for (size_t k = 0; k < nf; k++) { /* leaf first, as pprof wants */
				symbolizer_shown(s, &frames[k]);
				pb_varint(&ids, location_id(&loc, &fn, &st, &frames[k]));
			}
			uint64_t inuse = site->eligible ? site->leak_bytes : 0;
			uint64_t inuse_n = site->eligible ? site->leak_blocks : 0;
			pb_varint(&vals, site->allocs);
			pb_varint(&vals, site->alloc_bytes);
			pb_varint(&vals, inuse_n);
			pb_varint(&vals, inuse);
			if (ids.n)
				pb_msg(&m, 1, &ids); /* packed */
			pb_msg(&m, 2, &vals);
			if (nprocs > 1) { /* which process: a numeric label */
				pb_uint(&label, 1, (uint64_t)pid_key);
				pb_uint(&label, 3, a->trace->hdr.pid);
				pb_msg(&m, 3, &label);
			}
			pb_msg(&samples, 2, &m);
			free(m.b);
			free(ids.b);
			free(vals.b);
			free(label.b);
		}
		report_stack_frames_done();
	}
	free(frames);
	pb_bytes(&prof, samples.b, samples.n);
	pb_bytes(&prof, loc.out.b, loc.out.n);
	pb_bytes(&prof, fn.out.b, fn.out.n);
	pb_uint(&prof, 9, start);
	pb_uint(&prof, 10, end - start);
	value_type(&prof, &st, 11, "space", "bytes"); /* period type */
	pb_uint(&prof, 14, (uint64_t)str_id(&st, "inuse_space"));
	uint64_t interval = 0;
	for (size_t i = 0; i < nprocs; i++)
		if (procs[i].a->sample_interval > interval)
			interval = procs[i].a->sample_interval;
	if (interval) {
		/* period: the mean sampling interval; a comment says the values
		 * are estimates (`go tool pprof -comments`) */
		char note[160];
		pb_uint(&prof, 12, interval);
		pb_uint(&prof, 13, (uint64_t)str_id(&st, sample_note(interval, note, sizeof(note))));
		/* the whole profile's 95% intervals (the processes' variances add):
		 * what each sample type's total may be off by */
		struct spread_fig all = {0};
		uint64_t inuse = 0, alloc = 0;
		for (size_t i = 0; i < nprocs; i++) {
			const struct analysis *a = procs[i].a;
			struct spread_fig hs;
			sample_heap_spread(a, &hs);
			all.leak_var += hs.leak_var;
			all.leak_n += hs.leak_n;
			all.alloc_var += hs.alloc_var;
			all.alloc_n += hs.alloc_n;
			for (size_t j = 0; j < a->nsites; j++) {
				const struct site *site = &a->sites[j];
				if (site->cls != CLASS_HEAP)
					continue;
				alloc += site->alloc_bytes;
				inuse += site->eligible ? site->leak_bytes : 0;
			}
		}
		char b[32], pm[96];
		snprintf(note, sizeof(note), "inuse_space (live at the leak point): %s %s, 95%% interval",
			 fmt_size(b, inuse), sample_pm(pm, inuse, all.leak_var, all.leak_n));
		pb_uint(&prof, 13, (uint64_t)str_id(&st, note));
		snprintf(note, sizeof(note), "alloc_space: %s %s, 95%% interval", fmt_size(b, alloc),
			 sample_pm(pm, alloc, all.alloc_var, all.alloc_n));
		pb_uint(&prof, 13, (uint64_t)str_id(&st, note));
	}
	/* the string table last: every string above is in it, in the display
	 * form of escape.h (protobuf strings must be UTF-8, and pprof prints
	 * them on a terminal) */
	for (size_t i = 0; i < st.n; i++) {
		char *text = text_dup(st.s[i]);
		size_t len = strlen(text);
		pb_varint(&prof, 6 << 3 | 2);
		pb_varint(&prof, len);
		pb_bytes(&prof, text, len);
		free(text);
	}
	bool ok = false;
	gzFile gz = gzopen(path, "wb");
	if (gz) {
		ok = gzwrite(gz, prof.b, (unsigned)prof.n) == (int)prof.n;
		ok &= gzclose(gz) == Z_OK;
	}
	free(prof.b);
	free(samples.b);
	free(loc.out.b);
	free(fn.out.b);
	strtab_free(&fn.keys);
	strtab_free(&loc.keys);
	strtab_free(&st);
	return ok;
}
