/* Symbolization (analyzer): the only file that uses libdw. One Dwfl session per
 * module, so objects that were loaded at the same address at different times
 * never collide. Return addresses are looked up at address - 1 (the call
 * instruction), the rule every unwinder-based tool follows. The analyzer only
 * reads the ELF files a trace names; it never loads or runs them. */
#include "symbolize.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "err.h"
#include "util.h"

struct sym {
	uint64_t addr, size;
	const char *name; /* in the ELF string table, valid while dwfl is open */
	int rank; /* 0 global, 1 weak, 2 local: the preferred name at an address */
};

/* A module file opened with libdwfl. Shared by every symbolizer that needs
 * the same file with the same build-id (the processes of a tree all have
 * libc: one session parses its debug information once, where each process
 * parsing its own cost about 17 MB apiece). */
struct session {
	char *file; /* as opened (under the sysroot) */
	unsigned char build_id[64];
	size_t build_id_len;
	uint64_t bias; /* where the session has the file */
	Dwfl *dwfl;
	Dwfl_Module *mod;
	struct sym *syms; /* function symbols sorted by address */
	size_t nsyms;
	bool usable, mismatch, missing;
	char *why;
	unsigned refs;
	uint64_t hash; /* of file and build-id (g_ses) */
};

/* The sessions open, by file and build-id: open addressing, never more
 * than half full, NULL empty. (A list searched for each module was
 * quadratic in the libraries of a trace: 20,000 of them, 2.3 s.) */
static struct session **g_ses;
static size_t g_ses_mask, g_ses_n;

static uint64_t ses_hash(const char *file, const unsigned char *id, size_t idlen)
{
	return hw_hash_bytes(id, idlen, hw_str_hash(file));
}

/* The slot of the session of file and build-id, or the empty one where it
 * would go. */
static size_t ses_slot(const char *file, const unsigned char *id, size_t idlen, uint64_t h)
{
	size_t j = (size_t)h & g_ses_mask;
	for (; g_ses[j]; j = (j + 1) & g_ses_mask) {
		const struct session *s = g_ses[j];
		if (s->hash == h && s->build_id_len == idlen && !memcmp(s->build_id, id, idlen) &&
		    !strcmp(s->file, file))
			break;
	}
	return j;
}

static void ses_put(struct session *ses)
{
	if ((g_ses_n + 1) * 2 > g_ses_mask + 1) {
		size_t old = g_ses ? g_ses_mask + 1 : 0;
		struct session **was = g_ses;
		g_ses_mask = old ? 2 * old - 1 : 63;
		g_ses = xcalloc(g_ses_mask + 1, sizeof(*g_ses));
		for (size_t i = 0; i < old; i++)
			if (was[i])
				g_ses[ses_slot(was[i]->file, was[i]->build_id, was[i]->build_id_len,
					       was[i]->hash)] = was[i];
		free(was);
	}
	g_ses[ses_slot(ses->file, ses->build_id, ses->build_id_len, ses->hash)] = ses;
	g_ses_n++;
}

/* Takes ses out of the table (the entries after it move back into the
 * hole, as linear probing needs). */
static void ses_drop(const struct session *ses)
{
	size_t j = ses_slot(ses->file, ses->build_id, ses->build_id_len, ses->hash);
	if (g_ses[j] != ses)
		return;
	g_ses[j] = NULL;
	g_ses_n--;
	for (size_t k = (j + 1) & g_ses_mask; g_ses[k]; k = (k + 1) & g_ses_mask) {
		struct session *e = g_ses[k];
		g_ses[k] = NULL;
		g_ses[ses_slot(e->file, e->build_id, e->build_id_len, e->hash)] = e;
	}
	if (!g_ses_n) {
		free(g_ses);
		g_ses = NULL;
		g_ses_mask = 0;
	}
}

struct mod_state {
	bool tried, usable;
	struct session *ses;
	const char *base;
	uint64_t unnamed; /* frames left without a function name */
	uint64_t shown; /* of those, the return addresses a report showed */
	bool mismatch, missing;
	char *why; /* the file could not be read: why */
};

struct cache_entry {
	uint64_t ip;
	int32_t mod; /* -1 = no module */
	uint32_t first, count; /* slice of frames */
	bool used;
	bool shown; /* counted in its module's shown */
};

