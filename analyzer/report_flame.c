/* Flame graphs (analyzer, reports stage). One tree of frames (root first)
 * with the heap bytes of the chosen metric, rendered three ways. Names come
 * from the trace and are hostile: the SVG escapes them as XML, the HTML page
 * carries them only inside JSON (with <, > and & escaped) and puts them in
 * the page with textContent, never as markup. */
#include "report_flame.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "sampled.h"
#include "util.h"

#define MAX_FRAMES 2048 /* the shim writes 1,536 at most (1,024 Python + 512 native) */
#define SVG_WIDTH 1200.0
#define SVG_ROW 17

/* The heap kinds a node's bytes are of: malloc, pymem, pyobj. */
#define FLAME_KINDS 3
static const int flame_kind[FLAME_KINDS] = {HW_KIND_MALLOC, HW_KIND_PYMEM, HW_KIND_PYOBJ};

static int kind_slot(int kind)
{
	return kind == HW_KIND_PYMEM ? 1 : kind == HW_KIND_PYOBJ ? 2 : 0;
}

struct fnode {
	char *name;
	uint64_t total, self;
	uint64_t kinds[FLAME_KINDS]; /* total by heap kind */
	/* a sampled trace: the variance of total (its callsites are sampled
	 * independently, so theirs add) and the samples behind it */
	double var;
	uint64_t samples;
	uint8_t python;
	uint32_t *kids;
	size_t nkids, kcap;
	uint32_t parent; /* the root's: UINT32_MAX */
	uint64_t hash; /* of name (child's table) */
};

struct ftree {
	struct fnode *n;
	size_t count, cap;
	size_t depth;
	uint64_t sample_interval; /* the largest of the processes' (0: exact) */
	/* every node but the root by parent and name: node + 1, 0 empty
	 * (never more than half full) */
	uint32_t *slot;
	size_t smask;
};

const char *flame_metric_name(enum flame_metric m)
{
	static const char *const names[] = {"peak", "leaked", "allocated"};
	return names[m];
}

static uint32_t node_new(struct ftree *t, const char *name, bool python)
{
	HW_GROW(t->n, t->count, t->cap);
	struct fnode *n = &t->n[t->count];
	memset(n, 0, sizeof(*n));
	n->name = xstrndup(name, strlen(name));
	n->python = python;
	return (uint32_t)t->count++;
}

static size_t slot_of(const struct ftree *t, uint32_t parent, uint64_t hash)
{
	return (size_t)hw_mix64(hash ^ (uint64_t)parent * 0x9E3779B97F4A7C15ull) & t->smask;
}

/* The child of parent named name, made if it is new: found in the tree's
 * table (a node with many children, such as a function called from
 * thousands of places, was a scan of its children each time). */
static uint32_t child(struct ftree *t, uint32_t parent, const char *name, bool python)
{
	if ((t->count + 1) * 2 > t->smask + 1) { /* grow: every node again */
		size_t mask = t->smask ? t->smask * 2 + 1 : 1023;
		free(t->slot);
		t->slot = xcalloc(mask + 1, sizeof(*t->slot));
		t->smask = mask;
		for (size_t i = 0; i < t->count; i++) {
			if (t->n[i].parent == UINT32_MAX)
				continue;
			size_t j = slot_of(t, t->n[i].parent, t->n[i].hash);
			while (t->slot[j])
				j = (j + 1) & t->smask;
			t->slot[j] = (uint32_t)i + 1;
		}
	}
	uint64_t h = hw_str_hash(name);
	size_t j = slot_of(t, parent, h);
	for (; t->slot[j]; j = (j + 1) & t->smask) {
		const struct fnode *n = &t->n[t->slot[j] - 1];
		if (n->parent == parent && n->hash == h && !strcmp(n->name, name))
			return t->slot[j] - 1;
	}
	uint32_t id = node_new(t, name, python); /* may move t->n */
	t->n[id].parent = parent;
	t->n[id].hash = h;
	t->slot[j] = id + 1;
	struct fnode *p = &t->n[parent];
	HW_GROW(p->kids, p->nkids, p->kcap);
	p->kids[p->nkids++] = id;
	return id;
}

/* A ';' would break the folded format: it becomes ':'. The name is in the
 * display form of escape.h (no control character, valid UTF-8). */
static void folded_safe(char *buf, size_t size, const char *raw)
{
	text_escape(buf, size, raw);
	for (char *p = buf; *p; p++)
		if (*p == ';')
			*p = ':';
}

