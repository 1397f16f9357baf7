/* Trace reader (analyzer, first stage). The file is mapped read-only and
 * treated as hostile: every length and count is checked against the bytes
 * that are there, and decoding stops at the first record that does not parse. */
#include "reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "cols.h"

#include "heapwise/varint.h"
#include "util.h"

static char *join_args(const char *p, size_t n)
{
	char *s = xstrndup(p, n);
	while (n && s[n - 1] == 0)
		n--;
	for (size_t i = 0; i < n; i++)
		if (s[i] == 0)
			s[i] = ' ';
	s[n] = 0;
	return s;
}

static enum hw_err parse(struct trace *t, int fd);

/* Opens a trace file: a regular file at least a header's fixed part long
 * (nothing a path names is read unless it is a regular file; a FIFO's open
 * never blocks). Returns the descriptor and its size, or -1 with *rc set
 * and the error printed. */
static int open_trace_file(const char *path, size_t *size, enum hw_err *rc)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	/* EWOULDBLOCK: a lease on the file (heapwise compress holds one for
	 * microseconds while it asks whether anyone has the trace open): the
	 * open is tried again for up to a second */
	for (int tries = 0; fd < 0 && errno == EWOULDBLOCK && tries < 1000; tries++) {
		nanosleep(&(struct timespec){0, 1000000}, NULL);
		fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	}
	if (fd < 0) {
		err_print("cannot open %s: %s", path, strerror(errno));
		*rc = HW_ERR_OPEN;
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		err_print("%s is not a regular file", path);
		close(fd);
		*rc = HW_ERR_OPEN;
		return -1;
	}
	*size = (size_t)st.st_size;
	if (*size < HW_HEADER_FIXED_SIZE) {
		close(fd);
		err_print("%s: not a heapwise trace (%zu bytes, too short for a header)", path,
			  *size);
		*rc = HW_ERR_NOT_TRACE;
		return -1;
	}
	return fd;
}

enum hw_err trace_open(const char *path, struct trace *t)
{
	memset(t, 0, sizeof(*t));
	t->path = xstrndup(path, strlen(path));
	enum hw_err orc;
	int fd = open_trace_file(path, &t->size, &orc);
	if (fd < 0)
		return orc;
	void *m = mmap(NULL, t->size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED) {
		close(fd);
		err_print("cannot map %s: %s", path, strerror(errno));
		return HW_ERR_OPEN;
	}
	t->mapped = true;
	t->data = m;
	/* chunk headers are read with pread: touching them through the mapping
	 * would map the whole file (fault-around maps 64 KiB per fault) */
	enum hw_err rc = parse(t, fd);
	close(fd);
	madvise(m, t->size, MADV_DONTNEED); /* the header pages parse touched */
	return rc;
}

enum hw_err trace_open_buffer(const uint8_t *data, size_t size, const char *name, struct trace *t)
{
	memset(t, 0, sizeof(*t));
	t->path = xstrndup(name, strlen(name));
	t->data = data;
	t->size = size;
	if (size < HW_HEADER_FIXED_SIZE) {
		err_print("%s: not a heapwise trace (%zu bytes, too short for a header)", name, size);
		return HW_ERR_NOT_TRACE;
	}
	return parse(t, -1);
}

/* Chunk headers are read with pread: touching them through the mapping
 * would map the whole file (fault-around maps 64 KiB per fault). */
static void read_header(const struct trace *t, int fd, uint64_t off, struct hw_chunk_header *ch)
{
	if (fd < 0 || pread(fd, ch, sizeof(*ch), (off_t)off) != (ssize_t)sizeof(*ch))
		memcpy(ch, t->data + off, sizeof(*ch));
}

/* A chunk of size bytes (its header included) at off. */
static void add_chunk(struct trace *t, size_t *cap, uint64_t off, const struct hw_chunk_header *ch,
		      uint32_t size)
{
	uint64_t room = t->size - off - HW_CHUNK_HEADER_SIZE;
	uint64_t limit = size - HW_CHUNK_HEADER_SIZE;
	uint64_t used = ch->used;
	if (used > limit) {
		t->damaged = true;
		used = limit;
	}
	if (used > room) {
		if (!t->warned)
			warn_print("%s: trace cut at offset %zu, inside a chunk; reading what is there",
				   t->path, t->size);
		t->warned = true;
		t->damaged = true;
		used = room;
	}
	HW_GROW(t->chunks, t->nchunks, *cap);
	t->chunks[t->nchunks++] = (struct chunk_ref){off, ch->thread, ch->index, (uint32_t)used, 0, false, 0, 0};
}

static enum hw_err parse(struct trace *t, int fd)
{
	const char *path = t->path;
	memcpy(&t->hdr, t->data, sizeof(t->hdr));
	const struct hw_file_header *h = &t->hdr;
	if (memcmp(h->magic, HW_MAGIC, 8)) {
		err_print("%s: not a heapwise trace (bad magic)", path);
		return HW_ERR_NOT_TRACE;
	}
	if (h->version < HW_FORMAT_VERSION_MIN || h->version > HW_FORMAT_VERSION) {
		err_print("%s: trace format version %u is not supported (this heapwise reads %u to %u)",
			  path, h->version, HW_FORMAT_VERSION_MIN, HW_FORMAT_VERSION);
		return HW_ERR_VERSION;
	}
	if (h->header_size < HW_HEADER_FIXED_SIZE || h->header_size > (1u << 20) ||
	    h->chunk_size < HW_MIN_CHUNK_SIZE || h->chunk_size > HW_MAX_CHUNK_SIZE ||
	    (uint64_t)h->cmdline_len + h->exe_len > h->header_size - HW_HEADER_FIXED_SIZE) {
		err_print("%s: damaged header (sizes out of range)", path);
		return HW_ERR_HEADER;
	}
	if (t->size < h->header_size) {
		err_print("%s: truncated inside the header (%zu of %u bytes)", path, t->size,
			  h->header_size);
		return HW_ERR_HEADER;
	}
	const char *text = (const char *)t->data + HW_HEADER_FIXED_SIZE;
	t->cmdline = join_args(text, h->cmdline_len);
	t->exe = xstrndup(text + h->cmdline_len, h->exe_len);
	if (memchr(t->exe, 0, h->exe_len))
		t->exe[strlen(t->exe)] = 0;
	/* the stop record (trace_format.h), unless older text reaches into it */
	if (h->header_size >= HW_HEADER_SIZE &&
	    HW_HEADER_FIXED_SIZE + (uint64_t)h->cmdline_len + h->exe_len <= HW_STOP_OFFSET) {
		memcpy(&t->stop, t->data + HW_STOP_OFFSET, sizeof(t->stop));
		if (t->stop.magic != HW_STOP_MAGIC || !t->stop.reason)
			memset(&t->stop, 0, sizeof(t->stop));
	}

