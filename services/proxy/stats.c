/* Per-database counters: slots that outlive reloads, and the report sent to the agent. */
#include "stats.h"

#include "generation.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

uint64_t stats_open_connections(const struct stats *stats)
{
    uint64_t open = 0;

    for (const struct stats_slot *slot = stats->slots; slot; slot = slot->next)
        for (size_t w = 0; w < stats->n_workers; w++)
            open += atomic_load_explicit(&slot->workers[w].connections, memory_order_relaxed);
    return open;
}

void stats_init(struct stats *stats, size_t n_workers)
{
    memset(stats, 0, sizeof(*stats));
    stats->n_workers = n_workers;
}

struct stats_slot *stats_slot(struct stats *stats, const char *name)
{
    struct stats_slot *slot;

    for (slot = stats->slots; slot; slot = slot->next)
        if (strcmp(slot->name, name) == 0)
            return slot;
    slot = calloc(1, sizeof(*slot));
    if (!slot)
        return NULL;
    /* aligned_alloc wants a multiple of the alignment: every db_counters is one. */
    slot->workers =
        aligned_alloc(_Alignof(struct db_counters), stats->n_workers * sizeof(struct db_counters));
    if (!slot->workers) {
        free(slot);
        return NULL;
    }
    memset(slot->workers, 0, stats->n_workers * sizeof(struct db_counters));
    pthread_mutex_init(&slot->refusal_lock, NULL);
    snprintf(slot->name, sizeof(slot->name), "%s", name);
    slot->next = stats->slots;
    stats->slots = slot;
    return slot;
}

static uint64_t sum(const struct stats_slot *slot, size_t n_workers, size_t offset)
{
    uint64_t total = 0;

    for (size_t w = 0; w < n_workers; w++) {
        const _Atomic uint64_t *counter =
            (const _Atomic uint64_t *)((const char *)&slot->workers[w] + offset);

        total += atomic_load_explicit(counter, memory_order_relaxed);
    }
    return total;
}

void stats_note_refusal(struct stats_slot *slot, const char *client, const char *reason)
{
    pthread_mutex_lock(&slot->refusal_lock);
    snprintf(slot->last_refusal, sizeof(slot->last_refusal), "client %s: %s", client, reason);
    slot->last_refusal_at = time(NULL);
    pthread_mutex_unlock(&slot->refusal_lock);
}

/* Adds the last refusal to a database's report, when there was one. */
static int add_refusal(json_t *db, struct stats_slot *slot)
{
    int r = 0;

    pthread_mutex_lock(&slot->refusal_lock);
    if (slot->last_refusal_at)
        r = json_object_set_new(db, "last_refusal", json_string(slot->last_refusal)) < 0 ||
                    json_object_set_new(db, "last_refusal_at",
                                        json_integer((json_int_t)slot->last_refusal_at)) < 0
                ? -1
                : 0;
    pthread_mutex_unlock(&slot->refusal_lock);
    return r;
}

static json_t *db_report(struct stats_slot *slot, size_t n_workers)
{
    static const struct {
        const char *key;
        size_t offset;
    } fields[] = {
        {"connections", offsetof(struct db_counters, connections)},
        {"connections_total", offsetof(struct db_counters, connections_total)},
        {"handshakes", offsetof(struct db_counters, handshakes)},
        {"handshake_failures", offsetof(struct db_counters, handshake_failures)},
        {"auth_failures", offsetof(struct db_counters, auth_failures)},
        {"bytes_in", offsetof(struct db_counters, bytes_in)},
        {"bytes_out", offsetof(struct db_counters, bytes_out)},
        {"errors", offsetof(struct db_counters, errors)},
    };
    json_t *db = json_object();

    for (size_t i = 0; db && i < sizeof(fields) / sizeof(fields[0]); i++) {
        uint64_t value = sum(slot, n_workers, fields[i].offset);

        if (json_object_set_new(db, fields[i].key, json_integer((json_int_t)value)) < 0) {
            json_decref(db);
            return NULL;
        }
    }
    if (db && add_refusal(db, slot) < 0) {
        json_decref(db);
        return NULL;
    }
    return db;
}

char *stats_render(const struct generation *gen, size_t n_workers)
{
    json_t *root = json_object(), *dbs = json_object();
    char *text = NULL;

    if (!root || !dbs || json_object_set(root, "databases", dbs) < 0)
        goto out;
    for (size_t i = 0; i < gen->n; i++) {
        json_t *db = db_report(gen->dbs[i].stats, n_workers);

        if (!db || json_object_set_new(dbs, gen->dbs[i].config->name, db) < 0)
            goto out;
    }
    text = json_dumps(root, JSON_COMPACT);
out:
    json_decref(dbs);
    json_decref(root);
    return text;
}

int stats_report(struct stats *stats, const struct generation *gen)
{
    char *report = stats_render(gen, stats->n_workers);
    int r;

    if (!report)
        return -ENOMEM;
    if (stats->last_sent && strcmp(stats->last_sent, report) == 0) {
        free(report);
        return 0;
    }
    r = sd_notifyf(0, "CERTVISOR_STATS=%s", report);
    /* Not remembered when unsent, so the next report tries again. */
    if (r < 0) {
        free(report);
        return r;
    }
    free(stats->last_sent);
    stats->last_sent = report;
    return 1;
}

void stats_free(struct stats *stats)
{
    while (stats->slots) {
        struct stats_slot *next = stats->slots->next;

        free(stats->slots->workers);
        pthread_mutex_destroy(&stats->slots->refusal_lock);
        free(stats->slots);
        stats->slots = next;
    }
    free(stats->last_sent);
    stats->last_sent = NULL;
}
