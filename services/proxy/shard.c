/* The shard's side of a connection: a non-blocking connect, then TLS as a client when asked for.
 */
#include "conn.h"
#include "generation.h"
#include "log.h"
#include "stats.h"
#include "tls_context.h"
#include "worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

int shard_log_failure(struct conn *c, const char *what, const char *reason)
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

static bool is_ip_address(const char *host)
{
    unsigned char buf[16];

    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/*
 * The shard's certificate must name the host the database's shard setting
 * gives (an IP address SAN for an address): a certificate of the cluster's CA
 * that belongs to another node or service is not the shard's.
 */
static int expect_host(SSL *ssl, const char *host)
{
    if (!host || !*host)
        return 0;
    if (is_ip_address(host))
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1 ? 0 : -1;
    if (SSL_set_tlsext_host_name(ssl, host) != 1 || SSL_set1_host(ssl, host) != 1)
        return -1;
    return 0;
}

int shard_side_open(struct netconn *side, const struct net_address *address, SSL_CTX *ctx,
                    const char *host, const char **ret_reason)
{
    int in_progress = 0;
    int fd = net_connect(address, &in_progress);

    netconn_init(side, fd, in_progress);
    if (fd < 0) {
        *ret_reason = strerror(-fd);
        return -1;
    }
    if (ctx && (conn_start_tls(side, ctx, false) < 0 || expect_host(netconn_ssl(side), host) < 0)) {
        ERR_clear_error();
        *ret_reason = "cannot set up TLS: out of memory";
        return -1;
    }
    return 0;
}

static void tls_failure(const struct netconn *side, char *reason, size_t len)
{
    long verify = SSL_get_verify_result(netconn_ssl(side));

    if (verify != X509_V_OK) {
        snprintf(reason, len, "certificate verify failed: %s",
                 X509_verify_cert_error_string(verify));
        ERR_clear_error();
        return;
    }
    tls_error_string(reason, len);
    if (!*reason)
        snprintf(reason, len, "%s",
                 netconn_errno(side) ? strerror(netconn_errno(side)) : "connection closed");
}

int shard_side_progress(struct netconn *side, const char **ret_what, char *reason, size_t len)
{
    int r = netconn_handshake(side);

    if (r == NETCONN_AGAIN)
        return 0;
    if (r == NETCONN_ERROR && netconn_is_connecting(side)) {
        *ret_what = "cannot connect to";
        snprintf(reason, len, "%s", strerror(netconn_errno(side)));
        return -1;
    }
    if (r == NETCONN_ERROR) {
        *ret_what = "TLS handshake failed with";
        tls_failure(side, reason, len);
        return -1;
    }
    return 1;
}

int shard_open(struct conn *c)
{
    const char *reason = NULL;

    c->shard_opened_ms = conn_now_ms();
    if (shard_side_open(&c->shard, &c->shard_address, c->shard_ctx, c->shard_host, &reason) < 0)
        return shard_log_failure(c, "cannot connect to", reason);
    return 0;
}

int shard_progress(struct conn *c)
{
    const char *what = "";
    char reason[512];
    int r = shard_side_progress(&c->shard, &what, reason, sizeof(reason));

    return r < 0 ? shard_log_failure(c, what, reason) : 0;
}
