/* Scheduling across services: dependency order, operator requests, child exits, notify routing. */
#ifndef CERTVISOR_SUPERVISOR_H
#define CERTVISOR_SUPERVISOR_H

#include "agent.h"

#include <sys/types.h>

struct service;

/*
 * Starts what is pending and whose dependencies are ready, and stops what is
 * pending and whose dependents have stopped. Safe to call from anywhere,
 * including from inside itself (the call is then folded into the running one).
 */
void supervisor_schedule(struct agent *agent);

/*
 * The requests only mark services; supervisor_schedule() then acts on every
 * mark at once, so that a request for several services keeps dependency order.
 */

/* Asks for a service to run, pulling in the services it is 'after'. */
void supervisor_mark_start(struct agent *agent, struct service *service);

/* Asks for a service to stop. by_operator keeps it stopped across configuration reloads. */
void supervisor_mark_stop(struct service *service, bool by_operator);

/* Asks for a service to stop (if running) and start again. */
void supervisor_mark_restart(struct agent *agent, struct service *service);

/* Frees the services a configuration reload removed, once they have stopped (from the loop). */
void supervisor_drop_removed(struct agent *agent);

/* Reaps every exited child (SIGCHLD): services' main processes and adopted orphans. */
void supervisor_reap(struct agent *agent);

/* Routes a notify message to the service the sender belongs to; others are dropped. */
void supervisor_on_notify(void *agent, pid_t sender, const char *message);

/* True when no service has a process or a pending retry. */
bool supervisor_all_quiet(const struct agent *agent);

#endif
