/* LEB128 varints and zigzag for the trace records: the encoder (shim) and the
 * bounds-checked decoder (analyzer) live side by side so they cannot drift. */
#ifndef HEAPWISE_VARINT_H
#define HEAPWISE_VARINT_H

#include <stddef.h>
#include <stdint.h>

#define HW_VARINT_MAX 10 /* bytes for a 64-bit value */

/* Writes v at p (which must have HW_VARINT_MAX bytes of room); returns the
 * byte after the last one written. */
static inline uint8_t *hw_put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

static inline uint64_t hw_zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t hw_unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* Reads a varint from [*p, end). Returns 0 and advances *p on success; -1 when
 * the input ends inside the varint or the value does not fit in 64 bits. */
static inline int hw_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	const uint8_t *q = *p;
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (q >= end)
			return -1;
		uint8_t b = *q++;
		if (shift == 63 && b > 1)
			return -1;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*p = q;
			*out = v;
			return 0;
		}
	}
	return -1;
}

#endif
