/* preload core: the allocation-free formatter, configuration validation, and
 * trace file creation rules (exclusive, 0600, no symlinks, never overwrite). */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "log.h"
#include "sample.h"
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

static void formatter(void **state)
{
	(void)state;
	char b[64];
	log_snprintf(b, sizeof(b), "%s=%d %u %zu %llu %x %%", "a", -42, 7u, (size_t)9,
		     18446744073709551615ull, 255u);
	assert_string_equal(b, "a=-42 7 9 18446744073709551615 ff %");
	log_snprintf(b, 8, "%s", "truncated text");
	assert_string_equal(b, "truncat");
	long long min = -9223372036854775807ll - 1;
	log_snprintf(b, sizeof(b), "%lld", min);
	assert_string_equal(b, "-9223372036854775808");
}

static void config_values(void **state)
{
	(void)state;
	unsetenv("HEAPWISE_OUTPUT");
	setenv("HEAPWISE_NATIVE", "no", 1);
	setenv("HEAPWISE_DEPTH", "12", 1);
	setenv("HEAPWISE_CHUNK_SIZE", "32768", 1);
	assert_true(config_read());
	assert_int_equal(g_config.native, NATIVE_NONE);
	assert_int_equal(g_config.depth, 12);
	assert_int_equal(g_config.chunk_size, 32768);
	setenv("HEAPWISE_DEPTH", "0", 1);
	assert_false(config_read());
	setenv("HEAPWISE_DEPTH", "12x", 1);
	assert_false(config_read());
	unsetenv("HEAPWISE_DEPTH");
	setenv("HEAPWISE_CHUNK_SIZE", "40000", 1); /* not a power of two */
	assert_false(config_read());
	unsetenv("HEAPWISE_CHUNK_SIZE");
	setenv("HEAPWISE_NATIVE", "maybe", 1);
	assert_false(config_read());
	unsetenv("HEAPWISE_NATIVE");
	assert_true(config_read());
	assert_int_equal(g_config.native, NATIVE_AUTO);
	setenv("HEAPWISE_NATIVE", "auto", 1);
	assert_true(config_read());
	assert_int_equal(g_config.native, NATIVE_AUTO);
	setenv("HEAPWISE_NATIVE", "1", 1);
	assert_true(config_read());
	assert_int_equal(g_config.native, NATIVE_FULL);
	unsetenv("HEAPWISE_NATIVE");
	setenv("HEAPWISE_MANIFEST", "relative/list", 1); /* each process has its own cwd */
	assert_false(config_read());
	setenv("HEAPWISE_MANIFEST", "/tmp/list", 1);
	assert_true(config_read());
	assert_string_equal(g_config.manifest, "/tmp/list");
	unsetenv("HEAPWISE_MANIFEST");
}

static void path_patterns(void **state)
{
	(void)state;
	char p[64];
	assert_true(writer_expand_path(p, sizeof(p), "", "prog", 12));
	assert_string_equal(p, "heapwise.prog.12.hwt");
	assert_true(writer_expand_path(p, sizeof(p), "/x/%p/100%%.hwt", "prog", 7));
	assert_string_equal(p, "/x/7/100%.hwt");
	assert_false(writer_expand_path(p, 8, "/long/path/%p", "prog", 7));
}

