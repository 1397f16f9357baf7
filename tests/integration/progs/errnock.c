/* errno is never changed by a call that succeeds (integration test): every
 * allocator call below runs with errno set to a sentinel and checks it after,
 * on the main thread, on new threads (their first event), across many chunk
 * claims, and in fork children, one of which cannot create its trace (no
 * descriptor left) and one made by a raw fork syscall. Prints each change;
 * exit status 1 when there was one. */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define SENTINEL 4242

static int bad;

static void check(const char *what, int line)
{
	if (errno != SENTINEL) {
		fprintf(stderr, "pid %d: %s (line %d) changed errno to %d\n", (int)getpid(), what,
			line, errno);
		bad = 1;
	}
}

#define CALL(expr)                                                                        \
	({                                                                                \
		errno = SENTINEL;                                                         \
		__typeof__(expr) r_ = (expr);                                             \
		check(#expr, __LINE__);                                                   \
		r_;                                                                       \
	})

static void round_of_calls(int n)
{
	void (*mark)(const char *) = (void (*)(const char *))dlsym(RTLD_DEFAULT, "hw_mark");
	for (int i = 0; i < n; i++) {
		char *p = CALL(malloc(100 + (size_t)i % 300));
		p = CALL(realloc(p, 5000 + (size_t)i % 100));
		p = CALL(reallocarray(p, 3, 1000));
		errno = SENTINEL;
		free(p);
		check("free", __LINE__);
		void *q = CALL(calloc(10, 10 + (size_t)i % 7));
		errno = SENTINEL;
		free(q);
		check("free", __LINE__);
		if (CALL(posix_memalign(&q, 64, 256)) == 0) {
			errno = SENTINEL;
			free(q);
			check("free", __LINE__);
		}
		q = CALL(aligned_alloc(64, 128));
		errno = SENTINEL;
		free(q);
		check("free", __LINE__);
		q = CALL(mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
		q = CALL(mremap(q, 8192, 16384, MREMAP_MAYMOVE));
		CALL(munmap(q, 16384));
		if (mark && i % 64 == 0) {
			errno = SENTINEL;
			mark("errnock");
			check("hw_mark", __LINE__);
		}
	}
}

static void *thread_main(void *arg)
{
	(void)arg;
	round_of_calls(50);
	return NULL;
}

static int wait_child(pid_t pid)
{
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) {
		fprintf(stderr, "child %d did not exit\n", (int)pid);
		return 1;
	}
	return WEXITSTATUS(st);
}

int main(void)
{
	round_of_calls(20000); /* many chunks */
	for (int t = 0; t < 8; t++) {
		pthread_t th;
		pthread_create(&th, NULL, thread_main, NULL);
		pthread_join(th, NULL);
	}
	/* a fork child: its own trace, made at its first event */
	pid_t pid = fork();
	if (pid == 0) {
		round_of_calls(100);
		_exit(bad);
	}
	bad |= wait_child(pid);
	/* a fork child that cannot create its trace: no descriptor left */
	pid = fork();
	if (pid == 0) {
		struct rlimit rl = {3, 3};
		setrlimit(RLIMIT_NOFILE, &rl);
		round_of_calls(100);
		_exit(bad);
	}
	bad |= wait_child(pid);
	/* a child made by the raw system call: no atfork handler runs */
	pid = (pid_t)syscall(SYS_fork);
	if (pid == 0) {
		round_of_calls(100);
		_exit(bad);
	}
	bad |= wait_child(pid);
	return bad;
}
