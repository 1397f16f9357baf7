/* Native stack capture (shim, stacks stage); the only file that uses
 * libunwind. A stack is stepped by the thread's cached frame recipes
 * (unwind_cache.c) where it can be, else by libunwind: unw_backtrace (its
 * own fast path, which caches frame recipes per address too), or unw_step
 * frame by frame once a library was unloaded. Frames inside the shim are
 * cut off.
 *
 * libunwind checks the addresses it reads while it unwinds a frame without
 * unwind information (a guessed frame) by writing a byte of memory into a
 * pipe, which 1.6 opens when it starts (1.8: at the first check) and keeps:
 * two descriptors the program sees, lists, closes, and reuses for its own
 * files, into which libunwind then writes. The shim replaces the memory
 * accessor of libunwind's local address space with its own, which checks an
 * address with no descriptor (the calling thread's stack, else
 * process_vm_readv on itself, the kernel's read of our own memory that
 * fails with EFAULT where a plain read would fault), and closes the pipe
 * libunwind opened while starting. */
#define UNW_LOCAL_ONLY
#include "stack_native.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <libunwind.h>
#include <link.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "heapwise/compiler.h"

#include "config.h"
#include "modules.h"
#include "stack.h"
#include "proc.h"
#include "tracker.h"
#include "unwind_cache.h"

#if UNW_VERSION < UNW_VERSION_CODE(1, 6)
#error "libunwind 1.6 or later: the accessor's argument carries the validation bit"
#endif

#define PAGE 4096u
#define GOOD_PAGES 4

static _Atomic int g_unwind_state; /* 0 not started, 1 starting, 2 ready */
static int (*g_unw_access_mem)(unw_addr_space_t, unw_word_t, unw_word_t *, int, void *);

/* Pages of the thread's own stack this thread found readable in its current
 * unwind (libunwind checks the same few pages over and over). Forgotten at
 * the next unwind: a page may be unmapped between two events (a frame
 * pointer of a guessed frame can point anywhere, into a block freed since).
 * Only pages of the thread's own stack, which no other thread unmaps while
 * it runs: a page elsewhere (code made at run time that libunwind reads to
 * tell a PLT stub, a coroutine's stack) can be unmapped by another thread
 * between two reads, so each of those is read by the kernel. */
static __thread uintptr_t t_good[GOOD_PAGES] __attribute__((tls_model("initial-exec")));
static __thread unsigned t_good_next __attribute__((tls_model("initial-exec")));

static bool read_checked(uintptr_t addr, unw_word_t *val)
{
	/* before the good pages: an empty slot is 0, page 0's number (a
	 * guessed frame's rbp of 2 was read there: SIGSEGV) */
	if (addr < PAGE)
		return false;
	uintptr_t page = addr & ~(uintptr_t)(PAGE - 1);
	bool one_page = ((addr + sizeof(*val) - 1) & ~(uintptr_t)(PAGE - 1)) == page;
	if (one_page)
		for (unsigned i = 0; i < GOOD_PAGES; i++)
			if (t_good[i] == page) {
				*val = *(const unw_word_t *)addr;
				return true;
			}
	/* the kernel reads it for us: EFAULT instead of a fault, no descriptor */
	struct iovec local = {val, sizeof(*val)}, remote = {(void *)addr, sizeof(*val)};
	int saved = errno;
	ssize_t n = process_vm_readv(g_proc.pid ? g_proc.pid : getpid(), &local, 1, &remote, 1, 0);
	errno = saved;
	if (n != (ssize_t)sizeof(*val))
		return false; /* unreadable, or the call is not allowed: stop there */
	const struct thread_state *ts = hw_tls.state;
	if (one_page && ts && page - ts->stack_lo < ts->stack_hi - ts->stack_lo) {
		t_good[t_good_next] = page;
		t_good_next = (t_good_next + 1) % GOOD_PAGES;
	}
	return true;
}

/* libunwind's local accessor, with its check (the low bit of arg, packed by
 * libunwind 1.6 and later) done without a descriptor. */
