/* A session: the local shard's replication connection, carried to the source over TLS. */
#include "syncer.h"

#include "log.h"
#include "netutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HANDSHAKE_TIMEOUT_MS 10000 /* to reach the source, its TLS handshake included */

static void end_session(struct session *s);

/* --- what the handshake sees: the source's certificate and the alerts it sends --- */

static void subject_of(X509 *cert, char *buf, size_t len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n = 0;

    if (bio && cert && X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253))
        n = BIO_get_mem_data(bio, &data);
    snprintf(buf, len, "%.*s", (int)(n > 0 ? n : 0), data ? data : "");
    BIO_free(bio);
}

/* Keeps the first reason the source's certificate was refused, and the certificate's identity. */
static int on_verify(int ok, X509_STORE_CTX *store)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct session *s = ssl ? SSL_get_app_data(ssl) : NULL;

    if (!ok && s && s->verify_error == X509_V_OK) {
        X509 *leaf = X509_STORE_CTX_get0_cert(store);

        s->verify_error = X509_STORE_CTX_get_error(store);
        tls_cert_fingerprint(leaf, s->verify_fingerprint, sizeof(s->verify_fingerprint));
        subject_of(leaf, s->verify_subject, sizeof(s->verify_subject));
    }
    return ok;
}

static void on_info(const SSL *ssl, int where, int ret)
{
    struct session *s = SSL_get_app_data(ssl);

    if (s && (where & SSL_CB_READ_ALERT) && (ret >> 8) == SSL3_AL_FATAL && s->alert < 0)
        s->alert = ret & 0xff;
}

void session_prepare_ctx(SSL_CTX *ctx)
{
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, on_verify);
    SSL_CTX_set_info_callback(ctx, on_info);
}

/* --- telling failures apart --- */

static bool alert_is_about_our_certificate(int alert)
{
    switch (alert) {
    case SSL_AD_BAD_CERTIFICATE:
    case SSL_AD_UNSUPPORTED_CERTIFICATE:
    case SSL_AD_CERTIFICATE_REVOKED:
    case SSL_AD_CERTIFICATE_EXPIRED:
    case SSL_AD_CERTIFICATE_UNKNOWN:
    case SSL_AD_UNKNOWN_CA:
    case SSL_AD_ACCESS_DENIED:
    case SSL_AD_CERTIFICATE_REQUIRED:
        return true;
    default:
        return false;
    }
}

