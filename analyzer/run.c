/* `heapwise run` (analyzer, front): runs a command with the shim preloaded and
 * exits with the command's status. The shim is looked for beside the CLI in
 * the build tree, then in the install directory. */
#include <errno.h>
#include <fcntl.h>
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
#include "compress.h"
#include "err.h"
#include "heapwise/trace_format.h"
#include "run_child.h"
#include "util.h"

#ifndef HW_LIBDIR
#define HW_LIBDIR "/usr/local/lib"
#endif

static const char run_usage[] =
	"usage: heapwise run [-o PATH] [--native|--no-native] [--no-follow] [--no-compress]\n"
	"                    [--sample SIZE] -- CMD [ARG...]\n"
	"  -o PATH        trace file (%p = pid); default heapwise.<program>.<pid>.hwt;\n"
	"                 relative to this directory in every process of the tree\n"
	"  stacks: by default a thread running Python records its Python frames, and a\n"
	"  thread without Python frames its native stack\n"
	"  --native       the whole native stack as well, with the Python frames\n"
	"                 spliced in where the interpreter ran them (slower)\n"
	"  --no-native    Python frames only, no native frames (fastest; nothing for\n"
	"                 threads without Python)\n"
	"  --no-follow    do not trace child processes\n"
	"  --no-compress  keep the traces raw (by default, when CMD exits, each trace\n"
	"                 no process still has open is compressed, as heapwise compress)\n"
	"  --sample SIZE  record about one allocation per SIZE bytes allocated (Poisson\n"
	"                 sampling by bytes, such as 512K): reports are estimates\n";

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

/* One trace the command's tree wrote, as its header describes it. */
struct listed {
	const char *path;
	uint64_t pid;
	char prog[64]; /* base name of its argv[0], in the display form */
};

/* Reads PATH's header into T; false unless PATH is a regular file that starts
 * like a trace. */
static bool read_listed(const char *path, struct listed *t)
{
	struct stat st;
	if (lstat(path, &st) || !S_ISREG(st.st_mode))
		return false; /* never open a device or a FIFO */
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return false;
	uint8_t buf[HW_HEADER_SIZE];
	ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? pread(fd, buf, sizeof(buf), 0) : -1;
	close(fd);
	struct hw_file_header h;
	if (n < (ssize_t)sizeof(h))
		return false;
	memcpy(&h, buf, sizeof(h));
	if (memcmp(h.magic, HW_MAGIC, 8))
		return false;
	t->path = path;
	t->pid = h.pid;
	size_t text = (size_t)n - HW_HEADER_FIXED_SIZE;
	size_t cl = h.cmdline_len < text ? h.cmdline_len : text;
	const char *argv0 = (const char *)buf + HW_HEADER_FIXED_SIZE;
	size_t len = strnlen(argv0, cl);
	const char *base = memrchr(argv0, '/', len);
	base = base ? base + 1 : argv0;
	char raw[sizeof(t->prog)];
	snprintf(raw, sizeof(raw), "%.*s", (int)(len - (size_t)(base - argv0)), base);
	text_escape(t->prog, sizeof(t->prog), raw);
	return true;
}

/* Prints "trace written to PATH (NOTE)", PATH relative to the working
 * directory when it is inside it. */
static void print_listed(const struct listed *t, const char *cwd, const char *note)
{
	size_t cl = strlen(cwd);
	const char *shown = t->path;
	if (cl > 1 && !strncmp(shown, cwd, cl) && shown[cl] == '/')
		shown += cl + 1;
	fputs("heapwise: trace written to ", stderr);
	text_str(stderr, shown);
	fprintf(stderr, "%s%s%s\n", note ? " (" : "", note ? note : "", note ? ")" : "");
}

/* Lists the traces the command's process tree wrote, each of which the shim
 * named in the manifest FD when it created it: the command's own first (the
 * image it last exec'd when it exec'd in place, as `env` or `sh -c 'exec ...'`
 * do, then the images before it), then its descendants', in the order they
 * started. */
/* Compresses the listed traces (after the command exited): each that no
 * process still has open or mapped, a child that outlived the command say;
 * those are named with what to do later. */
