/* Start, fork and exit of the shim (shim, init stage). Recording starts in
 * the constructor or at the first intercepted call, whichever comes first
 * (threads of other preloaded libraries may allocate before our constructor
 * runs); one thread wins a compare-and-swap and starts, the others pass
 * through unrecorded meanwhile. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "heapwise/trace_format.h"
#include "hooks.h"
#include "log.h"
#include "stack.h"
#include "modules.h"
#include "nocancel.h"
#include "python.h"
#include "sample.h"
#include "stack_native.h"
#include "tracker.h"
#include "writer.h"


static bool g_once_done;
static bool g_fork_child;

static void thread_exit(void *arg)
{
	struct thread_state *ts = arg;
	/* Ask to be called again after the other keys' destructors have run,
	 * so the events they make are still recorded: in every round glibc
	 * makes, not only the first (a destructor that sets its key again,
	 * which POSIX allows, is called in the next round; the shim's key,
	 * made first, comes first in each round). The last round is the
	 * last call: a value set again there would never be destroyed. An
	 * exit costs those rounds' walks of the thread's few key blocks. */
	if (ts->exiting + 1 < PTHREAD_DESTRUCTOR_ITERATIONS) {
		ts->exiting++;
		pthread_setspecific(g_thread_key, ts);
		return;
	}
	int saved = errno;
	hw_tls.guard = 1;
	tracker_thread_exit(ts);
	hw_tls.dead = 1;
	hw_tls.guard = 0;
	errno = saved;
}

/* The shim's locks are held across fork so the child gets them free, except
 * when fork comes from a signal handler that interrupted shim code on this
 * thread (fork is async-signal-safe): that code may hold one of them, and
 * taking it again would never return. */
static __thread bool t_fork_locked __attribute__((tls_model("initial-exec")));

static void fork_prepare(void)
{
	/* A child made without atfork handlers (raw fork, _Fork) that forks
	 * before its first event: the thread states are still its parent's,
	 * and the drain would wait for good for a thread of the parent's
	 * that was unwinding at that fork. Forget them first, as that first
	 * event would. */
	if (HW_UNLIKELY(proc_wiped()))
		init_fork_child(false);
	t_fork_locked = !hw_tls.guard;
	if (!t_fork_locked)
		return;
	/* first: a thread inside may need the modules lock to get out */
	tracker_fork_drain();
	modules_fork_prepare();
	tracker_registry_lock();
	writer_fork_prepare();
}

static void fork_parent(void)
{
	if (!t_fork_locked)
		return;
	writer_fork_parent();
	tracker_registry_unlock();
	modules_fork_after();
	atomic_store(&g_unwind_gate, 0);
}

void init_fork_child(bool drained)
{
	/* only this thread exists: a lock still held belonged to another one
	 * (or to the shim code a signal handler interrupted here, which
	 * unlocks it again when it goes on) */
	tracker_registry_unlock();
	modules_fork_after();
	writer_fork_child_locks();
	int saved = errno;
	int guard = hw_tls.guard;
	hw_tls.guard = 1;
	int was = atomic_load(&g_run_state);
	proc_claim();
	/* Made without the prepare handler's drain (no atfork handlers, or a
	 * fork from a signal handler that interrupted the shim) while other
	 * threads lived: one may have held a lock of libunwind's or the
	 * loader's, held for good here; or the loader's lock is held (a thread
	 * of the program was in dl_iterate_phdr: a C++ throw, backtrace()).
	 * No native unwind in this child, nor in its own children: its events
	 * get Python frames or none. */
	if ((!drained && tracker_had_other_threads()) || stack_native_loader_locked())
		g_unwind_unsafe = true;
	atomic_store(&g_unwind_gate, 0);
	/* the parent's file first: the chunks its threads leave below are
	 * not remembered (writer_chunk_left: the writer is not open) */
	writer_forget(drained);
	tracker_forget_all_threads(guard);
	python_fork_child();
	sample_fork_child();
	g_fork_child = true;
	g_log_only_tty = 1;
	/* The child opens its own file lazily, at its first event. */
	/* also when this process forks before its own first event: its trace
	 * was to start lazily (a fork child's), and so does the child's */
	bool follow = g_config.follow && (was == RUN_ON || (was == RUN_NOT_STARTED && g_fork_child));
	atomic_store(&g_run_state, follow ? RUN_NOT_STARTED : RUN_OFF);
	/* 0 until this child's trace starts; 1 in a child never traced, whose
	 * sampled hooks then count down without coming to start it */
	atomic_store(&g_proc.started, !follow);
	sample_libc_update();
	hw_tls.guard = guard;
	errno = saved;
}

static void fork_child(void)
{
	init_fork_child(t_fork_locked);
}

