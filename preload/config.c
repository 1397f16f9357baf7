/* Reads and validates the HEAPWISE_* environment once, at start (shim, init
 * stage). Only getenv, strtoull and getcwd into a buffer: nothing here
 * allocates. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "heapwise/trace_format.h"
#include "log.h"

struct config g_config;

int config_parse_bool(const char *s)
{
	static const char *const yes[] = {"1", "yes", "true", "on"};
	static const char *const no[] = {"0", "no", "false", "off"};
	for (unsigned i = 0; i < 4; i++) {
		if (!strcasecmp(s, yes[i]))
			return 1;
		if (!strcasecmp(s, no[i]))
			return 0;
	}
	return -1;
}

static bool parse_uint(const char *name, const char *s, unsigned long long lo,
		       unsigned long long hi, unsigned long long *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < lo || v > hi) {
		log_line("%s=%s is invalid: expected a number from %llu to %llu; not tracing", name,
			 s, lo, hi);
		return false;
	}
	*out = v;
	return true;
}

bool config_parse_size(const char *s, uint64_t *out)
{
	if (*s < '0' || *s > '9')
		return false;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return false;
	unsigned shift = 0;
	if (*end) {
		const char *units = "KMGT";
		const char *u = strchr(units, *end & ~0x20);
		if (!u)
			return false;
		shift = 10 * (unsigned)(u - units + 1);
		end++;
		if (!strcasecmp(end, "iB") || !strcasecmp(end, "B"))
			end += strlen(end);
		if (*end)
			return false;
	}
	if (shift && v > (~0ull >> shift))
		return false;
	*out = v << shift;
	return true;
}

static bool read_bool(const char *name, bool *out)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return true;
	int v = config_parse_bool(s);
	if (v < 0) {
		log_line("%s=%s is invalid: expected 0 or 1; not tracing", name, s);
		return false;
	}
	*out = v;
	return true;
}

/* A cache's variable (HEAPWISE_STACK_CACHE, HEAPWISE_UNWIND_CACHE): 1 (the
 * default), 0 (*off) or check (*check). false: invalid, said in one line. */
static bool cache_mode(const char *name, bool *check, bool *off)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return true;
	if (!strcasecmp(s, "check")) {
		*check = true;
		return true;
	}
	int v = config_parse_bool(s);
	if (v < 0) {
		log_line("%s=%s is invalid: expected 1, 0 or check; not tracing", name, s);
		return false;
	}
	*off = !v;
	return true;
}