/* A handshake (or, in TLS 1.3, the first read) failed: why, as the operator needs it. */
static void classify_failure(struct session *s, const char *tls_reason)
{
    struct link *link = s->link;
    const struct db_config *db = link->settings->db;
    const char *min = link->syncer->gen->tls->min_version;

    if (s->verify_error == X509_V_ERR_HOSTNAME_MISMATCH) {
        link_fail(link, LINK_ERROR_HOSTNAME,
                  "host name mismatch: the source's certificate (%s, SHA256 %s) is not valid for "
                  "'%s'",
                  s->verify_subject, s->verify_fingerprint, s->server_name);
    } else if (s->verify_error != X509_V_OK) {
        link_fail(link, LINK_ERROR_SOURCE_UNTRUSTED,
                  "source certificate not trusted: %s (%s, SHA256 %s)%s; trust its CA here with "
                  "'certvisorctl replica trust add <list> <certificate file>'",
                  X509_verify_cert_error_string(s->verify_error), s->verify_subject,
                  s->verify_fingerprint,
                  tls_ca_file_empty(db->replica_ca_file) ? "; the trust list is empty" : "");
    } else if (s->alert >= 0 && alert_is_about_our_certificate(s->alert)) {
        link_fail(link, LINK_ERROR_SYNCER_UNTRUSTED,
                  "syncer certificate not trusted: the source refused it (SHA256 %s) with TLS "
                  "alert '%s'; the source's cluster must trust it "
                  "(authentication_ssl_client_certs there)",
                  s->local_fingerprint, SSL_alert_desc_string_long(s->alert));
    } else if (s->alert == SSL_AD_PROTOCOL_VERSION || s->alert == SSL_AD_INSUFFICIENT_SECURITY ||
               strstr(tls_reason, "unsupported protocol") ||
               strstr(tls_reason, "wrong ssl version") ||
               strstr(tls_reason, "no protocols available")) {
        link_fail(link, LINK_ERROR_TLS_VERSION,
                  "TLS version below the policy: the source and this node share no TLS version "
                  "from %s up (min_data_TLS_version here)%s%s",
                  min, s->alert >= 0 ? "; TLS alert " : "",
                  s->alert >= 0 ? SSL_alert_desc_string_long(s->alert) : "");
    } else if (s->alert >= 0) {
        link_fail(link, LINK_ERROR_TLS, "TLS handshake with the source failed: TLS alert '%s'",
                  SSL_alert_desc_string_long(s->alert));
    } else if (s->phase == PHASE_OPEN) {
        link_fail(link, LINK_ERROR_BROKEN,
                  "the source %s closed the connection after the TLS handshake without a word "
                  "(%s): its shard may be down",
                  db->replica_source, *tls_reason ? tls_reason : "end of stream");
    } else {
        link_fail(link, LINK_ERROR_TLS,
                  "TLS handshake with the source failed: %s (is %s a TLS endpoint: tls_mode "
                  "enabled or replica_ssl?)",
                  *tls_reason ? tls_reason : "the connection closed", db->replica_source);
    }
}

/* An operation on the source's connection failed: classified before the source spoke. */
static void remote_failed(struct session *s)
{
    char reason[512] = "";

    tls_error_string(reason, sizeof(reason));
    if (!*reason && netconn_errno(&s->remote))
        snprintf(reason, sizeof(reason), "%s", strerror(netconn_errno(&s->remote)));
    if (!s->source_spoke)
        classify_failure(s, reason);
    else
        link_fail(s->link, LINK_ERROR_BROKEN, "the link with the source %s ended: %s",
                  s->link->settings->db->replica_source,
                  *reason ? reason : "the connection closed");
    end_session(s);
}

/* --- forwarding --- */

static size_t room_up(const struct session *s)
{
    return SYNCER_BUF_SIZE - s->up_end;
}

static size_t room_down(const struct session *s)
{
    return SYNCER_BUF_SIZE - s->down_end;
}

/* Keeps each buffer's bytes at its start, so that its room is all at the end. */
static void compact(char *buf, size_t *start, size_t *end)
{
    if (*start == *end) {
        *start = *end = 0;
    } else if (*start > 0 && *end == SYNCER_BUF_SIZE) {
        memmove(buf, buf + *start, *end - *start);
        *end -= *start;
        *start = 0;
    }
}

/* The source sent its first bytes: it accepted the syncer certificate. */
static void source_spoke(struct session *s)
{
    s->source_spoke = true;
    link_set_state(s->link, "syncing");
}

/* Follows the stream: the link is up once the command stream flows. */
static void follow_stream(struct session *s)
{
    struct link *link = s->link;
    const struct replstream *stream = &s->stream;

    link->source_offset = stream->source_offset;
    link->replica_offset = stream->ack_offset;
    link->ack_at_ms = stream->ack_at_ms;
    if (stream->phase == REPLSTREAM_STREAMING && strcmp(link->state, "up") != 0) {
        if (stream->full_sync)
            link->full_syncs++;
        else
            link->partial_syncs++;
        link->failures = 0;
        link_set_state(link, "up");
        link->error = LINK_ERROR_NONE;
        log_notice("Replica '%s': link up with %s (%s %s, source SHA256 %s): %s from offset %lld",
                   link->name, link->settings->db->replica_source, s->tls_version, s->cipher,
                   s->peer_fingerprint,
                   stream->full_sync ? "full resynchronization" : "partial resynchronization",
                   stream->source_offset);
    }
}

