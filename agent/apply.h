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

/*
 * A certificate replacement. key_pem NULL: pair with the key a CSR left
 * pending. origin says where it came from in `certificate list`
 * ("user-provided", or "external" for a watched file).
 */
struct apply_request *apply_certificate(const char *name, const char *cert_pem, size_t cert_len,
                                        const char *key_pem, size_t key_len, const char *origin);

/* Re-issues a generated certificate from the cluster CA; "all": every one still generated. */
struct apply_request *apply_rotate(const char *name);

/* Removes an optional certificate (ldap_client, mtls_trusted_ca). */
struct apply_request *apply_delete(const char *name);

/* A change of policy settings: names (either spelling) and values, n of each. */
struct apply_request *apply_policy(const char *const *names, const char *const *values, size_t n);

/*
 * Re-reads the configuration files and puts them into force: service
 * settings, the conf.d policy, and every rendered file that follows. The
 * answer carries what was added, changed, updated and removed.
 */
struct apply_request *apply_config(void);

/*
 * Queues the request; changes run one batch at a time, in order. Requests
 * that arrive within a short window of each other (or while a change is
 * being carried out) are coalesced into one plan, one reload per service.
 * who names the caller for the audit log ("uid 0"). With dry_run the plan
 * (with the rendered diff) is answered and nothing changes. done is called
 * exactly once (maybe before this returns); it may be NULL.
 */
void apply_submit(struct agent *agent, struct apply_request *request, const char *who, bool dry_run,
                  apply_done_fn done, void *data);

/* Tells a queued or running request that nobody waits for its answer any more. */
void apply_forget(struct agent *agent, void *data);

/* True while nothing is queued or being applied. */
bool apply_idle(const struct agent *agent);

/* Frees whatever is queued (at exit). */
void apply_free_all(struct agent *agent);

#endif
