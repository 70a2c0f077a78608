/* The local shard: kept a replica of the syncer's port (REPLICAOF), and asked how it follows. */
#include "syncer.h"

#include "log.h"
#include "netutil.h"

#include <errno.h>
#include <openssl/err.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TICK_MS 1000           /* how often the shard is asked */
#define ANSWER_TIMEOUT_MS 3000 /* an answer (or a connection) takes no longer */
#define REPLY_MAX (64 * 1024)
#define RELEASE_TIMEOUT_MS 1000

struct shardctl {
    struct link *link;
    struct netconn conn; /* watched while open */
    struct event *tick;
    enum { SHARD_CLOSED, SHARD_CONNECTING, SHARD_HANDSHAKE, SHARD_IDLE, SHARD_BUSY } phase;
    enum { ASK_INFO, ASK_REPLICAOF } asking;
    uint64_t since_ms; /* when the current connection or question began */
    char out[128];
    size_t out_len, out_done;
    char *in;
    size_t in_len;
    /* what it said last */
    bool known;
    char role[16];
    char master_host[64];
    int master_port;
    char link_status[16];
    long long offset;
    char error[256]; /* the last problem logged ("" when none) */
};

/* Logs a problem with the shard once (until it changes or goes away). */
static void shard_problem(struct shardctl *shard, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void shard_problem(struct shardctl *shard, const char *fmt, ...)
{
    char text[sizeof(shard->error)];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (strcmp(text, shard->error) != 0)
        log_warning("Replica '%s': shard %s: %s", shard->link->name,
                    shard->link->settings->db->shard, text);
    snprintf(shard->error, sizeof(shard->error), "%s", text);
}

static void disconnect(struct shardctl *shard)
{
    netconn_goodbye(&shard->conn);
    netconn_close(&shard->conn);
    shard->phase = SHARD_CLOSED;
    shard->in_len = 0;
}

/* Queues a command as a RESP array of the given words. */
static void ask(struct shardctl *shard, int asking, const char *const *words, size_t n)
{
    int len = snprintf(shard->out, sizeof(shard->out), "*%zu\r\n", n);

    for (size_t i = 0; i < n; i++)
        len += snprintf(shard->out + len, sizeof(shard->out) - (size_t)len, "$%zu\r\n%s\r\n",
                        strlen(words[i]), words[i]);
    shard->out_len = (size_t)len;
    shard->out_done = 0;
    shard->asking = asking;
    shard->phase = SHARD_BUSY;
    shard->since_ms = syncer_now_ms();
}

/*
 * The length of the complete reply at the start of buf: a line (+, -, :) or a
 * bulk string; 0 while incomplete, -1 when it is neither.
 */
static long reply_length(const char *buf, size_t len)
{
    const char *crlf = memmem(buf, len, "\r\n", 2);
    long header, size;

    if (!crlf)
        return 0;
    header = crlf - buf + 2;
    if (buf[0] == '+' || buf[0] == '-' || buf[0] == ':')
        return header;
    if (buf[0] != '$')
        return -1;
    size = strtol(buf + 1, NULL, 10);
    if (size < 0)
        return header;
    return (size_t)(header + size + 2) <= len ? header + size + 2 : 0;
}

/* "key:value" of INFO's text into buf. */
static bool info_field(const char *text, const char *key, char *buf, size_t len)
{
    size_t key_len = strlen(key);

    for (const char *line = text; line && *line;
         line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, key, key_len) == 0 && line[key_len] == ':') {
            size_t n = strcspn(line + key_len + 1, "\r\n");

            snprintf(buf, len, "%.*s", (int)n, line + key_len + 1);
            return true;
        }
    }
    return false;
}

static void read_info(struct shardctl *shard, const char *text)
{
    struct link *link = shard->link;
    char port[16] = "0", offset[32] = "-1";
    char portword[16];

    shard->known = info_field(text, "role", shard->role, sizeof(shard->role));
    shard->master_host[0] = shard->link_status[0] = '\0';
    info_field(text, "master_host", shard->master_host, sizeof(shard->master_host));
    info_field(text, "master_port", port, sizeof(port));
    info_field(text, "master_link_status", shard->link_status, sizeof(shard->link_status));
    info_field(text, "slave_repl_offset", offset, sizeof(offset));
    shard->master_port = atoi(port);
    shard->offset = strtoll(offset, NULL, 10);
    shard->error[0] = '\0';
    if (strcmp(shard->role, "slave") == 0 && strcmp(shard->master_host, "127.0.0.1") == 0 &&
        shard->master_port == link->port)
        return;
    /* A master (a new or restarted shard), or pointed elsewhere: it replicates from us. */
    if (*shard->master_host)
        log_notice("Replica '%s': shard %s replicates from %s:%d; making it a replica of "
                   "127.0.0.1:%d",
                   link->name, link->settings->db->shard, shard->master_host, shard->master_port,
                   link->port);
    else
        log_notice("Replica '%s': shard %s is a %s; making it a replica of 127.0.0.1:%d",
                   link->name, link->settings->db->shard, shard->role, link->port);
    snprintf(portword, sizeof(portword), "%d", link->port);
    ask(shard, ASK_REPLICAOF, (const char *const[]){"REPLICAOF", "127.0.0.1", portword}, 3);
}

