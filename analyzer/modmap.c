/* Module map by time (analyzer, replay stage, after the last event): which
 * loaded object each native frame was in. A library dlclose'd and another
 * one dlopen'ed at its addresses share addresses, so an address alone does
 * not name a frame: a stack node is resolved by its time (the event after
 * its definition), by sweeping the nodes and the loads in time order over an
 * ordered map of the address ranges loaded so far. Loads of one file (a
 * dlopen/dlclose loop) become one module file, so its frames are one
 * canonical node each wherever it was loaded. */
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "util.h"

static const struct analysis *g_a;

/* Loads by (path, build-id), then by index: loads of one file together. */
static int by_file(const void *x, const void *y)
{
	const struct module_rec *a = &g_a->modules[*(const uint32_t *)x];
	const struct module_rec *b = &g_a->modules[*(const uint32_t *)y];
	int c = strcmp(a->path, b->path);
	if (c)
		return c;
	if (a->build_id_len != b->build_id_len)
		return a->build_id_len < b->build_id_len ? -1 : 1;
	c = memcmp(a->build_id, b->build_id, a->build_id_len);
	if (c)
		return c;
	return *(const uint32_t *)x < *(const uint32_t *)y ? -1 : 1;
}

static bool same_file(const struct module_rec *a, const struct module_rec *b)
{
	return !strcmp(a->path, b->path) && a->build_id_len == b->build_id_len &&
	       !memcmp(a->build_id, b->build_id, a->build_id_len);
}

static int by_load(const void *x, const void *y)
{
	const struct module_rec *a = &g_a->modules[*(const uint32_t *)x];
	const struct module_rec *b = &g_a->modules[*(const uint32_t *)y];
	if (a->load_seq != b->load_seq)
		return a->load_seq < b->load_seq ? -1 : 1;
	return *(const uint32_t *)x < *(const uint32_t *)y ? -1 : 1;
}

static int by_time(const void *x, const void *y)
{
	const struct node *a = &g_a->st.nodes[*(const uint32_t *)x];
	const struct node *b = &g_a->st.nodes[*(const uint32_t *)y];
	if (a->def_seq != b->def_seq)
		return a->def_seq < b->def_seq ? -1 : 1;
	return *(const uint32_t *)x < *(const uint32_t *)y ? -1 : 1;
}

static void no_cut(void *ctx, const struct block *piece, bool whole)
{
	(void)ctx;
	(void)piece;
	(void)whole;
}

static void add_load(struct range_map *m, const struct module_rec *mr, uint32_t i)
{
	if (mr->hi > mr->lo) {
		struct block b = {mr->lo, mr->hi - mr->lo, i, 0, 1};
		range_map_add(m, &b, no_cut, NULL);
	}
}

void modmap_resolve(struct analysis *a)
{
	size_t nm = a->nmodules;
	if (!nm)
		return;
	g_a = a;
	uint32_t *order = xmalloc(nm * sizeof(*order));
	for (size_t i = 0; i < nm; i++)
		order[i] = (uint32_t)i;
	qsort(order, nm, sizeof(*order), by_file);
	a->files = xcalloc(nm, sizeof(*a->files));
	for (size_t k = 0; k < nm; k++) {
		if (!k || !same_file(&a->modules[order[k - 1]], &a->modules[order[k]]))
			a->files[a->nfiles++].first = order[k];
		a->modules[order[k]].file = (uint32_t)a->nfiles - 1;
	}
	/* native nodes in time order against the loads in time order */
	qsort(order, nm, sizeof(*order), by_load);
	uint32_t *nodes = xmalloc((a->st.n + 1) * sizeof(*nodes));
	size_t nn = 0;
	for (size_t i = 0; i < a->st.n; i++)
		if (a->st.nodes[i].frame_kind == HW_FRAME_NATIVE)
			nodes[nn++] = (uint32_t)i;
	qsort(nodes, nn, sizeof(*nodes), by_time);
	uint32_t *inst = xmalloc((nn + 1) * sizeof(*inst)); /* per node in nodes[] */
	struct range_map m = {0};
	struct block b;
	/* the latest load at or before the node's time that covers it */
	for (size_t k = 0, j = 0; k < nn; k++) {
		const struct node *n = &a->st.nodes[nodes[k]];
		for (; j < nm && a->modules[order[j]].load_seq <= n->def_seq; j++)
			add_load(&m, &a->modules[order[j]], order[j]);
		inst[k] = range_map_find(&m, n->frame, &b) ? b.site : UINT32_MAX;
	}
	range_map_free(&m);
	/* else the first load after it (a node defined before any load was
	 * seen: a trace cut short, or one from before the format had times) */
	for (size_t k = nn, j = nm; k-- > 0;) {
		const struct node *n = &a->st.nodes[nodes[k]];
		for (; j > 0 && a->modules[order[j - 1]].load_seq >= n->def_seq; j--)
			add_load(&m, &a->modules[order[j - 1]], order[j - 1]);
		if (inst[k] == UINT32_MAX && range_map_find(&m, n->frame, &b))
			inst[k] = b.site;
	}
	range_map_free(&m);
	for (size_t k = 0; k < nn; k++) {
		if (inst[k] == UINT32_MAX)
			continue;
		struct node *n = &a->st.nodes[nodes[k]];
		const struct module_rec *mr = &a->modules[inst[k]];
		n->mod = mr->file + 1;
		n->key = n->frame - mr->bias;
	}
	free(inst);
	free(nodes);
	free(order);
	g_a = NULL;
}