bool config_read(void)
{
	struct config c = {
		.native = NATIVE_AUTO,
		.depth = 64,
		.follow = true,
		.root_pid = 0,
		.chunk_size = HW_DEFAULT_CHUNK_SIZE,
		.min_free_bytes = HW_DEFAULT_MIN_FREE,
		.min_free_percent = HW_DEFAULT_MIN_FREE_PERCENT,
	};
	unsigned long long v;
	const char *s = getenv("HEAPWISE_OUTPUT");
	if (s && *s) {
		if (strlen(s) >= sizeof(c.output)) {
			log_line("HEAPWISE_OUTPUT is longer than %zu bytes; not tracing",
				 sizeof(c.output) - 1);
			return false;
		}
		strcpy(c.output, s);
	}
	if (!read_bool("HEAPWISE_FOLLOW", &c.follow))
		return false;
	s = getenv("HEAPWISE_NATIVE");
	if (s && *s) {
		int v = !strcasecmp(s, "auto")	  ? NATIVE_AUTO
			: !strcasecmp(s, "below") ? NATIVE_BELOW
						  : config_parse_bool(s);
		if (v < 0) {
			log_line("HEAPWISE_NATIVE=%s is invalid: expected 0, 1, auto or below; not tracing",
				 s);
			return false;
		}
		c.native = (enum native_mode)v;
	}
	if (!cache_mode("HEAPWISE_STACK_CACHE", &c.stack_check, &c.no_stack_cache) ||
	    !cache_mode("HEAPWISE_UNWIND_CACHE", &c.unwind_check, &c.no_unwind_cache))
		return false;
	s = getenv("HEAPWISE_DEPTH");
	if (s && *s) {
		if (!parse_uint("HEAPWISE_DEPTH", s, 1, HW_MAX_DEPTH, &v))
			return false;
		c.depth = (unsigned)v;
	}
	s = getenv("HEAPWISE_ROOT_PID");
	if (s && *s) {
		if (!parse_uint("HEAPWISE_ROOT_PID", s, 1, 1u << 30, &v))
			return false;
		c.root_pid = (long)v;
	}
	s = getenv("HEAPWISE_CHUNK_SIZE");
	if (s && *s) {
		if (!parse_uint("HEAPWISE_CHUNK_SIZE", s, HW_MIN_CHUNK_SIZE, HW_MAX_CHUNK_SIZE, &v))
			return false;
		if (v & (v - 1)) {
			log_line("HEAPWISE_CHUNK_SIZE=%s is invalid: expected a power of two; not tracing",
				 s);
			return false;
		}
		c.chunk_size = (uint32_t)v;
	}
	s = getenv("HEAPWISE_MANIFEST");
	if (s && *s) {
		if (s[0] != '/' || strlen(s) >= sizeof(c.manifest)) {
			log_line("HEAPWISE_MANIFEST=%s is invalid: expected an absolute path shorter than %zu bytes; not tracing",
				 s, sizeof(c.manifest));
			return false;
		}
		strcpy(c.manifest, s);
	}
	s = getenv("HEAPWISE_DIR");
	if (s && *s) {
		if (s[0] != '/' || strlen(s) >= sizeof(c.dir)) {
			log_line("HEAPWISE_DIR=%s is invalid: expected an absolute path shorter than %zu bytes; not tracing",
				 s, sizeof(c.dir));
			return false;
		}
		strcpy(c.dir, s);
	} else if (c.output[0] != '/') {
		if (!getcwd(c.dir, sizeof(c.dir))) {
			log_line("cannot tell the working directory (%s); not tracing", strerror(errno));
			return false;
		}
		c.dir_from_cwd = true;
	}
	s = getenv("HEAPWISE_MAX_SIZE");
	if (s && *s &&
	    (!config_parse_size(s, &c.max_size) ||
	     (c.max_size && c.max_size < (uint64_t)HW_HEADER_SIZE + c.chunk_size))) {
		log_line("HEAPWISE_MAX_SIZE=%s is invalid: expected 0 (no cap) or a size of at least the header and one chunk (%u bytes), such as 500M or 2G; not tracing",
			 s, HW_HEADER_SIZE + c.chunk_size);
		return false;
	}
	s = getenv("HEAPWISE_MIN_FREE");
	if (s && *s) {
		size_t len = strlen(s);
		c.min_free_bytes = 0;
		c.min_free_percent = 0;
		char num[8] = "x";
		if (len > 1 && len <= sizeof(num) && s[len - 1] == '%')
			memcpy(num, s, len - 1), num[len - 1] = 0;
		if (s[len - 1] == '%') {
			if (!parse_uint("HEAPWISE_MIN_FREE (percent)", num, 0, 100, &v))
				return false;
			c.min_free_percent = (uint32_t)v;
		} else if (!config_parse_size(s, &c.min_free_bytes)) {
			log_line("HEAPWISE_MIN_FREE=%s is invalid: expected a size such as 1G or a percentage such as 5%%; not tracing",
				 s);
			return false;
		}
	}
	s = getenv("HEAPWISE_SAMPLE");
	if (s && *s && (!config_parse_size(s, &c.sample) || c.sample > HW_SAMPLE_INTERVAL_MAX)) {
		log_line("HEAPWISE_SAMPLE=%s is invalid: expected 0 (every allocation) or a mean sampling interval of at most 1T, such as 512K; not tracing",
			 s);
		return false;
	}
	g_config = c;
	return true;
}
