/* Trace compression (analyzer): see compress.h. The raw trace is read
 * through the reader's mapping, block by block in file order, as the reader
 * walks it; intact chunks are compressed (consecutive ones of a thread
 * together, as a group: cols.h), everything else is copied as it was, so a
 * compressed trace reads exactly as the raw one did: the same records, the
 * same damage. */
#include "compress.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <zstd.h>

#include "cols.h"
#include "commands.h"
#include "err.h"
#include "escape.h"
#include "heapwise/trace_format.h"
#include "reader.h"
#include "util.h"

/* --- who still has the file ---------------------------------------------- */

static bool maps_file(const char *pid, dev_t dev, ino_t ino)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%s/maps", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	char line[4096 + 256];
	bool found = false;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned maj, min;
		unsigned long long inode;
		/* lo-hi perms offset maj:min inode [path] */
		if (sscanf(line, "%*s %*s %*s %x:%x %llu", &maj, &min, &inode) == 3 &&
		    inode == (unsigned long long)ino && makedev(maj, min) == dev)
			found = true;
		if (!strchr(line, '\n')) { /* a long path: skip the rest */
			int ch;
			while ((ch = fgetc(f)) != EOF && ch != '\n')
				;
		}
	}
	fclose(f);
	return found;
}

static bool has_open(const char *pid, dev_t dev, ino_t ino)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%s/fd", pid);
	DIR *d = opendir(path);
	if (!d)
		return false;
	bool found = false;
	struct dirent *e;
	while (!found && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char fd[320];
		struct stat st;
		snprintf(fd, sizeof(fd), "/proc/%s/fd/%s", pid, e->d_name);
		/* stat follows the link to the open file itself: no open, no
		 * FIFO or device is touched */
		if (stat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino)
			found = true;
	}
	closedir(d);
	return found;
}

pid_t file_writer(dev_t dev, ino_t ino)
{
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	pid_t self = getpid(), found = 0;
	struct dirent *e;
	while (!found && (e = readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 0 || pid == self)
			continue;
		if (maps_file(e->d_name, dev, ino) || has_open(e->d_name, dev, ino))
			found = (pid_t)pid;
	}
	closedir(d);
	return found;
}

/* Whether the kernel tells that no process but this one's lease descriptor
 * has the file at path (dev, ino) open or mapped: a write lease is granted
 * only then (fs/locks.c, check_conflicting_open; a mapping holds its file
 * open). It is given back at once. One open and two fcntl calls where
 * file_writer reads every process's maps and descriptors (~2.5 ms with 76
 * processes here, far more on a desktop). false: someone has it, or no
 * lease here (another user's file without CAP_LEASE, a filesystem without
 * leases, fs.leases-enable = 0): file_writer looks, and names the process.
 * A process opening the file while the lease is held (microseconds) waits
 * for it to be given back, or, opening it with O_NONBLOCK (the reader does),
 * fails with EWOULDBLOCK; the break signal goes to this process, as SIGURG,
 * whose default is to be ignored (SIGIO's would end it). */
static bool nobody_has(const char *path, dev_t dev, ino_t ino)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	struct stat st;
	bool free_ = false;
	if (fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino &&
	    fcntl(fd, F_SETSIG, SIGURG) == 0 && fcntl(fd, F_SETLEASE, F_WRLCK) == 0) {
		free_ = true;
		fcntl(fd, F_SETLEASE, F_UNLCK);
	}
	close(fd);
	return free_;
}

/* file_writer, unless the kernel's lease says nobody has the file. */
static pid_t path_writer(const char *path, dev_t dev, ino_t ino)
{
	if (nobody_has(path, dev, ino))
		return 0;
	return file_writer(dev, ino);
}

/* --- output ------------------------------------------------------------- */

struct out {
	int fd;
	uint8_t *buf;
	size_t n, cap;
	int err; /* errno of the first failed write */
	uint64_t written;
};

