/* The handler of "audit": the recent changes, for operators and the REST API. */
#include "commands_audit.h"

#include "audit.h"

#define AUDIT_DEFAULT_LIMIT 50

void handle_audit(struct agent *agent, struct control_conn *conn, json_t *args, json_t *options)
{
    json_t *limit = json_object_get(options, "lines");
    json_int_t n = limit ? json_integer_value(limit) : AUDIT_DEFAULT_LIMIT;

    if (json_array_size(args) > 0 || (limit && !json_is_integer(limit)) || n < 1 ||
        n > AUDIT_RING_SIZE) {
        control_reply_error(conn, 2, "usage: audit [-n <entries>] (1 to %d)", AUDIT_RING_SIZE);
        return;
    }
    control_reply(
        conn, json_pack("{s:i, s:o}", "exit", 0, "items", audit_recent(agent->audit, (size_t)n)));
}
