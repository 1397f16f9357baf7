/* Timelines (analyzer, aggregation + reports stages): live heap bytes over
 * time for the top callsites (by their bytes at the heap's peak), the rest as
 * "other", and the process's RSS beside them. Each value is the highest live
 * byte count of its series within its interval, so a short-lived spike is
 * never averaged away, and the fall after it shows in the next interval.
 * Two replays: the first picks the callsites, the second records them. */
#include "report_timeline.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "util.h"

#define BUCKETS 400
#define MAX_FRAMES 1024

struct series {
	uint32_t canon; /* canonical stack */
	bool other; /* the rest of the heap */
	uint64_t peak;
	uint64_t cur;
	uint64_t *max; /* per bucket */
	struct frame_info *frames;
	size_t nframes;
};

struct timeline {
	struct series *s;
	size_t n; /* tracked series; s[n] is "other" */
	int32_t *site_series; /* site index -> series (-1: other) */
	uint64_t *site_live; /* last live bytes seen per site */
	size_t nsites;
	uint64_t duration_ns;
	size_t bucket; /* current bucket */
	uint64_t heap_cur, tracked_cur;
	uint64_t *rss;
};

static size_t bucket_of(const struct timeline *tl, uint64_t t)
{
	if (!tl->duration_ns)
		return 0;
	uint64_t b = t >= tl->duration_ns ? BUCKETS - 1 : t * BUCKETS / tl->duration_ns;
	return b >= BUCKETS ? BUCKETS - 1 : (size_t)b;
}

/* Moves to bucket b: the buckets passed over start at the current values. */
static void advance(struct timeline *tl, size_t b)
{
	while (tl->bucket < b) {
		tl->bucket++;
		for (size_t i = 0; i <= tl->n; i++)
			tl->s[i].max[tl->bucket] = tl->s[i].cur;
	}
}

static void on_change(void *ctx, const struct analysis *a, size_t site, uint64_t time_ns)
{
	struct timeline *tl = ctx;
	const struct site *st = &a->sites[site];
	if (st->cls != CLASS_HEAP)
		return;
	size_t b = bucket_of(tl, time_ns);
	if (b > tl->bucket)
		advance(tl, b);
	int32_t k = site < tl->nsites ? tl->site_series[site] : -1;
	uint64_t heap = a->peaks[CLASS_HEAP].live;
	if (k >= 0) {
		/* unsigned wrap-around makes a fall a negative delta */
		uint64_t delta = st->live_bytes - tl->site_live[site];
		tl->site_live[site] = st->live_bytes;
		struct series *sr = &tl->s[k];
		sr->cur += delta;
		tl->tracked_cur += delta;
		if (sr->cur > sr->max[tl->bucket])
			sr->max[tl->bucket] = sr->cur;
	}
	struct series *other = &tl->s[tl->n];
	other->cur = heap > tl->tracked_cur ? heap - tl->tracked_cur : 0;
	if (other->cur > other->max[tl->bucket])
		other->max[tl->bucket] = other->cur;
}

static int cmp_series(const void *x, const void *y)
{
	const struct series *a = x, *b = y;
	if (a->peak != b->peak)
		return a->peak > b->peak ? -1 : 1;
	return a->canon < b->canon ? -1 : a->canon > b->canon;
}

static void label(FILE *f, const struct series *s)
{
	if (!s->nframes) {
		fputs(s->other ? "other" : "(no stack recorded)", f);
		return;
	}
	size_t py = report_first_python(s->frames, s->nframes);
	report_frame_text(f, &s->frames[py < s->nframes ? py : 0]);
}

static char *label_text(const struct series *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	label(f, s);
	fclose(f);
	return buf;
}