	if (t->follow)
		return HW_OK;
	size_t cap = 0;
	uint64_t next;
	for (uint64_t off = h->header_size; off + HW_CHUNK_HEADER_SIZE <= t->size; off = next) {
		next = off + h->chunk_size;
		/* the chunk header and, in a compressed chunk, its zlen */
		uint8_t head[HW_ZCHUNK_HEADER_SIZE] = {0};
		uint64_t have = t->size - off < sizeof(head) ? t->size - off : sizeof(head);
		if (fd < 0 || pread(fd, head, have, (off_t)off) != (ssize_t)have)
			memcpy(head, t->data + off, have);
		struct hw_chunk_header ch;
		memcpy(&ch, head, sizeof(ch));
		if (ch.magic == HW_CHUNK_MAGIC && HW_CHUNK_IS_Z(ch.used)) {
			/* a compressed chunk: 20 + zlen bytes */
			uint64_t limit = h->chunk_size - HW_CHUNK_HEADER_SIZE;
			uint64_t used = ch.used & HW_CHUNK_USED_MASK;
			uint32_t z;
			memcpy(&z, head + HW_CHUNK_HEADER_SIZE, 4);
			uint64_t room = off + HW_ZCHUNK_HEADER_SIZE <= t->size
						? t->size - off - HW_ZCHUNK_HEADER_SIZE
						: 0;
			if (off + HW_ZCHUNK_HEADER_SIZE > t->size || z > room) {
				if (!t->warned)
					warn_print("%s: trace cut at offset %zu, inside a compressed chunk; reading what is before it",
						   path, t->size);
				t->warned = true;
				t->damaged = true;
				break;
			}
			next = off + HW_ZCHUNK_HEADER_SIZE + z;
			bool cols = ch.used & HW_CHUNK_COLS;
			bool group = ch.used & HW_CHUNK_GROUP;
			uint32_t k = 1, gused[HW_COLS_GROUP_MAX];
			unsigned shift;
			gused[0] = (uint32_t)used;
			/* a group's head and its chunks' used (pread too) */
			uint8_t ghead[HW_ZCHUNK_HEADER_SIZE + 4u * HW_COLS_GROUP_MAX] = {0};
			if (group) {
				size_t gn = HW_ZCHUNK_HEADER_SIZE + (z < 4u * HW_COLS_GROUP_MAX ? z : 4u * HW_COLS_GROUP_MAX);
				if (fd < 0 || pread(fd, ghead, gn, (off_t)off) != (ssize_t)gn)
					memcpy(ghead, t->data + off, gn);
			}
			if (group ? !cols_group_head(ghead, z, limit, &k, &shift, gused) ||
					    z > cols_group_bound(HW_COLS_GROUP_BYTES, k) ||
					    ch.index > UINT32_MAX - (k - 1)
				  : used > limit || z == 0 ||
					    z > (cols ? cols_bound(h->chunk_size)
						      : ZSTD_compressBound(h->chunk_size))) {
				if (!t->warned)
					warn_print("%s: damaged compressed chunk at offset %llu (sizes out of range); it is skipped",
						   path, (unsigned long long)off);
				t->warned = true;
				t->damaged = true;
				continue;
			}
			if (!used)
				continue;
			t->ncompressed++;
			for (uint32_t j = 0; j < k; j++) {
				HW_GROW(t->chunks, t->nchunks, cap);
				t->chunks[t->nchunks++] = (struct chunk_ref){
					off, ch.thread, ch.index + j, gused[j], z, cols,
					(uint8_t)(group ? j : 0), (uint8_t)(group ? k : 0)};
			}
			continue;
		}
		if (ch.magic == HW_CHUNK_MAGIC) {
			add_chunk(t, &cap, off, &ch, h->chunk_size);
			continue;
		}
		/* a slab: chunks of ch.thread bytes (the slot size) */
		uint32_t slot = ch.thread;
		if (ch.magic != HW_SLAB_MAGIC || h->version < 3)
			continue; /* claimed but never written, or preallocated */
		if (slot < HW_SLOT_MIN || slot > h->chunk_size / 4 || (slot & (slot - 1))) {
			t->damaged = true; /* a slab of what? none of its slots is read */
			continue;
		}
		/* a slot is never compressed in place (heapwise compress turns a
		 * slab into compressed chunks): a slot's used with flags is out of range */
		for (uint64_t s = off + HW_SLAB_HEADER_SIZE;
		     s + slot <= off + h->chunk_size && s + HW_CHUNK_HEADER_SIZE <= t->size; s += slot) {
			read_header(t, fd, s, &ch);
			if (ch.magic == HW_CHUNK_MAGIC)
				add_chunk(t, &cap, s, &ch, slot);
		}
	}
	return HW_OK;
}

static size_t chunk_checked(struct trace *t, const struct chunk_ref *c, const char *why, size_t n);

#define GROUPS_KEPT_BYTES (16u << 20)

/* The inflated group of chunk c (t->dctx made), from the ones kept or
 * inflated now in place of one whose last chunk was read, else of the
 * oldest; never in place of one a cursor is decoding a piece at a time
 * (pinned: its streams are read until that chunk's last piece; when all
 * are, the slots double). t->cols made too. */
static struct cols_group *group_of(struct trace *t, const struct chunk_ref *c)
{
	if (!t->cols)
		t->cols = xcalloc(1, sizeof(*t->cols));
	if (!t->ngroups) {
		t->ngroups = 8;
		t->groups = xcalloc(t->ngroups, sizeof(*t->groups));
	}
	size_t n = t->ngroups;
	bool last = c->gj + 1 >= c->gk;
	for (size_t i = 0; i < n; i++)
		if (t->groups[i] && t->groups[i]->key == c->offset) {
			t->groups[i]->read_all |= last;
			return t->groups[i];
		}
	/* a reading in file order (the replay's, dump's) needs a group no more
	 * once its last chunk was read: its slot and buffer go first, so a
	 * thread's groups one after another use one buffer */
	size_t at = SIZE_MAX;
	for (size_t k = 0; k < n && at == SIZE_MAX; k++) {
		struct cols_group *o = t->groups[(t->group_next + k) % n];
		if (o && o->read_all && o->buf && !o->pins)
			at = (t->group_next + k) % n;
	}
	for (size_t k = 0; k < n && at == SIZE_MAX; k++) {
		struct cols_group *o = t->groups[(t->group_next + k) % n];
		if (!o || !o->pins) {
			at = (t->group_next + k) % n;
			t->group_next = (at + 1) % n;
		}
	}
	if (at == SIZE_MAX) {
		t->groups = xrealloc(t->groups, 2 * n * sizeof(*t->groups));
		memset(t->groups + n, 0, n * sizeof(*t->groups));
		at = n;
		n = t->ngroups = 2 * n;
		t->group_next = (at + 1) % n;
	}
	struct cols_group **g = &t->groups[at];
	if (!*g)
		*g = xcalloc(1, sizeof(**g));
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += t->groups[i] ? t->groups[i]->cap : 0;
	/* a slot whose buffer was given back (below) takes the oldest kept
	 * group's when one more would pass the bound: memory used before,
	 * not fresh pages the kernel faults in and clears for every group of
	 * a long read (about 4% of a compressed summary's time) */
	for (size_t k = 0; k < n && !(*g)->buf; k++) {
		struct cols_group *o = t->groups[(t->group_next + k) % n];
		if (!o || o == *g || !o->buf || o->pins)
			continue;
		if (total + o->cap > GROUPS_KEPT_BYTES) {
			(*g)->buf = o->buf;
			(*g)->cap = o->cap;
			o->buf = NULL;
			cols_group_free(o); /* key 0: no chunk's */
		}
		break;
	}
	(*g)->key = c->offset;
	cols_group_inflate(*g, t->dctx, t->data + c->offset, c->zlen,
			   t->hdr.chunk_size - HW_CHUNK_HEADER_SIZE);
	(*g)->read_all = last;
	/* the groups kept hold GROUPS_KEPT_BYTES at most (a group's streams
	 * take about its 2 MiB of records, 4 MiB at most), pinned ones aside:
	 * the oldest others give theirs back, and are inflated again if a
	 * chunk of theirs is read */
	total = 0;
	for (size_t i = 0; i < n; i++)
		total += t->groups[i] && !t->groups[i]->pins ? t->groups[i]->cap : 0;
	for (size_t k = 0; k < n && total > GROUPS_KEPT_BYTES; k++) {
		struct cols_group *o = t->groups[(t->group_next + k) % n];
		if (!o || o == *g || o->pins)
			continue;
		total -= o->cap;
		cols_group_free(o); /* key 0: no chunk's */
	}
	return *g;
}

