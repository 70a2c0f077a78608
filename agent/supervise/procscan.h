/* Finding processes through /proc: the members of a session, the children of the agent, and
 * one process's start time. */
#ifndef CERTVISOR_PROCSCAN_H
#define CERTVISOR_PROCSCAN_H

#include <sys/types.h>

/*
 * Sends signo to every process in session sid (a service's processes that
 * left its process group but kept its session). Returns how many were signalled.
 */
int procscan_signal_session(pid_t sid, int signo);

/* Sends signo to every child of parent (orphans re-parented to the subreaper). */
int procscan_signal_children(pid_t parent, int signo);

/*
 * The start time of pid (clock ticks after boot, /proc/<pid>/stat field 22): with the pid,
 * it names one process, since a reused pid starts later. Returns 0, or -1 when there is no
 * such process.
 */
int procscan_start_time(pid_t pid, unsigned long long *ret_start_time);

#endif
