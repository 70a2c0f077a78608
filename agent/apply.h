/* The one pipeline every change goes through: validate, stage, render, plan, execute, roll back. */
#ifndef CERTVISOR_APPLY_H
#define CERTVISOR_APPLY_H

#include "agent.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Called once with the outcome: exit status (0, 1 failed, 2 usage, 4 unknown) and the answer. */
typedef void (*apply_done_fn)(void *data, int exit_status, json_t *reply);

struct apply_request;

/* A certificate replacement. key_pem NULL: pair with the key a CSR left pending. */
struct apply_request *apply_certificate(const char *name, const char *cert_pem, size_t cert_len,
                                        const char *key_pem, size_t key_len);

/* A change of policy settings: names (either spelling) and values, n of each. */
struct apply_request *apply_policy(const char *const *names, const char *const *values, size_t n);

/*
 * Queues the request; changes run one at a time, in order. who names the
 * caller for the audit log ("uid 0"). With dry_run the plan is answered and
 * nothing changes. done is called exactly once (maybe before this returns).
 */
void apply_submit(struct agent *agent, struct apply_request *request, const char *who, bool dry_run,
                  apply_done_fn done, void *data);

/* Tells a queued or running request that nobody waits for its answer any more. */
void apply_forget(struct agent *agent, void *data);

/* Frees whatever is queued (at exit). */
void apply_free_all(struct agent *agent);

#endif
