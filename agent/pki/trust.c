/* Trust lists: named sets of certificates that replication peers are verified against. */
#include "trust.h"

#include "cert_info.h"
#include "cert_names.h"
#include "cv_error.h"
#include "x509_check.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GENERATIONS_KEPT 2       /* older bundles kept, as for certificates */
#define FINGERPRINT_PREFIX_MIN 8 /* hex digits a fingerprint given by hand must have */

bool trust_list_name_valid(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > TRUST_NAME_MAX || strcmp(name, "all") == 0 ||
        strcmp(name, CERT_CLUSTER_CA) == 0 || cert_name_lookup(name))
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

bool trust_ref_is_list(const char *ref)
{
    return ref[0] != '/' && strcmp(ref, CERT_CLUSTER_CA) != 0 && !cert_name_lookup(ref);
}

int trust_ref_check(const char *ref, char *reason, size_t reason_len)
{
    const struct cert_name *entry = cert_name_lookup(ref);

    if (ref[0] == '/' || strcmp(ref, CERT_CLUSTER_CA) == 0)
        return 0;
    if (entry) {
        if (entry->purpose == CERT_PURPOSE_CA_BUNDLE)
            return 0;
        snprintf(reason, reason_len,
                 "'%s' is a certificate the node serves with, not one to trust peers with", ref);
        return -EINVAL;
    }
    if (trust_list_name_valid(ref))
        return 0;
    snprintf(reason, reason_len,
             "'%s' is not mtls_trusted_ca, cluster_ca or an absolute path to a PEM file, nor a "
             "trust list's name (a-z, 0-9 and _, at most %d)",
             ref, TRUST_NAME_MAX);
    return -EINVAL;
}

/* --- sets of certificates --- */

void trust_set_clear(struct trust_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        X509_free(set->entries[i].cert);
    free(set->entries);
    set->entries = NULL;
    set->n = 0;
}

static int set_add(struct trust_set *set, X509 *cert)
{
    struct trust_entry *grown;

    if (set->n >= TRUST_ENTRIES_MAX)
        return -E2BIG;
    grown = realloc(set->entries, (set->n + 1) * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    set->entries = grown;
    grown[set->n].cert = cert;
    tls_cert_fingerprint(cert, grown[set->n].fingerprint, sizeof(grown[set->n].fingerprint));
    set->n++;
    return 0;
}

static bool set_has(const struct trust_set *set, const char *fingerprint)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->entries[i].fingerprint, fingerprint) == 0)
            return true;
    return false;
}

/* True when text holds nothing but blank space. */
static bool blank(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!isspace((unsigned char)text[i]))
            return false;
    return true;
}

int trust_set_parse(const char *pem, size_t len, struct trust_set *set, char *err, size_t err_len)
{
    const char *at = pem, *end = pem + len;
    int r = 0;

    memset(set, 0, sizeof(*set));
    if (len > X509_CHECK_MAX_INPUT) {
        snprintf(err, err_len, "more than %d bytes: not a certificate file", X509_CHECK_MAX_INPUT);
        return CV_EINVALID_CERT;
    }
    /* Block by block, so that a key or anything else among the certificates is named. */
    while (r == 0 && !blank(at, (size_t)(end - at))) {
        const char *begin = memmem(at, (size_t)(end - at), "-----BEGIN ", 11);
        const char *stop = begin ? memmem(begin, (size_t)(end - begin), "-----END ", 9) : NULL;
        const char *after = stop ? memmem(stop + 9, (size_t)(end - stop - 9), "-----", 5) : NULL;
        BIO *bio;
        X509 *cert;

        if (!begin || !blank(at, (size_t)(begin - at)) || !after) {
            snprintf(err, err_len,
                     set->n ? "text after certificate %zu is not a PEM certificate"
                            : "not a PEM certificate (-----BEGIN CERTIFICATE-----)",
                     set->n);
            r = CV_EINVALID_CERT;
            break;
        }
        after += 5;
        if (strncmp(begin, "-----BEGIN CERTIFICATE-----", 27) != 0) {
            snprintf(err, err_len,
                     "block %zu is not a certificate (%.*s): trust lists take certificates only",
                     set->n + 1, (int)strcspn(begin + 11, "-\n"), begin + 11);
            r = CV_EINVALID_CERT;
            break;
        }
        bio = BIO_new_mem_buf(begin, (int)(after - begin));
        cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        ERR_clear_error();
        if (!cert) {
            snprintf(err, err_len, "certificate %zu cannot be read", set->n + 1);
            r = CV_EINVALID_CERT;
            break;
        }
        r = set_add(set, cert);
        if (r < 0) {
            X509_free(cert);
            snprintf(err, err_len, r == -E2BIG ? "more than %d certificates" : "out of memory",
                     TRUST_ENTRIES_MAX);
            r = r == -E2BIG ? CV_EINVALID_CERT : r;
        }
        at = after;
    }
    if (r == 0 && set->n == 0) {
        snprintf(err, err_len, "no certificate in it");
        r = CV_EINVALID_CERT;
    }
    if (r < 0)
        trust_set_clear(set);
    return r;
}

