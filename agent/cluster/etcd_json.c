/* etcd's JSON API: requests and readers (etcd_json.h). Every field read is checked. */
#include "etcd_json.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- base64, with OpenSSL's block coder --- */

json_t *etcd_b64_string(const void *data, size_t len)
{
    size_t out_len = 4 * ((len + 2) / 3);
    char *text = malloc(out_len + 1);
    json_t *string;

    if (!text || len > INT32_MAX / 2) {
        free(text);
        return NULL;
    }
    EVP_EncodeBlock((unsigned char *)text, data, (int)len);
    string = json_stringn(text, out_len);
    free(text);
    return string;
}

int etcd_b64_decode(const char *text, size_t len, size_t max, unsigned char **out, size_t *out_len)
{
    size_t pad = 0, decoded_max;
    unsigned char *buf;
    int n;

    *out = NULL;
    *out_len = 0;
    if (len % 4 != 0 || len / 4 * 3 > max + 2)
        return -EINVAL;
    if (len > 0 && text[len - 1] == '=')
        pad++;
    if (len > 1 && text[len - 2] == '=')
        pad++;
    decoded_max = len / 4 * 3;
    buf = malloc(decoded_max + 1);
    if (!buf)
        return -ENOMEM;
    n = len ? EVP_DecodeBlock(buf, (const unsigned char *)text, (int)len) : 0;
    if (n < 0 || (size_t)n != decoded_max || decoded_max - pad > max) {
        free(buf);
        return -EINVAL;
    }
    buf[decoded_max - pad] = '\0';
    *out = buf;
    *out_len = decoded_max - pad;
    return 0;
}

/* --- requests --- */

size_t etcd_prefix_end(const char *prefix, size_t prefix_len, char *end)
{
    size_t len = prefix_len;

    memcpy(end, prefix, prefix_len);
    while (len > 0) {
        if ((unsigned char)end[len - 1] < 0xff) {
            end[len - 1] = (char)((unsigned char)end[len - 1] + 1);
            return len;
        }
        len--;
    }
    end[0] = '\0';
    return 1;
}

static int set_bytes(json_t *object, const char *field, const void *data, size_t len)
{
    json_t *value = etcd_b64_string(data, len);

    return value ? json_object_set_new(object, field, value) : -1;
}

static int set_int64(json_t *object, const char *field, int64_t value)
{
    char text[24];

    snprintf(text, sizeof(text), "%" PRId64, value);
    return json_object_set_new(object, field, json_string(text));
}

static json_t *key_object(const char *key, size_t key_len, const char *range_end,
                          size_t range_end_len)
{
    json_t *object;

    if (key_len > ETCD_MAX_KEY || range_end_len > ETCD_MAX_KEY + 1)
        return NULL;
    object = json_object();
    if (!object || set_bytes(object, "key", key, key_len) < 0 ||
        (range_end && set_bytes(object, "range_end", range_end, range_end_len) < 0)) {
        json_decref(object);
        return NULL;
    }
    return object;
}

json_t *etcd_range_request(const char *key, size_t key_len, const char *range_end,
                           size_t range_end_len, int64_t revision, bool serializable)
{
    json_t *request = key_object(key, key_len, range_end, range_end_len);

    if (request &&
        ((revision > 0 && set_int64(request, "revision", revision) < 0) ||
         (serializable && json_object_set_new(request, "serializable", json_true()) < 0))) {
        json_decref(request);
        return NULL;
    }
    return request;
}

json_t *etcd_put_request(const char *key, size_t key_len, const void *value, size_t value_len,
                         int64_t lease)
{
    json_t *request = value_len <= ETCD_MAX_VALUE ? key_object(key, key_len, NULL, 0) : NULL;

    if (request && (set_bytes(request, "value", value, value_len) < 0 ||
                    (lease && set_int64(request, "lease", lease) < 0))) {
        json_decref(request);
        return NULL;
    }
    return request;
}

