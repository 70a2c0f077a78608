/*
 * The callers of a change published to the cluster's store (agent/sync), waiting for every
 * node to apply it: the batch that validated it is over (the queue moves on, and this very
 * node applies the change when the store delivers it), so their answers wait here. Private
 * to agent/apply.
 */
#ifndef CERTVISOR_APPLY_PUBLISHED_H
#define CERTVISOR_APPLY_PUBLISHED_H

#include "request.h"

struct published_answers;

/* Takes the answer of every request not answered yet (done, data, who, what it changes): the
 * requests are answered when the cluster's outcome comes (published_answers_done). what[i]
 * describes requests[i] for the audit log. NULL when out of memory. */
struct published_answers *published_answers_new(struct agent *agent,
                                                struct apply_request *const *requests, size_t n,
                                                char (*what)[2048]);

/* Puts them on list (for apply_forget), and marks the requests answered. */
void published_answers_track(struct published_answers *answers, struct published_answers **list,
                             struct apply_request *const *requests, size_t n);

/* The cluster's outcome (agent_hooks.publish's done): answers every caller, leaves the list,
 * frees. reply is taken. */
void published_answers_done(void *data, int exit_status, json_t *reply);

/* Frees answers that were never tracked (the store did not take the change). */
void published_answers_free(struct published_answers *answers);

/* Nobody waits for the answer with this data any more. */
void published_answers_forget(struct published_answers *list, void *data);

#endif
