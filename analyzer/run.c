/* `heapwise run` (analyzer, front): runs a command with the shim preloaded and
 * exits with the command's status. The shim is looked for beside the CLI in
 * the build tree, then in the install directory. */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <time.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "commands.h"
#include "err.h"
#include "heapwise/trace_format.h"
#include "run_child.h"
#include "util.h"

#ifndef HW_LIBDIR
#define HW_LIBDIR "/usr/local/lib"
#endif

static const char run_usage[] =
	"usage: heapwise run [-o PATH] [--native|--no-native] [--no-follow] -- CMD [ARG...]\n"
	"  -o PATH        trace file (%p = pid); default heapwise.<program>.<pid>.hwt\n"
	"  stacks: by default a thread running Python records its Python frames, and a\n"
	"  thread without Python frames its native stack\n"
	"  --native       the whole native stack as well, with the Python frames\n"
	"                 spliced in where the interpreter ran them (slower)\n"
	"  --no-native    Python frames only, no native frames (fastest; nothing for\n"
	"                 threads without Python)\n"
	"  --no-follow    do not trace child processes\n";

static bool readable(const char *p)
{
	return access(p, R_OK) == 0;
}

/* Returns a malloc'd path to libheapwise.so or NULL. */
static char *find_shim(void)
{
	const char *env = getenv("HEAPWISE_LIBRARY");
	if (env && *env)
		return readable(env) ? strdup(env) : NULL;
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = 0;
		char *dir = dirname(self);
		const char *rel[] = {"/../preload/libheapwise.so", "/../lib/libheapwise.so",
				     "/../lib/x86_64-linux-gnu/libheapwise.so"};
		for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
			char cand[PATH_MAX];
			snprintf(cand, sizeof(cand), "%s%s", dir, rel[i]);
			char *real = realpath(cand, NULL);
			if (real && readable(real))
				return real;
			free(real);
		}
	}
	const char *installed = HW_LIBDIR "/libheapwise.so";
	return readable(installed) ? strdup(installed) : NULL;
}

/* The pid in a trace's header (0 when it cannot be read). */
static uint64_t trace_pid(const char *path)
{
	struct hw_file_header h;
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	size_t n = fread(&h, 1, sizeof(h), f);
	fclose(f);
	return n == sizeof(h) && !memcmp(h.magic, HW_MAGIC, 8) ? h.pid : 0;
}

/* Lists the traces this run made: names that fit the output pattern (%p =
 * any pid, and the "-N" a shim adds when an exec'd image reuses its pid's
 * name), written since the run started; the root process's first. */
static void report_traces(const char *output, pid_t pid, time_t started)
{
	char pattern[PATH_MAX], dir[PATH_MAX];
	const char *src = output ? output : "heapwise.*.%p.hwt";
	size_t j = 0;
	for (const char *p = src; *p && j + 8 < sizeof(pattern); p++) {
		if (p[0] == '%' && p[1] == 'p') {
			memcpy(pattern + j, "[0-9]*", 6);
			j += 6;
			p++;
		} else if (p[0] == '%' && p[1] == '%') {
			pattern[j++] = '%';
			p++;
		} else {
			pattern[j++] = *p;
		}
	}
	pattern[j] = 0;
	snprintf(dir, sizeof(dir), "%s", pattern);
	char *slash = strrchr(dir, '/');
	const char *name_pat = pattern;
	if (slash) {
		*slash = 0;
		name_pat = pattern + (slash - dir) + 1;
		if (!dir[0])
			strcpy(dir, "/");
	} else {
		strcpy(dir, ".");
	}
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;
	while ((e = readdir(d))) {
		struct stat st;
		char full[PATH_MAX * 2];
		snprintf(full, sizeof(full), "%s/%s", dir, e->d_name);
		if (fnmatch(name_pat, e->d_name, 0) || stat(full, &st) || st.st_mtime < started)
			continue;
		HW_GROW(names, n, cap);
		names[n++] = strdup(slash ? full : e->d_name);
	}
	closedir(d);
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < n; i++) {
			bool root = trace_pid(names[i]) == (uint64_t)pid;
			if (root == (pass == 0))
				fprintf(stderr, "heapwise: trace written to %s%s\n", names[i],
					root ? "" : " (child process)");
		}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{"output", required_argument, NULL, 'o'},
		{"native", no_argument, NULL, 'N'},
		{"no-native", no_argument, NULL, 'n'},
		{"no-follow", no_argument, NULL, 'F'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0},
	};
	const char *output = NULL;
	const char *native = NULL;
	bool follow = true;
	int c;
	optind = 1;
	while ((c = err_getopt("run", argc, argv, "+o:h", opts)) != -1) {
		switch (c) {
		case 'o':
			output = optarg;
			break;
		case 'N':
			native = "1";
			break;
		case 'n':
			native = "0";
			break;
		case 'F':
			follow = false;
			break;
		case 'h':
			fputs(run_usage, stdout);
			return 0;
		default:
			fputs(run_usage, stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		err_print("run: no command given");
		fputs(run_usage, stderr);
		return 2;
	}
	if (output && !*output) {
		err_print("run: -o needs a path");
		return 2;
	}
	if (output && !strstr(output, "%p") && access(output, F_OK) == 0) {
		err_print("run: %s exists; heapwise never overwrites a trace (remove it or use %%p)",
			  output);
		return 2;
	}
	char *shim = find_shim();
	if (!shim) {
		err_print("run: cannot find libheapwise.so (looked beside %s and in %s); set HEAPWISE_LIBRARY",
			  "the heapwise binary", HW_LIBDIR);
		return 2;
	}
	char **cmd = &argv[optind];
	time_t started = time(NULL) - 1;

	struct run_child rc;
	fflush(NULL);
	run_child_prepare(&rc);
	pid_t pid = fork();
	if (pid < 0) {
		err_print("run: fork failed: %s", strerror(errno));
		return 2;
	}
	if (pid == 0) {
		run_child_restore(&rc);
		const char *old = getenv("LD_PRELOAD");
		size_t len = strlen(shim) + (old ? strlen(old) + 1 : 0) + 1;
		char *pre = xmalloc(len);
		snprintf(pre, len, "%s%s%s", shim, old && *old ? ":" : "", old && *old ? old : "");
		setenv("LD_PRELOAD", pre, 1);
		if (output)
			setenv("HEAPWISE_OUTPUT", output, 1);
		if (native)
			setenv("HEAPWISE_NATIVE", native, 1);
		setenv("HEAPWISE_FOLLOW", follow ? "1" : "0", 1);
		char pidbuf[32];
		snprintf(pidbuf, sizeof(pidbuf), "%d", (int)getpid());
		setenv("HEAPWISE_ROOT_PID", pidbuf, 1);
		execvp(cmd[0], cmd);
		int e = errno;
		fprintf(stderr, "heapwise: error: run: cannot execute %s: %s\n", cmd[0], strerror(e));
		_exit(e == ENOENT ? 127 : 126);
	}
	int status = run_child_wait(&rc, pid);
	free(shim);
	report_traces(output, pid, started);
	run_child_end_like(status);
}
