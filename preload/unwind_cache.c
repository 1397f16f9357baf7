/* Cached native unwinding (shim, stacks stage). A frame at a return address
 * is stepped by a recipe (CFA rule, where the return address and rbp are)
 * read once from its object's .eh_frame (through .eh_frame_hdr's sorted
 * table) and kept in the thread's direct-mapped cache: about ten
 * instructions a frame instead of libunwind's seventy. Only the frames
 * libunwind's own fast path would step as standard ones get a recipe, with
 * the same end rules (return address or rbp undefined: the outermost
 * frame); everything else (no FDE, signal frames, expressions, rules in
 * other registers, stack realignment) makes the unwind fall back to
 * libunwind, so the stacks are the same as its. */
#include "unwind_cache.h"

#include <errno.h>
#include <link.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "heapwise/compiler.h"
#include "proc.h"
#include "tracker.h"

enum recipe_kind {
	RECIPE_NONE = 0, /* empty slot */
	RECIPE_RSP, /* CFA = rsp + cfa_off */
	RECIPE_RBP, /* CFA = rbp + cfa_off */
	RECIPE_LAST, /* the outermost frame: stop after it */
	RECIPE_SLOW, /* not for a recipe: unwind the slow way */
	RECIPE_BAD, /* malformed unwind information: stop, and not the slow way */
	RECIPE_NOWHERE, /* in no loaded object (generated code, or unmapped) */
};

/* DWARF register numbers of x86_64 */
#define REG_RBP 6
#define REG_RSP 7
#define REG_RA 16

enum rule { RULE_SAME, RULE_UNDEF, RULE_OFFSET, RULE_OTHER };

struct row {
	int64_t cfa_off;
	int64_t rbp_off, ra_off;
	uint8_t cfa_reg;
	bool cfa_expr;
	uint8_t rbp, rsp, ra; /* enum rule */
};

struct cfi_reader {
	const uint8_t *p, *end;
	bool bad;
	bool broken; /* a length that leaves its record: malformed */
};

/* Skips n bytes of the record; a length past its end (also one that would
 * wrap the pointer around and read the same bytes again for ever) marks the
 * record malformed. */
static void skip(struct cfi_reader *r, uint64_t n)
{
	if (n > (uint64_t)(r->end - r->p)) {
		r->bad = r->broken = true;
		r->p = r->end;
		return;
	}
	r->p += n;
}

static uint64_t uleb(struct cfi_reader *r)
{
	uint64_t v = 0;
	unsigned shift = 0;
	while (r->p < r->end) {
		uint8_t b = *r->p++;
		if (shift < 64)
			v |= (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80))
			return v;
	}
	r->bad = true;
	return 0;
}

static int64_t sleb(struct cfi_reader *r)
{
	int64_t v = 0;
	unsigned shift = 0;
	while (r->p < r->end) {
		uint8_t b = *r->p++;
		if (shift < 64)
			v |= (int64_t)((uint64_t)(b & 0x7f) << shift);
		shift += 7;
		if (!(b & 0x80)) {
			if (shift < 64 && (b & 0x40))
				v |= (int64_t)(~0ull << shift);
			return v;
		}
	}
	r->bad = true;
	return 0;
}

static uint64_t fixed(struct cfi_reader *r, unsigned n)
{
	if ((size_t)(r->end - r->p) < n) {
		r->bad = true;
		return 0;
	}
	uint64_t v = 0;
	memcpy(&v, r->p, n); /* little-endian */
	r->p += n;
	return v;
}

/* A pointer in DWARF EH encoding enc: value only (pcrel applied when
 * apply_pcrel); indirect and text/data-relative encodings are refused. */
