/* exec and _exit (shim, intercept stage): execve and the exec functions
 * glibc runs without calling it through the PLT (execv, execvp, execvpe,
 * execl, execlp, execle, fexecve, execveat) write an EXEC mark right before
 * the real call, and an EXEC_FAILED mark when it returns. posix_spawn (and
 * system, popen) make a new process whose exec is glibc's internal one:
 * not this process's exec, left alone. _exit and _Exit write an EXIT mark
 * (the status) before the real call, and so does quick_exit (before its
 * handlers, glibc then calls its own _exit): the end of a process whose
 * destructors, and so the trailer, never run. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "heapwise/compiler.h"
#include "heapwise/trace_format.h"
#include "hooks.h"
#include "proc.h"
#include "tracker.h"

#define ENSURE(name)                                                                      \
	do {                                                                              \
		if (HW_UNLIKELY(!g_real.name))                                            \
			hooks_resolve();                                                  \
	} while (0)

/* Why no writer_finish: an exec that fails returns, and the process goes on
 * tracing into the same trace, so nothing may end it (seal the chunk claims,
 * cut the file); the records are in the file's pages already, `used`
 * published after each one, and the kernel keeps them when it unmaps the
 * image. What stays is the preallocated tail of the file, which readers skip
 * as unused blocks (and `heapwise run`'s compression drops). No trailer
 * either: the analyzer takes an EXEC without its EXEC_FAILED as the end.
 *
 * Safety: exec is async-signal-safe, and called from signal handlers and
 * vfork children. A mark is written only where this process's trace is
 * already on (no trace is started for an exec) and only by the process the
 * trace belongs to: a child sharing its parent's memory (vfork,
 * clone(CLONE_VM)) has another pid than the process page's, and its exec
 * ends nothing of its parent's (the parent runs on: the vfork child's exec
 * must not touch its trace at all); a child made without atfork handlers
 * that has not traced yet reads pid 0 there. getpid is a system call that
 * cannot fail (glibc caches no pid). Inside, the mark is an event like any
 * other: the guard (a handler that interrupted the shim on this thread
 * writes nothing), no allocation, and errno as the program left it; the
 * real call's errno reaches the caller untouched. */
static bool exec_mark(int kind, const char *label)
{
	if (atomic_load_explicit(&g_run_state, memory_order_acquire) != RUN_ON)
		return false;
	if (getpid() != __atomic_load_n(&g_proc.pid, __ATOMIC_RELAXED))
		return false;
	int e = errno;
	struct thread_state *ts = tracker_enter();
	if (ts) {
		tracker_mark(ts, kind, label);
		tracker_leave();
	}
	errno = e;
	return ts != NULL;
}

/* An exec came back (it failed): the EXEC mark written before it is
 * cancelled, with errno as the real call left it. */
static void exec_failed(bool marked, const char *label)
{
	if (marked)
		exec_mark(HW_MARK_EXEC_FAILED, label);
}

/* A path argument as a label: glibc declares them nonnull, and the compiler
 * would drop a plain test, but a program may pass NULL (the call fails with
 * EFAULT): the test goes through an empty asm it cannot see into. */
static const char *text(const char *p)
{
	__asm__("" : "+r"(p));
	return p ? p : "";
}

/* v in decimal at buf (room for 11 bytes); returns the bytes written. No
 * snprintf: async-signal-safe (exec and _exit run in signal handlers and
 * vfork children). */
static size_t put_decimal(char *buf, int v)
{
	char digits[10];
	size_t nd = 0, n = 0;
	unsigned u = v < 0 ? 0u - (unsigned)v : (unsigned)v;
	do
		digits[nd++] = (char)('0' + u % 10);
	while ((u /= 10) && nd < sizeof(digits));
	if (v < 0)
		buf[n++] = '-';
	while (nd)
		buf[n++] = digits[--nd];
	return n;
}

/* "fd N" or "fd N: path" into buf (HW_MAX_LABEL bytes): the label of an
 * exec of a descriptor. */
