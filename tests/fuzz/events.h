/* The fuzz targets' comparison of two readings of a trace. */
#ifndef HEAPWISE_FUZZ_EVENTS_H
#define HEAPWISE_FUZZ_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "reader.h"

/* Every event of t, in merge order, as bytes (a MARK's label by content),
 * then the definitions the merge passed (a STACK node's fields, the
 * others' tags, with the sequence numbers around them): two readings give
 * the same events when these bytes are equal. *len:
 * their count; free() the result. */
uint8_t *fuzz_events_of(const struct trace *t, size_t *len);

#endif
