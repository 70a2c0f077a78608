/* A replica link: the port the local shard replicates from, its session, its state and errors. */
#include "syncer.h"

#include "log.h"
#include "netutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 5000
#define REPEAT_LOG_SECONDS 60 /* an unchanged error is logged again after this long */

static const char *const error_words[] = {
    [LINK_ERROR_NONE] = "",
    [LINK_ERROR_UNREACHABLE] = "source_unreachable",
    [LINK_ERROR_SOURCE_UNTRUSTED] = "source_certificate_not_trusted",
    [LINK_ERROR_SYNCER_UNTRUSTED] = "syncer_certificate_not_trusted",
    [LINK_ERROR_HOSTNAME] = "host_name_mismatch",
    [LINK_ERROR_TLS_VERSION] = "tls_version",
    [LINK_ERROR_TLS] = "tls",
    [LINK_ERROR_BROKEN] = "link_ended",
    [LINK_ERROR_SHARD] = "shard",
};

const char *link_error_word(enum link_error error)
{
    return (unsigned)error < sizeof(error_words) / sizeof(error_words[0]) ? error_words[error]
                                                                          : "?";
}

void link_set_state(struct link *link, const char *state)
{
    if (link->state && strcmp(link->state, state) == 0)
        return;
    link->state = state;
    link->since = time(NULL);
}

void link_fail(struct link *link, enum link_error error, const char *fmt, ...)
{
    time_t now = time(NULL);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(link->last_error, sizeof(link->last_error), fmt, ap);
    va_end(ap);
    link->error = error;
    link->last_error_at = now;
    link_set_state(link, "down");
    /* Each new reason once; the same one again only after a while (the shard retries every
     * second). */
    if (strcmp(link->last_error, link->logged_error) == 0 &&
        now - link->logged_at < REPEAT_LOG_SECONDS)
        return;
    snprintf(link->logged_error, sizeof(link->logged_error), "%s", link->last_error);
    link->logged_at = now;
    log_warning("Replica '%s': %s", link->name, link->last_error);
}

uint64_t link_backoff_ms(const struct link *link)
{
    uint64_t now = syncer_now_ms();

    return link->retry_at_ms > now ? link->retry_at_ms - now : 0;
}

void link_session_ended(struct link *link, struct session *session)
{
    uint64_t delay = BACKOFF_FIRST_MS;

    if (link->session == session)
        link->session = NULL;
    /* A link that was up reconnects at once; one that never came up waits longer each time. */
    if (session->stream.phase == REPLSTREAM_STREAMING) {
        link->failures = 0;
        link->retry_at_ms = 0;
        return;
    }
    link->failures++;
    for (unsigned i = 1; i < link->failures && delay < BACKOFF_MAX_MS; i++)
        delay *= 2;
    link->retry_at_ms = syncer_now_ms() + (delay < BACKOFF_MAX_MS ? delay : BACKOFF_MAX_MS);
}

