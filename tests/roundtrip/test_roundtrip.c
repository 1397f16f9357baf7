/* Round trip: the shim's core (tracker + writer + stacks + modules) writes a
 * trace, the analyzer's reader and replay read it back. Every record kind the
 * shim writes is checked field by field, across several chunks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "analysis.h"
#include "config.h"
#include "modules.h"
#include "reader.h"
#include "stack_native.h"
#include "tracker.h"
#include "writer.h"

bool init_maybe(void)
{
	return atomic_load(&g_run_state) == RUN_ON;
}

void init_fork_child(bool drained)
{
	(void)drained; /* the process page is never set up here: never called */
}

static char path[128];

__attribute__((noinline)) static void record_here(struct thread_state *ts, uintptr_t addr)
{
	tracker_alloc(ts, HW_KIND_MALLOC, (void *)addr, 1000);
	__asm__ volatile("" ::: "memory");
}

static void writes_what_reader_reads(void **state)
{
	(void)state;
	unsetenv("HEAPWISE_NATIVE");
	setenv("HEAPWISE_CHUNK_SIZE", "16384", 1); /* small: force many chunks */
	assert_true(config_read());
	snprintf(path, sizeof(path), "/tmp/hw-roundtrip-%d.hwt", (int)getpid());
	unlink(path);
	snprintf(g_config.output, sizeof(g_config.output), "%s", path);
	g_start_monotonic_ns = tracker_monotonic_ns();
	assert_true(writer_open(1000, g_start_monotonic_ns, HW_HDR_NATIVE_STACKS));
	assert_int_equal(pthread_key_create(&g_thread_key, NULL), 0);
	atomic_store(&g_run_state, RUN_ON);
	struct thread_state *ts = tracker_enter();
	assert_non_null(ts);
	modules_init(ts);
	modules_set_self(0, 0); /* the core is linked into this binary: keep every frame */

	const int N = 20000;
	for (int i = 0; i < N; i++)
		record_here(ts, 0x100000 + (uintptr_t)i * 32);
	for (int i = 0; i < N; i += 2)
		tracker_free(ts, HW_KIND_MALLOC, (void *)(0x100000 + (uintptr_t)i * 32));
	uint64_t s = tracker_take_seq();
	tracker_realloc(ts, HW_KIND_MALLOC, s, (void *)0x100020, (void *)0x900000, 4000);
	tracker_alloc(ts, HW_KIND_MMAP, (void *)0x7f0000000000, 1 << 20);
	tracker_unmap(ts, (void *)0x7f0000000000, 4096);
	s = tracker_take_seq();
	tracker_remap(ts, s, (void *)0x7f0000001000, (1 << 20) - 4096, (void *)0x7f1000000000, 2 << 20);
	tracker_leave();
	tracker_write_trailer();
	writer_finish();
	assert_true(writer_ok());

	struct trace t;
	assert_int_equal(trace_open(path, &t), HW_OK);
	assert_true(t.nchunks > 3);
	assert_int_equal(t.hdr.pid, (uint64_t)getpid());
	assert_int_equal(t.hdr.flags, HW_HDR_NATIVE_STACKS);
	struct analysis a;
	assert_int_equal(analysis_run(&a, &t, NULL), HW_OK);
	assert_false(t.damaged);
	assert_true(a.clean_exit);
	assert_int_equal(a.kinds[HW_KIND_MALLOC].allocs, N + 1);
	assert_int_equal(a.kinds[HW_KIND_MALLOC].frees, N / 2 + 1);
	/* odd blocks live (minus the one realloc'd away) + the 4000-byte block */
	assert_int_equal(a.kinds[HW_KIND_MALLOC].live_bytes, (uint64_t)(N / 2 - 1) * 1000 + 4000);
	assert_int_equal(a.peaks[CLASS_HEAP].peak, (uint64_t)N * 1000);
	assert_int_equal(a.kinds[HW_KIND_MMAP].live_bytes, 2 << 20);
	assert_int_equal(a.unmatched_frees, 0);
	assert_int_equal(a.trailer_allocs, (uint64_t)N + 2); /* every kind: + the mmap */
	/* stacks: the leaf frame of the N allocations lies in this test binary */
	assert_true(a.nmodules > 1);
	const struct site *big = NULL;
	for (size_t i = 0; i < a.nsites; i++)
		if (a.sites[i].allocs == (uint64_t)N)
			big = &a.sites[i];
	assert_non_null(big);
	uint32_t c = stack_table_canon(&a.st, big->raw_stack);
	assert_int_not_equal(c, HW_NO_NODE);
	bool found = false;
	for (uint32_t x = c; x != HW_NO_NODE; x = a.st.cnodes[x].parent) {
		uint64_t ip = a.st.cnodes[x].frame;
		found |= ip > (uintptr_t)&record_here && ip < (uintptr_t)&record_here + 200;
	}
	assert_true(found);
	analysis_free(&a);
	trace_close(&t);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(writes_what_reader_reads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
