/* analyzer/live_map.c: the live set keeps exact blocks through inserts,
 * deletes and growth, whether a block sits in a page leaf or in the exact
 * table (a sparse page, an unaligned address, 4 GiB or more, a huge site
 * index), gives emptied and thinned-out leaves back, and costs memory per
 * live block, not per page; mappings are cut into pieces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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
		assert_int_equal(out.site, (uint32_t)i);
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
	struct block it;
	while (live_map_iter(&m, &pos, &it)) {
		assert_int_equal(it.size, 20);
		n++;
	}
	assert_int_equal(n, 1);
	live_map_free(&m);
}

/* Blocks that do not fit a leaf slot and blocks that do, at the same
 * addresses: a put replaces whichever is there. */
static void misfits_and_replacement(void **state)
{
	(void)state;
	struct live_map m;
	live_map_init(&m);
	struct block old, out;
	struct block odd = {0x1008, 7, 3, 0, 1}; /* not 16-byte aligned */
	struct block big = {0x2000, (uint64_t)5 << 32, 4, 0, 1}; /* 20 GiB */
	struct block far = {0x3000, 64, LIVE_MAX_SITE + 5, 0, 1}; /* site too large */
	assert_false(live_map_put(&m, &odd, &old));
	assert_false(live_map_put(&m, &big, &old));
	assert_false(live_map_put(&m, &far, &old));
	assert_int_equal(m.count, 3);
	struct block small = {0x2000, 32, 9, 3, 0};
	assert_true(live_map_put(&m, &small, &old)); /* leaf block replaces the exact one */
	assert_int_equal(old.size, (uint64_t)5 << 32);
	assert_int_equal(old.site, 4);
	assert_true(live_map_put(&m, &big, &old)); /* and back */
	assert_int_equal(old.size, 32);
	assert_int_equal(old.kind, 3);
	assert_int_equal(old.counted, 0);
	assert_int_equal(m.count, 3);
	assert_true(live_map_take(&m, 0x3000, &out));
	assert_int_equal(out.site, LIVE_MAX_SITE + 5);
	assert_true(live_map_take(&m, 0x1008, &out));
	assert_int_equal(out.size, 7);
	assert_false(live_map_take(&m, 0x1000, &out));
	assert_true(live_map_take(&m, 0x2000, &out));
	assert_int_equal(out.size, (uint64_t)5 << 32);
	assert_int_equal(m.count, 0);
	live_map_free(&m);
}

/* Random puts and takes against a plain array: every block comes back with
 * its fields, and iteration sees exactly the live ones. Addresses `spacing`
 * bytes apart (every eighth one unaligned); phases that mostly put and
 * mostly take make dense pages fill and drain. */
static void against_array(size_t spacing, int steps)
{
	enum { N = 4096 };
	static struct block ref[N]; /* ref[i]: address i's block, size 0 = none */
	memset(ref, 0, sizeof(ref));
	struct live_map m;
	live_map_init(&m);
	uint64_t r = 88172645463325252ull;
	size_t live = 0;
	for (int step = 0; step < steps; step++) {
		r ^= r << 13, r ^= r >> 7, r ^= r << 17;
		size_t i = (size_t)(r % N);
		uint64_t addr = 0x7f0000000000ull + (uint64_t)i * spacing + (i % 8 == 0 ? 8 : 0);
		struct block out;
		unsigned puts = (step / 20000) % 2 ? 3 : 13; /* of 16 */
		if (r >> 60 < puts) {
			uint64_t size = (r >> 20) % 97 == 0 ? (uint64_t)1 << 33 : (r >> 24) % 5000 + 1;
			struct block b = {addr, size, (uint32_t)(r >> 32) % 100000, (uint8_t)(r % 5),
					  (uint8_t)(r >> 40 & 1)};
			bool had = live_map_put(&m, &b, &out);
			assert_int_equal(had, ref[i].size != 0);
			if (had) {
				assert_int_equal(out.size, ref[i].size);
				assert_int_equal(out.site, ref[i].site);
			} else {
				live++;
			}
			ref[i] = b;
		} else {
			bool had = live_map_take(&m, addr, &out);
			assert_int_equal(had, ref[i].size != 0);
			if (had) {
				assert_int_equal(out.addr, addr);
				assert_int_equal(out.size, ref[i].size);
				assert_int_equal(out.site, ref[i].site);
				assert_int_equal(out.kind, ref[i].kind);
				assert_int_equal(out.counted, ref[i].counted);
				ref[i].size = 0;
				live--;
			}
		}
		assert_int_equal(m.count, live);
	}
	size_t pos = 0, seen = 0;
	struct block it;
	while (live_map_iter(&m, &pos, &it)) {
		size_t i = (size_t)((it.addr & ~(uint64_t)15) - 0x7f0000000000ull) / spacing;
		assert_true(i < N);
		assert_int_equal(it.size, ref[i].size);
		seen++;
	}
	assert_int_equal(seen, live);
	if (spacing < 256)
		assert_true(m.promotions > 0); /* dense pages had leaves */
	else if (spacing > 4096)
		assert_int_equal(m.promotions, 0); /* a block a page: never */
	live_map_free(&m);
}