struct symbolizer {
	const struct analysis *a;
	struct mod_state *mods;
	struct cache_entry *cache;
	size_t cache_mask, cache_n;
	struct frame_info *frames;
	size_t nframes, fcap;
	char **strings;
	size_t nstrings, scap;
	bool offline;
	int resolving; /* the module of the address being resolved (-1: none) */
};

/* Opens a file a trace names, for reading, only when it is a regular file
 * and without ever blocking: a FIFO or a device must not stall the analyzer
 * (open() of a FIFO waits for a writer) nor see an open (a device's open can
 * act). O_PATH opens no file; the inode it holds is reopened for reading
 * through /proc only once it is known to be a regular file. Returns -1 with
 * errno set (EINVAL: not a regular file). */
int symbolize_open_regular(const char *path)
{
	int pfd = open(path, O_PATH | O_CLOEXEC);
	if (pfd < 0)
		return -1;
	struct stat st;
	if (fstat(pfd, &st) || !S_ISREG(st.st_mode)) {
		close(pfd);
		errno = EINVAL;
		return -1;
	}
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
	int fd = open(proc, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) /* no /proc: the name again, never blocking */
		fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	int saved = errno;
	close(pfd);
	if (fd >= 0 && (fstat(fd, &st) || !S_ISREG(st.st_mode))) {
		close(fd);
		fd = -1;
		saved = EINVAL;
	}
	errno = saved;
	return fd;
}

/* Does the candidate debug file fd belong to mod: the same build-id when
 * the module has one, else the CRC the module's .gnu_debuglink names (the
 * checks libdwfl's own search makes). */
static bool debug_file_matches(Dwfl_Module *mod, int fd, GElf_Word crc)
{
	const unsigned char *bits;
	GElf_Addr vaddr;
	int len = dwfl_module_build_id(mod, &bits, &vaddr);
	if (len > 0) {
		Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
		const void *id = NULL;
		ssize_t n = elf ? dwelf_elf_gnu_build_id(elf, &id) : -1;
		bool same = n == len && !memcmp(id, bits, (size_t)len);
		if (elf)
			elf_end(elf);
		return same;
	}
	if (!crc)
		return false;
	uLong sum = crc32(0, Z_NULL, 0);
	unsigned char buf[65536];
	ssize_t n;
	off_t at = 0;
	while ((n = pread(fd, buf, sizeof(buf), at)) > 0) {
		sum = crc32(sum, buf, (uInt)n);
		at += n;
	}
	return n == 0 && (GElf_Word)sum == crc;
}

/* Where libdwfl looks once the module's own directory was searched here:
 * only the system's debug directory (root's), by build-id and by name. */
static char *g_system_debug_path = "/usr/lib/debug";

/* libdwfl's standard search, except that the candidates in the module's own
 * directory (DIR/LINK and DIR/.debug/LINK, the places a library built with
 * split debug information keeps it) are opened here, as regular files only
 * (symbolize_open_regular); the rest of the search stays under
 * /usr/lib/debug. A debuglink is a bare file name: one with a '/' is not
 * followed. */
static int find_debuginfo(Dwfl_Module *mod, void **userdata, const char *modname, GElf_Addr base,
			  const char *file_name, const char *debuglink, GElf_Word crc,
			  char **debuginfo_file_name)
{
	if (debuglink && file_name && file_name[0] == '/' && !strchr(debuglink, '/') &&
	    strcmp(debuglink, "..") && strcmp(debuglink, ".")) {
		const char *slash = strrchr(file_name, '/');
		int dirlen = (int)(slash - file_name);
		static const char *const subdirs[] = {"", "/.debug"};
		for (size_t i = 0; i < 2; i++) {
			char *path = NULL;
			if (asprintf(&path, "%.*s%s/%s", dirlen, file_name, subdirs[i], debuglink) < 0)
				return -1;
			int fd = symbolize_open_regular(path);
			if (fd >= 0 && debug_file_matches(mod, fd, crc)) {
				*debuginfo_file_name = path;
				return fd;
			}
			if (fd >= 0)
				close(fd);
			free(path);
		}
	}
	errno = 0;
	return dwfl_standard_find_debuginfo(mod, userdata, modname, base, file_name,
					    debuglink && !strchr(debuglink, '/') ? debuglink : NULL,
					    crc, debuginfo_file_name);
}