size_t trace_chunk_decompress(const struct trace *tc, size_t i, uint8_t *dst)
{
	struct trace *t = (struct trace *)tc; /* its context and warning state */
	const struct chunk_ref *c = &t->chunks[i];
	if (!t->dctx)
		t->dctx = ZSTD_createDCtx();
	/* dst has room for `used` bytes only: a frame that claims more, or
	 * decompresses to more (a bomb), is an error, never an overflow */
	const uint8_t *z = t->data + c->offset + HW_ZCHUNK_HEADER_SIZE;
	const char *why = NULL;
	size_t n = (size_t)-1;
	if (t->dctx && c->gk) {
		const struct cols_group *g = group_of(t, c);
		n = cols_group_decode(t->cols, g, c->gj, dst, c->used, &why);
	} else if (t->dctx && c->cols) {
		if (!t->cols)
			t->cols = xcalloc(1, sizeof(*t->cols));
		n = cols_decode(t->cols, t->dctx, z, c->zlen, dst, c->used, &why);
	} else if (t->dctx && !(why = cols_seal_broken(z, c->zlen))) {
		n = ZSTD_decompressDCtx(t->dctx, dst, c->used, z, c->zlen);
	}
	return chunk_checked(t, c, why, n);
}

/* One warning for the trace: compressed chunk c is damaged (why), the
 * whole of it skipped or, after records read from it, the rest. */
static void damaged_chunk(struct trace *t, const struct chunk_ref *c, const char *why, bool rest)
{
	if (!t->warned)
		warn_print("%s: damaged compressed chunk at offset %llu (%s); %s", t->path,
			   (unsigned long long)c->offset, why,
			   rest ? "the rest of it is skipped" : "it is skipped");
	t->warned = true;
	t->damaged = true;
}

/* What decompressing chunk c gave: n bytes (used), or a warning. */
static size_t chunk_checked(struct trace *t, const struct chunk_ref *c, const char *why, size_t n)
{
	if (!t->dctx || why || ZSTD_isError(n) || n != c->used) {
		damaged_chunk(t, c,
			      !t->dctx		? "out of memory"
			      : why		? why
			      : ZSTD_isError(n) ? ZSTD_getErrorName(n)
						: "it decompresses to fewer bytes than it says",
			      false);
		return 0;
	}
	return n;
}

struct follow_state {
	int fd;
	size_t reserve; /* bytes mapped */
	uint64_t scan_from; /* blocks before it were looked at */
	uint64_t *pending; /* blocks before scan_from not taken in whole */
	size_t npending, pendcap;
	bool outgrown; /* the file is longer than the mapping */
	/* open addressing: chunk offsets taken in (key + 1), and chunk numbers
	 * by thread << 32 | index (value + 1) */
	uint64_t *off_keys;
	uint64_t *ti_keys, *ti_vals;
	size_t mask, n;
	size_t cap; /* of t->chunks */
};

#define FOLLOW_RESERVE ((size_t)1 << 40) /* address space, not memory */

static size_t hslot(uint64_t k, size_t mask)
{
	return (size_t)((k * 0x9E3779B97F4A7C15ull) >> 20) & mask;
}

static void follow_grow(struct follow_state *f)
{
	size_t oldcap = f->off_keys ? f->mask + 1 : 0;
	uint64_t *ok = f->off_keys, *tk = f->ti_keys, *tv = f->ti_vals;
	size_t cap = oldcap ? oldcap * 2 : 1024;
	f->mask = cap - 1;
	f->off_keys = xcalloc(cap, sizeof(uint64_t));
	f->ti_keys = xcalloc(cap, sizeof(uint64_t));
	f->ti_vals = xcalloc(cap, sizeof(uint64_t));
	for (size_t i = 0; i < oldcap; i++) {
		if (ok[i]) {
			size_t s = hslot(ok[i], f->mask);
			while (f->off_keys[s])
				s = (s + 1) & f->mask;
			f->off_keys[s] = ok[i];
		}
		if (tk[i]) {
			size_t s = hslot(tk[i], f->mask);
			while (f->ti_keys[s])
				s = (s + 1) & f->mask;
			f->ti_keys[s] = tk[i];
			f->ti_vals[s] = tv[i];
		}
	}
	free(ok);
	free(tk);
	free(tv);
}

static bool follow_known(const struct follow_state *f, uint64_t off)
{
	if (!f->off_keys)
		return false;
	for (size_t s = hslot(off + 1, f->mask); f->off_keys[s]; s = (s + 1) & f->mask)
		if (f->off_keys[s] == off + 1)
			return true;
	return false;
}

static void follow_add(struct trace *t, size_t *cap, uint64_t off, const struct hw_chunk_header *ch,
		       uint32_t size)
{
	struct follow_state *f = t->follow;
	if ((f->n + 1) * 2 > (f->off_keys ? f->mask + 1 : 0))
		follow_grow(f);
	size_t s = hslot(off + 1, f->mask);
	while (f->off_keys[s])
		s = (s + 1) & f->mask;
	f->off_keys[s] = off + 1;
	uint64_t k = ((uint64_t)ch->thread << 32 | ch->index) + 1;
	s = hslot(k, f->mask);
	while (f->ti_keys[s] && f->ti_keys[s] != k)
		s = (s + 1) & f->mask;
	if (!f->ti_keys[s]) { /* a duplicate (thread, index) is damage: the first stays */
		f->ti_keys[s] = k;
		f->ti_vals[s] = t->nchunks + 1;
	}
	f->n++;
	add_chunk(t, cap, off, ch, size);
}