static void write_json(FILE *f, const struct timeline *tl, double step)
{
	fputs("{\"version\":1,\"times_s\":[", f);
	for (size_t b = 0; b < BUCKETS; b++)
		fprintf(f, "%s%.6f", b ? "," : "", (double)b * step);
	fputs("],\"rss_bytes\":[", f);
	for (size_t b = 0; b < BUCKETS; b++)
		fprintf(f, "%s%" PRIu64, b ? "," : "", tl->rss[b]);
	fputs("],\"series\":[", f);
	for (size_t i = 0; i <= tl->n; i++) {
		const struct series *s = &tl->s[i];
		fprintf(f, "%s\n{\"callsite\":{\"frames\":", i ? "," : "");
		report_frames_json(f, s->frames, s->nframes);
		if (i == tl->n)
			fputs(",\"other\":true", f);
		fputs("},\"live_bytes\":[", f);
		for (size_t b = 0; b < BUCKETS; b++)
			fprintf(f, "%s%" PRIu64, b ? "," : "", s->max[b]);
		fputs("]}", f);
	}
	fputs("]}\n", f);
}

static void write_csv(FILE *f, const struct timeline *tl, double step)
{
	fputs("time_s,rss_bytes", f);
	for (size_t i = 0; i <= tl->n; i++) {
		char *l = label_text(&tl->s[i]);
		fputc(',', f);
		csv_cell(f, l);
		free(l);
	}
	fputc('\n', f);
	for (size_t b = 0; b < BUCKETS; b++) {
		fprintf(f, "%.6f,%" PRIu64, (double)b * step, tl->rss[b]);
		for (size_t i = 0; i <= tl->n; i++)
			fprintf(f, ",%" PRIu64, tl->s[i].max[b]);
		fputc('\n', f);
	}
}

static const char *const palette[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
				       "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};

static void write_svg(FILE *f, const struct timeline *tl, double step, const char *title)
{
	const double W = 1000, H = 360, L = 70, T = 40;
	uint64_t top = 1;
	for (size_t b = 0; b < BUCKETS; b++) {
		uint64_t sum = 0;
		for (size_t i = 0; i <= tl->n; i++)
			sum += tl->s[i].max[b];
		if (sum > top)
			top = sum;
		if (tl->rss[b] > top)
			top = tl->rss[b];
	}
	double legend = 22.0 * (double)(tl->n + 2);
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
		   "font-family=\"sans-serif\" font-size=\"12\">\n"
		   "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n<text x=\"%.0f\" y=\"24\" font-size=\"15\">",
		W + L + 20, H + T + 50 + legend, L);
	xml_text(f, title);
	fputs("</text>\n", f);
	/* stacked areas, from "other" at the bottom up */
	double *base = xcalloc(BUCKETS, sizeof(double));
	for (size_t k = tl->n + 1; k-- > 0;) {
		const struct series *s = &tl->s[k];
		fprintf(f, "<polygon fill=\"%s\" fill-opacity=\"0.85\" points=\"",
			k == tl->n ? "#cccccc" : palette[k % 10]);
		for (size_t b = 0; b < BUCKETS; b++) {
			double y = base[b] + (double)s->max[b];
			fprintf(f, "%.1f,%.1f ", L + W * (double)b / (BUCKETS - 1), T + H - H * y / (double)top);
		}
		for (size_t b = BUCKETS; b-- > 0;)
			fprintf(f, "%.1f,%.1f ", L + W * (double)b / (BUCKETS - 1),
				T + H - H * base[b] / (double)top);
		fputs("\"><title>", f);
		char *l = label_text(s);
		xml_text(f, l);
		free(l);
		fputs("</title></polygon>\n", f);
		for (size_t b = 0; b < BUCKETS; b++)
			base[b] += (double)s->max[b];
	}
	free(base);
	fputs("<polyline fill=\"none\" stroke=\"#000\" stroke-width=\"1.5\" points=\"", f);
	for (size_t b = 0; b < BUCKETS; b++)
		fprintf(f, "%.1f,%.1f ", L + W * (double)b / (BUCKETS - 1),
			T + H - H * (double)tl->rss[b] / (double)top);
	fputs("\"><title>RSS</title></polyline>\n", f);
	char b1[32];
	fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#444\"/>\n", L, T + H,
		L + W, T + H);
	fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">%s</text>\n", L - 4, T + 10,
		fmt_size(b1, top));
	fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">0</text>\n", L - 4, T + H);
	fprintf(f, "<text x=\"%.0f\" y=\"%.0f\">0 s</text>\n", L, T + H + 16);
	fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\">%.3f s</text>\n", L + W, T + H + 16,
		step * BUCKETS);
	double y = T + H + 40;
	fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#000\" stroke-width=\"2\"/>"
		   "<text x=\"%.0f\" y=\"%.0f\">RSS</text>\n",
		L, y - 4, L + 14, y - 4, L + 20, y);
	for (size_t k = 0; k <= tl->n; k++) {
		y += 22;
		fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"14\" height=\"12\" fill=\"%s\"/><text x=\"%.0f\" y=\"%.0f\">",
			L, y - 11, k == tl->n ? "#cccccc" : palette[k % 10], L + 20, y);
		char *l = label_text(&tl->s[k]);
		xml_text(f, l);
		free(l);
		fputs("</text>\n", f);
	}
	fputs("</svg>\n", f);
}

