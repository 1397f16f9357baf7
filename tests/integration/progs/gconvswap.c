/* glibc's own unloading of a gconv module, then another object loaded where
 * it was (integration test: frames are named by the object loaded at their
 * time, although no dlclose of the program's unloaded the first). GCONV_PATH
 * names a directory with gconv-modules for HWGA, HWGB and HWGC (gconv_lib.c).
 * Converts with HWGA, closes it, opens and closes HWGC three times (glibc
 * then unloads HWGA: gconv_dl.c's TRIES_BEFORE_UNLOAD), then converts with
 * HWGB. Exits 3 when HWGA was not unloaded or HWGB not loaded at its
 * address. Usage: gconvswap */
#include <dlfcn.h>
#include <iconv.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

struct where {
	const char *name;
	unsigned long at;
};

static int find(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	struct where *w = arg;
	if (info->dlpi_name && strstr(info->dlpi_name, w->name)) {
		w->at = info->dlpi_addr;
		return 1;
	}
	return 0;
}

static unsigned long loaded_at(const char *name)
{
	struct where w = {name, 0};
	dl_iterate_phdr(find, &w);
	return w.at;
}

/* one call site for every conversion: the same callers each time */
__attribute__((noinline)) static int convert(const char *to)
{
	iconv_t cd = iconv_open(to, "UTF-8");
	if (cd == (iconv_t)-1)
		return -1;
	char in[] = "abc", out[16];
	char *ip = in, *op = out;
	size_t il = 3, ol = sizeof(out);
	size_t r = iconv(cd, &ip, &il, &op, &ol);
	iconv_close(cd);
	return r == (size_t)-1 || op - out != 3 || memcmp(out, "abc", 3) ? -1 : 0;
}

int main(void)
{
	/* one call site: the conversions' stacks differ only in the module */
	static const char *const to[] = {"HWGA", "HWGC", "HWGC", "HWGC", "HWGB"};
	unsigned long a = 0;
	for (int i = 0; i < 5; i++) {
		if (i == 4 && (!a || loaded_at("HWGA.so")))
			return 3; /* not loaded, or not unloaded */
		if (convert(to[i]))
			return 1;
		if (i == 0)
			a = loaded_at("HWGA.so");
	}
	printf("HWGA at %#lx, HWGB at %#lx\n", a, loaded_at("HWGB.so"));
	return loaded_at("HWGB.so") == a ? 0 : 3;
}
