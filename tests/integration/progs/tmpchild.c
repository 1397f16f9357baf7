/* Runs a child in a temporary directory and removes the directory after it,
 * the way CPython's test runner runs its tests (integration test: a child's
 * trace is written where the run started, not where the child runs).
 * Usage: tmpchild fork            a fork child that allocates in the directory
 *        tmpchild exec PROG ARGS  a child that execs PROG in the directory
 * Prints "left NAME" for each file left in the directory, removes it and
 * exits 1 when there was one ("the environment changed"), else with the
 * child's status. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

__attribute__((noinline)) static void *in_child(void)
{
	return malloc(4321);
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/hw-tmpchild.XXXXXX";
	if (argc < 2 || !mkdtemp(dir))
		return 2;
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		if (chdir(dir))
			_exit(2);
		if (!strcmp(argv[1], "exec") && argc > 2) {
			execv(argv[2], argv + 2);
			_exit(127);
		}
		exit(in_child() ? 0 : 3);
	}
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return 2;
	int left = 0;
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		printf("left %s\n", e->d_name);
		char path[sizeof(dir) + 256];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
		left = 1;
	}
	if (d)
		closedir(d);
	rmdir(dir);
	return left ? 1 : WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}