/* "qualname (file:line)" or "function (module)". */
static void frame_name(const struct frame_info *f, char *buf, size_t size)
{
	char raw[2048];
	if (f->python)
		snprintf(raw, sizeof(raw), "%s (%s:%d)", f->function ? f->function : "??",
			 f->file ? f->file : "??", f->line);
	else if (f->function)
		snprintf(raw, sizeof(raw), "%s (%s)", f->function, f->module ? f->module : "??");
	else if (f->module)
		snprintf(raw, sizeof(raw), "%s+0x%" PRIx64, f->module, f->module_offset);
	else
		snprintf(raw, sizeof(raw), "0x%" PRIx64, f->ip);
	folded_safe(buf, size, raw);
}

static uint64_t metric_of(const struct analysis *a, const struct site *s, enum flame_metric m)
{
	switch (m) {
	case METRIC_PEAK:
		return site_peak_bytes(a, s);
	case METRIC_LEAKED:
		return s->eligible ? s->leak_bytes : 0;
	default:
		return s->alloc_bytes;
	}
}

/* A sampled trace's spread of the metric at site i (0 for an exact trace). */
static void metric_spread(const struct analysis *a, size_t i, enum flame_metric m, double *var,
			  uint64_t *samples)
{
	struct spread_fig f;
	site_spread_fig(a, i, &f);
	switch (m) {
	case METRIC_PEAK:
		*var = f.peak_var;
		*samples = f.peak_n;
		break;
	case METRIC_LEAKED:
		*var = a->sites[i].eligible ? f.leak_var : 0;
		*samples = a->sites[i].eligible ? f.leak_n : 0;
		break;
	default:
		*var = f.alloc_var;
		*samples = f.alloc_n;
	}
}

static void node_add(struct fnode *n, uint64_t v, int ks, double var, uint64_t samples)
{
	n->total += v;
	n->kinds[ks] += v;
	n->var += var;
	n->samples += samples;
}

/* Adds one process's callsites under `root` (the tree's root, or the
 * process's own frame when there are several). */
static void build_one(struct ftree *t, uint32_t root, const struct analysis *a,
		      struct symbolizer *s, enum flame_metric m, struct frame_info *frames)
{
	char name[2048];
	size_t base = root ? 1 : 0; /* depth of root */
	for (size_t i = 0; i < a->nsites; i++) {
		const struct site *st = &a->sites[i];
		uint64_t v = st->cls == CLASS_HEAP ? metric_of(a, st, m) : 0;
		if (!v)
			continue;
		size_t nf = report_stack_frames(a, s, st->raw_stack, frames, MAX_FRAMES);
		int ks = kind_slot(st->kind);
		double var;
		uint64_t samples;
		metric_spread(a, i, m, &var, &samples);
		uint32_t at = root;
		node_add(&t->n[0], v, ks, var, samples);
		if (root)
			node_add(&t->n[root], v, ks, var, samples);
		if (!nf) {
			at = child(t, root, "(no stack recorded)", false);
			node_add(&t->n[at], v, ks, var, samples);
		}
		for (size_t k = nf; k-- > 0;) {
			symbolizer_shown(s, &frames[k]);
			frame_name(&frames[k], name, sizeof(name));
			at = child(t, at, name, frames[k].python);
			node_add(&t->n[at], v, ks, var, samples);
		}
		t->n[at].self += v;
		if (base + nf + 1 > t->depth)
			t->depth = base + nf + 1;
	}
	report_stack_frames_done();
}

static void build(struct ftree *t, const struct flame_proc *procs, size_t n, enum flame_metric m)
{
	uint32_t all = node_new(t, "all", false);
	t->n[all].parent = UINT32_MAX;
	struct frame_info *frames = xmalloc(MAX_FRAMES * sizeof(*frames));
	char name[2048];
	for (size_t i = 0; i < n; i++) {
		uint32_t root = 0;
		if (n > 1) { /* one frame per process under "all" */
			folded_safe(name, sizeof(name), procs[i].name);
			root = child(t, 0, name, false);
		}
		build_one(t, root, procs[i].a, procs[i].s, m, frames);
		if (procs[i].a->sample_interval > t->sample_interval)
			t->sample_interval = procs[i].a->sample_interval;
	}
	free(frames);
}

static void tree_free(struct ftree *t)
{
	for (size_t i = 0; i < t->count; i++) {
		free(t->n[i].name);
		free(t->n[i].kids);
	}
	free(t->n);
	free(t->slot);
}