int trust_list_load(struct certstore *store, const char *list, struct trust_set *set)
{
    char *pem = NULL, err[256];
    unsigned generation;
    size_t len = 0;
    int r;

    memset(set, 0, sizeof(*set));
    if (certstore_current(store, list, &generation) < 0)
        return 0;
    r = certstore_read_cert(store, list, generation, &pem, &len);
    if (r == 0)
        r = trust_set_parse(pem, len, set, err, sizeof(err));
    free(pem);
    return r;
}

/* The set as one PEM bundle (malloc'd), or NULL when out of memory. */
static char *set_pem(const struct trust_set *set)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL, *text = NULL;
    long len;

    for (size_t i = 0; bio && i < set->n; i++) {
        if (PEM_write_bio_X509(bio, set->entries[i].cert) != 1) {
            BIO_free(bio);
            return NULL;
        }
    }
    len = bio ? BIO_get_mem_data(bio, &data) : 0;
    if (bio && len >= 0 && (text = malloc((size_t)len + 1))) {
        memcpy(text, data, (size_t)len);
        text[len] = '\0';
    }
    BIO_free(bio);
    return text;
}

json_t *trust_set_describe(const struct trust_set *set, time_t now)
{
    json_t *items = json_array();

    for (size_t i = 0; i < set->n; i++) {
        BIO *bio = BIO_new(BIO_s_mem());
        char *data = NULL;
        long len = 0;
        json_t *item = NULL;

        if (bio && PEM_write_bio_X509(bio, set->entries[i].cert) == 1)
            len = BIO_get_mem_data(bio, &data);
        if (data && len > 0)
            item = cert_info_describe(data, (size_t)len, now);
        BIO_free(bio);
        if (!item)
            continue;
        json_object_set_new(item, "ca", json_boolean(X509_check_ca(set->entries[i].cert) > 0));
        json_array_append_new(items, item);
    }
    return items;
}

/* --- changes --- */

struct trust_request *trust_request_new(enum trust_op op, const char *list, const char *pem,
                                        size_t pem_len, const char *fingerprint)
{
    struct trust_request *request = calloc(1, sizeof(*request));

    if (!request)
        return NULL;
    request->op = op;
    request->list = strdup(list);
    if (pem && (request->pem = malloc(pem_len + 1))) {
        memcpy(request->pem, pem, pem_len);
        request->pem[pem_len] = '\0';
        request->pem_len = pem_len;
    }
    if (fingerprint)
        request->fingerprint = strdup(fingerprint);
    if (!request->list || (pem && !request->pem) || (fingerprint && !request->fingerprint)) {
        trust_request_free(request);
        return NULL;
    }
    return request;
}

void trust_request_free(struct trust_request *request)
{
    if (!request)
        return;
    free(request->list);
    free(request->pem);
    free(request->fingerprint);
    free(request);
}