bool trace_follow_outgrown(const struct trace *t)
{
	return t->follow && t->follow->outgrown;
}

size_t trace_next_chunk(const struct trace *t, size_t i)
{
	const struct follow_state *f = t->follow;
	const struct chunk_ref *c = &t->chunks[i];
	if (!f || !f->ti_keys || c->index == UINT32_MAX)
		return SIZE_MAX;
	uint64_t k = ((uint64_t)c->thread << 32 | (c->index + 1)) + 1;
	for (size_t s = hslot(k, f->mask); f->ti_keys[s]; s = (s + 1) & f->mask)
		if (f->ti_keys[s] == k)
			return (size_t)(f->ti_vals[s] - 1);
	return SIZE_MAX;
}

uint32_t trace_chunk_used_now(struct trace *t, size_t i)
{
	struct chunk_ref *c = &t->chunks[i];
	if (!t->follow)
		return c->used;
	uint32_t used = __atomic_load_n((const uint32_t *)(t->data + c->offset + 8), __ATOMIC_ACQUIRE);
	uint64_t room = t->size - c->offset - HW_CHUNK_HEADER_SIZE;
	uint64_t limit = t->hdr.chunk_size - HW_CHUNK_HEADER_SIZE;
	if (used > room || used > limit || HW_CHUNK_IS_Z(used)) /* damage: what was taken in stays */
		return c->used;
	if (used > c->used)
		c->used = used;
	return c->used;
}

/* Takes in the chunk or slab slots of the block at off: 1 when the block
 * is all there (a chunk, a slab with every slot used), 0 when a later look
 * may find more (an unused block, a slab's unused slots), -1 at a
 * compressed chunk (not a live trace). */
static int follow_block(struct trace *t, size_t *cap, uint64_t off)
{
	struct follow_state *f = t->follow;
	const struct hw_file_header *h = &t->hdr;
	struct hw_chunk_header ch;
	if (pread(f->fd, &ch, sizeof(ch), (off_t)off) != (ssize_t)sizeof(ch))
		return 0;
	if (ch.magic == HW_CHUNK_MAGIC && HW_CHUNK_IS_Z(ch.used)) {
		t->ncompressed++; /* heapwise compress's: not a live trace */
		return -1;
	}
	if (ch.magic == HW_CHUNK_MAGIC) {
		if (!follow_known(f, off))
			follow_add(t, cap, off, &ch, h->chunk_size);
		return 1;
	}
	if (ch.magic != HW_SLAB_MAGIC)
		return 0;
	uint32_t slot = ch.thread;
	if (slot < HW_SLOT_MIN || slot > h->chunk_size / 4 || (slot & (slot - 1))) {
		t->damaged = true; /* a slab of what? none of its slots is read */
		return 1;
	}
	int whole = 1;
	for (uint64_t s = off + HW_SLAB_HEADER_SIZE; s + slot <= off + h->chunk_size; s += slot) {
		if (s + HW_CHUNK_HEADER_SIZE > t->size)
			return 0;
		if (follow_known(f, s))
			continue;
		struct hw_chunk_header sc;
		if (pread(f->fd, &sc, sizeof(sc), (off_t)s) != (ssize_t)sizeof(sc) ||
		    sc.magic != HW_CHUNK_MAGIC) {
			whole = 0;
			continue;
		}
		follow_add(t, cap, s, &sc, slot);
	}
	return whole;
}

void trace_refresh(struct trace *t)
{
	struct follow_state *f = t->follow;
	if (!f)
		return;
	struct stat st;
	if (fstat(f->fd, &st) == 0 && (size_t)st.st_size > t->size) {
		t->size = (size_t)st.st_size < f->reserve ? (size_t)st.st_size : f->reserve;
		f->outgrown = (size_t)st.st_size > f->reserve;
	}
	const struct hw_file_header *h = &t->hdr;
	if (!t->stop.reason && h->header_size >= HW_HEADER_SIZE &&
	    HW_HEADER_FIXED_SIZE + (uint64_t)h->cmdline_len + h->exe_len <= HW_STOP_OFFSET) {
		struct hw_stop_record sr;
		if (pread(f->fd, &sr, sizeof(sr), HW_STOP_OFFSET) == (ssize_t)sizeof(sr) &&
		    sr.magic == HW_STOP_MAGIC && sr.reason)
			t->stop = sr;
	}
	size_t cap = f->cap;
	/* the blocks not taken in whole last time, then the new ones */
	size_t keep = 0;
	for (size_t i = 0; i < f->npending; i++)
		if (follow_block(t, &cap, f->pending[i]) == 0)
			f->pending[keep++] = f->pending[i];
	f->npending = keep;
	for (uint64_t off = f->scan_from; off + HW_CHUNK_HEADER_SIZE <= t->size; off += h->chunk_size) {
		int whole = follow_block(t, &cap, off);
		if (whole < 0)
			break;
		if (off + h->chunk_size > t->size)
			break; /* cut by the end of the file: read again next time */
		if (!whole) {
			HW_GROW(f->pending, f->npending, f->pendcap);
			f->pending[f->npending++] = off;
		}
		f->scan_from = off + h->chunk_size;
	}
	f->cap = cap;
}

enum hw_err trace_open_follow(const char *path, struct trace *t)
{
	memset(t, 0, sizeof(*t));
	t->path = xstrndup(path, strlen(path));
	enum hw_err orc;
	size_t fsize;
	int fd = open_trace_file(path, &fsize, &orc);
	if (fd < 0)
		return orc;
	/* the most address space there is, down to twice the file (an
	 * address-space limit, valgrind); a trace that outgrows it ends the
	 * following (trace_follow_outgrown) */
	size_t reserve = FOLLOW_RESERVE;
	void *m = MAP_FAILED;
	for (;;) {
		m = mmap(NULL, reserve, PROT_READ, MAP_SHARED | MAP_NORESERVE, fd, 0);
		if (m != MAP_FAILED || reserve / 2 < 2 * fsize ||
		    reserve / 2 < ((size_t)64 << 20))
			break;
		reserve /= 2;
	}
	if (m == MAP_FAILED) {
		close(fd);
		err_print("cannot map %s: %s", path, strerror(errno));
		return HW_ERR_OPEN;
	}
	t->mapped = true;
	t->data = m;
	t->follow = xcalloc(1, sizeof(*t->follow));
	t->follow->fd = fd;
	t->follow->reserve = reserve;
	t->size = fsize;
	enum hw_err rc = parse(t, fd); /* the header: chunks are trace_refresh's */
	if (rc != HW_OK)
		return rc;
	if (t->hdr.version < 3) {
		err_print("%s: trace format version %u: heapwise follow reads format 3 and later",
			  path, t->hdr.version);
		return HW_ERR_VERSION;
	}
	t->follow->scan_from = t->hdr.header_size;
	trace_refresh(t);
	if (t->ncompressed) {
		err_print("%s: a compressed trace is not live: use check --between", path);
		return HW_ERR_VERSION;
	}
	return HW_OK;
}

