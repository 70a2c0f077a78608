/* What a joiner and its peer say to each other, and the joiner's membership file
 * (join_wire.h). Every field read is checked. */
#include "join_wire.h"

#include "json_fields.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const join_cert_names[JOIN_N_CERTS] = {"ccs_internode_encryption",
                                                   "data_internode_encryption"};

bool join_name_valid(const char *name)
{
    size_t len = name ? strlen(name) : 0;

    if (len == 0 || len >= JOIN_NAME_MAX)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
}

static bool ip_address(const char *text)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, text, buf) == 1 || inet_pton(AF_INET6, text, buf) == 1;
}

/* --- writing --- */

static json_t *members_json(const struct join_member *members, size_t n)
{
    json_t *array = json_array();

    for (size_t i = 0; array && i < n; i++)
        if (json_array_append_new(array, json_pack("{s:s, s:s, s:i, s:i}", "name", members[i].name,
                                                   "address", members[i].address, "client_port",
                                                   members[i].client_port, "peer_port",
                                                   members[i].peer_port)) < 0) {
            json_decref(array);
            return NULL;
        }
    return array;
}

static json_t *certs_json(char *const *pems)
{
    json_t *object = json_object();

    for (size_t i = 0; object && i < JOIN_N_CERTS; i++)
        if (json_object_set_new(object, join_cert_names[i], json_string(pems[i] ? pems[i] : "")) <
            0) {
            json_decref(object);
            return NULL;
        }
    return object;
}

char *join_request_encode(const struct join_request *request)
{
    return json_fields_dump(
        json_pack("{s:s*, s:s, s:i, s:i, s:o*}", "token", request->token[0] ? request->token : NULL,
                  "address", request->address, "client_port", request->client_port, "peer_port",
                  request->peer_port, "csrs", certs_json(request->csr)));
}

json_t *join_answer_object(const struct join_answer *answer)
{
    char id[24], key[2 * JOIN_DATA_KEY_BYTES];
    json_t *object;

    snprintf(id, sizeof(id), "%" PRIu64, answer->member_id);
    EVP_EncodeBlock((unsigned char *)key, answer->data_key, JOIN_DATA_KEY_BYTES);
    object = json_pack("{s:s, s:s, s:s, s:s, s:o*, s:o*, s:s, s:s}", "cluster", answer->cluster,
                       "uid", answer->uid, "node", answer->node, "member_id", id, "members",
                       members_json(answer->members, answer->n_members), "certificates",
                       certs_json(answer->cert), "ca", answer->ca_value ? answer->ca_value : "",
                       "data_key", key);
    OPENSSL_cleanse(key, sizeof(key));
    return object;
}

char *join_answer_encode(const struct join_answer *answer)
{
    return json_fields_dump(join_answer_object(answer));
}

char *join_membership_encode(const struct join_membership *membership)
{
    char id[24];

    snprintf(id, sizeof(id), "%" PRIu64, membership->member_id);
    return json_fields_dump(
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:o*}", "cluster", membership->cluster, "uid",
                  membership->uid, "node", membership->node, "peer", membership->peer, "member_id",
                  id, "members", members_json(membership->members, membership->n_members)));
}

/* --- reading --- */

static int read_port(json_t *root, const char *field, int *out, const char *what, char *err,
                     size_t err_len)
{
    int64_t value;
    int r = json_fields_integer(root, field, true, &value, what, err, err_len);

    if (r == 0 && (value < 1 || value > 65535)) {
        snprintf(err, err_len, "%s: '%s' %" PRId64 " is not a port (1 to 65535)", what, field,
                 value);
        r = -EINVAL;
    }
    *out = r == 0 ? (int)value : 0;
    return r;
}

/* A required string field that check() takes, else -EINVAL with "'<field>' is not <form>". */
static int read_checked(json_t *root, const char *field, char *buf, size_t len,
                        bool (*check)(const char *), const char *form, const char *what, char *err,
                        size_t err_len)
{
    int r = json_fields_string(root, field, true, buf, len, what, err, err_len);

    if (r == 0 && !check(buf)) {
        snprintf(err, err_len, "%s: '%s' is not %s", what, field, form);
        r = -EINVAL;
    }
    return r;
}

static int read_name(json_t *root, const char *field, char *buf, size_t len, const char *what,
                     char *err, size_t err_len)
{
    return read_checked(root, field, buf, len, join_name_valid,
                        "a name (1 to 63 letters, digits, '-', '_', '.')", what, err, err_len);
}

static int read_address(json_t *root, const char *field, char *buf, size_t len, const char *what,
                        char *err, size_t err_len)
{
    return read_checked(root, field, buf, len, ip_address, "an IP address", what, err, err_len);
}