/* Hex digits only, upper case: "ab:cd" -> "ABCD". Returns -EINVAL for anything else. */
static int normalize_fingerprint(const char *text, char *buf, size_t len)
{
    size_t n = 0;

    for (const char *p = text; *p; p++) {
        if (*p == ':')
            continue;
        if (!isxdigit((unsigned char)*p) || n + 1 >= len)
            return -EINVAL;
        buf[n++] = (char)toupper((unsigned char)*p);
    }
    buf[n] = '\0';
    return n >= FINGERPRINT_PREFIX_MIN ? 0 : -EINVAL;
}

/* Checks the validity dates of what is added; the first problem refuses the request. */
static int check_dates(const struct trust_set *added, const char *list, char *warning,
                       size_t warning_len, char *err, size_t err_len)
{
    time_t now = time(NULL);

    for (size_t i = 0; i < added->n; i++) {
        X509 *cert = added->entries[i].cert;
        int days = 0, seconds = 0;

        if (X509_cmp_time(X509_get0_notAfter(cert), &now) <= 0) {
            snprintf(err, err_len, "certificate %s has expired: it cannot be trusted",
                     added->entries[i].fingerprint);
            return CV_ECERT_EXPIRED;
        }
        if (X509_cmp_time(X509_get0_notBefore(cert), &now) > 0) {
            snprintf(err, err_len, "certificate %s is not valid yet (check the clocks)",
                     added->entries[i].fingerprint);
            return CV_ECERT_EXPIRED;
        }
        if (ASN1_TIME_diff(&days, &seconds, NULL, X509_get0_notAfter(cert)) &&
            days < X509_CHECK_WARN_DAYS && !*warning)
            snprintf(warning, warning_len,
                     "certificate %s added to trust list '%s' expires in %d days",
                     added->entries[i].fingerprint, list, days);
    }
    return 0;
}

/* The entries of set that the request names for removal, marked in remove[]. */
static int pick_removed(const struct trust_set *set, const struct trust_request *request,
                        bool *remove, size_t *ret_count, const char **ret_reason, char *err,
                        size_t err_len)
{
    size_t count = 0;

    if (request->pem) {
        struct trust_set named;
        int r = trust_set_parse(request->pem, request->pem_len, &named, err, err_len);

        if (r < 0) {
            *ret_reason = "invalid_certificate";
            return r;
        }
        for (size_t i = 0; i < set->n; i++)
            if ((remove[i] = set_has(&named, set->entries[i].fingerprint)))
                count++;
        trust_set_clear(&named);
    } else {
        char wanted[TLS_FINGERPRINT_MAX], have[TLS_FINGERPRINT_MAX];

        if (normalize_fingerprint(request->fingerprint, wanted, sizeof(wanted)) < 0) {
            snprintf(err, err_len,
                     "'%s' is neither a certificate file nor a fingerprint (at least %d hex "
                     "digits, colons allowed)",
                     request->fingerprint, FINGERPRINT_PREFIX_MIN);
            *ret_reason = "usage";
            return CV_EUSAGE;
        }
        for (size_t i = 0; i < set->n; i++) {
            normalize_fingerprint(set->entries[i].fingerprint, have, sizeof(have));
            if ((remove[i] = strncmp(have, wanted, strlen(wanted)) == 0))
                count++;
        }
        if (count > 1) {
            snprintf(err, err_len,
                     "fingerprint %s names %zu certificates of trust list '%s': give more of it",
                     request->fingerprint, count, request->list);
            *ret_reason = "not_trusted";
            return CV_EINVALID_CERT;
        }
    }
    if (count == 0) {
        snprintf(err, err_len, "trust list '%s' holds no such certificate%s", request->list,
                 set->n ? " (see 'certvisorctl replica trust list')" : ": it is empty");
        *ret_reason = "not_trusted";
        return CV_EINVALID_CERT;
    }
    *ret_count = count;
    return 0;
}