/* The page: the JSON document in a data block, drawn as SVG by a small
 * script. Names reach the DOM only through textContent. */
static const char html_mid[] =
	"</title>\n<style>body{font:13px sans-serif;margin:12px;color:#222}#chart{width:100%;"
	"user-select:none}#info{min-height:3em;font:12px monospace;white-space:pre}"
	"#legend div{margin:2px 0}#legend span{display:inline-block;width:12px;height:12px;"
	"margin-right:6px;vertical-align:middle}</style></head><body>\n<h3 id=\"title\"></h3>\n"
	"<div>drag to zoom into a time window, double-click to zoom out "
	"<button id=\"reset\">reset</button></div>\n<div id=\"chart\"></div>\n"
	"<div id=\"info\"></div>\n<div id=\"legend\"></div>\n"
	"<script type=\"application/json\" id=\"data\">";
static const char html_tail[] =
	"</script>\n<script>\n(function(){\n"
	"var d=JSON.parse(document.getElementById('data').textContent);\n"
	"var T=d.times_s,S=d.series,R=d.rss_bytes,N=T.length,lo=0,hi=N-1,NS='http://www.w3.org/2000/svg';\n"
	"document.title=d.title;document.getElementById('title').textContent=d.title;\n"
	"var C=['#4e79a7','#f28e2b','#59a14f','#e15759','#76b7b2','#edc948','#b07aa1','#ff9da7','#9c755f','#bab0ac'];\n"
	"function col(k){return S[k].callsite.other?'#ccc':C[k%10]}\n"
	"function lab(s){if(s.callsite.other)return 'other';var f=s.callsite.frames;"
	"if(!f.length)return '(no stack recorded)';var p=f.filter(function(x){return x.kind==='python'})[0]||f[0];"
	"if(p.kind==='python')return p.file+':'+p.line+' '+p.function;"
	"return (p.function||'?\x3f')+' ('+(p.file?p.file+':'+p.line+', ':'')+(p.module||p.address||'?\x3f')+')'}\n"
	"function size(v){var u=['B','KiB','MiB','GiB','TiB'],i=0;while(v>=1024&&i<4){v/=1024;i++}"
	"return (i?v.toFixed(1):v)+' '+u[i]}\n"
	"var box=document.getElementById('chart'),info=document.getElementById('info'),down=-1;\n"
	"function el(n,a){var e=document.createElementNS(NS,n);for(var k in a)e.setAttribute(k,a[k]);return e}\n"
	"function draw(){box.textContent='';var W=box.clientWidth||1000,H=340,top=1,i,k;\n"
	"for(i=lo;i<=hi;i++){var s=0;for(k=0;k<S.length;k++)s+=S[k].live_bytes[i];top=Math.max(top,s,R[i])}\n"
	"var X=function(i){return (i-lo)/Math.max(1,hi-lo)*W},Y=function(v){return H-H*v/top};\n"
	"var svg=el('svg',{width:W,height:H+18}),base=[];for(i=0;i<N;i++)base.push(0);\n"
	"for(k=S.length-1;k>=0;k--){var pts=[];for(i=lo;i<=hi;i++)pts.push(X(i)+','+Y(base[i]+S[k].live_bytes[i]));"
	"for(i=hi;i>=lo;i--)pts.push(X(i)+','+Y(base[i]));var p=el('polygon',{points:pts.join(' '),fill:col(k),'fill-opacity':0.85});"
	"var t=el('title',{});t.textContent=lab(S[k]);p.appendChild(t);svg.appendChild(p);"
	"for(i=lo;i<=hi;i++)base[i]+=S[k].live_bytes[i]}\n"
	"var r=[];for(i=lo;i<=hi;i++)r.push(X(i)+','+Y(R[i]));"
	"svg.appendChild(el('polyline',{points:r.join(' '),fill:'none',stroke:'#000','stroke-width':1.5}));\n"
	"var t0=el('text',{x:2,y:H+14});t0.textContent=T[lo].toFixed(3)+' s';svg.appendChild(t0);\n"
	"var t1=el('text',{x:W-2,y:H+14,'text-anchor':'end'});t1.textContent=T[hi].toFixed(3)+' s';svg.appendChild(t1);\n"
	"var t2=el('text',{x:2,y:12});t2.textContent=size(top);svg.appendChild(t2);\n"
	"var cur=el('line',{y1:0,y2:H,stroke:'#888'});svg.appendChild(cur);\n"
	"function at(ev){var b=svg.getBoundingClientRect();return Math.round(lo+(ev.clientX-b.left)/W*(hi-lo))}\n"
	"svg.onmousemove=function(ev){var i=Math.max(lo,Math.min(hi,at(ev)));cur.setAttribute('x1',X(i));cur.setAttribute('x2',X(i));"
	"var s=T[i].toFixed(3)+' s   RSS '+size(R[i]);for(var k=0;k<S.length;k++)if(S[k].live_bytes[i])s+='\\n'+size(S[k].live_bytes[i])+'  '+lab(S[k]);"
	"info.textContent=s};\n"
	"svg.onmousedown=function(ev){down=at(ev)};svg.onmouseup=function(ev){var u=at(ev);"
	"if(down>=0&&Math.abs(u-down)>1){lo=Math.max(0,Math.min(down,u));hi=Math.min(N-1,Math.max(down,u));draw()}down=-1};\n"
	"svg.ondblclick=function(){lo=0;hi=N-1;draw()};box.appendChild(svg)}\n"
	"var lg=document.getElementById('legend');var d0=document.createElement('div');d0.textContent='\\u2014 RSS';lg.appendChild(d0);\n"
	"S.forEach(function(s,k){var e=document.createElement('div'),c=document.createElement('span');"
	"c.style.background=col(k);e.appendChild(c);e.appendChild(document.createTextNode(lab(s)));lg.appendChild(e)});\n"
	"document.getElementById('reset').onclick=function(){lo=0;hi=N-1;draw()};window.onresize=draw;draw();\n"
	"})();\n</script>\n</body></html>\n";