static uintptr_t encoded(struct cfi_reader *r, uint8_t enc, bool apply_pcrel)
{
	if (enc == 0xff) /* omit */
		return 0;
	const uint8_t *at = r->p;
	uint64_t v;
	switch (enc & 0x0f) {
	case 0x00: v = fixed(r, 8); break;
	case 0x01: v = uleb(r); break;
	case 0x02: v = fixed(r, 2); break;
	case 0x03: v = fixed(r, 4); break;
	case 0x04: v = fixed(r, 8); break;
	case 0x09: v = (uint64_t)sleb(r); break;
	case 0x0a: v = (uint64_t)(int64_t)(int16_t)fixed(r, 2); break;
	case 0x0b: v = (uint64_t)(int64_t)(int32_t)fixed(r, 4); break;
	case 0x0c: v = fixed(r, 8); break;
	default: r->bad = true; return 0;
	}
	switch (enc & 0x70) {
	case 0x00: break;
	case 0x10:
		if (apply_pcrel)
			v += (uintptr_t)at;
		break;
	default: r->bad = true; return 0;
	}
	if (enc & 0x80)
		r->bad = true;
	return (uintptr_t)v;
}

static void set_rule(struct row *row, uint64_t reg, uint8_t rule, int64_t off)
{
	if (reg == REG_RBP) {
		row->rbp = rule;
		row->rbp_off = off;
	} else if (reg == REG_RSP) {
		row->rsp = rule;
	} else if (reg == REG_RA) {
		row->ra = rule;
		row->ra_off = off;
	}
}

static void restore_rule(struct row *row, const struct row *init, uint64_t reg)
{
	if (reg == REG_RBP) {
		row->rbp = init->rbp;
		row->rbp_off = init->rbp_off;
	} else if (reg == REG_RSP) {
		row->rsp = init->rsp;
	} else if (reg == REG_RA) {
		row->ra = init->ra;
		row->ra_off = init->ra_off;
	}
}

#define REMEMBERED 8

/* Runs call frame instructions [r->p, r->end) from location loc while the
 * row still covers pc (pc = UINTPTR_MAX: all of them, a CIE's). */
static void run_cfi(struct cfi_reader *r, struct row *row, const struct row *init, uintptr_t loc,
		    uintptr_t pc, uint64_t code_align, int64_t data_align, uint8_t fde_enc)
{
	struct row saved[REMEMBERED];
	unsigned nsaved = 0;
	while (r->p < r->end && !r->bad) {
		uint8_t op = *r->p++;
		uint64_t reg, delta = 0;
		bool advance = false;
		switch (op >> 6) {
		case 1:
			delta = (op & 0x3f) * code_align;
			advance = true;
			break;
		case 2:
			set_rule(row, op & 0x3f, RULE_OFFSET, (int64_t)uleb(r) * data_align);
			continue;
		case 3:
			restore_rule(row, init, op & 0x3f);
			continue;
		}
		if (advance) {
			loc += delta;
			if (loc > pc)
				return;
			continue;
		}
		switch (op) {
		case 0x00: /* nop */
			break;
		case 0x01: /* set_loc */
			loc = encoded(r, fde_enc, true);
			if (loc > pc)
				return;
			break;
		case 0x02:
		case 0x03:
		case 0x04: /* advance_loc1, 2, 4 */
			loc += fixed(r, op == 0x02 ? 1 : op == 0x03 ? 2 : 4) * code_align;
			if (loc > pc)
				return;
			break;
		case 0x05: /* offset_extended */
			reg = uleb(r);
			set_rule(row, reg, RULE_OFFSET, (int64_t)uleb(r) * data_align);
			break;
		case 0x06: /* restore_extended */
			restore_rule(row, init, uleb(r));
			break;
		case 0x07: /* undefined */
			set_rule(row, uleb(r), RULE_UNDEF, 0);
			break;
		case 0x08: /* same_value */
			set_rule(row, uleb(r), RULE_SAME, 0);
			break;
		case 0x09: /* register */
			reg = uleb(r);
			(void)uleb(r);
			set_rule(row, reg, RULE_OTHER, 0);
			break;
		case 0x0a: /* remember_state */
			if (nsaved == REMEMBERED) {
				r->bad = true;
				return;
			}
			saved[nsaved++] = *row;
			break;
		case 0x0b: /* restore_state: every rule, the CFA's too, as GCC's
			    * epilogues expect and libunwind does */
			if (!nsaved) {
				r->bad = true;
				return;
			}
			*row = saved[--nsaved];
			break;
		case 0x0c: /* def_cfa */
			row->cfa_reg = (uint8_t)uleb(r);
			row->cfa_off = (int64_t)uleb(r);
			row->cfa_expr = false;
			break;
		case 0x0d: /* def_cfa_register */
			row->cfa_reg = (uint8_t)uleb(r);
			break;
		case 0x0e: /* def_cfa_offset */
			row->cfa_off = (int64_t)uleb(r);
			break;
		case 0x0f: /* def_cfa_expression */
			row->cfa_expr = true;
			skip(r, uleb(r));
			break;
		case 0x10: /* expression */
		case 0x16: /* val_expression */
			reg = uleb(r);
			set_rule(row, reg, RULE_OTHER, 0);
			skip(r, uleb(r));
			break;
		case 0x11: /* offset_extended_sf */
			reg = uleb(r);
			set_rule(row, reg, RULE_OFFSET, sleb(r) * data_align);
			break;
		case 0x12: /* def_cfa_sf */
			row->cfa_reg = (uint8_t)uleb(r);
			row->cfa_off = sleb(r) * data_align;
			row->cfa_expr = false;
			break;
		case 0x13: /* def_cfa_offset_sf */
			row->cfa_off = sleb(r) * data_align;
			break;
		case 0x14: /* val_offset */
			reg = uleb(r);
			(void)uleb(r);
			set_rule(row, reg, RULE_OTHER, 0);
			break;
		case 0x15: /* val_offset_sf */
			reg = uleb(r);
			(void)sleb(r);
			set_rule(row, reg, RULE_OTHER, 0);
			break;
		case 0x2e: /* GNU_args_size */
			(void)uleb(r);
			break;
		case 0x2f: /* GNU_negative_offset_extended */
			reg = uleb(r);
			set_rule(row, reg, RULE_OFFSET, -(int64_t)uleb(r) * data_align);
			break;
		default:
			r->bad = true;
			return;
		}
		if (r->p > r->end)
			r->bad = true;
	}
}