static const Dwfl_Callbacks callbacks = {
	.find_elf = dwfl_build_id_find_elf, /* not used: the file is opened here */
	.find_debuginfo = find_debuginfo,
	.section_address = dwfl_offline_section_address,
	.debuginfo_path = &g_system_debug_path,
};

static const char *keep(struct symbolizer *s, const char *str)
{
	if (!str)
		return NULL;
	HW_GROW(s->strings, s->nstrings, s->scap);
	s->strings[s->nstrings] = xstrndup(str, strlen(str));
	return s->strings[s->nstrings++];
}

static bool g_offline_only;
static char *g_sysroot; /* --sysroot: module paths are looked up under it */
static char *g_sysroot_debug; /* its debuginfo path for libdwfl */
static Dwfl_Callbacks g_sysroot_callbacks;

void symbolizer_set_sysroot(const char *dir)
{
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	free(g_sysroot);
	free(g_sysroot_debug);
	g_sysroot = xstrndup(dir, n);
	/* separate debug files: beside the object and in .debug/ (looked up
	 * by find_debuginfo), and in the sysroot's own /usr/lib/debug (its
	 * .build-id tree included) */
	size_t cap = 2 * n + 64;
	g_sysroot_debug = xmalloc(cap);
	snprintf(g_sysroot_debug, cap, "%.*s/usr/lib/debug", (int)n, dir);
	g_sysroot_callbacks = callbacks;
	g_sysroot_callbacks.debuginfo_path = &g_sysroot_debug;
}

void symbolizer_offline_only(void)
{
	g_offline_only = true;
}

struct symbolizer *symbolizer_new(const struct analysis *a)
{
	struct symbolizer *s = xcalloc(1, sizeof(*s));
	s->offline = g_offline_only;
	s->a = a;
	s->mods = xcalloc(a->nfiles + 1, sizeof(*s->mods));
	for (size_t i = 0; i < a->nfiles; i++) {
		const char *path = a->modules[a->files[i].first].path, *p = strrchr(path, '/');
		s->mods[i].base = p ? p + 1 : path;
	}
	s->cache_mask = 4095;
	s->cache = xcalloc(s->cache_mask + 1, sizeof(*s->cache));
	return s;
}

struct symbolizer *symbolizer_new_offline(const struct analysis *a)
{
	struct symbolizer *s = symbolizer_new(a);
	s->offline = true;
	return s;
}

void symbolizer_free(struct symbolizer *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->a->nfiles; i++) {
		struct session *ses = s->mods[i].ses;
		free(s->mods[i].why);
		if (!ses || --ses->refs)
			continue;
		ses_drop(ses);
		if (ses->dwfl)
			dwfl_end(ses->dwfl);
		free(ses->syms);
		free(ses->why);
		free(ses->file);
		free(ses);
	}
	for (size_t i = 0; i < s->nstrings; i++)
		free(s->strings[i]);
	free(s->strings);
	free(s->mods);
	free(s->cache);
	free(s->frames);
	free(s);
}

/* A module file's first load: its path, build-id, and the bias its session
 * is reported at. */
static const struct module_rec *file_rec(const struct symbolizer *s, int i)
{
	return &s->a->modules[s->a->files[i].first];
}

static int cmp_sym(const void *x, const void *y)
{
	const struct sym *a = x, *b = y;
	if (a->addr != b->addr)
		return a->addr < b->addr ? -1 : 1;
	if (a->rank != b->rank)
		return a->rank - b->rank;
	return (a->size < b->size) - (a->size > b->size); /* the widest first */
}

/* The module's function symbols, sorted once: dwfl_module_addrinfo scans the
 * whole symbol table for every address, which made symbolization the larger
 * part of a report on a big interpreter without debug symbols. */