static void write_html(FILE *f, const struct timeline *tl, double step, const char *title)
{
	fputs(report_html_head, f);
	xml_text(f, title);
	fputs(html_mid, f);
	/* the JSON document, with the title added in front */
	char *doc = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&doc, &len);
	write_json(m, tl, step);
	fclose(m);
	fputs("{\"title\":", f);
	json_str(f, title);
	fputc(',', f);
	fwrite(doc + 1, 1, len > 3 ? len - 3 : 0, f); /* without its braces and newline */
	fputs("}", f);
	free(doc);
	fputs(html_tail, f);
}

enum hw_err report_timeline(FILE *f, struct trace *t, const struct analysis_opts *opts,
			    size_t n, enum timeline_format fmt, const char *title)
{
	struct analysis a;
	enum hw_err rc = analysis_run(&a, t, opts);
	if (rc != HW_OK) {
		analysis_free(&a);
		return rc;
	}
	/* pass 1: the callsites with the most bytes at the peak */
	struct series *all = xcalloc(a.nsites + 1, sizeof(*all));
	size_t nall = 0;
	int32_t *site_series = xmalloc((a.nsites + 1) * sizeof(*site_series));
	for (size_t i = 0; i < a.nsites; i++) {
		site_series[i] = -1;
		if (a.sites[i].cls != CLASS_HEAP)
			continue;
		uint32_t canon = stack_table_canon(&a.st, a.sites[i].raw_stack);
		size_t k;
		for (k = 0; k < nall && all[k].canon != canon; k++)
			;
		if (k == nall)
			all[nall++].canon = canon;
		all[k].peak += site_peak_bytes(&a, &a.sites[i]);
	}
	qsort(all, nall, sizeof(*all), cmp_series);
	if (n > nall)
		n = nall;
	struct timeline tl = {0};
	tl.n = n;
	tl.s = xcalloc(n + 1, sizeof(*tl.s));
	struct symbolizer *s = symbolizer_new(&a);
	struct frame_info *tmp = xmalloc(MAX_FRAMES * sizeof(*tmp));
	for (size_t k = 0; k < n; k++) {
		tl.s[k] = all[k];
		for (size_t i = 0; i < a.nsites; i++)
			if (a.sites[i].cls == CLASS_HEAP &&
			    stack_table_canon(&a.st, a.sites[i].raw_stack) == all[k].canon) {
				site_series[i] = (int32_t)k;
				if (!tl.s[k].frames) { /* the first site of the callsite names it */
					size_t nf = report_stack_frames(&a, s, a.sites[i].raw_stack, tmp,
									MAX_FRAMES);
					tl.s[k].frames = xmalloc((nf + 1) * sizeof(*tmp));
					memcpy(tl.s[k].frames, tmp, nf * sizeof(*tmp));
					tl.s[k].nframes = nf;
					for (size_t j = 0; j < nf; j++) /* all in the output */
						symbolizer_shown(s, &tmp[j]);
				}
			}
	}
	tl.s[n].canon = HW_NO_NODE;
	tl.s[n].other = true;
	free(tmp);
	report_stack_frames_done();
	free(all);
	tl.site_series = site_series;
	tl.site_live = xcalloc(a.nsites + 1, sizeof(uint64_t));
	tl.nsites = a.nsites;
	tl.duration_ns = a.end_time_ns + 1;
	for (size_t i = 0; i <= n; i++)
		tl.s[i].max = xcalloc(BUCKETS, sizeof(uint64_t));
	tl.rss = xcalloc(BUCKETS, sizeof(uint64_t));
	for (size_t i = 0; i < a.nrss; i++) {
		size_t b = bucket_of(&tl, a.rss[i].time_ns);
		if (a.rss[i].rss > tl.rss[b])
			tl.rss[b] = a.rss[i].rss;
	}
	for (size_t b = 1; b < BUCKETS; b++) /* carry the last sample forward */
		if (!tl.rss[b])
			tl.rss[b] = tl.rss[b - 1];

	/* pass 2: the same replay, recording the series */
	struct analysis_opts o2 = *opts;
	o2.hook = on_change;
	o2.hook_ctx = &tl;
	struct analysis a2;
	rc = analysis_run(&a2, t, &o2);
	if (rc == HW_OK) {
		advance(&tl, BUCKETS - 1);
		double step = (double)tl.duration_ns / 1e9 / BUCKETS;
		if (fmt == TIMELINE_JSON)
			write_json(f, &tl, step);
		else if (fmt == TIMELINE_CSV)
			write_csv(f, &tl, step);
		else if (fmt == TIMELINE_HTML)
			write_html(f, &tl, step, title);
		else
			write_svg(f, &tl, step, title);
		if (ferror(f))
			rc = HW_ERR_OUTPUT;
	}
	analysis_free(&a2);
	for (size_t i = 0; i <= n; i++) {
		free(tl.s[i].max);
		free(tl.s[i].frames);
	}
	free(tl.s);
	free(tl.rss);
	free(site_series);
	free(tl.site_live);
	symbolizer_print_hints(s);
	symbolizer_free(s);
	analysis_free(&a);
	return rc;
}
