/*
 * An etcd client over etcd's JSON API, on libevent's HTTP client with OpenSSL (mTLS) and
 * jansson: no gRPC, no libcurl in the agent. Every call runs on the agent's loop and never
 * blocks it; every call has a deadline; a call that cannot reach one endpoint tries the next
 * (the cluster's other members) until its deadline.
 *
 * A watch streams events and resumes by itself after its connection ends, from the revision
 * after the last one it delivered; when etcd compacted that history away, it says so
 * (ETCD_WATCH_COMPACTED) and stops: the caller reads the whole range again and watches from
 * there (etcd_json.h has the readers and the message shapes).
 */
#ifndef CERTVISOR_ETCD_CLIENT_H
#define CERTVISOR_ETCD_CLIENT_H

#include "etcd_json.h"

#include <event2/event.h>
#include <limits.h>

#define ETCD_MAX_ENDPOINTS 9
/* A call's deadline when the configuration gives none: etcd itself gives up a write that
 * cannot reach quorum only after 7 s, and a node must say "no quorum" well before. */
#define ETCD_DEFAULT_DEADLINE_MS 2000

struct etcd_client_config {
    /* "address:port" (IPv6 as "[::1]:2379"; never a name, which would be resolved on the
     * loop), tried in order; at least one. */
    const char *endpoints[ETCD_MAX_ENDPOINTS];
    size_t n_endpoints;
    /* mTLS: the CA that signed the members' certificates, and this client's certificate and
     * key (PEM files, read at each new connection so that a rotation needs no restart). All
     * NULL: plain HTTP (tests only). */
    const char *ca_file;
    const char *cert_file;
    const char *key_file;
    int deadline_ms; /* 0: ETCD_DEFAULT_DEADLINE_MS */
};

/*
 * A node's own files for its mTLS to etcd, under state_dir: the exported cluster CA and the
 * ccs_internode_encryption certificate's current generation (read at each new connection, so
 * a rotation needs nothing). Fills files and points config's ca_file, cert_file and key_file
 * at them.
 */
struct etcd_node_files {
    char ca[PATH_MAX];
    char cert[PATH_MAX];
    char key[PATH_MAX];
};

void etcd_node_files(const char *state_dir, struct etcd_node_files *files,
                     struct etcd_client_config *config);

struct etcd_client;
struct etcd_call;
struct etcd_watch;

/*
 * The outcome of a call: error 0 and the answer's text (the reader of etcd_json.h that fits
 * the call turns it into a struct), or a negative errno: -ETIMEDOUT (the deadline passed),
 * -ECONNREFUSED/-EHOSTUNREACH/-ECONNRESET (no endpoint answered), -EPROTO (an answer that is
 * not HTTP), -EFBIG (an answer over ETCD_MAX_MESSAGE); message says which endpoints were
 * tried and what each did.
 */
struct etcd_result {
    int error;
    int http_status;
    const char *body; /* NUL-terminated; valid during the callback only */
    size_t body_len;
    const char *endpoint; /* the endpoint that answered, or the last one tried */
    char message[512];
};

typedef void (*etcd_call_fn)(void *data, const struct etcd_result *result);

int etcd_client_new(struct event_base *base, const struct etcd_client_config *config,
                    struct etcd_client **ret_client, char *err, size_t err_len);

/* Cancels every call and watch (their callbacks are not called) and frees the client. */
void etcd_client_free(struct etcd_client *client);

/*
 * POSTs request (a JSON object of etcd_json.h; taken) to path ("/v3/kv/range", ...) and
 * calls fn with the answer once, from the loop (never from inside this call). Returns the
 * call (to cancel: fn is then not called) or NULL when out of memory.
 */
struct etcd_call *etcd_call(struct etcd_client *client, const char *path, json_t *request,
                            etcd_call_fn fn, void *data);
void etcd_call_cancel(struct etcd_call *call);

enum etcd_watch_state {
    ETCD_WATCH_EVENTS,    /* message holds events (or only a progress header) */
    ETCD_WATCH_COMPACTED, /* history from the next revision is gone: resync; the watch stopped */
    ETCD_WATCH_LOST,      /* the stream ended; it resumes by itself (message NULL, why set) */
};

typedef void (*etcd_watch_fn)(void *data, enum etcd_watch_state state,
                              const struct etcd_watch_message *message, const char *why);

/* Watches [key, range_end) (range_end NULL: the one key) from start_revision. */
struct etcd_watch *etcd_watch_start(struct etcd_client *client, const char *key, size_t key_len,
                                    const char *range_end, size_t range_end_len,
                                    int64_t start_revision, etcd_watch_fn fn, void *data);
void etcd_watch_stop(struct etcd_watch *watch);

#endif
