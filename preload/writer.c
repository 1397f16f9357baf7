/* Trace file writer (shim, last stage). The file is preallocated ahead of the
 * writers with fallocate, so a full disk shows up here as an error instead of
 * a SIGBUS on a mapped page; chunks are mapped MAP_SHARED, so every byte a
 * thread has written survives the process being killed. No descriptor stays
 * open between chunk claims: programs list and close their descriptors
 * (subprocess's pass_fds tests do), so blocks the file has room for are
 * mapped from the header page's mapping (map_without_fd), and the file is
 * reopened by its absolute path, its inode checked, to grow it (or under an
 * address-space limit), only while the program has descriptors to spare
 * (writer_fd_to_spare). The header page alone stays
 * mapped (shared) for the whole run: a stop of recording is stored into it
 * (trace_format.h, struct hw_stop_record) without a descriptor, which the
 * process may no longer be allowed to open (it dropped its privileges). */
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "heapwise/compiler.h"
#include "heapwise/trace_format.h"
#include "log.h"
#include "proc.h"

/* The file grows by a quarter of its size, and at least GROW_MIN_BYTES (two
 * blocks), once less than half of that is left ahead: room mapped without a
 * descriptor while the process has none to spare (map_without_fd). */
#define GROW_MIN_CHUNKS 2u
#define GROW_MIN_BYTES (1u << 20)

/* In next_chunk once writer_finish has read it: a claim whose number has
 * it comes too late (its block would lie past the end of the file, which
 * writer_finish cuts to the blocks claimed before: a SIGBUS at the first
 * write of a thread still running at exit). */
#define NEXT_SEALED (1ull << 62)

static struct {
	bool open; /* a trace file exists for this process */
	dev_t dev;
	ino_t ino;
	uint32_t chunk_size;
	_Atomic uint64_t next_chunk;
	_Atomic uint64_t capacity; /* chunks the file has room for */
	atomic_bool failed;
	atomic_bool finished;
	pid_t pid; /* the process that created the file */
	/* the header page, shared; NULL when it could not be mapped, or once
	 * the program unmapped, remapped or protected it (writer_program_maps) */
	uint8_t *_Atomic hdr_map;
	uint64_t start_monotonic_ns; /* the header's: checked by map_without_fd */
	pthread_mutex_t grow_lock;
	char path[2048]; /* as created (absolute), for messages */
	char abs_path[2048]; /* for reopening after a chdir */
} w = {.grow_lock = PTHREAD_MUTEX_INITIALIZER};

const char *writer_path(void)
{
	return w.path;
}

bool writer_ok(void)
{
	return w.open && !atomic_load_explicit(&w.failed, memory_order_relaxed);
}

bool writer_made(void)
{
	return w.open;
}

uint32_t writer_chunk_size(void)
{
	return w.chunk_size;
}

static int reopen(void);

/* A descriptor the shim may take for a moment (the trace reopened, a file
 * of /proc read) must not be one the program needs: its own open at that
 * moment would fail with EMFILE for the one the shim holds. The shim opens
 * only while at least FD_SPARE others are free below the program's limit
 * (read each time: the program may change it), looked at from the limit
 * down (the kernel hands out the lowest free number, so a process's free
 * descriptors are at the top) with F_GETFD, which fails with EBADF for a
 * free one and does nothing to an open one: one call for each of the
 * first FD_SPARE + 1 in a process far from its limit, at most FD_LOOKS. */
#define FD_SPARE 2
#define FD_LOOKS 256

bool writer_fd_to_spare(void)
{
	int saved = errno;
	struct rlimit r;
	bool ok = false;
	if (getrlimit(RLIMIT_NOFILE, &r) == 0) {
		int lim = r.rlim_cur > (rlim_t)INT_MAX ? INT_MAX : (int)r.rlim_cur;
		int free_ = 0;
		for (int fd = lim - 1, looks = 0; fd >= 0 && looks < FD_LOOKS; fd--, looks++)
			if (fcntl(fd, F_GETFD) < 0 && errno == EBADF && ++free_ > FD_SPARE) {
				ok = true;
				break;
			}
	}
	errno = saved;
	return ok;
}

/* Blocks every signal but the synchronous ones (a fault: blocked, the
 * kernel would kill the process) on this thread; *old: the mask to put
 * back. False when the mask could not be changed (nothing to put back). */
static bool block_async_signals(sigset_t *old)
{
	sigset_t set;
	sigfillset(&set);
	static const int sync_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS};
	for (size_t i = 0; i < sizeof(sync_signals) / sizeof(sync_signals[0]); i++)
		sigdelset(&set, sync_signals[i]);
	return pthread_sigmask(SIG_BLOCK, &set, old) == 0;
}