/* One pass over both directions. Returns 1 on progress, 0 when waiting, -1 when it ended. */
static int pump_once(struct session *s)
{
    bool open = s->phase == PHASE_OPEN;
    int progress = 0;
    ssize_t n;

    if (!s->local_eof && room_up(s)) {
        n = netconn_read(&s->local, s->up + s->up_end, room_up(s));
        if (n > 0) {
            replstream_upstream(&s->stream, s->up + s->up_end, (size_t)n, syncer_now_ms());
            s->up_end += (size_t)n;
            progress = 1;
        } else if (n == 0 || n == NETCONN_ERROR) {
            s->local_eof = true;
            progress = 1;
        }
    }
    if (open && s->up_end > s->up_start) {
        n = netconn_write(&s->remote, s->up + s->up_start, s->up_end - s->up_start);
        if (n == NETCONN_ERROR) {
            remote_failed(s);
            return -1;
        }
        if (n > 0) {
            s->up_start += (size_t)n;
            s->link->bytes_out += (uint64_t)n;
            progress = 1;
        }
    }
    if (open && !s->remote_eof && room_down(s)) {
        n = netconn_read(&s->remote, s->down + s->down_end, room_down(s));
        if (n == NETCONN_ERROR) {
            remote_failed(s);
            return -1;
        }
        if (n > 0) {
            if (!s->source_spoke)
                source_spoke(s);
            replstream_downstream(&s->stream, s->down + s->down_end, (size_t)n);
            s->down_end += (size_t)n;
            s->link->bytes_in += (uint64_t)n;
            progress = 1;
        } else if (n == 0) {
            s->remote_eof = true;
            progress = 1;
        }
    }
    if (s->down_end > s->down_start) {
        n = netconn_write(&s->local, s->down + s->down_start, s->down_end - s->down_start);
        if (n == NETCONN_ERROR) {
            s->local_eof = true;
            return 1;
        }
        if (n > 0) {
            s->down_start += (size_t)n;
            progress = 1;
        }
    }
    compact(s->up, &s->up_start, &s->up_end);
    compact(s->down, &s->down_start, &s->down_end);
    return progress;
}

/*
 * Moves bytes both ways until nothing moves: every read goes on until the
 * socket (or TLS's buffer) is empty or the buffer full, so that the next event
 * finds the state it announces.
 */
static void pump(struct session *s)
{
    int r;

    while ((r = pump_once(s)) > 0)
        ;
    if (r < 0)
        return; /* ended, freed */
    follow_stream(s);
    if (s->local_eof) {
        link_fail(s->link, LINK_ERROR_BROKEN, "the local shard closed its replication connection");
        end_session(s);
        return;
    }
    if (s->remote_eof && s->down_end == s->down_start) {
        if (!s->source_spoke) {
            remote_failed(s);
            return;
        }
        link_fail(s->link, LINK_ERROR_BROKEN, "the source %s closed the link",
                  s->link->settings->db->replica_source);
        end_session(s);
        return;
    }
}

/* --- the handshake --- */

/* The source's certificate and the session's parameters, once the handshake is done. */
static void record_tls(struct session *s)
{
    SSL *ssl = netconn_ssl(&s->remote);
    X509 *peer = SSL_get0_peer_certificate(ssl);

    snprintf(s->tls_version, sizeof(s->tls_version), "%s", SSL_get_version(ssl));
    snprintf(s->cipher, sizeof(s->cipher), "%s", SSL_get_cipher_name(ssl));
    tls_cert_fingerprint(peer, s->peer_fingerprint, sizeof(s->peer_fingerprint));
    subject_of(peer, s->peer_subject, sizeof(s->peer_subject));
}

