/*
 * etcd's JSON API (the gRPC gateway of etcd 3.4, POST /v3/...): the requests the agent sends
 * and the readers of what etcd answers. Pure (no I/O), so that every reader can be fuzzed:
 * an etcd endpoint is outside input like any other.
 *
 * The gateway's conventions: keys and values are base64; 64-bit numbers are strings (a
 * plain number is taken too); a field that is false, zero or empty is left out (a txn
 * without "succeeded" failed its compare). A unary error is {"error", "code", "message"}; a
 * streamed one (watch, keepalive) is {"error": {"grpc_code", "http_code", "message"}}.
 */
#ifndef CERTVISOR_ETCD_JSON_H
#define CERTVISOR_ETCD_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One answer (or one message of a stream) larger than this is refused, whatever it holds. */
#define ETCD_MAX_MESSAGE (8 * 1024 * 1024)
/* A key longer than this is refused: the agent's own keys are far shorter. */
#define ETCD_MAX_KEY 1024
/* etcd's own default request limit (--max-request-bytes, 1.5 MiB) bounds a value. */
#define ETCD_MAX_VALUE (1536 * 1024)
/* Events in one watch message, key-values in one range answer. */
#define ETCD_MAX_ITEMS 100000

/* etcd's gRPC codes the agent tells apart (google.golang.org/grpc/codes). */
#define ETCD_GRPC_OUT_OF_RANGE 11 /* a revision compacted away */
#define ETCD_GRPC_UNAVAILABLE 14  /* no leader, or the member is stopping */
#define ETCD_GRPC_DEADLINE 4

struct etcd_header {
    uint64_t cluster_id;
    uint64_t member_id;
    int64_t revision;
    int64_t raft_term;
};

struct etcd_kv {
    char *key; /* NUL-terminated copy (a key holding NUL is refused) */
    size_t key_len;
    unsigned char *value; /* NUL-terminated copy for convenience; value_len excludes it */
    size_t value_len;
    int64_t create_revision;
    int64_t mod_revision;
    int64_t version;
    int64_t lease;
};

struct etcd_range {
    struct etcd_header header;
    struct etcd_kv *kvs;
    size_t n_kvs;
    bool more;
    int64_t count;
};

enum etcd_event_type { ETCD_EVENT_PUT, ETCD_EVENT_DELETE };

struct etcd_event {
    enum etcd_event_type type;
    struct etcd_kv kv; /* for a DELETE: the key, and mod_revision the deletion's revision */
};

struct etcd_watch_message {
    struct etcd_header header;
    int64_t watch_id;
    bool created;
    bool canceled;
    int64_t compact_revision; /* > 0: history from the asked revision is gone (resync) */
    char cancel_reason[256];
    struct etcd_event *events;
    size_t n_events;
};

struct etcd_status {
    struct etcd_header header;
    char version[32];
    uint64_t leader; /* 0: this member knows no leader (no quorum) */
    int64_t db_size;
    int64_t raft_index;
};

/* A member of the etcd cluster, as /v3/cluster/member/list, add, promote and remove list them. */
#define ETCD_MAX_MEMBERS 16
#define ETCD_MAX_URL 256
struct etcd_member {
    uint64_t id;
    char name[64];                 /* "" until the member first started */
    char peer_url[ETCD_MAX_URL];   /* the first of its peer URLs */
    char client_url[ETCD_MAX_URL]; /* the first of its client URLs; "" until it started */
    bool learner;
};

struct etcd_members {
    struct etcd_header header;
    struct etcd_member members[ETCD_MAX_MEMBERS];
    size_t n;
    uint64_t added_id; /* member/add: the new member's id */
};

/* An etcd error answer: the gRPC code (0 when none was given) and etcd's message. */
struct etcd_error {
    int grpc_code;
    char message[256];
};

/* --- base64 as etcd writes it (padded) --- */

/* A JSON string of data in base64, or NULL when out of memory. */
json_t *etcd_b64_string(const void *data, size_t len);

/* Decodes base64 text into a new NUL-terminated buffer of at most max bytes: 0, -EINVAL
 * (not padded base64, or longer than max) or -ENOMEM. */
