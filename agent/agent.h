/* The agent: one event loop, the configuration in force, and the services it supervises. */
#ifndef CERTVISOR_AGENT_H
#define CERTVISOR_AGENT_H

#include "config.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

struct service;
struct certs;
struct apply_queue;
struct notify_server;
struct control_server;

struct agent {
    struct event_base *base;
    struct agent_config *config;
    struct service **services; /* dependencies first */
    size_t n_services;
    struct notify_server *notify;
    struct control_server *control;
    struct certs *certs;       /* the node's certificates (state_dir/certs) */
    struct apply_queue *apply; /* changes waiting and the one being applied */
    struct event *signal_events[4];
    struct event *watchdog_timer;
    struct event *removal_event; /* frees removed services outside their own transitions */
    const char *prefix_override; /* --prefix, kept for configuration reloads */
    bool under_systemd;          /* NOTIFY_SOCKET was set for the agent itself */
    bool ready_sent;
    bool shutting_down;
    int exit_status;
};

/* Finds a service by name, or NULL. */
struct service *agent_find_service(const struct agent *agent, const char *name);

/*
 * Re-reads the configuration file. On success the new services are in force
 * and *ret_summary (malloc'd JSON, may be NULL) lists what was added, changed
 * and removed. On failure the running configuration stays untouched and
 * *ret_error holds the reason. Returns 0 or a negative error.
 */
int agent_reload_config(struct agent *agent, json_t **ret_summary, char **ret_error);

/* Begins an orderly shutdown: every service stops in reverse dependency order, then the loop ends.
 */
void agent_shutdown(struct agent *agent);

/* Called whenever a service settles: tells systemd once everything autostarted is up. */
void agent_check_ready(struct agent *agent);

/* Sends the agent's one-line STATUS= to systemd (no-op outside systemd). */
void agent_update_status(struct agent *agent);

#endif