void trace_close(struct trace *t)
{
	if (t->follow) {
		if (t->data)
			munmap((void *)t->data, t->follow->reserve);
		close(t->follow->fd);
		free(t->follow->off_keys);
		free(t->follow->ti_keys);
		free(t->follow->ti_vals);
		free(t->follow->pending);
		free(t->follow);
		t->data = NULL;
	}
	if (t->data && t->mapped)
		munmap((void *)t->data, t->size);
	free(t->path);
	free(t->cmdline);
	free(t->exe);
	free(t->chunks);
	ZSTD_freeDCtx(t->dctx);
	if (t->cols) {
		cols_free(t->cols);
		free(t->cols);
	}
	for (size_t i = 0; i < t->ngroups; i++)
		if (t->groups[i]) {
			cols_group_free(t->groups[i]);
			free(t->groups[i]);
		}
	free(t->groups);
	for (size_t i = 0; i < t->nlabels; i++)
		free(t->labels[i]);
	free(t->labels);
	for (size_t i = 0; i < t->nspare; i++)
		free(t->spare[i].p);
	memset(t, 0, sizeof(*t));
}

/* A buffer of `need` bytes for a compressed chunk's records. */
static void cursor_buf(struct cursor *c, size_t need)
{
	struct trace *tw = (struct trace *)c->trace; /* its spare buffers */
	for (size_t k = tw->nspare; k-- > 0;)
		if (tw->spare[k].cap >= need) {
			c->buf = tw->spare[k].p;
			c->buf_cap = tw->spare[k].cap;
			tw->spare[k] = tw->spare[--tw->nspare];
			return;
		}
	c->buf_cap = (need + 4095) & ~(size_t)4095;
	c->buf = xmalloc(c->buf_cap);
}

static void cursor_unpin(struct cursor *c)
{
	if (c->pinned)
		c->pinned->pins--;
	c->pinned = NULL;
	c->piecing = false;
}

/* The next piece of the chunk (c->p at c->end): false at its end. */
static bool cursor_piece(struct cursor *c)
{
	struct trace *t = (struct trace *)c->trace;
	const struct chunk_ref *ch = c->chunk;
	size_t dlen = (size_t)(c->end - c->start), first, nev, tail_at;
	const char *why;
	enum cols_piece r = cols_dec_piece(c->dec, c->buf, &dlen, &c->cev, &c->cev_cap, &first,
					   &nev, &tail_at, &why);
	c->cev_at = first;
	c->cev_n = nev;
	c->end = c->buf + dlen;
	c->run_lim = r == COLS_LAST ? c->buf + tail_at : c->end;
	if (r == COLS_MORE)
		return true;
	cursor_unpin(c);
	if (r == COLS_RAW) {
		/* rebuilt byte for byte: the reading goes on from the raw
		 * offset it reached */
		c->p = c->start + (size_t)(c->p - c->start) + c->shrink;
		c->shrink = 0;
		c->run_lim = c->start;
		return c->p < c->end;
	}
	if (r == COLS_BAD) {
		damaged_chunk(t, ch, why, c->p > c->start);
		c->p = c->end = c->run_lim = c->start;
		c->shrink = 0;
		return false;
	}
	return c->p < c->end;
}

/* c->p < c->end, the next piece decoded if need be */
static inline bool cursor_more(struct cursor *c)
{
	return c->p < c->end || (c->piecing && cursor_piece(c));
}

void cursor_init_events(struct cursor *c, const struct trace *t, size_t i)
{
	const struct chunk_ref *ch = &t->chunks[i];
	struct hw_event *ev = c->cev;
	size_t cap = c->cev_cap;
	struct cols_dec *dec = c->dec;
	cursor_unpin(c);
	if (!ch->zlen || !ch->cols) {
		cursor_init(c, t, i);
		c->cev = ev;
		c->cev_cap = cap;
		c->dec = dec;
		return;
	}
	memset(c, 0, sizeof(*c));
	c->cev = ev;
	c->cev_cap = cap;
	c->dec = dec ? dec : cols_dec_new();
	c->trace = t;
	c->chunk = ch;
	c->thread = ch->thread;
	cursor_buf(c, ch->used);
	c->start = c->p = c->end = c->run_lim = c->buf;
	struct trace *tw = (struct trace *)t;
	if (!tw->dctx)
		tw->dctx = ZSTD_createDCtx();
	const char *why = NULL;
	bool ok = false;
	if (tw->dctx && ch->gk) {
		struct cols_group *g = group_of(tw, ch);
		ok = cols_dec_begin_group(c->dec, g, ch->gj, ch->used, &why);
		if (ok) {
			g->pins++;
			c->pinned = g;
		}
	} else if (tw->dctx) {
		ok = cols_dec_begin(c->dec, tw->dctx, t->data + ch->offset + HW_ZCHUNK_HEADER_SIZE,
				    ch->zlen, ch->used, &why);
	}
	if (!ok) {
		chunk_checked(tw, ch, why, 0);
		return;
	}
	c->piecing = true;
	cursor_piece(c);
}

void cursor_release(struct cursor *c)
{
	cursor_done(c);
	free(c->cev);
	c->cev = NULL;
	c->cev_cap = 0;
	cols_dec_free(c->dec);
	c->dec = NULL;
}

void cursor_init(struct cursor *c, const struct trace *t, size_t i)
{
	memset(c, 0, sizeof(*c));
	c->trace = t;
	c->chunk = &t->chunks[i];
	c->thread = c->chunk->thread;
	if (c->chunk->zlen) {
		cursor_buf(c, c->chunk->used);
		c->start = c->p = c->buf;
		c->end = c->start + trace_chunk_decompress(t, i, c->buf);
		return;
	}
	c->start = t->data + c->chunk->offset + HW_CHUNK_HEADER_SIZE;
	c->p = c->start;
	c->end = c->start + c->chunk->used;
}

void cursor_done(struct cursor *c)
{
	cursor_unpin(c);
	if (!c->buf)
		return;
	struct trace *t = (struct trace *)c->trace;
	size_t n = sizeof(t->spare) / sizeof(t->spare[0]);
	if (t->nspare == n) { /* full: the smallest goes */
		size_t s = 0;
		for (size_t k = 1; k < n; k++)
			if (t->spare[k].cap < t->spare[s].cap)
				s = k;
		if (t->spare[s].cap >= c->buf_cap) {
			free(c->buf);
			c->buf = NULL;
			return;
		}
		free(t->spare[s].p);
		t->spare[s] = t->spare[--t->nspare];
	}
	t->spare[t->nspare++] = (struct spare_buf){c->buf, c->buf_cap};
	c->buf = NULL;
}