/* A complete reply arrived. */
static void answered(struct shardctl *shard, const char *reply, size_t len)
{
    if (reply[0] == '-') {
        shard_problem(shard, "%s refused: %.*s",
                      shard->asking == ASK_INFO ? "INFO replication" : "REPLICAOF",
                      (int)(len > 2 ? len - 3 : 0), reply + 1);
        shard->phase = SHARD_IDLE;
        return;
    }
    shard->phase = SHARD_IDLE;
    if (shard->asking == ASK_INFO && reply[0] == '$') {
        char *text = strndup(memchr(reply, '\n', len) + 1, len);

        if (text) {
            read_info(shard, text);
            free(text);
        }
    }
}

/* Writes the question, then reads until its answer is complete; a new question may follow. */
static void converse(struct shardctl *shard)
{
    while (shard->phase == SHARD_BUSY) {
        ssize_t n;
        long whole;

        if (shard->out_done < shard->out_len) {
            n = netconn_write(&shard->conn, shard->out + shard->out_done,
                              shard->out_len - shard->out_done);
            if (n == NETCONN_AGAIN)
                return;
            if (n < 0) {
                shard_problem(shard, "the connection broke: %s",
                              strerror(netconn_errno(&shard->conn)));
                disconnect(shard);
                return;
            }
            shard->out_done += (size_t)n;
            continue;
        }
        whole = reply_length(shard->in, shard->in_len);
        if (whole < 0) {
            shard_problem(shard, "an answer that is not RESP");
            disconnect(shard);
            return;
        }
        if (whole > 0) {
            shard->in[whole - 1] = '\0'; /* the reply's last byte is its '\n' */
            answered(shard, shard->in, (size_t)whole);
            memmove(shard->in, shard->in + whole, shard->in_len - (size_t)whole);
            shard->in_len -= (size_t)whole;
            continue;
        }
        if (shard->in_len == REPLY_MAX) {
            shard_problem(shard, "an answer longer than %d bytes", REPLY_MAX);
            disconnect(shard);
            return;
        }
        n = netconn_read(&shard->conn, shard->in + shard->in_len, REPLY_MAX - shard->in_len);
        if (n == NETCONN_AGAIN)
            return;
        if (n <= 0) {
            shard_problem(shard, "the connection closed");
            disconnect(shard);
            return;
        }
        shard->in_len += (size_t)n;
    }
}

static void step(struct shardctl *shard)
{
    int r;

    if (shard->phase == SHARD_CONNECTING || shard->phase == SHARD_HANDSHAKE) {
        r = netconn_handshake(&shard->conn);
        if (!netconn_is_connecting(&shard->conn))
            shard->phase = SHARD_HANDSHAKE;
        if (r == NETCONN_AGAIN)
            return;
        if (r < 0 && netconn_is_connecting(&shard->conn)) {
            shard_problem(shard, "cannot connect: %s", strerror(netconn_errno(&shard->conn)));
            disconnect(shard);
            return;
        }
        if (r < 0) {
            char why[256];

            tls_error_string(why, sizeof(why));
            shard_problem(shard, "TLS handshake failed: %s", *why ? why : "connection closed");
            disconnect(shard);
            return;
        }
        shard->phase = SHARD_IDLE;
        ask(shard, ASK_INFO, (const char *const[]){"INFO", "replication"}, 2);
    }
    converse(shard);
}

static void on_socket(void *arg)
{
    step(arg);
}

static void connect_shard(struct shardctl *shard)
{
    const struct db_config *db = shard->link->settings->db;
    struct net_address address;
    char host[256], why[256];
    int port, in_progress = 0, fd;

    if (db_split_address(db->shard, host, sizeof(host), &port) < 0 ||
        net_address_resolve(host, port, &address, why, sizeof(why)) < 0) {
        shard_problem(shard, "cannot resolve it");
        return;
    }
    fd = net_connect(&address, &in_progress);
    if (fd < 0) {
        shard_problem(shard, "cannot connect: %s", strerror(-fd));
        return;
    }
    netconn_init(&shard->conn, fd, in_progress);
    if ((shard->link->settings->shard_ctx &&
         netconn_start_tls(&shard->conn, shard->link->settings->shard_ctx, false) < 0) ||
        netconn_watch(&shard->conn, shard->link->syncer->base, on_socket, shard) < 0) {
        netconn_close(&shard->conn);
        return;
    }
    shard->since_ms = syncer_now_ms();
    shard->phase = SHARD_CONNECTING;
    step(shard);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct shardctl *shard = arg;

    (void)fd;
    (void)what;
    if (shard->phase != SHARD_CLOSED && shard->phase != SHARD_IDLE &&
        syncer_now_ms() - shard->since_ms > ANSWER_TIMEOUT_MS) {
        shard_problem(shard, "no answer within %d s", ANSWER_TIMEOUT_MS / 1000);
        disconnect(shard);
    }
    if (shard->phase == SHARD_CLOSED) {
        connect_shard(shard);
    } else if (shard->phase == SHARD_IDLE) {
        ask(shard, ASK_INFO, (const char *const[]){"INFO", "replication"}, 2);
        step(shard);
    }
}