static int read_member_id(json_t *root, uint64_t *out, const char *what, char *err, size_t err_len)
{
    char text[24], *end = NULL;
    int r = json_fields_string(root, "member_id", true, text, sizeof(text), what, err, err_len);

    *out = 0;
    if (r < 0)
        return r;
    errno = 0;
    *out = strtoull(text, &end, 10);
    if (errno || *end || text[0] < '0' || text[0] > '9' || *out == 0) {
        snprintf(err, err_len, "%s: 'member_id' is not an etcd member id (a decimal number)", what);
        return -EINVAL;
    }
    return 0;
}

static int read_members(json_t *root, const char *node, struct join_member *members, size_t *ret_n,
                        const char *what, char *err, size_t err_len)
{
    json_t *array = json_object_get(root, "members"), *item;
    bool node_seen = false;
    size_t i;
    int r = 0;

    *ret_n = 0;
    if (!json_is_array(array) || json_array_size(array) == 0 ||
        json_array_size(array) > JOIN_MAX_MEMBERS) {
        snprintf(err, err_len, "%s: 'members' is not an array of 1 to %d members", what,
                 JOIN_MAX_MEMBERS);
        return -EINVAL;
    }
    json_array_foreach(array, i, item)
    {
        struct join_member *m = &members[i];
        char where[160];

        snprintf(where, sizeof(where), "%s: member %zu", what, i + 1);
        if (!json_is_object(item)) {
            snprintf(err, err_len, "%s: not an object", where);
            return -EINVAL;
        }
        r = read_name(item, "name", m->name, sizeof(m->name), where, err, err_len);
        if (r == 0)
            r = read_address(item, "address", m->address, sizeof(m->address), where, err, err_len);
        if (r == 0)
            r = read_port(item, "client_port", &m->client_port, where, err, err_len);
        if (r == 0)
            r = read_port(item, "peer_port", &m->peer_port, where, err, err_len);
        if (r < 0)
            return r;
        for (size_t j = 0; j < i; j++)
            if (strcmp(members[j].name, m->name) == 0) {
                snprintf(err, err_len, "%s: '%s' is named twice", where, m->name);
                return -EINVAL;
            }
        node_seen = node_seen || strcmp(m->name, node) == 0;
        (*ret_n)++;
    }
    if (!node_seen) {
        snprintf(err, err_len, "%s: the node '%s' is not among the members", what, node);
        return -EINVAL;
    }
    return 0;
}

/* The two PEM texts of object field (each at most JOIN_MAX_PEM bytes, holding a PEM block). */
static int read_pems(json_t *root, const char *field, char **out, const char *what, char *err,
                     size_t err_len)
{
    json_t *object = json_object_get(root, field);

    if (!json_is_object(object) || json_object_size(object) != JOIN_N_CERTS) {
        snprintf(err, err_len, "%s: '%s' is not an object of %s and %s", what, field,
                 join_cert_names[0], join_cert_names[1]);
        return -EINVAL;
    }
    for (size_t i = 0; i < JOIN_N_CERTS; i++) {
        json_t *value = json_object_get(object, join_cert_names[i]);
        size_t len = json_string_length(value);

        if (!json_is_string(value) || len == 0 || len > JOIN_MAX_PEM ||
            strlen(json_string_value(value)) != len ||
            !strstr(json_string_value(value), "-----BEGIN ")) {
            snprintf(err, err_len, "%s: '%s.%s' is not one PEM text of at most %d bytes", what,
                     field, join_cert_names[i], JOIN_MAX_PEM);
            return -EINVAL;
        }
        if (!(out[i] = strdup(json_string_value(value)))) {
            snprintf(err, err_len, "out of memory");
            return -ENOMEM;
        }
    }
    return 0;
}

int join_request_decode(const char *text, size_t len, struct join_request *out, char *err,
                        size_t err_len)
{
    const char *what = "the join request";
    json_t *root;
    int r;

    memset(out, 0, sizeof(*out));
    root = json_fields_object(text, len, JOIN_MAX_REQUEST, what, err, err_len);
    if (!root)
        return -EINVAL;
    r = json_fields_string(root, "token", false, out->token, sizeof(out->token), what, err,
                           err_len);
    if (r < 0)
        snprintf(err, err_len, "%s: 'token' is not <6 characters>.<16 characters>",
                 what); /* never echoed: it may be a mistyped secret */
    if (r == 0)
        r = read_address(root, "address", out->address, sizeof(out->address), what, err, err_len);
    if (r == 0)
        r = read_port(root, "client_port", &out->client_port, what, err, err_len);
    if (r == 0)
        r = read_port(root, "peer_port", &out->peer_port, what, err, err_len);
    if (r == 0 && out->client_port == out->peer_port) {
        snprintf(err, err_len, "%s: 'client_port' and 'peer_port' must differ", what);
        r = -EINVAL;
    }
    if (r == 0)
        r = read_pems(root, "csrs", out->csr, what, err, err_len);
    json_decref(root);
    return r;
}

void join_request_clear(struct join_request *request)
{
    for (size_t i = 0; i < JOIN_N_CERTS; i++)
        free(request->csr[i]);
    OPENSSL_cleanse(request, sizeof(*request));
}

