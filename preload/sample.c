/* Sampling mode (shim, between intercept and tracker): the countdown's draws,
 * the set of sampled live blocks, and the sampled events' slow paths. The
 * unsampled events never get here (sample.h's inline parts). */
#include "sample.h"

#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "modules.h"
#include "proc.h"
#include "python.h"
#include "heapwise/trace_format.h"
#include "heapwise/varint.h"

uint64_t g_sample_interval;
struct sample_set g_sample_set;
uint8_t g_sample_filter[1u << SAMPLE_FILTER_BITS];
static _Atomic int g_libc_glibc = -1; /* -1 not checked yet, 0 no, 1 yes */
static atomic_flag g_set_lock = ATOMIC_FLAG_INIT;
static _Atomic uint64_t g_seeds;

#define FIRST_SLOTS 1024u

void sample_read_env(void)
{
	/* before any event: the first one takes the sampling path too
	 * (config_read checks the value and says when it is not one) */
	const char *s = getenv("HEAPWISE_SAMPLE");
	uint64_t v = 0;
	if (s && *s && config_parse_size(s, &v) && v <= HW_SAMPLE_MAX)
		g_sample_interval = v;
}

/* splitmix64: a thread's generator state (never 0 once seeded). */
static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static void seed(void)
{
	uint64_t s = __builtin_ia32_rdtsc() ^ (uint64_t)getpid() << 40 ^
		     (uint64_t)(uintptr_t)&hw_tls ^
		     atomic_fetch_add_explicit(&g_seeds, 1, memory_order_relaxed) << 20;
	hw_tls.sample_rng = mix(s) | 1;
}