static uint64_t realtime_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static bool start(void)
{
	if (getauxval(AT_SECURE))
		return false; /* setuid/setgid: never trace */
	if (!g_fork_child) {
		log_take_stderr();
		if (!config_read())
			return false;
		/* a descendant of the traced command keeps quiet unless a person
		 * watches its stderr */
		if (g_config.root_pid && g_config.root_pid != getpid())
			g_log_only_tty = 1;
		if (!g_config.follow && g_config.root_pid && g_config.root_pid != getpid())
			return false;
	}
	if (!g_fork_child) {
		proc_setup();
		/* Bind libc's own calls to the allocator now, with stack to spare:
		 * a thread's first event asks pthread_getattr_np for its stack,
		 * and libc's first call of realloc and free through its lazily
		 * bound table takes 3 KiB of the loader's stack, maybe of a 16
		 * KiB thread. */
		pthread_attr_t a;
		if (!pthread_getattr_np(pthread_self(), &a))
			pthread_attr_destroy(&a);
	}
	/* A new trace takes descriptors for a moment (the file, then
	 * /proc/self/cmdline and the run's list beside it): not the program's
	 * last ones. Most often a fork child's start, at its first event,
	 * maybe right before an open of its own at its limit. */
	if (!writer_fd_to_spare()) {
		log_line("fewer than 3 file descriptors free below the limit; this process is not traced");
		return false;
	}
	g_start_monotonic_ns = tracker_monotonic_ns();
	if (!writer_open(realtime_ns(), g_start_monotonic_ns,
			 g_config.native == NATIVE_FULL   ? HW_HDR_NATIVE_STACKS
			 : g_config.native == NATIVE_AUTO ? HW_HDR_NATIVE_AUTO
							  : 0))
		return false;
	if (!g_once_done) {
		if (pthread_key_create(&g_thread_key, thread_exit) != 0) {
			log_line("no thread key available; not tracing");
			return false;
		}
		pthread_atfork(fork_prepare, fork_parent, fork_child);
		g_once_done = true;
	}
	struct thread_state *ts = tracker_thread_state_slow();
	if (!ts)
		return false;
	if (g_fork_child) {
		sample_emit_info(ts);
		modules_emit_all(ts);
		python_emit_info(ts);
	} else {
		stack_native_find_loader_lock();
		sample_emit_info(ts);
		modules_init(ts);
		python_start(ts);
	}
	return writer_ok();
}

bool init_maybe(void)
{
	int s = atomic_load(&g_run_state);
	if (s == RUN_ON)
		return true;
	if (s != RUN_NOT_STARTED || hw_tls.guard)
		return false;
	if (!atomic_compare_exchange_strong(&g_run_state, &s, RUN_STARTING))
		return s == RUN_ON;
	/* the program's call that started us returns with its own errno, also
	 * when the trace could not be made */
	int saved = errno;
	hw_tls.guard = 1;
	int c = hw_cancel_off();
	bool ok = start();
	hw_cancel_restore(c);
	hw_tls.guard = 0;
	atomic_store(&g_run_state, ok ? RUN_ON : RUN_OFF);
	if (ok) {
		atomic_store_explicit(&g_proc.started, 1, memory_order_release);
		sample_libc_update();
	}
	errno = saved;
	return ok;
}

__attribute__((constructor)) static void heapwise_ctor(void)
{
	hooks_resolve();
	init_maybe();
	/* The first traced process (no HEAPWISE_DIR: not under heapwise run)
	 * tells its exec'd descendants where it started, so that their traces
	 * land beside its own whatever directory they run in. Only here, before
	 * main: a start from an intercepted call may be inside the program's own
	 * setenv. The one change the shim makes to the program's environment
	 * (README, "heapwise run"). */
	if (g_config.dir_from_cwd) {
		int guard = hw_tls.guard;
		hw_tls.guard = 1;
		setenv("HEAPWISE_DIR", g_config.dir, 0);
		hw_tls.guard = guard;
	}
}

/* glibc's (GLIBC_2.18): a destructor of the calling thread's, run first
 * when it calls exit (and when it ends) */
extern int __cxa_thread_atexit_impl(void (*func)(void *), void *obj, void *dso_symbol);
extern void *__dso_handle;

static void heapwise_dtor(void);

/* Shared with every child sharing our memory (vfork, clone(CLONE_VM)):
 * set once one of them ran our exit handlers, which glibc then runs no
 * more (its list of them is ours: the child emptied it and closed it to
 * new entries); and while exit_after_vfork_child is on a thread's list. */
static _Atomic int g_exit_handlers_gone;
static _Atomic int g_exit_rearmed;

static void exit_after_vfork_child(void *arg)
{
	(void)arg;
	/* taken off the list: by our exit (or our main thread's
	 * pthread_exit), or by a child's exit(), which runs the vforking
	 * thread's list first */
	atomic_store(&g_exit_rearmed, 0);
	if (!proc_wiped() && getpid() == g_proc.pid)
		heapwise_dtor();
	else
		atomic_store(&g_exit_handlers_gone, 1);
}

