/* Sampled traces (analyzer, report stage): the note every report carries
 * when its figures are estimates (see sampled.h). */
#include "sampled.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "util.h"

const char *sample_note(uint64_t interval, char *buf, size_t size)
{
	if (!interval) {
		if (size)
			buf[0] = 0;
		return buf;
	}
	char b[32];
	snprintf(buf, size,
		 "sampled every %s on average (Poisson, by bytes): sizes and counts are estimates",
		 fmt_size(b, interval));
	return buf;
}

void sample_json(FILE *f, uint64_t interval)
{
	if (interval)
		fprintf(f, ",\"sample_interval\":%" PRIu64, interval);
	else
		fputs(",\"sample_interval\":null", f);
}

void sample_warn(const char *path, uint64_t interval)
{
	char note[160];
	if (interval)
		fprintf(stderr, "heapwise: note: %s: %s\n", path,
			sample_note(interval, note, sizeof(note)));
}

double sample_half95(double var)
{
	return var > 0 ? 1.96 * sqrt(var) : 0;
}

uint64_t sample_clamp(double v)
{
	if (!(v > 0))
		return 0;
	if (v >= 0x1p63)
		return v >= 0x1p64 ? UINT64_MAX : (uint64_t)v;
	return (uint64_t)llround(v);
}

const char *sample_pm(char *buf, uint64_t value, double var, uint64_t samples)
{
	char b[32];
	/* blocks recorded with a chance within 1e-13 of 1 add under a byte
	 * squared: the figure is as good as exact, whatever their number */
	if (var < 1 && value) {
		snprintf(buf, 96, "exact");
		return buf;
	}
	double h = sample_half95(var);
	snprintf(buf, 96, "\u00b1 %s (%" PRIu64 " sample%s%s)",
		 fmt_size(b, sample_clamp(h)), samples,
		 samples == 1 ? "" : "s", samples < HW_FEW_SAMPLES ? ", unreliable" : "");
	return buf;
}

void sample_spread_json(FILE *f, const char *name, double var, uint64_t samples)
{
	double se = var > 0 ? sqrt(var) : 0;
	fprintf(f, ",\"%s_stderr_bytes\":%" PRIu64 ",\"%s_samples\":%" PRIu64, name,
		sample_clamp(se), name, samples);
}

void sample_heap_spread(const struct analysis *a, struct spread_fig *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; a->spread && i < a->nsites; i++) {
		const struct site *st = &a->sites[i];
		if (st->cls != CLASS_HEAP)
			continue;
		struct spread_fig f;
		site_spread_fig(a, i, &f);
		out->peak_var += f.peak_var;
		out->peak_n += f.peak_n;
		if (st->eligible) {
			out->leak_var += f.leak_var;
			out->leak_n += f.leak_n;
			out->leak_count_var += f.leak_count_var;
		}
		out->alloc_var += f.alloc_var;
		out->alloc_n += f.alloc_n;
		out->count_var += f.count_var;
	}
	out->free_count_var = a->spread ? (double)a->free_cvar : 0;
}

void sample_kind_spread(const struct analysis *a, struct spread_fig out[HW_KIND_COUNT])
{
	memset(out, 0, sizeof(*out) * HW_KIND_COUNT);
	for (size_t i = 0; a->spread && i < a->nsites; i++) {
		struct spread_fig f;
		site_spread_fig(a, i, &f);
		struct spread_fig *k = &out[a->sites[i].kind % HW_KIND_COUNT];
		k->peak_var += f.peak_var;
		k->peak_n += f.peak_n;
		k->alloc_var += f.alloc_var;
		k->alloc_n += f.alloc_n;
		k->count_var += f.count_var;
		k->live_var += f.live_var;
		k->live_n += f.live_n;
	}
}
