/* Building a generation: both files read, every context built, every address resolved and bound.
 */
#include "generation.h"

#include "cv_error.h"
#include "stats.h"
#include "tls_context.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *generation_listen_host(const struct db_config *db)
{
    return db->listen ? db->listen : "0.0.0.0";
}

static void ctx_free(SSL_CTX **ctx)
{
    SSL_CTX_free(*ctx);
    *ctx = NULL;
}

void generation_free(struct generation *gen)
{
    if (!gen)
        return;
    for (size_t i = 0; i < gen->n; i++) {
        ctx_free(&gen->dbs[i].server_ctx);
        ctx_free(&gen->dbs[i].shard_ctx);
    }
    free(gen->dbs);
    SSL_CTX_free(gen->base_ctx);
    db_list_clear(&gen->list);
    tls_config_free(gen->tls);
    free(gen);
}

/*
 * Several databases usually share a context: the same client verification,
 * or the same shard credentials. Returns a new reference to an equal one that
 * an earlier database of gen already has, or NULL.
 */
static SSL_CTX *shared_server_ctx(const struct generation *gen, size_t upto)
{
    const struct db_config *db = gen->dbs[upto].config;

    for (size_t i = 0; i < upto; i++) {
        const struct db_config *other = gen->dbs[i].config;

        if (gen->dbs[i].server_ctx && other->client_verify == db->client_verify &&
            other->client_verify != TLS_VERIFY_NONE &&
            strcmp(other->client_ca_file, db->client_ca_file) == 0) {
            SSL_CTX_up_ref(gen->dbs[i].server_ctx);
            return gen->dbs[i].server_ctx;
        }
    }
    return NULL;
}

static SSL_CTX *shared_shard_ctx(const struct generation *gen, size_t upto)
{
    const struct db_config *db = gen->dbs[upto].config;

    for (size_t i = 0; i < upto; i++) {
        const struct db_config *other = gen->dbs[i].config;

        if (gen->dbs[i].shard_ctx && strcmp(other->shard_cert_file, db->shard_cert_file) == 0 &&
            strcmp(other->shard_key_file, db->shard_key_file) == 0 &&
            strcmp(other->shard_ca_file, db->shard_ca_file) == 0) {
            SSL_CTX_up_ref(gen->dbs[i].shard_ctx);
            return gen->dbs[i].shard_ctx;
        }
    }
    return NULL;
}

/*
 * The proxy's certificate and policy, with no client certificates asked for:
 * built even when no database uses TLS, so that a bad TLS file is refused now.
 */
static int build_base_ctx(struct generation *gen, const char *tls_path, char *err, size_t err_len)
{
    struct tls_config config = *gen->tls;
    char message[768];
    int r;

    config.ca_file = NULL;
    config.verify_peer = TLS_VERIFY_NONE;
    r = tls_context_build(&config, TLS_ROLE_SERVER, &gen->base_ctx, message, sizeof(message));
    if (r < 0)
        snprintf(err, err_len, "%s: %s", tls_path, message);
    return r;
}

/* The proxy's certificate and policy, with this database's verification of clients. */
static int build_server_ctx(struct generation *gen, size_t i, char *err, size_t err_len)
{
    const struct db_config *db = gen->dbs[i].config;
    struct tls_config config = *gen->tls;
    char message[768];
    int r;

    if (db->tls_mode == DB_TLS_DISABLED)
        return 0;
    if (db->client_verify == TLS_VERIFY_NONE) {
        SSL_CTX_up_ref(gen->base_ctx);
        gen->dbs[i].server_ctx = gen->base_ctx;
        return 0;
    }
    gen->dbs[i].server_ctx = shared_server_ctx(gen, i);
    if (gen->dbs[i].server_ctx)
        return 0;
    config.ca_file = db->client_verify == TLS_VERIFY_NONE ? NULL : db->client_ca_file;
    config.verify_peer = db->client_verify;
    r = tls_context_build(&config, TLS_ROLE_SERVER, &gen->dbs[i].server_ctx, message,
                          sizeof(message));
    if (r < 0)
        snprintf(err, err_len, "database '%s': %s", db->name, message);
    return r;
}

/*
 * The proxy as a TLS client of the shard: its certificate, the CAs the shard
 * must chain to (the cluster CA the agent renders), and the data plane's
 * minimum version and ciphers from the proxy's own TLS file, which the
 * agent renders from the same policy. The shard's host name or address is
 * checked per connection (shard.c).
 */