static void out_flush(struct out *o)
{
	size_t done = 0;
	while (!o->err && done < o->n) {
		ssize_t w = write(o->fd, o->buf + done, o->n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			o->err = w < 0 ? errno : EIO;
		else
			done += (size_t)w;
	}
	o->n = 0;
}

static void out_put(struct out *o, const void *p, size_t n)
{
	o->written += n;
	while (n && !o->err) {
		if (o->n == o->cap)
			out_flush(o);
		size_t k = o->cap - o->n < n ? o->cap - o->n : n;
		memcpy(o->buf + o->n, p, k);
		o->n += k;
		p = (const uint8_t *)p + k;
		n -= k;
	}
}

/* --- compression ------------------------------------------------------- */

/* The bytes a raw block at off takes: chunk_size, or what is left of the file. */
static uint64_t block_len(const struct trace *t, uint64_t off)
{
	uint64_t left = t->size - off;
	return left < t->hdr.chunk_size ? left : t->hdr.chunk_size;
}

/* Room for a compressed chunk's payload of a chunk of chunk_size bytes. */
static size_t zbound(size_t chunk_size)
{
	size_t a = ZSTD_compressBound(chunk_size), b = cols_bound(chunk_size);
	return a + b + HW_ZSEAL_SIZE; /* room for both (sealed): the smaller is kept */
}

/* The bytes of the column streams cols_encode or cols_group_encode made
 * last (what a reader inflates). */
static size_t streams_len(const struct cols_work *cw)
{
	size_t n = 0;
	for (int i = 0; i < HW_COLS_ALL; i++)
		n += cw->slen[i];
	return n;
}

/* Whether records that take zcols bytes in columns (streams bytes once
 * inflated) are stored as plain zstd frames (zplain bytes) instead. The
 * columns are the smaller form, but where their streams come to more
 * bytes than the records themselves (tiny records of blocks freed and
 * made again at once: c_large_buffers, 1.2-1.27 times), a reader inflates
 * more bytes from them and decodes them through the model at more
 * instructions a record than the raw parser takes (84 vs 67): the plain
 * form reads faster (the analyzer on c_large_buffers: 1.13-1.2 times
 * the raw trace's CPU in columns, about the same in plain frames). Kept
 * only while it stays small: at most 4 times the columns and 1/16 of the
 * records. Elsewhere (streams 0.6-0.8 of the records in the other bench
 * workloads) the columns read as fast as the records and are kept. */
static bool plain_reads_faster(size_t records, size_t streams, size_t zcols, size_t zplain)
{
	return streams > records && zplain <= 4 * zcols && zplain <= records / 16;
}

/* A chunk's `used` record bytes at rec into out (cap bytes, zbound's):
 * column streams (HW_CHUNK_COLS), or one zstd frame where the columns do
 * not give the records back exactly or read slower (plain_reads_faster).
 * Returns the payload's length and its flags for the chunk header, or 0
 * when it could not be compressed. */
static size_t compress_records(ZSTD_CCtx *cc, struct cols_work *cw, const uint8_t *rec, size_t used,
			       uint8_t *out, size_t cap, uint32_t *flags)
{
	size_t n = cols_encode(cw, cc, rec, used, out, cap);
	size_t streams = n ? streams_len(cw) : 0;
	/* columns that shrink the records less than 16 times (few events, a
	 * chunk of strings): one frame of the records may do better; the
	 * smaller one is kept */
	if (n && n <= used / 16 && streams <= used) {
		*flags = HW_CHUNK_ZSTD | HW_CHUNK_COLS;
		return n;
	}
	uint8_t *plain = n ? out + n : out;
	size_t m = ZSTD_compress2(cc, plain, cap - (size_t)(plain - out) - HW_ZSEAL_SIZE, rec, used);
	if (!ZSTD_isError(m))
		m = cols_seal(plain, m);
	if (ZSTD_isError(m) || (n && m >= n && !plain_reads_faster(used, streams, n, m))) {
		*flags = HW_CHUNK_ZSTD | HW_CHUNK_COLS;
		return n;
	}
	if (n)
		memmove(out, plain, m);
	*flags = HW_CHUNK_ZSTD;
	return m;
}

/* A slab (format 3) at off as compressed chunks, one per used slot, in slot
 * order: the reader finds a slot's chunk by its thread and index, not by
 * where it lies, so a slot's chunk reads the same as a chunk of its own.
 * Only a whole slab whose every used slot is sound (its records inside the
 * slot, some records) is converted; anything else is copied as it was, so
 * that it reads as it did. Returns false when it was not converted. */
static bool put_slab(const struct trace *t, struct out *o, ZSTD_CCtx *cc, struct cols_work *cw,
		     uint64_t off, struct compress_stats *st)
{
	const struct hw_file_header *h = &t->hdr;
	struct hw_chunk_header sh, ch;
	if (h->version < 3 || off + h->chunk_size > t->size)
		return false;
	memcpy(&sh, t->data + off, sizeof(sh));
	uint32_t slot = sh.thread;
	if (sh.magic != HW_SLAB_MAGIC || slot < HW_SLOT_MIN || slot > h->chunk_size / 4 ||
	    (slot & (slot - 1)))
		return false;
	for (uint64_t s = off + HW_SLAB_HEADER_SIZE; s + slot <= off + h->chunk_size; s += slot) {
		memcpy(&ch, t->data + s, sizeof(ch));
		if (ch.magic == HW_CHUNK_MAGIC && (ch.used == 0 || ch.used > slot - HW_CHUNK_HEADER_SIZE))
			return false;
	}
	size_t bound = zbound(slot);
	size_t nslots = (h->chunk_size - HW_SLAB_HEADER_SIZE) / slot;
	uint8_t *buf = xmalloc(nslots * (HW_ZCHUNK_HEADER_SIZE + bound));
	size_t len = 0, n = 0;
	bool ok = true;
	for (uint64_t s = off + HW_SLAB_HEADER_SIZE; ok && s + slot <= off + h->chunk_size; s += slot) {
		memcpy(&ch, t->data + s, sizeof(ch));
		if (ch.magic != HW_CHUNK_MAGIC)
			continue; /* an unused slot */
		uint8_t *z = buf + len;
		uint32_t flags;
		size_t k = compress_records(cc, cw, t->data + s + HW_CHUNK_HEADER_SIZE, ch.used,
					    z + HW_ZCHUNK_HEADER_SIZE, bound, &flags);
		if (!k) {
			ok = false;
			break;
		}
		struct hw_chunk_header zh = ch;
		zh.used = flags | ch.used;
		uint32_t zlen = (uint32_t)k;
		memcpy(z, &zh, sizeof(zh));
		memcpy(z + HW_CHUNK_HEADER_SIZE, &zlen, 4);
		len += HW_ZCHUNK_HEADER_SIZE + k;
		n++;
	}
	if (ok) {
		out_put(o, buf, len);
		st->chunks += n;
	}
	free(buf);
	return ok;
}

/* The records of the intact chunk at off (not compressed, its records
 * inside the chunk and the file), NULL for anything else; *ch: its header. */
static const uint8_t *plain_chunk(const struct trace *t, uint64_t off, struct hw_chunk_header *ch)
{
	uint64_t left = t->size - off;
	if (off >= t->size || left < sizeof(*ch))
		return NULL;
	memcpy(ch, t->data + off, sizeof(*ch));
	if (ch->magic != HW_CHUNK_MAGIC || HW_CHUNK_IS_Z(ch->used))
		return NULL;
	uint64_t limit = t->hdr.chunk_size - HW_CHUNK_HEADER_SIZE;
	if (ch->used > limit || HW_CHUNK_HEADER_SIZE + (uint64_t)ch->used > left)
		return NULL;
	return t->data + off + HW_CHUNK_HEADER_SIZE;
}

/* Chunks a thread compresses between two hand-overs: a hand-over's futex
 * calls and wake-ups cost more than a few chunks' work (with one chunk per
 * hand-over two threads took 10-20% more CPU than one). */
#define ZBATCH 8

/* Consecutive chunks compressed together: a run of plain chunks of one
 * thread, each in the file right after the one before it in the thread's
 * sequence (HW_COLS_GROUP_MAX at most), in, and their compressed form (a
 * group, or chunks each on its own, or blocks as they were) out. */
struct zitem {
	uint32_t n;
	const uint8_t *rec[HW_COLS_GROUP_MAX];
	struct hw_chunk_header ch[HW_COLS_GROUP_MAX];
	uint64_t off[HW_COLS_GROUP_MAX];
	uint8_t *z; /* out: len bytes (cap: room) */
	size_t len, cap;
	size_t nz, nraw; /* out: chunks compressed, blocks copied as they were */
};

/* Items compressed by one thread, with its zstd context and column work
 * area. */
struct zjob {
	ZSTD_CCtx *cc;
	int level; /* cc's */
	int poor_level; /* for groups that shrink poorly at level (0: none) */
	struct cols_work cw;
	size_t bound;
	size_t k; /* items of this batch */
	struct zitem it[2 * ZBATCH];
};

static void zitem_room(struct zitem *x, size_t n)
{
	if (x->cap - x->len >= n)
		return;
	x->cap = x->len + n > 2 * x->cap ? x->len + n : 2 * x->cap;
	x->z = xrealloc(x->z, x->cap);
}

/* The 20-byte head of a compressed chunk at z. */
static void put_zhead(uint8_t *z, const struct hw_chunk_header *ch, uint32_t flags, size_t zlen)
{
	struct hw_chunk_header zh = *ch;
	zh.used = flags | ch->used;
	uint32_t zl = (uint32_t)zlen;
	memcpy(z, &zh, sizeof(zh));
	memcpy(z + HW_CHUNK_HEADER_SIZE, &zl, 4);
}

/* The k chunks of item x from chunk i, just encoded as a group of zgroup
 * bytes (at x->z + x->len, after its head's room), as plain zstd frames
 * instead when those read faster (plain_reads_faster): then they are put
 * where the group was and it returns true. */
static bool group_as_plain(struct zjob *j, struct zitem *x, uint32_t i, uint32_t k, size_t zgroup)
{
	size_t records = 0;
	for (uint32_t q = i; q < i + k; q++)
		records += x->ch[q].used;
	size_t streams = streams_len(&j->cw);
	if (streams <= records)
		return false;
	/* the frames after the group */
	size_t at = x->len + HW_ZCHUNK_HEADER_SIZE + zgroup, plain = 0;
	zitem_room(x, HW_ZCHUNK_HEADER_SIZE + zgroup + (size_t)k * (HW_ZCHUNK_HEADER_SIZE + j->bound));
	for (uint32_t q = i; q < i + k; q++) {
		uint8_t *z = x->z + at + plain;
		size_t m = ZSTD_compress2(j->cc, z + HW_ZCHUNK_HEADER_SIZE, j->bound - HW_ZSEAL_SIZE,
					  x->rec[q], x->ch[q].used);
		if (ZSTD_isError(m))
			return false;
		m = cols_seal(z + HW_ZCHUNK_HEADER_SIZE, m);
		put_zhead(z, &x->ch[q], HW_CHUNK_ZSTD, m);
		plain += HW_ZCHUNK_HEADER_SIZE + m;
		if (!plain_reads_faster(records, streams, HW_ZCHUNK_HEADER_SIZE + zgroup, plain))
			return false; /* already too big */
	}
	memmove(x->z + x->len, x->z + at, plain);
	x->len += plain;
	x->nz += k;
	return true;
}

/* Chunks of a group that starts among a thread's first ones, at most */
#define FIRST_GROUP 4u

/* Item x: two or more chunks go into a group while their columns take
 * them (cols_group_encode), any other chunk on its own. */
static void zjob_one(const struct trace *t, struct zjob *j, struct zitem *x)
{
	x->len = x->nz = x->nraw = 0;
	for (uint32_t i = 0; i < x->n;) {
		/* a thread's first group is small: the replay reads a group's
		 * first records once all its streams are inflated, and nothing
		 * is replayed before the first ones (c_large_buffers' 32-chunk
		 * startup group: 10 ms before the first replayed event, 1 ms on
		 * the raw trace); unless the whole group shrinks poorly
		 * (f_numpy's imports: 6 times), where the cut costs more bytes
		 * than the start gains (f_numpy's bytes per event at rest are
		 * at the goal's edge) */
		uint32_t k = x->n - i;
		bool cut = x->ch[i].index < FIRST_GROUP && k > FIRST_GROUP;
		if (k >= 2) {
			uint32_t used[HW_COLS_GROUP_MAX], taken;
			size_t n, sum;
			uint8_t *z;
			for (;;) {
				sum = 0;
				for (uint32_t q = i; q < i + k; q++)
					sum += used[q - i] = x->ch[q].used;
				size_t bound = cols_group_bound(sum, k);
				zitem_room(x, HW_ZCHUNK_HEADER_SIZE + bound);
				z = x->z + x->len;
				n = cols_group_encode(&j->cw, j->cc, j->level, j->poor_level,
						      &x->rec[i], used, k, &taken,
						      z + HW_ZCHUNK_HEADER_SIZE, bound);
				if (!cut || !n || n * HW_COLS_POOR > sum)
					break;
				cut = false;
				k = FIRST_GROUP;
			}
			if (n && group_as_plain(j, x, i, taken, n)) {
				i += taken;
				continue;
			}
			if (n) {
				z = x->z + x->len;
				put_zhead(z, &x->ch[i], HW_CHUNK_ZSTD | HW_CHUNK_COLS | HW_CHUNK_GROUP, n);
				x->len += HW_ZCHUNK_HEADER_SIZE + n;
				x->nz += taken;
				i += taken;
				continue;
			}
		}
		uint64_t block = block_len(t, x->off[i]);
		zitem_room(x, HW_ZCHUNK_HEADER_SIZE + j->bound + block);
		uint8_t *z = x->z + x->len;
		uint32_t flags;
		size_t n = compress_records(j->cc, &j->cw, x->rec[i], x->ch[i].used,
					    z + HW_ZCHUNK_HEADER_SIZE, j->bound, &flags);
		if (n && HW_ZCHUNK_HEADER_SIZE + n < block) {
			put_zhead(z, &x->ch[i], flags, n);
			x->len += HW_ZCHUNK_HEADER_SIZE + n;
			x->nz++;
		} else {
			memcpy(z, t->data + x->off[i], block);
			x->len += block;
			x->nraw++;
		}
		i++;
	}
}

static void zjob_run(const struct trace *t, struct zjob *j)
{
	for (size_t i = 0; i < j->k; i++)
		zjob_one(t, j, &j->it[i]);
}

static void zjob_free(struct zjob *j)
{
	cols_free(&j->cw);
	for (size_t i = 0; i < 2 * ZBATCH; i++)
		free(j->it[i].z);
}

/* The second thread: compresses the chunks before the ones the first thread
 * compresses (every chunk is compressed on its own, so the output is the
 * same whichever thread does it); the first writes both in file order. */
struct helper {
	struct zjob job;
	const struct trace *t;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool busy, stop;
};

static void *helper_main(void *arg)
{
	struct helper *h = arg;
	pthread_mutex_lock(&h->lock);
	for (;;) {
		while (!h->busy && !h->stop)
			pthread_cond_wait(&h->cond, &h->lock);
		if (!h->busy)
			break;
		pthread_mutex_unlock(&h->lock);
		zjob_run(h->t, &h->job);
		pthread_mutex_lock(&h->lock);
		h->busy = false;
		pthread_cond_broadcast(&h->cond);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

static void helper_wait(struct helper *h)
{
	pthread_mutex_lock(&h->lock);
	while (h->busy)
		pthread_cond_wait(&h->cond, &h->lock);
	pthread_mutex_unlock(&h->lock);
}

static ZSTD_CCtx *new_cctx(int level)
{
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	if (cc) {
		ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level);
		/* no checksum of each frame's content: the chunk's seal
		 * (cols_seal) covers the stored bytes */
		ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 0);
		ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 1);
	}
	return cc;
}

