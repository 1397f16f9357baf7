/* analyzer/live_map.c: the live set keeps exact blocks through inserts,
 * deletes with probe-chain repair, growth; mappings are cut into pieces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "live_map.h"

static void put_take_many(void **state)
{
	(void)state;
	struct live_map m;
	live_map_init(&m);
	struct block old;
	for (uint64_t i = 1; i <= 100000; i++) {
		struct block b = {i * 16, i, (uint32_t)i, 0, 1};
		assert_false(live_map_put(&m, &b, &old));
	}
	assert_int_equal(m.count, 100000);
	for (uint64_t i = 1; i <= 100000; i += 2) {
		struct block out;
		assert_true(live_map_take(&m, i * 16, &out));
		assert_int_equal(out.size, i);
	}
	assert_int_equal(m.count, 50000);
	for (uint64_t i = 2; i <= 100000; i += 2) {
		struct block out;
		assert_true(live_map_take(&m, i * 16, &out));
		assert_int_equal(out.stack, (uint32_t)i);
	}
	struct block out;
	assert_false(live_map_take(&m, 16, &out));
	assert_int_equal(m.count, 0);
	live_map_free(&m);
}

static void replace_reports_old(void **state)
{
	(void)state;
	struct live_map m;
	live_map_init(&m);
	struct block a = {4096, 10, 1, 0, 1}, b = {4096, 20, 2, 0, 1}, old;
	assert_false(live_map_put(&m, &a, &old));
	assert_true(live_map_put(&m, &b, &old));
	assert_int_equal(old.size, 10);
	size_t pos = 0, n = 0;
	const struct block *it;
	while ((it = live_map_iter(&m, &pos))) {
		assert_int_equal(it->size, 20);
		n++;
	}
	assert_int_equal(n, 1);
	live_map_free(&m);
}

static uint64_t cut_bytes, cut_whole;

static void on_cut(void *ctx, const struct block *piece, bool whole)
{
	(void)ctx;
	cut_bytes += piece->size;
	cut_whole += whole;
}

static void ranges_split_and_trim(void **state)
{
	(void)state;
	struct range_map m = {0};
	struct block a = {0x10000, 0x10000, 1, 1, 1};
	range_map_add(&m, &a, on_cut, NULL);
	cut_bytes = cut_whole = 0;
	range_map_cut(&m, 0x14000, 0x1000, on_cut, NULL); /* hole in the middle */
	assert_int_equal(cut_bytes, 0x1000);
	assert_int_equal(cut_whole, 0);
	assert_int_equal(m.n, 2);
	assert_int_equal(m.r[0].size, 0x4000);
	assert_int_equal(m.r[1].addr, 0x15000);
	range_map_cut(&m, 0x0, 0x12000, on_cut, NULL); /* trims the front */
	assert_int_equal(m.r[0].addr, 0x12000);
	range_map_cut(&m, 0x0, 0x100000, on_cut, NULL); /* everything */
	assert_int_equal(m.n, 0);
	assert_int_equal(cut_bytes, 0x10000);
	assert_int_equal(cut_whole, 2);
	range_map_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(put_take_many),
		cmocka_unit_test(replace_reports_old),
		cmocka_unit_test(ranges_split_and_trim),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