/* The local shard connects (or reconnects): its connection replaces any other. */
static void on_accept(evutil_socket_t fd, short what, void *arg)
{
    struct link *link = arg;
    int client;

    (void)what;
    while ((client = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        struct session *session;

        net_set_nodelay(client);
        if (link->session) {
            log_info("Replica '%s': the shard connected again; the previous session ends",
                     link->name);
            session_free(link->session);
            link->session = NULL;
        }
        session = session_new(link, client);
        if (!session) {
            log_error("Replica '%s': out of memory for a session", link->name);
            continue;
        }
        link->session = session;
        session_connect(session);
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        log_warning("Replica '%s': accept on 127.0.0.1:%d: %s", link->name, link->port,
                    strerror(errno));
}

/* Listens on 127.0.0.1:port (0: any free one) and learns the port. */
static int open_port(struct link *link, int port, char *err, size_t err_len)
{
    struct sockaddr_storage bound;
    socklen_t len = sizeof(bound);
    struct net_address address;
    struct event *ev;
    int fd;

    net_address_parse("127.0.0.1", port, &address);
    fd = net_listen(&address, 0, 16);
    if (fd < 0) {
        snprintf(err, err_len, "database '%s': cannot listen on 127.0.0.1:%d: %s", link->name, port,
                 strerror(-fd));
        return fd;
    }
    if (getsockname(fd, (struct sockaddr *)&bound, &len) < 0 ||
        !(ev = event_new(link->syncer->base, fd, EV_READ | EV_PERSIST, on_accept, link))) {
        close(fd);
        snprintf(err, err_len, "database '%s': cannot watch its port", link->name);
        return -ENOMEM;
    }
    if (link->accept_ev)
        event_free(link->accept_ev);
    if (link->listen_fd >= 0)
        close(link->listen_fd);
    link->accept_ev = ev;
    link->listen_fd = fd;
    link->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    event_add(ev, NULL);
    return 0;
}

int link_new(struct syncer *syncer, const struct link_settings *settings, struct link **ret_link,
             char *err, size_t err_len)
{
    struct link *link = calloc(1, sizeof(*link));
    int r;

    if (!link) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    link->syncer = syncer;
    link->settings = settings;
    link->listen_fd = -1;
    link->source_offset = link->replica_offset = -1;
    snprintf(link->name, sizeof(link->name), "%s", settings->db->name);
    SSL_CTX_up_ref(settings->ctx);
    link->ctx = settings->ctx;
    link_set_state(link, "down");
    r = open_port(link, settings->db->replica_local_port, err, err_len);
    if (r == 0 && !(link->shard = shardctl_new(link))) {
        snprintf(err, err_len, "out of memory");
        r = -ENOMEM;
    }
    if (r < 0) {
        link_free(link, false);
        return r;
    }
    log_info("Replica '%s': of %s; shard %s replicates from 127.0.0.1:%d", link->name,
             settings->db->replica_source, settings->db->shard, link->port);
    *ret_link = link;
    return 0;
}

static bool same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* True when the session must end: it goes somewhere else, or is checked another way. */
static bool endpoint_changed(const struct db_config *a, const struct db_config *b)
{
    return !same(a->replica_source, b->replica_source) ||
           !same(a->replica_server_name, b->replica_server_name) ||
           a->replica_verify_hostname != b->replica_verify_hostname;
}

static bool shard_changed(const struct db_config *a, const struct db_config *b)
{
    return !same(a->shard, b->shard) || a->shard_tls != b->shard_tls ||
           !same(a->shard_cert_file, b->shard_cert_file) ||
           !same(a->shard_key_file, b->shard_key_file) || !same(a->shard_ca_file, b->shard_ca_file);
}

int link_update(struct link *link, const struct link_settings *settings, char *err, size_t err_len)
{
    const struct db_config *old = link->settings->db, *db = settings->db;
    bool move_port =
        db->replica_local_port != old->replica_local_port && db->replica_local_port != link->port;
    char reason[256];
    int r;

    if (shard_changed(old, db)) {
        shardctl_free(link->shard);
        link->shard = NULL;
        shardctl_release(old, link->settings->shard_ctx);
    }
    if (move_port && (r = open_port(link, db->replica_local_port, err, err_len)) < 0)
        return r;
    link->settings = settings;
    SSL_CTX_free(link->ctx);
    SSL_CTX_up_ref(settings->ctx);
    link->ctx = settings->ctx;
    /* New certificates or trust: the next attempt goes at once, not after the backoff. */
    link->failures = 0;
    link->retry_at_ms = 0;
    if (!link->shard && !(link->shard = shardctl_new(link))) {
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    if (!link->session)
        return 0;
    if (endpoint_changed(old, db) || move_port) {
        log_info("Replica '%s': its settings changed: the session ends, the next one goes to %s",
                 link->name, db->replica_source);
        session_free(link->session);
        link->session = NULL;
        link_set_state(link, "down");
    } else if (link->session->phase == PHASE_WAITING) {
        evtimer_del(link->session->timer);
        session_connect(link->session);
    } else if (session_reverify(link->session, link->ctx, reason, sizeof(reason)) < 0) {
        link_fail(link, LINK_ERROR_SOURCE_UNTRUSTED,
                  "source certificate no longer trusted after the reload: %s (SHA256 %s); the "
                  "link ends",
                  reason, link->session->peer_fingerprint);
        session_free(link->session);
        link->session = NULL;
    }
    return 0;
}

void link_free(struct link *link, bool release_shard)
{
    if (!link)
        return;
    session_free(link->session);
    shardctl_free(link->shard);
    if (release_shard)
        shardctl_release(link->settings->db, link->settings->shard_ctx);
    if (link->accept_ev)
        event_free(link->accept_ev);
    if (link->listen_fd >= 0)
        close(link->listen_fd);
    SSL_CTX_free(link->ctx);
    free(link);
}
