/* The offload workers: slow work (key derivation, key generation, fsync) off the agent's loop. */
#ifndef CERTVISOR_OFFLOAD_H
#define CERTVISOR_OFFLOAD_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

struct offload;

/*
 * Runs on a worker thread. It may use only what its job owns: never the
 * agent, the event loop, the log, or any state the loop also touches.
 * OpenSSL's functions are thread-safe and may be called.
 */
typedef void (*offload_work_fn)(void *job);

/*
 * Runs on the loop once the work has run. cancelled is true when the agent
 * is shutting down: the work may not have run at all, and the callback must
 * only free the job (nothing on the loop may be touched then).
 */
typedef void (*offload_done_fn)(void *job, bool cancelled);

/* Starts n_threads workers whose results come back to base. Returns 0 or a negative errno. */
int offload_new(struct event_base *base, unsigned n_threads, struct offload **ret_offload);

/*
 * Stops the workers: waits for the jobs running now, then calls every
 * outstanding job's done callback with cancelled set. offload_free(NULL) is a no-op.
 */
void offload_free(struct offload *offload);

/* True when no job is queued, running, or waiting for its done callback (a re-exec waits
 * for that: an exec would drop a job half-way). */
bool offload_idle(const struct offload *offload);

/*
 * Queues work(job) for a worker, then done(job, false) on the loop. The job
 * belongs to the caller throughout; when whoever waits for it goes away
 * first, the caller marks the job abandoned and done frees it. Returns 0 or
 * -ENOMEM (nothing was queued).
 */
int offload_submit(struct offload *offload, offload_work_fn work, offload_done_fn done, void *job);

/* Jobs queued or running, not yet handed back to the loop: for admission limits. */
size_t offload_backlog(const struct offload *offload);

#endif
