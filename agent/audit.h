/* The audit log: one line per change, to the agent's log and to a ring of recent entries. */
#ifndef CERTVISOR_AUDIT_H
#define CERTVISOR_AUDIT_H

#include "agent.h"

#include <jansson.h>

/* How many entries the ring keeps for `audit` (the log keeps them all). */
#define AUDIT_RING_SIZE 500

/*
 * Logs "audit: <who> <message>" at notice level and keeps it with its time in
 * the agent's ring. Never give it key material.
 */
void audit_record(struct agent *agent, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The newest entries first, at most limit: [{"time": epoch, "who", "message"}, ...]. */
json_t *audit_recent(const struct agent *agent, size_t limit);

void audit_free(struct agent *agent);

#endif
