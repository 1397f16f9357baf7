/* The process page (shim, all stages): see proc.h. */
#include "proc.h"

#include <sys/mman.h>
#include <unistd.h>

struct proc_page g_proc;
bool g_proc_wipe_ok;
static uint32_t g_generations; /* handed out; not wiped, so never reused */

bool proc_setup(void)
{
	_Static_assert(sizeof(g_proc) == 4096, "the process page is one page");
	/* g_proc is a whole page of .bss, which the loader maps anonymous
	 * (MADV_WIPEONFORK takes private anonymous memory only; Linux 4.14) */
	if (!g_proc_wipe_ok)
		g_proc_wipe_ok = madvise(&g_proc, sizeof(g_proc), MADV_WIPEONFORK) == 0;
	proc_claim();
	return g_proc_wipe_ok;
}

void proc_claim(void)
{
	g_proc.pid = (int32_t)getpid();
	atomic_store(&g_proc.generation, ++g_generations);
}