static uint64_t monotonic_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* Writes the stop record into the file's header page (trace_format.h): once,
 * at the stop, by the process that made the file only. The asynchronous
 * signals are blocked from the owner check to the last store: a handler that
 * forks without atfork handlers makes a child that goes on where it
 * interrupted, in its parent's shared mapping, and must not mark the
 * parent's trace as stopped. Without the header mapping (it could not be
 * made), the record goes through the file, reopened. errno is kept. */
static void mark_stopped(uint32_t reason, uint64_t value)
{
	int saved = errno;
	struct hw_stop_record r = {
		.reason = reason,
		.value = value,
	};
	sigset_t old;
	bool masked = block_async_signals(&old);
	if (w.open && !proc_wiped() && getpid() == w.pid) {
		uint8_t *hm = atomic_load(&w.hdr_map);
		const struct hw_file_header *h = (const struct hw_file_header *)hm;
		uint64_t start = h ? h->start_monotonic_ns : 0, now = monotonic_ns();
		r.time_ns = start && now > start ? now - start : 0;
		r.pid = (uint64_t)w.pid;
		if (hm) {
			struct hw_stop_record *m = (struct hw_stop_record *)(hm + HW_STOP_OFFSET);
			m->reason = r.reason;
			m->time_ns = r.time_ns;
			m->value = r.value;
			m->pid = r.pid;
			atomic_store_explicit((_Atomic uint32_t *)&m->magic, HW_STOP_MAGIC,
					      memory_order_release);
		} else {
			int fd = writer_fd_to_spare() ? reopen() : -1;
			if (fd >= 0) {
				struct hw_file_header fh;
				if (pread(fd, &fh, sizeof(fh), 0) == (ssize_t)sizeof(fh)) {
					uint64_t s = fh.start_monotonic_ns;
					r.time_ns = s && now > s ? now - s : 0;
				}
				r.magic = HW_STOP_MAGIC;
				(void)!pwrite(fd, &r, sizeof(r), HW_STOP_OFFSET);
				close(fd);
			}
		}
	}
	if (masked)
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved;
}

static void fail_as(uint32_t reason, const char *what, int err)
{
	if (atomic_exchange(&w.failed, true))
		return;
	mark_stopped(reason, (uint64_t)err);
	log_line("%s %s failed (%s); recording stopped, the program continues", what, w.path,
		 strerror(err));
}

void writer_fail(const char *what, int err)
{
	fail_as(HW_STOP_MAP, what, err);
}

/* Stops recording before a limit is reached; why says which. */
static void stop_before(uint32_t reason, const char *why, uint64_t value)
{
	if (atomic_exchange(&w.failed, true))
		return;
	mark_stopped(reason, value);
	log_line("%s would %s (%llu bytes); recording stopped, the program continues", w.path, why,
		 (unsigned long long)value);
}

/* The program's file size limit (ulimit -f): a file that grows past it gets
 * the program killed with SIGXFSZ. Read at each growth: the program may
 * change it. */
static uint64_t fsize_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_FSIZE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return UINT64_MAX;
	return (uint64_t)rl.rlim_cur;
}

bool writer_expand_path(char *out, size_t size, const char *pattern, const char *program,
			long pid)
{
	static char def[600]; /* static: see writer_open */
	if (!*pattern) {
		log_snprintf(def, sizeof(def), "heapwise.%s.%%p.hwt", program);
		pattern = def;
	}
	size_t n = 0;
	for (const char *p = pattern; *p; p++) {
		char tmp[32];
		const char *add = tmp;
		if (p[0] == '%' && p[1] == 'p') {
			log_snprintf(tmp, sizeof(tmp), "%ld", pid);
			p++;
		} else if (p[0] == '%' && p[1] == '%') {
			tmp[0] = '%';
			tmp[1] = 0;
			p++;
		} else {
			tmp[0] = *p;
			tmp[1] = 0;
		}
		size_t len = strlen(add);
		if (n + len + 1 > size)
			return false;
		memcpy(out + n, add, len);
		n += len;
	}
	out[n] = 0;
	return true;
}

