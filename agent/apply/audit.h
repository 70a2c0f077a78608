/* The audit log: one line per change, to the agent's log, to state_dir/audit.log and to a ring of
 * recent entries. */
#ifndef CERTVISOR_AUDIT_H
#define CERTVISOR_AUDIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct audit_ring;
struct certs;
struct offload;

/* How many entries the ring keeps for `audit` (the files keep more). */
#define AUDIT_RING_SIZE 500

/*
 * The durable log: state_dir/audit.log (0640), rotated when the next entry
 * would take it past AUDIT_LOG_MAX_BYTES; audit.log.1 .. audit.log.N
 * (AUDIT_LOG_KEPT) are the older ones, so at most (N + 1) MiB are kept.
 */
#define AUDIT_LOG_NAME "audit.log"
#define AUDIT_LOG_MAX_BYTES (1024 * 1024)
#define AUDIT_LOG_KEPT 4

/*
 * Opens state_dir/audit.log and fills the ring from the files, so that
 * `audit` answers across restarts; then records the change an agent stop
 * interrupted (see audit_pending_write()), if it took effect, which it reads
 * in certs (may be NULL). Call once at start-up, after the certificate stores
 * were opened and recovered (certs_open(), which completes a half-made
 * commit). The log's fsyncs run on offload (may be NULL: the kernel's
 * writeback then syncs). Returns 0, or a negative errno with a message.
 */
int audit_open(const char *state_dir, const struct certs *certs, struct offload *offload,
               struct audit_ring **ret_ring, char *err, size_t err_len);

/*
 * Logs "audit: <who> <message>" at notice level, appends it to the audit log
 * (one write() with O_APPEND; the fsync runs on the offload worker) and keeps
 * it with its time in the ring. Never give it key material. With no ring
 * (NULL: not opened yet), the agent's log alone has it.
 */
void audit_record(struct audit_ring *ring, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The newest entries first, at most limit: [{"time": epoch, "who", "message"}, ...]. */
json_t *audit_recent(const struct audit_ring *ring, size_t limit);

void audit_free(struct audit_ring *ring);

/*
 * A change that is committed but not yet finished (services still to reload)
 * has no audit line yet; if the agent dies then, the change is in force at
 * the next start and must still be audited. So, before the first switch, the
 * apply pipeline describes the change in state_dir/audit.pending:
 *
 *   audit_pending_change()       each request: who asked, and what it changes
 *   audit_pending_generation()   each generation the commit makes current
 *   audit_pending_removal()      each certificate the change removes
 *   audit_pending_write()        the file, fsynced before the first switch
 *   audit_pending_committed()    everything switched (for changes without
 *                                generations: the policy)
 *   audit_pending_clear()        once the outcome is audited or put back
 *
 * At start-up, audit_open() audits each request of a file left behind as
 * "changed <what>: interrupted ...; in force after the restart" under the
 * requester's name when the change took effect: a listed generation is
 * current (also one that the commit journal rolled forward), a removed
 * certificate is gone, or, without either, the change was marked committed.
 */
enum audit_store { AUDIT_STORE_CERTS, AUDIT_STORE_TRUST };

void audit_pending_change(struct audit_ring *ring, const char *who, const char *what);
void audit_pending_generation(struct audit_ring *ring, enum audit_store store, const char *name,
                              unsigned generation);
void audit_pending_removal(struct audit_ring *ring, const char *name);
void audit_pending_write(struct audit_ring *ring);
void audit_pending_committed(struct audit_ring *ring);
void audit_pending_clear(struct audit_ring *ring);

#endif