/* Does [p, p + n) lie in one loaded segment of the object? Its unwind
 * information names records by offsets and lengths that nothing checked:
 * one that points elsewhere (a damaged or hand-made object) would be read
 * from memory that may not be mapped. */
static bool in_object(const struct dl_phdr_info *info, const uint8_t *p, uint64_t n)
{
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t at = (uintptr_t)p - (info->dlpi_addr + ph->p_vaddr);
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_R) && at < ph->p_memsz &&
		    n <= ph->p_memsz - at)
			return true;
	}
	return false;
}

/* The recipe for the frame at return address ra from the FDE at fde (the
 * one .eh_frame_hdr's table gave). A record that leaves the object, or a
 * length that leaves its record, is malformed: RECIPE_BAD, which libunwind
 * is not given either (it reads the same records unchecked: a SIGSEGV, or a
 * loop for ever with the loader's lock held). */
static void recipe_from_fde(const struct dl_phdr_info *info, const uint8_t *fde, uintptr_t pc,
			    struct unwind_recipe *out)
{
	out->kind = RECIPE_BAD;
	if (!in_object(info, fde, 8))
		return;
	out->kind = RECIPE_SLOW;
	struct cfi_reader r = {fde, fde + 4, false, false};
	uint32_t len = (uint32_t)fixed(&r, 4);
	if (len == 0 || len == 0xffffffffu)
		return;
	if (!in_object(info, fde, 4 + (uint64_t)len) || len < 4) {
		out->kind = RECIPE_BAD;
		return;
	}
	const uint8_t *fde_end = fde + 4 + len;
	r.end = fde_end;
	const uint8_t *cie_ptr_at = r.p;
	uint32_t cie_off = (uint32_t)fixed(&r, 4);
	if (r.bad || !cie_off)
		return;
	/* the CIE */
	const uint8_t *cie = cie_ptr_at - cie_off;
	if (!in_object(info, cie, 8)) {
		out->kind = RECIPE_BAD;
		return;
	}
	struct cfi_reader c = {cie, cie + 4, false, false};
	uint32_t clen = (uint32_t)fixed(&c, 4);
	if (clen == 0 || clen == 0xffffffffu)
		return;
	if (!in_object(info, cie, 4 + (uint64_t)clen)) {
		out->kind = RECIPE_BAD;
		return;
	}
	c.end = cie + 4 + clen;
	if (fixed(&c, 4) != 0) /* a CIE's id is 0 in .eh_frame */
		return;
	uint8_t version = (uint8_t)fixed(&c, 1);
	if (version != 1 && version != 3)
		return;
	const char *aug = (const char *)c.p;
	size_t auglen = strnlen(aug, (size_t)(c.end - c.p));
	if (c.p + auglen >= c.end)
		return;
	c.p += auglen + 1;
	uint64_t code_align = uleb(&c);
	int64_t data_align = sleb(&c);
	uint64_t ra_reg = version == 1 ? fixed(&c, 1) : uleb(&c);
	if (c.bad || ra_reg != REG_RA)
		return;
	uint8_t fde_enc = 0;
	bool z = aug[0] == 'z';
	if (z) {
		uint64_t n = uleb(&c);
		struct cfi_reader a = c; /* the augmentation data */
		skip(&a, n);
		if (a.broken)
			out->kind = RECIPE_BAD;
		if (c.bad || a.bad)
			return;
		const uint8_t *aug_end = a.p;
		for (size_t i = 1; i < auglen; i++) {
			switch (aug[i]) {
			case 'R':
				fde_enc = (uint8_t)fixed(&c, 1);
				break;
			case 'L':
				(void)fixed(&c, 1);
				break;
			case 'P': {
				uint8_t penc = (uint8_t)fixed(&c, 1);
				(void)encoded(&c, penc & 0x7f, false);
				break;
			}
			default: /* 'S' (a signal frame) and anything unknown */
				return;
			}
		}
		if (c.bad)
			return;
		c.p = aug_end;
	} else if (auglen) {
		return;
	}
	/* the FDE's range and its instructions */
	uintptr_t start = encoded(&r, fde_enc, true);
	uintptr_t range = encoded(&r, fde_enc & 0x0f, false);
	if (z)
		skip(&r, uleb(&r));
	if (r.broken)
		out->kind = RECIPE_BAD;
	if (r.bad || c.bad || pc < start || pc - start >= range)
		return;
	struct row init = {.cfa_reg = 0xff}; /* every register: same value */
	struct cfi_reader ci = c;
	run_cfi(&ci, &init, &init, 0, UINTPTR_MAX, code_align, data_align, fde_enc);
	struct row row = init;
	run_cfi(&r, &row, &init, start, pc, code_align, data_align, fde_enc);
	if (ci.broken || r.broken)
		out->kind = RECIPE_BAD;
	if (ci.bad || r.bad)
		return;
	if (row.ra == RULE_UNDEF || row.rbp == RULE_UNDEF) {
		/* libunwind ends the chain there (x86_64 unw_step) */
		out->kind = RECIPE_LAST;
		return;
	}
	if (row.cfa_expr || (row.cfa_reg != REG_RSP && row.cfa_reg != REG_RBP) ||
	    row.cfa_off <= -(1 << 28) || row.cfa_off >= (1 << 28) || row.ra != RULE_OFFSET ||
	    row.ra_off != -8 || row.rsp != RULE_SAME)
		return;
	if (row.rbp == RULE_OFFSET) {
		if (row.rbp_off == 0 || row.rbp_off <= -(1 << 14) || row.rbp_off >= (1 << 14))
			return;
		out->rbp_off = (int16_t)row.rbp_off;
	} else if (row.rbp == RULE_SAME) {
		out->rbp_off = 0;
	} else {
		return;
	}
	out->cfa_off = (int32_t)row.cfa_off;
	out->kind = row.cfa_reg == REG_RSP ? RECIPE_RSP : RECIPE_RBP;
}