uint64_t cursor_offset(const struct cursor *c)
{
	if (c->buf) /* inside a compressed chunk: the offset of its records' copy */
		return c->chunk->offset + HW_CHUNK_HEADER_SIZE + (uint64_t)(c->p - c->start) + c->shrink;
	return (uint64_t)(c->p - c->trace->data);
}


#define GET(v)                                                                            \
	do {                                                                              \
		if (hw_get_varint(&p, end, &(v)))                                         \
			goto bad;                                                         \
	} while (0)
#define GET_U8(v)                                                                         \
	do {                                                                              \
		if (p >= end)                                                             \
			goto bad;                                                         \
		(v) = *p++;                                                               \
	} while (0)

/* A length-prefixed byte string of at most max bytes, left in the trace. */
#define GET_BYTES(ptr, len, max)                                                          \
	do {                                                                              \
		uint64_t n_;                                                              \
		GET(n_);                                                                  \
		if (n_ > (max) || n_ > (uint64_t)(end - p))                               \
			goto bad;                                                         \
		(ptr) = (const void *)p;                                                  \
		(len) = n_;                                                               \
		p += n_;                                                                  \
	} while (0)

static bool next_seq(struct cursor *c, uint64_t delta, uint64_t *out)
{
	if (delta > UINT64_MAX - c->last_seq)
		return false;
	*out = c->last_seq + delta;
	c->last_seq = *out;
	return true;
}

static uint64_t next_addr(struct cursor *c, uint64_t zz)
{
	c->last_addr += (uint64_t)hw_unzigzag(zz);
	return c->last_addr;
}

/* One varint into v with the one- to three-byte cases inline (most deltas,
 * sizes and stack ids), else goto bad. Branches per length beat a
 * branch-free decoding here (measured: 180 -> 240 ms for 21M events), the
 * lengths repeat from record to record. */
#define GET_FAST(v)                                                                       \
	do {                                                                              \
		if (end - p >= 2 && p[0] < 0x80) {                                        \
			(v) = *p++;                                                       \
		} else if (end - p >= 2 && p[1] < 0x80) {                                 \
			(v) = (uint64_t)(p[0] & 0x7f) | (uint64_t)p[1] << 7;              \
			p += 2;                                                           \
		} else if (end - p >= 3 && p[2] < 0x80) {                                 \
			(v) = (uint64_t)(p[0] & 0x7f) | (uint64_t)(p[1] & 0x7f) << 7 |    \
			      (uint64_t)p[2] << 14;                                       \
			p += 3;                                                           \
		} else if (hw_get_varint(&p, end, &(v))) {                                \
			goto bad;                                                         \
		}                                                                         \
	} while (0)

static int cursor_bad(struct cursor *c)
{
	struct trace *t = (struct trace *)c->trace;
	if (!t->warned)
		warn_print("%s: damaged record at offset %llu (chunk at %llu); the rest of that chunk is skipped",
			   t->path, (unsigned long long)cursor_offset(c),
			   (unsigned long long)c->chunk->offset);
	t->warned = true;
	t->damaged = true;
	c->p = c->end;
	c->bad = true;
	cursor_unpin(c); /* and no more pieces */
	return -1;
}

/* Hands out the events of the run at c->p (cursor_init_events) into out
 * (room events), as decode_run does records: room for two per record,
 * those before limit. */
static size_t run_span(struct cursor *c, size_t room, uint64_t limit, const struct hw_event **ev)
{
	if (!c->run_left) { /* its header */
		const struct hw_event *h = &c->cev[c->cev_at++];
		c->run_left = h->seq;
		c->shrink += h->addr - 1;
		/* where a short form after the run takes its stack and kind
		 * from (a run's events are handed out before any record after
		 * it is read) */
		c->last_stack = h->stack;
		c->last_kind = h->kind;
	}
	const struct hw_event *e = c->cev + c->cev_at;
	size_t max = c->run_left < room ? (size_t)c->run_left : room;
	/* a run's sequence numbers never go down (cols.c heap_run adds each
	 * delta with an overflow check): the events before limit, by halving */
	size_t k = max;
	if (max && e[max - 1].seq >= limit) {
		size_t lo = 0;
		while (lo < k) {
			size_t mid = lo + (k - lo) / 2;
			if (e[mid].seq < limit)
				lo = mid + 1;
			else
				k = mid;
		}
	}
	/* whole records only, each begun with room for two events */
	if (k && e[k - 1].op == EV_REALLOC_FREE)
		k--;
	else if (k == room && e[k - 1].op != EV_REALLOC_ALLOC)
		k--;
	*ev = e;
	c->cev_at += k;
	c->run_left -= k;
	return k;
}

static size_t take_run(struct cursor *c, struct hw_event *out, size_t room, uint64_t limit)
{
	const struct hw_event *e;
	size_t k = run_span(c, room, limit, &e);
	memcpy(out, e, k * sizeof(*e));
	return k;
}

size_t cursor_take_run(struct cursor *c, size_t max, uint64_t limit, const struct hw_event **ev)
{
	if (max < 2 || c->p >= c->run_lim || *c->p != HW_COLS_RUN) {
		*ev = NULL;
		return 0;
	}
	size_t k = run_span(c, max, limit, ev);
	if (k) {
		c->last_seq = (*ev)[k - 1].seq;
		c->last_addr = (*ev)[k - 1].addr;
	}
	if (!c->run_left)
		c->p++;
	return k;
}

/* ALLOC, FREE and REALLOC records, the bulk of every trace, decoded straight
 * into events (see cursor_decode_run). The decoding state stays in registers
 * and goes back to the cursor once per run. *bad: a damaged record stopped
 * it (the cursor is then at the end of its chunk). */