static const char *fd_label(char *buf, int fd, const char *path)
{
	memcpy(buf, "fd ", 3);
	size_t n = 3 + put_decimal(buf + 3, fd);
	if (path && *path) {
		buf[n++] = ':';
		buf[n++] = ' ';
		size_t len = strnlen(path, HW_MAX_LABEL - 1 - n);
		memcpy(buf + n, path, len);
		n += len;
	}
	buf[n] = 0;
	return buf;
}

HW_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	ENSURE(execve);
	bool marked = exec_mark(HW_MARK_EXEC, text(path));
	int r = g_real.execve(path, argv, envp);
	exec_failed(marked, text(path));
	return r;
}

HW_EXPORT int execv(const char *path, char *const argv[])
{
	ENSURE(execv);
	bool marked = exec_mark(HW_MARK_EXEC, text(path));
	int r = g_real.execv(path, argv);
	exec_failed(marked, text(path));
	return r;
}

HW_EXPORT int execvp(const char *file, char *const argv[])
{
	ENSURE(execvp);
	bool marked = exec_mark(HW_MARK_EXEC, text(file));
	int r = g_real.execvp(file, argv);
	exec_failed(marked, text(file));
	return r;
}

HW_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	ENSURE(execvpe);
	bool marked = exec_mark(HW_MARK_EXEC, text(file));
	int r = g_real.execvpe(file, argv, envp);
	exec_failed(marked, text(file));
	return r;
}

HW_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	ENSURE(fexecve);
	char label[HW_MAX_LABEL];
	bool marked = exec_mark(HW_MARK_EXEC, fd_label(label, fd, NULL));
	int r = g_real.fexecve(fd, argv, envp);
	exec_failed(marked, label);
	return r;
}

HW_EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[],
		       int flags)
{
	ENSURE(execveat);
	char label[HW_MAX_LABEL];
	const char *p = text(path);
	const char *l = p[0] == '/' || (dirfd == AT_FDCWD && p[0]) ? p : fd_label(label, dirfd, p);
	bool marked = exec_mark(HW_MARK_EXEC, l);
	int r;
	if (g_real.execveat)
		r = g_real.execveat(dirfd, path, argv, envp, flags);
	else /* a glibc before 2.34 has no wrapper: what its callers would do */
		r = (int)syscall(SYS_execveat, dirfd, path, argv, envp, flags);
	exec_failed(marked, l);
	return r;
}

/* The list forms, as glibc writes them (posix/execl.c and its siblings):
 * the arguments into an array on the stack, E2BIG past INT_MAX of them,
 * then execve (execl, execle) or execvp (execlp) with it. */
#define ARGV_FROM_LIST(arg, argv, envp_out)                                               \
	ptrdiff_t argc_;                                                                  \
	va_list ap_;                                                                      \
	va_start(ap_, arg);                                                               \
	for (argc_ = 1; va_arg(ap_, const char *); argc_++) {                             \
		if (argc_ == INT_MAX) {                                                   \
			va_end(ap_);                                                      \
			errno = E2BIG;                                                    \
			return -1;                                                        \
		}                                                                         \
	}                                                                                 \
	va_end(ap_);                                                                      \
	char *argv[argc_ + 1];                                                            \
	va_start(ap_, arg);                                                               \
	argv[0] = (char *)arg;                                                            \
	for (ptrdiff_t i_ = 1; i_ <= argc_; i_++)                                         \
		argv[i_] = va_arg(ap_, char *);                                           \
	envp_out;                                                                         \
	va_end(ap_)

HW_EXPORT int execl(const char *path, const char *arg, ...)
{
	ENSURE(execve);
	ARGV_FROM_LIST(arg, argv, (void)0);
	bool marked = exec_mark(HW_MARK_EXEC, text(path));
	int r = g_real.execve(path, argv, environ);
	exec_failed(marked, text(path));
	return r;
}

HW_EXPORT int execle(const char *path, const char *arg, ...)
{
	ENSURE(execve);
	char *const *envp;
	ARGV_FROM_LIST(arg, argv, envp = va_arg(ap_, char *const *));
	bool marked = exec_mark(HW_MARK_EXEC, text(path));
	int r = g_real.execve(path, argv, envp);
	exec_failed(marked, text(path));
	return r;
}