struct find {
	uintptr_t pc;
	struct unwind_recipe *out;
	bool found; /* an object holds pc */
};

/* In the loader's callback: the object cannot go away meanwhile. */
static int find_fde(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct find *f = arg;
	const ElfW(Phdr) *hdr = NULL;
	bool in = false;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && f->pc - lo < ph->p_memsz)
			in = true;
		else if (ph->p_type == PT_GNU_EH_FRAME)
			hdr = ph;
	}
	if (!in)
		return 0;
	f->found = true;
	if (!hdr)
		return 1;
	const uint8_t *h = (const uint8_t *)(info->dlpi_addr + hdr->p_vaddr);
	/* the table libunwind searches too: one that leaves its segment is
	 * not given to it */
	f->out->kind = RECIPE_BAD;
	if (!in_object(info, h, hdr->p_memsz))
		return 1;
	f->out->kind = RECIPE_SLOW;
	struct cfi_reader r = {h, h + hdr->p_memsz, false, false};
	uint8_t version = (uint8_t)fixed(&r, 1), ptr_enc = (uint8_t)fixed(&r, 1),
		count_enc = (uint8_t)fixed(&r, 1), table_enc = (uint8_t)fixed(&r, 1);
	if (r.bad || version != 1 || table_enc != 0x3b) /* datarel | sdata4 */
		return 1;
	(void)encoded(&r, ptr_enc, true);
	uintptr_t count = encoded(&r, count_enc, true);
	if (r.bad || !count)
		return 1;
	if ((size_t)(r.end - r.p) / 8 < count) {
		f->out->kind = RECIPE_BAD;
		return 1;
	}
	const int32_t *table = (const int32_t *)r.p;
	intptr_t want = (intptr_t)(f->pc - (uintptr_t)h);
	size_t lo = 0, hi = count; /* the last entry starting at or below pc */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if ((intptr_t)table[2 * mid] <= want)
			lo = mid;
		else
			hi = mid;
	}
	if ((intptr_t)table[2 * lo] > want)
		return 1;
	recipe_from_fde(info, h + table[2 * lo + 1], f->pc, f->out);
	return 1;
}

