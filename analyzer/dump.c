/* `heapwise dump` (analyzer): every record of every chunk as text, in file
 * order, for debugging traces and the shim. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "commands.h"
#include "err.h"
#include "heapwise/trace_format.h"
#include "reader.h"
#include "util.h"

static const char *kind_str(int k)
{
	static const char *const n[] = {"malloc", "mmap", "mmap-file", "pymem", "pyobj"};
	return k < HW_KIND_COUNT ? n[k] : "?";
}

static void dump_record(FILE *f, const struct hw_record *r)
{
	switch (r->tag) {
	case HW_REC_ALLOC: /* a short form says so at the end: "ALLOC kind" stays greppable */
		fprintf(f, "  ALLOC %s seq=%" PRIu64 " addr=0x%" PRIx64 " size=%" PRIu64 " stack=%u%s\n",
			kind_str(r->kind), r->seq, r->addr, r->size, r->stack,
			r->raw_tag == HW_REC_ALLOC_NEXT ? " (ALLOC_NEXT)" : "");
		break;
	case HW_REC_FREE:
		fprintf(f, "  FREE %s seq=%" PRIu64 " addr=0x%" PRIx64 "%s\n", kind_str(r->kind), r->seq,
			r->addr, r->raw_tag == HW_REC_FREE_NEXT ? " (FREE_NEXT)" : "");
		break;
	case HW_REC_REALLOC:
		fprintf(f,
			"  REALLOC %s seq=%" PRIu64 "/%" PRIu64 " old=0x%" PRIx64 " new=0x%" PRIx64
			" size=%" PRIu64 " stack=%u\n",
			kind_str(r->kind), r->seq, r->seq2, r->addr, r->addr2, r->size, r->stack);
		break;
	case HW_REC_UNMAP:
		fprintf(f, "  UNMAP seq=%" PRIu64 " addr=0x%" PRIx64 " len=%" PRIu64 "\n", r->seq,
			r->addr, r->size);
		break;
	case HW_REC_REMAP:
		fprintf(f,
			"  REMAP seq=%" PRIu64 "/%" PRIu64 " old=0x%" PRIx64 "+%" PRIu64 " new=0x%" PRIx64
			"+%" PRIu64 " stack=%u\n",
			r->seq, r->seq2, r->addr, r->size, r->addr2, r->size2, r->stack);
		break;
	case HW_REC_RETAG:
		fprintf(f, "  RETAG seq=%" PRIu64 " addr=0x%" PRIx64 " stack=%u\n", r->seq, r->addr,
			r->stack);
		break;
	case HW_REC_MARK: {
		char *label = xstrndup(r->name, r->name_len);
		fprintf(f, "  MARK seq=%" PRIu64 " %s ", r->seq, mark_kind_name(r->kind));
		json_str(f, label);
		fputc('\n', f);
		free(label);
		break;
	}
	case HW_REC_STACK:
		if (r->frame_kind == HW_FRAME_PYTHON)
			fprintf(f, "  STACK id=%" PRIu64 " parent=%" PRIu64 " python code=%" PRIu64
				   " instr=%" PRId64 "\n",
				r->id, r->parent, r->frame >> 32, (int64_t)(r->frame & 0xffffffffu) - 1);
		else
			fprintf(f, "  STACK id=%" PRIu64 " parent=%" PRIu64 " native 0x%" PRIx64 "\n",
				r->id, r->parent, r->frame);
		break;
	case HW_REC_MODULE:
		fprintf(f,
			"  MODULE seq=%" PRIu64 " bias=0x%" PRIx64 " range=0x%" PRIx64 "-0x%" PRIx64
			" build-id=",
			r->seq, r->bias, r->lo, r->hi);
		for (size_t i = 0; i < r->build_id_len; i++)
			fprintf(f, "%02x", r->build_id[i]);
		fputs(" path=", f);
		{
			char *p = xstrndup(r->path, r->path_len);
			json_str(f, p);
			free(p);
		}
		fputc('\n', f);
		break;
	case HW_REC_MODULE_UNLOAD:
		fprintf(f, "  MODULE_UNLOAD seq=%" PRIu64 " bias=0x%" PRIx64 " lo=0x%" PRIx64 "\n",
			r->seq, r->bias, r->lo);
		break;
	case HW_REC_CODE: {
		char *file = xstrndup(r->path, r->path_len), *name = xstrndup(r->name, r->name_len);
		fprintf(f, "  CODE id=%" PRIu64 " first_line=%" PRIu64 " file=", r->id, r->frame);
		json_str(f, file);
		fputs(" name=", f);
		json_str(f, name);
		fprintf(f, " linetable=%zu bytes\n", r->blob_len);
		free(file);
		free(name);
		break;
	}
	case HW_REC_PYTHON:
		fprintf(f, "  PYTHON seq=%" PRIu64 " version=%" PRIu64 ".%" PRIu64 ".%" PRIu64
			   " frames=%s\n",
			r->seq, r->version >> 24 & 0xff, r->version >> 16 & 0xff, r->version >> 8 & 0xff,
			r->frames_ok ? "yes" : "no");
		break;
	case HW_REC_PYTHON_INFO: {
		char *layout = xstrndup(r->path, r->path_len), *why = xstrndup(r->name, r->name_len);
		fprintf(f, "  PYTHON_INFO flags=0x%" PRIx64 " layout=", r->flags);
		json_str(f, layout);
		fputs(" reason=", f);
		json_str(f, why);
		fputc('\n', f);
		free(layout);
		free(why);
		break;
	}
	case HW_REC_TIME:
		fprintf(f, "  TIME %.6f s\n", (double)r->time_ns / 1e9);
		break;
	case HW_REC_RSS:
		fprintf(f, "  RSS %.6f s %" PRIu64 " bytes\n", (double)r->time_ns / 1e9, r->rss);
		break;
	case HW_REC_TRAILER:
		fprintf(f, "  TRAILER seq=%" PRIu64 " %.6f s allocs=%" PRIu64 " frees=%" PRIu64 "\n",
			r->seq, (double)r->time_ns / 1e9, r->allocs, r->frees);
		break;
	case HW_REC_THREAD:
		fprintf(f, "  THREAD %" PRIu64 " tid=%" PRIu64 "\n", r->id, r->os_tid);
		break;
	case HW_REC_SAMPLE:
		fprintf(f, "  SAMPLE seq=%" PRIu64 " interval=%" PRIu64 " bytes\n", r->seq, r->size);
		break;
	default:
		fprintf(f, "  ? tag 0x%02x\n", r->tag);
	}
}