static void load_symbols(struct session *ms)
{
	int n = dwfl_module_getsymtab(ms->mod);
	if (n <= 0)
		return;
	ms->syms = xmalloc((size_t)n * sizeof(*ms->syms));
	for (int i = 0; i < n; i++) {
		GElf_Sym sym;
		GElf_Addr addr;
		const char *name = dwfl_module_getsym_info(ms->mod, i, &sym, &addr, NULL, NULL, NULL);
		int type = GELF_ST_TYPE(sym.st_info), bind = GELF_ST_BIND(sym.st_info);
		if (!name || !*name || !addr || sym.st_shndx == SHN_UNDEF ||
		    (type != STT_FUNC && type != STT_GNU_IFUNC))
			continue;
		ms->syms[ms->nsyms++] = (struct sym){addr, sym.st_size, name,
						     bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 2};
	}
	qsort(ms->syms, ms->nsyms, sizeof(*ms->syms), cmp_sym);
}

/* The function symbol that contains pc: the last one starting at or below it
 * whose size covers it (a sizeless symbol reaches to the next one). */
static const char *symbol_at(const struct session *ms, uint64_t pc)
{
	size_t lo = 0, hi = ms->nsyms;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ms->syms[mid].addr <= pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* lo: first symbol above pc; look back over nested or sized-out ones */
	for (size_t k = lo, tries = 0; k-- > 0 && tries < 16; tries++) {
		const struct sym *sy = &ms->syms[k];
		while (k > 0 && ms->syms[k - 1].addr == sy->addr)
			sy = &ms->syms[--k]; /* the preferred name at that address */
		if (!sy->size || pc < sy->addr + sy->size)
			return sy->name;
	}
	return NULL;
}

/* Opens a module file into a new session (its outcome in ses). */
static void open_session(struct session *ses, const char *base, const struct module_rec *m)
{
	const char *file = ses->file;
	int fd = symbolize_open_regular(file);
	if (fd < 0) {
		ses->missing = true;
		const char *why = errno == EINVAL ? "not a regular file" : strerror(errno);
		ses->why = xstrndup(why, strlen(why));
		return;
	}
	ses->dwfl = dwfl_begin(g_sysroot ? &g_sysroot_callbacks : &callbacks);
	if (!ses->dwfl) {
		close(fd);
		return;
	}
	dwfl_report_begin(ses->dwfl);
	/* fd is libdwfl's from here on when this succeeds */
	ses->mod = dwfl_report_elf(ses->dwfl, base, file, fd, m->bias, false);
	dwfl_report_end(ses->dwfl, NULL, NULL);
	if (!ses->mod) {
		close(fd);
		ses->missing = true;
		const char *why = dwfl_errmsg(-1); /* reading it clears it */
		ses->why = xstrndup(why, strlen(why));
		return;
	}
	const unsigned char *bits;
	GElf_Addr vaddr;
	int len = dwfl_module_build_id(ses->mod, &bits, &vaddr);
	if (m->build_id_len && len > 0 &&
	    ((size_t)len != m->build_id_len || memcmp(bits, m->build_id, (size_t)len))) {
		ses->mismatch = true;
		return;
	}
	load_symbols(ses);
	ses->usable = true;
}

static bool open_module(struct symbolizer *s, int i)
{
	struct mod_state *ms = &s->mods[i];
	if (ms->tried)
		return ms->usable;
	ms->tried = true;
	const struct module_rec *m = file_rec(s, i);
	if (s->offline)
		return false;
	if (m->path[0] != '/') {
		ms->missing = true; /* vdso and other unnamed objects */
		return false;
	}
	size_t cap = (g_sysroot ? strlen(g_sysroot) : 0) + strlen(m->path) + 1;
	char *file = xmalloc(cap);
	snprintf(file, cap, "%s%s", g_sysroot ? g_sysroot : "", m->path);
	size_t idlen = m->build_id_len < sizeof(ms->ses->build_id) ? m->build_id_len : 0;
	uint64_t h = ses_hash(file, m->build_id, idlen);
	struct session *ses = g_ses ? g_ses[ses_slot(file, m->build_id, idlen, h)] : NULL;
	if (ses) {
		free(file);
	} else {
		ses = xcalloc(1, sizeof(*ses));
		ses->file = file;
		ses->build_id_len = idlen;
		memcpy(ses->build_id, m->build_id, idlen);
		ses->hash = h;
		ses->bias = m->bias;
		open_session(ses, ms->base, m);
		ses_put(ses);
	}
	ses->refs++;
	ms->ses = ses;
	ms->missing = ses->missing;
	ms->mismatch = ses->mismatch;
	ms->why = ses->why ? xstrndup(ses->why, strlen(ses->why)) : NULL;
	ms->usable = ses->usable;
	return ms->usable;
}

