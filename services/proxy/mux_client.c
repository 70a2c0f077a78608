/*
 * A multiplexed client: its requests are framed, and whole ones go on the
 * worker's shared connection to the shard; its replies come back into its own
 * buffer. A request that cannot share a connection pins the client: once the
 * replies of its requests in flight have come, it gets a shard connection of
 * its own and its bytes are copied as they are from then on (conn.c).
 */
#include "command_policy.h"
#include "conn.h"
#include "log.h"
#include "mux.h"
#include "stats.h"
#include "worker.h"

#include <stdlib.h>
#include <string.h>

/* The largest request that goes on a shared connection; a larger one pins its client. */
#define MUX_REQUEST_MAX (512 * 1024)
/* Replies waiting for a slow client: beyond this, its requests wait in its socket. */
#define CLIENT_OUT_MAX (1024 * 1024)
/* Requests of one client in flight on the shared connection. */
#define CLIENT_INFLIGHT_MAX 256
#define READ_SIZE (16 * 1024)

/*
 * Commands that must not go on a shared connection, in alphabetical order:
 * - state of the connection: AUTH, HELLO (and RESP3), SELECT, READONLY,
 *   READWRITE, ASKING, CLIENT (names, tracking, reply modes, no-evict...),
 *   MULTI/EXEC/DISCARD/WATCH/UNWATCH (a transaction), RESET;
 * - replies that do not pair one to one with requests: SUBSCRIBE,
 *   PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBEs, MONITOR, SYNC, PSYNC and
 *   REPLCONF (replication);
 * - blocking: BLPOP, BRPOP, BRPOPLPUSH, BLMOVE, BLMPOP, BZPOPMIN, BZPOPMAX,
 *   BZMPOP, WAIT, WAITAOF (XREAD and XREADGROUP only with BLOCK): they would
 *   hold up every reply behind them;
 * - the end of the connection: QUIT, SHUTDOWN.
 * Inline commands and requests that cannot be framed pin too. So do the
 * subcommands in pinning_sub: SCRIPT DEBUG turns the connection into a
 * debugger session, whose output no other client may see; SCRIPT KILL and
 * FUNCTION KILL must reach the shard at once, never queued behind the busy
 * script they are meant to stop.
 */
static const char *const pinning[] = {
    "asking",       "auth",     "blmove",     "blmpop",    "blpop",        "brpop",
    "brpoplpush",   "bzmpop",   "bzpopmax",   "bzpopmin",  "client",       "discard",
    "exec",         "hello",    "monitor",    "multi",     "psubscribe",   "psync",
    "punsubscribe", "quit",     "readonly",   "readwrite", "replconf",     "reset",
    "select",       "shutdown", "ssubscribe", "subscribe", "sunsubscribe", "sync",
    "unsubscribe",  "unwatch",  "wait",       "waitaof",   "watch",
};

static const struct {
    const char *name, *sub;
} pinning_sub[] = {
    {"function", "kill"},
    {"script", "debug"},
    {"script", "kill"},
};

static int by_name(const void *key, const void *entry)
{
    return strcmp(key, *(const char *const *)entry);
}

static bool pins(const struct resp_request_info *info)
{
    if (bsearch(info->name, pinning, sizeof(pinning) / sizeof(pinning[0]), sizeof(pinning[0]),
                by_name))
        return true;
    for (size_t i = 0; i < sizeof(pinning_sub) / sizeof(pinning_sub[0]); i++)
        if (strcmp(info->name, pinning_sub[i].name) == 0 &&
            strcmp(info->sub, pinning_sub[i].sub) == 0)
            return true;
    return info->has_block &&
           (strcmp(info->name, "xread") == 0 || strcmp(info->name, "xreadgroup") == 0);
}

/* The blocking commands: their clients wait in Redis, served in the order they blocked. */
static bool blocks(const struct resp_request_info *info)
{
    static const char *const blocking[] = {
        "blmove", "blmpop",   "blpop",    "brpop", "brpoplpush",
        "bzmpop", "bzpopmax", "bzpopmin", "wait",  "waitaof",
    };

    if (bsearch(info->name, blocking, sizeof(blocking) / sizeof(blocking[0]), sizeof(blocking[0]),
                by_name))
        return true;
    return info->has_block &&
           (strcmp(info->name, "xread") == 0 || strcmp(info->name, "xreadgroup") == 0);
}

static bool can_send(const struct conn *c)
{
    return c->inflight < CLIENT_INFLIGHT_MAX && mbuf_pending(&c->out) < CLIENT_OUT_MAX;
}

/*
 * A request the admin-command policy refuses: its error goes in its place
 * among c's replies, so once the replies to c's earlier requests have come.
 * Returns 1 when answered (the request is consumed), 0 when it waits, -1.
 */