static inline __attribute__((always_inline)) size_t decode_run(struct cursor *c, struct hw_event *out,
							       size_t max, uint64_t limit, bool *bad,
							       bool wrap_first)
{
	const uint8_t *p = c->p, *end = c->end, *rec = p;
	uint64_t seq = c->last_seq, addr = c->last_addr, v, w, size, stack;
	uint64_t last_stack = c->last_stack;
	uint8_t last_kind = c->last_kind;
	size_t n = 0;
	*bad = false;
	while (n + 2 <= max && p < end) {
		rec = p;
		uint8_t t = *p;
		if (t == HW_REC_ALLOC_NEXT || t == HW_REC_FREE_NEXT) {
			/* format 3's short forms: sequence + 1, the chunk's kind,
			 * an ALLOC's stack as a delta */
			p++;
			if (seq == UINT64_MAX)
				goto bad;
			if (seq + 1 >= limit) {
				p = rec; /* another cursor's event comes first */
				break;
			}
			GET_FAST(v);
			uint64_t at = addr + (uint64_t)hw_unzigzag(v);
			struct hw_event *e = &out[n];
			if (t == HW_REC_ALLOC_NEXT) {
				GET_FAST(size);
				GET_FAST(v);
				stack = last_stack + (uint64_t)hw_unzigzag(v);
				if (stack > UINT32_MAX)
					goto bad;
				last_stack = stack;
				*e = (struct hw_event){seq + 1, at, size, (uint32_t)stack, EV_ALLOC, last_kind};
			} else {
				*e = (struct hw_event){.seq = seq + 1, .addr = at, .op = EV_FREE, .kind = last_kind};
			}
			seq++;
			addr = at;
			n++;
			continue;
		}
		if (t < HW_REC_ALLOC || t >= HW_REC_REALLOC + HW_KIND_COUNT ||
		    (t & HW_TAG_KIND_MASK) >= HW_KIND_COUNT) {
			if (t != HW_COLS_RUN || p >= c->run_lim)
				break;
			/* a run of a column chunk, decoded already */
			size_t k = take_run(c, out + n, max - n, limit);
			if (k) {
				n += k;
				seq = out[n - 1].seq;
				addr = out[n - 1].addr;
			}
			last_stack = c->last_stack;
			last_kind = c->last_kind;
			if (c->run_left)
				break; /* the rest of the run comes later */
			p++;
			continue;
		}
		uint8_t tag = (uint8_t)HW_TAG_BASE(t), kind = t & HW_TAG_KIND_MASK;
		p++;
		GET_FAST(v);
		/* wrap_first: the first record's number may lie before the one
		 * read last (the writer's delta wrapped around, see
		 * cursor_next_events) */
		if (v > UINT64_MAX - seq && !(wrap_first && rec == c->p))
			goto bad;
		uint64_t s0 = seq + v;
		struct hw_event *e = &out[n];
		if (tag == HW_REC_REALLOC) {
			GET_FAST(w);
			if (w > UINT64_MAX - s0)
				goto bad;
			if (s0 + w >= limit) {
				p = rec; /* another cursor's event comes first */
				break;
			}
			GET_FAST(v);
			uint64_t from = addr + (uint64_t)hw_unzigzag(v);
			GET_FAST(v);
			uint64_t to = from + (uint64_t)hw_unzigzag(v);
			GET_FAST(size);
			GET_FAST(stack);
			if (stack > UINT32_MAX)
				goto bad;
			e[0] = (struct hw_event){.seq = s0, .addr = from, .op = EV_REALLOC_FREE, .kind = kind};
			e[1] = (struct hw_event){s0 + w, to, size, (uint32_t)stack, EV_REALLOC_ALLOC, kind};
			seq = s0 + w;
			addr = to;
			last_stack = stack;
			last_kind = kind;
			n += 2;
			continue;
		}
		if (s0 >= limit) {
			p = rec;
			break;
		}
		GET_FAST(v);
		uint64_t at = addr + (uint64_t)hw_unzigzag(v);
		if (tag == HW_REC_ALLOC) {
			GET_FAST(size);
			GET_FAST(stack);
			if (stack > UINT32_MAX)
				goto bad;
			*e = (struct hw_event){s0, at, size, (uint32_t)stack, EV_ALLOC, kind};
			last_stack = stack;
		} else {
			*e = (struct hw_event){.seq = s0, .addr = at, .op = EV_FREE, .kind = kind};
		}
		seq = s0;
		addr = at;
		last_kind = kind;
		n++;
	}
	c->p = p;
	c->last_seq = seq;
	c->last_addr = addr;
	c->last_stack = last_stack;
	c->last_kind = last_kind;
	return n;
bad:
	c->p = rec;
	c->last_seq = seq;
	c->last_addr = addr;
	c->last_stack = last_stack;
	c->last_kind = last_kind;
	cursor_bad(c);
	*bad = true;
	return n;
}

size_t cursor_decode_run(struct cursor *c, struct hw_event *out, size_t max, uint64_t limit)
{
	bool bad;
	return decode_run(c, out, max, limit, &bad, false);
}

/* The next record of a run of STACK records (a HW_COLS_DEFS byte at c->p
 * before run_lim, cursor_init_events), decoded and checked already: into r
 * as the raw reading gives it. */
static void take_def(struct cursor *c, struct hw_record *r)
{
	if (!c->run_left) { /* its header */
		const struct hw_event *h = &c->cev[c->cev_at++];
		c->run_left = h->seq;
		c->shrink += h->addr - 1;
	}
	const struct hw_event *e = &c->cev[c->cev_at++];
	memset(r, 0, sizeof(*r));
	r->raw_tag = r->tag = HW_REC_STACK;
	r->id = e->stack;
	r->parent = e->size;
	r->frame_kind = e->kind;
	r->frame = e->addr;
	r->time_ns = c->time_ns;
	c->after_mark = false;
	if (!--c->run_left)
		c->p++;
}

static bool at_defs(const struct cursor *c)
{
	return c->p < c->run_lim && *c->p == HW_COLS_DEFS;
}

/* One ALLOC, FREE or REALLOC record: 1 or 2 events (their time in
 * c->ev_time), 0 when the next record is another kind or none, -1 when it
 * is damaged. */