/* Threads compression may use: the online CPUs, 1 with
 * HEAPWISE_ANALYZER_THREADS=1. */
static long compress_cpus(void)
{
	const char *one = getenv("HEAPWISE_ANALYZER_THREADS");
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return (one && !strcmp(one, "1")) || n < 1 ? 1 : n;
}

/* Starts the second thread (false: one thread does it all): with two or
 * more CPUs, unless HEAPWISE_ANALYZER_THREADS=1. */
static bool helper_start(struct helper *h, const struct trace *t, int level, int poor_level,
			 size_t bound)
{
	if (compress_cpus() < 2 || t->size - t->hdr.header_size < 2 * (uint64_t)t->hdr.chunk_size)
		return false;
	memset(h, 0, sizeof(*h));
	h->job.cc = new_cctx(level);
	if (!h->job.cc)
		return false;
	h->job.bound = bound;
	h->job.level = level;
	h->job.poor_level = poor_level;
	h->t = t;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	if (pthread_create(&h->thread, NULL, helper_main, h)) {
		pthread_mutex_destroy(&h->lock);
		pthread_cond_destroy(&h->cond);
		ZSTD_freeCCtx(h->job.cc);
		return false;
	}
	return true;
}

static void helper_stop(struct helper *h)
{
	pthread_mutex_lock(&h->lock);
	h->stop = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	pthread_join(h->thread, NULL);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cond);
	ZSTD_freeCCtx(h->job.cc);
	zjob_free(&h->job);
}

