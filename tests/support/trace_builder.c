/* Synthetic trace builder for the analyzer's tests (see trace_builder.h). */
#include "trace_builder.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heapwise/varint.h"

static void ensure(struct tb *b, size_t n)
{
	if (b->size + n <= b->cap)
		return;
	while (b->size + n > b->cap)
		b->cap = b->cap ? b->cap * 2 : 1 << 16;
	b->buf = realloc(b->buf, b->cap);
	if (!b->buf)
		abort();
}

void tb_init(struct tb *b, uint32_t chunk_size, const char *cmdline, size_t cmdline_len)
{
	memset(b, 0, sizeof(*b));
	b->chunk_size = chunk_size;
	ensure(b, HW_HEADER_SIZE);
	memset(b->buf, 0, HW_HEADER_SIZE);
	struct hw_file_header h = {0};
	memcpy(h.magic, HW_MAGIC, 8);
	h.version = HW_FORMAT_VERSION;
	h.header_size = HW_HEADER_SIZE;
	h.chunk_size = chunk_size;
	h.pid = 4242;
	h.ppid = 1;
	h.cmdline_len = (uint32_t)cmdline_len;
	h.exe_len = 0;
	h.page_size = 4096;
	memcpy(b->buf, &h, sizeof(h));
	memcpy(b->buf + HW_HEADER_FIXED_SIZE, cmdline, h.cmdline_len);
	b->size = HW_HEADER_SIZE;
}

void tb_process(struct tb *b, uint64_t pid, uint64_t ppid, uint64_t start_ns)
{
	struct hw_file_header h;
	memcpy(&h, b->buf, sizeof(h));
	h.pid = pid;
	h.ppid = ppid;
	h.start_realtime_ns = 1700000000000000000ull + start_ns;
	h.start_monotonic_ns = 5000000000ull + start_ns;
	memcpy(b->buf, &h, sizeof(h));
}

static void commit_used(struct tb *b)
{
	if (!b->chunk_off)
		return;
	struct hw_chunk_header *ch = (struct hw_chunk_header *)(b->buf + b->chunk_off);
	ch->used = (uint32_t)(b->size - b->chunk_off - HW_CHUNK_HEADER_SIZE);
}

void tb_chunk(struct tb *b, uint32_t tid)
{
	tb_chunk_at(b, tid, 0);
}

void tb_thread(struct tb *b, uint32_t serial, uint32_t tid)
{
	uint8_t *p = b->buf + b->size;
	ensure(b, 32);
	p = b->buf + b->size;
	*p++ = HW_REC_THREAD;
	p = hw_put_varint(p, serial);
	p = hw_put_varint(p, tid);
	b->size = (size_t)(p - b->buf);
	commit_used(b);
}

void tb_chunk_at(struct tb *b, uint32_t tid, uint32_t index)
{
	if (b->chunk_off) {
		/* pad the previous chunk to its full size */
		size_t end = b->chunk_off + b->chunk_size;
		ensure(b, end - b->size);
		memset(b->buf + b->size, 0, end - b->size);
		b->size = end;
	}
	ensure(b, b->chunk_size);
	b->chunk_off = b->size;
	struct hw_chunk_header ch = {HW_CHUNK_MAGIC, tid, 0, index};
	memcpy(b->buf + b->size, &ch, sizeof(ch));
	b->size += HW_CHUNK_HEADER_SIZE;
	b->last_seq = b->last_addr = 0;
	b->last_stack = 0;
	b->last_kind = HW_KIND_MALLOC;
}

static uint8_t *rec(struct tb *b, size_t max)
{
	ensure(b, max);
	return b->buf + b->size;
}

static void done(struct tb *b, uint8_t *end)
{
	b->size = (size_t)(end - b->buf);
	commit_used(b);
}

static uint8_t *seq(struct tb *b, uint8_t *p, uint64_t s)
{
	p = hw_put_varint(p, s - b->last_seq);
	b->last_seq = s;
	return p;
}

static uint8_t *addr(struct tb *b, uint8_t *p, uint64_t a)
{
	p = hw_put_varint(p, hw_zigzag((int64_t)(a - b->last_addr)));
	b->last_addr = a;
	return p;
}

void tb_time(struct tb *b, uint64_t t)
{
	uint8_t *p = rec(b, 16);
	*p++ = HW_REC_TIME;
	done(b, hw_put_varint(p, t));
}

