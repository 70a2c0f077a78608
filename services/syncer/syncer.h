/* certvisor-syncer's state: the generation it serves, the replica links, their sessions. */
#ifndef CERTVISOR_SYNCER_SYNCER_H
#define CERTVISOR_SYNCER_SYNCER_H

#include "netconn.h"
#include "db_config.h"
#include "replstream.h"
#include "tls_config.h"
#include "tls_context.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Bytes waiting in one direction; a full buffer stops reading (backpressure). */
#define SYNCER_BUF_SIZE (256 * 1024)

/* --- what the two rendered files say (settings.c) --- */

/* One link's settings, built whole before they are used. */
struct link_settings {
    const struct db_config *db; /* in the generation's list: replica_source is set */
    SSL_CTX *ctx;               /* TLS client to the source: syncer certificate, trust, policy */
    SSL_CTX *shard_ctx;         /* TLS client to the shard (shard_tls), or NULL */
};

struct generation {
    struct tls_config *tls; /* the syncer's TLS file: its certificate and the data-plane policy */
    char fingerprint[TLS_FINGERPRINT_MAX]; /* of the syncer certificate */
    struct db_list list;
    struct link_settings *links; /* list.n of them, in name order */
    size_t n;
};

/*
 * Reads the TLS file and the replicas file and builds every context. Returns
 * 0, or a negative error with a message naming the file, database and setting.
 */
int generation_build(const char *tls_path, const char *replicas_path, struct generation **ret_gen,
                     char *err, size_t err_len);
void generation_free(struct generation *gen);

/* --- one replica link (link.c) and the connection it carries (session.c) --- */

/* Why a link is not up, for programs (replica status) as much as for people. */
enum link_error {
    LINK_ERROR_NONE,
    LINK_ERROR_UNREACHABLE,      /* the source's endpoint does not answer */
    LINK_ERROR_SOURCE_UNTRUSTED, /* its certificate does not verify against the trust list */
    LINK_ERROR_SYNCER_UNTRUSTED, /* the source refused the syncer certificate (a TLS alert) */
    LINK_ERROR_HOSTNAME,         /* its certificate is not valid for the name asked for */
    LINK_ERROR_TLS_VERSION,      /* no TLS version both sides accept (the policy's minimum) */
    LINK_ERROR_TLS,              /* any other TLS failure */
    LINK_ERROR_BROKEN,           /* an established link ended */
    LINK_ERROR_SHARD,            /* the local shard cannot be reached or told */
};

const char *link_error_word(enum link_error error);

struct link;

/* The local shard's connection to the syncer, and the TLS connection to the source. */
struct session {
    struct link *link;
    struct netconn local, remote; /* watched for good: each event runs the session */
    struct event *timer;
    enum { PHASE_WAITING, PHASE_CONNECTING, PHASE_HANDSHAKE, PHASE_OPEN } phase;
    char *up, *down; /* SYNCER_BUF_SIZE each: to the source, to the shard */
    size_t up_start, up_end, down_start, down_end;
    bool local_eof, remote_eof;
    bool source_spoke; /* bytes came from the source: it accepted the syncer certificate */
    struct replstream stream;
    uint64_t started_ms;
    time_t opened_at;
    /* what the handshake saw, for the report and for messages */
    int verify_error; /* X509_V_OK, or why the source's certificate did not verify */
    char verify_subject[256];
    char verify_fingerprint[TLS_FINGERPRINT_MAX];
    int alert; /* the TLS alert the source sent, or -1 */
    char server_name[256];
    char tls_version[16];
    char cipher[64];
    char peer_fingerprint[TLS_FINGERPRINT_MAX];
    char peer_subject[256];
    char local_fingerprint[TLS_FINGERPRINT_MAX];
};

struct shardctl;