/* The items of a job, in order; returns how many chunks were compressed. */
static size_t put_job(struct out *o, const struct zjob *j, struct compress_stats *st)
{
	size_t z = 0;
	for (size_t i = 0; i < j->k; i++) {
		const struct zitem *x = &j->it[i];
		out_put(o, x->z, x->len);
		st->chunks += x->nz;
		st->chunks_raw += x->nraw;
		z += x->nz;
	}
	return z;
}

/* Whether chunk b (header, at off) follows chunk a of item x in its
 * thread's sequence. */
static bool follows(const struct zitem *x, const struct hw_chunk_header *b)
{
	const struct hw_chunk_header *a = &x->ch[x->n - 1];
	return x->n < HW_COLS_GROUP_MAX && a->thread == b->thread && a->index != UINT32_MAX &&
	       b->index == a->index + 1 && a->used && b->used;
}

/* Writes the compressed form of t into o (level: of the second thread's
 * context; cc: the first thread's; helper: a second thread may help). */
static void write_compressed(const struct trace *t, struct out *o, ZSTD_CCtx *cc, int level,
			     int poor_level, bool helper_ok, struct compress_stats *st)
{
	const struct hw_file_header *h = &t->hdr;
	size_t bound = zbound(h->chunk_size);
	struct zjob job = {.cc = cc, .level = level, .poor_level = poor_level, .bound = bound};
	struct helper helper;
	bool two = helper_ok && helper_start(&helper, t, level, poor_level, bound);
	out_put(o, t->data, h->header_size);
	uint64_t next, dropped_to = 0;
	long page = sysconf(_SC_PAGESIZE);
	/* the plain chunks of a batch, in items, in file order */
	static const size_t max_items = 2 * ZBATCH, max_chunks = 2 * HW_COLS_GROUP_MAX;
	struct zitem *items = xcalloc(max_items, sizeof(*items));
	for (uint64_t off = h->header_size; off < t->size && !o->err; off = next) {
		next = off + h->chunk_size;
		if (t->mapped && off - dropped_to >= (8u << 20)) { /* give back what was read */
			uint64_t lo = dropped_to & ~(uint64_t)(page - 1), hi = off & ~(uint64_t)(page - 1);
			madvise((void *)(t->data + lo), hi - lo, MADV_DONTNEED);
			dropped_to = hi;
		}
		struct hw_chunk_header ch0;
		const uint8_t *rec = plain_chunk(t, off, &ch0);
		if (rec) {
			/* the blocks after it too while they are such chunks,
			 * in items (one with one thread; with two, up to
			 * max_items, and no item started after max_chunks): the
			 * first items (about half the chunks) on the second
			 * thread, the rest on this one, written in file order */
			size_t ni = 1, nc = 1;
			items[0].n = 1;
			items[0].rec[0] = rec;
			items[0].ch[0] = ch0;
			items[0].off[0] = off;
			uint64_t at = off + h->chunk_size;
			struct hw_chunk_header ch;
			const uint8_t *r;
			while ((r = plain_chunk(t, at, &ch))) {
				struct zitem *x = &items[ni - 1];
				/* an item ends where its run of chunks does (the
				 * same items with one thread or two: the same bytes) */
				if (!follows(x, &ch)) {
					if (!two || ni == max_items || nc >= max_chunks)
						break;
					x = &items[ni++];
					x->n = 0;
				}
				x->rec[x->n] = r;
				x->ch[x->n] = ch;
				x->off[x->n++] = at;
				nc++;
				at += h->chunk_size;
			}
			size_t nh = 0, half = 0; /* items of the second thread: 0 with one */
			if (two && ni > 1)
				while (nh < ni - 1 && half + items[nh].n <= nc / 2 + 1)
					half += items[nh++].n;
			if (two && ni > 1 && !nh)
				nh = 1;
			/* the items into the jobs (their output buffers swapped in) */
			for (size_t i = 0; i < ni; i++) {
				struct zjob *j = i < nh ? &helper.job : &job;
				struct zitem *x = &j->it[i < nh ? i : i - nh];
				uint8_t *z = x->z;
				size_t cap = x->cap;
				*x = items[i];
				x->z = z;
				x->cap = cap;
			}
			if (nh) {
				helper.job.k = nh;
				pthread_mutex_lock(&helper.lock);
				helper.busy = true;
				pthread_cond_broadcast(&helper.cond);
				pthread_mutex_unlock(&helper.lock);
			}
			job.k = ni - nh;
			zjob_run(t, &job);
			if (nh) {
				helper_wait(&helper);
				st->chunks2 += put_job(o, &helper.job, st);
			}
			put_job(o, &job, st);
			next = at;
			continue;
		}
		struct hw_chunk_header ch = {0};
		uint64_t left = t->size - off;
		memcpy(&ch, t->data + off, left < sizeof(ch) ? left : sizeof(ch));
		if (left < sizeof(ch) || ch.magic != HW_CHUNK_MAGIC) {
			/* unused (zero) blocks go; anything else is kept as it is */
			const uint8_t *b = t->data + off;
			uint64_t len = block_len(t, off);
			if (left >= sizeof(ch) && ch.magic == HW_SLAB_MAGIC &&
			    put_slab(t, o, cc, &job.cw, off, st))
				continue;
			/* every byte zero: the first, then each equal to the one
			 * before it (memcmp: a byte at a time took 3.6% of the
			 * instructions of compressing a g_fork worker's trace) */
			bool zero = ch.magic == 0 && !b[0] && !memcmp(b, b + 1, len - 1);
			if (!zero) {
				out_put(o, b, len);
				st->chunks_raw++;
			}
			continue;
		}
		if (HW_CHUNK_IS_Z(ch.used)) {
			/* compressed already: copied (to the end of the file if it
			 * claims more than is there) */
			uint32_t zlen = 0;
			if (left >= HW_ZCHUNK_HEADER_SIZE)
				memcpy(&zlen, t->data + off + HW_CHUNK_HEADER_SIZE, 4);
			uint64_t len = HW_ZCHUNK_HEADER_SIZE + (uint64_t)zlen;
			if (len > left)
				len = left;
			out_put(o, t->data + off, len);
			next = off + len;
			continue;
		}
		/* a damaged header, or records cut by the end of the file: kept
		 * as they are, so they read as they did */
		out_put(o, t->data + off, block_len(t, off));
		st->chunks_raw++;
	}
	if (two)
		helper_stop(&helper);
	free(items);
	zjob_free(&job);
	out_flush(o);
}

