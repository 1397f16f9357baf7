/* Subcommands of the heapwise CLI (analyzer, front). Each returns the
 * process exit code: 0 success, 1 a gate failed, 2 usage or unreadable input. */
#ifndef HW_ANALYZER_COMMANDS_H
#define HW_ANALYZER_COMMANDS_H

int cmd_run(int argc, char **argv);
int cmd_summary(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_leaks(int argc, char **argv);
int cmd_dump(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_flamegraph(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_timeline(int argc, char **argv);
int cmd_compress(int argc, char **argv);
int cmd_lines(int argc, char **argv);
int cmd_follow(int argc, char **argv);

#include <stdbool.h>
#include <stdint.h>
struct trace;
struct analysis;
/* check --between's limits on an analysis of one window (gate.c): prints
 * check's report; 0 pass, 1 fail, 2 cannot judge (heapwise follow). */
int check_window(struct trace *t, struct analysis *a, bool peak, uint64_t max_peak, bool leaked,
		 uint64_t max_leaked);

#endif