static void file_rules(void **state)
{
	(void)state;
	char dir[] = "/tmp/hw-shim-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char target[128], link[128], pattern[160];
	snprintf(target, sizeof(target), "%s/victim", dir);
	snprintf(link, sizeof(link), "%s/t.hwt", dir);
	int fd = open(target, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "keep", 4), 4);
	close(fd);
	assert_int_equal(symlink(target, link), 0);
	assert_true(config_read());
	snprintf(g_config.output, sizeof(g_config.output), "%s", link);
	/* the symlinked name is taken: a new name is chosen, the target untouched */
	assert_true(writer_open(1, 2, 0));
	char expect[160];
	snprintf(expect, sizeof(expect), "%s/t-2.hwt", dir);
	assert_string_equal(writer_path(), expect);
	struct stat st;
	assert_int_equal(stat(writer_path(), &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(lstat(link, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	assert_int_equal(stat(target, &st), 0);
	assert_int_equal(st.st_size, 4);
	unlink(writer_path());
	writer_forget(true);
	/* an unwritable directory: refused, one message, no crash */
	snprintf(pattern, sizeof(pattern), "%s/missing/dir/%%p.hwt", dir);
	snprintf(g_config.output, sizeof(g_config.output), "%s", pattern);
	assert_false(writer_open(1, 2, 0));
	unlink(link);
	unlink(target);
	rmdir(dir);
}

static uint64_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* The set of sampled blocks: exact answers once nobody changes it, growth,
 * deletion by backward shift (entries behind a removed one stay reachable),
 * and the filter in front of it back to empty at the end. */
static atomic_int g_left_done;

static void *leave_chunk(void *lease)
{
	writer_chunk_left(lease, 10);
	atomic_store(&g_left_done, 1);
	return NULL;
}

/* A fork holds the writer's locks (atfork prepare to parent or child): a
 * thread remembering the chunk it left waits, so that a child never gets
 * the list halfway through its growth (a fork child crashed on it in
 * about one run in ten of forkstorm). */
static void fork_holds_writer_locks(void **state)
{
	(void)state;
	char dir[] = "/tmp/hw-shim-XXXXXX";
	assert_non_null(mkdtemp(dir));
	assert_true(config_read());
	snprintf(g_config.output, sizeof(g_config.output), "%s/t.hwt", dir);
	assert_true(writer_open(1, 2, 0));
	struct chunk_lease l = {0};
	assert_true(writer_claim_chunk(1, 2, CHUNK_FULL, &l));
	atomic_store(&g_left_done, 0);
	writer_fork_prepare();
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, leave_chunk, &l), 0);
	nanosleep(&(struct timespec){.tv_nsec = 100 * 1000 * 1000}, NULL);
	assert_int_equal(atomic_load(&g_left_done), 0);
	writer_fork_parent();
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(atomic_load(&g_left_done), 1);
	writer_release_chunk(&l);
	unlink(writer_path());
	writer_forget(true);
	rmdir(dir);
}

static void sampled_set(void **state)
{
	(void)state;
	enum { N = 20000 };
	static uint64_t addr[N];
	for (uint64_t i = 0; i < N; i++) {
		/* malloc-like: 16-byte aligned, distinct, spread over 64 MiB */
		addr[i] = 0x7f0000000000ull + ((i * 2654435761u) & ((1u << 22) - 1)) * 16;
		assert_true(sample_set_add((void *)addr[i]));
	}
	for (int i = 0; i < N; i++)
		assert_true(sample_maybe_sampled((void *)addr[i]));
	for (int i = 0; i < N; i += 2)
		assert_true(sample_set_take((void *)addr[i]));
	for (int i = 0; i < N; i++) {
		assert_int_equal(sample_probe((void *)addr[i]), i % 2 == 1);
		if (i % 2 == 0)
			assert_false(sample_set_take((void *)addr[i]));
	}
	for (int i = 1; i < N; i += 2)
		assert_true(sample_set_take((void *)addr[i]));
	for (size_t i = 0; i < sizeof(g_sample_filter); i++)
		assert_int_equal(g_sample_filter[i], 0);
	for (int i = 0; i < N; i++)
		assert_false(sample_maybe_sampled((void *)addr[i]));
}

/* Readers never miss a present block while other threads add and remove
 * theirs (removals move entries back over the reader's probe). */
struct churn_arg {
	uint64_t base;
	_Atomic bool *stop;
	int missed;
};

static void *set_churn(void *p)
{
	struct churn_arg *a = p;
	uint64_t x = a->base | 1;
	uint64_t mine[64];
	for (int i = 0; i < 64; i++) {
		mine[i] = a->base + (uint64_t)i * 16;
		sample_set_add((void *)mine[i]);
	}
	for (int round = 0; round < 2000; round++) {
		for (int i = 0; i < 64; i++)
			a->missed += !sample_maybe_sampled((void *)mine[i]);
		int k = (int)(rnd(&x) % 64);
		sample_set_take((void *)mine[k]);
		mine[k] = a->base + (uint64_t)(64 + round) * 16; /* a new one */
		sample_set_add((void *)mine[k]);
	}
	for (int i = 0; i < 64; i++)
		sample_set_take((void *)mine[i]);
	return NULL;
}

static void sampled_set_threads(void **state)
{
	(void)state;
	_Atomic bool stop = false;
	struct churn_arg args[4];
	pthread_t t[4];
	for (int i = 0; i < 4; i++) {
		args[i] = (struct churn_arg){0x100000000000ull * (uint64_t)(i + 1), &stop, 0};
		pthread_create(&t[i], NULL, set_churn, &args[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(args[i].missed, 0);
	}
}

/* The countdown's draws: exponential with the configured mean. */
static void sample_draws(void **state)
{
	(void)state;
	uint64_t saved = g_sample_interval;
	g_sample_interval = 4096;
	hw_tls.sample_left = 0;
	hw_tls.sample_rng = 0;
	/* 64-byte allocations: one sample per 64 of them on average (about
	 * 62,500 samples: the mean is within 3% but for 1 in 10^12 runs) */
	long taken = 0, n = 4000000;
	for (long i = 0; i < n; i++)
		taken += sample_take(64);
	double mean = (double)n * 64 / (double)taken;
	assert_true(mean > 4096 * 0.97 && mean < 4096 * 1.03);
	/* an allocation of the interval's size: sampled 1 - 1/e of the time */
	taken = 0;
	for (long i = 0; i < 200000; i++)
		taken += sample_take(4096);
	double p = (double)taken / 200000;
	assert_true(p > 0.632 - 0.01 && p < 0.632 + 0.01); /* 10 standard deviations */
	g_sample_interval = saved;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(formatter),
		cmocka_unit_test(config_values),
		cmocka_unit_test(path_patterns),
		cmocka_unit_test(file_rules),
		cmocka_unit_test(fork_holds_writer_locks),
		cmocka_unit_test(sampled_set),
		cmocka_unit_test(sampled_set_threads),
		cmocka_unit_test(sample_draws),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