HW_EXPORT int execlp(const char *file, const char *arg, ...)
{
	ENSURE(execvp);
	ARGV_FROM_LIST(arg, argv, (void)0);
	bool marked = exec_mark(HW_MARK_EXEC, text(file));
	int r = g_real.execvp(file, argv);
	exec_failed(marked, text(file));
	return r;
}

/* The EXIT mark, its label the status in decimal. */
static void exit_mark(int status)
{
	char label[12];
	label[put_decimal(label, status)] = 0;
	exec_mark(HW_MARK_EXIT, label);
}

/* _exit and _Exit (glibc's alias of it, a symbol of its own for the
 * program's calls): the EXIT mark. */
HW_EXPORT void _exit(int status)
{
	ENSURE(_exit);
	exit_mark(status);
	if (g_real._exit)
		g_real._exit(status);
	syscall(SYS_exit_group, status);
	__builtin_unreachable();
}

HW_EXPORT void _Exit(int status)
{
	_exit(status);
}

/* quick_exit: the program's at_quick_exit handlers, then glibc's own
 * internal _exit, which no interposed symbol sees: without this the trace
 * read as a kill ("no clean exit"). The EXIT mark goes first; the
 * handlers' allocations after it are counted as any event is (the leaks
 * are measured at the end of the trace). */
HW_EXPORT void quick_exit(int status)
{
	ENSURE(quick_exit);
	exit_mark(status);
	if (g_real.quick_exit)
		g_real.quick_exit(status);
	_exit(status);
}

/* vfork: glibc's list of exit handlers is the parent's and a child sharing
 * its memory that calls exit() empties it; the shim's destructor then
 * leans on a thread_local destructor of the parent's main thread, which
 * the next such child empties in turn. Only the parent, once vfork has
 * returned there, can put it back (init_vfork_parent). A C function cannot
 * be vfork: the child returns through its frame, which the parent then
 * finds overwritten. So, as glibc's, the caller's return address is kept
 * in a register (each task has its own) while the stack is shared: the
 * child jumps back to it (leaving the shadow stack as the parent, which
 * returns, needs it), and the parent, alone on its stack again, pushes it
 * back and calls vfork_returned. Other architectures: glibc's, untouched
 * (a second child's exit() there leaves the parent's trace with no
 * trailer). */
#if defined(__x86_64__) && !defined(__ILP32__)
#define HW_STR_(x) #x
#define HW_STR(x) HW_STR_(x)
#if defined(__CET__) && (__CET__ & 1)
#define HW_ENDBR "endbr64\n"
#else
#define HW_ENDBR ""
#endif

/* vfork's return in the parent: r the system call's (-errno on failure) */
__attribute__((visibility("hidden"), used)) int hw_vfork_returned(long r)
{
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	init_vfork_parent();
	return (int)r;
}

__asm__(".text\n"
	".globl vfork\n"
	".type vfork, @function\n"
	".p2align 4\n"
	"vfork:\n"
	".cfi_startproc\n" HW_ENDBR
	"popq %r9\n"
	".cfi_adjust_cfa_offset -8\n"
	".cfi_register %rip, %r9\n"
	"movl $" HW_STR(__NR_vfork) ", %eax\n"
	"syscall\n"
	"testq %rax, %rax\n"
	"jnz 1f\n"
	"jmp *%r9\n" /* the child */
	"1:\n"
	"pushq %r9\n"
	".cfi_adjust_cfa_offset 8\n"
	".cfi_offset %rip, -8\n"
	"subq $8, %rsp\n"
	".cfi_adjust_cfa_offset 8\n"
	"movq %rax, %rdi\n"
	"call hw_vfork_returned\n"
	"addq $8, %rsp\n"
	".cfi_adjust_cfa_offset -8\n"
	"ret\n"
	".cfi_endproc\n"
	".size vfork, .-vfork\n");
#endif