static int cmp_name;
static const struct ftree *g_sort_tree;

static int by_name(const void *x, const void *y)
{
	const struct fnode *a = &g_sort_tree->n[*(const uint32_t *)x];
	const struct fnode *b = &g_sort_tree->n[*(const uint32_t *)y];
	return strcmp(a->name, b->name);
}

/* Children in name order: deterministic output, the flame graph convention. */
static void sort_kids(struct ftree *t)
{
	g_sort_tree = t;
	for (size_t i = 0; i < t->count; i++)
		if (t->n[i].nkids > 1)
			qsort(t->n[i].kids, t->n[i].nkids, sizeof(uint32_t), by_name);
	(void)cmp_name;
}

static void folded(FILE *f, const struct ftree *t, uint32_t id, char *path, size_t len,
		   size_t cap)
{
	const struct fnode *n = &t->n[id];
	size_t add = id ? strlen(n->name) + (len ? 1 : 0) : 0;
	if (len + add + 1 > cap)
		return; /* absurdly deep: cut, never overflow */
	if (id) {
		if (len)
			path[len] = ';';
		memcpy(path + len + (len ? 1 : 0), n->name, strlen(n->name));
		len += add;
		path[len] = 0;
		if (n->self)
			fprintf(f, "%s %" PRIu64 "\n", path, n->self);
	}
	for (size_t i = 0; i < n->nkids; i++)
		folded(f, t, n->kids[i], path, len, cap);
}

/* "malloc", or "malloc 9.2 MiB + pyobj 3.8 KiB" when several kinds hold
 * the node's bytes (largest first). buf needs 160 bytes. */
static const char *kinds_text(const struct fnode *n, char *buf)
{
	int order[FLAME_KINDS], k = 0;
	for (int i = 0; i < FLAME_KINDS; i++) {
		if (!n->kinds[i])
			continue;
		int j = k++;
		for (; j > 0 && n->kinds[i] > n->kinds[order[j - 1]]; j--)
			order[j] = order[j - 1];
		order[j] = i;
	}
	if (k <= 1)
		return kind_name(flame_kind[k ? order[0] : 0]);
	size_t len = 0;
	buf[0] = 0;
	for (int i = 0; i < k; i++) {
		char sz[32];
		len += (size_t)snprintf(buf + len, 160 - len, "%s%s %s", i ? " + " : "",
					kind_name(flame_kind[order[i]]), fmt_size(sz, n->kinds[order[i]]));
	}
	return buf;
}

static void svg_node(FILE *f, const struct ftree *t, uint32_t id, double x, size_t depth,
		     double total, size_t max_depth)
{
	const struct fnode *n = &t->n[id];
	double w = (double)n->total / total * SVG_WIDTH;
	if (w < 0.3)
		return;
	double y = (double)(max_depth - depth - 1) * SVG_ROW + 40;
	char b[32], kinds[160], pm[100] = "", pm1[96];
	if (t->sample_interval)
		snprintf(pm, sizeof(pm), " %s", sample_pm(pm1, n->total, n->var, n->samples));
	fprintf(f, "<g><title>");
	xml_text(f, n->name);
	fprintf(f, " — %s%s, %.1f%%, %s</title><rect x=\"%.2f\" y=\"%.0f\" width=\"%.2f\" height=\"%d\" fill=\"%s\"/>",
		fmt_size(b, n->total), pm, 100.0 * (double)n->total / total, kinds_text(n, kinds), x, y, w,
		SVG_ROW - 1, id == 0 ? "#ccc" : n->python ? "#7cbf7c" : "#e8a05a");
	if (w > 35) {
		size_t chars = (size_t)((w - 6) / 7);
		char label[512];
		snprintf(label, sizeof(label), "%s", n->name);
		if (strlen(label) > chars) {
			if (chars > 2) {
				label[chars - 2] = '.';
				label[chars - 1] = '.';
				label[chars] = 0;
			} else {
				label[0] = 0;
			}
		}
		fprintf(f, "<text x=\"%.2f\" y=\"%.0f\">", x + 3, y + SVG_ROW - 5);
		xml_text(f, label);
		fputs("</text>", f);
	}
	fputs("</g>\n", f);
	double cx = x;
	for (size_t i = 0; i < n->nkids; i++) {
		svg_node(f, t, n->kids[i], cx, depth + 1, total, max_depth);
		cx += (double)t->n[n->kids[i]].total / total * SVG_WIDTH;
	}
}