static const char *die_name(Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	const char *name = NULL;
	if (dwarf_attr_integrate(die, DW_AT_name, &attr))
		name = dwarf_formstring(&attr);
	return name;
}

static void add_frame(struct symbolizer *s, const char *fn, const char *file, int line,
		      const char *module, uint64_t ip, uint64_t off)
{
	char plain[512];
	const char *at = fn ? strchr(fn, '@') : NULL;
	if (at && (size_t)(at - fn) < sizeof(plain)) { /* "memcpy@@GLIBC_2.14" */
		memcpy(plain, fn, (size_t)(at - fn));
		plain[at - fn] = 0;
		fn = plain;
	}
	HW_GROW(s->frames, s->nframes, s->fcap);
	s->frames[s->nframes++] = (struct frame_info){.function = keep(s, fn),
						       .file = keep(s, file),
						       .line = line,
						       .module = module,
						       .ip = ip,
						       .module_offset = off,
						       .module_id = s->resolving + 1};
}

/* The frames at offset off of module file mi (ip: the address it had in
 * the trace, for the reports). */
static void resolve(struct symbolizer *s, int mi, uint64_t off, uint64_t ip)
{
	struct mod_state *ms = &s->mods[mi];
	if (!open_module(s, mi)) {
		ms->unnamed++;
		add_frame(s, NULL, NULL, 0, ms->base, ip, off);
		return;
	}
	struct session *ses = ms->ses;
	Dwarf_Addr pc = ses->bias + off - 1; /* where the session has it */
	const char *symname = symbol_at(ses, pc);
	const char *file = NULL;
	int line = 0;
	Dwfl_Line *l = dwfl_module_getsrc(ses->mod, pc);
	if (l)
		file = dwfl_lineinfo(l, NULL, &line, NULL, NULL, NULL);

	Dwarf_Addr bias = 0;
	Dwarf_Die *cudie = dwfl_module_addrdie(ses->mod, pc, &bias);
	Dwarf_Die *scopes = NULL;
	int n = cudie ? dwarf_getscopes(cudie, pc - bias, &scopes) : 0;
	if (n > 0) {
		/* dwarf_getscopes follows an inlined body's abstract origin; the
		 * concrete chain through its callers starts from the innermost
		 * scope's own DIE. */
		Dwarf_Off off = dwarf_dieoffset(&scopes[0]);
		free(scopes);
		scopes = NULL;
		Dwarf_Addr dw_bias;
		Dwarf *dw = dwfl_module_getdwarf(ses->mod, &dw_bias);
		Dwarf_Die inner;
		n = dw && dwarf_offdie(dw, off, &inner) ? dwarf_getscopes_die(&inner, &scopes) : 0;
	}
	bool any = false;
	for (int i = 0; i < n; i++) {
		Dwarf_Die *sc = &scopes[i];
		int tag = dwarf_tag(sc);
		if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram)
			continue;
		const char *name = die_name(sc);
		if (tag == DW_TAG_subprogram && symname)
			name = symname;
		add_frame(s, name ? name : symname, file, line, ms->base, ip, off);
		any = true;
		if (tag == DW_TAG_subprogram)
			break;
		/* The caller of an inlined body is at its call site. */
		Dwarf_Attribute attr;
		Dwarf_Word v;
		file = NULL;
		line = 0;
		if (dwarf_formudata(dwarf_attr(sc, DW_AT_call_line, &attr), &v) == 0)
			line = (int)v;
		Dwarf_Files *files;
		size_t nfiles;
		if (dwarf_formudata(dwarf_attr(sc, DW_AT_call_file, &attr), &v) == 0 &&
		    dwarf_getsrcfiles(cudie, &files, &nfiles) == 0 && v < nfiles)
			file = dwarf_filesrc(files, v, NULL, NULL);
	}
	free(scopes);
	if (!any) {
		if (!symname)
			ms->unnamed++;
		add_frame(s, symname, file, line, ms->base, ip, off);
	}
}

/* The cache's first slot for key (an offset with the module above bit
 * 48): every bit mixed into the low ones (the high bits of a product
 * shifted by 20 left the module out of a table of fewer than 2^28 slots:
 * the frames of 20,000 libraries at one offset all probed one run). */
