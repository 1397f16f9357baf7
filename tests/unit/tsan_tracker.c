/* The shim's core under ThreadSanitizer: 8 threads record allocations and
 * frees (half of them of blocks another thread made) into one trace at once,
 * while chunks are claimed and the file grows; then the trailer and the
 * trim. TSan fails the test on any data race. The preloaded shim itself
 * cannot run under TSan (the traced program is not instrumented), so the core
 * is linked here directly. Native stacks are off: libunwind's own
 * thread-exit destructor (its per-thread cache) crashes inside TSan's mutex
 * interceptor when a thread ends (seen with gcc 12's libtsan and libunwind
 * 1.6.2), which says nothing about our code. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "modules.h"
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

#define THREADS 8
#define EVENTS 20000

static uintptr_t handoff[THREADS][EVENTS];
static atomic_int ready[THREADS];

static void *worker(void *arg)
{
	long me = (long)arg;
	struct thread_state *ts = tracker_enter();
	if (!ts)
		return (void *)1;
	for (long i = 0; i < EVENTS; i++) {
		uintptr_t addr = 0x100000000ull * (uintptr_t)(me + 1) + (uintptr_t)i * 64;
		tracker_alloc(ts, 0, (void *)addr, 64);
		if (i & 1)
			tracker_free(ts, 0, (void *)addr);
		else
			handoff[me][i] = addr;
	}
	atomic_store(&ready[me], 1);
	/* free the blocks the next thread kept */
	long other = (me + 1) % THREADS;
	while (!atomic_load(&ready[other]))
		usleep(100);
	for (long i = 0; i < EVENTS; i += 2)
		tracker_free(ts, 0, (void *)handoff[other][i]);
	tracker_leave();
	return NULL;
}

int main(void)
{
	char path[64];
	snprintf(path, sizeof(path), "/tmp/hw-tsan-%d.hwt", (int)getpid());
	unlink(path);
	setenv("HEAPWISE_CHUNK_SIZE", "16384", 1);
	setenv("HEAPWISE_NATIVE", "0", 1);
	if (!config_read())
		return 1;
	snprintf(g_config.output, sizeof(g_config.output), "%s", path);
	g_start_monotonic_ns = tracker_monotonic_ns();
	if (!writer_open(1, g_start_monotonic_ns, 0) || pthread_key_create(&g_thread_key, NULL))
		return 1;
	atomic_store(&g_run_state, RUN_ON);
	struct thread_state *ts = tracker_enter();
	modules_init(ts);
	tracker_leave();
	pthread_t t[THREADS];
	for (long i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, worker, (void *)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	tracker_write_trailer();
	writer_finish();
	unlink(path);
	printf("%d threads x %d events recorded\n", THREADS, EVENTS);
	return writer_ok() ? 0 : 1;
}
