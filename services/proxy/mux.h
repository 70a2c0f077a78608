/* Shared shard connections: one per worker and database carries many clients' requests. */
#ifndef CERTVISOR_PROXY_MUX_H
#define CERTVISOR_PROXY_MUX_H

#include <stdbool.h>
#include <stddef.h>

struct conn;
struct worker;
struct mux;

/*
 * The shared connection c's requests go on: the worker's open one for c's
 * database (the same shard, TLS context and host), or a new one. Attaches c.
 * Returns it, or NULL after logging why for c (counted as an error).
 */
struct mux *mux_get(struct conn *c);

/*
 * True when the mux holds as many requests as it takes: c is noted as waiting
 * and runs again (deferred) once there is room.
 */
bool mux_full_wait(struct mux *m, struct conn *c);

/*
 * Queues a whole request of c's (len bytes) for the shard. Its reply, when it
 * comes, is appended to c->out and c is deferred. Returns 0 or -ENOMEM.
 */
int mux_send(struct mux *m, struct conn *c, const char *request, size_t len);

/*
 * c leaves its mux (it is closing, or being pinned): replies still to come
 * for it are read and dropped. A mux left without clients closes after a while.
 */
void mux_detach(struct conn *c);

/* Writes what the worker's muxes queued during the batch. Returns how many ran. */
size_t mux_flush_pending(struct worker *w);

/* Closes the worker's muxes (its clients are closed first) and frees its read buffer. */
void mux_close_all(struct worker *w);

#endif