static int build_shard_ctx(struct generation *gen, size_t i, char *err, size_t err_len)
{
    const struct db_config *db = gen->dbs[i].config;
    struct tls_config config = {
        .cert_file = db->shard_cert_file,
        .key_file = db->shard_key_file,
        .ca_file = db->shard_ca_file,
        .min_version = gen->tls->min_version,
        .ciphers = gen->tls->ciphers,
        .ciphersuites = gen->tls->ciphersuites,
        .security_level = gen->tls->security_level,
        .verify_peer = TLS_VERIFY_REQUIRE,
    };
    char message[768];
    int r;

    if (!db->shard_tls)
        return 0;
    gen->dbs[i].shard_ctx = shared_shard_ctx(gen, i);
    if (gen->dbs[i].shard_ctx)
        return 0;
    r = tls_context_build(&config, TLS_ROLE_CLIENT, &gen->dbs[i].shard_ctx, message,
                          sizeof(message));
    if (r < 0)
        snprintf(err, err_len, "database '%s': shard TLS: %s", db->name, message);
    return r;
}

static int resolve_shard(struct proxy_db *pdb, char *err, size_t err_len)
{
    char host[256], message[512] = "not host:port";
    int port;

    /* db_list_parse checked the form already. */
    if (db_split_address(pdb->config->shard, host, sizeof(host), &port) < 0 ||
        net_address_resolve(host, port, &pdb->shard, message, sizeof(message)) < 0) {
        snprintf(err, err_len, "database '%s': shard '%s': %s", pdb->config->name,
                 pdb->config->shard, message);
        return CV_ECONFIG;
    }
    snprintf(pdb->shard_host, sizeof(pdb->shard_host), "%s", host);
    return 0;
}

/* "0.0.0.0:12000", "[::]:12000" */
static const char *pdb_listen_name(const struct proxy_db *pdb)
{
    static __thread char name[NET_ADDRESS_MAX + 8];
    const char *host = generation_listen_host(pdb->config);

    snprintf(name, sizeof(name), strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, pdb->config->port);
    return name;
}

static int claim_listener(struct generation *gen, size_t i, struct listener_table *listeners,
                          char *err, size_t err_len)
{
    struct proxy_db *pdb = &gen->dbs[i];
    const char *host = generation_listen_host(pdb->config);
    struct net_address address;
    int r;

    if (net_address_parse(host, pdb->config->port, &address) < 0) {
        snprintf(err, err_len, "database '%s': listen '%s' is not an IP address", pdb->config->name,
                 host);
        return CV_ECONFIG;
    }
    r = listeners_claim(listeners, &address, &pdb->listener);
    if (r < 0) {
        snprintf(err, err_len, "cannot listen on %s for database '%s': %s", pdb_listen_name(pdb),
                 pdb->config->name, strerror(-r));
        return r;
    }
    /* An unset listen and "0.0.0.0" are one address: the file's check cannot tell. */
    for (size_t j = 0; j < i; j++) {
        if (gen->dbs[j].listener == pdb->listener) {
            snprintf(err, err_len, "database '%s' listens on %s, as '%s' does", pdb->config->name,
                     pdb->listener->name, gen->dbs[j].config->name);
            return CV_ECONFIG;
        }
    }
    return 0;
}

static int build_db(struct generation *gen, size_t i, struct listener_table *listeners,
                    struct stats *stats, char *err, size_t err_len)
{
    struct proxy_db *pdb = &gen->dbs[i];
    int r;

    pdb->config = &gen->list.dbs[i];
    pdb->stats = stats_slot(stats, pdb->config->name);
    if (!pdb->stats) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    if ((r = build_server_ctx(gen, i, err, err_len)) < 0 ||
        (r = build_shard_ctx(gen, i, err, err_len)) < 0 ||
        (r = resolve_shard(pdb, err, err_len)) < 0)
        return r;
    return claim_listener(gen, i, listeners, err, err_len);
}

/* Puts the list in name order, so the order of databases (and of reports) never depends on
 * the file's. */
static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct db_config *)a)->name, ((const struct db_config *)b)->name);
}

int generation_build(const char *tls_path, const char *databases_path,
                     struct listener_table *listeners, struct stats *stats,
                     struct generation **ret_gen, char *err, size_t err_len)
{
    struct generation *gen = calloc(1, sizeof(*gen));
    int r;

    if (!gen) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    r = tls_config_read(tls_path, &gen->tls, err, err_len);
    if (r >= 0)
        r = build_base_ctx(gen, tls_path, err, err_len);
    if (r >= 0)
        r = db_list_read(databases_path, &gen->list, err, err_len);
    if (r >= 0 && !(gen->dbs = calloc(gen->list.n + 1, sizeof(*gen->dbs)))) {
        snprintf(err, err_len, "out of memory");
        r = -ENOMEM;
    }
    if (r >= 0) {
        qsort(gen->list.dbs, gen->list.n, sizeof(*gen->list.dbs), by_name);
        gen->n = gen->list.n;
    }
    for (size_t i = 0; r >= 0 && i < gen->n; i++)
        r = build_db(gen, i, listeners, stats, err, err_len);
    if (r < 0) {
        generation_free(gen);
        return r;
    }
    *ret_gen = gen;
    return 0;
}
