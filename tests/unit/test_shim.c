/* preload core: the allocation-free formatter, configuration validation, and
 * trace file creation rules (exclusive, 0600, no symlinks, never overwrite). */
#include <fcntl.h>
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
#include <unistd.h>
#include <cmocka.h>

#include "config.h"
#include "log.h"
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
	writer_forget();
	/* an unwritable directory: refused, one message, no crash */
	snprintf(pattern, sizeof(pattern), "%s/missing/dir/%%p.hwt", dir);
	snprintf(g_config.output, sizeof(g_config.output), "%s", pattern);
	assert_false(writer_open(1, 2, 0));
	unlink(link);
	unlink(target);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(formatter),
		cmocka_unit_test(config_values),
		cmocka_unit_test(path_patterns),
		cmocka_unit_test(file_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
