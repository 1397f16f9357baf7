/* Pairing (analyzer, between the merge and the replay): the work of the
 * replay that needs no heap block, done on the decoding thread when there is
 * one, so the replay (the slower of the two) has less to do. It gives every
 * allocation its callsite id (announced once with EV_SITE), marks each free
 * of a thread's last allocation (EVF_TEMP) and each allocation inside the
 * window (EVF_COUNTED), and keeps the mappings, whose events become EV_BORN
 * and EV_GONE of a callsite. The heap blocks stay with the replay. */
#ifndef HW_ANALYZER_PAIR_H
#define HW_ANALYZER_PAIR_H

#include <stdbool.h>
#include <stdint.h>

#include "merge.h"

struct pairing;

/* from_mark: blocks count from the first user marker with this label (NULL:
 * from the start). */
struct pairing *pairing_new(const char *from_mark);
void pairing_stage(void *ctx, const struct hw_event *in, size_t n, struct merge_out *out);
void pairing_free(struct pairing *p);

#endif