static int refuse(struct conn *c, const struct admin_command *e, size_t used)
{
    char err[512];

    if (c->inflight > 0) {
        resp_request_framer_init(&c->framer); /* framed again when they have come */
        return 0;
    }
    command_policy_refuse(c, e, err, sizeof(err));
    if (mbuf_append(&c->out, "-", 1) < 0 || mbuf_append(&c->out, err, strlen(err)) < 0 ||
        mbuf_append(&c->out, "\r\n", 2) < 0)
        return -1;
    mbuf_consume(&c->in, used);
    return 1;
}

/*
 * Passes the complete requests at the front of c->in to the shared connection,
 * until one pins c or a limit stops it. Returns 0, or -1 when c must close.
 */
static int dispatch(struct conn *c)
{
    while (!c->pin_wanted && mbuf_pending(&c->in) > 0 && can_send(c)) {
        struct resp_request_info info;
        size_t used;
        int r = resp_frame_request(&c->framer, mbuf_head(&c->in), mbuf_pending(&c->in),
                                   MUX_REQUEST_MAX, &info, &used);

        if (r == 0) {
            /* Bytes that may not frame within the limit: the shard will say what they are. */
            if (mbuf_pending(&c->in) >= MUX_REQUEST_MAX)
                c->pin_wanted = true;
            return 0;
        }
        if (r > 0 && info.argc > 0) {
            const struct admin_command *refused = command_policy_refused(c, &info, false);

            if (refused) {
                r = refuse(c, refused, used);
                if (r <= 0)
                    return r;
                continue;
            }
        }
        if (r < 0 || (info.argc > 0 && pins(&info))) {
            c->pin_wanted = true;
            c->pin_hand_over = r > 0 && blocks(&info);
            return 0;
        }
        if (info.argc > 0) {
            struct mux *m = mux_get(c);

            if (!m)
                return -1;
            if (mux_full_wait(m, c)) {
                resp_request_framer_init(&c->framer); /* framed again when there is room */
                return 0;
            }
            if (mux_send(m, c, mbuf_head(&c->in), used) < 0) {
                stats_add(&c->stats->errors, 1);
                return -1;
            }
        }
        mbuf_consume(&c->in, used);
    }
    return 0;
}

/* Reads from the client while it may send. 1 on progress, 0 when waiting, -1 on error. */
static int read_requests(struct conn *c)
{
    int moved = 0;

    while (!netconn_at_eof(&c->client) && !c->pin_wanted && can_send(c) &&
           mbuf_pending(&c->in) < MUX_REQUEST_MAX) {
        char *at = mbuf_reserve(&c->in, READ_SIZE);
        ssize_t n;

        if (!at)
            return -1;
        n = netconn_read(&c->client, at, c->in.cap - c->in.len);
        if (n > 0) {
            c->in.len += (size_t)n;
            stats_add(&c->stats->bytes_in, (uint64_t)n);
            moved = 1;
            if (dispatch(c) < 0)
                return -1;
            continue;
        }
        if (n == 0) {
            moved = 1; /* the end of the client's stream: netconn_at_eof() from now */
        } else if (n == NETCONN_ERROR) {
            return -1;
        }
        break;
    }
    if (mbuf_pending(&c->in) == 0)
        mbuf_free(&c->in); /* a reserve that got nothing */
    return moved;
}

/* Writes the replies that came. 1 on progress, 0 when waiting, -1 on error. */
static int write_replies(struct conn *c)
{
    int moved = 0;

    if (!mbuf_pending(&c->out))
        return 0;
    if (c->worker->batching) {
        conn_defer(c);
        return 0;
    }
    while (mbuf_pending(&c->out) > 0) {
        ssize_t n = netconn_write(&c->client, mbuf_head(&c->out), mbuf_pending(&c->out));

        if (n == NETCONN_AGAIN)
            break;
        if (n < 0)
            return -1;
        stats_add(&c->stats->bytes_out, (uint64_t)n);
        mbuf_consume(&c->out, (size_t)n);
        moved = 1;
    }
    return moved;
}

/* The client ended its stream and every reply is out: end ours. */
static int finish(struct conn *c)
{
    if (netconn_shutdown(&c->client) == NETCONN_ERROR)
        return -1;
    return netconn_is_shut(&c->client);
}

void mux_client_run(struct conn *c)
{
    int moved;

    do {
        moved = 0;
        if (dispatch(c) < 0)
            goto close;
        if (c->pin_wanted && c->inflight == 0) {
            conn_pin(c);
            return;
        }
        moved = write_replies(c);
        if (moved >= 0) {
            int r = read_requests(c);

            moved = r < 0 ? r : moved | r;
        }
        if (moved < 0)
            goto close;
    } while (moved > 0);
    if (netconn_at_eof(&c->client) && c->inflight == 0 && !mbuf_pending(&c->out) &&
        !c->pin_wanted) {
        /* An incomplete request at the end is dropped, as Redis drops it. */
        int r = finish(c);

        if (r != 0)
            goto close;
    }
    conn_touch(c);
    return;
close:
    conn_free(c);
}
