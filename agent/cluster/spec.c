/* The values a cluster keeps in etcd (spec.h). Every field read is checked. */
#include "spec.h"

#include "etcd_json.h"
#include "json_fields.h"
#include "join_token.h"
#include "sealed.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- keys --- */

static bool plain_name(const char *name)
{
    return name && *name && !strchr(name, '/') && strlen(name) < SPEC_MAX_NAME;
}

int spec_prefix(char *buf, size_t len, const char *cluster)
{
    int n = snprintf(buf, len, "/certvisor/%s/", cluster);

    return n < 0 || (size_t)n >= len ? -1 : n;
}

int spec_key_cert(char *buf, size_t len, const char *prefix, const char *node, const char *name)
{
    int n;

    if (!plain_name(name) || (node && !plain_name(node)))
        return -1;
    if (node)
        n = snprintf(buf, len, "%sspec/nodecerts/%s/%s/current", prefix, node, name);
    else
        n = snprintf(buf, len, "%sspec/certs/%s/current", prefix, name);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

int spec_key_status(char *buf, size_t len, const char *prefix, const char *node)
{
    int n;

    if (!plain_name(node))
        return -1;
    n = snprintf(buf, len, "%sstatus/%s", prefix, node);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

int spec_key_node(char *buf, size_t len, const char *prefix, const char *node)
{
    int n;

    if (!plain_name(node))
        return -1;
    n = snprintf(buf, len, "%snodes/%s", prefix, node);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

int spec_key_trust(char *buf, size_t len, const char *prefix, const char *list)
{
    int n;

    if (!plain_name(list))
        return -1;
    n = snprintf(buf, len, "%sspec/trust/%s/current", prefix, list);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

int spec_trust_list_of(const char *key, const char *prefix, char *list, size_t len)
{
    static const char head[] = "spec/trust/", tail[] = "/current";
    size_t prefix_len = strlen(prefix), key_len = strlen(key), name_len;

    if (key_len <= prefix_len + sizeof(head) - 1 + sizeof(tail) - 1 ||
        strncmp(key, prefix, prefix_len) != 0 ||
        strncmp(key + prefix_len, head, sizeof(head) - 1) != 0 ||
        strcmp(key + key_len - (sizeof(tail) - 1), tail) != 0)
        return -1;
    name_len = key_len - prefix_len - (sizeof(head) - 1) - (sizeof(tail) - 1);
    if (name_len >= len)
        return -1;
    memcpy(list, key + prefix_len + sizeof(head) - 1, name_len);
    list[name_len] = '\0';
    return plain_name(list) ? 0 : -1;
}

/* --- certificates --- */

char *spec_cert_encode(const struct spec_cert *cert)
{
    json_t *root = json_pack("{s:s, s:I, s:s, s:s, s:s}", "name", cert->name, "generation",
                             (json_int_t)cert->generation, "origin", cert->origin, "fingerprint",
                             cert->fingerprint, "published_by", cert->published_by);

    if (!root)
        return NULL;
    if (cert->removed) {
        json_object_set_new(root, "removed", json_true());
        return json_fields_dump(root);
    }
    if (json_object_set_new(root, "cert", json_stringn(cert->cert_pem, cert->cert_len)) < 0 ||
        (cert->sealed_key &&
         json_object_set_new(root, "key", etcd_b64_string(cert->sealed_key, cert->sealed_len)) <
             0)) {
        json_decref(root);
        return NULL;
    }
    return json_fields_dump(root);
}

int spec_cert_decode(const char *text, size_t len, struct spec_cert *out, char *err, size_t err_len)
{
    const char *what = "a certificate in the cluster's store";
    json_t *root, *cert, *key, *removed;
    int64_t generation;
    int r;

    memset(out, 0, sizeof(*out));
    root = json_fields_object(text, len, 2 * SPEC_MAX_CERT, what, err, err_len);
    if (!root)
        return -EINVAL;
    r = json_fields_string(root, "name", true, out->name, sizeof(out->name), what, err, err_len);
    if (r == 0)
        r = json_fields_integer(root, "generation", false, &generation, what, err, err_len);
    if (r == 0 && generation > 0xffffffffLL) {
        snprintf(err, err_len, "%s: 'generation' is out of range", what);
        r = -EINVAL;
    }
    out->generation = r == 0 ? (unsigned)generation : 0;
    if (r == 0)
        r = json_fields_string(root, "origin", false, out->origin, sizeof(out->origin), what, err,
                               err_len);
    if (r == 0)
        r = json_fields_string(root, "fingerprint", false, out->fingerprint,
                               sizeof(out->fingerprint), what, err, err_len);
    if (r == 0)
        r = json_fields_string(root, "published_by", false, out->published_by,
                               sizeof(out->published_by), what, err, err_len);
    removed = json_object_get(root, "removed");
    if (r == 0 && removed && !json_is_boolean(removed)) {
        snprintf(err, err_len, "%s: 'removed' is not true or false", what);
        r = -EINVAL;
    }
    out->removed = r == 0 && json_is_true(removed);
    cert = json_object_get(root, "cert");
    key = json_object_get(root, "key");
    if (r == 0 && !out->removed) {
        if (!json_is_string(cert) || json_string_length(cert) == 0 ||
            json_string_length(cert) > SPEC_MAX_CERT ||
            strlen(json_string_value(cert)) != json_string_length(cert)) {
            snprintf(err, err_len, "%s: 'cert' is %s", what,
                     !cert                   ? "missing"
                     : !json_is_string(cert) ? "not a string"
                                             : "empty, too long or holds NUL");
            r = -EINVAL;
        } else if (key && !json_is_string(key)) {
            snprintf(err, err_len, "%s: 'key' is not a string", what);
            r = -EINVAL;
        }
    }
    if (r == 0 && !out->removed) {
        out->cert_len = json_string_length(cert);
        out->cert_pem = strdup(json_string_value(cert));
        if (!out->cert_pem)
            r = -ENOMEM;
    }
    if (r == 0 && !out->removed && key) {
        r = etcd_b64_decode(json_string_value(key), json_string_length(key),
                            SEALED_MAX_PLAINTEXT + SEALED_OVERHEAD, &out->sealed_key,
                            &out->sealed_len);
        if (r == -EINVAL)
            snprintf(err, err_len, "%s: 'key' is not base64 of at most %d bytes", what,
                     SEALED_MAX_PLAINTEXT + SEALED_OVERHEAD);
    }
    json_decref(root);
    if (r < 0)
        spec_cert_clear(out); /* nothing half-read is returned */
    return r;
}

void spec_cert_clear(struct spec_cert *cert)
{
    free(cert->cert_pem);
    free(cert->sealed_key);
    memset(cert, 0, sizeof(*cert));
}

/* --- meta --- */

char *spec_meta_encode(const struct spec_meta *meta)
{
    return json_fields_dump(json_pack("{s:i, s:s, s:s, s:s, s:I}", "schema", meta->schema, "uid",
                                      meta->uid, "check", meta->check, "initialised_by",
                                      meta->initialised_by, "at", (json_int_t)meta->at));
}

int spec_meta_decode(const char *text, size_t len, struct spec_meta *out, char *err, size_t err_len)
{
    const char *what = "the cluster's meta key";
    json_t *root;
    int64_t schema = 0;
    int r;

    memset(out, 0, sizeof(*out));
    root = json_fields_object(text, len, 4096, what, err, err_len);
    if (!root)
        return -EINVAL;
    r = json_fields_integer(root, "schema", true, &schema, what, err, err_len);
    if (r == 0 && schema != SPEC_SCHEMA) {
        snprintf(err, err_len,
                 "%s: schema %lld, and this certvisord knows schema %d only: upgrade it", what,
                 (long long)schema, SPEC_SCHEMA);
        r = -EINVAL;
    }
    out->schema = (int)schema;
    if (r == 0)
        r = json_fields_string(root, "uid", true, out->uid, sizeof(out->uid), what, err, err_len);
    if (r == 0)
        r = json_fields_string(root, "check", true, out->check, sizeof(out->check), what, err,
                               err_len);
    if (r == 0)
        r = json_fields_string(root, "initialised_by", false, out->initialised_by,
                               sizeof(out->initialised_by), what, err, err_len);
    if (r == 0)
        r = json_fields_integer(root, "at", false, &out->at, what, err, err_len);
    json_decref(root);
    return r;
}

/* --- policy --- */

char *spec_policy_encode(const struct spec_policy *policy)
{
    json_t *root = json_object();

    for (size_t i = 0; root && i < policy->n; i++)
        if (json_object_set_new(root, policy->names[i], json_string(policy->values[i])) < 0) {
            json_decref(root);
            return NULL;
        }
    return json_fields_dump(root);
}

int spec_policy_decode(const char *text, size_t len, struct spec_policy *out, char *err,
                       size_t err_len)
{
    const char *what = "the cluster's policy";
    const char *name;
    json_t *root, *value;
    int r = 0;

    memset(out, 0, sizeof(*out));
    root = json_fields_object(text, len, 64 * 1024, what, err, err_len);
    if (!root)
        return -EINVAL;
    if (json_object_size(root) > SPEC_MAX_POLICY_SETTINGS) {
        snprintf(err, err_len, "%s: %zu settings, over the limit of %d", what,
                 json_object_size(root), SPEC_MAX_POLICY_SETTINGS);
        json_decref(root);
        return -EINVAL;
    }
    json_object_foreach(root, name, value)
    {
        if (strlen(name) == 0 || strlen(name) >= SPEC_MAX_NAME || !json_is_string(value) ||
            json_string_length(value) >= SPEC_MAX_POLICY_VALUE ||
            strlen(json_string_value(value)) != json_string_length(value)) {
            snprintf(err, err_len,
                     "%s: setting '%.64s' is not a name and a string value of at most %d bytes",
                     what, name, SPEC_MAX_POLICY_VALUE - 1);
            r = -EINVAL;
            break;
        }
        snprintf(out->names[out->n], sizeof(out->names[0]), "%s", name);
        memcpy(out->values[out->n], json_string_value(value), json_string_length(value) + 1);
        out->n++;
    }
    json_decref(root);
    return r;
}

/* --- status --- */

static const char *result_word(enum spec_result result)
{
    return result == SPEC_APPLIED ? "applied" : "failed";
}

char *spec_status_encode(const struct spec_status *status, const char *fingerprints_json)
{
    json_t *root = json_pack("{s:s, s:I, s:s, s:s, s:I}", "node", status->node, "revision",
                             (json_int_t)status->revision, "result", result_word(status->result),
                             "reason", status->reason, "at", (json_int_t)status->at);
    json_t *fingerprints = fingerprints_json ? json_loads(fingerprints_json, 0, NULL) : NULL;

    if (root && fingerprints)
        json_object_set_new(root, "fingerprints", fingerprints);
    else
        json_decref(fingerprints);
    return json_fields_dump(root);
}

int spec_status_decode(const char *text, size_t len, struct spec_status *out, char *err,
                       size_t err_len)
{
    const char *what = "a node's status in the cluster's store";
    char result[16];
    json_t *root;
    int r;

    memset(out, 0, sizeof(*out));
    root = json_fields_object(text, len, 64 * 1024, what, err, err_len);
    if (!root)
        return -EINVAL;
    r = json_fields_string(root, "node", true, out->node, sizeof(out->node), what, err, err_len);
    if (r == 0)
        r = json_fields_integer(root, "revision", true, &out->revision, what, err, err_len);
    if (r == 0)
        r = json_fields_string(root, "result", true, result, sizeof(result), what, err, err_len);
    if (r == 0 && strcmp(result, "applied") != 0 && strcmp(result, "failed") != 0) {
        snprintf(err, err_len, "%s: 'result' is neither applied nor failed", what);
        r = -EINVAL;
    }
    out->result = r == 0 && strcmp(result, "applied") == 0 ? SPEC_APPLIED : SPEC_FAILED;
    if (r == 0)
        r = json_fields_string(root, "reason", false, out->reason, sizeof(out->reason), what, err,
                               err_len);
    if (r == 0)
        r = json_fields_integer(root, "at", false, &out->at, what, err, err_len);
    json_decref(root);
    return r;
}

/* --- join tokens --- */

int spec_key_join(char *buf, size_t len, const char *prefix, const char *id)
{
    int n;

    if (!join_token_id_valid(id))
        return -1;
    n = snprintf(buf, len, "%sjoin/%s", prefix, id);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

char *spec_join_encode(const struct spec_join *join)
{
    return json_fields_dump(json_pack(
        "{s:s, s:s, s:I, s:I, s:s, s:s}", "id", join->id, "secret_sha256", join->secret_sha256,
        "created", (json_int_t)join->created, "expires", (json_int_t)join->expires, "created_by",
        join->created_by, "description", join->description));
}

static bool lower_hex(const char *text, size_t len)
{
    return strlen(text) == len && strspn(text, "0123456789abcdef") == len;
}

int spec_join_decode(const char *text, size_t len, struct spec_join *out, char *err, size_t err_len)
{
    const char *what = "a join token in the cluster's store";
    json_t *root;
    int r;

    memset(out, 0, sizeof(*out));
    root = json_fields_object(text, len, 4096, what, err, err_len);
    if (!root)
        return -EINVAL;
    r = json_fields_string(root, "id", true, out->id, sizeof(out->id), what, err, err_len);
    if (r == 0 && !join_token_id_valid(out->id)) {
        snprintf(err, err_len, "%s: 'id' is not six lowercase letters and digits", what);
        r = -EINVAL;
    }
    if (r == 0)
        r = json_fields_string(root, "secret_sha256", true, out->secret_sha256,
                               sizeof(out->secret_sha256), what, err, err_len);
    if (r == 0 && !lower_hex(out->secret_sha256, 64)) {
        snprintf(err, err_len, "%s: 'secret_sha256' is not 64 lowercase hex digits", what);
        r = -EINVAL;
    }
    if (r == 0)
        r = json_fields_integer(root, "created", true, &out->created, what, err, err_len);
    if (r == 0)
        r = json_fields_integer(root, "expires", true, &out->expires, what, err, err_len);
    if (r == 0 && out->expires < out->created) {
        snprintf(err, err_len, "%s: it expires before it was created", what);
        r = -EINVAL;
    }
    if (r == 0)
        r = json_fields_string(root, "created_by", false, out->created_by, sizeof(out->created_by),
                               what, err, err_len);
    if (r == 0)
        r = json_fields_string(root, "description", false, out->description,
                               sizeof(out->description), what, err, err_len);
    json_decref(root);
    return r;
}