static int access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val, int write,
		      void *arg)
{
	if (HW_UNLIKELY(write) || HW_LIKELY(!((uintptr_t)arg & 1)))
		return g_unw_access_mem(as, addr, val, write, arg);
	return read_checked(addr, val) ? 0 : -UNW_EINVAL;
}

/* The lowest descriptor not open from `from` on. */
static int lowest_free(int from)
{
	int fd = from;
	while (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
		fd++;
	return fd;
}

/* True when rd and wr are the two ends of one pipe opened non-blocking and
 * close-on-exec, the way libunwind opens its own. */
static bool is_validation_pipe(int rd, int wr)
{
	struct stat a, b;
	int fa = fcntl(rd, F_GETFL), fb = fcntl(wr, F_GETFL);
	int da = fcntl(rd, F_GETFD), db = fcntl(wr, F_GETFD);
	return fa >= 0 && fb >= 0 && (fa & O_ACCMODE) == O_RDONLY && (fb & O_ACCMODE) == O_WRONLY &&
	       (fa & fb & O_NONBLOCK) && (da & db & FD_CLOEXEC) && !fstat(rd, &a) && !fstat(wr, &b) &&
	       S_ISFIFO(a.st_mode) && S_ISFIFO(b.st_mode) && a.st_dev == b.st_dev &&
	       a.st_ino == b.st_ino;
}

/* libunwind starts at the first native unwind, not at our start: a Python
 * program's default mode never needs it. Other threads wait for the first.
 * The caching policy is global (locked): Debian's libunwind is built
 * without per-thread caches, and asked for them it shares one cache between
 * all threads without a lock. */
static void unwind_start(void)
{
	if (HW_LIKELY(atomic_load_explicit(&g_unwind_state, memory_order_acquire) == 2))
		return;
	int expect = 0;
	if (!atomic_compare_exchange_strong(&g_unwind_state, &expect, 1)) {
		while (atomic_load_explicit(&g_unwind_state, memory_order_acquire) != 2)
			sched_yield();
		return;
	}
	int saved = errno;
	/* libunwind 1.6 opens its pipe on the two lowest free descriptors
	 * while it starts (here, in unw_get_accessors) */
	int rd = lowest_free(0), wr = lowest_free(rd + 1);
	unw_accessors_t *acc = unw_get_accessors(unw_local_addr_space);
	if (is_validation_pipe(rd, wr)) {
		close(rd);
		close(wr);
	}
	g_unw_access_mem = acc->access_mem;
	acc->access_mem = access_mem;
	unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_GLOBAL);
	errno = saved;
	atomic_store_explicit(&g_unwind_state, 2, memory_order_release);
}

/* unw_backtrace's fast path keeps a cache of frame recipes per thread, which
 * it makes (256 KiB, every entry written) at the thread's first unwind and
 * unmaps at its exit: for a thread that allocates a few times that was
 * most of what it cost traced (and a TLB shootdown on every CPU at its
 * exit). A thread's first unwinds step frame by frame instead (libunwind's
 * own slow path, without that cache); the ones after use the fast path. */
#define YOUNG_UNWINDS 8
static __thread unsigned t_unwinds __attribute__((tls_model("initial-exec")));

static __attribute__((noinline)) int step_by_step(void **ips, int max)
{
	unw_context_t uc;
	unw_cursor_t cursor;
	if (unw_getcontext(&uc) < 0 || unw_init_local(&cursor, &uc) < 0)
		return 0;
	int n = 0;
	unw_word_t ip;
	while (n < max && unw_step(&cursor) > 0 && unw_get_reg(&cursor, UNW_REG_IP, &ip) >= 0)
		ips[n++] = (void *)ip;
	return n;
}

/* Called through one call instruction: both give the same return address
 * for the frame that calls them (the shim's own frames are the same
 * either way). */
static int (*const g_unwinders[2])(void **, int) = {unw_backtrace, step_by_step};

_Atomic uint64_t g_unwind_checks, g_unwind_check_misses, g_unwind_slow;

