/* exec under the shim (integration test, test_tracer.py Exec).
 * Usage:
 *   execs into PATH   keeps 2,468 bytes (keep_before) and execv's PATH
 *   execs fail        every exec function on paths that do not exist: each
 *                     must return -1 with the errno the kernel gave (exit 1
 *                     otherwise); then keeps 7,777 bytes (keep_after) and
 *                     exits
 *   execs vfork       keeps 4,321 bytes (keep_before_vfork); a vfork child
 *                     tries a path that does not exist, then execs
 *                     /bin/true; posix_spawn runs /bin/true; then keeps
 *                     1,111 bytes (keep_after_vfork) and exits
 *   execs quick       keeps 3,333 bytes (keep_before_quick) and calls
 *                     quick_exit(4), whose at_quick_exit handler keeps 555
 *                     bytes (keep_in_handler) */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void *kept[8];
static int nkept;

__attribute__((noinline)) static void keep_before(void)
{
	kept[nkept++] = malloc(2468);
}

__attribute__((noinline)) static void keep_after(void)
{
	kept[nkept++] = malloc(7777);
}

__attribute__((noinline)) static void keep_before_vfork(void)
{
	kept[nkept++] = malloc(4321);
}

__attribute__((noinline)) static void keep_after_vfork(void)
{
	kept[nkept++] = malloc(1111);
}

__attribute__((noinline)) static void keep_before_quick(void)
{
	kept[nkept++] = malloc(3333);
}

__attribute__((noinline)) static void keep_in_handler(void)
{
	kept[nkept++] = malloc(555);
}

static int failures;

static void expect(const char *what, int r, int want)
{
	int e = errno;
	if (r != -1 || e != want) {
		fprintf(stderr, "%s: returned %d, errno %d (%s), wanted -1 and %d\n", what, r, e,
			strerror(e), want);
		failures++;
	}
}

static int fail_all(void)
{
	char *argv[] = {"x", NULL};
	char *envp[] = {"A=1", NULL};
	const char *none = "/nonexistent/heapwise-no-such-program";
	errno = 0;
	expect("execve", execve(none, argv, envp), ENOENT);
	errno = 0;
	expect("execv", execv(none, argv), ENOENT);
	errno = 0;
	expect("execvp", execvp("heapwise-no-such-program", argv), ENOENT);
	errno = 0;
	expect("execvpe", execvpe("heapwise-no-such-program", argv, envp), ENOENT);
	errno = 0;
	expect("execl", execl(none, "x", "y", (char *)NULL), ENOENT);
	errno = 0;
	expect("execle", execle(none, "x", (char *)NULL, envp), ENOENT);
	errno = 0;
	expect("execlp", execlp("heapwise-no-such-program", "x", (char *)NULL), ENOENT);
	errno = 0;
	expect("execveat", execveat(AT_FDCWD, none, argv, envp, 0), ENOENT);
	int fd = open("/dev/null", O_RDONLY); /* not a regular file: EACCES */
	errno = 0;
	expect("fexecve", fexecve(fd, argv, envp), EACCES);
	close(fd);
	/* a directory: EACCES, another errno than the others */
	errno = 0;
	expect("execv dir", execv("/", argv), EACCES);
	keep_after();
	return failures ? 1 : 0;
}

static int vfork_and_spawn(void)
{
	keep_before_vfork();
	char *argv[] = {"true", NULL};
	pid_t pid = vfork();
	if (pid == 0) {
		execve("/nonexistent/heapwise-no-such-program", argv, environ);
		execve("/bin/true", argv, environ);
		_exit(127);
	}
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		return 1;
	if (posix_spawn(&pid, "/bin/true", NULL, NULL, argv, environ) ||
	    waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		return 1;
	keep_after_vfork();
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	if (!strcmp(argv[1], "into") && argc == 3) {
		keep_before();
		char *args[] = {argv[2], NULL};
		execv(argv[2], args);
		return 127;
	}
	if (!strcmp(argv[1], "fail"))
		return fail_all();
	if (!strcmp(argv[1], "vfork"))
		return vfork_and_spawn();
	if (!strcmp(argv[1], "quick")) {
		at_quick_exit(keep_in_handler);
		keep_before_quick();
		quick_exit(4);
	}
	return 2;
}