static void compress_listed(const struct listed *t, size_t n, const char *cwd)
{
	uint64_t in = 0, out = 0;
	size_t done = 0;
	const char *one = NULL;
	struct compress_stats one_st;
	struct compress_job *jobs = xcalloc(n ? n : 1, sizeof(*jobs));
	for (size_t i = 0; i < n; i++)
		jobs[i].path = t[i].path;
	compress_traces(jobs, n, HW_COMPRESS_LEVEL, false);
	for (size_t i = 0; i < n; i++) {
		struct compress_stats st = jobs[i].st;
		switch (jobs[i].r) {
		case COMPRESS_DONE:
			in += st.bytes_in;
			out += st.bytes_out;
			one = t[i].path;
			one_st = st;
			done++;
			break;
		case COMPRESS_BUSY: {
			size_t cl = strlen(cwd);
			const char *shown = t[i].path;
			if (cl > 1 && !strncmp(shown, cwd, cl) && shown[cl] == '/')
				shown += cl + 1;
			fputs("heapwise: ", stderr);
			text_str(stderr, shown);
			fprintf(stderr, " is still open in process %d: left uncompressed (heapwise compress it once that process has ended)\n",
				(int)st.writer);
			break;
		}
		default: /* compress_trace said why */
			break;
		}
	}
	free(jobs);
	if (done == 1) {
		size_t cl = strlen(cwd);
		const char *shown = one;
		if (cl > 1 && !strncmp(shown, cwd, cl) && shown[cl] == '/')
			shown += cl + 1;
		compress_print(stderr, shown, &one_st);
	} else if (done > 1) {
		struct compress_stats all = {.bytes_in = in, .bytes_out = out};
		char what[64];
		snprintf(what, sizeof(what), "%zu traces", done);
		compress_print(stderr, what, &all);
	}
}

