/* The shard's side of a connection: a non-blocking connect, then TLS as a client when asked for.
 */
#include "conn.h"
#include "generation.h"
#include "log.h"
#include "stats.h"
#include "tls_context.h"
#include "worker.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

/*
 * A shard that cannot be reached fails every client's connection: one line
 * per connection within the worker's rate limit, counted as an error.
 */
static int shard_failed(struct conn *c, const char *what, const char *reason)
{
    char shard[NET_ADDRESS_MAX], peer[NET_ADDRESS_MAX], held[64];
    unsigned long suppressed;

    stats_add(&c->stats->errors, 1);
    if (!worker_log_allowed(c->worker, &suppressed))
        return -1;
    net_address_format((const struct sockaddr *)&c->shard_address.addr, c->shard_address.len, shard,
                       sizeof(shard));
    conn_peer(c, peer, sizeof(peer));
    log_warning("Database '%s': %s shard %s for client %s: %s%s", c->db_name, what, shard, peer,
                reason, worker_held_back(suppressed, held, sizeof(held)));
    return -1;
}

int shard_open(struct conn *c, const struct proxy_db *db)
{
    int in_progress = 0;
    int fd = net_connect(&db->shard, &in_progress);

    c->shard_address = db->shard;
    c->shard.fd = -1;
    if (fd < 0)
        return shard_failed(c, "cannot connect to", strerror(-fd));
    side_init_plain(&c->shard, fd);
    if (db->shard_ctx && side_init_tls(&c->shard, fd, db->shard_ctx, false) < 0)
        return shard_failed(c, "cannot set up TLS to", "out of memory");
    c->shard_connecting = in_progress;
    /* A connection made at once has room to write; one in progress waits for its event. */
    c->shard.writable = !in_progress;
    return 0;
}

static int handshake_failed(struct conn *c)
{
    char reason[512];
    long verify = SSL_get_verify_result(c->shard.ssl);

    if (verify != X509_V_OK) {
        snprintf(reason, sizeof(reason), "certificate verify failed: %s",
                 X509_verify_cert_error_string(verify));
        ERR_clear_error();
    } else {
        tls_error_string(reason, sizeof(reason));
        if (!*reason)
            snprintf(reason, sizeof(reason), "%s",
                     c->shard.error ? strerror(c->shard.error) : "connection closed");
    }
    return shard_failed(c, "TLS handshake failed with", reason);
}

int shard_progress(struct conn *c)
{
    int r;

    if (c->shard_connecting) {
        if (!c->shard.writable)
            return 0;
        r = net_connect_result(c->shard.fd);
        if (r < 0)
            return shard_failed(c, "cannot connect to", strerror(-r));
        c->shard_connecting = false;
    }
    r = c->shard.ops->handshake(&c->shard);
    if (r == SIDE_AGAIN)
        return 0;
    if (r == SIDE_ERROR)
        return handshake_failed(c);
    c->shard.ready = true;
    return 0;
}
