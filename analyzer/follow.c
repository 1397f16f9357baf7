/* `heapwise follow` (analyzer, front): judges windows of a trace that is
 * still being written, replaying it once for them all (the pytest plugin's
 * per-test limits, tools/pytest_heapwise.py).
 *
 * One process follows the trace for the whole session: it replays what was
 * published up to a window's start marker with no window started (what
 * `check --between` has seen at that marker: the live blocks, the stacks,
 * code objects and modules), then forks; the child replays the window as
 * `check --between` does (only blocks allocated inside it count), judges it
 * and hands back the answer, and the parent goes on from the start marker
 * when the next request comes. Every record is decoded about once by the
 * parent and once more by the child of the window it is in; the fork is the
 * checkpoint (its copy-on-write pages cost the memory the window's replay
 * touches). Each request reads what was published when it came (a trace's
 * chunks grow: trace_refresh, merge_refresh): as for `check`, records other
 * threads have not published by then are not in that window.
 *
 * Requests on stdin, one a line, fields separated by tabs:
 *   window MARK_A MARK_B PEAK LEAKED    PEAK, LEAKED: bytes, or - (not checked)
 * The answer on stdout: parts, each a line "NAME RC OUT ERR" and then OUT
 * bytes of standard output and ERR bytes of error text, then a line "end".
 * Parts: leaked (OUT: the window's leaked bytes, summary --json's
 * leaked_bytes), peak (check --max-peak PEAK --between's output and exit
 * status), leak (check --max-leaked LEAKED --between's); a request that
 * cannot be read: one part "error 2 0 N". */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "analysis.h"
#include "commands.h"
#include "err.h"
#include "merge.h"
#include "report.h"
#include "util.h"

static const char follow_usage[] =
	"usage: heapwise follow TRACE\n"
	"  judges windows of TRACE while the process writes it (the pytest plugin's\n"
	"  limits), replaying the trace once; requests on stdin, one a line, fields\n"
	"  separated by tabs:\n"
	"    window MARK_A MARK_B PEAK LEAKED   (PEAK, LEAKED: bytes, or -)\n"
	"  answer on stdout: parts \"NAME RC OUT ERR\\n\" + OUT bytes of output + ERR\n"
	"  bytes of errors (leaked: the window's leaked bytes; peak, leak: what\n"
	"  check --max-peak / --max-leaked --between prints and its exit status),\n"
	"  then \"end\\n\"; windows are asked in the order of their markers\n"
	"  exit status: 0 at the end of the requests, 2 usage error or a trace it\n"
	"  cannot follow (compressed, format 2)\n";

struct part {
	char name[8];
	int rc;
	char *out, *err;
	size_t nout, nerr;
};

