/*
 * The peer's side of a join (issue 17, sync.h): a new node's `certvisorctl cluster join` POSTs
 * its request to this node's REST API (/v1/join/admit), which hands it to the agent as
 * `cluster admit`. The token is the credential. In order, each step only once the one before
 * succeeded:
 *
 *   1. read join/<id> and check the secret against its SHA-256 (and its expiry);
 *   2. read the cluster CA's value (spec/ca/current, its key sealed) and the node registry
 *      (nodes/), list etcd's members, and choose the new node's name: the first n<k> that no
 *      member, registered node or configured member has;
 *   3. issue the node's two internode certificates from the cluster CA, for the public keys
 *      of its CSRs (its private keys never travel), naming the node and its address, on an
 *      offload worker;
 *   4. add the node's etcd member as a learner (it cannot vote before it has caught up);
 *   5. one transaction: the token unchanged since step 1 and the name still free, then the
 *      node registered at nodes/<name> and the token deleted: a token admits one node;
 *   6. answer with what the joiner needs (join_wire.h), the cluster's data key included.
 *
 * A failure after step 4 removes the learner again. One join at a time: etcd takes one
 * learner at a time anyway.
 */
#include "sync_impl.h"

#include "cert_names.h"
#include "certs.h"
#include "config.h"
#include "join_http.h"
#include "join_token.h"
#include "join_wire.h"
#include "json_fields.h"
#include "log.h"
#include "monitor.h"
#include "offload.h"

#include <errno.h>
#include <event2/event.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum admit_step {
    ADMIT_TOKEN,
    ADMIT_CA,
    ADMIT_REGISTRY,
    ADMIT_MEMBERS,
    ADMIT_PROMOTE_WAITING,
    ADMIT_ADD,
    ADMIT_COMMIT
};

struct admit_job;

struct sync_admit {
    struct cluster_sync *sync;
    cluster_sync_done_fn done; /* NULL once its caller went away */
    void *data;
    struct etcd_call *call;
    enum admit_step step;
    struct join_request request;
    char source[64];
    char admin[128]; /* the administrator who admits the node instead of a token, or "" */
    char token_id[JOIN_TOKEN_ID_LEN + 1];
    char secret[JOIN_TOKEN_SECRET_LEN + 1];
    char token_key[SYNC_MAX_KEY_LEN];
    int64_t token_revision;
    char *ca_value;
    char registered[JOIN_MAX_MEMBERS * 8][JOIN_NAME_MAX]; /* names under nodes/ */
    size_t n_registered;
    struct etcd_members members;
    char node[JOIN_NAME_MAX];
    char node_key[SYNC_MAX_KEY_LEN];
    char *certs[JOIN_N_CERTS];
    struct admit_job *job;
    uint64_t member_id;     /* the learner added, to remove again when a later step fails */
    struct event *begin_ev; /* the first step, and the retries of the member's addition */
    time_t add_started;
};

/* Issuing runs on a worker: the job owns copies of everything it uses. */
struct admit_job {
    struct sync_admit *admit; /* NULL once the admit went away */
    struct certs_issuer *issuer;
    char *csr[JOIN_N_CERTS];
    char node[JOIN_NAME_MAX];
    char address[JOIN_ADDRESS_MAX];
    char *certs[JOIN_N_CERTS];
    int result;
    char err[512];
};

static void admit_free(struct sync_admit *admit)
{
    if (admit->sync->admit == admit)
        admit->sync->admit = NULL;
    if (admit->call)
        etcd_call_cancel(admit->call);
    if (admit->job)
        admit->job->admit = NULL;
    if (admit->begin_ev)
        event_free(admit->begin_ev);
    join_request_clear(&admit->request);
    free(admit->ca_value);
    for (size_t i = 0; i < JOIN_N_CERTS; i++)
        free(admit->certs[i]);
    OPENSSL_cleanse(admit, sizeof(*admit));
    free(admit);
}

static void answer(struct sync_admit *admit, int exit_status, json_t *reply)
{
    cluster_sync_done_fn done = admit->done;
    void *data = admit->data;

    admit_free(admit);
    sync_deliver(done, data, exit_status, reply);
}

static void on_call(void *data, const struct etcd_result *result);

