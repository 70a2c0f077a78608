/* The client's side of a connection: TLS or plain by the first byte, the handshake, why it failed.
 */
#include "conn.h"
#include "log.h"
#include "stats.h"
#include "tls_context.h"
#include "worker.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

void conn_peer(const struct conn *c, char *buf, size_t len)
{
    net_peer_format(netconn_fd(&c->client), buf, len);
}

/*
 * replica_ssl: replication clients speak TLS, other clients plain, on one port.
 * Returns 1 once the kind is known, 0 while waiting, -1 to close.
 */
static int sniff(struct conn *c)
{
    int r = netconn_sniff_tls(&c->client);

    if (r == NETCONN_AGAIN)
        return 0;
    if (r <= 0) /* closed before saying anything, or reset: nothing to report */
        return -1;
    c->sniffing = false;
    if (r == NET_SNIFF_TLS && conn_start_tls(&c->client, c->sniff_ctx, true) < 0) {
        stats_add(&c->stats->errors, 1);
        return -1;
    }
    SSL_CTX_free(c->sniff_ctx);
    c->sniff_ctx = NULL;
    return 1;
}

/*
 * Why a client's handshake failed, in reason; true when it was for its
 * certificate (none sent where one is required, or one that does not verify).
 * OpenSSL's error queue is emptied.
 */
static bool failure_reason(const struct conn *c, char *reason, size_t len)
{
    long verify = SSL_get_verify_result(netconn_ssl(&c->client));
    unsigned long code = ERR_peek_error();

    if (verify != X509_V_OK) {
        snprintf(reason, len, "certificate verify failed: %s",
                 X509_verify_cert_error_string(verify));
        ERR_clear_error();
        return true;
    }
    if (ERR_GET_LIB(code) == ERR_LIB_SSL &&
        ERR_GET_REASON(code) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
        snprintf(reason, len, "no client certificate (one is required)");
        ERR_clear_error();
        return true;
    }
    tls_error_string(reason, len);
    if (!*reason)
        snprintf(reason, len, "%s",
                 netconn_errno(&c->client) ? strerror(netconn_errno(&c->client))
                                           : "connection closed during the handshake");
    return false;
}

/*
 * For `replica status` on a source: the last client refused for its
 * certificate, or that refused the proxy's (a TLS alert it sent: a replica
 * that does not trust this cluster).
 */
static void note_refusal(const struct conn *c, const char *peer, const char *reason, bool auth)
{
    char text[512];

    if (auth) {
        stats_note_refusal(stats_slot_of_name(c->db_name), peer, reason);
    } else if (strstr(reason, " alert ")) {
        snprintf(text, sizeof(text), "it refused the proxy certificate: %.400s", reason);
        stats_note_refusal(stats_slot_of_name(c->db_name), peer, text);
    }
}

/*
 * One line per client refused for its certificate (within the worker's rate
 * limit); other failed handshakes (scanners, old protocol versions, clients
 * that give up) are counted and logged at debug level only.
 */
static void handshake_failed(struct conn *c)
{
    char reason[512], peer[NET_ADDRESS_MAX], held[64];
    bool auth = failure_reason(c, reason, sizeof(reason));
    unsigned long suppressed;

    stats_add(&c->stats->handshake_failures, 1);
    conn_peer(c, peer, sizeof(peer));
    note_refusal(c, peer, reason, auth);
    if (!auth) {
        /* Scanners and clients of refused versions can be many: not a line each by default. */
        log_debug("Database '%s': TLS handshake with client %s failed: %s", c->db_name, peer,
                  reason);
        return;
    }
    stats_add(&c->stats->auth_failures, 1);
    if (!worker_log_allowed(c->worker, &suppressed))
        return;
    log_warning("Database '%s': client %s rejected: %s%s", c->db_name, peer, reason,
                worker_held_back(suppressed, held, sizeof(held)));
}

/*
 * A client whose certificate verified against the database's trust (client_ca_file: asked for
 * only when client_auth is optional or require) is a replication client: the syncer of a
 * replica on another cluster, with the certificate the source's trust list holds. Only such a
 * client may run SYNC, PSYNC and REPLCONF (command_policy.c).
 */
static bool trusted_certificate(SSL *ssl)
{
    return SSL_get0_peer_certificate(ssl) && SSL_get_verify_result(ssl) == X509_V_OK;
}

int client_progress(struct conn *c)
{
    int r;

    if (c->sniffing && (r = sniff(c)) <= 0)
        return r;
    r = netconn_handshake(&c->client);
    if (r == NETCONN_AGAIN)
        return 0;
    if (r == NETCONN_ERROR) {
        handshake_failed(c);
        return -1;
    }
    if (netconn_is_tls(&c->client)) {
        stats_add(&c->stats->handshakes, 1);
        c->replication_client = trusted_certificate(netconn_ssl(&c->client));
    }
    return 0;
}