static void matches_a_plain_array(void **state)
{
	(void)state;
	against_array(4112, 200000);
	against_array(2064, 400000);
	against_array(48, 400000);
}

/* One live block on each of 200,000 pages costs no leaf (a leaf is 2 KiB:
 * that was 400 MiB for 200,000 blocks); pages filled densely get leaves,
 * and once all but one block of each is freed, the thin leaves go back. */
static void memory_follows_the_blocks(void **state)
{
	(void)state;
	struct live_map m;
	live_map_init(&m);
	struct block old, out;
	for (uint64_t p = 1; p <= 200000; p++) {
		struct block b = {p << 12, 100, 1, 0, 1};
		assert_false(live_map_put(&m, &b, &old));
	}
	assert_int_equal(m.count, 200000);
	assert_int_equal(m.npages, 0);
	assert_true(m.mask + 1 <= 4 * 200000); /* the exact table, at least a quarter full */
	for (uint64_t p = 1; p <= 200000; p++)
		assert_true(live_map_take(&m, p << 12, &out));
	/* 40,000 pages of 20 blocks each: leaves */
	const uint64_t base = (uint64_t)1 << 32;
	for (uint64_t p = 0; p < 40000; p++)
		for (uint64_t k = 0; k < 20; k++) {
			struct block b = {base + (p << 12) + k * 64, 64, (uint32_t)k, 0, 1};
			assert_false(live_map_put(&m, &b, &old));
		}
	assert_true(m.promotions >= 40000);
	assert_true(m.npages >= 40000);
	/* all but the first block of every page freed: the leaves go */
	for (uint64_t p = 0; p < 40000; p++)
		for (uint64_t k = 1; k < 20; k++)
			assert_true(live_map_take(&m, base + (p << 12) + k * 64, &out));
	assert_int_equal(m.count, 40000);
	assert_true(m.demotions > 0);
	assert_true(m.npages < 40000 - LIVE_THIN_SWEEP);
	for (uint64_t p = 0; p < 40000; p++) {
		assert_true(live_map_take(&m, base + (p << 12), &out));
		assert_int_equal(out.size, 64);
		assert_int_equal(out.site, 0);
	}
	assert_int_equal(m.count, 0);
	live_map_free(&m);
}

/* A live set that moves through memory does not keep the leaves of the pages
 * it left: memory follows the live set, not the addresses ever used. */
static void emptied_leaves_go(void **state)
{
	(void)state;
	struct live_map m;
	live_map_init(&m);
	struct block old, out;
	for (uint64_t round = 0; round < 64; round++) {
		for (uint64_t i = 0; i < 1000; i++) { /* 1000 pages, a block each */
			struct block b = {(round * 1000 + i + 1) << 12, 64, 1, 0, 1};
			assert_false(live_map_put(&m, &b, &old));
		}
		for (uint64_t i = 0; i < 1000; i++)
			assert_true(live_map_take(&m, (round * 1000 + i + 1) << 12, &out));
	}
	assert_int_equal(m.count, 0);
	/* 64,000 pages were used, never more than 1,000 at once */
	assert_true(m.npages <= 4000);
	assert_true(m.page_mask + 1 <= 8192);
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
	struct block a = {0x10000, 0x10000, 1, 1, 1}, r;
	range_map_add(&m, &a, on_cut, NULL);
	cut_bytes = cut_whole = 0;
	range_map_cut(&m, 0x14000, 0x1000, on_cut, NULL); /* hole in the middle */
	assert_int_equal(cut_bytes, 0x1000);
	assert_int_equal(cut_whole, 0);
	assert_int_equal(m.n, 2);
	assert_true(range_map_next(&m, 0, false, &r));
	assert_int_equal(r.size, 0x4000);
	assert_true(range_map_next(&m, r.addr, true, &r));
	assert_int_equal(r.addr, 0x15000);
	range_map_cut(&m, 0x0, 0x12000, on_cut, NULL); /* trims the front */
	assert_true(range_map_next(&m, 0, false, &r));
	assert_int_equal(r.addr, 0x12000);
	range_map_cut(&m, 0x0, 0x100000, on_cut, NULL); /* everything */
	assert_int_equal(m.n, 0);
	assert_false(range_map_next(&m, 0, false, &r));
	assert_int_equal(cut_bytes, 0x10000);
	assert_int_equal(cut_whole, 1); /* one range: its last piece went */
	range_map_free(&m);
}

