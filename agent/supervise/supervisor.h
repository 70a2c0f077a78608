/* Scheduling across services: dependency order, operator requests, child exits, notify routing. */
#ifndef CERTVISOR_SUPERVISOR_H
#define CERTVISOR_SUPERVISOR_H

#include "config.h"
#include "records.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct service;
struct supervisor;
struct notify_server;

/*
 * What the supervisor tells its owner (the agent, agent/daemon): changed() runs
 * after every scheduling pass, so after every service's transition too. The
 * agent tells systemd about readiness and status from it, and ends the loop
 * once a shutdown has stopped everything. Nothing in supervise/ calls up.
 */
struct supervisor_observer {
    void (*changed)(void *data);
    void *data;
};

/*
 * Sets up a supervisor with no services on base, with the configuration in force (its
 * notify socket and output limits; supervisor_take_config() replaces it) and whether the
 * agent itself runs under systemd. Returns 0, or -ENOMEM.
 */
int supervisor_new(struct event_base *base, const struct agent_config *config, bool under_systemd,
                   struct supervisor_observer observer, struct supervisor **ret_sup);

/* Frees every service and the supervisor. */
void supervisor_free(struct supervisor *sup);

/* How many services it has, and the i-th in dependency order (dependencies first); the
 * count includes services a configuration reload removed that have not stopped yet. */
size_t supervisor_count(const struct supervisor *sup);
struct service *supervisor_service(const struct supervisor *sup, size_t i);

/* Every service sorted by name (supervisor_count() of them), for output that must not follow
 * dependency order; the caller frees the array. NULL when out of memory. */
struct service **supervisor_by_name(const struct supervisor *sup);

/* Finds a service by name, or NULL. */
struct service *supervisor_find(const struct supervisor *sup, const char *name);

/*
 * Starts what is pending and whose dependencies are ready, and stops what is
 * pending and whose dependents have stopped. Safe to call from anywhere,
 * including from inside itself (the call is then folded into the running one).
 */
void supervisor_schedule(struct supervisor *sup);

/*
 * The requests only mark services; supervisor_schedule() then acts on every
 * mark at once, so that a request for several services keeps dependency order.
 */

/* Asks for a service to run, pulling in the services it is 'after'. */
void supervisor_mark_start(struct supervisor *sup, struct service *service);

/* Asks for a service to stop. by_operator keeps it stopped across configuration reloads. */
void supervisor_mark_stop(struct service *service, bool by_operator);

/* Asks for a service to stop (if running) and start again. */
void supervisor_mark_restart(struct supervisor *sup, struct service *service);

/* Frees the services a configuration reload removed, once they have stopped (from the loop). */
void supervisor_drop_removed(struct supervisor *sup);

/* Reaps every exited child (SIGCHLD): services' main processes and adopted orphans. */
void supervisor_reap(struct supervisor *sup);

/* Routes a notify message to the service the sender belongs to; others are dropped. */
void supervisor_on_notify(void *sup, pid_t sender, const char *message);

/* The notify socket whose messages go to supervisor_on_notify() (not owned). */
void supervisor_set_notify(struct supervisor *sup, struct notify_server *notify);

/*
 * Puts config's services into force (takes them; config keeps the rest and becomes the
 * configuration the supervisor reads): services added, restarted with changed settings,
 * or stopped and removed, and autostart ones started; summary's arrays "added",
 * "changed", "updated" and "removed" (summary may be NULL) say which. The caller runs
 * supervisor_schedule() once the configuration is its own. Returns 0, or -ENOMEM with
 * nothing changed.
 */
int supervisor_take_config(struct supervisor *sup, struct agent_config *config, json_t *summary);

/* What supervisor_take_config() would do with config, in summary's arrays, doing nothing. */
void supervisor_preview_config(const struct supervisor *sup, const struct agent_config *config,
                               json_t *summary);

/*
 * Takes over the processes a previous agent left running (run_dir/services.json, kept up
 * to date by every supervisor): each that is still the recorded process becomes RUNNING
 * again, restarted if its settings changed or it was not running, reloaded if a file
 * rendered for it changed since it last read it. Processes of services the configuration
 * no longer has are stopped. Call after supervisor_take_config() and before the first
 * supervisor_schedule(). Returns how many were adopted.
 */
size_t supervisor_adopt(struct supervisor *sup);

/*
 * The same from a record already read (a re-exec hands it over); how says where the
 * processes come from, for their reason and the log ("kept across the agent's re-exec").
 * Services the record lists as stopped by hand stay stopped.
 */
size_t supervisor_adopt_records(struct supervisor *sup, const struct service_records *records,
                                const char *how);

/* Writes run_dir/services.json now, if it changed (adopt.c): before a re-exec, so that the
 * new binary can adopt from it when it cannot read what it was handed. */
void supervisor_write_records(struct supervisor *sup);

/* run_dir/output, where the services' output FIFOs are, or NULL when it could not be used. */
const char *supervisor_output_dir(const struct supervisor *sup);

/* What run_dir/services.json holds, now: the record a re-exec hands over. NULL when out of
 * memory. */
json_t *supervisor_records(const struct supervisor *sup);

/* Stops every service in reverse dependency order (the agent's shutdown). */
void supervisor_stop_all(struct supervisor *sup);

/* True when no service has a process or a pending retry. */
bool supervisor_all_quiet(const struct supervisor *sup);

#endif
