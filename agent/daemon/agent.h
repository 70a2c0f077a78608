/* The agent: one event loop, the configuration in force, and the services it supervises. */
#ifndef CERTVISOR_AGENT_H
#define CERTVISOR_AGENT_H

#include "config.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>
#include <time.h>

struct service;
struct certs;
struct apply_queue;
struct renewal;
struct cert_watch;
struct users;
struct audit_ring;
struct notify_server;
struct control_server;
struct offload;

struct agent {
    struct event_base *base;
    struct agent_config *config;
    struct service **services; /* dependencies first */
    size_t n_services;
    struct notify_server *notify;
    struct control_server *control;
    struct certs *certs;         /* the node's certificates (state_dir/certs) */
    struct apply_queue *apply;   /* changes waiting and the one being applied */
    struct renewal *renewal;     /* expiry checks */
    struct cert_watch *external; /* the files of external certificates */
    struct users *users;         /* the REST API's users (state_dir/users.json) */
    struct audit_ring *audit;    /* the recent audit entries (agent/apply/audit.c) */
    struct offload *offload;     /* worker threads for slow work (agent/core/offload.c) */
    struct event *signal_events[4];
    struct event *watchdog_timer;
    struct event *removal_event; /* frees removed services outside their own transitions */
    struct {
        time_t at;                     /* when the last change finished (0: none yet) */
        bool ok;                       /* applied, or refused / rolled back */
        unsigned long applied, failed; /* changes since start-up, by outcome */
    } last_apply;
    time_t started_at;           /* wall clock at start-up, for the metrics */
    const char *prefix_override; /* --prefix, kept for configuration reloads */
    bool under_systemd;          /* NOTIFY_SOCKET was set for the agent itself */
    bool ready_sent;
    bool shutting_down;
    int exit_status;
};

/* Finds a service by name, or NULL. */
struct service *agent_find_service(const struct agent *agent, const char *name);

/* The notify-reload handshake around a configuration reload: RELOADING=1, then READY=1. */
void agent_reload_started(struct agent *agent);
void agent_reload_finished(struct agent *agent);

/*
 * Reads the configuration files again into a new configuration, ready to be
 * put into force: directories made, the runtime policy applied, and the
 * agent's own sockets kept (a warning each in warnings when they changed).
 * Nothing running is touched. Returns 0, or a negative error with a malloc'd
 * message (file, line, problem) in *ret_error.
 */
int agent_load_config(struct agent *agent, struct agent_config **ret_config, json_t *warnings,
                      char **ret_error);

/* What agent_swap_config() would do with config, in summary's arrays, without doing it. */
void agent_config_changes(const struct agent *agent, const struct agent_config *config,
                          json_t *summary);

/*
 * Puts a loaded configuration into force (takes it): services added,
 * restarted with changed settings, or stopped and removed; summary's arrays
 * "added", "changed", "updated" and "removed" say which. Used by the apply
 * pipeline, after the rendered files are written (agent/apply/apply.c).
 */
void agent_swap_config(struct agent *agent, struct agent_config *config, json_t *summary);

/* Begins an orderly shutdown: every service stops in reverse dependency order, then the loop ends.
 */
void agent_shutdown(struct agent *agent);

/* Called whenever a service settles: tells systemd once everything autostarted is up. */
void agent_check_ready(struct agent *agent);

/* Sends the agent's one-line STATUS= to systemd (no-op outside systemd). */
void agent_update_status(struct agent *agent);

#endif