static void svg(FILE *f, const struct ftree *t, const char *title)
{
	size_t depth = t->depth + 1;
	double height = (double)depth * SVG_ROW + 60;
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
		   "viewBox=\"0 0 %.0f %.0f\" font-family=\"monospace\" font-size=\"12\">\n"
		   "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n<text x=\"10\" y=\"24\" font-size=\"16\">",
		SVG_WIDTH + 20, height, SVG_WIDTH + 20, height);
	xml_text(f, title);
	fputs("</text>\n<g transform=\"translate(10,0)\">\n", f);
	if (t->n[0].total)
		svg_node(f, t, 0, 0, 0, (double)t->n[0].total, depth);
	else
		fputs("<text x=\"0\" y=\"60\">no memory for this metric</text>\n", f);
	fputs("</g>\n</svg>\n", f);
}

static void json_tree(FILE *f, const struct ftree *t, uint32_t id)
{
	const struct fnode *n = &t->n[id];
	fputs("{\"n\":", f);
	json_str(f, n->name);
	char kinds[160];
	fprintf(f, ",\"v\":%" PRIu64 ",\"p\":%d,\"k\":", n->total, n->python);
	json_str(f, kinds_text(n, kinds));
	if (t->sample_interval) /* the 95% interval's half width, its samples
				 * (none: exact, as sample_pm says) */
		fprintf(f, ",\"e\":%" PRIu64 ",\"s\":%" PRIu64,
			n->var < 1 ? 0 : sample_clamp(sample_half95(n->var)),
			n->var < 1 ? 0 : n->samples);
	if (n->nkids) {
		fputs(",\"c\":[", f);
		for (size_t i = 0; i < n->nkids; i++) {
			if (i)
				fputc(',', f);
			json_tree(f, t, n->kids[i]);
		}
		fputc(']', f);
	}
	fputc('}', f);
}

/* The page: a canvas-free flame graph of absolutely placed divs; names reach
 * the DOM through textContent and title only. The root is at the top (an
 * icicle), so the first view shows the root and the widest frames, not the
 * tips of deep import stacks. A click zooms
 * to a frame: its ancestors stay above it as single full-width bars (the
 * way back), its subtree fills the width below. The search colours every
 * match and counts the bytes of the outermost matches only (a frame under
 * a matched frame is in that frame's bytes already). */
static const char html_style[] =
	"</title>\n<style>\n"
	"body{font:12px monospace;margin:10px;background:#fff;color:#222}\n"
	"#bar{margin:6px 0}#bar input{width:320px}#chart{position:relative;width:100%}\n"
	".f{position:absolute;height:16px;overflow:hidden;white-space:nowrap;box-sizing:border-box;"
	"border:1px solid #fff;padding:0 3px;cursor:pointer;line-height:15px}\n"
	".py{background:#7cbf7c}.nat{background:#e8a05a}.root{background:#ccc}.anc{opacity:.55}"
	".f.hit{background:#e060e0}\n"
	"#info{min-height:1.3em;margin:6px 0}\n</style></head><body>\n<h3 id=\"title\"></h3>\n"
	"<div id=\"bar\"><input id=\"search\" placeholder=\"search (regular expression)\"> "
	"<button id=\"reset\">reset zoom</button> <span id=\"matched\"></span></div>\n"
	"<div id=\"info\">click a frame to zoom (the frames above it lead back), hover for the full frame</div>\n"
	"<div id=\"chart\"></div>\n<script type=\"application/json\" id=\"data\">";
