/* The commands certvisor-sentinel answers: the client side of Redis Sentinel, and what clients
 * send on connect. */
#ifndef CERTVISOR_SENTINEL_COMMANDS_H
#define CERTVISOR_SENTINEL_COMMANDS_H

#include "db_config.h"
#include "resp.h"

/* What a connection has told the service about itself. */
struct session {
    unsigned long long id; /* CLIENT ID: unique for the life of the process */
    char *name;            /* CLIENT SETNAME; NULL: none. Owned */
};

/* What the answers come from. */
struct command_env {
    const struct db_list *dbs;
    long long uptime_ms; /* since the service started: each master's role-reported-time */
};

/*
 * Answers request (argc >= 1), appending exactly one reply to out, with
 * Redis 7 Sentinel's replies and errors. It never closes the connection.
 */
void commands_run(struct session *session, const struct command_env *env,
                  const struct resp_request *request, struct resp_buf *out);

void session_clear(struct session *session);

#endif