/*
 * The list after the request, into after (which takes references of its own);
 * its fingerprints added or removed go to touched.
 */
static int apply_request(const struct trust_set *before, const struct trust_request *request,
                         struct trust_set *after, json_t *touched, char *warning,
                         size_t warning_len, const char **ret_reason, char *err, size_t err_len)
{
    bool remove[TRUST_ENTRIES_MAX] = {false};
    struct trust_set added = {0};
    size_t count = 0;
    int r = 0;

    memset(after, 0, sizeof(*after));
    if (request->op == TRUST_REMOVE) {
        r = pick_removed(before, request, remove, &count, ret_reason, err, err_len);
    } else if (request->op == TRUST_REPLACE) {
        /* Everything goes, then the bundle's certificates come (back) in its order. */
        for (size_t i = 0; i < before->n; i++)
            remove[i] = true;
        if (request->pem_len > 0 &&
            (r = trust_set_parse(request->pem, request->pem_len, &added, err, err_len)) < 0)
            *ret_reason = "invalid_certificate";
    } else {
        r = trust_set_parse(request->pem, request->pem_len, &added, err, err_len);
        if (r < 0)
            *ret_reason = "invalid_certificate";
        if (r == 0 &&
            (r = check_dates(&added, request->list, warning, warning_len, err, err_len)) < 0)
            *ret_reason = "expired";
        /* Trusting ahead of the database is allowed; a typo in the list's name is likelier. */
        if (r == 0 && request->unused_list && !*warning)
            snprintf(warning, warning_len,
                     "no database names trust list '%s' yet (as client_trust, "
                     "authentication_ssl_client_certs or replica_of's server_cert): check the "
                     "name ('certvisorctl replica trust list' shows the lists in use)",
                     request->list);
    }
    for (size_t i = 0; r == 0 && i < before->n; i++) {
        if (remove[i]) {
            json_array_append_new(touched, json_string(before->entries[i].fingerprint));
            continue;
        }
        X509_up_ref(before->entries[i].cert);
        if ((r = set_add(after, before->entries[i].cert)) < 0)
            X509_free(before->entries[i].cert);
    }
    for (size_t i = 0; r == 0 && i < added.n; i++) {
        if (set_has(after, added.entries[i].fingerprint))
            continue; /* trusted already (or given twice) */
        X509_up_ref(added.entries[i].cert);
        if ((r = set_add(after, added.entries[i].cert)) < 0)
            X509_free(added.entries[i].cert);
        else
            json_array_append_new(touched, json_string(added.entries[i].fingerprint));
    }
    if (r == -E2BIG) {
        snprintf(err, err_len, "trust list '%s' would hold more than %d certificates",
                 request->list, TRUST_ENTRIES_MAX);
        *ret_reason = "invalid_certificate";
        r = CV_EINVALID_CERT;
    }
    trust_set_clear(&added);
    if (r < 0)
        trust_set_clear(after);
    return r;
}

/* Stages the new bundle of change (or marks the list emptied). */
static int stage(struct trust_batch *batch, struct trust_change *change,
                 const struct trust_set *after, char *err, size_t err_len)
{
    char *pem;
    int r;

    if (after->n == 0) {
        change->removed = true;
        return 0;
    }
    pem = set_pem(after);
    if (!pem)
        return -ENOMEM;
    r = certstore_stage(batch->store, change->list, pem, strlen(pem), NULL, 0, false,
                        &change->generation, err, err_len);
    free(pem);
    if (r == 0)
        change->staged = true;
    return r;
}