static __attribute__((noinline)) struct unwind_recipe *learn(struct unwind_recipe *set,
							       uintptr_t ra)
{
	static const struct unwind_recipe slow = {.kind = RECIPE_SLOW};
	/* A fork from a signal handler that interrupted this unwind inside
	 * dl_iterate_phdr: in the child the loader's lock stays held by the
	 * parent's thread (the fork handler then sets g_unwind_unsafe), and
	 * the next call would wait for ever. */
	if (HW_UNLIKELY(__atomic_load_n(&g_unwind_unsafe, __ATOMIC_RELAXED)))
		return (struct unwind_recipe *)&slow;
	struct unwind_recipe r = {.ip = ra, .kind = RECIPE_SLOW};
	/* the call instruction's row: a return address may be the first
	 * byte of the next function */
	struct find f = {ra - 1, &r, false};
	dl_iterate_phdr(find_fde, &f);
	if (!f.found)
		r.kind = RECIPE_NOWHERE;
	/* the newest first, the oldest of the set dropped */
	memmove(set + 1, set, (HW_UNWIND_WAYS - 1) * sizeof(*set));
	set[0] = r;
	return set;
}

/* Can the code at ip be read? libunwind reads it (is it a signal
 * trampoline?) when it has no unwind information for ip, without a check: a
 * return address whose page was unmapped since (code made at run time and
 * dropped, a library's pages unmapped under a frame that never returns
 * there) was a SIGSEGV. The kernel reads it here: EFAULT instead. One
 * system call, only for frames in no object, which go the slow way anyway;
 * not cached, as such a page may come and go. */
static __attribute__((noinline)) bool code_readable(uintptr_t ip)
{
	uint64_t words[2];
	struct iovec local = {words, sizeof(words)}, remote = {(void *)ip, sizeof(words)};
	int saved = errno;
	ssize_t n = process_vm_readv(g_proc.pid ? g_proc.pid : getpid(), &local, 1, &remote, 1, 0);
	errno = saved;
	return n == (ssize_t)sizeof(words);
}

static inline struct unwind_recipe *lookup(struct unwind_cache *c, uintptr_t ip)
{
	unsigned s = (unsigned)((ip * 0x9e3779b97f4a7c15ull) >> 32) & (HW_UNWIND_SETS - 1);
	struct unwind_recipe *set = &c->r[s * HW_UNWIND_WAYS];
	for (unsigned w = 0; w < HW_UNWIND_WAYS; w++)
		if (HW_LIKELY(set[w].ip == ip))
			return &set[w];
	return learn(set, ip);
}

