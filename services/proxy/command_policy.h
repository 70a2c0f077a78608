/*
 * The admin-command policy of database endpoints: a request that administers the shard rather
 * than the data (lib/admin_commands.c lists them) is refused with an error, unless the
 * database's allow_commands lets it through; the replication handshake is for clients with a
 * certificate the database trusts.
 */
#ifndef CERTVISOR_PROXY_COMMAND_POLICY_H
#define CERTVISOR_PROXY_COMMAND_POLICY_H

#include "mbuf.h"
#include "resp.h"

#include <stdbool.h>
#include <stddef.h>

struct conn;

struct admin_command;

/*
 * The entry of the table that refuses the request, or NULL when it may go to the shard. With
 * sub_unknown (the pinned path's scanner read a name that ended at a NUL byte), every entry of
 * the name counts, whatever its subcommand.
 */
const struct admin_command *command_policy_refused(const struct conn *c,
                                                   const struct resp_request_info *info,
                                                   bool sub_unknown);

/* A refusal's error text in err (code first, no CRLF), logged (rate-limited) with the client. */
void command_policy_refuse(const struct conn *c, const struct admin_command *e, char *err,
                           size_t err_len);

/* Both in one: true when the request may go; when not, err holds the refusal's text. */
bool command_policy_allows_head(const struct conn *c, const struct resp_request_info *info,
                                bool sub_unknown, char *err, size_t err_len);

/*
 * Appends to out the request the pinned path sends the shard in a refused request's place, so
 * that the shard itself answers err in the right place among its replies (see the .c file).
 * Returns 0 or -ENOMEM.
 */
int command_policy_error_request(struct mbuf *out, const char *err);

/*
 * The pinned path (conn.c): scans the bytes c->up holds beyond c->up_seen, sets c->up_ok (how
 * many may go to the shard), removes the bytes of refused requests and queues the error request
 * in their place in c->refusal; while one is queued, scanning waits until it is out. Returns 0,
 * or -1 when c must close (no memory).
 */
int command_policy_scan_pinned(struct conn *c);

#endif
