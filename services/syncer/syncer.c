/* The syncer's links as a whole: start, reload (links kept), stop, and the report to the agent. */
#include "syncer.h"

#include "cv_error.h"
#include "log.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

uint64_t syncer_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct link *find_link(struct syncer *syncer, const char *name)
{
    for (size_t i = 0; i < syncer->n_links; i++)
        if (syncer->links[i] && strcmp(syncer->links[i]->name, name) == 0)
            return syncer->links[i];
    return NULL;
}

/*
 * Gives every link of gen its settings: existing links are updated in place,
 * new ones made, those gen no longer has ended (their shards released). On
 * failure the new links go and the others stay: the caller exits, and the
 * agent restores the previous files.
 */
static int apply_generation(struct syncer *syncer, const struct generation *gen, char *err,
                            size_t err_len)
{
    struct link **links = calloc(gen->n + 1, sizeof(*links));
    bool *made = calloc(gen->n + 1, sizeof(*made));
    int r = links && made ? 0 : -ENOMEM;

    for (size_t i = 0; r == 0 && i < gen->n; i++) {
        struct link *link = find_link(syncer, gen->links[i].db->name);

        if (link) {
            links[i] = link;
            r = link_update(link, &gen->links[i], err, err_len);
        } else if ((r = link_new(syncer, &gen->links[i], &link, err, err_len)) == 0) {
            links[i] = link;
            made[i] = true;
        }
    }
    if (r < 0) {
        for (size_t i = 0; links && made && i < gen->n; i++)
            if (made[i])
                link_free(links[i], false);
        free(links);
        free(made);
        return r;
    }
    for (size_t j = 0; j < syncer->n_links; j++) {
        bool kept = false;

        for (size_t i = 0; i < gen->n && !kept; i++)
            kept = links[i] == syncer->links[j];
        if (kept)
            continue;
        log_info("Replica '%s' removed: the link ends and its shard keeps its data",
                 syncer->links[j]->name);
        link_free(syncer->links[j], true);
    }
    free(syncer->links);
    free(made);
    syncer->links = links;
    syncer->n_links = gen->n;
    return 0;
}

int syncer_start(struct syncer *syncer)
{
    char err[1024];
    int r =
        generation_build(syncer->tls_path, syncer->replicas_path, &syncer->gen, err, sizeof(err));

    if (r == 0)
        r = apply_generation(syncer, syncer->gen, err, sizeof(err));
    if (r < 0)
        log_error("Cannot start: %s", err);
    return r;
}

int syncer_reload(struct syncer *syncer, char *err, size_t err_len)
{
    struct generation *gen;
    int r;

    log_info("Reloading %s and %s", syncer->tls_path, syncer->replicas_path);
    r = generation_build(syncer->tls_path, syncer->replicas_path, &gen, err, err_len);
    if (r == 0) {
        r = apply_generation(syncer, gen, err, err_len);
        if (r == 0) {
            generation_free(syncer->gen);
            syncer->gen = gen;
        } else {
            syncer->retired = gen; /* links updated before the failure point into it */
        }
    }
    if (r < 0)
        return r;
    log_info("Reloaded: %zu replica link%s; established links kept", syncer->n_links,
             syncer->n_links == 1 ? "" : "s");
    sd_notifyf(0, "STATUS=%zu replica link%s", syncer->n_links, syncer->n_links == 1 ? "" : "s");
    syncer_report(syncer);
    return 0;
}

void syncer_stop(struct syncer *syncer)
{
    for (size_t i = 0; i < syncer->n_links; i++)
        link_free(syncer->links[i], false);
    free(syncer->links);
    syncer->links = NULL;
    syncer->n_links = 0;
    generation_free(syncer->gen);
    generation_free(syncer->retired);
    syncer->gen = syncer->retired = NULL;
    free(syncer->last_report);
    syncer->last_report = NULL;
}

/* --- the report --- */

static void set_string(json_t *object, const char *key, const char *value)
{
    if (value && *value)
        json_object_set_new(object, key, json_string(value));
}

static void set_number(json_t *object, const char *key, long long value)
{
    json_object_set_new(object, key, json_integer((json_int_t)value));
}

static json_t *link_report(const struct syncer *syncer, const struct link *link)
{
    const struct db_config *db = link->settings->db;
    const struct session *s = link->session;
    json_t *item = json_object();
    const char *role, *status;
    long long offset;
    int master_port;

    if (!item)
        return NULL;
    set_string(item, "source", db->replica_source);
    set_string(item, "server_name",
               s && *s->server_name ? s->server_name : db->replica_server_name);
    set_number(item, "local_port", link->port);
    set_string(item, "state", link->state);
    set_number(item, "since", (long long)link->since);
    if (s && s->phase == PHASE_OPEN) {
        set_string(item, "tls_version", s->tls_version);
        set_string(item, "cipher", s->cipher);
        set_string(item, "peer_fingerprint", s->peer_fingerprint);
        set_string(item, "peer_subject", s->peer_subject);
        set_string(item, "local_fingerprint", s->local_fingerprint);
    } else {
        set_string(item, "local_fingerprint", syncer->gen->fingerprint);
    }
    set_number(item, "bytes_in", (long long)link->bytes_in);
    set_number(item, "bytes_out", (long long)link->bytes_out);
    set_number(item, "sessions", (long long)link->sessions);
    set_number(item, "full_syncs", (long long)link->full_syncs);
    set_number(item, "partial_syncs", (long long)link->partial_syncs);
    if (link->source_offset >= 0)
        set_number(item, "source_offset", link->source_offset);
    if (link->replica_offset >= 0)
        set_number(item, "replica_offset", link->replica_offset);
    if (link->source_offset >= 0 && link->replica_offset >= 0)
        set_number(item, "lag_bytes",
                   link->source_offset > link->replica_offset
                       ? link->source_offset - link->replica_offset
                       : 0);
    if (link->ack_at_ms)
        set_number(item, "ack_age_ms", (long long)(syncer_now_ms() - link->ack_at_ms));
    if (*link->last_error) {
        set_string(item, "last_error", link->last_error);
        set_number(item, "last_error_at", (long long)link->last_error_at);
    }
    set_string(item, "error", link_error_word(link->error));
    if (shardctl_known(link->shard, &role, &master_port, &status, &offset)) {
        set_string(item, "shard_role", role);
        set_string(item, "shard_link", status);
        set_number(item, "shard_offset", offset);
    }
    return item;
}

void syncer_report(struct syncer *syncer)
{
    json_t *root = json_object(), *links = json_object();
    char *text;

    if (!root || !links || json_object_set(root, "links", links) < 0) {
        json_decref(links);
        json_decref(root);
        return;
    }
    for (size_t i = 0; i < syncer->n_links; i++)
        json_object_set_new(links, syncer->links[i]->name, link_report(syncer, syncer->links[i]));
    text = json_dumps(root, JSON_COMPACT);
    json_decref(links);
    json_decref(root);
    if (!text)
        return;
    if (syncer->last_report && strcmp(syncer->last_report, text) == 0) {
        free(text);
        return;
    }
    /* Not remembered when unsent, so that the next report tries again. */
    if (sd_notifyf(0, "CERTVISOR_STATS=%s", text) < 0) {
        free(text);
        return;
    }
    free(syncer->last_report);
    syncer->last_report = text;
}