static size_t slot_for(uint64_t key, size_t mask)
{
	return (size_t)hw_mix64(key) & mask;
}

static size_t cache_slot(const struct symbolizer *s, uint64_t key)
{
	return slot_for(key, s->cache_mask);
}

size_t symbolize_native(struct symbolizer *s, uint32_t mod, uint64_t off, uint64_t ip,
			const struct frame_info **out)
{
	int mi = mod && mod <= s->a->nfiles ? (int)mod - 1 : -1;
	if (mi < 0)
		off = ip;
	uint64_t key = off ^ ((uint64_t)(mi + 1) << 48);
	size_t j = cache_slot(s, key);
	while (s->cache[j].used) {
		if (s->cache[j].ip == key && s->cache[j].mod == mi) {
			*out = &s->frames[s->cache[j].first];
			return s->cache[j].count;
		}
		j = (j + 1) & s->cache_mask;
	}
	size_t first = s->nframes;
	s->resolving = mi;
	if (mi < 0)
		add_frame(s, NULL, NULL, 0, NULL, ip, ip);
	else
		resolve(s, mi, off, ip);
	if ((s->cache_n + 1) * 2 > s->cache_mask + 1) {
		size_t mask = s->cache_mask * 2 + 1;
		struct cache_entry *c = xcalloc(mask + 1, sizeof(*c));
		for (size_t i = 0; i <= s->cache_mask; i++) {
			if (!s->cache[i].used)
				continue;
			size_t k = slot_for(s->cache[i].ip, mask);
			while (c[k].used)
				k = (k + 1) & mask;
			c[k] = s->cache[i];
		}
		free(s->cache);
		s->cache = c;
		s->cache_mask = mask;
		j = slot_for(key, mask);
		while (c[j].used)
			j = (j + 1) & mask;
	}
	s->cache[j] = (struct cache_entry){key, mi, (uint32_t)first, (uint32_t)(s->nframes - first), true,
					   false};
	s->cache_n++;
	*out = &s->frames[first];
	return s->nframes - first;
}

void symbolizer_shown(struct symbolizer *s, const struct frame_info *f)
{
	if (!s || f->python || f->function || !f->module_id || f->module_id > s->a->nfiles)
		return;
	int mi = (int)f->module_id - 1; /* a module file */
	uint64_t key = f->module_offset ^ ((uint64_t)(mi + 1) << 48);
	for (size_t j = cache_slot(s, key); s->cache[j].used; j = (j + 1) & s->cache_mask) {
		struct cache_entry *c = &s->cache[j];
		if (c->ip == key && c->mod == mi) {
			if (!c->shown) {
				c->shown = true;
				s->mods[mi].shown++;
			}
			return;
		}
	}
}

void symbolizer_print_hints(struct symbolizer *s)
{
	for (size_t i = 0; i < s->a->nfiles; i++) {
		struct mod_state *ms = &s->mods[i];
		if (!ms->shown || (ms->missing && !ms->why))
			continue; /* vdso and other unnamed objects */
		const char *p = file_rec(s, (int)i)->path;
		unsigned long long n = (unsigned long long)ms->shown;
		const char *what = n == 1 ? "frame" : "frames", *have = n == 1 ? "has" : "have";
		const char *stays = n == 1 ? "stays" : "stay";
		const char *py = strstr(ms->base, "python3");
		if (ms->why) {
			warn_print("cannot read %s: %s; %llu %s %s unnamed", p, ms->why, n, what, stays);
		} else if (ms->mismatch) {
			warn_print("%s has changed since the trace was made (build-id differs); %llu %s %s unnamed",
				   p, n, what, stays);
		} else if (py) {
			/* "python3.11" of python3.11 or libpython3.11.so.1.0 */
			size_t len = 7;
			if (py[len] == '.')
				for (len++; py[len] >= '0' && py[len] <= '9'; len++)
					;
			warn_print("%llu %s in %s %s no symbols; install the interpreter's debug symbols (Debian: apt-get install %.*s-dbg)",
				   n, what, p, have, (int)len, py);
		} else {
			warn_print("%llu %s in %s %s no symbols; install its debug symbols (Debian: the matching -dbg or -dbgsym package)",
				   n, what, p, have);
		}
	}
}
