/* A fork while another thread is inside the shim's look for a Python loaded
 * late (python_check_late): thread A loads lateprobe.so, whose IFUNC
 * resolver holds it inside that look; meanwhile the main thread forks
 * without atfork handlers (MODE "syscall": the raw system call; "_Fork")
 * and that child forks again with fork(), whose child (the loader's lock
 * is held by A in the first child; glibc's fork resets it) loads LIBPYTHON with RTLD_GLOBAL and runs a leaky script, as
 * pyembed does. The grandchild's trace must have found Python.
 * MODE "fork", for a check by hand under gdb: the look is not held, the
 * main thread waits for g_looked (the loading thread sets it after its look;
 * gdb, with the loading thread stopped inside it) and forks with fork(),
 * whose child loads LIBPYTHON.
 * Usage: latefork MODE PROBE LIBPYTHON; exit 3 when it cannot load. */
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "embed.h"

static const char *g_probe, *g_lib;
static int g_in[2], g_go[2];
static void **g_python; /* lateprobe_python */
static bool g_hold = true; /* the resolver holds the look */
static volatile int g_looked;

static void *loader(void *arg)
{
	(void)arg;
	void *probe = dlopen(g_probe, RTLD_NOW | RTLD_GLOBAL);
	if (!probe) {
		fprintf(stderr, "%s\n", dlerror());
		_exit(3);
	}
	int *in = dlsym(probe, "lateprobe_in");
	int *go = dlsym(probe, "lateprobe_go");
	g_python = dlsym(probe, "lateprobe_python");
	*go = g_go[0];
	if (g_hold)
		*in = g_in[1];
	/* the first allocation after the load looks for Python: the resolver
	 * stops it there */
	char *volatile p = malloc(100);
	free(p);
	char c = 0;
	if (g_hold && !*(int *)dlsym(probe, "lateprobe_calls"))
		(void)write(g_in[1], &c, 1); /* no look (not traced): do not hang */
	g_looked = 1;
	return NULL;
}

static int embed(void)
{
	void *h = dlopen(g_lib, RTLD_NOW | RTLD_GLOBAL);
	*g_python = h; /* before the first allocation after the load, the look */
	if (!h) {
		fprintf(stderr, "%s\n", dlerror());
		return 3;
	}
	return embed_run(h, "LEAK = [bytearray(1000) for _ in range(5000)]\n");
}

static int wait_for(pid_t pid)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int main(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	g_probe = argv[2];
	g_lib = argv[3];
	if (pipe(g_in) || pipe(g_go))
		return 2;
	g_hold = strcmp(argv[1], "fork") != 0;
	pthread_t t;
	pthread_create(&t, NULL, loader, NULL);
	char c = 0;
	if (!g_hold) {
		while (!g_looked)
			sched_yield();
		pid_t pid = fork();
		if (pid == 0)
			_exit(embed());
		pthread_join(t, NULL);
		int rc = pid < 0 ? 2 : wait_for(pid);
		puts("done");
		return rc;
	}
	if (read(g_in[0], &c, 1) != 1) /* A is inside the shim's look */
		return 2;
	pid_t pid = !strcmp(argv[1], "_Fork") ? _Fork() : (pid_t)syscall(SYS_fork);
	if (pid == 0) {
		pid_t g = fork();
		if (g == 0)
			_exit(embed());
		_exit(g < 0 ? 2 : wait_for(g));
	}
	(void)write(g_go[1], &c, 1);
	pthread_join(t, NULL);
	int rc = pid < 0 ? 2 : wait_for(pid);
	puts("done");
	return rc;
}