static int compress_to_fd_(const struct trace *t, int fd, int level, int poor_level,
			   bool helper_ok, struct compress_stats *st)
{
	ZSTD_CCtx *cc = new_cctx(level);
	struct out o = {.fd = fd, .cap = 1u << 20};
	o.buf = xmalloc(o.cap);
	if (!cc)
		o.err = ENOMEM;
	else
		write_compressed(t, &o, cc, level, poor_level, helper_ok, st);
	st->bytes_out = o.written;
	ZSTD_freeCCtx(cc);
	free(o.buf);
	return o.err;
}

int compress_to_fd(const struct trace *t, int fd, int level, struct compress_stats *st)
{
	return compress_to_fd_(t, fd, level, level == HW_COMPRESS_LEVEL ? HW_COMPRESS_POOR_LEVEL : 0,
			       true, st);
}

/* The level for groups that shrink poorly at the default level (0: none),
 * for the traces of one run (heapwise run's, or those a compress command
 * names). The second pass costs CPU in proportion to those groups; it is
 * spent on traces their run wrote slowly (at most HW_COMPRESS_POOR_RATE
 * bytes a second together, from the earliest start their headers give to
 * their files' last change: numpy's import, a service in its steady state),
 * whose compression is a small part of the run, and not on those a run
 * wrote fast (the pymalloc-heavy workloads, a pygmentize run, a fork tree
 * whose children allocate fast: the compression alone takes 20-30% of the
 * run's time, and their poor groups are only the interpreters' start).
 * Not at a level asked for (--level), nor when no start or end is known. */