/* Drops the shim's own frames from the top of ips[0..n); at most max left. */
static unsigned strip_self(uintptr_t *ips, int n, unsigned max)
{
	int skip = 0;
	while (skip < n && modules_is_self(ips[skip]))
		skip++;
	unsigned out = 0;
	for (int i = skip; i < n && out < max; i++)
		ips[out++] = ips[i];
	return out;
}

/* libunwind's caches are keyed by address too, and its fast path's
 * (unw_backtrace's per-thread cache of frame recipes) is never flushed: an
 * object loaded where another was unloaded is stepped by the other's
 * recipes. After a dlclose (the module epoch moved) its other caches are
 * flushed, and the slow way is unw_step's, frame by frame. */
static _Atomic uint32_t g_unw_epoch;

static int slow_unwind(uintptr_t *ips, int max)
{
	bool young = HW_UNLIKELY(t_unwinds < YOUNG_UNWINDS);
	t_unwinds += young;
	for (unsigned i = 0; i < GOOD_PAGES; i++)
		t_good[i] = 0;
	return g_unwinders[young || atomic_load_explicit(&g_module_epoch, memory_order_relaxed)](
		(void **)ips, max);
}

/* HEAPWISE_UNWIND_CACHE=check: the cache's frames (ips, n of them kept)
 * against libunwind's (unw_step's after a dlclose: slow_unwind), unwound
 * into the thread's other scratch array. */
static __attribute__((noinline)) void check_cached(struct thread_state *ts, const uintptr_t *ips,
						   unsigned n, unsigned max)
{
	uintptr_t *again = ts->scratch.sps;
	unsigned m = strip_self(again, slow_unwind(again, (int)max + HW_UNWIND_SELF), max);
	bool same = m == n;
	for (unsigned i = 0; same && i < n; i++)
		same = ips[i] == again[i];
	atomic_fetch_add_explicit(&g_unwind_checks, 1, memory_order_relaxed);
	if (!same)
		atomic_fetch_add_explicit(&g_unwind_check_misses, 1, memory_order_relaxed);
}

/* No code lies above the user part of the address space (x86-64: below
 * 2^47, 2^56 with five-level page tables; arm64: 2^52). A stack a coroutine
 * library switched (greenlet copies slices of its stacks in and out: gevent)
 * can leave the unwinder a garbage word as its outermost "return address";
 * one with the top bit set read as a Python frame key (HW_FRAME_KEY_PYTHON)
 * and the capture took it for a code object's address: SIGSEGV under
 * --native. The stack ends before the first such word. */
#define USER_IP_END (1ull << 56)

static unsigned cut_at_non_user(struct thread_state *ts, uintptr_t *ips, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (HW_UNLIKELY(ips[i] >= USER_IP_END)) {
			/* the outer frames the cache said equal the last
			 * unwind's, counted from the root, are not these */
			if (ts)
				ts->unwind.same_root = 0;
			return i;
		}
	return n;
}