/* Completes the TCP connection to the source, then the TLS handshake. */
static void handshake(struct session *s)
{
    int r = netconn_handshake(&s->remote);

    if (!netconn_is_connecting(&s->remote))
        s->phase = PHASE_HANDSHAKE;
    if (r == NETCONN_AGAIN)
        return;
    if (r == NETCONN_ERROR && netconn_is_connecting(&s->remote)) {
        link_fail(s->link, LINK_ERROR_UNREACHABLE, "source unreachable: %s: %s",
                  s->link->settings->db->replica_source, strerror(netconn_errno(&s->remote)));
        end_session(s);
        return;
    }
    if (r == NETCONN_ERROR) {
        remote_failed(s);
        return;
    }
    evtimer_del(s->timer);
    record_tls(s);
    s->phase = PHASE_OPEN;
    log_info("Replica '%s': TLS with %s: %s %s, source certificate SHA256 %s (%s)", s->link->name,
             s->link->settings->db->replica_source, s->tls_version, s->cipher, s->peer_fingerprint,
             s->peer_subject);
    pump(s);
}

static void on_local(void *arg)
{
    pump(arg);
}

static void on_remote(void *arg)
{
    struct session *s = arg;

    if (s->phase == PHASE_CONNECTING || s->phase == PHASE_HANDSHAKE)
        handshake(s);
    else if (s->phase == PHASE_OPEN)
        pump(s);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct session *s = arg;

    (void)fd;
    (void)what;
    if (s->phase == PHASE_WAITING) { /* the backoff is over */
        session_connect(s);
        return;
    }
    link_fail(s->link, LINK_ERROR_UNREACHABLE,
              "source unreachable: %s did not complete %s within %d s",
              s->link->settings->db->replica_source,
              s->phase == PHASE_CONNECTING ? "the TCP connection" : "the TLS handshake",
              HANDSHAKE_TIMEOUT_MS / 1000);
    end_session(s);
}

/* --- life --- */

struct session *session_new(struct link *link, int local_fd)
{
    struct session *s = calloc(1, sizeof(*s));

    if (!s) {
        close(local_fd);
        return NULL;
    }
    s->link = link;
    s->alert = -1;
    s->up = malloc(SYNCER_BUF_SIZE);
    s->down = malloc(SYNCER_BUF_SIZE);
    s->timer = evtimer_new(link->syncer->base, on_timeout, s);
    netconn_init(&s->local, local_fd, false);
    netconn_init(&s->remote, -1, false);
    replstream_init(&s->stream);
    s->started_ms = syncer_now_ms();
    if (!s->up || !s->down || !s->timer ||
        netconn_watch(&s->local, link->syncer->base, on_local, s) < 0) {
        session_free(s);
        return NULL;
    }
    return s;
}