static int decode_heap_event(struct cursor *c, struct hw_event ev[2], bool wrap)
{
	bool bad;
	size_t n = decode_run(c, ev, 2, UINT64_MAX, &bad, wrap);
	c->ev_time = c->time_ns;
	return n ? (int)n : bad ? -1 : 0;
}
enum read_result cursor_next(struct cursor *c, struct hw_record *r)
{
	if (!cursor_more(c) || *c->p == 0)
		return READ_END;
	const uint8_t *p = c->p, *end = c->end;
	uint64_t v, w;
	if (at_defs(c)) {
		take_def(c, r);
		return READ_RECORD;
	}
	memset(r, 0, sizeof(*r));
	r->raw_tag = *p;
	struct hw_event ev[2];
	bool after_mark = c->after_mark;
	c->after_mark = false;
	int n = decode_heap_event(c, ev, after_mark);
	if (n < 0)
		return READ_BAD;
	if (n) {
		r->tag = ev[0].op == EV_ALLOC ? HW_REC_ALLOC
			 : ev[0].op == EV_FREE ? HW_REC_FREE
					       : HW_REC_REALLOC;
		r->kind = ev[0].kind;
		r->seq = ev[0].seq;
		r->addr = ev[0].addr;
		r->size = ev[n - 1].size;
		r->stack = ev[n - 1].stack;
		if (n == 2) {
			r->seq2 = ev[1].seq;
			r->addr2 = ev[1].addr;
		}
		r->time_ns = c->time_ns;
		return READ_RECORD;
	}
	r->tag = *p++;
	if (HW_TAG_BASE(r->tag) != r->tag) {
		r->kind = r->tag & HW_TAG_KIND_MASK;
		r->tag = (uint8_t)HW_TAG_BASE(r->tag);
		if (r->kind >= HW_KIND_COUNT)
			goto bad;
	}
	switch (r->tag) {
	case HW_REC_UNMAP:
		GET(v);
		if (!next_seq(c, v, &r->seq))
			goto bad;
		GET(v);
		r->addr = next_addr(c, v);
		GET(r->size);
		break;
	case HW_REC_REMAP:
		GET(v);
		GET(w);
		if (!next_seq(c, v, &r->seq) || !next_seq(c, w, &r->seq2))
			goto bad;
		GET(v);
		r->addr = next_addr(c, v);
		GET(r->size);
		GET(v);
		r->addr2 = next_addr(c, v);
		GET(r->size2);
		GET(v);
		if (v > UINT32_MAX)
			goto bad;
		r->stack = (uint32_t)v;
		r->kind = HW_KIND_MMAP;
		break;
	case HW_REC_RETAG:
		GET(v);
		if (!next_seq(c, v, &r->seq))
			goto bad;
		GET(v);
		r->addr = next_addr(c, v);
		GET(v);
		if (v > UINT32_MAX)
			goto bad;
		r->stack = (uint32_t)v;
		break;
	case HW_REC_MARK:
		GET(v);
		if (!next_seq(c, v, &r->seq))
			goto bad;
		GET_U8(r->kind);
		GET_BYTES(r->name, r->name_len, HW_MAX_LABEL - 1);
		c->after_mark = true;
		break;
	case HW_REC_STACK:
		GET(r->id);
		GET(r->parent);
		GET_U8(r->frame_kind);
		GET(r->frame);
		if (!r->id || r->id > UINT32_MAX || r->parent > UINT32_MAX || r->id == r->parent)
			goto bad;
		break;
	case HW_REC_MODULE:
	case HW_REC_MODULE_UNLOAD:
		GET(r->seq);
		GET(r->bias);
		GET(r->lo);
		if (r->tag == HW_REC_MODULE) {
			GET(r->hi);
			GET_BYTES(r->build_id, r->build_id_len, HW_MAX_BUILD_ID);
			GET_BYTES(r->path, r->path_len, HW_MAX_PATH);
			if (r->hi < r->lo)
				goto bad;
		}
		break;
	case HW_REC_CODE:
		GET(r->id);
		GET(r->frame);
		if (!r->id || r->id > UINT32_MAX || r->frame > INT32_MAX)
			goto bad;
		GET_BYTES(r->path, r->path_len, HW_MAX_PATH);
		GET_BYTES(r->name, r->name_len, 4096);
		GET_BYTES(r->blob, r->blob_len, HW_MAX_LINETABLE);
		break;
	case HW_REC_PYTHON:
		GET(r->seq);
		GET(r->version);
		GET_U8(r->frames_ok);
		break;
	case HW_REC_PYTHON_INFO:
		GET(r->flags);
		GET_BYTES(r->path, r->path_len, 64);
		GET_BYTES(r->name, r->name_len, HW_MAX_PY_REASON);
		break;
	case HW_REC_TIME:
		GET(r->time_ns);
		c->time_ns = r->time_ns;
		break;
	case HW_REC_RSS:
		GET(r->time_ns);
		GET(r->rss);
		break;
	case HW_REC_TRAILER:
		GET(r->seq);
		GET(r->time_ns);
		GET(r->allocs);
		GET(r->frees);
		break;
	case HW_REC_THREAD:
		GET(r->id);
		GET(r->os_tid);
		break;
	case HW_REC_SAMPLE:
		GET(r->seq);
		GET(r->size); /* the mean interval */
		if (!r->size || r->size > HW_SAMPLE_INTERVAL_MAX)
			goto bad;
		break;
	default:
		goto bad;
	}
	if (r->time_ns == 0 && r->tag != HW_REC_TIME && r->tag != HW_REC_RSS &&
	    r->tag != HW_REC_TRAILER)
		r->time_ns = c->time_ns;
	c->p = p;
	return READ_RECORD;
bad:
	cursor_bad(c);
	return READ_BAD;
}



/* True when the record at c->p is an ALLOC, FREE or REALLOC whose sequence
 * number lies before the one read last. Format 2 traces have them right
 * after CPython's finalization mark: the mark took its number after the free
 * (or realloc) that saw the interpreter finalizing had taken its own, and
 * was written first, so the free's delta wrapped around. The writer's
 * arithmetic is modulo 2^64, so the wrapped delta gives the exact number. */
static bool older_event_follows(struct cursor *c)
{
	if (!cursor_more(c))
		return false;
	const uint8_t *p = c->p, *end = c->end;
	if (*p < HW_REC_ALLOC || *p >= HW_REC_REALLOC + HW_KIND_COUNT)
		return false;
	p++;
	uint64_t v;
	return !hw_get_varint(&p, end, &v) && v > UINT64_MAX - c->last_seq;
}

int cursor_next_events(struct cursor *c, struct hw_record *r, struct hw_event ev[3])
{
	cursor_more(c);
	if (at_defs(c)) { /* a definition: no event */
		take_def(c, r);
		c->ev_time = r->time_ns;
		return 0;
	}
	bool after_mark = c->after_mark;
	c->after_mark = false;
	int n = decode_heap_event(c, ev, after_mark);
	if (n)
		return n;
	if (cursor_next(c, r) != READ_RECORD)
		return -1;
	c->ev_time = r->time_ns;
	ev[0] = (struct hw_event){.seq = r->seq, .addr = r->addr, .size = r->size,
				  .stack = r->stack, .kind = r->kind};
	switch (r->tag) {
	case HW_REC_UNMAP:
		ev[0].op = EV_UNMAP;
		return 1;
	case HW_REC_RETAG:
		ev[0].op = EV_RETAG;
		return 1;
	case HW_REC_REMAP:
		ev[0].op = EV_REMAP_UNMAP;
		ev[1] = (struct hw_event){.op = EV_REMAP_MAP, .seq = r->seq2, .addr = r->addr2,
					  .size = r->size2, .stack = r->stack, .kind = r->kind};
		return 2;
	case HW_REC_TRAILER:
		ev[0].op = EV_TRAILER;
		ev[0].addr = r->allocs;
		ev[0].size = r->frees;
		return 1;
	case HW_REC_MARK:
		/* the label stays readable: dropped pages of a file mapping come
		 * back from the page cache */
		ev[0].op = EV_MARK;
		if (c->buf) { /* the chunk's buffer goes before the event is used */
			struct trace *t = (struct trace *)c->trace;
			HW_GROW(t->labels, t->nlabels, t->labelcap);
			char *copy = xmalloc(r->name_len + 1);
			memcpy(copy, r->name, r->name_len);
			copy[r->name_len] = 0;
			t->labels[t->nlabels++] = copy;
			r->name = copy;
		}
		ev[0].addr = (uint64_t)(uintptr_t)r->name;
		ev[0].size = r->name_len;
		n = 1;
		if (older_event_follows(c)) {
			/* hand out all three in sequence order (a realloc's
			 * alloc half took its number after the mark) */
			struct hw_event mark = ev[0];
			n = decode_heap_event(c, ev, true);
			c->after_mark = false;
			if (n < 0)
				return -1;
			int i = n++;
			for (; i > 0 && ev[i - 1].seq > mark.seq; i--)
				ev[i] = ev[i - 1];
			ev[i] = mark;
		}
		return n;
	default:
		return 0;
	}
}