/* Our exit handlers are gone: our destructor goes on the calling thread's
 * list of thread_local destructors, which glibc's exit runs first, when
 * that thread is our main one (main_thread), which calls exit when main
 * returns. Once: a second entry would only run after the first wrote the
 * trailer. */
static void rearm_for_parent(bool main_thread)
{
	if (!main_thread || atomic_exchange(&g_exit_rearmed, 1))
		return;
	int guard = hw_tls.guard;
	hw_tls.guard = 1; /* its calloc is not the program's */
	if (__cxa_thread_atexit_impl(exit_after_vfork_child, NULL, &__dso_handle))
		atomic_store(&g_exit_rearmed, 0);
	hw_tls.guard = guard;
}

/* A child sharing our memory (vfork, clone(CLONE_VM)) that calls exit()
 * instead of _exit() runs our exit handlers: our destructor would not run
 * at our own exit (no trailer: "no clean exit"). The child's thread's
 * thread_local destructors are the thread's of ours that made it (its TLS
 * is ours), run by its exit before the exit handlers, so one put there
 * from the child's run of our destructor stays for us. A second such child
 * runs that one: vfork's return in the parent (init_vfork_parent) puts it
 * back, for any number of children; the child's own rearm is for the
 * children made without our vfork (clone(CLONE_VM), the raw system
 * call). */
static void exit_in_child(void)
{
	atomic_store(&g_exit_handlers_gone, 1);
	/* this thread's state is the vforking thread's */
	const struct thread_state *ts = hw_tls.state;
	rearm_for_parent(ts && ts->tid == (uint32_t)g_proc.pid);
}

void init_vfork_parent(void)
{
	if (HW_LIKELY(!atomic_load(&g_exit_handlers_gone)) || atomic_load(&g_exit_rearmed) ||
	    hw_tls.guard)
		return;
	int state = atomic_load(&g_run_state);
	if (state != RUN_ON && state != RUN_STOPPED)
		return;
	int saved = errno;
	pid_t pid = getpid();
	if (!proc_wiped() && pid == g_proc.pid)
		rearm_for_parent(gettid() == pid);
	errno = saved;
}

__attribute__((destructor)) static void heapwise_dtor(void)
{
	int state = atomic_load(&g_run_state);
	if (state != RUN_ON && state != RUN_STOPPED)
		return;
	/* A child that never recorded an event after a fork without atfork
	 * handlers, or a child sharing our memory (vfork, clone(CLONE_VM))
	 * that calls exit(): the trace is its parent's, which runs on, and
	 * nothing of its state changes here. */
	if (proc_wiped())
		return;
	if (getpid() != g_proc.pid) {
		int saved = errno;
		exit_in_child();
		errno = saved;
		return;
	}
	int saved = errno; /* atexit handlers that run after this one see it */
	/* exit() on a thread whose key destructors ended its recording: the
	 * last thread left after main's pthread_exit (glibc's exit(0) after
	 * the thread's destructors), or exit() from a destructor. The trailer
	 * still needs a state of the thread's to be written from. */
	hw_tls.dead = 0;
	int c = hw_cancel_off();
	if (state == RUN_ON)
		tracker_write_trailer();
	atomic_store(&g_run_state, RUN_OFF);
	writer_finish();
	hw_cancel_restore(c);
	if (g_config.stack_check)
		log_line("HEAPWISE_STACK_CACHE=check: %llu cached captures, %llu differed from the uncached walk; "
			 "%llu RETAG decisions from the chain memo, %llu differed from a capture",
			 (unsigned long long)atomic_load(&g_stack_checks),
			 (unsigned long long)atomic_load(&g_stack_check_misses),
			 (unsigned long long)atomic_load(&g_chain_checks),
			 (unsigned long long)atomic_load(&g_chain_check_misses));
	if (g_config.stack_check && g_config.native == NATIVE_FULL)
		log_line("HEAPWISE_STACK_CACHE=check: %llu --native merges, %llu keeping the previous stack's outer part, "
			 "%llu differed from a whole merge",
			 (unsigned long long)atomic_load(&g_merge_checks),
			 (unsigned long long)atomic_load(&g_merge_kept),
			 (unsigned long long)atomic_load(&g_merge_check_misses));
	if (g_config.unwind_check)
		log_line("HEAPWISE_UNWIND_CACHE=check: %llu cached unwinds, %llu differed from libunwind's, %llu left to libunwind",
			 (unsigned long long)atomic_load(&g_unwind_checks),
			 (unsigned long long)atomic_load(&g_unwind_check_misses),
			 (unsigned long long)atomic_load(&g_unwind_slow));
	errno = saved;
}
