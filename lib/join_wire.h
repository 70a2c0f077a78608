/*
 * What a joining node and the node it joins through say to each other (issue 17), and what the
 * joiner keeps of it (state_dir/membership.json). Pure: the encoders build JSON text, the
 * decoders check every field of what came from the other side, which is outside input
 * (tests/fuzz/fuzz_join_wire.c).
 *
 * The joiner POSTs a request to the peer's REST API (/v1/join/admit), over TLS verified against
 * the cluster CA it pinned by its hash:
 *   {"token": "<id>.<secret>", "address": "<ip>", "client_port", "peer_port",
 *    "csrs": {"ccs_internode_encryption": PEM, "data_internode_encryption": PEM}}
 * and the peer answers, once the node is registered and its etcd learner added:
 *   {"cluster", "uid", "node", "member_id": "<decimal>", "members": [{"name", "address",
 *    "client_port", "peer_port"}], "certificates": {<the two names>: PEM},
 *    "ca": <spec/ca/current's value, as the store holds it>, "data_key": base64}
 * The joiner's membership file: {"cluster", "uid", "node", "peer", "member_id", "members"}.
 */
#ifndef CERTVISOR_CLUSTER_JOIN_WIRE_H
#define CERTVISOR_CLUSTER_JOIN_WIRE_H

#include <stdbool.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define JOIN_MAX_PEM (16 * 1024)      /* a CSR, or a certificate the peer issued */
#define JOIN_MAX_CA_VALUE (64 * 1024) /* the CA's value in the store: its PEM, sealed key */
#define JOIN_MAX_REQUEST (64 * 1024)  /* what the REST API takes for /v1/join/admit */
#define JOIN_MAX_ANSWER (160 * 1024)  /* what the joiner reads back */
#define JOIN_MAX_MEMBERS 7            /* etcd's voters (conf_cluster.h) */
#define JOIN_NAME_MAX 64              /* a node's or a cluster's name, with its NUL */
#define JOIN_ADDRESS_MAX 48           /* an IPv6 address's text, with its NUL */
#define JOIN_PEER_MAX 300             /* "address:port" */
#define JOIN_DATA_KEY_BYTES 32        /* SEALED_KEY_BYTES */

/* The two certificates a node has of its own, issued by the peer from the joiner's CSRs. */
enum join_cert { JOIN_CERT_CCS, JOIN_CERT_DATA, JOIN_N_CERTS };
extern const char *const join_cert_names[JOIN_N_CERTS];

struct join_member {
    char name[JOIN_NAME_MAX];
    char address[JOIN_ADDRESS_MAX]; /* an IP address, never a name */
    int client_port;
    int peer_port;
};

struct join_request {
    char token[24]; /* "<id>.<secret>" (join_token.h checks its form); "" when an
                     * administrator's name and password (HTTP Basic) admit the node instead */
    char address[JOIN_ADDRESS_MAX];
    int client_port;
    int peer_port;
    char *csr[JOIN_N_CERTS]; /* PEM, NUL-terminated */
};

struct join_answer {
    char cluster[JOIN_NAME_MAX];
    char uid[40];
    char node[JOIN_NAME_MAX];
    uint64_t member_id; /* the joiner's etcd member, added as a learner */
    struct join_member members[JOIN_MAX_MEMBERS];
    size_t n_members; /* the joiner among them */
    char *cert[JOIN_N_CERTS];
    char *ca_value; /* JSON text of spec/ca/current (spec.h) */
    unsigned char data_key[JOIN_DATA_KEY_BYTES];
};

struct join_membership {
    char cluster[JOIN_NAME_MAX];
    char uid[40];
    char node[JOIN_NAME_MAX];
    char peer[JOIN_PEER_MAX]; /* the node it joined through */
    uint64_t member_id;
    struct join_member members[JOIN_MAX_MEMBERS];
    size_t n_members;
};

/* The answer as a JSON object (what the agent hands the REST API), or NULL when out of
 * memory. */
json_t *join_answer_object(const struct join_answer *answer);

/* The JSON texts (malloc'd), or NULL when out of memory. */
char *join_request_encode(const struct join_request *request);
char *join_answer_encode(const struct join_answer *answer);
char *join_membership_encode(const struct join_membership *membership);

/*
 * The readers: 0, or -EINVAL with err naming the field and what is wrong with it. Names are
 * 1 to 63 letters, digits, '-', '_' or '.'; addresses are IP addresses; ports 1 to 65535; the
 * node is one of the members, each named once. The _clear functions free what a decoder
 * filled (either way) and wipe the data key.
 */
int join_request_decode(const char *text, size_t len, struct join_request *out, char *err,
                        size_t err_len);
void join_request_clear(struct join_request *request);
int join_answer_decode(const char *text, size_t len, struct join_answer *out, char *err,
                       size_t err_len);
void join_answer_clear(struct join_answer *answer);
int join_membership_decode(const char *text, size_t len, struct join_membership *out, char *err,
                           size_t err_len);

/* The PEM of GET /v1/join/ca's answer {"pem": ...} (malloc'd), or NULL when it is not one of at
 * most JOIN_MAX_PEM bytes. Nothing in it is trusted yet: its hash decides. */
char *join_ca_answer_pem(const char *text, size_t len);

/* The IP addresses a node's own certificates name: its address, and the loopback its own
 * clients use, each once. Returns how many were written to out (1 or 2). */
size_t join_node_addresses(const char *address, const char *out[2]);

/* Whether name is a node's or a cluster's name as above. */
bool join_name_valid(const char *name);

#endif
