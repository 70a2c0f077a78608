/*
 * The requests the apply pipeline takes (what each asks for, who asked, and what it
 * comes to while applied), and the batching rule: which queued requests are planned
 * and applied together. Private to agent/apply.
 */
#ifndef CERTVISOR_APPLY_REQUEST_H
#define CERTVISOR_APPLY_REQUEST_H

#include "apply.h"
#include "trust.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define BATCH_MAX 16 /* requests in one plan */

enum apply_kind {
    APPLY_CERTIFICATE,
    APPLY_ROTATE,
    APPLY_DELETE,
    APPLY_POLICY,
    APPLY_CONFIG,
    APPLY_TRUST
};

/* One certificate of a replacement. */
struct apply_pair {
    char *name;
    char *cert_pem;
    size_t cert_len;
    char *key_pem; /* NULL: the key a CSR left pending; wiped on free */
    size_t key_len;
};

struct apply_request {
    struct apply_request *next;
    enum apply_kind kind;
    char *name;               /* DELETE's certificate, or ROTATE's name or "all" */
    struct apply_pair *pairs; /* CERTIFICATE: one or more, applied all or none */
    size_t n_pairs;
    char origin[32];
    char **setting_names; /* POLICY */
    char **setting_values;
    size_t n_settings;
    struct trust_request *trust; /* TRUST (name is its list) */
    /* the caller */
    char who[320];
    bool dry_run;
    bool alone;        /* plan it by itself (it was in a batch whose plan failed) */
    bool from_cluster; /* delivered by the cluster's store: commit here, never publish */
    apply_done_fn done;
    void *data;
    /* while it is being applied */
    bool answered;      /* refused at validation: already told */
    const char *reason; /* why it was refused, when the error code alone does not say */
    char warning[640];
    json_t *changes; /* what it changes, for the answer and the audit line */
    json_t *summary; /* CONFIG: added, changed, updated, removed, warnings */
    int stage_error; /* the first of its generations that could not be made or written */
    char stage_message[512];
};

void apply_request_free(struct apply_request *request);

/*
 * Takes the next batch off the queue from *head (and *tail, NULL once empty) into
 * batch (BATCH_MAX entries): the head, then the requests after it of its class that
 * touch nothing the batch already does, up to the first that does not fit. Certificate
 * changes batch with certificate changes, policy with policy, trust lists with trust
 * lists; a configuration reload, a dry run and a request marked alone go by themselves.
 * Returns how many were taken (at least one; *head must not be NULL).
 */
size_t apply_batch_take(struct apply_request **head, struct apply_request **tail,
                        struct apply_request **batch);

#endif
