/* The one pipeline every change goes through: validate, stage, render, plan, execute, roll back. */
#ifndef CERTVISOR_APPLY_H
#define CERTVISOR_APPLY_H

#include "agent.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Called once with the outcome: exit status (0, 1 failed, 2 usage, 4 unknown) and the answer.
 * A refused or failed change answers {"exit", "error": message, "reason": word}, the reason
 * for programs (the REST API) to tell failures apart without reading the message:
 *   expired               a certificate's validity ended (x509_check's CV_ECERT_EXPIRED)
 *   not_trusted           a trust list holds no such certificate (or several match)
 *   invalid_certificate   not a valid certificate, key or pair for that name, or one the
 *                         services' TLS contexts refuse
 *   unknown_certificate   no certificate has that name
 *   required_certificate  delete of a certificate the node cannot do without
 *   not_set               delete of an optional certificate that is not set
 *   in_use                delete of mtls_trusted_ca while certificate sign-in needs it
 *   not_generated         rotate of a certificate the operator provides
 *   external              the certificate is kept in external files (conf.d)
 *   invalid_setting       a policy value refused
 *   invalid_configuration a configuration reload refused
 *   usage                 a malformed request
 *   rolled_back           a service did not come back with the change: all was put back
 *   shutting_down, failed the agent is stopping; anything else
 */
typedef void (*apply_done_fn)(void *data, int exit_status, json_t *reply);

struct apply_request;

/*
 * A certificate replacement. key_pem NULL: pair with the key a CSR left
 * pending. origin says where it came from in `certificate list`
 * ("user-provided", or "external" for a watched file).
 */
struct apply_request *apply_certificate(const char *name, const char *cert_pem, size_t cert_len,
                                        const char *key_pem, size_t key_len, const char *origin);

/* One certificate of apply_certificates(); the strings are copied. */
struct apply_pair_input {
    const char *name;
    const char *cert_pem;
    size_t cert_len;
    const char *key_pem; /* NULL: the key a CSR left pending */
    size_t key_len;
};

/*
 * Several certificate replacements in one request, applied all or none:
 * every pair is validated before any is staged for good, the first that
 * fails refuses the request (and nothing of it is applied), and the pairs
 * commit together (one journal) and roll back together. A name given twice
 * is a usage error.
 */
struct apply_request *apply_certificates(const struct apply_pair_input *pairs, size_t n,
                                         const char *origin);

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

struct trust_request;

/*
 * A change of a trust list (agent/pki/trust.h), which the request takes: its new
 * bundle is staged, every file that names the list is rendered with it, and
 * the services that read those files reload.
 */
struct apply_request *apply_trust(struct trust_request *trust);

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

/*
 * --- a cluster on etcd: publish, then converge (agent/sync) ---
 *
 * A change validated and staged on this node, as the cluster's store takes it: the
 * certificates it sets or removes, with their PEM read from the staged generations, and the
 * runtime policy it leads to. Valid during agent_hooks.publish only.
 */
struct apply_published_cert {
    const char *name;
    bool removed;
    const char *cert_pem;
    size_t cert_len;
    const char *key_pem; /* NULL: a CA bundle */
    size_t key_len;
    unsigned generation;
    char origin[32];
    char fingerprint[96];
};

/* A trust list's new bundle (pem NULL: the change empties it). */
struct apply_published_trust {
    const char *list;
    const char *pem;
    size_t len;
};

struct apply_publication {
    struct apply_published_cert certs[16];
    size_t n_certs;
    const struct policy *policy; /* NULL: the policy does not change */
    struct apply_published_trust trust[8];
    size_t n_trust;
};

/*
 * Marks a request as one the cluster's store delivered (agent/sync): it is committed and
 * applied here, never published again. Such requests are batched only with each other.
 */
void apply_request_from_cluster(struct apply_request *request);

/* Starts what is queued now, without the coalescing window: the requests the cluster's store
 * delivered in one pass are submitted together and need no wait for company. */
void apply_start_now(struct agent *agent);

/* Tells a queued or running request that nobody waits for its answer any more. */
void apply_forget(struct agent *agent, void *data);

/* True while nothing is queued or being applied. */
bool apply_idle(const struct agent *agent);

/*
 * The agent begins to stop: nothing queued starts any more, and a batch whose
 * keys and generations are still being made on the offload workers stops
 * there; their callers are answered now that nothing was changed.
 */
void apply_shutdown(struct agent *agent);

/* Frees whatever is queued (at exit). */
void apply_free_all(struct agent *agent);

#endif