/* The short form applies (as the shim decides it): sequence + 1, same kind. */
static bool next_form(struct tb *b, int kind, uint64_t s)
{
	return b->short_forms && s == b->last_seq + 1 && (uint32_t)kind == b->last_kind;
}

void tb_alloc(struct tb *b, int kind, uint64_t s, uint64_t a, uint64_t size, uint32_t stack)
{
	uint8_t *p = rec(b, 64);
	bool next = next_form(b, kind, s);
	if (next) {
		*p++ = HW_REC_ALLOC_NEXT;
		b->last_seq = s;
	} else {
		*p++ = (uint8_t)(HW_REC_ALLOC | kind);
		p = seq(b, p, s);
	}
	p = addr(b, p, a);
	p = hw_put_varint(p, size);
	p = hw_put_varint(p, next ? hw_zigzag((int64_t)stack - (int64_t)b->last_stack) : stack);
	b->last_stack = stack;
	b->last_kind = (uint32_t)kind;
	done(b, p);
}

void tb_free(struct tb *b, int kind, uint64_t s, uint64_t a)
{
	uint8_t *p = rec(b, 64);
	if (next_form(b, kind, s)) {
		*p++ = HW_REC_FREE_NEXT;
		b->last_seq = s;
	} else {
		*p++ = (uint8_t)(HW_REC_FREE | kind);
		p = seq(b, p, s);
	}
	b->last_kind = (uint32_t)kind;
	done(b, addr(b, p, a));
}

void tb_retag(struct tb *b, uint64_t s, uint64_t a, uint32_t stack)
{
	uint8_t *p = rec(b, 64);
	*p++ = HW_REC_RETAG;
	p = seq(b, p, s);
	p = addr(b, p, a);
	done(b, hw_put_varint(p, stack));
}

void tb_realloc(struct tb *b, uint64_t sf, uint64_t sa, uint64_t old, uint64_t new_addr, uint64_t size,
		uint32_t stack)
{
	uint8_t *p = rec(b, 80);
	*p++ = HW_REC_REALLOC | HW_KIND_MALLOC;
	p = seq(b, p, sf);
	p = hw_put_varint(p, sa - sf);
	b->last_seq = sa;
	p = addr(b, p, old);
	p = addr(b, p, new_addr);
	p = hw_put_varint(p, size);
	b->last_stack = stack;
	b->last_kind = HW_KIND_MALLOC;
	done(b, hw_put_varint(p, stack));
}

void tb_unmap(struct tb *b, uint64_t s, uint64_t a, uint64_t len)
{
	uint8_t *p = rec(b, 64);
	*p++ = HW_REC_UNMAP;
	p = seq(b, p, s);
	p = addr(b, p, a);
	done(b, hw_put_varint(p, len));
}

void tb_remap(struct tb *b, uint64_t sf, uint64_t sa, uint64_t old, uint64_t old_len, uint64_t new_addr,
	      uint64_t new_len, uint32_t stack)
{
	uint8_t *p = rec(b, 80);
	*p++ = HW_REC_REMAP;
	p = seq(b, p, sf);
	p = hw_put_varint(p, sa - sf);
	b->last_seq = sa;
	p = addr(b, p, old);
	p = hw_put_varint(p, old_len);
	p = addr(b, p, new_addr);
	p = hw_put_varint(p, new_len);
	done(b, hw_put_varint(p, stack));
}

void tb_stack(struct tb *b, uint32_t id, uint32_t parent, uint64_t ip)
{
	uint8_t *p = rec(b, 40);
	*p++ = HW_REC_STACK;
	p = hw_put_varint(p, id);
	p = hw_put_varint(p, parent);
	*p++ = HW_FRAME_NATIVE;
	done(b, hw_put_varint(p, ip));
}

void tb_module(struct tb *b, uint64_t s, uint64_t bias, uint64_t lo, uint64_t hi, const char *path)
{
	size_t n = strlen(path);
	uint8_t *p = rec(b, 64 + n);
	*p++ = HW_REC_MODULE;
	p = hw_put_varint(p, s);
	p = hw_put_varint(p, bias);
	p = hw_put_varint(p, lo);
	p = hw_put_varint(p, hi);
	p = hw_put_varint(p, 0);
	p = hw_put_varint(p, n);
	memcpy(p, path, n);
	done(b, p + n);
}