unsigned stack_native_unwind(uintptr_t *ips, unsigned max)
{
	struct thread_state *ts = hw_tls.state;
	if (!tracker_unwind_enter(ts))
		return 0;
	unwind_start();
	uint32_t epoch = atomic_load_explicit(&g_module_epoch, memory_order_acquire);
	if (HW_UNLIKELY(epoch != atomic_load_explicit(&g_unw_epoch, memory_order_relaxed))) {
		unw_flush_cache(unw_local_addr_space, 0, 0);
		/* While a dlclose is under way, what libunwind learns (of the
		 * closing object's destructors, on any thread) may be of code
		 * unmapped before the epoch moves again: flushed again at the
		 * next unwind. A thread's own caches need not: only frames on
		 * its own stack go in, and no object with a frame there is
		 * unloaded, but by the thread inside dlclose (the second move). */
		bool busy = atomic_load_explicit(&g_module_busy, memory_order_acquire);
		atomic_store_explicit(&g_unw_epoch, busy ? epoch - 1 : epoch, memory_order_relaxed);
	}
	if (max > HW_MAX_UNWIND)
		max = HW_MAX_UNWIND;
	_Static_assert(sizeof(void *) == sizeof(uintptr_t), "addresses");
	int n = -1;
	if (HW_LIKELY(ts && !g_config.no_unwind_cache)) {
		ts->unwind.serial++;
		ts->unwind.same_root = 0;
		uintptr_t lo, hi;
		modules_self_range(&lo, &hi);
		n = unwind_cache_backtrace(&ts->unwind, ips, (int)max, (int)max + HW_UNWIND_SELF, lo,
					   hi, ts->stack_lo, ts->stack_hi);
	}
	unsigned out;
	if (HW_LIKELY(n >= 0)) {
		out = (unsigned)n;
		if (HW_UNLIKELY(g_config.unwind_check))
			check_cached(ts, ips, out, max);
	} else if (HW_UNLIKELY(__atomic_load_n(&g_unwind_unsafe, __ATOMIC_RELAXED))) {
		out = 0; /* a fork child of this unwind's signal handler: see learn */
	} else {
		if (HW_UNLIKELY(g_config.unwind_check))
			atomic_fetch_add_explicit(&g_unwind_slow, 1, memory_order_relaxed);
		out = strip_self(ips, slow_unwind(ips, (int)max + HW_UNWIND_SELF), max);
	}
	out = cut_at_non_user(ts, ips, out);
	tracker_unwind_exit(ts);
	return out;
}

unsigned stack_native_unwind_sp(uintptr_t *ips, uintptr_t *sps, unsigned max)
{
	struct thread_state *ts = hw_tls.state;
	if (!tracker_unwind_enter(ts))
		return 0;
	unwind_start();
	for (unsigned i = 0; i < GOOD_PAGES; i++)
		t_good[i] = 0;
	unw_context_t uc;
	unw_cursor_t cur;
	if (unw_getcontext(&uc) != 0 || unw_init_local(&cur, &uc) != 0) {
		tracker_unwind_exit(ts);
		return 0;
	}
	unsigned out = 0, seen = 0;
	bool ours = true;
	do {
		unw_word_t ip, sp;
		if (unw_get_reg(&cur, UNW_REG_IP, &ip) != 0 || unw_get_reg(&cur, UNW_REG_SP, &sp) != 0)
			break;
		if (ours && modules_is_self((uintptr_t)ip) && seen++ < HW_UNWIND_SELF)
			continue;
		ours = false;
		if (HW_UNLIKELY(ip >= USER_IP_END))
			break; /* see cut_at_non_user */
		ips[out] = (uintptr_t)ip;
		sps[out++] = (uintptr_t)sp;
	} while (out < max && out < HW_MAX_UNWIND && unw_step(&cur) > 0);
	tracker_unwind_exit(ts);
	return out;
}

bool stack_native_proc_range(uintptr_t ip, uintptr_t *lo, uintptr_t *hi)
{
	unw_proc_info_t pi;
	struct thread_state *ts = hw_tls.state;
	if (!tracker_unwind_enter(ts))
		return false;
	int r = unw_get_proc_info_by_ip(unw_local_addr_space, (unw_word_t)ip, &pi, NULL);
	tracker_unwind_exit(ts);
	if (r != 0 || pi.end_ip <= pi.start_ip)
		return false;
	*lo = (uintptr_t)pi.start_ip;
	*hi = (uintptr_t)pi.end_ip;
	return true;
}

/* The loader lock is GL(dl_load_write_lock), a recursive mutex inside ld.so's
 * _rtld_global (at a different offset in every glibc release: 2608 in 2.36,
 * 1840 in sid's). Found as the one recursive mutex in _rtld_global this
 * thread holds while a dl_iterate_phdr callback runs. Only ever read. */
static const int *g_loader_lock;

/* GL(dl_load_adds), the loader's count of objects added (dlpi_adds), is
 * declared right after that lock and GL(dl_load_tls_lock) (glibc 2.34 and
 * later; right after the lock before): taken only where the word there
 * holds the callback's dlpi_adds (which changes only under that lock). */
static const unsigned long long *g_loader_adds_at;
static unsigned long long g_adds0, g_subs0;

