/* Trust lists: named sets of certificates that replication peers are verified against. */
#ifndef CERTVISOR_TRUST_H
#define CERTVISOR_TRUST_H

#include "certstore.h"
#include "tls_context.h"

#include <jansson.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/*
 * A trust list is kept like a certificate, in a store of its own
 * (state_dir/trust, agent/pki/certstore.h): each change is a new generation whose
 * cert.pem is the whole bundle, and `current` switches atomically. Services
 * never read the list's directory, only the generation a rendered file names,
 * so a change of a list is a change of the rendered files that name it: the
 * apply pipeline reloads exactly the services that use the list.
 */

#define TRUST_NAME_MAX 63
#define TRUST_ENTRIES_MAX 64 /* certificates in one list */

/*
 * True when name can name a trust list: a-z, 0-9 and '_', at most 63, and not
 * a name the store's certificates use (cluster_ca, mtls_trusted_ca, ...) or "all".
 */
bool trust_list_name_valid(const char *name);

/*
 * Checks a trust reference as conf.d gives one (client_trust,
 * authentication_ssl_client_certs, replica_of's server_cert): a trust list's
 * name, "cluster_ca", "mtls_trusted_ca", or an absolute path to a PEM file.
 * Returns 0, or -EINVAL with the reason.
 */
int trust_ref_check(const char *ref, char *reason, size_t reason_len);

/* True when ref names a trust list (not a certificate of the store, not a path). */
bool trust_ref_is_list(const char *ref);

/* One certificate of a list. */
struct trust_entry {
    X509 *cert;
    char fingerprint[TLS_FINGERPRINT_MAX];
};

struct trust_set {
    struct trust_entry *entries;
    size_t n;
};

/*
 * Parses PEM text that must hold certificates only (one or more; no key, no
 * trailing garbage) into set (which the caller clears). Returns 0, or
 * CV_EINVALID_CERT with the problem in err.
 */
int trust_set_parse(const char *pem, size_t len, struct trust_set *set, char *err, size_t err_len);

/* The list's current certificates; an unknown (empty) list is an empty set. */
int trust_list_load(struct certstore *store, const char *list, struct trust_set *set);

void trust_set_clear(struct trust_set *set);

/* Each certificate described (cert_info's fields, plus "ca"), for `replica trust list`. */
json_t *trust_set_describe(const struct trust_set *set, time_t now);

/* --- changes, through the apply pipeline (agent/apply/apply.c) --- */

/* TRUST_REPLACE: the list becomes exactly pem's certificates (none: emptied); what a cluster's
 * store delivers (agent/sync), never an operator's command. */
enum trust_op { TRUST_ADD, TRUST_REMOVE, TRUST_REPLACE };

/*
 * A change of one list: add certificates (pem), or remove them, named by their
 * certificates (pem) or by fingerprint (the whole, or a prefix of at least 8 hex
 * digits that names one entry; colons and case do not matter).
 */
struct trust_request {
    enum trust_op op;
    char *list;
    char *pem;
    size_t pem_len;
    char *fingerprint;
    bool unused_list; /* ADD: no database names the list yet (a warning, not a refusal) */
};

/* Copies its arguments; pem or fingerprint may be NULL. NULL when out of memory. */
struct trust_request *trust_request_new(enum trust_op op, const char *list, const char *pem,
                                        size_t pem_len, const char *fingerprint);
void trust_request_free(struct trust_request *request);

#define TRUST_CHANGES_MAX 8 /* lists changed by one batch */

/* One list a batch changes. */
struct trust_change {
    char list[TRUST_NAME_MAX + 1];
    bool had_current;
    unsigned old_generation;
    unsigned generation;
    bool removed;   /* the change empties the list: it goes when the change succeeds */
    bool staged;    /* generation exists and is not current: discarded unless committed */
    bool committed; /* this run made generation current */
};

/* The lists a batch of the apply pipeline changes. A zeroed batch is empty. */
struct trust_batch {
    struct certstore *store;
    struct trust_change changes[TRUST_CHANGES_MAX];
    size_t n;
};

/*
 * Validates a request against the list as it is and stages the new bundle
 * (nothing is current yet). Appends what it changes to changes ({"trust",
 * "action", "fingerprints", "count"}, or "unchanged"), and a warning (a
 * certificate close to its end) to warning. Returns 0, or a negative code with
 * the problem in err and a reason word for programs in *ret_reason:
 *   CV_EUSAGE          a bad list name, nothing to add or remove
 *   CV_EINVALID_CERT   not certificates ("invalid_certificate"), a fingerprint
 *                      not in the list or ambiguous ("not_trusted"), too many
 *   CV_ECERT_EXPIRED   an expired or not yet valid certificate ("expired")
 */
int trust_prepare(struct trust_batch *batch, struct certstore *store,
                  const struct trust_request *request, json_t *changes, char *warning,
                  size_t warning_len, const char **ret_reason, char *err, size_t err_len);

/* Makes the staged generations current (one journal for several lists). */
int trust_batch_commit(struct trust_batch *batch, char *err, size_t err_len);

/* After a commit, when a service did not come back: the previous generations current again. */
void trust_batch_restore(struct trust_batch *batch);

/* Removes what was staged and is not (or no longer) current; the batch is empty after. */
void trust_batch_discard(struct trust_batch *batch);

/* The change is in force: emptied lists go, older generations are pruned. */
void trust_batch_succeed(struct trust_batch *batch);

#endif