/* xorshift64*: a few instructions, once per sample. */
static uint64_t next_random(void)
{
	uint64_t x = hw_tls.sample_rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	hw_tls.sample_rng = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* ln(u) for u in (0, 1] without libm (the tests link the shim's core into
 * programs of their own): u = m * 2^e with m in [1, 2), ln m by the atanh
 * series in s = (m - 1) / (m + 1) <= 1/3; relative error below 1e-8. */
static double log_unit(double u)
{
	uint64_t bits;
	memcpy(&bits, &u, sizeof(bits));
	int e = (int)((bits >> 52) & 0x7ff) - 1023;
	bits = (bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull;
	double m;
	memcpy(&m, &bits, sizeof(m));
	double s = (m - 1) / (m + 1), s2 = s * s;
	double series = s * (2 + s2 * (2.0 / 3 + s2 * (2.0 / 5 + s2 * (2.0 / 7 + s2 * (2.0 / 9 +
			s2 * (2.0 / 11 + s2 * (2.0 / 13 + s2 * (2.0 / 15))))))));
	return e * 0.6931471805599453 + series;
}

/* Bytes to the next sample point: exponential, mean g_sample_interval, at
 * least 1 (0 means "not drawn yet"). */
static uint64_t draw(void)
{
	double u = (double)((next_random() >> 11) + 1) * 0x1.0p-53; /* (0, 1] */
	double d = -log_unit(u) * (double)g_sample_interval;
	return d < 1.8e19 ? (uint64_t)d + 1 : UINT64_MAX;
}

bool sample_point(size_t n)
{
	int e = errno;
	/* A child made without atfork handlers (raw fork, _Fork, clone) whose
	 * trace has not started (sample_enter_slow starts it first; a realloc's
	 * allocation half comes here without): this thread's countdown and
	 * generator are its parent's copies, and would pick the parent's
	 * blocks. A stream of its own from here, as init_fork_child gives. */
	if (HW_UNLIKELY(proc_wiped()))
		sample_fork_child();
	if (!hw_tls.sample_rng)
		seed();
	if (!hw_tls.sample_left) /* the thread's first allocation: its countdown starts here */
		hw_tls.sample_left = draw();
	/* also reached short of the point (before the start, see
	 * sample_ready) */
	bool taken = n >= hw_tls.sample_left;
	if (taken)
		hw_tls.sample_left = draw(); /* memoryless: from this block's end */
	else
		hw_tls.sample_left -= n;
	errno = e;
	return taken;
}

/* This process's first allocation, or a fork child's (made with or without
 * atfork handlers): its trace starts here, as the exact mode's first event
 * starts it (a fork child that allocates gets a trace even when it reaches
 * no sample point). A process that will not be traced (--no-follow, setuid,
 * a trace that cannot be made) goes over to the exact mode's paths, which
 * go straight to the real functions when recording is off, instead of
 * coming here at every allocation. */
static __attribute__((noinline)) void start_here(void)
{
	int e = errno;
	struct thread_state *ts = tracker_enter();
	if (ts)
		tracker_leave();
	else if (atomic_load(&g_run_state) == RUN_OFF && !sample_ready())
		__atomic_store_n(&g_sample_interval, 0, __ATOMIC_RELAXED);
	errno = e;
}

enum sample_entry sample_enter_slow(size_t n)
{
	if (hw_tls.guard)
		return SAMPLE_NESTED;
	if (HW_UNLIKELY(!sample_ready())) {
		start_here();
		if (!sample_ready()) { /* not traced (yet): nothing to sample */
			hw_tls.guard = 1;
			return SAMPLE_UNSAMPLED;
		}
	}
	bool taken = sample_take(n);
	hw_tls.guard = 1;
	return taken ? SAMPLE_SAMPLED : SAMPLE_UNSAMPLED;
}

static void set_lock(void)
{
	while (atomic_flag_test_and_set_explicit(&g_set_lock, memory_order_acquire))
		;
}

static void set_unlock(void)
{
	atomic_flag_clear_explicit(&g_set_lock, memory_order_release);
}

/* A change readers may see half done: the version is odd meanwhile. */
static void change_begin(void)
{
	/* the slot stores after it are release stores: a reader that sees one
	 * sees the odd version too */
	atomic_fetch_add_explicit(&g_sample_set.version, 1, memory_order_acq_rel);
}

static void change_end(void)
{
	uint32_t v = atomic_load_explicit(&g_sample_set.version, memory_order_relaxed);
	atomic_store_explicit(&g_sample_set.version, v + 1, memory_order_release);
}

/* True when a was not there. */
static bool put(struct sample_table *t, uint64_t a)
{
	for (size_t i = sample_home(t, a);; i = (i + 1) & t->mask) {
		uint64_t s = atomic_load_explicit(&t->slot[i], memory_order_relaxed);
		if (s == a)
			return false; /* a stale entry: its free was never seen */
		if (!s) {
			atomic_store_explicit(&t->slot[i], a, memory_order_release);
			t->used++;
			return true;
		}
	}
}

/* The filter's count of a's bucket, under the lock (readers load it
 * without). 255 stays: it may count more. */
static void filter_add(uint64_t a, int d)
{
	uint8_t *f = &g_sample_filter[sample_filter_slot(a)];
	uint8_t v = __atomic_load_n(f, __ATOMIC_RELAXED);
	if (v != 255)
		__atomic_store_n(f, (uint8_t)(v + d), __ATOMIC_RELEASE);
}

static struct sample_table *table_new(size_t slots)
{
	size_t bytes = sizeof(struct sample_table) + slots * sizeof(uint64_t);
	int saved = errno;
	struct sample_table *t =
		mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	errno = saved;
	if (t == MAP_FAILED)
		return NULL;
	t->mask = slots - 1;
	t->shift = 64u - (unsigned)__builtin_ctzll(slots);
	t->used = 0;
	return t;
}

bool sample_set_add(const void *p)
{
	uint64_t a = (uintptr_t)p;
	set_lock();
	struct sample_table *t = atomic_load_explicit(&g_sample_set.table, memory_order_relaxed);
	if (!t || (t->used + 1) * 2 > t->mask + 1) {
		/* at most half full, so a miss ends at an empty slot soon */
		struct sample_table *n = table_new(t ? (t->mask + 1) * 4 : FIRST_SLOTS);
		if (!n) {
			set_unlock();
			return false;
		}
		for (size_t i = 0; t && i <= t->mask; i++) {
			uint64_t s = atomic_load_explicit(&t->slot[i], memory_order_relaxed);
			if (s)
				(void)put(n, s);
		}
		/* the old table stays mapped: a reader may be probing it, and
		 * what it finds there is checked again under the lock */
		atomic_store_explicit(&g_sample_set.table, n, memory_order_release);
		t = n;
	}
	change_begin();
	if (put(t, a))
		filter_add(a, 1);
	change_end();
	set_unlock();
	return true;
}

bool sample_set_take(const void *p)
{
	uint64_t a = (uintptr_t)p;
	bool found = false;
	set_lock();
	struct sample_table *t = atomic_load_explicit(&g_sample_set.table, memory_order_relaxed);
	size_t i = t ? sample_home(t, a) : 0;
	for (; t; i = (i + 1) & t->mask) {
		uint64_t s = atomic_load_explicit(&t->slot[i], memory_order_relaxed);
		if (!s)
			break;
		if (s == a) {
			found = true;
			break;
		}
	}
	if (found) {
		/* backward shift: every entry stays reachable from its home
		 * without tombstones (a reader that raced with a move sees the
		 * version change and asks again here) */
		change_begin();
		for (size_t j = i;;) {
			j = (j + 1) & t->mask;
			uint64_t s = atomic_load_explicit(&t->slot[j], memory_order_relaxed);
			if (!s)
				break;
			size_t k = sample_home(t, s);
			bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
			if (!stays) {
				atomic_store_explicit(&t->slot[i], s, memory_order_release);
				i = j;
			}
		}
		atomic_store_explicit(&t->slot[i], 0, memory_order_release);
		t->used--;
		filter_add(a, -1);
		change_end();
	}
	set_unlock();
	return found;
}

void sample_fork_child(void)
{
	if (!g_sample_interval)
		return; /* nothing to forget (and the filter's pages stay shared) */
	/* the parent's tables stay mapped here: code a signal handler
	 * interrupted in this thread may still use one; the lock it may have
	 * held is released */
	atomic_store(&g_sample_set.table, NULL);
	atomic_store(&g_sample_set.version, 0);
	memset(g_sample_filter, 0, sizeof(g_sample_filter));
	atomic_flag_clear(&g_set_lock);
	/* a stream of its own: reseeded, and the countdown drawn again at the
	 * next allocation (the parent's, copied, would pick the same block as
	 * the parent's next sample) */
	hw_tls.sample_rng = 0;
	hw_tls.sample_left = 0;
}

void sample_record_alloc(int kind, void *p, size_t n)
{
	int e = errno;
	struct thread_state *ts = tracker_enter();
	if (ts) {
		if (sample_set_add(p))
			tracker_alloc(ts, kind, p, n);
		tracker_leave();
	}
	errno = e;
}

bool sample_free_slow(int kind, void *p)
{
	int e = errno;
	struct thread_state *ts = tracker_enter();
	if (!ts)
		hw_tls.guard = 1;
	if (sample_set_take(p) && ts)
		tracker_free(ts, kind, p);
	errno = e;
	return true;
}

bool sample_realloc_begin(struct sample_realloc *r, void *old)
{
	if (hw_tls.guard)
		return false;
	r->ts = NULL;
	r->was_sampled = false;
	r->seq_free = 0;
	if (old && HW_UNLIKELY(sample_maybe_sampled(old))) {
		int e = errno;
		r->ts = tracker_enter();
		if (!r->ts)
			hw_tls.guard = 1;
		r->was_sampled = sample_set_take(old);
		if (r->was_sampled && r->ts)
			r->seq_free = tracker_event_seq(r->ts);
		errno = e;
	} else {
		hw_tls.guard = 1;
	}
	return true;
}

void sample_realloc_end(struct sample_realloc *r, int kind, void *old, void *p, size_t n,
			bool freed, int taken_before)
{
	int e = errno;
	if (!p && !freed) {
		/* it failed: old lives on, sampled as it was */
		if (r->was_sampled)
			sample_set_add(old);
	} else if (freed) {
		if (r->was_sampled && r->ts)
			tracker_free_at(r->ts, kind, r->seq_free, old);
	} else {
		bool taken = taken_before < 0 ? sample_take(n) : taken_before;
		if (r->was_sampled) {
			if (r->ts && taken && sample_set_add(p))
				tracker_realloc(r->ts, kind, r->seq_free, old, p, n);
			else if (r->ts)
				tracker_free_at(r->ts, kind, r->seq_free, old);
		} else if (taken) {
			hw_tls.guard = 0;
			sample_record_alloc(kind, p, n);
			errno = e;
			return;
		}
	}
	hw_tls.guard = 0;
	errno = e;
}

#define LIBC_FUNCS 5

/* True when the real malloc, calloc, realloc and free (the definitions
 * after the shim's, as hooks_resolve finds them) are glibc's own (in the
 * object that has gnu_get_libc_version), 2.34 or newer (no __malloc_hook
 * left to call). Once per process tree. */
static bool libc_is_glibc(void)
{
	const char *(*version)(void) =
		(const char *(*)(void))dlsym(RTLD_DEFAULT, "gnu_get_libc_version");
	const char *v = version ? version() : NULL;
	unsigned major = 0, minor = 0;
	for (; v && *v >= '0' && *v <= '9'; v++)
		major = major * 10 + (unsigned)(*v - '0');
	if (v && *v == '.')
		for (v++; *v >= '0' && *v <= '9'; v++)
			minor = minor * 10 + (unsigned)(*v - '0');
	if (!v || major != 2 || minor < 34)
		return false;
	uintptr_t addr[LIBC_FUNCS] = {(uintptr_t)version};
	static const char *const name[LIBC_FUNCS - 1] = {"malloc", "calloc", "realloc", "free"};
	for (int i = 0; i < LIBC_FUNCS - 1; i++)
		if (!(addr[i + 1] = (uintptr_t)dlsym(RTLD_NEXT, name[i])))
			return false;
	return modules_same_object(addr, LIBC_FUNCS);
}

void sample_libc_update(void)
{
	bool on = g_sample_interval && atomic_load(&g_libc_glibc) == 1 && sample_ready() &&
		  atomic_load(&g_py_state) != PY_WAITING;
	atomic_store(&g_proc.sample_libc, on);
}

void sample_emit_info(struct thread_state *ts)
{
	if (!g_sample_interval)
		return;
	int e = errno;
	if (atomic_load(&g_libc_glibc) < 0)
		atomic_store(&g_libc_glibc, libc_is_glibc());
	errno = e;
	uint8_t *p = tracker_reserve(ts, 1 + 2 * HW_VARINT_MAX);
	if (!p)
		return;
	*p++ = HW_REC_SAMPLE;
	p = hw_put_varint(p, atomic_load(&g_seq));
	p = hw_put_varint(p, g_sample_interval);
	tracker_commit(ts, p);
}