static ssize_t read_small_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t n = 0;
	while (n < size) {
		ssize_t r = read(fd, buf + n, size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	return (ssize_t)n;
}

static int create_exclusive(char *path, size_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0 || errno != EEXIST)
		return fd;
	/* Never overwrite: an exec'd image keeps its pid (env, exec in a shell),
	 * so the name may be taken by the image before it. Take the next free
	 * "NAME-N.hwt" beside it. */
	static char base[sizeof(w.path)]; /* static: see writer_open */
	strcpy(base, path);
	size_t len = strlen(base);
	const char *ext = len > 4 && !strcmp(base + len - 4, ".hwt") ? ".hwt" : "";
	base[len - strlen(ext)] = 0;
	for (int i = 2; i < 1000; i++) {
		if (log_snprintf(path, size, "%s-%d%s", base, i, ext) >= size - 1)
			break;
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	log_snprintf(path, size, "%s%s", base, ext);
	errno = EEXIST;
	return -1;
}

/* Adds this process's trace to the list `heapwise run` reads
 * (HEAPWISE_MANIFEST): the absolute path and a NUL, in one O_APPEND write, so
 * the entries of processes that start together never mix. Opened and closed
 * here: no descriptor stays. A list that cannot be written (removed, another
 * user's) only leaves this trace out of run's message. */
static void manifest_add(void)
{
	if (!g_config.manifest[0])
		return;
	int saved = errno;
	int fd = open(g_config.manifest, O_WRONLY | O_APPEND | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC);
	if (fd >= 0) {
		struct stat st;
		if (!fstat(fd, &st) && S_ISREG(st.st_mode))
			(void)!write(fd, w.abs_path, strlen(w.abs_path) + 1);
		close(fd);
	}
	errno = saved;
}

bool writer_open(uint64_t start_realtime_ns, uint64_t start_monotonic_ns, uint32_t flags)
{
	extern char *program_invocation_short_name;
	const char *prog = program_invocation_short_name;
	if (!prog || !*prog)
		prog = "process";
	/* A relative path is relative to the directory the tree started in
	 * (g_config.dir), not to this process's working directory: a test
	 * runner's child in a temporary directory must not leave its trace
	 * there, nor lose it when the directory is removed. Static, as the
	 * other buffers of a start (see hdr below). */
	static char name[1024];
	if (!writer_expand_path(name, sizeof(name), g_config.output, prog, (long)getpid()) ||
	    log_snprintf(w.path, sizeof(w.path), "%s%s%s", name[0] == '/' ? "" : g_config.dir,
			 name[0] == '/' ? "" : "/", name) >= sizeof(w.path) - 1) {
		log_line("the output path is too long; not tracing");
		return false;
	}
	/* Static, as the other buffers on the way here: a fork child starts at
	 * its first event, which may be on a nearly full stack (a signal
	 * handler's); one thread at a time runs the start. */
	static uint8_t hdr[HW_HEADER_SIZE];
	memset(hdr, 0, sizeof(hdr));
	struct hw_file_header *h = (struct hw_file_header *)hdr;
	memcpy(h->magic, HW_MAGIC, 8);
	h->version = HW_FORMAT_VERSION;
	h->header_size = HW_HEADER_SIZE;
	h->chunk_size = g_config.chunk_size;
	h->flags = flags;
	h->pid = (uint64_t)getpid();
	h->ppid = (uint64_t)getppid();
	h->start_realtime_ns = start_realtime_ns;
	h->start_monotonic_ns = start_monotonic_ns;
	h->page_size = (uint64_t)sysconf(_SC_PAGESIZE);
	/* read before the file is made: one descriptor at a time */
	size_t room = HW_STOP_OFFSET - HW_HEADER_FIXED_SIZE; /* the stop record after it */
	char *text = (char *)hdr + HW_HEADER_FIXED_SIZE;
	ssize_t cl = read_small_file("/proc/self/cmdline", text, room / 2);
	if (cl < 0)
		cl = 0;
	h->cmdline_len = (uint32_t)cl;
	ssize_t el = readlink("/proc/self/exe", text + cl, room - (size_t)cl);
	h->exe_len = el > 0 ? (uint32_t)el : 0;

	int fd = create_exclusive(w.path, sizeof(w.path));
	if (fd < 0) {
		log_line("cannot create trace file %s: %s; not tracing", w.path, strerror(errno));
		return false;
	}
	/* 0600 whatever the umask: each chunk claim reopens the file, which a
	 * program's umask 0777 (mode 0000) would refuse to anyone but root */
	fchmod(fd, 0600);
	log_snprintf(w.abs_path, sizeof(w.abs_path), "%s", w.path);
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return false;
	}
	uint64_t limit = fsize_limit();
	if (limit < (uint64_t)HW_HEADER_SIZE + g_config.chunk_size) {
		log_line("the file size limit (ulimit -f, %llu bytes) leaves no room for a trace; not tracing",
			 (unsigned long long)limit);
		close(fd);
		unlink(w.path);
		return false;
	}

	size_t off = 0;
	while (off < sizeof(hdr)) {
		ssize_t r = pwrite(fd, hdr + off, sizeof(hdr) - off, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			log_line("cannot write trace file %s: %s; not tracing", w.path,
				 r < 0 ? strerror(errno) : "short write");
			close(fd);
			unlink(w.path);
			return false;
		}
		off += (size_t)r;
	}
	/* the header page, kept for a stop (mark_stopped); without it a stop
	 * is written through the file */
	void *hm = mmap(NULL, HW_HEADER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	atomic_store(&w.hdr_map, hm == MAP_FAILED ? NULL : (uint8_t *)hm);
	close(fd);
	w.pid = getpid();
	w.start_monotonic_ns = start_monotonic_ns;
	w.open = true;
	w.dev = st.st_dev;
	w.ino = st.st_ino;
	w.chunk_size = g_config.chunk_size;
	atomic_store(&w.next_chunk, 0);
	atomic_store(&w.capacity, 0);
	atomic_store(&w.failed, false);
	atomic_store(&w.finished, false);
	manifest_add();
	return true;
}

/* Opens the trace again; -1 (errno set) when the path no longer names the
 * file this process created: never write to somebody else's file. */
static int reopen(void)
{
	int fd = open(w.abs_path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_dev != w.dev || st.st_ino != w.ino) {
		close(fd);
		errno = ESTALE;
		return -1;
	}
	return fd;
}

/* The free space the trace must leave on its filesystem (HEAPWISE_MIN_FREE),
 * and what is free now: the blocks an unprivileged program may still take.
 * False when there is no reserve (or no answer). */
static bool free_space(int fd, uint64_t *reserve, uint64_t *avail)
{
	if (!g_config.min_free_bytes && !g_config.min_free_percent)
		return false;
	struct statvfs sv;
	if (fstatvfs(fd, &sv) < 0)
		return false;
	uint64_t r = g_config.min_free_bytes ? g_config.min_free_bytes : UINT64_MAX;
	uint64_t pct = (uint64_t)sv.f_blocks / 100 * g_config.min_free_percent * sv.f_frsize;
	if (g_config.min_free_percent && pct < r)
		r = pct;
	*reserve = r;
	*avail = (uint64_t)sv.f_bavail * sv.f_frsize;
	return true;
}

/* Blocks the file grows by at a time, with capacity cap now. */
static uint64_t grow_step(uint64_t cap)
{
	uint64_t add = GROW_MIN_BYTES / w.chunk_size;
	if (add < GROW_MIN_CHUNKS)
		add = GROW_MIN_CHUNKS;
	return cap / 4 > add ? cap / 4 : add;
}

/* Is the room ahead of blocks .. end - 1 less than half a step (time to
 * grow, while a descriptor is there to spare)? */
static bool room_low(uint64_t end)
{
	uint64_t cap = atomic_load(&w.capacity);
	return end + grow_step(cap) / 2 > cap;
}

/* Makes the file hold blocks first .. first + *n - 1, preallocated, and
 * grows it ahead when little room is left (room_low). The
 * limits (ulimit -f, HEAPWISE_MAX_SIZE, the free-space reserve) may leave
 * room for fewer: *n becomes what fits, and only when block first itself
 * does not fit does recording stop (false). A window of blocks is cut at a
 * limit instead of stopping short of it by the window's size. Growth ahead
 * of blocks the file holds already that fails changes nothing. */
static bool grow_to(int fd, uint64_t first, uint32_t *n)
{
	bool ok = true;
	pthread_mutex_lock(&w.grow_lock);
	uint64_t cap = atomic_load(&w.capacity);
	uint64_t need = first + *n - 1;
	/* needed: the blocks are not there yet; else growth ahead only, which
	 * stops nothing (the file has the blocks) */
	bool needed = cap <= need;
	if (cap <= need + grow_step(cap) / 2) {
		/* the limits: growth stops short of each, and recording stops
		 * before the next block would pass one */
		uint64_t limit = fsize_limit();
		const char *which = "pass the file size limit of ulimit -f";
		uint32_t reason = HW_STOP_FSIZE;
		if (g_config.max_size && g_config.max_size < limit) {
			limit = g_config.max_size;
			which = "pass its size cap (HEAPWISE_MAX_SIZE)";
			reason = HW_STOP_SIZE_CAP;
		}
		uint64_t room = limit < HW_HEADER_SIZE ? 0 : (limit - HW_HEADER_SIZE) / w.chunk_size;
		if (room <= first && needed) {
			stop_before(reason, which, limit);
			pthread_mutex_unlock(&w.grow_lock);
			return false;
		}
		if (room <= need && needed)
			need = room - 1;
		uint64_t reserve, avail;
		uint64_t fits = UINT64_MAX;
		if (free_space(fd, &reserve, &avail)) {
			fits = avail > reserve ? (avail - reserve) / w.chunk_size : 0;
			if (cap + fits <= first && needed) {
				stop_before(HW_STOP_MIN_FREE,
					    "leave less free space on its filesystem than the reserve "
					    "(HEAPWISE_MIN_FREE)",
					    reserve);
				pthread_mutex_unlock(&w.grow_lock);
				return false;
			}
			if (cap + fits <= need && needed)
				need = cap + fits - 1;
		}
		*n = (uint32_t)(need - first + 1);
		if (cap <= need + grow_step(cap) / 2) {
			/* a step past the need, or past the end ahead of it (so
			 * growing ahead comes no more often than growing did) */
			uint64_t target = (cap > need ? cap : need) + grow_step(cap);
			if (target > room)
				target = room;
			if (fits != UINT64_MAX && target > cap + fits)
				target = cap + fits;
			off_t from = (off_t)(HW_HEADER_SIZE + cap * w.chunk_size);
			int err = 0;
			while (target > cap) {
				off_t len = (off_t)((target - cap) * w.chunk_size);
				err = 0;
				if (fallocate(fd, 0, from, len) < 0) {
					err = errno;
					if (err == EOPNOTSUPP || err == ENOSYS)
						err = posix_fallocate(fd, from, len);
				}
				/* a nearly full filesystem: the blocks needed now,
				 * without the room ahead */
				if (err != ENOSPC || target <= need + 1)
					break;
				target = need + 1;
			}
			if (err && needed) {
				fail_as(HW_STOP_GROW, "growing", err);
				ok = false;
			} else if (!err && target > cap) {
				atomic_store(&w.capacity, target);
			}
		}
	}
	pthread_mutex_unlock(&w.grow_lock);
	return ok;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

/* Has MADV_POPULATE_WRITE failed as unknown (a kernel before 5.14)? */
static atomic_bool g_no_populate_write;

/* Maps n blocks of the file from block idx on, their pages made ready for
 * writing by one call: NULL after failing (the first failure logged).
 * MADV_POPULATE_WRITE faults every page in for writing (the page cache page
 * zeroed, the filesystem told it is dirty) in one system call; left to the
 * hot path, each page was a write fault of its own, and on this machine the
 * faults and the mapping calls of 64 KiB blocks were most of the system time
 * of a traced run. MAP_POPULATE alone prefaults a shared mapping for reading
 * only. A kernel without MADV_POPULATE_WRITE gets MAP_POPULATE. */
/* Blocks idx .. idx + *np - 1 (fewer: what the file has room for) mapped
 * without a descriptor: mremap with an old size of 0 makes a second mapping
 * of a shared one, here of the header page's file from offset 0 to the
 * blocks' end, whose front is then unmapped. How blocks within the file's
 * capacity are mapped (a program at its descriptor limit, a server that ran
 * out for a moment, goes on being traced; none of its descriptors is taken
 * for a moment); growing the file needs a descriptor.
 * The new mapping must be this trace's (the program may have mapped
 * something else where the header page was since it was read): its header
 * is checked. A system call of its own (the shim's mremap is the
 * program's). NULL when it cannot. */
static uint8_t *map_without_fd(uint64_t idx, uint32_t *np)
{
	uint64_t cap = atomic_load(&w.capacity);
	uint8_t *hm = atomic_load(&w.hdr_map);
	if (!hm || idx >= cap)
		return NULL;
	uint32_t n = idx + *np > cap ? (uint32_t)(cap - idx) : *np;
	size_t front = HW_HEADER_SIZE + (size_t)idx * w.chunk_size, len = (size_t)n * w.chunk_size;
	void *d = (void *)syscall(SYS_mremap, hm, (size_t)0, front + len, MREMAP_MAYMOVE, NULL);
	if (d == MAP_FAILED)
		return NULL;
	const struct hw_file_header *h = d;
	if (memcmp(h->magic, HW_MAGIC, 8) || h->pid != (uint64_t)w.pid ||
	    h->start_monotonic_ns != w.start_monotonic_ns) {
		munmap(d, front + len);
		return NULL;
	}
	munmap(d, front);
	*np = n;
	return (uint8_t *)d + front;
}

/* Under an address-space limit (ulimit -v) the second mapping, as large as
 * the file for a moment, could take room another thread's mmap needs: the
 * file is opened instead (map_without_fd then only when no descriptor is
 * free, where the alternative is to stop). */
static bool address_space_limited(void)
{
	struct rlimit r;
	return getrlimit(RLIMIT_AS, &r) < 0 || r.rlim_cur != RLIM_INFINITY;
}

static uint8_t *map_blocks(uint64_t idx, uint32_t *np)
{
	uint32_t n = *np;
	size_t len = (size_t)n * w.chunk_size;
	bool pw = !atomic_load_explicit(&g_no_populate_write, memory_order_relaxed);
	/* blocks the file has room for: mapped without opening it (no
	 * descriptor of the program's taken, even for a moment); the file is
	 * opened to grow it (before it is needed, room_low), or when that
	 * mapping cannot be made, and only with descriptors to spare: else
	 * the mapping without one (under an address-space limit too, where
	 * the alternative is to stop) */
	bool in_file = idx + n <= atomic_load(&w.capacity);
	uint8_t *p = in_file && !room_low(idx + n) && !address_space_limited()
			     ? map_without_fd(idx, np)
			     : NULL;
	if (!p) {
		int fd = writer_fd_to_spare() ? reopen() : (errno = EMFILE, -1);
		if (fd < 0) {
			int err = errno;
			p = err == EMFILE || err == ENFILE || in_file ? map_without_fd(idx, np) : NULL;
			if (!p) {
				fail_as(HW_STOP_REOPEN, "reopening", err);
				return NULL;
			}
		} else {
			if (room_low(idx + n)) {
				if (!grow_to(fd, idx, &n)) {
					close(fd);
					return NULL;
				}
				*np = n;
			}
			off_t off = (off_t)(HW_HEADER_SIZE + idx * w.chunk_size);
			void *m = mmap(NULL, (size_t)n * w.chunk_size, PROT_READ | PROT_WRITE,
				       MAP_SHARED | (pw ? 0 : MAP_POPULATE), fd, off);
			int map_err = errno;
			close(fd);
			if (m == MAP_FAILED) {
				writer_fail("mapping", map_err);
				return NULL;
			}
			p = m;
		}
	}
	len = (size_t)*np * w.chunk_size;
	if (HW_UNLIKELY(!w.open || proc_wiped())) {
		/* a fork child (from a signal handler that interrupted this
		 * claim) that goes on here: the blocks are its parent's */
		munmap(p, len);
		return NULL;
	}
	if (pw && madvise(p, len, MADV_POPULATE_WRITE) < 0 && errno == EINVAL)
		atomic_store_explicit(&g_no_populate_write, true, memory_order_relaxed);
	return p;
}

static uint8_t *map_block(uint64_t idx)
{
	uint32_t n = 1;
	return map_blocks(idx, &n);
}

/* Slabs: blocks cut into slots of one size (trace_format.h), handed to
 * threads for their first chunks. A slab stays mapped while a thread
 * writes into one of its slots, or while slots are left to hand out. */
struct slab {
	uint8_t *map;
	uint64_t idx; /* its block number */
	uint32_t size, nslots, next, users;
	struct slab *free_next;
};

static const uint32_t slot_sizes[] = {HW_SLOT_SMALL, HW_SLOT_MEDIUM};

static struct {
	pthread_mutex_t lock;
	struct slab *cur[2]; /* handing out slots, per size */
	struct slab *free; /* unused descriptors */
} g_slabs = {.lock = PTHREAD_MUTEX_INITIALIZER};

static struct slab *slab_new(void)
{
	if (!g_slabs.free) {
		struct slab *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
					 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (page == MAP_FAILED)
			return NULL;
		for (unsigned i = 0; i < 4096 / sizeof(*page); i++) {
			page[i].free_next = g_slabs.free;
			g_slabs.free = &page[i];
		}
	}
	struct slab *s = g_slabs.free;
	g_slabs.free = s->free_next;
	memset(s, 0, sizeof(*s));
	return s;
}

static void slab_drop(struct slab *s)
{
	munmap(s->map, w.chunk_size);
	s->free_next = g_slabs.free;
	g_slabs.free = s;
}

/* A slot of class cls (its slab's lock held); NULL when the writer failed. */
static uint8_t *claim_slot(int cls, struct slab **slab)
{
	struct slab *s = g_slabs.cur[cls];
	if (!s || s->next == s->nslots) {
		struct slab *n = slab_new();
		if (!n)
			return NULL;
		n->idx = atomic_fetch_add(&w.next_chunk, 1);
		n->map = n->idx & NEXT_SEALED ? NULL : map_block(n->idx);
		if (!n->map) {
			n->free_next = g_slabs.free;
			g_slabs.free = n;
			return NULL;
		}
		n->size = slot_sizes[cls];
		n->nslots = (w.chunk_size - HW_SLAB_HEADER_SIZE) / n->size;
		struct hw_chunk_header *h = (struct hw_chunk_header *)n->map;
		h->thread = n->size;
		atomic_store_explicit((_Atomic uint32_t *)&h->magic, HW_SLAB_MAGIC,
				      memory_order_release);
		if (s && !s->users)
			slab_drop(s);
		g_slabs.cur[cls] = s = n;
	}
	s->users++;
	*slab = s;
	return s->map + HW_SLAB_HEADER_SIZE + (size_t)s->next++ * s->size;
}

/* The chunk a lease holds goes back: a slot to its slab; a whole block stays
 * mapped with the rest of its window until the window is used up. */
static void release_current(struct chunk_lease *l)
{
	if (!l->map)
		return;
	if (l->slab) {
		pthread_mutex_lock(&g_slabs.lock);
		struct slab *s = l->slab;
		if (!--s->users && g_slabs.cur[0] != s && g_slabs.cur[1] != s)
			slab_drop(s);
		pthread_mutex_unlock(&g_slabs.lock);
	}
	l->map = NULL;
	l->slab = NULL;
}

/* A thread's whole blocks come in windows of consecutive blocks, claimed
 * with one atomic add and mapped (and their pages prepared) with one call:
 * 1, 2, 4 ... blocks, doubling with each window of the thread up to
 * WINDOW_MAX_BYTES (16 blocks of the default 64 KiB; one block when blocks
 * are that large), so a thread that writes little maps little, and one
 * that writes much pays the mapping calls once per window. Blocks of its
 * last window a thread did not reach stay unwritten (the reader skips
 * them). */
#define WINDOW_MAX_BYTES (1u << 20)

/* Unmaps the lease's window, taken off the lease first: another thread's
 * fork meanwhile makes a child whose copy of the lease names no window (it
 * unmaps the windows of its parent's threads, and the address may hold
 * something else by then), not one that is gone. */
static void drop_window(struct chunk_lease *l)
{
	uint8_t *win = l->win;
	size_t len = (size_t)l->win_blocks * w.chunk_size;
	l->win = NULL;
	l->win_blocks = l->win_next = 0;
	atomic_signal_fence(memory_order_seq_cst);
	if (win)
		munmap(win, len);
}

static uint8_t *next_window_block(struct chunk_lease *l)
{
	if (l->win && l->win_next < l->win_blocks)
		return l->win + (size_t)l->win_next++ * w.chunk_size;
	uint32_t n = l->win ? l->win_blocks * 2 : 1;
	uint32_t max = w.chunk_size < WINDOW_MAX_BYTES ? WINDOW_MAX_BYTES / w.chunk_size : 1;
	if (n > max)
		n = max;
	drop_window(l);
	l->win_idx = atomic_fetch_add(&w.next_chunk, n);
	l->win = l->win_idx & NEXT_SEALED ? NULL
					  : map_blocks(l->win_idx, &n); /* n may shrink at a limit */
	if (!l->win) {
		l->win_blocks = l->win_next = 0;
		return NULL;
	}
	l->win_blocks = n;
	l->win_next = 1;
	return l->win;
}

bool writer_claim_chunk(uint32_t thread, uint32_t index, enum chunk_class cls,
			struct chunk_lease *out)
{
	if (!writer_ok() || atomic_load_explicit(&w.finished, memory_order_relaxed) || proc_wiped())
		return false;
	uint8_t *p;
	release_current(out);
	if (cls == CHUNK_FULL) {
		p = next_window_block(out);
		out->size = w.chunk_size;
		out->off = HW_HEADER_SIZE + (out->win_idx + out->win_next - 1) * w.chunk_size;
	} else {
		pthread_mutex_lock(&g_slabs.lock);
		p = claim_slot(cls, &out->slab);
		if (p)
			out->off = HW_HEADER_SIZE + out->slab->idx * w.chunk_size +
				   (uint64_t)(p - out->slab->map);
		pthread_mutex_unlock(&g_slabs.lock);
		out->size = slot_sizes[cls];
	}
	if (!p)
		return false;
	/* The header, with the asynchronous signals blocked and the owner
	 * checked again inside: a handler that forks (fork is async-signal-
	 * safe; a raw clone too) while this claim is under way makes a child
	 * that goes on with it where the handler interrupted it, in its
	 * parent's shared mapping, and it would write the header of a block
	 * its parent is filling (used 0: the parent's records lost). Such a
	 * child is not the owner any more (its writer forgotten, or its
	 * process page wiped). Only these few stores are masked: a
	 * process-directed signal that comes meanwhile waits a microsecond
	 * instead of going to another thread. The synchronous signals (a
	 * fault) are never blocked: blocked, the kernel would kill the
	 * process. */
	sigset_t old;
	bool masked = block_async_signals(&old);
	bool mine = w.open && !proc_wiped();
	if (mine) {
		struct hw_chunk_header *ch = (struct hw_chunk_header *)p;
		ch->thread = thread;
		ch->index = index;
		ch->used = 0;
		atomic_store_explicit((_Atomic uint32_t *)&ch->magic, HW_CHUNK_MAGIC,
				      memory_order_release);
	}
	if (masked)
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!mine)
		return false;
	out->map = p;
	return true;
}

uint32_t writer_class_capacity(enum chunk_class cls)
{
	return (cls == CHUNK_FULL ? w.chunk_size : slot_sizes[cls]) - HW_CHUNK_HEADER_SIZE;
}

void writer_release_chunk(struct chunk_lease *l)
{
	release_current(l);
	drop_window(l);
}

/* The chunks threads left, with the `used` they left them with
 * (writer_chunk_left): in memory of its own, grown by doubling. */
struct left_chunk {
	uint64_t off;
	uint32_t used;
};

static struct {
	pthread_mutex_t lock;
	struct left_chunk *v;
	size_t n, cap;
} g_left = {.lock = PTHREAD_MUTEX_INITIALIZER};

void writer_chunk_left(const struct chunk_lease *l, uint32_t used)
{
	if (!l->map || !w.open)
		return;
	pthread_mutex_lock(&g_left.lock);
	if (g_left.n == g_left.cap) {
		size_t cap = g_left.cap ? g_left.cap * 2 : 4096 / sizeof(struct left_chunk);
		void *v = mmap(NULL, cap * sizeof(struct left_chunk), PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (v == MAP_FAILED) { /* not remembered: the header keeps what it has */
			pthread_mutex_unlock(&g_left.lock);
			return;
		}
		if (g_left.v) {
			memcpy(v, g_left.v, g_left.n * sizeof(struct left_chunk));
			munmap(g_left.v, g_left.cap * sizeof(struct left_chunk));
		}
		g_left.v = v;
		g_left.cap = cap;
	}
	g_left.v[g_left.n++] = (struct left_chunk){l->off, used};
	pthread_mutex_unlock(&g_left.lock);
}

void writer_finish(void)
{
	if (!w.open || atomic_exchange(&w.finished, true))
		return;
	pthread_mutex_lock(&w.grow_lock);
	uint64_t used = atomic_fetch_or(&w.next_chunk, NEXT_SEALED) & ~NEXT_SEALED;
	uint64_t cap = atomic_load(&w.capacity);
	if (used > cap)
		used = cap;
	/* without descriptors to spare the preallocated tail stays (readers
	 * skip unused blocks) */
	int fd = writer_fd_to_spare() ? reopen() : -1;
	if (fd >= 0) {
		/* the used of the chunks left, as their threads left them */
		pthread_mutex_lock(&g_left.lock);
		for (size_t i = 0; i < g_left.n; i++) {
			off_t at = (off_t)(g_left.v[i].off + offsetof(struct hw_chunk_header, used));
			uint32_t now;
			/* only where it differs (almost never): a header page the
			 * kernel wrote back already is not made dirty again */
			if (pread(fd, &now, sizeof(now), at) == (ssize_t)sizeof(now) &&
			    now == g_left.v[i].used)
				continue;
			if (pwrite(fd, &g_left.v[i].used, sizeof(uint32_t), at) != (ssize_t)sizeof(uint32_t))
				break;
		}
		pthread_mutex_unlock(&g_left.lock);
		/* on failure the preallocated tail stays: the reader skips unused chunks */
		if (ftruncate(fd, (off_t)(HW_HEADER_SIZE + used * w.chunk_size)) < 0) {
		}
		close(fd);
	}
	pthread_mutex_unlock(&w.grow_lock);
}

void writer_program_maps(const void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr, h = (uintptr_t)atomic_load_explicit(&w.hdr_map, memory_order_relaxed);
	/* the page is the shim's no more: a stop is written through the file */
	if (HW_UNLIKELY(h) && a < h + HW_HEADER_SIZE && h - a < len)
		atomic_store(&w.hdr_map, NULL);
}

void writer_fork_prepare(void)
{
	/* the order of their nesting: a slot's claim may grow the file, the
	 * end of the trace holds the growth lock while it reads the list */
	pthread_mutex_lock(&g_slabs.lock);
	pthread_mutex_lock(&w.grow_lock);
	pthread_mutex_lock(&g_left.lock);
}

void writer_fork_parent(void)
{
	pthread_mutex_unlock(&g_left.lock);
	pthread_mutex_unlock(&w.grow_lock);
	pthread_mutex_unlock(&g_slabs.lock);
}

void writer_fork_child_locks(void)
{
	pthread_mutex_init(&w.grow_lock, NULL);
	pthread_mutex_init(&g_slabs.lock, NULL);
	pthread_mutex_init(&g_left.lock, NULL);
}

void writer_forget(bool locked)
{
	w.open = false;
	/* the parent's header page: no store reaches it from here (mark_stopped
	 * checks the owner with the signals blocked) */
	uint8_t *hm = atomic_exchange(&w.hdr_map, NULL);
	if (hm)
		munmap(hm, HW_HEADER_SIZE);
	w.path[0] = 0;
	/* the parent's chunks. Without the lock across the fork another
	 * thread may have been growing the list: its array is left as it is
	 * (the child's copy of it; unmapping a size that does not match
	 * would unmap what lies beside it) */
	if (!locked)
		g_left.v = NULL, g_left.cap = 0;
	g_left.n = 0;
	/* The slabs handing out slots are the parent's: private memory takes
	 * their place (a thread state kept for shim code a signal handler
	 * interrupted may still write into its slot); their descriptors stay
	 * unused. */
	for (int cls = 0; cls < 2; cls++) {
		if (g_slabs.cur[cls])
			mmap(g_slabs.cur[cls]->map, w.chunk_size, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		g_slabs.cur[cls] = NULL;
	}
}
