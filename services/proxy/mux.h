/* Shared shard connections: one per worker and database carries many clients' requests. */
#ifndef CERTVISOR_PROXY_MUX_H
#define CERTVISOR_PROXY_MUX_H

#include <stdbool.h>
#include <stddef.h>

struct conn;
struct worker;
struct mux;

/*
 * The shared connection c's next request goes on: the one c is attached to,
 * unless that one stalled and c has nothing in it; else the worker's open one
 * for c's database (the same shard, TLS context and host) that has not
 * stalled, or a new one. Attaches c. Returns it, or NULL after logging why
 * for c (counted as an error).
 */
struct mux *mux_get(struct conn *c);

/*
 * True when the mux takes no request now (a batch is out, or it holds as many
 * as it takes): c is noted as waiting and runs again (deferred) once it does,
 * or once the mux stalls and c may move.
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

/*
 * Pinning c for a blocking command: when the shared connection c is attached
 * to is idle (connected, nothing queued or unanswered), it becomes c's own
 * (c->shard, its event not assigned) and the mux's other clients take a new
 * one with their next request. So the blocking command reaches the shard in
 * this batch, in the order it came, with no connect or handshake in between
 * that another client's command could overtake (Redis serves blocked clients
 * in the order they blocked). Returns false (nothing changed) when it is not idle.
 */
bool mux_hand_over(struct conn *c);

/* Writes what the worker's muxes queued during the batch. Returns how many ran. */
size_t mux_flush_pending(struct worker *w);

/* Closes the worker's muxes (its clients are closed first) and frees its read buffer. */
void mux_close_all(struct worker *w);

#endif
