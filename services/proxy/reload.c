/* Starting, reloading and stopping: generations built whole, then handed to the workers. */
#include "proxy.h"

#include "cv_error.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

static unsigned long long monotonic_usec(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000;
}

static const char *verify_word(enum tls_verify verify)
{
    return verify == TLS_VERIFY_REQUIRE    ? "require"
           : verify == TLS_VERIFY_OPTIONAL ? "optional"
                                           : "none";
}

static void log_db(const char *what, const struct proxy_db *pdb)
{
    const struct db_config *db = pdb->config;

    log_info("Database '%s' %s %s: tls_mode %s, client certificates %s, shard %s%s", db->name, what,
             pdb->listener->name, db_tls_mode_name(db->tls_mode), verify_word(db->client_verify),
             db->shard, db->shard_tls ? " over TLS" : "");
}

static const struct proxy_db *find(const struct generation *gen, const char *name)
{
    for (size_t i = 0; gen && i < gen->n; i++)
        if (strcmp(gen->dbs[i].config->name, name) == 0)
            return &gen->dbs[i];
    return NULL;
}

static bool same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool db_changed(const struct db_config *a, const struct db_config *b)
{
    return a->port != b->port || !same_text(a->listen, b->listen) ||
           !same_text(a->shard, b->shard) || a->shard_tls != b->shard_tls ||
           !same_text(a->shard_cert_file, b->shard_cert_file) ||
           !same_text(a->shard_key_file, b->shard_key_file) ||
           !same_text(a->shard_ca_file, b->shard_ca_file) || a->tls_mode != b->tls_mode ||
           a->client_verify != b->client_verify || !same_text(a->client_ca_file, b->client_ca_file);
}

/* One line per database added, changed or removed by a reload. */
static void log_changes(const struct generation *old, const struct generation *gen)
{
    for (size_t i = 0; i < gen->n; i++) {
        const struct proxy_db *before = find(old, gen->dbs[i].config->name);

        if (!before)
            log_db("added on", &gen->dbs[i]);
        else if (db_changed(before->config, gen->dbs[i].config))
            log_db("changed: on", &gen->dbs[i]);
    }
    for (size_t i = 0; old && i < old->n; i++)
        if (!find(gen, old->dbs[i].config->name))
            log_info("Database '%s' removed: no longer listening on %s (open connections stay)",
                     old->dbs[i].config->name, old->dbs[i].listener->name);
}

int proxy_start(struct proxy *p)
{
    struct generation *gen;
    char err[1024];
    int r;

    p->listeners.n_workers = p->opt.threads;
    stats_init(&p->stats, p->opt.threads);
    r = generation_build(p->opt.config, p->opt.databases, &p->listeners, &p->stats, &gen, err,
                         sizeof(err));
    if (r < 0) {
        log_error("%s", err);
        listeners_prune(&p->listeners, NULL);
        return r;
    }
    r = workers_start(&p->workers, p->opt.threads, p->opt.idle_timeout, err, sizeof(err));
    if (r < 0) {
        log_error("%s", err);
        generation_free(gen);
        listeners_prune(&p->listeners, NULL);
        return r;
    }
    p->gen = gen;
    r = workers_publish(&p->workers, gen);
    if (r < 0) {
        log_error("The worker threads did not start serving: %s", strerror(-r));
        return r;
    }
    listeners_prune(&p->listeners, gen); /* sockets a previous process handed over, unused now */
    for (size_t i = 0; i < gen->n; i++)
        log_db("on", &gen->dbs[i]);
    return 0;
}

int proxy_stop_accepting(struct proxy *p)
{
    struct generation *none = calloc(1, sizeof(*none));
    int r;

    if (!none)
        return -ENOMEM;
    r = workers_publish(&p->workers, none);
    if (r < 0) {
        free(none);
        return r;
    }
    generation_free(p->gen);
    p->gen = none;
    listeners_prune(&p->listeners, none);
    return 0;
}

/* An errno for ERRNO=: the project's codes say "invalid configuration". */
static int errno_of(int r)
{
    return r <= -CV_ERROR_FIRST || r >= 0 ? EINVAL : -r;
}

static int reload_failed(int r, const char *err)
{
    log_error("Reload failed: %s; exiting, for the previous configuration to be restored", err);
    sd_notifyf(0, "STATUS=Reload failed: %s\nERRNO=%d", err, errno_of(r));
    return r;
}

int proxy_reload(struct proxy *p)
{
    struct generation *gen, *old = p->gen;
    char err[1024];
    int r;

    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu", monotonic_usec());
    log_info("Reloading %s and %s", p->opt.config, p->opt.databases);
    r = generation_build(p->opt.config, p->opt.databases, &p->listeners, &p->stats, &gen, err,
                         sizeof(err));
    if (r < 0) {
        listeners_prune(&p->listeners, old); /* the sockets this attempt opened */
        return reload_failed(r, err);
    }
    r = workers_publish(&p->workers, gen);
    /* Some workers may serve it already: it is the one to free at the end either way. */
    p->gen = gen;
    p->retired = old;
    if (r < 0) {
        snprintf(err, sizeof(err), "the worker threads did not switch: %s", strerror(-r));
        return reload_failed(r, err);
    }
    log_changes(old, gen);
    /* No worker uses the old generation now; connections hold their own contexts. */
    generation_free(old);
    p->retired = NULL;
    listeners_prune(&p->listeners, gen);
    log_info("Reloaded: serving %zu database%s", gen->n, gen->n == 1 ? "" : "s");
    sd_notifyf(0, "READY=1\nSTATUS=Serving %zu database%s", gen->n, gen->n == 1 ? "" : "s");
    return 0;
}

void proxy_stop(struct proxy *p)
{
    workers_stop(&p->workers);
    generation_free(p->gen);
    generation_free(p->retired);
    p->gen = p->retired = NULL;
    listeners_prune(&p->listeners, NULL);
    stats_free(&p->stats);
}
