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

/* Estimates with fewer samples than this are marked unreliable: their
 * interval rests on too few recorded blocks for the normal approximation. */
#define HW_FEW_SAMPLES 5

/* Half the width of the 95% interval of an estimate whose variance is var:
 * 1.96 standard errors. */
double sample_half95(double var);

/* A non-negative figure in bytes as an integer, saturated at UINT64_MAX
 * (hostile traces make any size). */
uint64_t sample_clamp(double v);

/* An estimate's uncertainty for text: "± 1.2 MiB (14 samples)", with
 * ", unreliable" under HW_FEW_SAMPLES samples, "exact" for an estimate
 * made only of blocks that count as themselves or nearly (var under one
 * byte squared, value > 0). buf
 * needs 96 bytes. */
const char *sample_pm(char *buf, uint64_t value, double var, uint64_t samples);

/* Writes ,"NAME_stderr_bytes":N,"NAME_samples":N into a JSON object. */
void sample_spread_json(FILE *f, const char *name, double var, uint64_t samples);

/* The heap's spread over all its sites: at the peak, at the leak point (the
 * sites that count as leaks: bytes and blocks), over all allocations, and
 * of the count of frees. */
void sample_heap_spread(const struct analysis *a, struct spread_fig *out);

/* Each allocator kind's spread (the summary's table): over its allocations,
 * at its class's peak and live at the end of the replay. */
void sample_kind_spread(const struct analysis *a, struct spread_fig out[HW_KIND_COUNT]);

#endif
