/* Sampled traces (analyzer, report stage): the words every report uses to
 * say that its figures are estimates from a trace sampled by bytes (issue
 * 17), in text and JSON. */
#ifndef HW_ANALYZER_SAMPLED_H
#define HW_ANALYZER_SAMPLED_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "analysis.h"

/* "sampled every 512.0 KiB on average: sizes and counts are estimates",
 * or "" for an exact trace (interval 0). */
const char *sample_note(uint64_t interval, char *buf, size_t size);

/* Writes ,"sample_interval":N (null for an exact trace) into a JSON object. */
void sample_json(FILE *f, uint64_t interval);

/* One line on stderr for outputs that cannot carry it (folded, pprof,
 * CSV): "heapwise: note: PATH: sampled every ...". Nothing for exact traces. */
void sample_warn(const char *path, uint64_t interval);

#endif
