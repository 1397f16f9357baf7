/* Sampled traces (analyzer, report stage): the note every report carries
 * when its figures are estimates (see sampled.h). */
#include "sampled.h"

#include <inttypes.h>

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
