/* `heapwise run` stands in for the command it runs (analyzer, front): signals
 * sent to run reach the command, the command's stops stop run, and run ends
 * the way the command ended. */
#ifndef HW_ANALYZER_RUN_CHILD_H
#define HW_ANALYZER_RUN_CHILD_H

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>

struct run_child {
	sigset_t orig_mask; /* run's mask as it was given: the command's */
	struct sigaction orig_chld; /* SIGCHLD's disposition as it was given */
	pid_t parent; /* run's pid */
};

/* Call before fork: blocks every signal run relays (all but SIGKILL and
 * SIGSTOP), so a signal that arrives while the command starts waits for it
 * instead of killing run alone; makes sure run can wait for its child even
 * when SIGCHLD came ignored. */
void run_child_prepare(struct run_child *rc);

/* Call in the forked child before exec: the mask and SIGCHLD disposition run
 * was given, and SIGKILL when run dies (a SIGKILLed run takes the command with
 * it instead of leaving it running). */
void run_child_restore(const struct run_child *rc);

/* Waits for the command PID to end and returns its wait status (-1 when it
 * cannot be waited for). Meanwhile each signal sent to run from outside the
 * command's own process tree is sent on to PID; signals from the terminal
 * (which sent them to the whole foreground process group, the command
 * included) and from the command's tree (kill(0, sig) reached the command
 * already) are not. When the command stops, run stops with the same signal;
 * when run is continued, so is the command. */
int run_child_wait(const struct run_child *rc, pid_t pid);

/* Ends run as STATUS (a wait status) says: exits with the command's exit
 * status, or dies of the command's signal without dumping a core of its own
 * (the command's core file is the one that matters, and with the default
 * core pattern both would be named "core"). */
__attribute__((noreturn)) void run_child_end_like(int status);

#endif