static char *slurp(int fd, size_t *n)
{
	off_t end = lseek(fd, 0, SEEK_END);
	*n = end > 0 ? (size_t)end : 0;
	char *buf = xmalloc(*n + 1);
	size_t got = 0;
	while (got < *n) {
		ssize_t k = pread(fd, buf + got, *n - got, (off_t)got);
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	*n = got;
	return buf;
}

/* Runs fn(ctx) with its stdout and stderr captured into p. */
static void capture(struct part *p, const char *name, int (*fn)(void *), void *ctx)
{
	snprintf(p->name, sizeof(p->name), "%s", name);
	fflush(stdout);
	fflush(stderr);
	int o = memfd_create("hw-out", MFD_CLOEXEC), e = memfd_create("hw-err", MFD_CLOEXEC);
	int so = dup(1), se = dup(2);
	if (o < 0 || e < 0 || so < 0 || se < 0) {
		int fds[] = {o, e, so, se};
		for (int i = 0; i < 4; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		p->rc = 2;
		static const char msg[] = "heapwise: error: follow: cannot capture the output\n";
		p->err = xstrndup(msg, sizeof(msg) - 1);
		p->nerr = sizeof(msg) - 1;
		p->out = xstrndup("", 0);
		return;
	}
	dup2(o, 1);
	dup2(e, 2);
	p->rc = fn(ctx);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	p->out = slurp(o, &p->nout);
	p->err = slurp(e, &p->nerr);
	close(o);
	close(e);
}

static void put_part(FILE *f, const struct part *p)
{
	fprintf(f, "%s %d %zu %zu\n", p->name, p->rc, p->nout, p->nerr);
	fwrite(p->out, 1, p->nout, f);
	fwrite(p->err, 1, p->nerr, f);
}

struct window {
	struct trace *t;
	struct analysis *a;
	struct replay *r;
	bool peak, leak;
	uint64_t max_peak, max_leaked;
	int replay_rc;
	const char *from;
};

static int run_end(void *ctx)
{
	struct window *w = ctx;
	while (replay_step(w->r) == REPLAY_STARTED) /* cannot be: started */
		;
	replay_window_only(w->r);
	return replay_end(w->r) == HW_OK ? 0 : 2;
}

static int run_leaked(void *ctx)
{
	struct window *w = ctx;
	uint64_t bytes, blocks;
	report_leaked(w->a, &bytes, &blocks);
	printf("%" PRIu64 "\n", bytes);
	return 0;
}

static int run_peak(void *ctx)
{
	struct window *w = ctx;
	return check_window(w->t, w->a, true, w->max_peak, false, 0);
}

static int run_leak(void *ctx)
{
	struct window *w = ctx;
	return check_window(w->t, w->a, false, 0, true, w->max_leaked);
}

static int start_missing(void *ctx)
{
	struct window *w = ctx;
	err_print("%s: marker \"%s\" is not in the trace", w->t->path, w->from);
	return 2;
}

static int stop_refused(void *ctx)
{
	struct window *w = ctx;
	char stop[400];
	trace_stop_note(w->t, stop, sizeof(stop));
	err_print("check: %s: %s; a limit cannot be judged on part of the run (--allow-incomplete checks these figures)",
		  w->t->path, stop);
	return 2;
}

/* The same failure for every part asked for. */
static void answer_all(FILE *f, struct window *w, int (*fn)(void *))
{
	struct part p;
	capture(&p, "leaked", fn, w);
	put_part(f, &p);
	if (w->peak) {
		memcpy(p.name, "peak", 5);
		put_part(f, &p);
	}
	if (w->leak) {
		memcpy(p.name, "leak", 5);
		put_part(f, &p);
	}
	free(p.out);
	free(p.err);
}

/* The child's side: the window from its start marker on, judged. */
static void judge_window(FILE *f, struct window *w)
{
	struct part end;
	capture(&end, "leaked", run_end, w);
	if (end.rc) { /* the end marker is not there: check's error, for each */
		put_part(f, &end);
		if (w->peak) {
			memcpy(end.name, "peak", 5);
			put_part(f, &end);
		}
		if (w->leak) {
			memcpy(end.name, "leak", 5);
			put_part(f, &end);
		}
		return;
	}
	struct part p;
	capture(&p, "leaked", run_leaked, w);
	put_part(f, &p);
	if (w->peak) {
		capture(&p, "peak", run_peak, w);
		put_part(f, &p);
	}
	if (w->leak) {
		capture(&p, "leak", run_leak, w);
		put_part(f, &p);
	}
}

static bool parse_limit(const char *s, bool *set, uint64_t *v)
{
	if (!strcmp(s, "-")) {
		*set = false;
		return true;
	}
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (errno || *end || end == s || *s == '-')
		return false;
	*set = true;
	*v = x;
	return true;
}

static void bad_request(FILE *f, const char *why)
{
	char msg[300];
	int n = snprintf(msg, sizeof(msg), "heapwise: error: follow: %s\n", why);
	fprintf(f, "error 2 0 %d\n%s", n, msg);
}

int cmd_follow(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(follow_usage, stdout);
		return 0;
	}
	if (argc != 2 || argv[1][0] == '-') {
		if (argc < 2)
			err_print("follow: no trace given");
		else if (argv[1][0] == '-')
			err_print("follow: %s is not an option of follow (it takes one trace, no options)",
				  argv[1]);
		else
			err_print("follow: one trace, no options");
		fputs(follow_usage, stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN); /* the plugin went away: its reads end, so do we */
	struct trace t;
	if (trace_open_follow(argv[1], &t) != HW_OK) {
		trace_close(&t);
		return 2;
	}
	struct analysis a;
	/* no window yet: a marker label no trace has */
	static const struct analysis_opts opts = {.from_mark = "", .to_mark = ""};
	struct replay *r = replay_begin(&a, &t, &opts, true);
	char *line = NULL, *from = NULL, *to = NULL;
	size_t cap = 0;
	ssize_t len;
	int status = 0;
	while ((len = getline(&line, &cap, stdin)) > 0) {
		if (line[len - 1] == '\n')
			line[--len] = 0;
		char *field[6];
		int nf = 0;
		for (char *p = line, *tab; nf < 6; p = tab + 1) {
			field[nf++] = p;
			if (!(tab = strchr(p, '\t')))
				break;
			*tab = 0;
		}
		struct window w = {.t = &t, .a = &a, .r = r};
		if (nf != 5 || strcmp(field[0], "window") || !*field[1] || !*field[2] ||
		    !parse_limit(field[3], &w.peak, &w.max_peak) ||
		    !parse_limit(field[4], &w.leak, &w.max_leaked)) {
			bad_request(stdout, "expected: window<TAB>MARK_A<TAB>MARK_B<TAB>PEAK<TAB>LEAKED (bytes or -)");
			fputs("end\n", stdout);
			fflush(stdout);
			continue;
		}
		free(from);
		free(to);
		from = xstrndup(field[1], strlen(field[1]));
		to = xstrndup(field[2], strlen(field[2]));
		w.from = from;
		replay_window(r, from, to);
		trace_refresh(&t);
		if (trace_follow_outgrown(&t)) {
			bad_request(stdout, "the trace outgrew the address space the follower could map");
			fputs("end\n", stdout);
			fflush(stdout);
			continue;
		}
		if (t.stop.reason) { /* check refuses it before any replay */
			answer_all(stdout, &w, stop_refused);
			fputs("end\n", stdout);
			fflush(stdout);
			continue;
		}
		merge_refresh(replay_merge(r));
		if (replay_step(r) != REPLAY_STARTED) {
			answer_all(stdout, &w, start_missing);
			fputs("end\n", stdout);
			fflush(stdout);
			continue;
		}
		/* the checkpoint: the child judges the window, the parent stays
		 * at its start */
		fflush(stdout);
		fflush(stderr);
		int resp = memfd_create("hw-answer", MFD_CLOEXEC);
		pid_t pid = resp >= 0 ? fork() : -1;
		if (pid == 0) {
			/* stdin is the parent's: nothing here may move its
			 * offset (a seekable stdin was read again from where
			 * the child's stdio had got to) */
			int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
			if (null >= 0 && null != 0) {
				dup2(null, 0);
				close(null);
			}
			FILE *f = fdopen(resp, "w");
			if (!f)
				_exit(3);
			judge_window(f, &w);
			_exit(fflush(f) ? 3 : 0);
		}
		int ws = 0;
		while (pid > 0 && waitpid(pid, &ws, 0) < 0 && errno == EINTR)
			;
		replay_unstart(r);
		if (pid > 0 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0) {
			size_t n;
			char *buf = slurp(resp, &n);
			fwrite(buf, 1, n, stdout);
			free(buf);
		} else {
			char why[120];
			if (pid < 0)
				snprintf(why, sizeof(why), "cannot fork to judge the window: %s", strerror(errno));
			else if (WIFSIGNALED(ws))
				snprintf(why, sizeof(why), "the window's judge died of signal %d", WTERMSIG(ws));
			else
				snprintf(why, sizeof(why), "the window's judge failed");
			bad_request(stdout, why);
		}
		if (resp >= 0)
			close(resp);
		fputs("end\n", stdout);
		if (fflush(stdout)) {
			status = 2;
			break;
		}
	}
	free(line);
	free(from);
	free(to);
	replay_abandon(r);
	analysis_free(&a);
	trace_close(&t);
	return status;
}
