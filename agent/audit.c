/* The audit log: one line per change, to the agent's log and to a ring of recent entries. */
#include "audit.h"

#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct audit_entry {
    time_t time;
    char *who;
    char *message;
};

struct audit_ring {
    struct audit_entry entries[AUDIT_RING_SIZE];
    size_t next;  /* where the next entry goes */
    size_t count; /* how many are kept (up to AUDIT_RING_SIZE) */
};

void audit_record(struct agent *agent, const char *who, const char *fmt, ...)
{
    struct audit_ring *ring = agent->audit;
    struct audit_entry *entry;
    char *message = NULL;
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(&message, fmt, ap) < 0)
        message = NULL;
    va_end(ap);
    log_notice("audit: %s %s", who, message ? message : "(out of memory)");
    if (!ring)
        ring = agent->audit = calloc(1, sizeof(*ring));
    if (!ring || !message) {
        free(message);
        return;
    }
    entry = &ring->entries[ring->next];
    free(entry->who);
    free(entry->message);
    entry->time = time(NULL);
    entry->who = strdup(who);
    entry->message = message;
    ring->next = (ring->next + 1) % AUDIT_RING_SIZE;
    if (ring->count < AUDIT_RING_SIZE)
        ring->count++;
}

json_t *audit_recent(const struct agent *agent, size_t limit)
{
    const struct audit_ring *ring = agent->audit;
    json_t *list = json_array();

    for (size_t i = 0; ring && i < ring->count && i < limit; i++) {
        const struct audit_entry *entry =
            &ring->entries[(ring->next + AUDIT_RING_SIZE - 1 - i) % AUDIT_RING_SIZE];

        json_array_append_new(list, json_pack("{s:I, s:s?, s:s}", "time", (json_int_t)entry->time,
                                              "who", entry->who, "message", entry->message));
    }
    return list;
}

void audit_free(struct agent *agent)
{
    struct audit_ring *ring = agent->audit;

    if (!ring)
        return;
    for (size_t i = 0; i < AUDIT_RING_SIZE; i++) {
        free(ring->entries[i].who);
        free(ring->entries[i].message);
    }
    free(ring);
    agent->audit = NULL;
}
