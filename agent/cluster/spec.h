/*
 * What a cluster on etcd keeps under /certvisor/<cluster>/ (docs/design.md, "The cluster's
 * store"), as values: the desired state (spec/) that every node applies, the cluster's
 * identity (meta) and what each node reports (status/<node>). Pure: the encoders build the
 * JSON text a node writes, the decoders check what a node reads, which is outside input
 * like any other (tests/fuzz/fuzz_spec.c).
 *
 *   meta                                   {"schema", "uid", "check", "initialised_by", "at"}
 *   spec/ca/current                        the cluster CA (certificate; its key sealed)
 *   spec/certs/<name>/current              a certificate every node serves
 *   spec/nodecerts/<node>/<name>/current   a node's own (the two internode certificates)
 *   spec/trust/<list>/current              a trust list's bundle (replication peers)
 *   spec/policy                            the runtime TLS policy: {"<setting>": "<value>"}
 *   status/<node>                          {"node", "revision", "result", "reason", "at",
 *                                           "fingerprints": {"<name>": "<sha256>"}}
 *   nodes/<node>                           a node that joined (issue 17): {"name", "address",
 *                                           "client_port", "peer_port", "member_id",
 *                                           "admitted_by", "at"}
 *   join/<id>                              a join token, on a lease that is its expiry:
 *                                           {"id", "secret_sha256", "created", "expires",
 *                                            "created_by", "description"} (never the secret)
 *
 * A certificate's value: {"name", "generation", "origin", "fingerprint", "published_by",
 * "cert": PEM, "key": base64 of the key sealed for this very etcd key (sealed.h)} or, once an
 * optional certificate was deleted, {"name", "removed": true, ...}.
 */
#ifndef CERTVISOR_CLUSTER_SPEC_H
#define CERTVISOR_CLUSTER_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPEC_SCHEMA 1
/* A certificate with its chain is a few kilobytes; etcd refuses values over 1.5 MiB. */
#define SPEC_MAX_CERT (512 * 1024)
#define SPEC_MAX_NAME 64
#define SPEC_MAX_FINGERPRINT 96
#define SPEC_MAX_REASON 512
#define SPEC_MAX_POLICY_SETTINGS 48
#define SPEC_MAX_POLICY_VALUE 1024

/* Where a cluster's keys live: "/certvisor/<cluster>/" into buf. Returns its length, or -1
 * when it does not fit in len. */
int spec_prefix(char *buf, size_t len, const char *cluster);

/* The etcd key of a part of the cluster's state: "<prefix><what>", NUL-terminated. Returns its
 * length, or -1 when it does not fit in len (or a name holds '/'). node NULL: cluster-wide. */
int spec_key_cert(char *buf, size_t len, const char *prefix, const char *node, const char *name);
int spec_key_status(char *buf, size_t len, const char *prefix, const char *node);
int spec_key_node(char *buf, size_t len, const char *prefix, const char *node);
/* spec/trust/<list>/current: a trust list's bundle, as a certificate's value without a key
 * ("cert" the whole bundle; "removed" once emptied). */
int spec_key_trust(char *buf, size_t len, const char *prefix, const char *list);
/* The list a spec/trust/<list>/current key names (into list, len bytes), or -1 when key is not
 * one. */
int spec_trust_list_of(const char *key, const char *prefix, char *list, size_t len);

struct spec_cert {
    char name[SPEC_MAX_NAME];
    bool removed;
    unsigned generation;
    char origin[32];
    char fingerprint[SPEC_MAX_FINGERPRINT];
    char published_by[SPEC_MAX_NAME];
    char *cert_pem; /* NUL-terminated; NULL when removed */
    size_t cert_len;
    unsigned char *sealed_key; /* NULL: a CA bundle, which has no key */
    size_t sealed_len;
};

/* The JSON text of a certificate's value (malloc'd), or NULL when out of memory. */
char *spec_cert_encode(const struct spec_cert *cert);

/* Reads a certificate's value (at most SPEC_MAX_CERT bytes of PEM). 0, or -EINVAL with err
 * saying what is wrong, -ENOMEM. spec_cert_clear() frees what it filled, either way. */
int spec_cert_decode(const char *text, size_t len, struct spec_cert *out, char *err,
                     size_t err_len);
void spec_cert_clear(struct spec_cert *cert);

struct spec_meta {
    int schema;
    char uid[40];
    char check[80]; /* hex of sealed_key_check_value() */
    char initialised_by[SPEC_MAX_NAME];
    int64_t at;
};

char *spec_meta_encode(const struct spec_meta *meta);
int spec_meta_decode(const char *text, size_t len, struct spec_meta *out, char *err,
                     size_t err_len);

/* The runtime policy: at most SPEC_MAX_POLICY_SETTINGS names and values. */
struct spec_policy {
    char names[SPEC_MAX_POLICY_SETTINGS][SPEC_MAX_NAME];
    char values[SPEC_MAX_POLICY_SETTINGS][SPEC_MAX_POLICY_VALUE];
    size_t n;
};

char *spec_policy_encode(const struct spec_policy *policy);
int spec_policy_decode(const char *text, size_t len, struct spec_policy *out, char *err,
                       size_t err_len);

enum spec_result { SPEC_APPLIED, SPEC_FAILED };

struct spec_status {
    char node[SPEC_MAX_NAME];
    int64_t revision; /* the store's revision this outcome is for */
    enum spec_result result;
    char reason[SPEC_MAX_REASON];
    int64_t at; /* wall clock, seconds */
};

/* fingerprints: a JSON object text of name -> fingerprint, or NULL. */
char *spec_status_encode(const struct spec_status *status, const char *fingerprints_json);
int spec_status_decode(const char *text, size_t len, struct spec_status *out, char *err,
                       size_t err_len);

/* --- join tokens (join_token.h) --- */

#define SPEC_JOIN_ID_LEN 6
#define SPEC_MAX_DESCRIPTION 256

/* join/<id>; -1 when it does not fit or id is not a token id. */
int spec_key_join(char *buf, size_t len, const char *prefix, const char *id);

struct spec_join {
    char id[SPEC_JOIN_ID_LEN + 1];
    char secret_sha256[65];   /* lowercase hex of SHA-256 of the secret */
    int64_t created, expires; /* wall clock, seconds */
    char created_by[SPEC_MAX_NAME];
    char description[SPEC_MAX_DESCRIPTION];
};

char *spec_join_encode(const struct spec_join *join);
int spec_join_decode(const char *text, size_t len, struct spec_join *out, char *err,
                     size_t err_len);

#endif
