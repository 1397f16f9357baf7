/* Trace compression (analyzer, `heapwise compress` and the end of `heapwise
 * run`): each chunk's records become one zstd frame in a compressed chunk of
 * the same file format (include/heapwise/trace_format.h). The file is
 * rewritten into a temporary file beside it, synced and renamed over it: on
 * any error the trace is left as it was. */
#ifndef HW_ANALYZER_COMPRESS_H
#define HW_ANALYZER_COMPRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define HW_COMPRESS_LEVEL 3 /* default zstd level (see README, Compact traces) */
/* at the default level, a group of chunks that shrinks less than 12 times
 * is compressed again at this level (numpy's records, imports: cols.h) */
#define HW_COMPRESS_POOR_LEVEL 10
#define HW_COMPRESS_POOR_RATE (32.0 * 1024 * 1024) /* record bytes a second of the run */

enum compress_result {
	COMPRESS_DONE, /* compressed and renamed over the trace */
	COMPRESS_ALREADY, /* nothing left to compress */
	COMPRESS_BUSY, /* a process still has the file open or mapped */
	COMPRESS_FAILED, /* could not read or write: the trace is left as it was */
};

struct compress_stats {
	uint64_t bytes_in, bytes_out;
	uint64_t chunks, chunks_raw; /* chunks compressed; blocks copied as they were */
	uint64_t chunks2; /* of chunks: compressed by the second thread */
	pid_t writer; /* COMPRESS_BUSY: the process */
};

/* Compresses the trace at PATH with zstd LEVEL. Every outcome but
 * COMPRESS_DONE and COMPRESS_ALREADY printed one line naming the file
 * (COMPRESS_BUSY: only when report_busy). */
enum compress_result compress_trace(const char *path, int level, bool report_busy,
				    struct compress_stats *st);

/* One trace of compress_traces: path in; r and st out. */
struct compress_job {
	const char *path;
	enum compress_result r;
	struct compress_stats st;
};

/* Compresses the n traces of jobs, each as compress_trace does: several at
 * once, one thread each, the largest first (the last one taken with a
 * second thread), as many as there are CPUs (one at a time with
 * HEAPWISE_ANALYZER_THREADS=1). Each trace is compressed as it would be on
 * its own, to the same bytes, but for the second pass of poorly shrinking
 * groups, which is decided for the traces together (written slowly
 * together: compress.c, poor_level_of); the messages of failures come in
 * the order they happen. */
void compress_traces(struct compress_job *jobs, size_t n, int level, bool report_busy);

struct trace;
/* Writes the compressed form of the open trace t to fd (from its current
 * offset). Returns 0 or the errno of the first failed write. */
int compress_to_fd(const struct trace *t, int fd, int level, struct compress_stats *st);

/* A process other than this one that has the file (dev, ino) open or mapped
 * (it may still write it), or 0. Reads /proc. */
pid_t file_writer(dev_t dev, ino_t ino);

/* "heapwise: compressed PATH: A -> B (Rx)" and a newline. */
void compress_print(FILE *f, const char *path, const struct compress_stats *st);

#endif