struct shardctl *shardctl_new(struct link *link)
{
    struct shardctl *shard = calloc(1, sizeof(*shard));
    struct timeval tick = {TICK_MS / 1000, (TICK_MS % 1000) * 1000};

    if (!shard)
        return NULL;
    shard->link = link;
    netconn_init(&shard->conn, -1, false);
    shard->in = malloc(REPLY_MAX);
    shard->tick = event_new(link->syncer->base, -1, EV_PERSIST, on_tick, shard);
    if (!shard->in || !shard->tick) {
        shardctl_free(shard);
        return NULL;
    }
    event_add(shard->tick, &tick);
    connect_shard(shard); /* at once: a new replica starts replicating without waiting */
    return shard;
}

void shardctl_free(struct shardctl *shard)
{
    if (!shard)
        return;
    disconnect(shard);
    if (shard->tick)
        event_free(shard->tick);
    free(shard->in);
    free(shard);
}

bool shardctl_known(const struct shardctl *shard, const char **ret_role, int *ret_master_port,
                    const char **ret_link_status, long long *ret_offset)
{
    if (!shard || !shard->known)
        return false;
    *ret_role = shard->role;
    *ret_master_port = shard->master_port;
    *ret_link_status = shard->link_status;
    *ret_offset = shard->offset;
    return true;
}

/* Waits until the socket is ready for what conn's last call waits for, at most RELEASE_TIMEOUT_MS.
 */
static bool wait_ready(struct netconn *conn)
{
    short wants = netconn_wants(conn);
    struct pollfd p = {netconn_fd(conn),
                       (short)((wants & EV_READ ? POLLIN : 0) | (wants & EV_WRITE ? POLLOUT : 0)),
                       0};

    if (poll(&p, 1, RELEASE_TIMEOUT_MS) != 1)
        return false;
    /* An error or a hang-up wakes both ways: the next call finds out what it was. */
    netconn_set_ready(conn, (short)((p.revents & (POLLIN | POLLERR | POLLHUP) ? EV_READ : 0) |
                                    (p.revents & (POLLOUT | POLLERR | POLLHUP) ? EV_WRITE : 0)));
    return true;
}

void shardctl_release(const struct db_config *db, SSL_CTX *shard_ctx)
{
    static const char command[] = "*3\r\n$9\r\nREPLICAOF\r\n$2\r\nNO\r\n$3\r\nONE\r\n";
    struct net_address address;
    struct netconn conn;
    char host[256], why[256], reply[256];
    int port, in_progress = 0, fd, r = 0;
    size_t done = 0, got = 0;

    if (db_split_address(db->shard, host, sizeof(host), &port) < 0 ||
        net_address_resolve(host, port, &address, why, sizeof(why)) < 0 ||
        (fd = net_connect(&address, &in_progress)) < 0) {
        log_warning("Replica '%s': cannot tell shard %s to stop replicating", db->name, db->shard);
        return;
    }
    netconn_init(&conn, fd, in_progress);
    if (shard_ctx && netconn_start_tls(&conn, shard_ctx, false) < 0) {
        netconn_close(&conn);
        return;
    }
    /* Rare (a replica_of removed) and local: a short wait rather than one more state machine. */
    while ((r = netconn_handshake(&conn)) == NETCONN_AGAIN && wait_ready(&conn))
        ;
    r = r == 1 ? 0 : -1;
    while (r == 0 && done < sizeof(command) - 1) {
        ssize_t n = netconn_write(&conn, command + done, sizeof(command) - 1 - done);

        if (n > 0)
            done += (size_t)n;
        else if (n != NETCONN_AGAIN || !wait_ready(&conn))
            r = -1;
    }
    while (r == 0 && !memchr(reply, '\n', got) && got < sizeof(reply) - 1) {
        ssize_t n = netconn_read(&conn, reply + got, sizeof(reply) - 1 - got);

        if (n > 0)
            got += (size_t)n;
        else if (n != NETCONN_AGAIN || !wait_ready(&conn))
            r = -1;
    }
    reply[got] = '\0';
    if (r == 0 && reply[0] == '+')
        log_notice("Replica '%s': shard %s no longer replicates (REPLICAOF NO ONE): it keeps "
                   "its data and takes writes",
                   db->name, db->shard);
    else
        log_warning("Replica '%s': shard %s did not confirm REPLICAOF NO ONE%s%.*s", db->name,
                    db->shard, got ? ": " : "", (int)strcspn(reply, "\r\n"), reply);
    netconn_goodbye(&conn);
    netconn_close(&conn);
    ERR_clear_error();
}
