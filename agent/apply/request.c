/* The requests the apply pipeline takes, and which of them are planned together. */
#include "request.h"

#include "policy.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void apply_request_free(struct apply_request *request)
{
    if (!request)
        return;
    free(request->name);
    for (size_t i = 0; i < request->n_pairs; i++) {
        free(request->pairs[i].name);
        free(request->pairs[i].cert_pem);
        if (request->pairs[i].key_pem)
            OPENSSL_clear_free(request->pairs[i].key_pem, request->pairs[i].key_len);
    }
    free(request->pairs);
    for (size_t i = 0; i < request->n_settings; i++) {
        free(request->setting_names[i]);
        free(request->setting_values[i]);
    }
    free(request->setting_names);
    free(request->setting_values);
    trust_request_free(request->trust);
    json_decref(request->changes);
    json_decref(request->summary);
    free(request);
}

static struct apply_request *request_new(enum apply_kind kind, const char *name)
{
    struct apply_request *request = calloc(1, sizeof(*request));

    if (!request)
        return NULL;
    request->kind = kind;
    request->changes = json_array();
    if (name)
        request->name = strdup(name);
    if (!request->changes || (name && !request->name)) {
        apply_request_free(request);
        return NULL;
    }
    return request;
}

/* Copies one pair in. Returns 0 or -ENOMEM (what was copied is freed with the request). */
static int copy_pair(struct apply_pair *to, const struct apply_pair_input *from)
{
    to->name = strdup(from->name);
    to->cert_pem = malloc(from->cert_len + 1);
    if (from->key_pem) {
        to->key_pem = OPENSSL_malloc(from->key_len + 1);
        if (to->key_pem) {
            memcpy(to->key_pem, from->key_pem, from->key_len);
            to->key_pem[from->key_len] = '\0';
            to->key_len = from->key_len;
        }
    }
    if (!to->name || !to->cert_pem || (from->key_pem && !to->key_pem))
        return -ENOMEM;
    memcpy(to->cert_pem, from->cert_pem, from->cert_len);
    to->cert_pem[from->cert_len] = '\0';
    to->cert_len = from->cert_len;
    return 0;
}

struct apply_request *apply_certificates(const struct apply_pair_input *pairs, size_t n,
                                         const char *origin)
{
    struct apply_request *request = request_new(APPLY_CERTIFICATE, NULL);

    if (!request)
        return NULL;
    snprintf(request->origin, sizeof(request->origin), "%s", origin);
    request->pairs = calloc(n ? n : 1, sizeof(*request->pairs));
    if (!request->pairs) {
        apply_request_free(request);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        request->n_pairs = i + 1;
        if (copy_pair(&request->pairs[i], &pairs[i]) < 0) {
            apply_request_free(request);
            return NULL;
        }
    }
    return request;
}

struct apply_request *apply_certificate(const char *name, const char *cert_pem, size_t cert_len,
                                        const char *key_pem, size_t key_len, const char *origin)
{
    const struct apply_pair_input pair = {name, cert_pem, cert_len, key_pem, key_len};

    return apply_certificates(&pair, 1, origin);
}

struct apply_request *apply_rotate(const char *name)
{
    return request_new(APPLY_ROTATE, name);
}

struct apply_request *apply_delete(const char *name)
{
    return request_new(APPLY_DELETE, name);
}

struct apply_request *apply_config(void)
{
    return request_new(APPLY_CONFIG, NULL);
}

struct apply_request *apply_trust(struct trust_request *trust)
{
    struct apply_request *request = trust ? request_new(APPLY_TRUST, trust->list) : NULL;

    if (request)
        request->trust = trust;
    else
        trust_request_free(trust);
    return request;
}

struct apply_request *apply_policy(const char *const *names, const char *const *values, size_t n)
{
    struct apply_request *request = request_new(APPLY_POLICY, NULL);

    if (!request)
        return NULL;
    request->setting_names = calloc(n + 1, sizeof(char *));
    request->setting_values = calloc(n + 1, sizeof(char *));
    if (!request->setting_names || !request->setting_values) {
        apply_request_free(request);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        request->setting_names[i] = strdup(names[i]);
        request->setting_values[i] = strdup(values[i]);
        request->n_settings = i + 1;
        if (!request->setting_names[i] || !request->setting_values[i]) {
            apply_request_free(request);
            return NULL;
        }
    }
    return request;
}

/* Certificate changes batch with certificate changes, policy with policy, trust lists with
 * trust lists; a configuration reload, a dry run, and a request whose batch failed to plan go
 * alone. */
static int batch_class(const struct apply_request *request)
{
    if (request->dry_run || request->alone || request->kind == APPLY_CONFIG)
        return -1;
    /* What the cluster's store delivered is committed here, what a caller asked for is
     * published: one batch never holds both. */
    return (request->kind == APPLY_POLICY  ? 1
            : request->kind == APPLY_TRUST ? 2
                                           : 0) +
           (request->from_cluster ? 3 : 0);
}

/* The certificate names a request touches ("all" for every one): how many, and the i-th. */
static size_t n_names(const struct apply_request *request)
{
    return request->kind == APPLY_CERTIFICATE ? request->n_pairs : 1;
}

static const char *name_at(const struct apply_request *request, size_t i)
{
    return request->kind == APPLY_CERTIFICATE ? request->pairs[i].name : request->name;
}

/* True when b touches something a already does: it must wait for the next batch. */
static bool overlaps(const struct apply_request *a, const struct apply_request *b)
{
    if (a->kind == APPLY_POLICY) {
        for (size_t i = 0; i < a->n_settings; i++)
            for (size_t j = 0; j < b->n_settings; j++)
                if (policy_setting_lookup(a->setting_names[i]) ==
                    policy_setting_lookup(b->setting_names[j]))
                    return true;
        return false;
    }
    for (size_t i = 0; i < n_names(a); i++) {
        for (size_t j = 0; j < n_names(b); j++) {
            const char *x = name_at(a, i), *y = name_at(b, j);

            if (strcmp(x, y) == 0 || strcmp(x, "all") == 0 || strcmp(y, "all") == 0)
                return true;
        }
    }
    return false;
}

size_t apply_batch_take(struct apply_request **head, struct apply_request **tail,
                        struct apply_request **batch)
{
    size_t n = 0;
    int class = batch_class(*head);

    do {
        struct apply_request *request = *head;
        bool fits = n == 0 || batch_class(request) == class;

        for (size_t i = 0; fits && i < n; i++)
            fits = !overlaps(batch[i], request);
        if (!fits)
            break;
        *head = request->next;
        request->next = NULL;
        batch[n++] = request;
    } while (*head && class >= 0 && n < BATCH_MAX);
    if (!*head)
        *tail = NULL;
    return n;
}