struct loader_scan {
	const unsigned char *base;
	size_t size;
	const int *found;
	unsigned count;
};

static bool is_recursive_mutex(const unsigned char *p)
{
	const pthread_mutex_t *m = (const void *)p;
	return (m->__data.__kind & 3) == PTHREAD_MUTEX_RECURSIVE_NP;
}

static int scan_loader(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct loader_scan *s = arg;
	pid_t tid = gettid();
	for (size_t off = 0; off + sizeof(pthread_mutex_t) <= s->size; off += 8) {
		const pthread_mutex_t *m = (const void *)(s->base + off);
		if (m->__data.__owner == tid && m->__data.__lock && m->__data.__count >= 1 &&
		    (m->__data.__kind & 3) == PTHREAD_MUTEX_RECURSIVE_NP) {
			s->found = &m->__data.__lock;
			s->count++;
		}
	}
	if (s->count != 1 || size < offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs))
		return 1;
	const unsigned char *lock = (const unsigned char *)s->found, *end = s->base + s->size;
	for (unsigned locks = 2; locks >= 1; locks--) {
		const unsigned char *at = lock + locks * sizeof(pthread_mutex_t);
		if (at + sizeof(unsigned long long) <= end &&
		    (locks == 1 || is_recursive_mutex(lock + sizeof(pthread_mutex_t))) &&
		    *(const unsigned long long *)at == info->dlpi_adds) {
			g_loader_adds_at = (const unsigned long long *)at;
			g_adds0 = info->dlpi_adds;
			g_subs0 = info->dlpi_subs;
			break;
		}
	}
	return 1; /* one call is enough */
}

void stack_native_find_loader_lock(void)
{
	if (g_loader_lock)
		return;
	void *g = dlvsym(RTLD_DEFAULT, "_rtld_global", "GLIBC_PRIVATE");
	Dl_info info;
	const ElfW(Sym) *sym = NULL;
	if (!g || !dladdr1(g, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym ||
	    sym->st_size < sizeof(pthread_mutex_t) || sym->st_size > (1u << 20))
		return;
	struct loader_scan s = {g, sym->st_size, NULL, 0};
	dl_iterate_phdr(scan_loader, &s);
	if (s.count == 1)
		g_loader_lock = s.found;
	else
		g_loader_adds_at = NULL;
}

bool stack_native_loader_locked(void)
{
	return g_loader_lock && __atomic_load_n(g_loader_lock, __ATOMIC_RELAXED) != 0;
}

/* GL(dl_load_lock), which dlopen and dlclose hold for their whole work
 * (GL(dl_load_write_lock) only while they change the list), is declared
 * right before the write lock in every glibc since 2.13: taken only when
 * the mutex there is a recursive one. */
static const pthread_mutex_t *load_lock(void)
{
	static const pthread_mutex_t *found;
	static bool looked;
	if (!looked && g_loader_lock) {
		const unsigned char *w = (const unsigned char *)g_loader_lock -
					 offsetof(pthread_mutex_t, __data.__lock);
		const unsigned char *l = w - sizeof(pthread_mutex_t);
		void *g = dlvsym(RTLD_DEFAULT, "_rtld_global", "GLIBC_PRIVATE");
		if (g && l >= (const unsigned char *)g && is_recursive_mutex(l))
			found = (const pthread_mutex_t *)(const void *)l;
		looked = true;
	}
	return found;
}

int stack_native_loader_owner(void)
{
	const pthread_mutex_t *l = load_lock();
	if (!l)
		return -1;
	if (__atomic_load_n(&l->__data.__lock, __ATOMIC_RELAXED) != 0)
		return __atomic_load_n(&l->__data.__owner, __ATOMIC_RELAXED) ?: -1;
	return stack_native_loader_locked() ? -1 : 0;
}

const unsigned long long *stack_native_loader_adds(unsigned long long *adds,
						   unsigned long long *subs)
{
	*adds = g_adds0;
	*subs = g_subs0;
	return g_loader_adds_at;
}
