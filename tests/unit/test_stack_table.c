/* analyzer/stack_table.c: equal paths defined by different threads share one
 * canonical id; missing parents and hostile cycles end a path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "heapwise/trace_format.h"
#include "stack_table.h"

static void dedup_across_threads(void **state)
{
	(void)state;
	struct stack_table st;
	stack_table_init(&st);
	/* thread A: 1 = main, 2 = main>f ; thread B: 7 = main, 9 = main>f, 10 = main>g */
	stack_table_add(&st, 1, 0, HW_FRAME_NATIVE, 0x100, 1);
	stack_table_add(&st, 2, 1, HW_FRAME_NATIVE, 0x200, 2);
	stack_table_add(&st, 7, 0, HW_FRAME_NATIVE, 0x100, 3);
	stack_table_add(&st, 9, 7, HW_FRAME_NATIVE, 0x200, 4);
	stack_table_add(&st, 10, 7, HW_FRAME_NATIVE, 0x300, 5);
	stack_table_add(&st, 10, 1, HW_FRAME_NATIVE, 0x999, 6); /* redefinition ignored */
	stack_table_canonicalize(&st);
	assert_int_equal(stack_table_canon(&st, 2), stack_table_canon(&st, 9));
	assert_int_equal(stack_table_canon(&st, 1), stack_table_canon(&st, 7));
	assert_int_not_equal(stack_table_canon(&st, 10), stack_table_canon(&st, 9));
	assert_int_equal(st.ncnodes, 3);
	uint32_t c = stack_table_canon(&st, 10);
	assert_int_equal(st.cnodes[c].frame, 0x300);
	assert_int_equal(st.cnodes[st.cnodes[c].parent].frame, 0x100);
	assert_int_equal(stack_table_canon(&st, 0), HW_NO_NODE);
	assert_int_equal(stack_table_canon(&st, 12345), HW_NO_NODE);
	stack_table_free(&st);
}

static void cycles_and_missing_parents(void **state)
{
	(void)state;
	struct stack_table st;
	stack_table_init(&st);
	stack_table_add(&st, 5, 6, HW_FRAME_NATIVE, 0x5, 1);
	stack_table_add(&st, 6, 5, HW_FRAME_NATIVE, 0x6, 1); /* 5 <-> 6 */
	stack_table_add(&st, 8, 77, HW_FRAME_NATIVE, 0x8, 1); /* 77 never defined */
	stack_table_canonicalize(&st);
	assert_int_not_equal(stack_table_canon(&st, 5), HW_NO_NODE);
	assert_int_not_equal(stack_table_canon(&st, 6), HW_NO_NODE);
	uint32_t c = stack_table_canon(&st, 8);
	assert_int_equal(st.cnodes[c].parent, HW_NO_NODE);
	/* walking up from any node terminates */
	for (uint32_t id = 5; id <= 6; id++) {
		int steps = 0;
		for (uint32_t x = stack_table_canon(&st, id); x != HW_NO_NODE; x = st.cnodes[x].parent)
			assert_true(++steps < 10);
	}
	stack_table_free(&st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(dedup_across_threads),
		cmocka_unit_test(cycles_and_missing_parents),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