static int read_data_key(json_t *root, unsigned char *key, const char *what, char *err,
                         size_t err_len)
{
    char text[2 * JOIN_DATA_KEY_BYTES];
    unsigned char decoded[JOIN_DATA_KEY_BYTES + 3];
    int r = json_fields_string(root, "data_key", true, text, sizeof(text), what, err, err_len);

    /* 32 bytes are 44 base64 characters, one '=' of padding: 33 decoded, the last one 0. */
    if (r == 0 && (strlen(text) != 44 || text[43] != '=' || text[42] == '=' ||
                   EVP_DecodeBlock(decoded, (const unsigned char *)text, 44) != 33)) {
        snprintf(err, err_len, "%s: 'data_key' is not the base64 of %d bytes", what,
                 JOIN_DATA_KEY_BYTES);
        r = -EINVAL;
    }
    if (r == 0)
        memcpy(key, decoded, JOIN_DATA_KEY_BYTES);
    OPENSSL_cleanse(text, sizeof(text));
    OPENSSL_cleanse(decoded, sizeof(decoded));
    return r;
}

/* What the answer and the membership file both start with: the cluster, the node, its etcd
 * member and the members. */
static int read_identity(json_t *root, char *cluster, char *uid, char *node, uint64_t *member_id,
                         struct join_member *members, size_t *n_members, const char *what,
                         char *err, size_t err_len)
{
    int r = read_name(root, "cluster", cluster, JOIN_NAME_MAX, what, err, err_len);

    if (r == 0)
        r = json_fields_string(root, "uid", true, uid, 40, what, err, err_len);
    if (r == 0)
        r = read_name(root, "node", node, JOIN_NAME_MAX, what, err, err_len);
    if (r == 0)
        r = read_member_id(root, member_id, what, err, err_len);
    if (r == 0)
        r = read_members(root, node, members, n_members, what, err, err_len);
    return r;
}

int join_answer_decode(const char *text, size_t len, struct join_answer *out, char *err,
                       size_t err_len)
{
    const char *what = "the peer's join answer";
    json_t *root, *ca;
    int r;

    memset(out, 0, sizeof(*out));
    root = json_fields_object(text, len, JOIN_MAX_ANSWER, what, err, err_len);
    if (!root)
        return -EINVAL;
    r = read_identity(root, out->cluster, out->uid, out->node, &out->member_id, out->members,
                      &out->n_members, what, err, err_len);
    if (r == 0)
        r = read_pems(root, "certificates", out->cert, what, err, err_len);
    ca = json_object_get(root, "ca");
    if (r == 0 && (!json_is_string(ca) || json_string_length(ca) == 0 ||
                   json_string_length(ca) > JOIN_MAX_CA_VALUE ||
                   strlen(json_string_value(ca)) != json_string_length(ca))) {
        snprintf(err, err_len,
                 "%s: 'ca' is not the cluster CA's value (a text of at most %d bytes)", what,
                 JOIN_MAX_CA_VALUE);
        r = -EINVAL;
    }
    if (r == 0 && !(out->ca_value = strdup(json_string_value(ca)))) {
        snprintf(err, err_len, "out of memory");
        r = -ENOMEM;
    }
    if (r == 0)
        r = read_data_key(root, out->data_key, what, err, err_len);
    json_decref(root);
    return r;
}

void join_answer_clear(struct join_answer *answer)
{
    for (size_t i = 0; i < JOIN_N_CERTS; i++)
        free(answer->cert[i]);
    free(answer->ca_value);
    OPENSSL_cleanse(answer, sizeof(*answer));
}

int join_membership_decode(const char *text, size_t len, struct join_membership *out, char *err,
                           size_t err_len)
{
    const char *what = "the membership file";
    json_t *root;
    int r;

    memset(out, 0, sizeof(*out));
    root = json_fields_object(text, len, 16 * 1024, what, err, err_len);
    if (!root)
        return -EINVAL;
    r = read_identity(root, out->cluster, out->uid, out->node, &out->member_id, out->members,
                      &out->n_members, what, err, err_len);
    if (r == 0)
        r = json_fields_string(root, "peer", false, out->peer, sizeof(out->peer), what, err,
                               err_len);
    json_decref(root);
    return r;
}

char *join_ca_answer_pem(const char *text, size_t len)
{
    char err[256];
    json_t *root =
        json_fields_object(text, len, 2 * JOIN_MAX_PEM, "the CA answer", err, sizeof(err));
    json_t *pem = json_object_get(root, "pem");
    char *out = NULL;

    if (json_is_string(pem) && json_string_length(pem) > 0 &&
        json_string_length(pem) <= JOIN_MAX_PEM &&
        strlen(json_string_value(pem)) == json_string_length(pem))
        out = strdup(json_string_value(pem));
    json_decref(root);
    return out;
}

size_t join_node_addresses(const char *address, const char *out[2])
{
    out[0] = address;
    out[1] = "127.0.0.1";
    return strcmp(address, out[1]) == 0 ? 1 : 2;
}
