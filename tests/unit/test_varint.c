/* varint.h: encoder and bounds-checked decoder agree; bad input is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "heapwise/varint.h"

static void roundtrip_values(void **state)
{
	(void)state;
	const uint64_t values[] = {0, 1, 127, 128, 300, 16383, 16384, UINT32_MAX, 1ull << 56,
				   UINT64_MAX};
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		uint8_t buf[HW_VARINT_MAX];
		uint8_t *end = hw_put_varint(buf, values[i]);
		const uint8_t *p = buf;
		uint64_t out;
		assert_int_equal(hw_get_varint(&p, end, &out), 0);
		assert_true(p == end);
		assert_true(out == values[i]);
	}
}

static void zigzag(void **state)
{
	(void)state;
	const int64_t values[] = {0, -1, 1, -64, 64, INT64_MIN, INT64_MAX};
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
		assert_true(hw_unzigzag(hw_zigzag(values[i])) == values[i]);
	assert_int_equal(hw_zigzag(-1), 1);
	assert_int_equal(hw_zigzag(1), 2);
}

static void truncated_and_overlong(void **state)
{
	(void)state;
	uint8_t buf[12];
	uint8_t *end = hw_put_varint(buf, 1ull << 40);
	const uint8_t *p = buf;
	uint64_t out;
	assert_int_equal(hw_get_varint(&p, end - 1, &out), -1); /* cut short */
	for (int i = 0; i < 11; i++)
		buf[i] = 0xff;
	p = buf;
	assert_int_equal(hw_get_varint(&p, buf + 11, &out), -1); /* more than 64 bits */
	buf[9] = 0x02; /* 10th byte may only carry one bit */
	p = buf;
	assert_int_equal(hw_get_varint(&p, buf + 10, &out), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(roundtrip_values),
		cmocka_unit_test(zigzag),
		cmocka_unit_test(truncated_and_overlong),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