static void split_range_goes_whole_once(void **state)
{
	(void)state;
	/* one range of 16 pages: every other page cut out (8 pieces), then
	 * the rest one page at a time in any order: whole once, at the last */
	struct range_map m = {0};
	struct block a = {0x100000, 0x10000, 1, 1, 1}, b = {0x200000, 0x4000, 2, 1, 1};
	range_map_add(&m, &a, on_cut, NULL);
	range_map_add(&m, &b, on_cut, NULL);
	cut_bytes = cut_whole = 0;
	for (uint64_t p = 1; p < 16; p += 2)
		range_map_cut(&m, 0x100000 + (p << 12), 0x1000, on_cut, NULL);
	assert_int_equal(m.n, 9);
	assert_int_equal(cut_whole, 0);
	for (uint64_t p = 14;; p -= 2) {
		range_map_cut(&m, 0x100000 + (p << 12), 0x1000, on_cut, NULL);
		assert_int_equal(cut_whole, p == 0);
		if (!p)
			break;
	}
	/* pieces of a split piece: a hole in a piece, then all at once */
	range_map_cut(&m, 0x201000, 0x1000, on_cut, NULL);
	range_map_cut(&m, 0x202800, 0x400, on_cut, NULL);
	assert_int_equal(m.n, 3);
	range_map_add(&m, &(struct block){0x1ff000, 0x6000, 3, 1, 1}, on_cut, NULL);
	assert_int_equal(cut_whole, 2); /* b's pieces went together: one */
	assert_int_equal(m.n, 1);
	assert_int_equal(cut_bytes, 0x10000 + 0x4000); /* every byte of a and b, once */
	range_map_free(&m);
}

/* Random mappings, unmappings and partial unmappings against a page bitmap:
 * the same bytes live, the same pieces cut. */
static void ranges_match_a_page_model(void **state)
{
	(void)state;
	enum { PAGES = 4096 };
	static uint32_t owner[PAGES]; /* mapping number + 1, 0 = free */
	memset(owner, 0, sizeof(owner));
	struct range_map m = {0};
	uint64_t rng = 42;
	for (uint32_t op = 1; op < 40000; op++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t at = (uint32_t)(rng >> 33) % PAGES, len = 1 + (uint32_t)(rng >> 20) % 64;
		if (at + len > PAGES)
			len = PAGES - at;
		uint64_t model = 0;
		for (uint32_t p = at; p < at + len; p++)
			model += owner[p] ? 4096 : 0;
		cut_bytes = 0;
		if (rng & 1) {
			struct block b = {(uint64_t)at << 12, (uint64_t)len << 12, op, 1, 1};
			range_map_add(&m, &b, on_cut, NULL);
			for (uint32_t p = at; p < at + len; p++)
				owner[p] = op;
		} else {
			range_map_cut(&m, (uint64_t)at << 12, (uint64_t)len << 12, on_cut, NULL);
			for (uint32_t p = at; p < at + len; p++)
				owner[p] = 0;
		}
		assert_int_equal(cut_bytes, model);
	}
	/* the ranges in order cover exactly the owned pages, each one's pages */
	struct block r;
	uint64_t pos = 0, pages = 0;
	bool first = true;
	while (range_map_next(&m, pos, !first, &r)) {
		first = false;
		for (uint64_t p = r.addr >> 12; p < (r.addr + r.size) >> 12; p++)
			assert_int_equal(owner[p], r.site);
		pages += r.size >> 12;
		pos = r.addr;
	}
	uint64_t owned = 0;
	for (uint32_t p = 0; p < PAGES; p++)
		owned += owner[p] != 0;
	assert_int_equal(pages, owned);
	range_map_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(put_take_many),
		cmocka_unit_test(replace_reports_old),
		cmocka_unit_test(misfits_and_replacement),
		cmocka_unit_test(matches_a_plain_array),
		cmocka_unit_test(emptied_leaves_go),
		cmocka_unit_test(memory_follows_the_blocks),
		cmocka_unit_test(ranges_split_and_trim),
		cmocka_unit_test(split_range_goes_whole_once),
		cmocka_unit_test(ranges_match_a_page_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
