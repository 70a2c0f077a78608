/* The state the parts of agent/sync share. Private to agent/sync. */
#ifndef CERTVISOR_SYNC_IMPL_H
#define CERTVISOR_SYNC_IMPL_H

#include "sync.h"

#include "etcd_client.h"
#include "sealed.h"
#include "spec.h"

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define SYNC_MAX_KEYS 32 /* spec/ keys a node applies: certificates, CA, policy */
#define SYNC_MAX_KEY_LEN 256
#define SYNC_RETRY_MIN_MS 2000 /* a failed read or apply is tried again after this, doubling */
#define SYNC_RETRY_MAX_MS 60000
#define SYNC_RETRY_UNKNOWN_MS 200 /* a first read that failed (the member is starting) */

enum sync_store_state {
    SYNC_UNKNOWN,         /* not read yet, or unreachable since start-up */
    SYNC_NOT_INITIALISED, /* no meta: changes are this node's alone until cluster init */
    SYNC_INITIALISED,
    SYNC_BROKEN, /* meta unreadable, or this node cannot open the cluster's keys */
};

/* A spec/ key and the mod_revision this node applied (what its changes are planned on). */
struct sync_known {
    char key[SYNC_MAX_KEY_LEN];
    int64_t mod_revision;
};

struct sync_publication;
struct sync_init;
struct sync_token_op;
struct sync_admit;
struct sync_membership_op;

struct cluster_sync {
    struct agent *agent;
    struct etcd_client *client; /* the monitor's */
    char prefix[128];           /* /certvisor/<cluster>/ */
    char node[64];
    unsigned char data_key[SEALED_KEY_BYTES];
    bool has_key;
    enum sync_store_state state;
    char state_error[512];
    struct spec_meta meta;
    /* converging */
    struct etcd_call *range_call;
    struct etcd_watch *watch;
    int64_t watch_from;
    bool dirty;           /* spec/ changed while a read or an apply was under way */
    size_t applies_out;   /* requests of this reconcile still in the apply pipeline */
    int64_t reconcile_at; /* the revision being applied */
    bool reconcile_failed;
    char reconcile_reason[SPEC_MAX_REASON];
    struct sync_known planned[SYNC_MAX_KEYS]; /* the keys of the read being applied */
    size_t n_planned;
    struct sync_known known[SYNC_MAX_KEYS]; /* as of the last revision applied */
    size_t n_known;
    int64_t applied_revision; /* 0: none yet */
    time_t applied_at;
    char last_error[SPEC_MAX_REASON];
    struct event *retry_timer;
    int retry_ms;
    struct etcd_call *status_call;
    bool status_again; /* a newer outcome to write once the write under way is back */
    /* every node's status, read at each poll (for cluster status) */
    json_t *nodes;
    struct etcd_call *nodes_call;
    json_t *registry; /* the nodes that joined, from nodes/ at the last poll */
    struct etcd_call *registry_call;
    json_t *voters, *learners; /* etcd's members by name, at the last poll (NULL: not read) */
    struct etcd_call *members_call;
    struct etcd_call *promote_call; /* a learner the cluster needs the vote of (sync.c) */
    struct event *nodes_timer;
    /* callers */
    struct sync_publication *publications;
    struct sync_init *init;
    struct sync_token_op *token_ops;
    struct sync_admit *admit;              /* the join being admitted through this node (admit.c) */
    struct sync_membership_op *membership; /* a leave or a remove under way (membership.c) */
    /* the node that renews the certificates every node shares (renewer.c) */
    char renewer[SPEC_MAX_NAME]; /* "" until read, or while the key is absent */
    int64_t renewer_lease;       /* the lease the key was read (or claimed) on */
    bool in_step;                /* a pass applied the store's state once since start */
    struct etcd_call *renewer_call;
};

static inline struct cluster_sync *sync_of(const struct agent *agent)
{
    return agent->sync;
}

/* converge.c */
void sync_converge_now(struct cluster_sync *sync);
void sync_converge_stop(struct cluster_sync *sync);
int64_t sync_known_revision(const struct cluster_sync *sync, const char *key);
/* Reads state_dir/cluster.key when the node has none yet (after init, or once copied in). */
void sync_load_key(struct cluster_sync *sync);