json_t *etcd_delete_request(const char *key, size_t key_len, const char *range_end,
                            size_t range_end_len)
{
    return key_object(key, key_len, range_end, range_end_len);
}

static json_t *op_list(const struct etcd_op *ops, size_t n)
{
    json_t *list = json_array();

    for (size_t i = 0; list && i < n; i++) {
        json_t *inner = ops[i].type == ETCD_OP_PUT
                            ? etcd_put_request(ops[i].key, ops[i].key_len, ops[i].value,
                                               ops[i].value_len, ops[i].lease)
                            : etcd_delete_request(ops[i].key, ops[i].key_len, NULL, 0);
        json_t *op =
            inner ? json_pack("{s:o}",
                              ops[i].type == ETCD_OP_PUT ? "request_put" : "request_delete_range",
                              inner)
                  : NULL;

        if (!op || json_array_append_new(list, op) < 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

json_t *etcd_txn_request(const struct etcd_compare *compares, size_t n_compares,
                         const struct etcd_op *success, size_t n_success,
                         const struct etcd_op *failure, size_t n_failure)
{
    json_t *list = json_array(), *request;

    for (size_t i = 0; list && i < n_compares; i++) {
        json_t *compare = key_object(compares[i].key, compares[i].key_len, NULL, 0);

        /* EQUAL and MOD are the enums' zero values, which the gateway would leave out too. */
        if (!compare || json_object_set_new(compare, "target", json_string("MOD")) < 0 ||
            json_object_set_new(compare, "result", json_string("EQUAL")) < 0 ||
            set_int64(compare, "mod_revision", compares[i].mod_revision) < 0 ||
            json_array_append_new(list, compare) < 0) {
            json_decref(compare);
            json_decref(list);
            return NULL;
        }
    }
    json_t *on_success = op_list(success, n_success), *on_failure = op_list(failure, n_failure);

    if (!list || !on_success || !on_failure) {
        json_decref(list);
        json_decref(on_success);
        json_decref(on_failure);
        return NULL;
    }
    request =
        json_pack("{s:o, s:o, s:o}", "compare", list, "success", on_success, "failure", on_failure);
    return request;
}

json_t *etcd_watch_request(const char *key, size_t key_len, const char *range_end,
                           size_t range_end_len, int64_t start_revision)
{
    json_t *inner = key_object(key, key_len, range_end, range_end_len);

    if (inner && start_revision > 0 && set_int64(inner, "start_revision", start_revision) < 0) {
        json_decref(inner);
        return NULL;
    }
    return inner ? json_pack("{s:o}", "create_request", inner) : NULL;
}

/* --- readers --- */

/* A 64-bit number as the gateway writes it: a decimal string, or a plain number. Absent: 0. */
static int get_int64(json_t *object, const char *field, int64_t *out)
{
    json_t *value = json_object_get(object, field);
    const char *text;
    char *end;
    long long n;

    *out = 0;
    if (!value)
        return 0;
    if (json_is_integer(value)) {
        *out = (int64_t)json_integer_value(value);
        return 0;
    }
    if (!json_is_string(value))
        return -EINVAL;
    text = json_string_value(value);
    if (!*text || strlen(text) != json_string_length(value))
        return -EINVAL;
    errno = 0;
    n = strtoll(text, &end, 10);
    if (errno || *end)
        return -EINVAL;
    *out = (int64_t)n;
    return 0;
}

/* An unsigned 64-bit id (cluster, member, leader): a string of up to 20 digits. */
static int get_uint64(json_t *object, const char *field, uint64_t *out)
{
    json_t *value = json_object_get(object, field);
    const char *text;
    char *end;
    unsigned long long n;

    *out = 0;
    if (!value)
        return 0;
    if (json_is_integer(value) && json_integer_value(value) >= 0) {
        *out = (uint64_t)json_integer_value(value);
        return 0;
    }
    if (!json_is_string(value))
        return -EINVAL;
    text = json_string_value(value);
    if (!*text || *text == '-' || strlen(text) != json_string_length(value))
        return -EINVAL;
    errno = 0;
    n = strtoull(text, &end, 10);
    if (errno || *end)
        return -EINVAL;
    *out = (uint64_t)n;
    return 0;
}

static bool get_bool(json_t *object, const char *field)
{
    return json_is_true(json_object_get(object, field));
}

static int parse_header(json_t *object, struct etcd_header *out)
{
    json_t *header = json_object_get(object, "header");

    memset(out, 0, sizeof(*out));
    if (!header)
        return 0;
    if (!json_is_object(header) || get_uint64(header, "cluster_id", &out->cluster_id) < 0 ||
        get_uint64(header, "member_id", &out->member_id) < 0 ||
        get_int64(header, "revision", &out->revision) < 0 ||
        get_int64(header, "raft_term", &out->raft_term) < 0 || out->revision < 0)
        return -EINVAL;
    return 0;
}

static void kv_free(struct etcd_kv *kv)
{
    free(kv->key);
    free(kv->value);
    memset(kv, 0, sizeof(*kv));
}

static int parse_kv(json_t *object, struct etcd_kv *out)
{
    json_t *key = json_object_get(object, "key"), *value = json_object_get(object, "value");
    unsigned char *key_bytes = NULL;
    int r;

    memset(out, 0, sizeof(*out));
    if (!json_is_object(object) || !json_is_string(key) || (value && !json_is_string(value)))
        return -EINVAL;
    r = etcd_b64_decode(json_string_value(key), json_string_length(key), ETCD_MAX_KEY, &key_bytes,
                        &out->key_len);
    if (r < 0)
        return r;
    out->key = (char *)key_bytes;
    if (out->key_len == 0 || memchr(out->key, '\0', out->key_len)) {
        kv_free(out);
        return -EINVAL;
    }
    r = value ? etcd_b64_decode(json_string_value(value), json_string_length(value), ETCD_MAX_VALUE,
                                &out->value, &out->value_len)
              : 0;
    if (r == 0 && !out->value && !(out->value = calloc(1, 1)))
        r = -ENOMEM;
    if (r == 0 && (get_int64(object, "create_revision", &out->create_revision) < 0 ||
                   get_int64(object, "mod_revision", &out->mod_revision) < 0 ||
                   get_int64(object, "version", &out->version) < 0 ||
                   get_int64(object, "lease", &out->lease) < 0 || out->mod_revision < 0 ||
                   out->create_revision < 0 || out->version < 0))
        r = -EINVAL;
    if (r < 0)
        kv_free(out);
    return r;
}

/* Reads the text as one JSON object; an error answer gives -EREMOTE (and err_out). */
static int parse_root(const char *text, size_t len, json_t **root, const char *what,
                      struct etcd_error *err_out, char *err, size_t err_len)
{
    json_error_t error;
    json_t *e, *message, *code;

    *root = NULL;
    if (err_out)
        memset(err_out, 0, sizeof(*err_out));
    if (len > ETCD_MAX_MESSAGE) {
        snprintf(err, err_len, "etcd's %s answer exceeds %d bytes", what, ETCD_MAX_MESSAGE);
        return -EFBIG;
    }
    *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
    if (!*root || !json_is_object(*root)) {
        snprintf(err, err_len, "etcd's %s answer is not a JSON object%s%s", what, *root ? "" : ": ",
                 *root ? "" : error.text);
        json_decref(*root);
        *root = NULL;
        return -EINVAL;
    }
    e = json_object_get(*root, "error");
    if (!e)
        return 0;
    /* Streamed: {"error": {...}}; unary: {"error": "...", "code", "message"}. */
    if (json_is_object(e)) {
        message = json_object_get(e, "message");
        code = json_object_get(e, "grpc_code");
    } else {
        message = json_object_get(*root, "message");
        code = json_object_get(*root, "code");
        if (!json_is_string(message))
            message = e;
    }
    if (err_out) {
        err_out->grpc_code = json_is_integer(code) ? (int)json_integer_value(code) : 0;
        snprintf(err_out->message, sizeof(err_out->message), "%s",
                 json_is_string(message) ? json_string_value(message) : "(no message)");
    }
    snprintf(err, err_len, "etcd refused the %s: %s", what,
             json_is_string(message) ? json_string_value(message) : "(no message)");
    json_decref(*root);
    *root = NULL;
    return -EREMOTE;
}

static int bad(char *err, size_t err_len, const char *what, const char *field)
{
    snprintf(err, err_len, "etcd's %s answer: '%s' is missing or malformed", what, field);
    return -EINVAL;
}

static int parse_kv_list(json_t *list, struct etcd_kv **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!list)
        return 0;
    if (!json_is_array(list) || json_array_size(list) > ETCD_MAX_ITEMS)
        return -EINVAL;
    if (json_array_size(list) == 0)
        return 0;
    *out = calloc(json_array_size(list), sizeof(**out));
    if (!*out)
        return -ENOMEM;
    for (size_t i = 0; i < json_array_size(list); i++) {
        int r = parse_kv(json_array_get(list, i), &(*out)[i]);

        if (r < 0)
            return r; /* the caller frees the n read so far */
        (*n)++;
    }
    return 0;
}

int etcd_parse_range(const char *text, size_t len, struct etcd_range *out,
                     struct etcd_error *err_out, char *err, size_t err_len)
{
    json_t *root;
    int r;

    memset(out, 0, sizeof(*out));
    r = parse_root(text, len, &root, "range", err_out, err, err_len);
    if (r < 0)
        return r;
    if (parse_header(root, &out->header) < 0)
        r = bad(err, err_len, "range", "header");
    else if (get_int64(root, "count", &out->count) < 0 || out->count < 0)
        r = bad(err, err_len, "range", "count");
    else if ((r = parse_kv_list(json_object_get(root, "kvs"), &out->kvs, &out->n_kvs)) < 0)
        r = r == -ENOMEM ? r : bad(err, err_len, "range", "kvs");
    out->more = get_bool(root, "more");
    json_decref(root);
    if (r < 0)
        etcd_range_free(out);
    return r;
}

void etcd_range_free(struct etcd_range *range)
{
    for (size_t i = 0; i < range->n_kvs; i++)
        kv_free(&range->kvs[i]);
    free(range->kvs);
    memset(range, 0, sizeof(*range));
}

int etcd_parse_write(const char *text, size_t len, struct etcd_header *out,
                     struct etcd_error *err_out, char *err, size_t err_len)
{
    json_t *root;
    int r = parse_root(text, len, &root, "write", err_out, err, err_len);

    memset(out, 0, sizeof(*out));
    if (r < 0)
        return r;
    if (parse_header(root, out) < 0)
        r = bad(err, err_len, "write", "header");
    json_decref(root);
    return r;
}

int etcd_parse_txn(const char *text, size_t len, struct etcd_header *out, bool *succeeded,
                   struct etcd_error *err_out, char *err, size_t err_len)
{
    json_t *root;
    int r = parse_root(text, len, &root, "transaction", err_out, err, err_len);

    memset(out, 0, sizeof(*out));
    *succeeded = false;
    if (r < 0)
        return r;
    if (parse_header(root, out) < 0)
        r = bad(err, err_len, "transaction", "header");
    else /* a malformed answer never says the compare held */
        *succeeded = get_bool(root, "succeeded");
    json_decref(root);
    return r;
}

int etcd_parse_lease(const char *text, size_t len, int64_t *id, int64_t *ttl,
                     struct etcd_error *err_out, char *err, size_t err_len)
{
    json_t *root, *body;
    int r = parse_root(text, len, &root, "lease", err_out, err, err_len);

    *id = *ttl = 0;
    if (r < 0)
        return r;
    /* A keepalive stream wraps each answer in "result". */
    body = json_object_get(root, "result") ? json_object_get(root, "result") : root;
    if (!json_is_object(body) || get_int64(body, "ID", id) < 0 || *id <= 0)
        r = bad(err, err_len, "lease", "ID");
    else if (get_int64(body, "TTL", ttl) < 0)
        r = bad(err, err_len, "lease", "TTL");
    json_decref(root);
    return r;
}

int etcd_parse_status(const char *text, size_t len, struct etcd_status *out,
                      struct etcd_error *err_out, char *err, size_t err_len)
{
    json_t *root, *version;
    int r = parse_root(text, len, &root, "status", err_out, err, err_len);

    memset(out, 0, sizeof(*out));
    if (r < 0)
        return r;
    version = json_object_get(root, "version");
    if (parse_header(root, &out->header) < 0)
        r = bad(err, err_len, "status", "header");
    else if (get_uint64(root, "leader", &out->leader) < 0)
        r = bad(err, err_len, "status", "leader");
    else if (get_int64(root, "dbSize", &out->db_size) < 0 ||
             get_int64(root, "raftIndex", &out->raft_index) < 0)
        r = bad(err, err_len, "status", "dbSize");
    else if (version &&
             (!json_is_string(version) || json_string_length(version) >= sizeof(out->version)))
        r = bad(err, err_len, "status", "version");
    else if (version)
        memcpy(out->version, json_string_value(version), json_string_length(version) + 1);
    json_decref(root);
    return r;
}

/* The first string of an array field into buf; "" when the array is absent or empty. */
static int first_url(json_t *object, const char *field, char *buf, size_t len)
{
    json_t *array = json_object_get(object, field), *first;

    buf[0] = '\0';
    if (!array || json_array_size(array) == 0)
        return json_is_array(array) || !array ? 0 : -EINVAL;
    first = json_array_get(array, 0);
    if (!json_is_string(first) || json_string_length(first) >= len ||
        strlen(json_string_value(first)) != json_string_length(first))
        return -EINVAL;
    memcpy(buf, json_string_value(first), json_string_length(first) + 1);
    return 0;
}

static int parse_member(json_t *object, struct etcd_member *out)
{
    json_t *name = json_object_get(object, "name"), *learner = json_object_get(object, "isLearner");

    memset(out, 0, sizeof(*out));
    if (!json_is_object(object) || get_uint64(object, "ID", &out->id) < 0 || out->id == 0 ||
        (name && (!json_is_string(name) || json_string_length(name) >= sizeof(out->name) ||
                  strlen(json_string_value(name)) != json_string_length(name))) ||
        (learner && !json_is_boolean(learner)) ||
        first_url(object, "peerURLs", out->peer_url, sizeof(out->peer_url)) < 0 ||
        first_url(object, "clientURLs", out->client_url, sizeof(out->client_url)) < 0)
        return -EINVAL;
    if (name)
        memcpy(out->name, json_string_value(name), json_string_length(name) + 1);
    out->learner = json_is_true(learner);
    return 0;
}

int etcd_parse_members(const char *text, size_t len, struct etcd_members *out,
                       struct etcd_error *err_out, char *err, size_t err_len)
{
    json_t *root, *members, *added, *item;
    size_t i;
    int r = parse_root(text, len, &root, "member list", err_out, err, err_len);

    memset(out, 0, sizeof(*out));
    if (r < 0)
        return r;
    members = json_object_get(root, "members");
    added = json_object_get(root, "member");
    if (parse_header(root, &out->header) < 0)
        r = bad(err, err_len, "member list", "header");
    else if (members && (!json_is_array(members) || json_array_size(members) > ETCD_MAX_MEMBERS))
        r = bad(err, err_len, "member list", "members");
    else if (added && (!json_is_object(added) || get_uint64(added, "ID", &out->added_id) < 0 ||
                       out->added_id == 0))
        r = bad(err, err_len, "member list", "member");
    json_array_foreach(r == 0 ? members : NULL, i, item)
    {
        if (parse_member(item, &out->members[out->n]) < 0) {
            r = bad(err, err_len, "member list", "members");
            break;
        }
        out->n++;
    }
    json_decref(root);
    return r;
}

size_t etcd_members_voters(const struct etcd_members *members,
                           const struct etcd_member **ret_learner)
{
    size_t voters = 0;

    if (ret_learner)
        *ret_learner = NULL;
    for (size_t i = 0; i < members->n; i++) {
        voters += !members->members[i].learner;
        if (members->members[i].learner && ret_learner)
            *ret_learner = &members->members[i];
    }
    return voters;
}

const struct etcd_member *etcd_member_by_id(const struct etcd_members *members, uint64_t id)
{
    for (size_t i = 0; i < members->n; i++)
        if (members->members[i].id == id)
            return &members->members[i];
    return NULL;
}

json_t *etcd_member_id_request(uint64_t id)
{
    char text[24];

    snprintf(text, sizeof(text), "%" PRIu64, id);
    return json_pack("{s:s}", "ID", text);
}

static int parse_event(json_t *object, struct etcd_event *out)
{
    json_t *type = json_object_get(object, "type");

    memset(out, 0, sizeof(*out));
    if (!json_is_object(object))
        return -EINVAL;
    /* PUT is the enum's zero value: the gateway leaves it out. */
    if (!type || (json_is_string(type) && strcmp(json_string_value(type), "PUT") == 0))
        out->type = ETCD_EVENT_PUT;
    else if (json_is_string(type) && strcmp(json_string_value(type), "DELETE") == 0)
        out->type = ETCD_EVENT_DELETE;
    else
        return -EINVAL;
    return parse_kv(json_object_get(object, "kv"), &out->kv);
}

int etcd_parse_watch(const char *text, size_t len, struct etcd_watch_message *out,
                     struct etcd_error *err_out, char *err, size_t err_len)
{
    json_t *root, *result, *events, *reason;
    int r = parse_root(text, len, &root, "watch", err_out, err, err_len);

    memset(out, 0, sizeof(*out));
    if (r < 0)
        return r;
    result = json_object_get(root, "result");
    events = json_object_get(result, "events");
    reason = json_object_get(result, "cancel_reason");
    if (!json_is_object(result)) {
        r = bad(err, err_len, "watch", "result");
    } else if (parse_header(result, &out->header) < 0) {
        r = bad(err, err_len, "watch", "header");
    } else if (get_int64(result, "watch_id", &out->watch_id) < 0 ||
               get_int64(result, "compact_revision", &out->compact_revision) < 0 ||
               out->compact_revision < 0) {
        r = bad(err, err_len, "watch", "compact_revision");
    } else if (reason && !json_is_string(reason)) {
        r = bad(err, err_len, "watch", "cancel_reason");
    } else if (events && (!json_is_array(events) || json_array_size(events) > ETCD_MAX_ITEMS)) {
        r = bad(err, err_len, "watch", "events");
    } else if (events && json_array_size(events) &&
               !(out->events = calloc(json_array_size(events), sizeof(*out->events)))) {
        r = -ENOMEM;
    }
    for (size_t i = 0; r == 0 && events && i < json_array_size(events); i++) {
        if (parse_event(json_array_get(events, i), &out->events[i]) < 0)
            r = bad(err, err_len, "watch", "events");
        else
            out->n_events++;
    }
    if (r == 0) {
        out->created = get_bool(result, "created");
        out->canceled = get_bool(result, "canceled");
        if (reason)
            snprintf(out->cancel_reason, sizeof(out->cancel_reason), "%s",
                     json_string_value(reason));
    }
    json_decref(root);
    if (r < 0)
        etcd_watch_message_free(out);
    return r;
}

void etcd_watch_message_free(struct etcd_watch_message *message)
{
    for (size_t i = 0; i < message->n_events; i++)
        kv_free(&message->events[i].kv);
    free(message->events);
    memset(message, 0, sizeof(*message));
}
