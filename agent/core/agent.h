/*
 * The agent object: the event loop, the configuration in force and one pointer to each part,
 * which the parts above core reach each other through. It is a plain aggregate of forward-
 * declared parts, so that including it pulls in none of them; what the daemon itself does
 * when a part asks (systemd's reload handshake) comes through hooks it registers.
 */
#ifndef CERTVISOR_AGENT_H
#define CERTVISOR_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct agent;
struct agent_config;
struct apply_publication;
struct json_t;
struct apply_queue;
struct audit_ring;
struct cert_watch;
struct certs;
struct cluster_monitor;
struct cluster_sync;
struct cluster_join;
struct control_conn;
struct control_server;
struct event;
struct event_base;
struct notify_server;
struct offload;
struct reexec;
struct renewal;
struct stapling;
struct supervisor;
struct users;

/* What the daemon (agent/daemon) does when a lower part asks; set before the loop runs. */
struct agent_hooks {
    void (*reload_started)(struct agent *agent);  /* RELOADING=1 to systemd */
    void (*reload_finished)(struct agent *agent); /* READY=1 again, once it is ours to send */
    /* certvisorctl daemon-reexec: 0 once under way (conn, if not NULL, is answered by the
     * new binary or with why it could not run), or a negative error with err saying why. */
    int (*reexec)(struct agent *agent, struct control_conn *conn, char *err, size_t err_len);
    /* A configuration reload put agent->config in force in place of old (freed after this). */
    void (*config_swapped)(struct agent *agent, const struct agent_config *old);
    /* The cluster's store is etcd (agent/sync): a change validated and staged here is
     * published there instead of committed here; every node then applies it from the store.
     * 1: not the store's to take (a local store, or one not initialised): commit here. 0:
     * taken, and done(data, exit, reply) is called once, later, from the loop, with the
     * cluster's answer (reply taken by done). */
    int (*publish)(struct agent *agent, const struct apply_publication *publication,
                   void (*done)(void *data, int exit_status, struct json_t *reply), void *data);
    /* The cluster's store is etcd: whether this node may renew now, its own certificates
     * (shared false) or those every node shares (true: only the node that holds the renewer
     * key). Never before the node has applied the store's state once: its renewal would be
     * planned on revisions it does not know yet. NULL: a node on its own renews everything. */
    bool (*may_renew)(struct agent *agent, bool shared);
};

struct agent {
    struct event_base *base;
    struct agent_config *config;   /* in force */
    struct supervisor *supervisor; /* the services, dependencies first (agent/supervise) */
    struct notify_server *notify;
    struct control_server *control;
    struct certs *certs;             /* the node's certificates (state_dir/certs) */
    struct apply_queue *apply;       /* changes waiting and the one being applied */
    struct renewal *renewal;         /* expiry checks */
    struct stapling *stapling;       /* the proxy certificate's OCSP status (agent/apply) */
    struct cert_watch *external;     /* the files of external certificates */
    struct users *users;             /* the REST API's users (state_dir/users.json) */
    struct audit_ring *audit;        /* the recent audit entries (agent/apply/audit.c) */
    struct offload *offload;         /* worker threads for slow work (agent/core/offload.c) */
    struct reexec *reexec;           /* re-executing the binary (agent/daemon/reexec.c) */
    struct cluster_monitor *cluster; /* the etcd store's health, or NULL (agent/cluster) */
    struct cluster_sync *sync;       /* publish and converge through etcd, or NULL (agent/sync) */
    struct cluster_join *join;       /* this node joining a cluster, or NULL (agent/sync/join.c) */
    struct agent_hooks hooks;
    struct event *signal_events[5];
    struct event *watchdog_timer;
    struct {
        time_t at;                     /* when the last change finished (0: none yet) */
        bool ok;                       /* applied, or refused / rolled back */
        unsigned long applied, failed; /* changes since start-up, by outcome */
    } last_apply;
    time_t started_at;           /* wall clock at start-up, for the metrics */
    unsigned long reexecs;       /* times the binary was executed again since then */
    const char *prefix_override; /* --prefix, kept for configuration reloads */
    bool under_systemd;          /* NOTIFY_SOCKET was set for the agent itself */
    bool ready_sent;
    bool shutting_down;
    int exit_status;
};

/* The notify-reload handshake around a configuration reload: RELOADING=1, then READY=1. */
static inline void agent_reload_started(struct agent *agent)
{
    if (agent->hooks.reload_started)
        agent->hooks.reload_started(agent);
}

static inline void agent_reload_finished(struct agent *agent)
{
    if (agent->hooks.reload_finished)
        agent->hooks.reload_finished(agent);
}

#endif