/* Host names go in SNI; addresses do not (RFC 6066). */
static bool is_address(const char *host)
{
    unsigned char buf[16];

    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

/* The TLS side of the connection: SNI, the host name to check, and the session's own record. */
static int start_tls(struct session *s, const char *host)
{
    const struct db_config *db = s->link->settings->db;
    const char *name = db->replica_server_name ? db->replica_server_name : host;
    SSL *ssl;

    if (netconn_start_tls(&s->remote, s->link->ctx, false) < 0)
        return -ENOMEM;
    ssl = netconn_ssl(&s->remote);
    SSL_set_app_data(ssl, s);
    snprintf(s->server_name, sizeof(s->server_name), "%s", name);
    tls_cert_fingerprint(SSL_get_certificate(ssl), s->local_fingerprint,
                         sizeof(s->local_fingerprint));
    if (!is_address(name) && SSL_set_tlsext_host_name(ssl, name) != 1)
        return -ENOMEM;
    if (db->replica_verify_hostname) {
        /* An address is checked against the certificate's IP names, a name against its DNS names.
         */
        if (is_address(name) ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1
                             : SSL_set1_host(ssl, name) != 1)
            return -ENOMEM;
    }
    return 0;
}

static void keepalive(int fd)
{
    int on = 1, idle = 30, interval = 10, count = 3;

    /* A source that vanishes without a word is noticed in about a minute. */
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
}

void session_connect(struct session *s)
{
    struct link *link = s->link;
    const char *source = link->settings->db->replica_source;
    struct timeval timeout = {HANDSHAKE_TIMEOUT_MS / 1000, 0};
    struct net_address address;
    char host[256], why[256];
    int port, in_progress = 0, fd;
    uint64_t wait = link_backoff_ms(link);

    if (wait > 0 && s->phase == PHASE_WAITING && !evtimer_pending(s->timer, NULL)) {
        struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)(wait % 1000) * 1000};

        link_set_state(link, "connecting");
        evtimer_add(s->timer, &tv);
        return;
    }
    link->sessions++;
    link_set_state(link, "connecting");
    if (db_split_address(source, host, sizeof(host), &port) < 0 ||
        net_address_resolve(host, port, &address, why, sizeof(why)) < 0) {
        link_fail(link, LINK_ERROR_UNREACHABLE, "source unreachable: %s: %s", source,
                  db_split_address(source, host, sizeof(host), &port) < 0 ? "not host:port" : why);
        end_session(s);
        return;
    }
    fd = net_connect(&address, &in_progress);
    if (fd < 0) {
        link_fail(link, LINK_ERROR_UNREACHABLE, "source unreachable: %s: %s", source,
                  strerror(-fd));
        end_session(s);
        return;
    }
    keepalive(fd);
    netconn_init(&s->remote, fd, in_progress); /* the session owns fd from here */
    if (start_tls(s, host) < 0 || netconn_watch(&s->remote, link->syncer->base, on_remote, s) < 0) {
        link_fail(link, LINK_ERROR_TLS, "cannot set up TLS for %s: out of memory", source);
        end_session(s);
        return;
    }
    s->phase = PHASE_CONNECTING;
    evtimer_add(s->timer, &timeout);
    handshake(s);
}

void session_free(struct session *s)
{
    if (!s)
        return;
    if (s->timer)
        event_free(s->timer);
    /* close_notify, one try, to a source the session has spoken TLS with */
    netconn_goodbye(&s->remote);
    netconn_close(&s->local);
    netconn_close(&s->remote);
    free(s->up);
    free(s->down);
    free(s);
}

static void end_session(struct session *s)
{
    link_session_ended(s->link, s);
    session_free(s);
}

int session_reverify(struct session *s, SSL_CTX *ctx, char *reason, size_t reason_len)
{
    SSL *ssl = netconn_ssl(&s->remote);
    STACK_OF(X509) *chain = ssl ? SSL_get_peer_cert_chain(ssl) : NULL;
    X509 *leaf = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
    X509_STORE_CTX *store = X509_STORE_CTX_new();
    const struct db_config *db = s->link->settings->db;
    int ok = 0;

    if (s->phase != PHASE_OPEN || !leaf) {
        X509_STORE_CTX_free(store);
        return 0; /* not established: the next handshake verifies with the new trust */
    }
    if (store && X509_STORE_CTX_init(store, SSL_CTX_get_cert_store(ctx), leaf, chain) == 1) {
        X509_STORE_CTX_set_default(store, "ssl_server");
        if (db->replica_verify_hostname) {
            X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(store);

            if (is_address(s->server_name))
                X509_VERIFY_PARAM_set1_ip_asc(param, s->server_name);
            else
                X509_VERIFY_PARAM_set1_host(param, s->server_name, 0);
        }
        ok = X509_verify_cert(store) == 1;
        if (!ok)
            snprintf(reason, reason_len, "%s",
                     X509_verify_cert_error_string(X509_STORE_CTX_get_error(store)));
    } else {
        snprintf(reason, reason_len, "cannot check it: out of memory");
    }
    X509_STORE_CTX_free(store);
    ERR_clear_error();
    return ok ? 0 : -1;
}
