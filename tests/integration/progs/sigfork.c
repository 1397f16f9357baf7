/* Forks from a signal handler that may have interrupted malloc or free
 * (integration test): fork() is async-signal-safe. Each child returns from
 * the handler, so whatever the handler interrupted runs on in the child; it
 * makes a few allocations and exits. The parent reaps every child and
 * counts its own allocations in main_alloc. Usage: sigfork fork|syscall */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t in_child, forks;
static int raw;

static void on_alarm(int sig)
{
	(void)sig;
	if (in_child || forks >= 200)
		return;
	int e = errno;
	pid_t pid = raw ? (pid_t)syscall(SYS_fork) : fork();
	if (pid == 0)
		in_child = 1; /* back into whatever was interrupted */
	else if (pid > 0)
		forks++;
	errno = e;
}

__attribute__((noinline)) static void *main_alloc(long i)
{
	return malloc(16 + (size_t)(i % 500));
}

int main(int argc, char **argv)
{
	raw = argc > 1 && !strcmp(argv[1], "syscall");
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	struct itimerval it = {{0, 500}, {0, 500}};
	setitimer(ITIMER_REAL, &it, NULL);
	for (long i = 0; i < 1000000 || forks < 200; i++) {
		free(main_alloc(i));
		if (in_child) {
			for (int k = 0; k < 100; k++)
				free(malloc(32));
			_exit(0);
		}
	}
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	int st, bad = 0;
	pid_t pid;
	while ((pid = wait(&st)) > 0)
		bad |= !WIFEXITED(st) || WEXITSTATUS(st);
	return bad;
}
