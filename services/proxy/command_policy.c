/* The admin-command policy of database endpoints: the check, its error, and the pinned path's scan.
 */
#include "command_policy.h"

#include "admin_commands.h"
#include "conn.h"
#include "log.h"
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/*
 * The request that makes the shard answer a refused request with its error. The pinned path
 * copies bytes without pairing requests with replies, so the proxy cannot put an error of its
 * own in the right place among the shard's replies; the shard can, when it gets, in place of the
 * refused request, one whose reply is that error: a script that returns its argument as an error
 * reply. Its flags let it run whatever the shard's state: it writes nothing (a read-only replica
 * takes it), and it runs when the shard is out of memory or its replica data is stale. The client
 * then reads "-<error>" in order; inside MULTI the shard queues it and EXEC's array holds the
 * error (verified with Redis 7.0, whose shebang flags it needs). A client whose connection only
 * takes some commands (subscribed, or not authenticated) gets the shard's error for EVAL
 * instead, still an error in the refused request's place.
 */
#define ERROR_SCRIPT                                                                               \
    "#!lua flags=no-writes,allow-oom,allow-stale\nreturn redis.error_reply(ARGV[1])"

static bool allowed(const struct conn *c, size_t i)
{
    if (c->commands_allowed & ((uint64_t)1 << i))
        return true;
    return admin_commands[i].replication && c->replication_client;
}

static void refusal_text(const struct conn *c, const struct admin_command *e, char *err,
                         size_t err_len)
{
    if (e->replication) {
        snprintf(err, err_len,
                 "ERR '%s' is a replication command, refused on the endpoint of database '%s' to "
                 "a client without a TLS certificate the database trusts "
                 "(authentication_ssl_client_certs); replicate with replica_of, or add \"%s\" to "
                 "allow_commands in the database's section of conf.d",
                 e->shown, c->db_name, e->word);
        return;
    }
    snprintf(err, err_len,
             "ERR '%s' is an administrative command, refused on the endpoint of database '%s'; "
             "to allow it there, add \"%s\" to allow_commands in the database's section of conf.d",
             e->shown, c->db_name, e->word);
}

/* One line per refusal (within the worker's rate limit): who tried what. */
static void log_refusal(const struct conn *c, const struct admin_command *e)
{
    char peer[NET_ADDRESS_MAX], held[64];
    unsigned long suppressed;

    if (!worker_log_allowed(c->worker, &suppressed))
        return;
    conn_peer(c, peer, sizeof(peer));
    log_notice("Database '%s': refused %s from client %s (%s)%s", c->db_name, e->shown, peer,
               e->replication ? "replication needs a trusted client certificate"
                              : "an administrative command",
               worker_held_back(suppressed, held, sizeof(held)));
}

const struct admin_command *
command_policy_refused(const struct conn *c, const struct resp_request_info *info, bool sub_unknown)
{
    if (info->argc == 0)
        return NULL; /* an empty request: the shard skips it */
    for (size_t i = 0; i < admin_commands_n; i++) {
        const struct admin_command *e = &admin_commands[i];

        if (strcmp(e->name, info->name) != 0)
            continue;
        /* An entry of a subcommand matches that subcommand; a doubt matches every entry. */
        if (e->sub && !sub_unknown && strcmp(e->sub, info->sub) != 0)
            continue;
        if (!allowed(c, i))
            return e;
    }
    return NULL;
}

void command_policy_refuse(const struct conn *c, const struct admin_command *e, char *err,
                           size_t err_len)
{
    refusal_text(c, e, err, err_len);
    log_refusal(c, e);
}

bool command_policy_allows_head(const struct conn *c, const struct resp_request_info *info,
                                bool sub_unknown, char *err, size_t err_len)
{
    const struct admin_command *e = command_policy_refused(c, info, sub_unknown);

    if (!e)
        return true;
    command_policy_refuse(c, e, err, err_len);
    return false;
}

int command_policy_error_request(struct mbuf *out, const char *err)
{
    char head[64];
    size_t script = strlen(ERROR_SCRIPT), text = strlen(err);
    int n = snprintf(head, sizeof(head), "*4\r\n$4\r\nEVAL\r\n$%zu\r\n", script);
    char tail[32];
    int m = snprintf(tail, sizeof(tail), "\r\n$1\r\n0\r\n$%zu\r\n", text);

    if (mbuf_append(out, head, (size_t)n) < 0 || mbuf_append(out, ERROR_SCRIPT, script) < 0 ||
        mbuf_append(out, tail, (size_t)m) < 0 || mbuf_append(out, err, text) < 0 ||
        mbuf_append(out, "\r\n", 2) < 0)
        return -ENOMEM;
    return 0;
}

/* Removes n bytes at offset at (from up's start; never before what may go) from up. */
static void up_remove(struct buf *b, size_t at, size_t n)
{
    if (at == 0) {
        b->start += (uint32_t)n;
        return;
    }
    memmove(b->data + b->start + at, b->data + b->start + at + n, b->end - b->start - at - n);
    b->end -= (uint32_t)n;
}

int command_policy_scan_pinned(struct conn *c)
{
    struct buf *b = c->up;
    char err[512];

    if (!b || mbuf_pending(&c->refusal))
        return 0; /* the error request goes first: the bytes after it wait to be scanned */
    while (c->up_seen < b->end - b->start) {
        bool skipping = c->scanner.skipping;
        size_t used;
        int r = resp_scan(&c->scanner, b->data + b->start + c->up_seen,
                          b->end - b->start - c->up_seen, &used);

        if (r == -EPROTO) {
            /* Garbage: the shard refuses it and closes, unless it comes inside a refused
             * request, whose start the shard never sees: then nothing more goes to it. */
            c->up_cut = c->up_cut || skipping;
            continue;
        }
        if (r == RESP_SCAN_DROP) {
            up_remove(b, c->up_seen, used);
            continue;
        }
        c->up_seen += (uint32_t)used;
        if (r == RESP_SCAN_HEAD &&
            !command_policy_allows_head(c, &c->scanner.info, c->scanner.sub_unknown, err,
                                        sizeof(err))) {
            size_t n = resp_scan_refuse(&c->scanner);

            c->up_seen -= (uint32_t)n;
            up_remove(b, c->up_seen, n);
            c->up_ok = c->up_seen;
            return command_policy_error_request(&c->refusal, err) < 0 ? -1 : 0;
        }
        c->up_ok = c->up_seen - (uint32_t)c->scanner.held;
    }
    /* The client has ended its stream: a request it left incomplete never runs; drop it. */
    if (netconn_at_eof(&c->client) && !mbuf_pending(&c->in) && c->up_ok < c->up_seen) {
        b->end = b->start + c->up_ok;
        c->up_seen = c->up_ok;
    }
    return 0;
}