static const char dump_usage[] =
	"usage: heapwise dump TRACE [--sysroot DIR]\n"
	"  prints every record of the trace as text, addresses as recorded\n"
	"  --sysroot DIR  taken as every command takes it; dump names no frame, so\n"
	"                 it reads nothing there\n";

int cmd_dump(int argc, char **argv)
{
	static const struct option opts[] = {
		{"sysroot", required_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'},
		{0, 0, 0, 0},
	};
	int c;
	optind = 1;
	while ((c = err_getopt("dump", argc, argv, "h", opts)) != -1) {
		switch (c) {
		case 'S': /* nothing to name: records are printed as written */
			break;
		case 'h':
			fputs(dump_usage, stdout);
			return 0;
		default:
			fputs(dump_usage, stderr);
			return 2;
		}
	}
	if (argc - optind != 1) {
		err_print("dump: expected one trace");
		fputs(dump_usage, stderr);
		return 2;
	}
	struct trace t;
	if (trace_open(argv[optind], &t) != HW_OK) {
		trace_close(&t);
		return 2;
	}
	const struct hw_file_header *h = &t.hdr;
	printf("header: format %u, pid %" PRIu64 ", parent %" PRIu64 ", chunk size %u, flags 0x%x\n",
	       h->version, h->pid, h->ppid, h->chunk_size, h->flags);
	printf("command: ");
	json_str(stdout, t.cmdline);
	printf("\nexecutable: ");
	json_str(stdout, t.exe);
	char stop[400]; /* the stop record, only when recording stopped early */
	if (trace_stop_note(&t, stop, sizeof(stop)))
		printf("\nstop: reason %u (%s), value %" PRIu64 ", pid %" PRIu64 ": %s", t.stop.reason,
		       trace_stop_code(&t), t.stop.value, t.stop.pid, stop);
	printf("\nchunks: %zu\n", t.nchunks);
	for (size_t i = 0; i < t.nchunks; i++) {
		const struct chunk_ref *c = &t.chunks[i];
		printf("chunk at %" PRIu64 ": thread %u, #%u, %u bytes", c->offset, c->thread, c->index,
		       c->used);
		if (c->zlen)
			printf(" (%u compressed%s)", c->zlen, c->gk	 ? " in a group of chunks"
							       : c->cols ? " in columns"
									 : "");
		putchar('\n');
		struct cursor cur;
		struct hw_record r;
		cursor_init(&cur, &t, i);
		enum read_result res;
		while ((res = cursor_next(&cur, &r)) == READ_RECORD)
			dump_record(stdout, &r);
		if (res == READ_BAD)
			printf("  (damaged record at offset %" PRIu64 ")\n", cursor_offset(&cur));
		cursor_done(&cur);
	}
	trace_close(&t);
	return 0;
}
