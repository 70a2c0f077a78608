/* The handler of the "metrics" command: the agent's state, as the metrics exporter reads it. */
#include "commands_metrics.h"

#include "stapling.h"

#include "cert_info.h"
#include "cert_names.h"
#include "certs.h"
#include "commands_cluster.h"
#include "service.h"
#include "supervisor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef CERTVISOR_VERSION
#define CERTVISOR_VERSION "0.0.0"
#endif

/*
 * What a scrape needs of a certificate file, kept so that a scrape every few
 * seconds parses nothing: a generation's files are never rewritten (certstore.h),
 * so a slot stays right for as long as the current generation and the file's
 * identity (a deleted and re-created name may reuse a number) are the same.
 * One slot per name; the agent is single-threaded.
 */
struct cert_slot {
    bool valid;
    unsigned generation;
    dev_t dev;
    ino_t ino;
    struct timespec mtime;
    time_t not_after;
    char origin[32];
};

#define CERT_SLOTS 16 /* more than cert_names_count + 1 (the cluster CA) */

static struct cert_slot cert_slots[CERT_SLOTS];

static bool slot_matches(const struct cert_slot *slot, unsigned generation, const struct stat *st)
{
    return slot->valid && slot->generation == generation && slot->dev == st->st_dev &&
           slot->ino == st->st_ino && slot->mtime.tv_sec == st->st_mtim.tv_sec &&
           slot->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* Fills slot from the store. Returns 0, or a negative error when the file cannot be read. */
static int slot_load(struct cert_slot *slot, struct certstore *store, const char *name,
                     unsigned generation, const struct stat *st)
{
    char *pem = NULL;
    size_t len = 0;
    time_t not_after;
    int r;

    slot->valid = false;
    r = certstore_read_cert(store, name, generation, &pem, &len);
    if (r < 0)
        return r;
    r = cert_info_not_after(pem, len, &not_after);
    free(pem);
    if (r < 0)
        return r;
    slot->generation = generation;
    slot->dev = st->st_dev;
    slot->ino = st->st_ino;
    slot->mtime = st->st_mtim;
    slot->not_after = not_after;
    certstore_get_origin(store, name, generation, slot->origin, sizeof(slot->origin));
    slot->valid = true;
    return 0;
}

/*
 * <name>/current/cert.pem for a generation's <name>/<generation>/cert.pem (certstore.h), into
 * out: the path through the store's symlink, which stays the same across rotations, so a time
 * series labelled with it goes on (a generation's path starts a new one each time).
 */
static const char *current_path(const char *path, char *out, size_t len)
{
    const char *file = strrchr(path, '/'), *gen = file;

    while (gen && gen > path && gen[-1] != '/')
        gen--;
    if (!file || !gen || gen == path ||
        snprintf(out, len, "%.*scurrent%s", (int)(gen - path), path, file) >= (int)len)
        snprintf(out, len, "%s", path);
    return out;
}

/* The current certificate of name, or NULL when it is not set or cannot be read. */
static json_t *certificate_item(struct certstore *store, const char *name, size_t index, time_t now)
{
    struct cert_slot scratch = {0}, *slot = index < CERT_SLOTS ? &cert_slots[index] : &scratch;
    char path[PATH_MAX + 512], current[PATH_MAX + 512];
    unsigned generation;
    struct stat st;

    if (certstore_current(store, name, &generation) < 0 ||
        certstore_paths(store, name, generation, path, sizeof(path), NULL, 0) < 0 ||
        stat(path, &st) < 0)
        return NULL;
    if (!slot_matches(slot, generation, &st) && slot_load(slot, store, name, generation, &st) < 0)
        return NULL;
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:I}", "name", name, "path", path,
                     "current_path", current_path(path, current, sizeof(current)), "not_after",
                     (json_int_t)slot->not_after, "seconds_left",
                     (json_int_t)(slot->not_after - now), "origin", slot->origin, "generation",
                     (json_int_t)generation);
}

static json_t *certificates(struct agent *agent, time_t now)
{
    json_t *items = json_array();
    json_t *item;

    for (size_t i = 0; i < cert_names_count; i++)
        if ((item = certificate_item(agent->certs->store, cert_names[i].name, i, now)))
            json_array_append_new(items, item);
    if ((item = certificate_item(agent->certs->store, CERT_CLUSTER_CA, cert_names_count, now)))
        json_array_append_new(items, item);
    return items;
}

static json_t *service_item(const struct service *service)
{
    struct service_snapshot now;
    json_t *item;

    service_snapshot(service, &now);
    item = json_pack("{s:s, s:s, s:i, s:I, s:I, s:I}", "name", now.name, "state",
                     service_state_name(now.state), "pid", (int)now.pid, "uptime_seconds",
                     (json_int_t)(now.uptime_usec / 1000000u), "restarts", (json_int_t)now.restarts,
                     "crashes", (json_int_t)now.crashes);
    if (item && now.stats)
        json_object_set(item, "stats", now.stats);
    return item;
}

/* By name, so that the exporter's output is stable whatever the dependency order. */
static json_t *services(struct agent *agent)
{
    struct service **sorted = supervisor_by_name(agent->supervisor);
    json_t *items = json_array();

    if (!sorted)
        return items;
    for (size_t i = 0; i < supervisor_count(agent->supervisor); i++)
        json_array_append_new(items, service_item(sorted[i]));
    free(sorted);
    return items;
}

static json_t *service_states(void)
{
    static const enum service_state states[] = {
        SERVICE_STOPPED,  SERVICE_STARTING, SERVICE_RUNNING, SERVICE_BACKOFF,
        SERVICE_STOPPING, SERVICE_EXITED,   SERVICE_FATAL,
    };
    json_t *names = json_array();

    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
        json_array_append_new(names, json_string(service_state_name(states[i])));
    return names;
}

void handle_metrics(struct agent *agent, struct control_conn *conn, json_t *args, json_t *options)
{
    time_t now = time(NULL);
    json_t *reply;

    (void)options;
    if (json_array_size(args) > 0) {
        control_reply_error(conn, 2, "usage: metrics");
        return;
    }
    reply = json_pack("{s:i, s:{s:s, s:I, s:i}, s:I, s:o, s:o, s:o, s:{s:I, s:b, s:I, s:I}}",
                      "exit", 0, "agent", "version", CERTVISOR_VERSION, "start_time",
                      (json_int_t)agent->started_at, "pid", (int)getpid(), "time", (json_int_t)now,
                      "service_states", service_states(), "certificates", certificates(agent, now),
                      "services", services(agent), "apply", "at", (json_int_t)agent->last_apply.at,
                      "ok", agent->last_apply.ok, "applied", (json_int_t)agent->last_apply.applied,
                      "failed", (json_int_t)agent->last_apply.failed);
    if (!reply || json_object_set_new(reply, "cluster", commands_cluster_json(agent)) < 0 ||
        json_object_set_new(reply, "ocsp", stapling_metrics(agent)) < 0) {
        json_decref(reply);
        control_reply_error(conn, 1, "out of memory");
        return;
    }
    control_reply(conn, reply);
}