static void call(struct sync_admit *admit, enum admit_step step, const char *path, json_t *request)
{
    admit->step = step;
    admit->call = request ? etcd_call(admit->sync->client, path, request, on_call, admit) : NULL;
    if (!admit->call)
        answer(admit, 1, sync_refusal("failed", "out of memory"));
}

static void on_removed(void *data, const struct etcd_result *result)
{
    (void)data;
    (void)result; /* best effort: a learner that never starts can be removed by hand */
}

/* Refuses the join, first removing the learner when one was added. */
static void refuse(struct sync_admit *admit, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void refuse(struct sync_admit *admit, const char *reason, const char *fmt, ...)
{
    char message[700];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    log_notice("Cluster: join from %s refused: %s", admit->source, message);
    if (admit->member_id) {
        /* The call outlives the admit: its answer is ignored. */
        etcd_call(admit->sync->client, "/v3/cluster/member/remove",
                  etcd_member_id_request(admit->member_id), on_removed, NULL);
        admit->member_id = 0;
    }
    answer(admit, 1, sync_refusal(reason, message));
}

/* --- 1. the token --- */

static void read_ca(struct sync_admit *admit)
{
    char key[SYNC_MAX_KEY_LEN];

    snprintf(key, sizeof(key), "%sspec/ca/current", admit->sync->prefix);
    call(admit, ADMIT_CA, "/v3/kv/range", etcd_range_request(key, strlen(key), NULL, 0, 0, false));
}

static void start(struct sync_admit *admit)
{
    struct cluster_sync *sync = admit->sync;

    if (sync->state != SYNC_INITIALISED || !sync->has_key ||
        !cluster_monitor_health(sync->agent->cluster)->has_leader) {
        refuse(admit, "cluster_unavailable", "this node cannot admit a node now: %s",
               sync_unusable_why(sync));
        return;
    }
    if (admit->admin[0])
        read_ca(admit);
    else
        call(admit, ADMIT_TOKEN, "/v3/kv/range",
             etcd_range_request(admit->token_key, strlen(admit->token_key), NULL, 0, 0, false));
}

static void add_learner(struct sync_admit *admit);
static void choose_name(struct sync_admit *admit);

static void on_begin(evutil_socket_t fd, short what, void *arg)
{
    struct sync_admit *admit = arg;

    (void)fd;
    (void)what;
    if (admit->step == ADMIT_ADD)
        add_learner(admit);
    else
        start(admit);
}

static bool token_checked(struct sync_admit *admit, const struct etcd_range *range)
{
    struct spec_join record;
    char err[256];

    if (range->n_kvs == 1 &&
        spec_join_decode((const char *)range->kvs[0].value, range->kvs[0].value_len, &record, err,
                         sizeof(err)) == 0 &&
        strcmp(record.id, admit->token_id) == 0 &&
        join_token_secret_matches(admit->secret, record.secret_sha256) &&
        record.expires > time(NULL)) {
        admit->token_revision = range->kvs[0].mod_revision;
        return true;
    }
    /* One answer for unknown, expired, used and wrong: a guess learns nothing. */
    refuse(admit, "join_refused",
           "the join token '%s' is unknown, expired, already used, or its secret is wrong: make "
           "a new one on a node of the cluster ('certvisorctl cluster token create')",
           admit->token_id);
    return false;
}

/* --- 2. the CA, the registry, the members, the name --- */

static void read_prefix(struct sync_admit *admit, enum admit_step step, const char *what)
{
    char from[200], end[200];
    size_t from_len = (size_t)snprintf(from, sizeof(from), "%s%s", admit->sync->prefix, what);

    call(admit, step, "/v3/kv/range",
         etcd_range_request(from, from_len, end, etcd_prefix_end(from, from_len, end), 0, false));
}

static void keep_registry(struct sync_admit *admit, const struct etcd_range *range)
{
    size_t skip = strlen(admit->sync->prefix) + strlen("nodes/");

    for (size_t i = 0; i < range->n_kvs && admit->n_registered < JOIN_MAX_MEMBERS * 8; i++)
        if (range->kvs[i].key_len > skip && range->kvs[i].key_len - skip < JOIN_NAME_MAX)
            snprintf(admit->registered[admit->n_registered++], JOIN_NAME_MAX, "%.*s",
                     (int)(range->kvs[i].key_len - skip), range->kvs[i].key + skip);
}

static bool name_taken(const struct sync_admit *admit, const char *name)
{
    const struct cluster_settings *cluster = &admit->sync->agent->config->cluster;

    for (size_t i = 0; i < admit->members.n; i++)
        if (strcmp(admit->members.members[i].name, name) == 0)
            return true;
    for (size_t i = 0; i < admit->n_registered; i++)
        if (strcmp(admit->registered[i], name) == 0)
            return true;
    for (size_t i = 0; i < cluster->n_members; i++)
        if (strcmp(cluster->members[i].name, name) == 0)
            return true;
    return false;
}

/* "https://address:port[/]" (IPv6 in brackets) into its parts. Returns 0 or -EINVAL. */
static int url_parts(const char *url, char *address, size_t len, int *port)
{
    const char *host = strstr(url, "://");
    char host_port[JOIN_PEER_MAX];

    if (!host)
        return -EINVAL;
    host += 3;
    snprintf(host_port, sizeof(host_port), "%.*s", (int)strcspn(host, "/"), host);
    /* No default port: an etcd URL names its own. */
    return join_http_split_peer(host_port, 0, address, len, port) < 0 || *port == 0 ? -EINVAL : 0;
}

/* The members the joiner's etcd starts with: every member of etcd (all of them started:
 * etcd checks the list), then the joiner. Returns 0, or -EINVAL after refusing. */
static int answer_members(struct sync_admit *admit, struct join_answer *out)
{
    for (size_t i = 0; i < admit->members.n; i++) {
        const struct etcd_member *m = &admit->members.members[i];
        struct join_member *to = &out->members[out->n_members];

        if (m->id == admit->member_id)
            continue;
        if (!m->name[0] || out->n_members >= JOIN_MAX_MEMBERS - 1 ||
            url_parts(m->peer_url, to->address, sizeof(to->address), &to->peer_port) < 0 ||
            url_parts(m->client_url, to->address, sizeof(to->address), &to->client_port) < 0 ||
            !join_name_valid(m->name)) {
            refuse(admit, "failed",
                   "etcd member %" PRIx64 " ('%s', %s) has not started, or its URLs are not "
                   "https://<address>:<port>: start it (or remove it) before a node joins",
                   m->id, m->name, m->peer_url);
            return -EINVAL;
        }
        snprintf(to->name, sizeof(to->name), "%s", m->name);
        out->n_members++;
    }
    struct join_member *self = &out->members[out->n_members++];

    snprintf(self->name, sizeof(self->name), "%s", admit->node);
    snprintf(self->address, sizeof(self->address), "%s", admit->request.address);
    self->client_port = admit->request.client_port;
    self->peer_port = admit->request.peer_port;
    return 0;
}

/* --- 3. the node's certificates, on a worker --- */

static void run_job(void *data)
{
    struct admit_job *job = data;
    const char *ips[2];
    size_t n_ips = join_node_addresses(job->address, ips);

    job->result = 0;
    for (size_t i = 0; i < JOIN_N_CERTS && job->result == 0; i++)
        job->result = certs_issuer_sign_csr(job->issuer, job->csr[i], job->node, ips, n_ips,
                                            &job->certs[i], job->err, sizeof(job->err));
}

static void add_learner(struct sync_admit *admit);

static void on_job_done(void *data, bool cancelled)
{
    struct admit_job *job = data;
    struct sync_admit *admit = job->admit;

    if (admit && !cancelled) {
        admit->job = NULL;
        if (job->result < 0) {
            refuse(admit, "invalid_request", "%s", job->err);
        } else {
            for (size_t i = 0; i < JOIN_N_CERTS; i++) {
                admit->certs[i] = job->certs[i];
                job->certs[i] = NULL;
            }
            add_learner(admit);
        }
    }
    certs_issuer_free(job->issuer);
    for (size_t i = 0; i < JOIN_N_CERTS; i++) {
        free(job->csr[i]);
        free(job->certs[i]);
    }
    free(job);
}

static void issue(struct sync_admit *admit)
{
    struct agent *agent = admit->sync->agent;
    struct admit_job *job = calloc(1, sizeof(*job));
    char err[512] = "out of memory";
    int r = job ? certs_issuer_new(agent->certs, &agent->config->certs, join_cert_names[0],
                                   &job->issuer, err, sizeof(err))
                : -ENOMEM;

    for (size_t i = 0; r == 0 && i < JOIN_N_CERTS; i++)
        if (!(job->csr[i] = strdup(admit->request.csr[i])))
            r = -ENOMEM;
    if (r == 0) {
        job->admit = admit;
        snprintf(job->node, sizeof(job->node), "%s", admit->node);
        snprintf(job->address, sizeof(job->address), "%s", admit->request.address);
        r = offload_submit(agent->offload, run_job, on_job_done, job);
    }
    if (r < 0) {
        if (job) {
            certs_issuer_free(job->issuer);
            for (size_t i = 0; i < JOIN_N_CERTS; i++)
                free(job->csr[i]);
            free(job);
        }
        refuse(admit, "failed", "cannot issue the node's certificates: %s", err);
        return;
    }
    admit->job = job;
}

/*
 * etcd 3.4 takes one learner at a time. A learner waiting (a 4th node) votes once the new node
 * makes five: it is promoted first; otherwise the new node waits for it.
 */
static void make_room(struct sync_admit *admit)
{
    const struct etcd_member *learner;
    size_t voters = etcd_members_voters(&admit->members, &learner);

    if (!learner) {
        choose_name(admit);
        return;
    }
    if ((int)voters >= membership_target_voters(admit->members.n + 1)) {
        refuse(admit, "conflict",
               "etcd member '%s' does not vote, and etcd takes one such member at a time: a "
               "cluster has at most %zu nodes",
               learner->name, admit->members.n);
        return;
    }
    call(admit, ADMIT_PROMOTE_WAITING, "/v3/cluster/member/promote",
         etcd_member_id_request(learner->id));
}

static void choose_name(struct sync_admit *admit)
{
    for (int k = 1; k < 1000; k++) {
        snprintf(admit->node, sizeof(admit->node), "n%d", k);
        if (!name_taken(admit, admit->node))
            break;
    }
    spec_key_node(admit->node_key, sizeof(admit->node_key), admit->sync->prefix, admit->node);
    for (size_t i = 0; i < admit->members.n; i++) {
        char peer_url[300], address[JOIN_ADDRESS_MAX];
        int port;

        if (url_parts(admit->members.members[i].peer_url, address, sizeof(address), &port) == 0 &&
            strcmp(address, admit->request.address) == 0 && port == admit->request.peer_port) {
            cluster_host_port(address, port, peer_url, sizeof(peer_url));
            refuse(admit, "conflict",
                   "etcd already has a member at %s ('%s'): a node that left must be removed "
                   "first ('certvisorctl cluster remove %s')",
                   peer_url, admit->members.members[i].name, admit->members.members[i].name);
            return;
        }
    }
    issue(admit);
}

/* --- 4. the learner --- */

/* etcd refuses a new member until every voting member has been connected for 5 s (its strict
 * reconfiguration check): a node that joined a moment ago. Asked again for this long. */
#define ADMIT_UNHEALTHY_RETRY_S 20

static void add_learner(struct sync_admit *admit)
{
    char address[300], url[320];

    cluster_host_port(admit->request.address, admit->request.peer_port, address, sizeof(address));
    snprintf(url, sizeof(url), "https://%s", address);
    if (admit->step != ADMIT_ADD)
        admit->add_started = time(NULL);
    call(admit, ADMIT_ADD, "/v3/cluster/member/add",
         json_pack("{s:[s], s:b}", "peerURLs", url, "isLearner", 1));
}

/* --- 5. the registry and the token, in one transaction --- */

static void commit(struct sync_admit *admit)
{
    struct etcd_compare compares[2] = {
        {admit->token_key, strlen(admit->token_key), admit->token_revision},
        {admit->node_key, strlen(admit->node_key), 0}};
    char id[24];
    char *value;

    snprintf(id, sizeof(id), "%" PRIu64, admit->member_id);
    value = json_fields_dump(json_pack("{s:s, s:s, s:i, s:i, s:s, s:s, s:I}", "name", admit->node,
                                       "address", admit->request.address, "client_port",
                                       admit->request.client_port, "peer_port",
                                       admit->request.peer_port, "member_id", id, "admitted_by",
                                       admit->sync->node, "at", (json_int_t)time(NULL)));
    struct etcd_op ops[2] = {
        {ETCD_OP_PUT, admit->node_key, strlen(admit->node_key), value, value ? strlen(value) : 0,
         0},
        {ETCD_OP_DELETE, admit->token_key, strlen(admit->token_key), NULL, 0, 0}};

    /* Admitted by an administrator: no token to check or use up. */
    bool by_token = !admit->admin[0];

    call(admit, ADMIT_COMMIT, "/v3/kv/txn",
         value ? etcd_txn_request(by_token ? compares : compares + 1, by_token ? 2 : 1, ops,
                                  by_token ? 2 : 1, NULL, 0)
               : NULL);
    free(value);
}

/* --- 6. the answer --- */

static void admitted(struct sync_admit *admit)
{
    struct join_answer out = {.member_id = admit->member_id};
    json_t *object;

    snprintf(out.cluster, sizeof(out.cluster), "%s", admit->sync->agent->config->cluster.name);
    snprintf(out.uid, sizeof(out.uid), "%s", admit->sync->meta.uid);
    snprintf(out.node, sizeof(out.node), "%s", admit->node);
    if (answer_members(admit, &out) < 0)
        return;
    for (size_t i = 0; i < JOIN_N_CERTS; i++)
        out.cert[i] = admit->certs[i];
    out.ca_value = admit->ca_value;
    memcpy(out.data_key, admit->sync->data_key, sizeof(out.data_key));
    object = join_answer_object(&out);
    OPENSSL_cleanse(out.data_key, sizeof(out.data_key));
    if (!object) {
        refuse(admit, "failed", "out of memory");
        return;
    }
    log_notice("Cluster: node '%s' (%s) admitted %s%s%s from %s: etcd learner %" PRIx64
               ", its internode certificates issued",
               admit->node, admit->request.address, admit->admin[0] ? "by " : "with join token '",
               admit->admin[0] ? admit->admin : admit->token_id, admit->admin[0] ? "" : "'",
               admit->source, admit->member_id);
    admit->member_id = 0; /* the joiner's now */
    answer(admit, 0, json_pack("{s:i, s:o}", "exit", 0, "join", object));
}

/* --- the steps' answers --- */

static void on_call(void *data, const struct etcd_result *result)
{
    struct sync_admit *admit = data;
    struct etcd_error etcd_err;
    struct etcd_range range;
    struct etcd_header header;
    bool succeeded = false;
    char err[512];
    int parsed;
    enum admit_step step = admit->step;

    admit->call = NULL;
    if (result->error) {
        refuse(admit, "cluster_unavailable", "the cluster's store did not answer (%s)",
               result->message);
        return;
    }
    switch (admit->step) {
    case ADMIT_TOKEN:
    case ADMIT_CA:
    case ADMIT_REGISTRY:
        if (etcd_parse_range(result->body, result->body_len, &range, NULL, err, sizeof(err)) < 0) {
            refuse(admit, "failed", "the cluster's store answered what cannot be read: %s", err);
            return;
        }
        /* step, not admit->step: a refusal frees admit. */
        if (step == ADMIT_TOKEN) {
            if (token_checked(admit, &range))
                read_ca(admit);
        } else if (step == ADMIT_CA) {
            if (range.n_kvs != 1 || !(admit->ca_value = strndup((const char *)range.kvs[0].value,
                                                                range.kvs[0].value_len)))
                refuse(admit, "failed", "the cluster's store holds no cluster CA (spec/ca)");
            else
                read_prefix(admit, ADMIT_REGISTRY, "nodes/");
        } else {
            keep_registry(admit, &range);
            call(admit, ADMIT_MEMBERS, "/v3/cluster/member/list", json_object());
        }
        etcd_range_free(&range);
        return;
    case ADMIT_PROMOTE_WAITING:
        /* The waiting learner promoted: read the members again (it votes now). */
        if (result->http_status != 200) {
            refuse(admit, "conflict",
                   "the node waiting as a learner could not be promoted first (it may still be "
                   "catching up): try again in a moment");
            return;
        }
        call(admit, ADMIT_MEMBERS, "/v3/cluster/member/list", json_object());
        return;
    case ADMIT_MEMBERS:
    case ADMIT_ADD:
        parsed = etcd_parse_members(result->body, result->body_len, &admit->members, &etcd_err, err,
                                    sizeof(err));
        if (parsed < 0 && admit->step == ADMIT_ADD &&
            strstr(etcd_err.message, "unhealthy cluster") &&
            time(NULL) - admit->add_started < ADMIT_UNHEALTHY_RETRY_S) {
            struct timeval second = {1, 0};

            evtimer_add(admit->begin_ev, &second);
            return;
        }
        if (parsed < 0) {
            refuse(admit, admit->step == ADMIT_ADD ? "conflict" : "failed", "etcd %s: %s",
                   admit->step == ADMIT_ADD ? "did not add the node's member" : "member list",
                   etcd_err.message[0] ? etcd_err.message : err);
            return;
        }
        if (admit->step == ADMIT_MEMBERS) {
            make_room(admit);
            return;
        }
        admit->member_id = admit->members.added_id;
        if (!admit->member_id) {
            refuse(admit, "failed", "etcd added the member but did not say its id");
            return;
        }
        commit(admit);
        return;
    case ADMIT_COMMIT:
        if (etcd_parse_txn(result->body, result->body_len, &header, &succeeded, NULL, err,
                           sizeof(err)) < 0) {
            refuse(admit, "failed", "the cluster's store answered what cannot be read: %s", err);
            return;
        }
        if (!succeeded) {
            refuse(admit, "join_refused",
                   "the join token '%s' was used or deleted while this join ran, or the name "
                   "'%s' was taken: make a new token and join again",
                   admit->token_id, admit->node);
            return;
        }
        admitted(admit);
        return;
    }
}

/* --- the command --- */

/* An admission refused before it began: freed without answering (the caller answers, later). */
static void drop_early(struct sync_admit *admit)
{
    admit->done = NULL;
    admit_free(admit);
}

void cluster_sync_admit(struct agent *agent, const char *request, const char *source,
                        const char *admin, cluster_sync_done_fn done, void *data)
{
    struct cluster_sync *sync = sync_of(agent);
    struct sync_admit *admit;
    struct timeval now = {0, 0};
    char err[512];
    int decoded;

    if (!sync) {
        sync_answer_later(agent, done, data, 1,
                          sync_refusal("not_a_cluster",
                                       "this node's store is local: nodes join a cluster through "
                                       "one of its nodes"));
        return;
    }
    if (sync->admit) {
        sync_answer_later(agent, done, data, 1,
                          sync_refusal("busy", "another node is joining through this node: try "
                                               "again in a few seconds"));
        return;
    }
    admit = calloc(1, sizeof(*admit));
    if (!admit) {
        sync_answer_later(agent, done, data, 1, sync_refusal("failed", "out of memory"));
        return;
    }
    admit->sync = sync;
    admit->done = done;
    admit->data = data;
    snprintf(admit->source, sizeof(admit->source), "%s", source && *source ? source : "?");
    snprintf(admit->admin, sizeof(admit->admin), "%s", admin ? admin : "");
    decoded = join_request_decode(request, strlen(request), &admit->request, err, sizeof(err));
    if (decoded == 0 && !admin && !admit->request.token[0]) {
        drop_early(admit);
        sync_answer_later(agent, done, data, 1,
                          sync_refusal("join_refused",
                                       "a join needs a join token ('certvisorctl cluster token "
                                       "create' on a node of the cluster), or an "
                                       "administrator's name and password"));
        return;
    }
    if (decoded < 0 || (!admin && join_token_parse(admit->request.token, admit->token_id,
                                                   admit->secret, err, sizeof(err)) < 0)) {
        drop_early(admit);
        sync_answer_later(
            agent, done, data, 2,
            json_pack("{s:i, s:s, s:s}", "exit", 2, "reason", "invalid_request", "error", err));
        return;
    }
    spec_key_join(admit->token_key, sizeof(admit->token_key), sync->prefix, admit->token_id);
    admit->begin_ev = evtimer_new(agent->base, on_begin, admit);
    if (!admit->begin_ev || evtimer_add(admit->begin_ev, &now) < 0) {
        drop_early(admit);
        sync_answer_later(agent, done, data, 1, sync_refusal("failed", "out of memory"));
        return;
    }
    sync->admit = admit;
}

void cluster_sync_admit_forget(struct agent *agent, void *data)
{
    struct cluster_sync *sync = sync_of(agent);

    if (sync && sync->admit && sync->admit->data == data)
        sync->admit->done = NULL;
}

void sync_admit_stop(struct cluster_sync *sync)
{
    if (sync->admit)
        refuse(sync->admit, "shutting_down", "certvisord is stopping: the join did not complete");
}