/* publish.c */
void sync_publications_stop(struct cluster_sync *sync);

/* renewer.c: reads (or claims) the renewer key at each poll; agent_hooks.may_renew; and the
 * first pass applied (converge.c): the renewal check this node could not make before. */
void sync_renewer_poll(struct cluster_sync *sync);
bool sync_may_renew(struct agent *agent, bool shared);
void sync_renewer_in_step(struct cluster_sync *sync);

/* tokens.c: answers every caller still waiting (the agent is stopping). */
void sync_tokens_stop(struct cluster_sync *sync);
/* A read of the store ended: token operations that waited for it go on (or are refused). */
void sync_tokens_read_done(struct cluster_sync *sync);

/* admit.c: answers the join under way (the agent is stopping). */
void sync_admit_stop(struct cluster_sync *sync);

/* membership.c: answers the leave or remove under way (the agent is stopping). */
void sync_membership_stop(struct cluster_sync *sync);
/* How many of nodes vote in etcd: every node up to 3, then 3, and 5 from 5 nodes on (a 4th or
 * a 6th node waits as a learner, which keeps a copy but does not vote). */
int membership_target_voters(size_t nodes);

/* init.c */
void sync_init_stop(struct cluster_sync *sync);
/* A read of the store ended (sync->state says how): an init that waited for it goes on. */
void sync_init_read_done(struct cluster_sync *sync);

/* Where a node keeps what its cluster membership needs, under state_dir: the cluster's data
 * key (0600, never in etcd) and its etcd member's data. */
void sync_data_key_path(const struct agent *agent, char *buf, size_t len);
void sync_etcd_data_path(const struct agent *agent, char *buf, size_t len);

/* The hex of the data key's check value (for meta). */
void sync_check_hex(const unsigned char key[SEALED_KEY_BYTES], char *hex, size_t len);

/* Seals key_pem for the etcd key and encodes the certificate's value: malloc'd text or NULL
 * (err says why). */
char *sync_encode_cert(const struct cluster_sync *sync, const char *etcd_key, const char *name,
                       const char *cert_pem, size_t cert_len, const char *key_pem, size_t key_len,
                       unsigned generation, const char *origin, char *err, size_t err_len);

/* Whether node's alive key was in the store at the monitor's last poll (true while that is
 * not known yet). */
bool sync_node_alive(const struct cluster_sync *sync, const char *node);

/* Is name one of a node's own certificates (spec/nodecerts/<node>/)? */
bool sync_is_node_cert(const char *name);

/* Why the store cannot take a request now, in words: not initialised (with the fix), no quorum
 * (initialised, without a leader), or the state's error. */
const char *sync_unusable_why(const struct cluster_sync *sync);

/* {"exit": 1, "error": message, "reason": reason}. */
json_t *sync_refusal(const char *reason, const char *message);

/* Hands reply to done (or drops it when the caller went away: done NULL). */
void sync_deliver(cluster_sync_done_fn done, void *data, int exit_status, json_t *reply);

struct policy;
/*
 * The runtime settings of a policy, as spec/policy (at etcd_key) holds them: a secret's value
 * (ldap_bind_password) sealed with the data key for that key and its name, "sealed:" and the
 * base64 of it, so that etcd never holds it in the clear. Returns 0, or an error in err.
 */
int sync_policy_of(const struct cluster_sync *sync, const char *etcd_key,
                   const struct policy *policy, struct spec_policy *out, char *err, size_t err_len);

/*
 * A value read from spec/policy as the policy takes it: a secret's opened into buf (len bytes),
 * anything else as it is. Returns the value, or NULL with err saying why (a secret not sealed,
 * or not with this cluster's key for this key and name).
 */
const char *sync_policy_value(const struct cluster_sync *sync, const char *etcd_key,
                              const char *name, const char *value, char *buf, size_t len, char *err,
                              size_t err_len);

/* An immediate answer, given later from the loop (callers are never called back inside). */
void sync_answer_later(struct agent *agent, cluster_sync_done_fn done, void *data, int exit_status,
                       json_t *reply);

#endif
