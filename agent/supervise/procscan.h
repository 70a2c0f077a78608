/* Finding processes through /proc: the members of a session, the children of the agent. */
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

#endif