void tb_module_unload(struct tb *b, uint64_t s, uint64_t bias, uint64_t lo)
{
	uint8_t *p = rec(b, 40);
	*p++ = HW_REC_MODULE_UNLOAD;
	p = hw_put_varint(p, s);
	p = hw_put_varint(p, bias);
	done(b, hw_put_varint(p, lo));
}

void tb_pystack(struct tb *b, uint32_t id, uint32_t parent, uint32_t code_id, uint32_t instr)
{
	uint8_t *p = rec(b, 40);
	*p++ = HW_REC_STACK;
	p = hw_put_varint(p, id);
	p = hw_put_varint(p, parent);
	*p++ = HW_FRAME_PYTHON;
	done(b, hw_put_varint(p, (uint64_t)code_id << 32 | (instr + 1)));
}

void tb_code(struct tb *b, uint32_t id, uint32_t first_line, const char *file, const char *qualname)
{
	/* CPython 3.11's line table: one entry of 8 code units (no column
	 * information, code 13), line delta 0 */
	const uint8_t table[] = {0x80 | (13 << 3) | 7, 0};
	tb_code_table(b, id, first_line, file, qualname, table, sizeof(table));
}

void tb_code_table(struct tb *b, uint32_t id, uint32_t first_line, const char *file,
		   const char *qualname, const uint8_t *table, size_t len)
{
	size_t nf = strlen(file), nq = strlen(qualname);
	uint8_t *p = rec(b, 64 + nf + nq + len);
	*p++ = HW_REC_CODE;
	p = hw_put_varint(p, id);
	p = hw_put_varint(p, first_line);
	p = hw_put_varint(p, nf);
	memcpy(p, file, nf);
	p += nf;
	p = hw_put_varint(p, nq);
	memcpy(p, qualname, nq);
	p += nq;
	p = hw_put_varint(p, len);
	memcpy(p, table, len);
	p += len;
	done(b, p);
}

void tb_mark(struct tb *b, uint64_t s, int kind, const char *label)
{
	size_t n = strlen(label);
	uint8_t *p = rec(b, 32 + n);
	*p++ = HW_REC_MARK;
	p = seq(b, p, s);
	*p++ = (uint8_t)kind;
	p = hw_put_varint(p, n);
	memcpy(p, label, n);
	done(b, p + n);
}

void tb_python(struct tb *b, uint64_t s, uint32_t version, int frames_ok, const char *reason)
{
	size_t n = reason ? strlen(reason) : 0;
	uint8_t *p = rec(b, 48 + n);
	*p++ = HW_REC_PYTHON;
	p = hw_put_varint(p, s);
	p = hw_put_varint(p, version);
	*p++ = (uint8_t)frames_ok;
	if (reason) {
		*p++ = HW_REC_PYTHON_INFO;
		p = hw_put_varint(p, 0);
		p = hw_put_varint(p, 0);
		p = hw_put_varint(p, n);
		memcpy(p, reason, n);
		p += n;
	}
	done(b, p);
}

void tb_rss(struct tb *b, uint64_t t, uint64_t rss)
{
	uint8_t *p = rec(b, 32);
	*p++ = HW_REC_RSS;
	p = hw_put_varint(p, t);
	done(b, hw_put_varint(p, rss));
}

void tb_trailer(struct tb *b, uint64_t s, uint64_t t, uint64_t allocs, uint64_t frees)
{
	uint8_t *p = rec(b, 48);
	*p++ = HW_REC_TRAILER;
	p = hw_put_varint(p, s);
	p = hw_put_varint(p, t);
	p = hw_put_varint(p, allocs);
	done(b, hw_put_varint(p, frees));
}

void tb_raw(struct tb *b, const void *src, size_t n)
{
	uint8_t *p = rec(b, n);
	memcpy(p, src, n);
	done(b, p + n);
}

int tb_write(struct tb *b, const char *path)
{
	if (b->chunk_off) {
		size_t end = b->chunk_off + b->chunk_size;
		ensure(b, end - b->size);
		memset(b->buf + b->size, 0, end - b->size);
		b->size = end;
		b->chunk_off = 0;
	}
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return -1;
	ssize_t w = write(fd, b->buf, b->size);
	close(fd);
	return w == (ssize_t)b->size ? 0 : -1;
}

void tb_free_builder(struct tb *b)
{
	free(b->buf);
	memset(b, 0, sizeof(*b));
}