int trust_prepare(struct trust_batch *batch, struct certstore *store,
                  const struct trust_request *request, json_t *changes, char *warning,
                  size_t warning_len, const char **ret_reason, char *err, size_t err_len)
{
    struct trust_set before = {0}, after = {0};
    struct trust_change *change;
    json_t *touched = json_array();
    int r;

    *ret_reason = NULL;
    if (!trust_list_name_valid(request->list)) {
        json_decref(touched);
        snprintf(err, err_len, "'%s' is not a trust list name (a-z, 0-9 and _, at most %d)",
                 request->list, TRUST_NAME_MAX);
        *ret_reason = "usage";
        return CV_EUSAGE;
    }
    if (batch->n >= TRUST_CHANGES_MAX) {
        json_decref(touched);
        snprintf(err, err_len, "too many trust lists in one change");
        return -E2BIG;
    }
    batch->store = store;
    r = trust_list_load(store, request->list, &before);
    if (r < 0)
        snprintf(err, err_len, "trust list '%s' cannot be read: %s", request->list, cv_strerror(r));
    if (r == 0)
        r = apply_request(&before, request, &after, touched, warning, warning_len, ret_reason, err,
                          err_len);
    if (r == 0 && json_array_size(touched) == 0) {
        /* Every certificate was trusted already: nothing is staged, nothing reloads. */
        json_array_append_new(changes,
                              json_pack("{s:s, s:s, s:b, s:i}", "trust", request->list, "action",
                                        "add", "unchanged", 1, "count", (int)before.n));
        goto out;
    }
    if (r < 0)
        goto out;
    change = &batch->changes[batch->n];
    memset(change, 0, sizeof(*change));
    snprintf(change->list, sizeof(change->list), "%s", request->list);
    change->had_current = certstore_current(store, request->list, &change->old_generation) == 0;
    r = stage(batch, change, &after, err, err_len);
    if (r < 0)
        goto out;
    batch->n++;
    json_array_append_new(changes,
                          json_pack("{s:s, s:s, s:O, s:i}", "trust", request->list, "action",
                                    request->op == TRUST_ADD      ? "add"
                                    : request->op == TRUST_REMOVE ? "remove"
                                                                  : "replace",
                                    "fingerprints", touched, "count", (int)after.n));
out:
    json_decref(touched);
    trust_set_clear(&before);
    trust_set_clear(&after);
    return r;
}

int trust_batch_commit(struct trust_batch *batch, char *err, size_t err_len)
{
    const char *names[TRUST_CHANGES_MAX];
    unsigned generations[TRUST_CHANGES_MAX];
    size_t n = 0;
    int r;

    for (size_t i = 0; i < batch->n; i++) {
        if (!batch->changes[i].staged)
            continue;
        names[n] = batch->changes[i].list;
        generations[n++] = batch->changes[i].generation;
    }
    if (n == 0)
        return 0;
    r = certstore_commit_many(batch->store, names, generations, n, err, err_len);
    if (r < 0)
        return r;
    for (size_t i = 0; i < batch->n; i++) {
        batch->changes[i].committed = batch->changes[i].staged;
        batch->changes[i].staged = false;
    }
    return 0;
}

void trust_batch_restore(struct trust_batch *batch)
{
    for (size_t i = 0; i < batch->n; i++) {
        struct trust_change *change = &batch->changes[i];

        if (!change->committed)
            continue;
        /* The old bundle current again; the new one is discarded with the batch. */
        if (change->had_current &&
            certstore_commit(batch->store, change->list, change->old_generation, NULL, 0) == 0)
            change->staged = true;
        else if (!change->had_current)
            certstore_delete(batch->store, change->list, NULL, 0);
        change->committed = false;
    }
}

void trust_batch_discard(struct trust_batch *batch)
{
    for (size_t i = 0; i < batch->n; i++)
        if (batch->changes[i].staged)
            certstore_discard(batch->store, batch->changes[i].list, batch->changes[i].generation);
    batch->n = 0;
}

void trust_batch_succeed(struct trust_batch *batch)
{
    for (size_t i = 0; i < batch->n; i++) {
        struct trust_change *change = &batch->changes[i];

        if (change->removed)
            certstore_delete(batch->store, change->list, NULL, 0);
        else if (change->committed)
            certstore_prune(batch->store, change->list, GENERATIONS_KEPT);
    }
    batch->n = 0;
}