static const char html_tail[] =
	"</script>\n<script>\n"
	"(function(){\n"
	"var doc=JSON.parse(document.getElementById('data').textContent);\n"
	"document.title=doc.title;document.getElementById('title').textContent=doc.title;\n"
	"var chart=document.getElementById('chart'),info=document.getElementById('info'),"
	"matched=document.getElementById('matched');\n"
	"var root=doc.tree,zoom=root,re=null,ROW=17;\n"
	/* parents and heights once, without recursion (stacks are deep) */
	"(function(){var st=[root];root.up=null;var order=[];while(st.length){var n=st.pop();order.push(n);"
	"(n.c||[]).forEach(function(k){k.up=n;st.push(k)})}"
	"for(var i=order.length-1;i>=0;i--){var n=order[i];n.h=0;(n.c||[]).forEach(function(k){"
	"if(k.h+1>n.h)n.h=k.h+1})}})();\n"
	"function size(v){var u=['B','KiB','MiB','GiB','TiB'],i=0;while(v>=1024&&i<4){v/=1024;i++}"
	"return (i?v.toFixed(1):v)+' '+u[i]}\n"
	/* a sampled trace: each frame's 95% interval (e: half width, s: samples) */
	"function pm(e,s,v){if(!doc.sample_interval)return '';if(!e&&!s&&v)return ' exact';"
	"return ' \\u00b1 '+size(e)+' ('+s+' sample'+(s==1?'':'s')+(s<5?', unreliable':'')+')'}\n"
	"function bar(n,x,w,d,cls){var e=document.createElement('div');\n"
	"e.className='f '+(n===root?'root':n.p?'py':'nat')+(cls||'')+(re&&n!==root&&re.test(n.n)?' hit':'');\n"
	"e.style.left=x+'px';e.style.width=w+'px';e.style.top=(d*ROW)+'px';\n"
	"e.textContent=n.n;e.title=n.n+'\\n'+size(n.v)+pm(n.e,n.s,n.v)+' ('+(100*n.v/root.v).toFixed(1)+'%), '+n.k;\n"
	"e.onclick=function(){zoom=n;draw()};e.onmouseover=function(){info.textContent=e.title.replace('\\n',' \\u2014 ')};\n"
	"chart.appendChild(e)}\n"
	"function place(n,x,w,d){if(w<1)return;bar(n,x,w,d);var cx=x;"
	"(n.c||[]).forEach(function(k){var kw=w*k.v/n.v;place(k,cx,kw,d+1);cx+=kw})}\n"
	/* the outermost matches' bytes, below the root */
	"function hits(){var s=0,e2=0,m=0,st=(root.c||[]).slice();while(st.length){var n=st.pop();"
	"if(re.test(n.n)){s+=n.v;e2+=(n.e||0)*(n.e||0);m+=n.s||0}else(n.c||[]).forEach(function(k){st.push(k)})}"
	"return {v:s,e:Math.sqrt(e2),s:m}}\n"
	"function draw(){chart.textContent='';var W=chart.clientWidth||1000,anc=[];\n"
	"for(var p=zoom.up;p;p=p.up)anc.unshift(p);\n"
	"anc.forEach(function(n,i){bar(n,0,W,i,' anc')});\n"
	"place(zoom,0,W,anc.length);\n"
	"chart.style.height=((anc.length+zoom.h+1)*ROW+4)+'px';\n"
	"if(re){var h=hits();matched.setAttribute('data-bytes',h.v);matched.textContent='matched '+size(h.v)+"
	"pm(Math.round(h.e),h.s,h.v)+' of '+size(root.v)+' ('+(root.v?100*h.v/root.v:0).toFixed(1)+'%)'}"
	"else{matched.removeAttribute('data-bytes');matched.textContent=''}}\n"
	"document.getElementById('search').oninput=function(){var v=this.value;"
	"try{re=v?new RegExp(v):null}catch(e){re=null}draw()};\n"
	"document.getElementById('reset').onclick=function(){zoom=root;draw()};\n"
	"window.onresize=draw;draw();\n"
	"})();\n</script>\n</body></html>\n";

bool report_flame(FILE *f, const struct analysis *a, struct symbolizer *s,
		  enum flame_metric metric, enum flame_format format, const char *title)
{
	struct flame_proc one = {a, s, ""};
	return report_flame_procs(f, &one, 1, metric, format, title);
}

bool report_flame_procs(FILE *f, const struct flame_proc *procs, size_t n,
			enum flame_metric metric, enum flame_format format, const char *title)
{
	struct ftree t = {0};
	build(&t, procs, n, metric);
	sort_kids(&t);
	if (format == FLAME_FOLDED) {
		char *path = xmalloc(1 << 20);
		folded(f, &t, 0, path, 0, 1 << 20);
		free(path);
	} else if (format == FLAME_SVG) {
		svg(f, &t, title);
	} else {
		fputs(report_html_head, f);
		xml_text(f, title);
		fputs(html_style, f);
		fputs("{\"version\":1,\"title\":", f);
		json_str(f, title);
		if (t.sample_interval)
			fprintf(f, ",\"sample_interval\":%" PRIu64, t.sample_interval);
		fputs(",\"tree\":", f);
		json_tree(f, &t, 0);
		fputs("}", f);
		fputs(html_tail, f);
	}
	tree_free(&t);
	return !ferror(f);
}