static void report_traces(int fd, pid_t pid, bool compress, int status)
{
	char *data = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (cap - len < 65536) {
			cap = cap ? cap * 2 : 65536;
			data = xrealloc(data, cap + 1);
		}
		ssize_t r = pread(fd, data + len, cap - len, (off_t)len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	if (!data)
		return;
	data[len] = 0;
	struct listed *t = NULL;
	size_t n = 0, tcap = 0;
	for (size_t off = 0; off < len; off += strlen(data + off) + 1) {
		HW_GROW(t, n, tcap);
		if (data[off] == '/' && read_listed(data + off, &t[n]))
			n++;
	}
	char cwd[PATH_MAX];
	if (!getcwd(cwd, sizeof(cwd)))
		cwd[0] = 0;
	ssize_t last = -1; /* the command's own trace: its last image's */
	for (size_t i = 0; i < n; i++)
		if (t[i].pid == (uint64_t)pid)
			last = (ssize_t)i;
	if (last >= 0)
		print_listed(&t[last], cwd, NULL);
	for (ssize_t i = 0; i < last; i++)
		if (t[i].pid == (uint64_t)pid) {
			/* an image the command replaced by exec in the same process */
			char note[160];
			ssize_t next = i + 1;
			while (t[next].pid != (uint64_t)pid)
				next++;
			snprintf(note, sizeof(note), "%s, before it exec'd %s", t[i].prog,
				 t[next].prog);
			print_listed(&t[i], cwd, note);
		}
	for (size_t i = 0; i < n; i++)
		if (t[i].pid != (uint64_t)pid)
			print_listed(&t[i], cwd, "child process");
	if (compress && WIFEXITED(status))
		compress_listed(t, n, cwd);
	else if (compress && n && WIFSIGNALED(status))
		/* as it died: what a crash left is evidence, and the command
		 * may have been stopped on purpose (Ctrl-C) */
		fprintf(stderr,
			"heapwise: the command was killed by signal %d (SIG%s): its traces are left raw (heapwise compress them)\n",
			WTERMSIG(status), sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?");
	free(t);
	free(data);
}

/* A manifest for the shims of this run to name their traces in: a new empty
 * file in $TMPDIR (or /tmp), mode 0600. Returns its descriptor (kept by run
 * only: close-on-exec) and its path in PATH, or -1. */
static int make_manifest(char *path, size_t size)
{
	const char *tmp = getenv("TMPDIR");
	if (!tmp || tmp[0] != '/')
		tmp = "/tmp";
	if ((size_t)snprintf(path, size, "%s/heapwise-run.XXXXXX", tmp) >= size)
		return -1;
	return mkostemp(path, O_CLOEXEC);
}

/* The file execvp would run for CMD (PATH searched, "/bin:/usr/bin" when
 * unset, when CMD has no '/'); false when there is none. */
static bool find_program(const char *cmd, char *out, size_t size)
{
	if (strchr(cmd, '/'))
		return (size_t)snprintf(out, size, "%s", cmd) < size;
	const char *path = getenv("PATH");
	if (!path)
		path = "/bin:/usr/bin";
	for (const char *p = path;;) {
		const char *end = strchrnul(p, ':');
		int len = (int)(end - p);
		struct stat st;
		if ((size_t)snprintf(out, size, "%.*s%s%s", len, p, len ? "/" : "", cmd) < size &&
		    !stat(out, &st) && S_ISREG(st.st_mode) && !access(out, X_OK))
			return true;
		if (!*end)
			return false;
		p = end + 1;
	}
}

/* One ELF header field: SIZE (1, 2, 4 or 8) little-endian bytes at OFF. */
static uint64_t field(const uint8_t *b, size_t off, size_t size)
{
	uint64_t v = 0;
	for (size_t i = size; i-- > 0;)
		v = v << 8 | b[off + i];
	return v;
}

/* Whether the ELF file FD (HEAD: its first bytes, N of them) runs without the
 * dynamic loader, so that LD_PRELOAD cannot reach it: no PT_INTERP, and no
 * PT_DYNAMIC (static) or a PT_DYNAMIC without DT_SONAME (static-pie; the
 * loader itself, run as a program, has its soname). Reads only the program
 * and dynamic headers, bounds-checked; false when in doubt. */
static bool elf_static(int fd, const uint8_t *head, size_t n)
{
	if (n < 64 || memcmp(head, "\177ELF", 4) || head[5] != 1 /* little-endian */)
		return false;
	bool wide = head[4] == 2;
	if (!wide && head[4] != 1)
		return false;
	uint64_t phoff = wide ? field(head, 32, 8) : field(head, 28, 4);
	size_t phentsize = field(head, wide ? 54 : 42, 2), phnum = field(head, wide ? 56 : 44, 2);
	size_t want = wide ? 56 : 32;
	if (phentsize < want || phentsize > 256 || phnum == 0 || phnum > 4096)
		return false;
	uint8_t *ph = xmalloc(phentsize * phnum);
	bool stat_ic = false;
	if (pread(fd, ph, phentsize * phnum, (off_t)phoff) != (ssize_t)(phentsize * phnum))
		goto out;
	uint64_t dyn_off = 0, dyn_size = 0;
	bool has_dyn = false;
	for (size_t i = 0; i < phnum; i++) {
		const uint8_t *e = ph + i * phentsize;
		uint32_t type = (uint32_t)field(e, 0, 4);
		if (type == 3 /* PT_INTERP */)
			goto out;
		if (type == 2 /* PT_DYNAMIC */) {
			has_dyn = true;
			dyn_off = wide ? field(e, 8, 8) : field(e, 4, 4);
			dyn_size = wide ? field(e, 32, 8) : field(e, 16, 4);
		}
	}
	stat_ic = true;
	if (has_dyn) {
		size_t ent = wide ? 16 : 8;
		if (dyn_size > (1u << 20))
			dyn_size = 1u << 20;
		uint8_t *dyn = xmalloc(dyn_size + 1);
		ssize_t got = pread(fd, dyn, dyn_size, (off_t)dyn_off);
		for (size_t off = 0; got > 0 && off + ent <= (size_t)got; off += ent) {
			uint64_t tag = field(dyn, off, ent / 2);
			if (tag == 0 /* DT_NULL */)
				break;
			if (tag == 14 /* DT_SONAME */)
				stat_ic = false;
		}
		free(dyn);
	}
out:
	free(ph);
	return stat_ic;
}

/* Says in one line when the program CMD would run (following "#!"
 * interpreters, four deep as the kernel does) cannot be traced because it is
 * statically linked. */
static void warn_if_static(const char *cmd)
{
	char path[PATH_MAX];
	if (!find_program(cmd, path, sizeof(path)))
		return; /* execvp says what is wrong */
	for (int depth = 0; depth < 5; depth++) {
		struct stat st;
		if (stat(path, &st) || !S_ISREG(st.st_mode))
			return;
		int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			return;
		uint8_t head[256];
		ssize_t n = pread(fd, head, sizeof(head) - 1, 0);
		if (n > 2 && head[0] == '#' && head[1] == '!') {
			close(fd);
			head[n] = 0;
			char *p = (char *)head + 2;
			p += strspn(p, " \t");
			size_t len = strcspn(p, " \t\n");
			if (!len || len >= sizeof(path))
				return;
			memmove(path, p, len);
			path[len] = 0;
			continue;
		}
		bool is_static = n > 0 && elf_static(fd, head, (size_t)n);
		close(fd);
		if (is_static) {
			warn_print("run: %s is statically linked: the shim cannot be preloaded into it, "
				   "so it runs untraced", path); /* in the display form */
		}
		return;
	}
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{"output", required_argument, NULL, 'o'},
		{"native", no_argument, NULL, 'N'},
		{"no-native", no_argument, NULL, 'n'},
		{"no-follow", no_argument, NULL, 'F'},
		{"no-compress", no_argument, NULL, 'Z'},
		{"sample", required_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0},
	};
	const char *output = NULL;
	const char *native = NULL;
	char sample[32] = ""; /* bytes, in the digits the shim reads */
	bool follow = true, compress = true;
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
		case 'Z':
			compress = false;
			break;
		case 'S': {
			uint64_t v;
			if (!parse_size(optarg, &v) || !v || v > HW_SAMPLE_INTERVAL_MAX) {
				err_print("run: --sample %s is not a sampling interval: expected a size from 1 byte to 1T, such as 512K",
					  optarg);
				return 2;
			}
			snprintf(sample, sizeof(sample), "%llu", (unsigned long long)v);
			break;
		}
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
	warn_if_static(cmd[0]);
	char cwd[PATH_MAX];
	bool cwd_ok = getcwd(cwd, sizeof(cwd)) != NULL;
	char manifest[PATH_MAX];
	int manifest_fd = make_manifest(manifest, sizeof(manifest));
	if (manifest_fd < 0)
		warn_print("run: cannot create a list of this run's traces in %s (%s): "
			   "they will not be named at the end",
			   getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", strerror(errno));

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
		if (*sample)
			setenv("HEAPWISE_SAMPLE", sample, 1);
		setenv("HEAPWISE_FOLLOW", follow ? "1" : "0", 1);
		char pidbuf[32];
		snprintf(pidbuf, sizeof(pidbuf), "%d", (int)getpid());
		setenv("HEAPWISE_ROOT_PID", pidbuf, 1);
		if (manifest_fd >= 0)
			setenv("HEAPWISE_MANIFEST", manifest, 1);
		/* -o and the default name are relative to this directory in every
		 * process of the tree, whatever directory it runs in */
		if (cwd_ok)
			setenv("HEAPWISE_DIR", cwd, 1);
		execvp(cmd[0], cmd);
		int e = errno;
		fprintf(stderr, "heapwise: error: run: cannot execute %s: %s\n", cmd[0], strerror(e));
		_exit(e == ENOENT ? 127 : 126);
	}
	int status = run_child_wait(&rc, pid);
	free(shim);
	if (manifest_fd >= 0) {
		/* a clean exit: the traces are complete; a command killed by
		 * a signal leaves them raw, as they were when it died */
		report_traces(manifest_fd, pid, compress, status);
		unlink(manifest);
		close(manifest_fd);
	}
	run_child_end_like(status);
}