static int poor_level_of(const struct compress_job *jobs, size_t n, int level)
{
	if (level != HW_COMPRESS_LEVEL)
		return 0;
	uint64_t bytes = 0, start = UINT64_MAX, end = 0;
	for (size_t i = 0; i < n; i++) {
		int fd = open(jobs[i].path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		if (fd < 0)
			continue;
		struct stat sb;
		struct hw_file_header h;
		if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_mtim.tv_sec > 0 &&
		    pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
		    !memcmp(h.magic, HW_MAGIC, 8) && h.start_realtime_ns) {
			uint64_t m = (uint64_t)sb.st_mtim.tv_sec * 1000000000u +
				     (uint64_t)sb.st_mtim.tv_nsec;
			bytes += (uint64_t)sb.st_size;
			start = h.start_realtime_ns < start ? h.start_realtime_ns : start;
			end = m > end ? m : end;
		}
		close(fd);
	}
	if (!bytes || end <= start)
		return 0;
	double rate = (double)bytes / ((double)(end - start) / 1e9);
	return rate <= HW_COMPRESS_POOR_RATE ? HW_COMPRESS_POOR_LEVEL : 0;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static enum compress_result compress_trace_(const char *path, int level, int poor_level,
					    bool report_busy,
					    bool helper_ok, struct compress_stats *st)
{
	memset(st, 0, sizeof(*st));
	struct stat before;
	if (lstat(path, &before) < 0) {
		err_print("compress: cannot open %s: %s", path, strerror(errno));
		return COMPRESS_FAILED;
	}
	if (!S_ISREG(before.st_mode)) {
		err_print("compress: %s is not a regular file", path);
		return COMPRESS_FAILED;
	}
	pid_t w = path_writer(path, before.st_dev, before.st_ino);
	if (w) {
		st->writer = w;
		if (report_busy)
			err_print("compress: %s is open in process %d, which may still write it; it is left as it is",
				  path, (int)w);
		return COMPRESS_BUSY;
	}
	struct trace t;
	if (trace_open(path, &t) != HW_OK) {
		trace_close(&t);
		return COMPRESS_FAILED;
	}
	st->bytes_in = t.size;
	if (t.ncompressed) {
		/* compressed before: what it kept raw, it kept for a reason */
		trace_close(&t);
		st->bytes_out = st->bytes_in;
		return COMPRESS_ALREADY;
	}

	/* the temporary file: beside the trace (rename stays in one filesystem),
	 * hidden, mode 0600 until it is complete */
	size_t plen = strlen(path);
	char *tmp = xmalloc(plen + 32);
	const char *base = base_name(path);
	snprintf(tmp, plen + 32, "%.*s.%s.XXXXXX", (int)(base - path), path, base);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		err_print("compress: cannot create a file beside %s: %s; it is left as it is", path,
			  strerror(errno));
		trace_close(&t);
		free(tmp);
		return COMPRESS_FAILED;
	}
	struct out o = {.fd = fd};
	o.err = compress_to_fd_(&t, fd, level, poor_level, helper_ok, st);
	const char *what = NULL;
	/* the owner too (root compressing a user's trace); failing that (not
	 * root), the file is ours, as the trace was when we could write it */
	if (!o.err && fchown(fd, before.st_uid, before.st_gid) < 0 && errno != EPERM)
		o.err = errno;
	if (!o.err && fchmod(fd, before.st_mode & 07777) < 0)
		o.err = errno;
	if (!o.err && fsync(fd) < 0)
		o.err = errno;
	if (close(fd) < 0 && !o.err)
		o.err = errno;
	trace_close(&t); /* the mapping: a lease sees it as the file held open */
	struct stat after;
	if (!o.err && (stat(path, &after) < 0 || after.st_ino != before.st_ino ||
		       after.st_size != before.st_size || after.st_mtim.tv_sec != before.st_mtim.tv_sec ||
		       after.st_mtim.tv_nsec != before.st_mtim.tv_nsec))
		what = "it changed while it was compressed";
	pid_t late = 0;
	if (!o.err && !what && (late = path_writer(path, before.st_dev, before.st_ino)))
		what = "a process opened it while it was compressed";
	if (!o.err && !what && rename(tmp, path) < 0)
		o.err = errno;
	if (o.err || what) {
		if (what)
			err_print("compress: %s: %s; it is left as it is", path, what);
		else
			err_print("compress: cannot write %s: %s; the trace is left as it is", tmp,
				  strerror(o.err));
		unlink(tmp);
	} else {
		/* the rename itself reaches the disk with the directory */
		char *dir = xstrndup(path, (size_t)(base - path));
		int dfd = open(*dir ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		free(dir);
	}
	free(tmp);
	return o.err || what ? COMPRESS_FAILED : COMPRESS_DONE;
}

enum compress_result compress_trace(const char *path, int level, bool report_busy,
				    struct compress_stats *st)
{
	struct compress_job one = {.path = path};
	return compress_trace_(path, level, poor_level_of(&one, 1, level), report_busy, true, st);
}

/* --- several traces at once ------------------------------------------------ */

struct pool {
	struct compress_job *jobs;
	size_t *order; /* of jobs: the largest first */
	size_t n, next; /* next: the next of order to take (atomic) */
	int level, poor_level;
	bool report_busy;
};

static void *pool_main(void *arg)
{
	struct pool *p = arg;
	for (;;) {
		size_t k = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
		if (k >= p->n)
			break;
		struct compress_job *j = &p->jobs[p->order[k]];
		/* a trace's second thread only for the last one taken: the
		 * threads of the pool keep the CPUs busy before it */
		j->r = compress_trace_(j->path, p->level, p->poor_level, p->report_busy, k == p->n - 1,
				       &j->st);
	}
	return NULL;
}

/* qsort_r: the job of the larger file first, then in the given order */
static int larger_first(const void *a, const void *b, void *arg)
{
	const struct compress_job *jobs = arg;
	size_t i = *(const size_t *)a, k = *(const size_t *)b;
	uint64_t x = jobs[i].st.bytes_in, y = jobs[k].st.bytes_in;
	if (x != y)
		return x < y ? 1 : -1;
	return (i > k) - (i < k);
}

void compress_traces(struct compress_job *jobs, size_t n, int level, bool report_busy)
{
	long cpus = compress_cpus();
	size_t nthreads = (size_t)cpus < n ? (size_t)cpus : n;
	int poor = poor_level_of(jobs, n, level);
	struct pool p = {.jobs = jobs, .level = level, .poor_level = poor, .report_busy = report_busy};
	if (nthreads < 2) {
		for (size_t i = 0; i < n; i++)
			jobs[i].r = compress_trace_(jobs[i].path, level, poor, report_busy, true,
						    &jobs[i].st);
		return;
	}
	/* a file named twice (or by two links) is compressed once in the
	 * pool, the other times after it, in their turn, as one at a time
	 * would: "compressed already" */
	p.order = xmalloc(n * sizeof(*p.order));
	size_t *later = xmalloc(n * sizeof(*later)), nlater = 0;
	dev_t *dev = xmalloc(n * sizeof(*dev));
	ino_t *ino = xmalloc(n * sizeof(*ino));
	for (size_t i = 0; i < n; i++) {
		struct stat sb;
		bool ok = stat(jobs[i].path, &sb) == 0;
		dev[i] = ok ? sb.st_dev : 0;
		ino[i] = ok ? sb.st_ino : 0;
		jobs[i].st.bytes_in = ok ? (uint64_t)sb.st_size : 0;
		bool again = false;
		for (size_t k = 0; ok && !again && k < i; k++)
			again = ino[k] == ino[i] && dev[k] == dev[i];
		if (again)
			later[nlater++] = i;
		else
			p.order[p.n++] = i;
	}
	free(dev);
	free(ino);
	qsort_r(p.order, p.n, sizeof(*p.order), larger_first, jobs);
	pthread_t *th = xmalloc(nthreads * sizeof(*th));
	size_t started = 0;
	while (started + 1 < nthreads && !pthread_create(&th[started], NULL, pool_main, &p))
		started++;
	pool_main(&p);
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	for (size_t i = 0; i < nlater; i++) {
		struct compress_job *j = &jobs[later[i]];
		j->r = compress_trace_(j->path, level, poor, report_busy, true, &j->st);
	}
	free(th);
	free(later);
	free(p.order);
}

static void human(char *buf, size_t cap, uint64_t n)
{
	if (n >= (1u << 20))
		snprintf(buf, cap, "%.1f MiB", (double)n / (1 << 20));
	else if (n >= (1u << 10))
		snprintf(buf, cap, "%.1f KiB", (double)n / (1 << 10));
	else
		snprintf(buf, cap, "%" PRIu64 " B", n);
}

void compress_print(FILE *f, const char *path, const struct compress_stats *st)
{
	char a[32], b[32];
	human(a, sizeof(a), st->bytes_in);
	human(b, sizeof(b), st->bytes_out);
	fputs("heapwise: compressed ", f);
	text_str(f, path);
	fprintf(f, ": %s -> %s (%.1fx)", a, b,
		st->bytes_out ? (double)st->bytes_in / (double)st->bytes_out : 0.0);
	if (st->chunks_raw)
		fprintf(f, ", %" PRIu64 " damaged or incompressible block%s kept as they were",
			st->chunks_raw, st->chunks_raw == 1 ? "" : "s");
	fputc('\n', f);
}

static const char compress_usage[] =
	"usage: heapwise compress [--level N] TRACE...\n"
	"  compresses each trace in place (zstd over column streams, consecutive chunks\n"
	"  of a thread together); every command reads compressed traces. A trace is\n"
	"  rewritten into a temporary file beside it and renamed over it: on any error\n"
	"  it is left as it was.\n"
	"  --level N      zstd level, 1-19 (default 3, where in traces written at most\n"
	"                 32 MiB a second together, consecutive chunks that shrink less\n"
	"                 than 12 times are compressed again at 10)\n";

int cmd_compress(int argc, char **argv)
{
	static const struct option opts[] = {
		{"level", required_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0},
	};
	int level = HW_COMPRESS_LEVEL, c;
	optind = 1;
	while ((c = err_getopt("compress", argc, argv, "h", opts)) != -1) {
		switch (c) {
		case 'l': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || end == optarg || v < 1 || v > 19) {
				err_print("compress: --level wants a number from 1 to 19, not %s", optarg);
				return 2;
			}
			level = (int)v;
			break;
		}
		case 'h':
			fputs(compress_usage, stdout);
			return 0;
		default:
			fputs(compress_usage, stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		err_print("compress: no trace given");
		fputs(compress_usage, stderr);
		return 2;
	}
	int rc = 0;
	size_t n = (size_t)(argc - optind);
	struct compress_job *jobs = xcalloc(n, sizeof(*jobs));
	for (size_t i = 0; i < n; i++)
		jobs[i].path = argv[optind + (int)i];
	compress_traces(jobs, n, level, true);
	for (size_t i = 0; i < n; i++) {
		const char *path = jobs[i].path;
		switch (jobs[i].r) {
		case COMPRESS_DONE:
			compress_print(stdout, path, &jobs[i].st);
			break;
		case COMPRESS_ALREADY:
			printf("heapwise: ");
			text_str(stdout, path);
			printf(" is compressed already\n");
			break;
		case COMPRESS_BUSY:
			rc = 3;
			break;
		case COMPRESS_FAILED:
			if (!rc)
				rc = 2;
			break;
		}
	}
	free(jobs);
	return rc;
}