int etcd_b64_decode(const char *text, size_t len, size_t max, unsigned char **out, size_t *out_len);

/* --- requests (a new JSON object, or NULL when out of memory or a key is too long) --- */

/* The end of the range of every key with this prefix: the prefix with its last byte below
 * 0xff incremented (etcd's convention); "\0" (all keys) when every byte is 0xff. Writes at
 * most len bytes into end (len >= prefix_len); returns its length. */
size_t etcd_prefix_end(const char *prefix, size_t prefix_len, char *end);

/* A range of one key (range_end NULL) or [key, range_end); revision 0: the latest;
 * serializable: answered by the member alone, without the leader (reads without quorum). */
json_t *etcd_range_request(const char *key, size_t key_len, const char *range_end,
                           size_t range_end_len, int64_t revision, bool serializable);

json_t *etcd_put_request(const char *key, size_t key_len, const void *value, size_t value_len,
                         int64_t lease);

json_t *etcd_delete_request(const char *key, size_t key_len, const char *range_end,
                            size_t range_end_len);

/* One compare of a txn: the key's mod_revision equals mod_revision (0: the key does not
 * exist). */
struct etcd_compare {
    const char *key;
    size_t key_len;
    int64_t mod_revision;
};

enum etcd_op_type { ETCD_OP_PUT, ETCD_OP_DELETE };

struct etcd_op {
    enum etcd_op_type type;
    const char *key;
    size_t key_len;
    const void *value; /* PUT only */
    size_t value_len;
    int64_t lease; /* PUT only; 0 for none */
};

/* If every compare holds, the success ops, else the failure ops; all at one revision. */
json_t *etcd_txn_request(const struct etcd_compare *compares, size_t n_compares,
                         const struct etcd_op *success, size_t n_success,
                         const struct etcd_op *failure, size_t n_failure);

/* A watch of one key or [key, range_end) from start_revision (0: from now). */
json_t *etcd_watch_request(const char *key, size_t key_len, const char *range_end,
                           size_t range_end_len, int64_t start_revision);

/* --- readers: 0, or a negative errno with err saying what; -EREMOTE: etcd answered an
 * error (err_out filled when not NULL) --- */

int etcd_parse_range(const char *text, size_t len, struct etcd_range *out,
                     struct etcd_error *err_out, char *err, size_t err_len);
void etcd_range_free(struct etcd_range *range);

/* A put or a delete: the header only. */
int etcd_parse_write(const char *text, size_t len, struct etcd_header *out,
                     struct etcd_error *err_out, char *err, size_t err_len);

int etcd_parse_txn(const char *text, size_t len, struct etcd_header *out, bool *succeeded,
                   struct etcd_error *err_out, char *err, size_t err_len);

/* lease/grant, and one message of a lease/keepalive stream ({"result": {...}}). */
int etcd_parse_lease(const char *text, size_t len, int64_t *id, int64_t *ttl,
                     struct etcd_error *err_out, char *err, size_t err_len);

int etcd_parse_status(const char *text, size_t len, struct etcd_status *out,
                      struct etcd_error *err_out, char *err, size_t err_len);

/* One message of a watch stream. */
/* A member list (/v3/cluster/member/list, and what add, promote and remove answer). */
int etcd_parse_members(const char *text, size_t len, struct etcd_members *out,
                       struct etcd_error *err_out, char *err, size_t err_len);

/* How many of the members vote; *ret_learner (when not NULL) gets the last learner, or NULL
 * (etcd 3.4 holds one at a time). */
size_t etcd_members_voters(const struct etcd_members *members,
                           const struct etcd_member **ret_learner);

/* The member with this id, or NULL. */
const struct etcd_member *etcd_member_by_id(const struct etcd_members *members, uint64_t id);

/* {"ID": "<decimal>"}: what /v3/cluster/member/remove and promote take (NULL: out of memory). */
json_t *etcd_member_id_request(uint64_t id);

int etcd_parse_watch(const char *text, size_t len, struct etcd_watch_message *out,
                     struct etcd_error *err_out, char *err, size_t err_len);
void etcd_watch_message_free(struct etcd_watch_message *message);

#endif