struct link {
    struct syncer *syncer;
    char name[64];
    const struct link_settings *settings; /* the current generation's */
    SSL_CTX *ctx;                         /* for new sessions: a reference of the link's own */
    int listen_fd;                        /* 127.0.0.1:port, where the shard replicates from */
    int port;
    struct event *accept_ev;
    struct session *session; /* at most one: the shard has one link to its master */
    struct shardctl *shard;
    struct event *retry_ev; /* a session waits out the backoff before it connects */
    unsigned failures;      /* in a row, for the backoff */
    uint64_t retry_at_ms;
    /* reported (CERTVISOR_STATS=) */
    const char *state; /* "down", "connecting", "syncing", "up" */
    time_t since;
    enum link_error error;
    char last_error[640];
    time_t last_error_at;
    char logged_error[640]; /* the last error logged, to log a repeated one once a minute */
    time_t logged_at;
    uint64_t bytes_in, bytes_out; /* from the source, to the source, every session */
    uint64_t sessions, full_syncs, partial_syncs;
    long long source_offset, replica_offset; /* -1 until known */
    uint64_t ack_at_ms;
};

/* Makes a link for settings and starts listening and telling the shard. Returns 0 or -errno. */
int link_new(struct syncer *syncer, const struct link_settings *settings, struct link **ret_link,
             char *err, size_t err_len);

/*
 * Gives the link the settings of a new generation. A change of what the link
 * is (its source, shard, port or server name) ends its session; a change of
 * certificates or trust only changes what the next session uses, and an
 * established session whose source would no longer be trusted ends.
 */
int link_update(struct link *link, const struct link_settings *settings, char *err, size_t err_len);

/* Ends the link: its session, its port, and (when told) the shard's replication from it. */
void link_free(struct link *link, bool release_shard);

/* Records why the link is down (logged when it differs, or once a minute). */
void link_fail(struct link *link, enum link_error error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets the state that is reported ("up", ...), with the time it changed. */
void link_set_state(struct link *link, const char *state);

/* A session ended: counted into the link, and the backoff grows unless it had come up. */
void link_session_ended(struct link *link, struct session *session);

/* The backoff before the next connection to the source, in milliseconds (0: none). */
uint64_t link_backoff_ms(const struct link *link);

/* Installs the callbacks that see why a handshake fails, on a context for the source. */
void session_prepare_ctx(SSL_CTX *ctx);

/* Session life (session.c). */
struct session *session_new(struct link *link, int local_fd);
void session_connect(struct session *session);
void session_free(struct session *session);

/*
 * Checks an established session's source against the link's current trust,
 * after a reload. Returns 0 when it still verifies, or -1 with the reason.
 */
int session_reverify(struct session *session, SSL_CTX *ctx, char *reason, size_t reason_len);

/* --- the local shard (shard.c) --- */

/* Starts watching and telling the link's shard: every second, INFO replication and REPLICAOF. */
struct shardctl *shardctl_new(struct link *link);
void shardctl_free(struct shardctl *shard);

/* What the shard said last: role, its master's port, its link's status; false before. */
bool shardctl_known(const struct shardctl *shard, const char **ret_role, int *ret_master_port,
                    const char **ret_link_status, long long *ret_offset);

/*
 * Tells the shard, once and without waiting long, to stop replicating
 * (REPLICAOF NO ONE): its data stays, it becomes a master. Best effort; logged.
 */
void shardctl_release(const struct db_config *db, SSL_CTX *shard_ctx);

/* --- the process --- */

struct syncer {
    struct event_base *base;
    const char *tls_path;
    const char *replicas_path;
    struct generation *gen;
    struct generation *retired; /* a reload's that failed half-way, until the process ends */
    struct link **links;
    size_t n_links;
    char *last_report;
};

/* Builds the first generation and its links. Returns 0, or a negative error, logged. */
int syncer_start(struct syncer *syncer);

/*
 * SIGHUP (inside lib/service/service_runtime.h's handshake): both files read
 * and built whole, the links updated. Established links stay up. Returns 0, or
 * a negative error with a message: the process exits, for the agent to
 * restore the previous files.
 */
int syncer_reload(struct syncer *syncer, char *err, size_t err_len);

/* Ends every link (the shards keep replicating from the port, and find the next syncer's). */
void syncer_stop(struct syncer *syncer);

/* Sends CERTVISOR_STATS=<json> when it differs from the last one. */
void syncer_report(struct syncer *syncer);

uint64_t syncer_now_ms(void);

#endif
