/* Signal handlers that allocate while the interrupted code is inside malloc
 * (integration test: no deadlock, no crash, exact figures for the main loop). */
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static atomic_long handled;

static void on_alarm(int sig)
{
	(void)sig;
	/* not async-signal-safe, on purpose: programs do this */
	void *p = malloc(48);
	free(p);
	atomic_fetch_add(&handled, 1);
}

__attribute__((noinline)) static void *main_alloc(long i)
{
	return malloc(16 + (size_t)(i % 500));
}

int main(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {{0, 50}, {0, 50}};
	setitimer(ITIMER_REAL, &it, NULL);
	for (long i = 0; i < 2000000; i++)
		free(main_alloc(i));
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	return atomic_load(&handled) > 10 ? 0 : 1;
}