/* --- joining a past unwind ----------------------------------------------------
 * A step from a frame reads its recipe (a function of the address while
 * no object is unloaded: the epoch), computes the CFA from the frame's
 * stack pointer or rbp, and reads the return address at CFA - 8 and maybe
 * rbp from a slot: the callers of a frame whose (ip, sp, bp) equal those of
 * a frame of the memo are the memo's callers of it, exactly while each
 * step's slots hold what they held (re-read here, a compare a frame instead
 * of a recipe's lookup; bounds checked as a step's). The memo is kept root
 * first, so that an unwind that joins it writes only its own inner frames. */
enum memo_end { END_MAX, END_SLOT, END_LAST };

/* The memo becomes this unwind's frames t[0..n) (innermost first). */
static void memo_take(struct unwind_memo *m, int n, uint8_t end, uintptr_t end_slot)
{
	for (int i = 0; i < n; i++)
		m->f[n - 1 - i] = m->t[i];
	m->n = n;
	m->end = end;
	m->end_slot = end_slot;
	m->exact = true;
}

__attribute__((noinline)) int unwind_cache_backtrace(struct unwind_cache *c, uintptr_t *ips,
						     int max, int total, uintptr_t self_lo,
						     uintptr_t self_hi, uintptr_t stack_lo,
						     uintptr_t stack_hi)
{
	const uintptr_t *fp = __builtin_frame_address(0);
	uintptr_t sp = (uintptr_t)(fp + 2), bp = fp[0], ip = fp[1];
	/* until this unwind ends with the memo as its frames */
	bool exact = c->memo.exact;
	c->memo.exact = false;
	c->same_root = 0;
	if (!stack_hi || sp - stack_lo >= stack_hi - stack_lo || max <= 0)
		return -1;
	/* Forget every recipe when an object may have gone: dlclose through
	 * us moves the epoch, before and after the call; glibc's own unloads
	 * (its gconv modules, iconv's converters, unloaded while the program
	 * runs a few iconv_close calls after their last use) do not come
	 * through dlclose, and stack_capture moves it for them before the
	 * unwind (modules_unloaded: the loader's count of objects added, one
	 * plain read; asking dl_iterate_phdr at every unwind, under the
	 * loader's lock, cost a sixth of the unwind). */
	uint32_t epoch = atomic_load_explicit(&g_module_epoch, memory_order_acquire);
	if (HW_UNLIKELY(!c->valid || c->epoch != epoch)) {
		/* a new state's cache is zero already (fresh mapping): writing
		 * zeros would fault in its 32 KiB for nothing (a short thread
		 * uses a few of its sets) */
		if (c->valid)
			memset(c->r, 0, sizeof(c->r));
		c->memo.n = 0;
		c->epoch = epoch;
		c->valid = true;
	}
	/* total counts the shim's own frames on top too (as the slow way's
	 * limit does); they are not kept */
	int n = 0, seen = 1;
	/* The shim's own frames: all built with frame pointers
	 * (preload/meson.build), so their chain of saved rbp steps them; the
	 * last one's saved rbp is the program's. */
	while (ip - self_lo < self_hi - self_lo) {
		if (seen == total)
			return 0;
		if (HW_UNLIKELY(bp - sp > stack_hi - sp - 2 * sizeof(uintptr_t) || (bp & 7)))
			return -1;
		const uintptr_t *f = (const uintptr_t *)bp;
		sp = bp + 2 * sizeof(uintptr_t);
		ip = f[1];
		bp = f[0];
		if (ip < 0x4000)
			return 0;
		seen++;
	}
	ips[n++] = ip;
	max = max < total - seen + 1 ? max : total - seen + 1;
	struct unwind_memo *m = &c->memo;
	struct unwind_frame *t = m->t;
	if (max > HW_UNWIND_MEMO)
		max = HW_UNWIND_MEMO; /* not reached: max <= HW_MAX_UNWIND */
	t[0] = (struct unwind_frame){ip, sp, bp, 0};
	if (HW_UNLIKELY(m->stack_hi != stack_hi)) { /* a pooled state's new thread */
		m->n = 0;
		m->stack_hi = stack_hi;
	}

	int k = m->n - 1; /* the memo's frames below sp are not this stack's callers */
	while (n < max) {
		while (k >= 0 && m->f[k].sp < sp)
			k--;
		if (k >= 0 && m->f[k].sp == sp && m->f[k].ip == ip && m->f[k].bp == bp) {
			/* frame n - 1 is the memo's k: its callers are the memo's
			 * while their steps' slots hold the same */
			int n0 = n, j = k - 1, stop = k - (max - n);
			/* The steps' bounds checks passed for these same values
			 * (the memo's stack_hi is this one): not repeated. */
			const struct unwind_frame *f = m->f + k;
			for (stop = stop > -1 ? stop : -1; j > stop; j--) {
				f--; /* m->f[j] */
				if (HW_UNLIKELY(((const uintptr_t *)f->sp)[-1] != f->ip))
					break;
				if (f->slot && HW_UNLIKELY(*(const uintptr_t *)f->slot != f->bp))
					break;
				ips[n++] = f->ip;
			}
			bool done = n == max;
			if (j < 0 && !done) /* the memo's outermost frame: did its walk end? */
				done = m->end == END_LAST ||
				       (m->end == END_SLOT && *(const uintptr_t *)m->end_slot < 0x4000);
			if (HW_LIKELY(done)) {
				/* the memo becomes the frames down to its k, then this
				 * unwind's inner ones (unless they do not fit) */
				int inner = n0 - 1;
				if (k + 1 + inner <= HW_UNWIND_MEMO) {
					if (inner)
						m->f[k].slot = t[inner].slot;
					for (int i = 0; i < inner; i++)
						m->f[k + 1 + i] = t[inner - 1 - i];
					m->n = k + 1 + inner;
					/* all of the memo taken, to its walk's end: these
					 * frames, the outer k + 1 the last unwind's too when
					 * the memo was that unwind's */
					if (j < 0) {
						m->exact = true;
						c->same_root = exact ? (unsigned)k + 1 : 0;
					}
				}
				return n;
			}
			/* a slot changed, or the walk goes on past the memo's end:
			 * on by recipes from the last frame taken, into t as
			 * everything since */
			for (int i = k - 1; i > j; i--)
				t[n0 + (k - 1 - i)] = m->f[i];
			const struct unwind_frame *last = &t[n - 1];
			ip = last->ip;
			sp = last->sp;
			bp = last->bp;
			k = -1;
			if (n == max)
				break;
		}
		const struct unwind_recipe *r = lookup(c, ip);
		/* the outermost frame, or one whose unwind information is
		 * malformed, or whose code is gone: the stack ends there,
		 * without its callers */
		if (HW_UNLIKELY(r->kind > RECIPE_RBP)) {
			if (r->kind == RECIPE_SLOW ||
			    (r->kind == RECIPE_NOWHERE && code_readable(ip)))
				return -1;
			if (r->kind == RECIPE_LAST)
				memo_take(m, n, END_LAST, 0);
			return n;
		}
		uintptr_t cfa = (r->kind == RECIPE_RBP ? bp : sp) + (uintptr_t)(intptr_t)r->cfa_off;
		/* the slots read lie on this thread's stack, above sp: cfa in
		 * (sp, stack_hi], a saved rbp below stack_hi */
		if (HW_UNLIKELY(cfa - sp - 1 >= stack_hi - sp))
			return -1;
		ip = ((const uintptr_t *)cfa)[-1];
		uintptr_t slot = 0;
		if (r->rbp_off) {
			slot = cfa + (uintptr_t)(intptr_t)r->rbp_off;
			if (HW_UNLIKELY(slot - sp > stack_hi - sp - sizeof(uintptr_t)))
				return -1;
			bp = *(const uintptr_t *)slot;
		}
		sp = cfa;
		if (ip < 0x4000) { /* as libunwind: the end, or a bogus frame */
			memo_take(m, n, END_SLOT, cfa - sizeof(uintptr_t));
			return n;
		}
		t[n] = (struct unwind_frame){ip, sp, bp, slot};
		ips[n++] = ip;
	}
	memo_take(m, n, END_MAX, 0);
	return n;
}
