/* Module map (shim): reads the loader's list with dl_iterate_phdr and writes
 * MODULE records. Instead of wrapping dlopen/dlclose (which would change the
 * caller dlopen sees, and so its library search path), changes are noticed
 * through the loader's add/remove counters before a new native frame is
 * interned: a frame in a newly loaded object is always preceded by its
 * MODULE record. */
#include "modules.h"

#include <elf.h>
#include <link.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "heapwise/trace_format.h"
#include "heapwise/varint.h"
#include "stack_native.h"
#include "tracker.h"

#define MAX_MODULES 4096

struct module {
	uintptr_t bias, lo, hi;
	uint8_t build_id[HW_MAX_BUILD_ID];
	uint8_t build_id_len;
	uint8_t seen; /* mark for the rescan */
	char path[HW_MAX_PATH];
};

static struct module *g_mods; /* MAX_MODULES entries, mmap'd */
static unsigned g_nmods;
static atomic_flag g_lock = ATOMIC_FLAG_INIT;
static unsigned long long g_adds = ~0ull, g_subs = ~0ull;
static uintptr_t g_self_lo, g_self_hi;
static char g_exe[HW_MAX_PATH];

static void lock(void)
{
	while (atomic_flag_test_and_set_explicit(&g_lock, memory_order_acquire))
		;
}

static void unlock(void)
{
	atomic_flag_clear_explicit(&g_lock, memory_order_release);
}

void modules_set_self(uintptr_t lo, uintptr_t hi)
{
	g_self_lo = lo;
	g_self_hi = hi;
}

void modules_self_range(uintptr_t *lo, uintptr_t *hi)
{
	*lo = g_self_lo;
	*hi = g_self_hi;
}

bool modules_is_self(uintptr_t ip)
{
	return ip >= g_self_lo && ip < g_self_hi;
}

static void emit(struct thread_state *ts, const struct module *m, bool load)
{
	size_t plen = strlen(m->path);
	uint8_t *p = tracker_reserve(ts, 8 * HW_VARINT_MAX + m->build_id_len + plen);
	if (!p)
		return;
	uint64_t seq = atomic_load_explicit(&g_seq, memory_order_relaxed);
	*p++ = load ? HW_REC_MODULE : HW_REC_MODULE_UNLOAD;
	p = hw_put_varint(p, seq);
	p = hw_put_varint(p, m->bias);
	p = hw_put_varint(p, m->lo);
	if (load) {
		p = hw_put_varint(p, m->hi);
		p = hw_put_varint(p, m->build_id_len);
		memcpy(p, m->build_id, m->build_id_len);
		p += m->build_id_len;
		p = hw_put_varint(p, plen);
		memcpy(p, m->path, plen);
		p += plen;
	}
	tracker_commit(ts, p);
}

static void read_build_id(const struct dl_phdr_info *info, const ElfW(Phdr) *ph,
			  struct module *m)
{
	const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
	const uint8_t *end = p + ph->p_memsz;
	while (p + sizeof(ElfW(Nhdr)) <= end) {
		const ElfW(Nhdr) *n = (const ElfW(Nhdr) *)p;
		size_t name = (n->n_namesz + 3u) & ~3u, desc = (n->n_descsz + 3u) & ~3u;
		const uint8_t *d = p + sizeof(*n) + name;
		if (d + desc > end)
			return;
		if (n->n_type == NT_GNU_BUILD_ID && n->n_namesz == 4 &&
		    !memcmp(p + sizeof(*n), "GNU", 4) && n->n_descsz <= HW_MAX_BUILD_ID) {
			memcpy(m->build_id, d, n->n_descsz);
			m->build_id_len = (uint8_t)n->n_descsz;
			return;
		}
		p = d + desc;
	}
}

static void describe(const struct dl_phdr_info *info, struct module *m)
{
	memset(m, 0, offsetof(struct module, path));
	m->bias = info->dlpi_addr;
	m->lo = UINTPTR_MAX;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_LOAD) {
			uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
			if (lo < m->lo)
				m->lo = lo;
			if (lo + ph->p_memsz > m->hi)
				m->hi = lo + ph->p_memsz;
		} else if (ph->p_type == PT_NOTE && !m->build_id_len) {
			read_build_id(info, ph, m);
		}
	}
	const char *name = info->dlpi_name && *info->dlpi_name ? info->dlpi_name : g_exe;
	size_t n = strlen(name);
	if (n >= HW_MAX_PATH)
		n = HW_MAX_PATH - 1;
	memcpy(m->path, name, n);
	m->path[n] = 0;
}

struct scan {
	struct thread_state *ts;
};

static int scan_one(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct scan *s = arg;
	(void)size;
	struct module m;
	describe(info, &m);
	if (m.lo == UINTPTR_MAX)
		return 0;
	for (unsigned i = 0; i < g_nmods; i++) {
		struct module *k = &g_mods[i];
		if (k->bias == m.bias && k->lo == m.lo && !strcmp(k->path, m.path)) {
			k->seen = 1;
			return 0;
		}
	}
	if (g_nmods == MAX_MODULES)
		return 0;
	m.seen = 1;
	g_mods[g_nmods++] = m;
	if (s->ts)
		emit(s->ts, &m, true);
	return 0;
}

