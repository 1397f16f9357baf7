/* `heapwise run` stands in for its command (analyzer, front): relays signals,
 * mirrors job-control stops and ends the way the command ended. Run and the
 * command share a process group, so a terminal's job control (Ctrl-C, Ctrl-Z,
 * fg) reaches both directly; only what was sent to run alone is relayed. */
#include "run_child.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"

static void relayed_set(sigset_t *set)
{
	sigfillset(set);
	sigdelset(set, SIGKILL);
	sigdelset(set, SIGSTOP);
}

void run_child_prepare(struct run_child *rc)
{
	sigset_t all;
	relayed_set(&all);
	sigprocmask(SIG_BLOCK, &all, &rc->orig_mask);
	rc->parent = getpid();
	/* an ignored SIGCHLD reaps children by itself and waitpid() fails */
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigaction(SIGCHLD, &dfl, &rc->orig_chld);
}

void run_child_restore(const struct run_child *rc)
{
	sigaction(SIGCHLD, &rc->orig_chld, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != rc->parent)
		_exit(128 + SIGKILL); /* run died before the line above */
	sigprocmask(SIG_SETMASK, &rc->orig_mask, NULL);
}

/* The state letter and parent of /proc/PID/stat; false when PID is gone. */
static bool proc_stat(pid_t pid, char *state, pid_t *ppid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	/* "PID (COMM) S PPID ...": COMM may hold anything, even ") " */
	char *close_paren = strrchr(buf, ')');
	int pp;
	if (!close_paren || sscanf(close_paren + 1, " %c %d", state, &pp) != 2)
		return false;
	*ppid = pp;
	return true;
}

/* Whether SENDER is the command PID or one of its descendants. */
static bool in_tree(pid_t sender, pid_t pid)
{
	for (int depth = 0; depth < 256 && sender > 1; depth++) {
		if (sender == pid)
			return true;
		char state;
		pid_t up;
		if (!proc_stat(sender, &state, &up))
			return false;
		sender = up;
	}
	return false;
}

/* Whether a signal run received is the command's to get from run: sent by a
 * process (kill, sigqueue, tkill) that is neither run itself nor in the
 * command's tree. The kernel's own (SI_KERNEL: the terminal's Ctrl-C, Ctrl-\,
 * Ctrl-Z and hangup, sent to the whole foreground process group; run's own
 * limits) and fault codes (si_code > 0) are not relayed. */
static bool to_relay(const siginfo_t *si, pid_t self, pid_t pid)
{
	if (si->si_code > 0 || si->si_code == SI_KERNEL)
		return false;
	if (si->si_code == SI_USER || si->si_code == SI_QUEUE || si->si_code == SI_TKILL)
		return si->si_pid != self && !in_tree(si->si_pid, pid);
	return true;
}

static bool is_stopped(pid_t pid)
{
	char state;
	pid_t ppid;
	return proc_stat(pid, &state, &ppid) && state == 'T';
}

/* Stops run with SIG, as the command was stopped. SIGTSTP, SIGTTIN and SIGTTOU
 * keep their default action in run unless they came ignored; then SIGSTOP.
 * Returns when run is continued. */
static void stop_like(int sig)
{
	struct sigaction cur;
	if (sig != SIGSTOP && (sigaction(sig, NULL, &cur) || cur.sa_handler != SIG_DFL))
		sig = SIGSTOP;
	if (sig == SIGSTOP) {
		raise(SIGSTOP);
		return;
	}
	sigset_t one;
	sigemptyset(&one);
	sigaddset(&one, sig);
	raise(sig); /* pending while blocked, taken (and run stopped) at the unblock */
	sigprocmask(SIG_UNBLOCK, &one, NULL);
	sigprocmask(SIG_BLOCK, &one, NULL);
}

int run_child_wait(const struct run_child *rc, pid_t pid)
{
	sigset_t all;
	relayed_set(&all);
	for (;;) {
		int status;
		pid_t w = waitpid(pid, &status, WNOHANG | WUNTRACED | WCONTINUED);
		if (w < 0 && errno != EINTR) {
			err_print("run: waitpid failed: %s", strerror(errno));
			return -1;
		}
		if (w == pid) {
			if (WIFEXITED(status) || WIFSIGNALED(status))
				return status;
			/* stopped: stop too, so a shell sees its job stop (unless it
			 * was continued meanwhile) */
			if (WIFSTOPPED(status) && is_stopped(pid))
				stop_like(WSTOPSIG(status));
			continue; /* another state change may be waiting */
		}
		siginfo_t si;
		int sig = sigwaitinfo(&all, &si);
		if (sig < 0 || sig == SIGCHLD)
			continue;
		if (sig == SIGCONT) {
			/* run was continued (by fg, or by a kill of run alone): the
			 * command too, unless that continued it already */
			if (is_stopped(pid))
				kill(pid, SIGCONT);
			continue;
		}
		if (to_relay(&si, rc->parent, pid))
			kill(pid, sig);
	}
}

void run_child_end_like(int status)
{
	if (WIFEXITED(status))
		exit(WEXITSTATUS(status));
	if (status < 0 || !WIFSIGNALED(status))
		exit(2);
	int sig = WTERMSIG(status);
	fflush(NULL);
	/* no core of run's: it would overwrite the command's (both are "core"
	 * with the default pattern), or be one more in a core handler's list */
	struct rlimit none = {0, 0};
	setrlimit(RLIMIT_CORE, &none);
	prctl(PR_SET_DUMPABLE, 0);
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigaction(sig, &dfl, NULL);
	sigset_t one;
	sigemptyset(&one);
	sigaddset(&one, sig);
	raise(sig);
	sigprocmask(SIG_UNBLOCK, &one, NULL);
	/* a signal whose default is not to end a process cannot have ended the
	 * command; this is only reached if it did not end run either */
	exit(128 + sig);
}
