/* Signals under `heapwise run` (integration test): what reaches the program,
 * how often, and how it ends. Prints "ready PID" first. Usage: sigprog MODE
 *   handle     handlers for HUP INT QUIT TERM USR1 USR2: after the first of
 *              them waits 300 ms for more, prints "got SIG xN" for each one
 *              received and exits 64 + the first
 *   ignore     ignores TERM; exits 3 at USR1
 *   default    no handlers: dies of whatever comes
 *   killgroup  a TERM handler, then kill(0, SIGTERM) to its own process
 *              group; prints the count as `handle` does
 *   abort      abort(): dies of SIGABRT (with a core file under ulimit -c) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const int watched[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
static volatile sig_atomic_t counts[65];
static volatile sig_atomic_t first;

static void on_signal(int sig)
{
	counts[sig]++;
	if (!first)
		first = sig;
}

static void on_usr1_exit(int sig)
{
	(void)sig;
	_exit(3);
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int report(void)
{
	while (!first)
		pause();
	double until = now() + 0.3;
	while (now() < until)
		usleep(10000);
	for (int s = 1; s < 65; s++)
		if (counts[s])
			printf("got %s x%d\n", sigabbrev_np(s), (int)counts[s]);
	fflush(stdout);
	return 64 + first;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "handle";
	void *keep = malloc(1234);
	struct sigaction sa = {.sa_handler = on_signal};
	if (!strcmp(mode, "handle") || !strcmp(mode, "killgroup"))
		for (size_t i = 0; i < sizeof(watched) / sizeof(watched[0]); i++)
			sigaction(watched[i], &sa, NULL);
	if (!strcmp(mode, "ignore")) {
		signal(SIGTERM, SIG_IGN);
		signal(SIGUSR1, on_usr1_exit);
	}
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	if (!strcmp(mode, "abort"))
		abort();
	if (!strcmp(mode, "killgroup"))
		kill(0, SIGTERM);
	if (!strcmp(mode, "handle") || !strcmp(mode, "killgroup"))
		return report() + (int)(keep == NULL);
	for (;;)
		pause();
}
