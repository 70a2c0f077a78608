/* SENTINEL: the databases' endpoints, as the masters Redis Sentinel would report. */
#include "command_table.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

/*
 * What a client is told to connect to: the advertised host; else the
 * address the endpoint listens on, unless that is a wildcard, which no client
 * can connect to (the local host then, the one address it surely serves).
 */
static const char *master_host(const struct db_config *db)
{
    static const char *const wildcards[] = {"", "0.0.0.0", "::", "[::]", "*"};

    if (db->advertise)
        return db->advertise;
    if (!db->listen)
        return "127.0.0.1";
    for (size_t i = 0; i < sizeof(wildcards) / sizeof(wildcards[0]); i++)
        if (strcmp(db->listen, wildcards[i]) == 0)
            return "127.0.0.1";
    return db->listen;
}

/*
 * Sentinel reports the master's run id; an endpoint has none, so it gets the
 * SHA-1 of its name and address: stable across restarts, and new when the
 * endpoint moves, as a new master's would be.
 */
static void run_id(const struct db_config *db, char buf[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    char text[512];
    int n = snprintf(text, sizeof(text), "%s %s %d", db->name, master_host(db), db->port);

    memset(buf, '0', 40);
    buf[40] = '\0';
    if (n < 0 || !EVP_Digest(text, (size_t)n, md, &md_len, EVP_sha1(), NULL) || md_len != 20)
        return;
    for (unsigned int i = 0; i < md_len; i++)
        snprintf(buf + 2 * i, 3, "%02x", md[i]);
}

/*
 * The state of one master, field by field as Redis 7's Sentinel lists it (all
 * values bulk strings), for a master that is up and has no replicas: the
 * fields redis-py, Jedis and Lettuce read (name, ip, port, flags, num-*) and
 * the timers, which report a link that is always fresh.
 */
static void add_master(struct resp_buf *out, const struct db_config *db, long long uptime_ms)
{
    char id[41];
    const struct {
        const char *field;
        const char *text; /* NULL: number */
        long long number;
    } fields[] = {
        {"name", db->name, 0},
        {"ip", master_host(db), 0},
        {"port", NULL, db->port},
        {"runid", id, 0},
        {"flags", "master", 0},
        {"link-pending-commands", NULL, 0},
        {"link-refcount", NULL, 1},
        {"last-ping-sent", NULL, 0},
        {"last-ok-ping-reply", NULL, 0},
        {"last-ping-reply", NULL, 0},
        {"down-after-milliseconds", NULL, 30000},
        {"info-refresh", NULL, 0},
        {"role-reported", "master", 0},
        {"role-reported-time", NULL, uptime_ms},
        {"config-epoch", NULL, 0},
        {"num-slaves", NULL, 0},
        {"num-other-sentinels", NULL, 0},
        {"quorum", NULL, 1},
        {"failover-timeout", NULL, 180000},
        {"parallel-syncs", NULL, 1},
    };

    run_id(db, id);
    resp_add_array(out, 2 * (sizeof(fields) / sizeof(fields[0])));
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        resp_add_bulk_string(out, fields[i].field);
        if (fields[i].text)
            resp_add_bulk_string(out, fields[i].text);
        else
            resp_add_bulk_number(out, fields[i].number);
    }
}

/* The database the request's third word names, or NULL. */
static const struct db_config *find_master(const struct call *call)
{
    const struct resp_arg *name = &call->req->argv[2];

    /* A name with a NUL in it names nothing (it would match its first part). */
    if (memchr(name->data, '\0', name->len))
        return NULL;
    return db_list_find(call->env->dbs, name->data);
}

/* The database the request's third word names, or NULL with Sentinel's error sent. */
static const struct db_config *named_master(const struct call *call)
{
    const struct db_config *db = find_master(call);

    if (!db)
        resp_add_error(call->out, "ERR No such master with that name");
    return db;
}

static void get_master_addr_by_name(const struct call *call)
{
    const struct db_config *db = find_master(call);

    if (!db) {
        resp_add_null_array(call->out); /* not an error: real Sentinel answers nil */
        return;
    }
    resp_add_array(call->out, 2);
    resp_add_bulk_string(call->out, master_host(db));
    resp_add_bulk_number(call->out, db->port);
}

static void masters(const struct call *call)
{
    const struct db_list *dbs = call->env->dbs;

    resp_add_array(call->out, dbs->n);
    for (size_t i = 0; i < dbs->n; i++)
        add_master(call->out, &dbs->dbs[i], call->env->uptime_ms);
}

static void master(const struct call *call)
{
    const struct db_config *db = named_master(call);

    if (db)
        add_master(call->out, db, call->env->uptime_ms);
}

/* Replicas and other sentinels: an endpoint has none that clients should use. */
static void none_of_them(const struct call *call)
{
    if (named_master(call))
        resp_add_array(call->out, 0);
}

/* Sentinel's management commands: refused, with the reason, rather than "unknown". */
static void not_supported(const struct call *call)
{
    char upper[64];

    command_upper(call->req->argv[1].data, call->req->argv[1].len, upper, sizeof(upper));
    resp_add_error(call->out,
                   "ERR SENTINEL %s is not supported: certvisord configures the databases this "
                   "discovery service reports",
                   upper);
}

/* Listed in HELP when they have a summary; the others are Sentinel's, refused. */
const struct command sentinel_subcommands[] = {
    {"get-master-addr-by-name", 3, get_master_addr_by_name, NULL,
     "GET-MASTER-ADDR-BY-NAME <master-name>",
     "Return the ip and port number of the master with that name."},
    {"help", 2, command_help, NULL, "HELP", "Print this help."},
    {"master", 3, master, NULL, "MASTER <master-name>",
     "Show the state and info of the specified master."},
    {"masters", 2, masters, NULL, "MASTERS", "Show a list of monitored masters and their state."},
    {"replicas", 3, none_of_them, NULL, "REPLICAS <master-name>",
     "Show a list of replicas for this master and their state."},
    {"sentinels", 3, none_of_them, NULL, "SENTINELS <master-name>",
     "Show a list of Sentinel instances for this master and their state."},
    {"slaves", 3, none_of_them, NULL, "SLAVES <master-name>", "Alias for REPLICAS."},
    {"ckquorum", -2, not_supported, NULL, NULL, NULL},
    {"config", -2, not_supported, NULL, NULL, NULL},
    {"debug", -2, not_supported, NULL, NULL, NULL},
    {"failover", -2, not_supported, NULL, NULL, NULL},
    {"flushconfig", -2, not_supported, NULL, NULL, NULL},
    {"info-cache", -2, not_supported, NULL, NULL, NULL},
    {"is-master-down-by-addr", -2, not_supported, NULL, NULL, NULL},
    {"monitor", -2, not_supported, NULL, NULL, NULL},
    {"myid", -2, not_supported, NULL, NULL, NULL},
    {"pending-scripts", -2, not_supported, NULL, NULL, NULL},
    {"remove", -2, not_supported, NULL, NULL, NULL},
    {"reset", -2, not_supported, NULL, NULL, NULL},
    {"set", -2, not_supported, NULL, NULL, NULL},
    {"simulate-failure", -2, not_supported, NULL, NULL, NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};