static int read_counters(struct dl_phdr_info *info, size_t size, void *arg)
{
	unsigned long long *c = arg;
	if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof(info->dlpi_subs)) {
		c[0] = info->dlpi_adds;
		c[1] = info->dlpi_subs;
	}
	return 1;
}

static void rescan(struct thread_state *ts)
{
	for (unsigned i = 0; i < g_nmods; i++)
		g_mods[i].seen = 0;
	struct scan s = {ts};
	dl_iterate_phdr(scan_one, &s);
	unsigned kept = 0;
	for (unsigned i = 0; i < g_nmods; i++) {
		if (!g_mods[i].seen) {
			emit(ts, &g_mods[i], false);
			continue;
		}
		if (kept != i)
			g_mods[kept] = g_mods[i];
		kept++;
	}
	g_nmods = kept;
}

const unsigned long long *g_loader_adds;
_Atomic unsigned long long g_loader_adds_seen;
static _Atomic unsigned long long g_loader_subs_seen;

struct counts {
	const unsigned long long *at;
	unsigned long long adds, subs;
	bool ok; /* the loader's word still holds dlpi_adds */
};

static int read_counts(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct counts *c = arg;
	(void)size; /* checked when the word was found */
	c->adds = info->dlpi_adds;
	c->subs = info->dlpi_subs;
	c->ok = *c->at == info->dlpi_adds;
	return 1;
}

/* Without a lock: two threads that both see the counts move may both move
 * the epoch (one more drop of the caches). What must hold is that a thread
 * that finds adds equal to g_loader_adds_seen also finds the epoch moved
 * for every unload before that load: g_loader_adds_seen is stored (release)
 * after g_loader_subs_seen, which is stored after the epoch moved, by a
 * thread that read the counts after the unload. */
bool modules_unload_check(struct thread_state *ts)
{
	const unsigned long long *at = __atomic_load_n(&g_loader_adds, __ATOMIC_RELAXED);
	if (!at || !tracker_unwind_enter(ts))
		return false;
	struct counts c = {at, 0, 0, false};
	dl_iterate_phdr(read_counts, &c);
	bool moved = false;
	if (!c.ok) {
		/* not the loader's count after all: never read again */
		__atomic_store_n(&g_loader_adds, NULL, __ATOMIC_RELAXED);
	} else {
		if (c.subs != atomic_load(&g_loader_subs_seen)) {
			atomic_fetch_add(&g_module_epoch, 1);
			atomic_store(&g_loader_subs_seen, c.subs);
			moved = true;
		}
		atomic_store_explicit(&g_loader_adds_seen, c.adds, memory_order_release);
	}
	tracker_unwind_exit(ts);
	return moved;
}

void modules_check(struct thread_state *ts)
{
	/* dl_iterate_phdr takes the loader's lock: not while a fork is under
	 * way (tracker_unwind_enter); the next check sees the change */
	if (!g_mods || !tracker_unwind_enter(ts))
		return;
	unsigned long long c[2] = {0, 0};
	dl_iterate_phdr(read_counters, c);
	lock();
	if (c[0] != g_adds || c[1] != g_subs) {
		g_adds = c[0];
		g_subs = c[1];
		rescan(ts);
	}
	unlock();
	tracker_unwind_exit(ts);
}

static int find_self(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	uintptr_t me = (uintptr_t)arg;
	struct module m;
	describe(info, &m);
	if (me >= m.lo && me < m.hi) {
		g_self_lo = m.lo;
		g_self_hi = m.hi;
		return 1;
	}
	return 0;
}

void modules_init(struct thread_state *ts)
{
	if (!g_mods) {
		ssize_t n = readlink("/proc/self/exe", g_exe, sizeof(g_exe) - 1);
		g_exe[n > 0 ? n : 0] = 0;
		void *p = mmap(NULL, MAX_MODULES * sizeof(struct module), PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (p == MAP_FAILED)
			return;
		g_mods = p;
		dl_iterate_phdr(find_self, (void *)(uintptr_t)&modules_init);
		unsigned long long adds, subs;
		const unsigned long long *at = stack_native_loader_adds(&adds, &subs);
		atomic_store(&g_loader_subs_seen, subs);
		atomic_store(&g_loader_adds_seen, adds);
		g_loader_adds = at;
	}
	modules_check(ts);
}

void modules_emit_all(struct thread_state *ts)
{
	if (!g_mods)
		return;
	lock();
	for (unsigned i = 0; i < g_nmods; i++)
		emit(ts, &g_mods[i], true);
	unlock();
}

void modules_fork_prepare(void)
{
	lock();
}

void modules_fork_after(void)
{
	unlock();
}

struct same_object {
	const uintptr_t *addr;
	unsigned n, found; /* bit k: addr[k] is in the object that holds addr[0] */
};

static int same_object_cb(struct dl_phdr_info *info, size_t size, void *data)
{
	(void)size;
	struct same_object *q = data;
	unsigned in = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
		for (unsigned k = 0; k < q->n; k++)
			if (q->addr[k] - lo < hi - lo)
				in |= 1u << k;
	}
	if (!(in & 1))
		return 0;
	q->found = in;
	return 1;
}

bool modules_same_object(const uintptr_t *addr, unsigned n)
{
	struct same_object q = {addr, n, 0};
	if (!n || n > 8)
		return false;
	dl_iterate_phdr(same_object_cb, &q);
	return q.found == (1u << n) - 1;
}
