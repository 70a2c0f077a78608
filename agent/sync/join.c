/*
 * The joiner's side of a join (issue 17, sync.h): `certvisorctl cluster join <peer> --token
 * <id.secret> --ca-cert-hash sha256:<hex>` on a node whose store is local. In order, each step
 * only once the one before succeeded:
 *
 *   1. fetch the peer's cluster CA (GET /v1/join/ca, trusting nothing yet and sending nothing
 *      secret) and compare the SHA-256 of its public key with the hash given: a mismatch ends
 *      the join before the token has left this node;
 *   2. make keys and CSRs for the node's two internode certificates (an offload worker; the
 *      keys stay in the store as pending keys);
 *   3. POST the token and the CSRs to /v1/join/admit, over TLS verified against that CA; the
 *      peer answers with the node's name, its certificates, the members, the CA's value and
 *      the cluster's data key (admit.c);
 *   4. take the cluster CA (its key opened with the data key) as this node's, and keep the
 *      data key (a worker: fsync);
 *   5. apply the two internode certificates through the apply pipeline (with the pending keys);
 *   6. write state_dir/membership.json and reload the configuration: the cluster section now
 *      comes from it (conf_cluster.h), so the etcd member starts, joining the existing cluster,
 *      and the node follows the store;
 *   7. promote the etcd learner once it has caught up (asking the other members);
 *   8. answer once the node applied the cluster's certificates and policy (converge.c): what
 *      it generated for itself at its first start is replaced.
 *
 * A failure after step 3 undoes what was done: the learner is removed, the registry entry
 * deleted, the membership file removed and the configuration reloaded, the node's own CA made
 * current again and its internode certificates re-issued from it. The answer says which step
 * failed and why.
 */
#include "sync_impl.h"

#include "apply.h"
#include "cert_names.h"
#include "certs.h"
#include "config.h"
#include "fsutil.h"
#include "join_http.h"
#include "join_token.h"
#include "join_wire.h"
#include "log.h"
#include "monitor.h"
#include "offload.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define JOIN_HTTP_TIMEOUT_MS 10000
/* Admission waits for etcd to take a new member: up to 20 s after another node joined. */
#define JOIN_ADMIT_TIMEOUT_MS 45000
#define JOIN_PROMOTE_TIMEOUT_S 60 /* the learner catching up: etcd refuses a promotion before */
#define JOIN_APPLY_TIMEOUT_S 90   /* the first pass of the cluster's state on this node */

enum join_step {
    STEP_FETCH_CA,
    STEP_CSRS,
    STEP_ADMIT,
    STEP_TAKE_CA,
    STEP_CERTS,
    STEP_MEMBERSHIP,
    STEP_PROMOTE,
    STEP_APPLY,
};

static const char *const step_names[] = {
    "fetching the peer's cluster CA",      "making the internode keys and CSRs",
    "being admitted by the peer",          "taking the cluster CA",
    "applying the internode certificates", "joining the etcd cluster",
    "promoting this node's etcd member",   "applying the cluster's certificates and policy",
};

/* What an undo does next (undo_step()). */
enum undo_part { UNDO_MEMBER, UNDO_REGISTRY, UNDO_LOCAL, UNDO_DONE };

struct join_job;

struct cluster_join {
    struct agent *agent;
    cluster_sync_done_fn done; /* NULL once its caller went away */
    void *data;
    char who[128];
    char peer[JOIN_PEER_MAX];
    char token[24];
    char *authorization; /* "Basic ..." of an administrator's name and password, or NULL */
    char ca_hash[JOIN_CA_HASH_TEXT_LEN + 1];
    char address[JOIN_ADDRESS_MAX];
    int client_port, peer_port;
    enum join_step step;
    struct join_http *http;
    struct join_job *job;
    char *ca_pem; /* the peer's CA, pinned by its hash */
    char *csr[JOIN_N_CERTS];
    struct join_answer answer;
    bool admitted;
    char prefix[128];
    unsigned own_ca_generation; /* this node's CA before the join: made current again by undo */
    unsigned own_generation[JOIN_N_CERTS]; /* its internode certificates before: likewise */
    bool ca_taken, membership_written, undoing;
    enum undo_part undo_next;
    struct etcd_client *client; /* the other members, for the promotion and the undo */
    struct etcd_call *call;
    struct event *timer;
    time_t step_started;
    char failure[1400];
};

static void on_client_unused(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    etcd_client_free(arg);
}

/* Frees the join's client from the loop: the join may end inside one of its calls' callbacks,
 * which the client still uses once that callback returns. */
static void drop_client(struct cluster_join *join)
{
    struct timeval now = {0, 0};

    if (join->client && event_base_once(join->agent->base, -1, EV_TIMEOUT, on_client_unused,
                                        join->client, &now) < 0)
        log_error("Cluster: out of memory: a join's etcd client is not freed");
    join->client = NULL;
}

static void join_free(struct cluster_join *join)
{
    if (join->agent->join == join)
        join->agent->join = NULL;
    join_http_cancel(join->http);
    if (join->call)
        etcd_call_cancel(join->call);
    drop_client(join);
    if (join->timer)
        event_free(join->timer);
    free(join->ca_pem);
    if (join->authorization)
        OPENSSL_clear_free(join->authorization, strlen(join->authorization));
    for (size_t i = 0; i < JOIN_N_CERTS; i++)
        free(join->csr[i]);
    join_answer_clear(&join->answer);
    OPENSSL_cleanse(join, sizeof(*join));
    free(join);
}

static void job_orphan(struct join_job *job);

static void finish(struct cluster_join *join, int exit_status, json_t *reply)
{
    cluster_sync_done_fn done = join->done;
    void *data = join->data;

    if (join->job) /* it goes on without us: its end finds no join */
        job_orphan(join->job);
    join_free(join);
    sync_deliver(done, data, exit_status, reply);
}

static void undo(struct cluster_join *join);

/* The join failed at its current step: undone (when the peer admitted it), then answered. */
static void fail(struct cluster_join *join, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct cluster_join *join, const char *reason, const char *fmt, ...)
{
    char message[700];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    snprintf(join->failure, sizeof(join->failure), "joining through %s failed while %s: %s",
             join->peer, step_names[join->step], message);
    log_error("Cluster: %s", join->failure);
    if (join->admitted && !join->undoing) {
        join->undoing = true;
        undo(join);
        return;
    }
    /* Refused before admission: the keys made for the CSRs are of no use (a later 'certificate
     * set' without a key must not pair with them). */
    for (size_t i = 0; join->step >= STEP_ADMIT && !join->admitted && i < JOIN_N_CERTS; i++)
        certstore_drop_pending_key(join->agent->certs->store, join_cert_names[i]);
    finish(join, 1, sync_refusal(reason, join->failure));
}

/* --- offload jobs --- */

struct join_job {
    struct cluster_join *join; /* NULL once the join went away */
    void (*work)(struct join_job *job);
    void (*then)(struct cluster_join *join, struct join_job *job);
    int result;
    char err[512];
    /* the CSRs */
    struct certs_csr *csr[JOIN_N_CERTS];
    char *csr_pem[JOIN_N_CERTS];
    /* taking the CA */
    struct certstore_target target;
    char *ca_cert, *ca_key;
    size_t ca_cert_len, ca_key_len;
    unsigned ca_generation;
    unsigned char data_key[SEALED_KEY_BYTES];
    char key_path[PATH_MAX];
    char etcd_data[PATH_MAX];
    /* the membership file */
    char path[PATH_MAX];
    char *text;
};

static void job_orphan(struct join_job *job)
{
    job->join = NULL;
}

static void job_free(struct join_job *job)
{
    for (size_t i = 0; i < JOIN_N_CERTS; i++) {
        certs_csr_free(job->csr[i]);
        free(job->csr_pem[i]);
    }
    free(job->ca_cert);
    if (job->ca_key)
        OPENSSL_clear_free(job->ca_key, job->ca_key_len);
    free(job->text);
    OPENSSL_cleanse(job->data_key, sizeof(job->data_key));
    free(job);
}

static void run_job(void *data)
{
    struct join_job *job = data;

    job->work(job);
}

static void on_job_done(void *data, bool cancelled)
{
    struct join_job *job = data;
    struct cluster_join *join = job->join;

    if (join && !cancelled && join->job == job) {
        join->job = NULL;
        job->then(join, job);
    }
    job_free(job);
}

static void submit(struct cluster_join *join, struct join_job *job)
{
    job->join = join;
    if (offload_submit(join->agent->offload, run_job, on_job_done, job) < 0) {
        job_free(job);
        fail(join, "failed", "out of memory");
        return;
    }
    join->job = job;
}

/* --- 1. the peer's CA --- */

static void on_csrs(struct cluster_join *join, struct join_job *job);

static void make_csrs_work(struct join_job *job)
{
    for (size_t i = 0; i < JOIN_N_CERTS && job->result == 0; i++)
        job->result = certs_csr_make(job->csr[i], &job->csr_pem[i], job->err, sizeof(job->err));
}

static void make_csrs(struct cluster_join *join)
{
    struct join_job *job = calloc(1, sizeof(*job));
    const char *sans[2];
    size_t n_sans = join_node_addresses(join->address, sans);
    char err[512] = "out of memory";
    int r = job ? 0 : -ENOMEM;

    join->step = STEP_CSRS;
    for (size_t i = 0; r == 0 && i < JOIN_N_CERTS; i++)
        r = certs_csr_new(join->agent->certs, &join->agent->config->certs, join_cert_names[i], NULL,
                          sans, n_sans, &job->csr[i], err, sizeof(err));
    if (r < 0) {
        if (job)
            job_free(job);
        fail(join, "failed", "%s", err);
        return;
    }
    job->work = make_csrs_work;
    job->then = on_csrs;
    submit(join, job);
}

/* The error an API answer carries, or a description of the status. */
static void peer_message(const struct join_http_result *result, char *buf, size_t len)
{
    json_t *body = json_loadb(result->body, result->body_len, 0, NULL);
    const char *message = json_string_value(json_object_get(body, "message"));

    if (message)
        snprintf(buf, len, "%s (HTTP %d)", message, result->http_status);
    else
        snprintf(buf, len, "HTTP %d from %s", result->http_status, "the peer");
    json_decref(body);
}

static void on_ca(void *data, const struct join_http_result *result)
{
    struct cluster_join *join = data;
    char hash[JOIN_CA_HASH_TEXT_LEN + 1], err[512];

    join->http = NULL;
    if (result->error) {
        fail(join, "peer_unreachable", "%s did not answer over TLS: %s", join->peer,
             result->message);
        return;
    }
    if (result->http_status != 200) {
        peer_message(result, err, sizeof(err));
        fail(join, "peer_refused", "%s", err);
        return;
    }
    join->ca_pem = join_ca_answer_pem(result->body, result->body_len);
    if (!join->ca_pem || join_ca_cert_hash(join->ca_pem, strlen(join->ca_pem), hash, sizeof(hash),
                                           err, sizeof(err)) < 0) {
        fail(join, "peer_refused",
             "%s answered no cluster CA on /v1/join/ca: is it a certvisor "
             "node's REST API?",
             join->peer);
        return;
    }
    if (strcasecmp(hash, join->ca_hash) != 0) {
        fail(join, "ca_mismatch",
             "the peer's cluster CA has the public key hash %s, not the %s given: it is not "
             "the cluster the token was made for (or the hash was mistyped); nothing was sent "
             "to it",
             hash, join->ca_hash);
        return;
    }
    if (!join->address[0])
        snprintf(join->address, sizeof(join->address), "%.47s", result->local_address);
    if (!join->address[0]) {
        fail(join, "failed",
             "this node's address toward the peer is not known: give it with --address");
        return;
    }
    log_info("Cluster: %s holds the cluster CA %s; joining as %s", join->peer, hash, join->address);
    make_csrs(join);
}

/* --- 3. admitted by the peer --- */

static void take_ca(struct cluster_join *join);

static void on_admit(void *data, const struct join_http_result *result)
{
    struct cluster_join *join = data;
    char err[700];

    join->http = NULL;
    if (result->error) {
        fail(join, "peer_unreachable", "%s did not answer: %s", join->peer, result->message);
        return;
    }
    if (result->http_status != 200) {
        peer_message(result, err, sizeof(err));
        fail(join, result->http_status == 403 ? "join_refused" : "peer_refused", "%s", err);
        return;
    }
    if (join_answer_decode(result->body, result->body_len, &join->answer, err, sizeof(err)) < 0) {
        fail(join, "peer_refused", "%s", err);
        return;
    }
    join->admitted = true;
    spec_prefix(join->prefix, sizeof(join->prefix), join->answer.cluster); /* a name fits */
    log_notice("Cluster: admitted to cluster '%s' as node '%s' by %s (etcd learner %" PRIx64
               ", %zu members)",
               join->answer.cluster, join->answer.node, join->peer, join->answer.member_id,
               join->answer.n_members);
    take_ca(join);
}

static void on_csrs(struct cluster_join *join, struct join_job *job)
{
    struct join_request request = {.client_port = join->client_port, .peer_port = join->peer_port};
    char err[512], *body;

    if (job->result < 0) {
        fail(join, "failed", "%s", job->err);
        return;
    }
    snprintf(request.token, sizeof(request.token), "%s", join->token);
    snprintf(request.address, sizeof(request.address), "%s", join->address);
    for (size_t i = 0; i < JOIN_N_CERTS; i++)
        request.csr[i] = job->csr_pem[i];
    body = join_request_encode(&request);
    OPENSSL_cleanse(request.token, sizeof(request.token));
    join->step = STEP_ADMIT;
    join->http = body
                     ? join_http_request_as(join->agent->base, join->peer, join->ca_pem,
                                            join->authorization, "/v1/join/admit", body,
                                            JOIN_ADMIT_TIMEOUT_MS, on_admit, join, err, sizeof(err))
                     : NULL;
    if (body)
        OPENSSL_clear_free(body, strlen(body));
    if (!join->http)
        fail(join, "failed", "%s", body ? err : "out of memory");
}

/* --- 4. the cluster CA and the data key --- */

static void take_ca_work(struct join_job *job)
{
    job->result = certstore_stage_at(&job->target, CERT_CLUSTER_CA, job->ca_cert, job->ca_cert_len,
                                     job->ca_key, job->ca_key_len, false, "cluster",
                                     &job->ca_generation, job->err, sizeof(job->err));
    if (job->result == 0 && unlink(job->key_path) < 0 && errno != ENOENT) {
        job->result = -errno;
        snprintf(job->err, sizeof(job->err), "cannot replace %.300s: %s", job->key_path,
                 strerror(errno));
    }
    if (job->result == 0)
        job->result = sealed_key_write(job->key_path, job->data_key, job->err, sizeof(job->err));
    /* An etcd data directory from before is another cluster's (or none's): the member joins
     * empty, and catches up from the others. */
    if (job->result == 0 && (job->result = fs_remove_tree(job->etcd_data)) < 0)
        snprintf(job->err, sizeof(job->err), "cannot empty %.300s: %s", job->etcd_data,
                 strerror(-job->result));
}

static void apply_internode(struct cluster_join *join);

static void on_ca_taken(struct cluster_join *join, struct join_job *job)
{
    struct agent *agent = join->agent;
    char err[512];

    if (job->result < 0) {
        fail(join, "failed", "%s", job->err);
        return;
    }
    if (certstore_commit(agent->certs->store, CERT_CLUSTER_CA, job->ca_generation, err,
                         sizeof(err)) < 0 ||
        certs_export_ca(agent->certs, err, sizeof(err)) < 0) {
        fail(join, "failed", "%s", err);
        return;
    }
    join->ca_taken = true;
    apply_internode(join);
}

static void take_ca(struct cluster_join *join)
{
    struct agent *agent = join->agent;
    struct join_job *job = calloc(1, sizeof(*job));
    char key[SYNC_MAX_KEY_LEN], err[512] = "out of memory", given[JOIN_CA_HASH_TEXT_LEN + 1];
    struct spec_cert ca = {0};
    unsigned char *opened = NULL;
    size_t opened_len = 0;
    int r = job ? 0 : -ENOMEM;

    join->step = STEP_TAKE_CA;
    snprintf(key, sizeof(key), "%sspec/ca/current", join->prefix);
    if (r == 0)
        r = spec_cert_decode(join->answer.ca_value, strlen(join->answer.ca_value), &ca, err,
                             sizeof(err));
    if (r == 0 &&
        (!ca.sealed_key ||
         join_ca_cert_hash(ca.cert_pem, ca.cert_len, given, sizeof(given), err, sizeof(err)) < 0 ||
         strcasecmp(given, join->ca_hash) != 0)) {
        snprintf(err, sizeof(err), "the CA the peer sent is not the one its hash pinned");
        r = -EINVAL;
    }
    if (r == 0)
        r = sealed_open(join->answer.data_key, key, strlen(key), ca.sealed_key, ca.sealed_len,
                        &opened, &opened_len, err, sizeof(err));
    if (r == 0 &&
        certstore_current(agent->certs->store, CERT_CLUSTER_CA, &join->own_ca_generation) < 0)
        join->own_ca_generation = 0;
    for (size_t i = 0; r == 0 && i < JOIN_N_CERTS; i++)
        if (certstore_current(agent->certs->store, join_cert_names[i], &join->own_generation[i]) <
            0)
            join->own_generation[i] = 0;
    if (r == 0) {
        certstore_target_of(agent->certs->store, &job->target);
        job->ca_cert = strndup(ca.cert_pem, ca.cert_len);
        job->ca_cert_len = ca.cert_len;
        job->ca_key = strndup((const char *)opened, opened_len);
        job->ca_key_len = opened_len;
        memcpy(job->data_key, join->answer.data_key, sizeof(job->data_key));
        sync_data_key_path(agent, job->key_path, sizeof(job->key_path));
        sync_etcd_data_path(agent, job->etcd_data, sizeof(job->etcd_data));
        if (!job->ca_cert || !job->ca_key)
            r = -ENOMEM;
    }
    if (opened)
        sealed_free(opened, opened_len);
    spec_cert_clear(&ca);
    if (r < 0) {
        if (job)
            job_free(job);
        fail(join, "failed", "%s", r == -ENOMEM ? "out of memory" : err);
        return;
    }
    job->work = take_ca_work;
    job->then = on_ca_taken;
    submit(join, job);
}

/* --- 5. the internode certificates --- */

static void write_membership(struct cluster_join *join);

static void on_internode_applied(void *data, int exit_status, json_t *reply)
{
    struct cluster_join *join = data;
    const char *error = json_string_value(json_object_get(reply, "error"));

    if (exit_status != 0)
        fail(join, "failed", "%s", error ? error : "the apply pipeline refused them");
    else
        write_membership(join);
    json_decref(reply);
}

static void apply_internode(struct cluster_join *join)
{
    struct apply_pair_input pairs[JOIN_N_CERTS];
    struct apply_request *request;

    join->step = STEP_CERTS;
    for (size_t i = 0; i < JOIN_N_CERTS; i++)
        pairs[i] = (struct apply_pair_input){join_cert_names[i], join->answer.cert[i],
                                             strlen(join->answer.cert[i]), NULL, 0};
    request = apply_certificates(pairs, JOIN_N_CERTS, "cluster");
    if (!request) {
        fail(join, "failed", "out of memory");
        return;
    }
    apply_submit(join->agent, request, join->who, false, on_internode_applied, join);
}

/* --- 6. the membership file, and the reload that starts the etcd member --- */

static void membership_work(struct join_job *job)
{
    job->result =
        fs_write_atomic(job->path, job->text, strlen(job->text), 0644, job->err, sizeof(job->err));
}

static void on_reloaded(void *data, int exit_status, json_t *reply);

static void on_membership_written(struct cluster_join *join, struct join_job *job)
{
    struct apply_request *request;

    if (job->result < 0) {
        fail(join, "failed", "%s", job->err);
        return;
    }
    join->membership_written = true;
    request = apply_config();
    if (!request) {
        fail(join, "failed", "out of memory");
        return;
    }
    apply_submit(join->agent, request, join->who, false, on_reloaded, join);
}

static void write_membership(struct cluster_join *join)
{
    struct join_membership m = {.member_id = join->answer.member_id};
    struct join_job *job = calloc(1, sizeof(*job));

    join->step = STEP_MEMBERSHIP;
    snprintf(m.cluster, sizeof(m.cluster), "%s", join->answer.cluster);
    snprintf(m.uid, sizeof(m.uid), "%s", join->answer.uid);
    snprintf(m.node, sizeof(m.node), "%s", join->answer.node);
    snprintf(m.peer, sizeof(m.peer), "%s", join->peer);
    memcpy(m.members, join->answer.members, sizeof(m.members));
    m.n_members = join->answer.n_members;
    if (!job || !(job->text = join_membership_encode(&m))) {
        if (job)
            job_free(job);
        fail(join, "failed", "out of memory");
        return;
    }
    conf_cluster_membership_path(join->agent->config->state_dir, job->path, sizeof(job->path));
    job->work = membership_work;
    job->then = on_membership_written;
    submit(join, job);
}

/* --- 7. the promotion, asking the members that vote already --- */

static int other_members_client(struct cluster_join *join, char *err, size_t err_len)
{
    struct etcd_client_config ec = {.deadline_ms = 5000};
    static char endpoints[JOIN_MAX_MEMBERS][JOIN_PEER_MAX];
    struct etcd_node_files files;

    for (size_t i = 0; i < join->answer.n_members && ec.n_endpoints < ETCD_MAX_ENDPOINTS; i++) {
        const struct join_member *m = &join->answer.members[i];

        if (strcmp(m->name, join->answer.node) == 0)
            continue;
        cluster_host_port(m->address, m->client_port, endpoints[ec.n_endpoints],
                          sizeof(endpoints[0]));
        ec.endpoints[ec.n_endpoints] = endpoints[ec.n_endpoints];
        ec.n_endpoints++;
    }
    etcd_node_files(join->agent->config->state_dir, &files, &ec);
    return etcd_client_new(join->agent->base, &ec, &join->client, err, err_len);
}

static void promote(struct cluster_join *join);

static void on_timer(evutil_socket_t fd, short what, void *arg);

static void again_in(struct cluster_join *join, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    evtimer_add(join->timer, &tv);
}

static void applying(struct cluster_join *join)
{
    join->step = STEP_APPLY;
    join->step_started = time(NULL);
    again_in(join, 200);
}

static void on_promoted(void *data, const struct etcd_result *result)
{
    struct cluster_join *join = data;
    struct etcd_members members;
    struct etcd_error etcd_err;
    char err[512];

    join->call = NULL;
    if (!result->error && etcd_parse_members(result->body, result->body_len, &members, &etcd_err,
                                             err, sizeof(err)) == 0) {
        log_notice("Cluster: node '%s' is a voting member of cluster '%s'", join->answer.node,
                   join->answer.cluster);
        applying(join);
        return;
    }
    if (time(NULL) - join->step_started >= JOIN_PROMOTE_TIMEOUT_S) {
        fail(join, "failed", "etcd did not promote the member within %d s: %s",
             JOIN_PROMOTE_TIMEOUT_S,
             result->error         ? result->message
             : etcd_err.message[0] ? etcd_err.message
                                   : err);
        return;
    }
    /* "can only promote a learner member which is in sync with leader": not yet. */
    again_in(join, 500);
}

/* Whether this node votes: every node up to 3, then 3 voters, and 5 from 5 nodes. */
static void on_listed(void *data, const struct etcd_result *result)
{
    struct cluster_join *join = data;
    struct etcd_members members;
    struct etcd_error etcd_err;
    const struct etcd_member *self;
    char err[512];
    size_t voters;

    join->call = NULL;
    if (result->error || etcd_parse_members(result->body, result->body_len, &members, &etcd_err,
                                            err, sizeof(err)) < 0) {
        if (time(NULL) - join->step_started >= JOIN_PROMOTE_TIMEOUT_S)
            fail(join, "failed", "etcd's member list: %s", result->error ? result->message : err);
        else
            again_in(join, 500);
        return;
    }
    voters = etcd_members_voters(&members, NULL);
    self = etcd_member_by_id(&members, join->answer.member_id);
    if (self && !self->learner) {
        applying(join);
        return;
    }
    if ((int)voters >= membership_target_voters(members.n)) {
        log_notice("Cluster: node '%s' stays a learner (a copy of the store that does not "
                   "vote): %zu of the cluster's %zu nodes vote",
                   join->answer.node, voters, members.n);
        applying(join);
        return;
    }
    join->call = etcd_call(join->client, "/v3/cluster/member/promote",
                           etcd_member_id_request(join->answer.member_id), on_promoted, join);
    if (!join->call)
        fail(join, "failed", "out of memory");
}

static void promote(struct cluster_join *join)
{
    join->call = etcd_call(join->client, "/v3/cluster/member/list", json_object(), on_listed, join);
    if (!join->call)
        fail(join, "failed", "out of memory");
}

static void on_reloaded(void *data, int exit_status, json_t *reply)
{
    struct cluster_join *join = data;
    const char *error = json_string_value(json_object_get(reply, "error"));
    char err[512];

    if (exit_status != 0) {
        fail(join, "failed", "the configuration reload failed: %s", error ? error : "?");
    } else if (other_members_client(join, err, sizeof(err)) < 0) {
        fail(join, "failed", "%s", err);
    } else {
        join->step = STEP_PROMOTE;
        join->step_started = time(NULL);
        again_in(join, 500);
    }
    json_decref(reply);
}

/* --- 8. the cluster's state applied here --- */

static void check_applied(struct cluster_join *join)
{
    struct cluster_sync *sync = join->agent->sync;
    json_t *members;

    if (sync && sync->state == SYNC_INITIALISED && sync->in_step && !sync->reconcile_failed &&
        sync->applied_revision > 0 && !sync->last_error[0]) {
        members = json_array();
        for (size_t i = 0; i < join->answer.n_members; i++)
            json_array_append_new(members, json_string(join->answer.members[i].name));
        log_notice("Cluster: node '%s' joined cluster '%s' through %s and applied its state "
                   "(revision %" PRId64 ")",
                   join->answer.node, join->answer.cluster, join->peer, sync->applied_revision);
        finish(join, 0,
               json_pack("{s:i, s:s, s:s, s:s, s:o, s:I}", "exit", 0, "cluster",
                         join->answer.cluster, "node", join->answer.node, "peer", join->peer,
                         "members", members, "revision", (json_int_t)sync->applied_revision));
        return;
    }
    if (time(NULL) - join->step_started >= JOIN_APPLY_TIMEOUT_S) {
        /* The node is a member: undoing it now would be worse than telling. */
        char message[1400];

        snprintf(message, sizeof(message),
                 "node '%s' joined cluster '%s', but has not applied the cluster's state within "
                 "%d s: %s; it keeps trying (see 'certvisorctl cluster status')",
                 join->answer.node, join->answer.cluster, JOIN_APPLY_TIMEOUT_S,
                 sync && sync->last_error[0]    ? sync->last_error
                 : sync && sync->state_error[0] ? sync->state_error
                                                : "the store has not been read yet");
        finish(join, 1, sync_refusal("not_applied", message));
        return;
    }
    again_in(join, 200);
}

static void undo_step(struct cluster_join *join);

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct cluster_join *join = arg;

    (void)fd;
    (void)what;
    if (join->undoing)
        undo_step(join);
    else if (join->step == STEP_PROMOTE)
        promote(join);
    else if (join->step == STEP_APPLY)
        check_applied(join);
}

/* --- undo --- */

/*
 * In order: the learner removed and the registry entry deleted (through the other members,
 * once this node has the certificate they take), the membership file removed and the
 * configuration reloaded, the node's own CA made current again and its internode
 * certificates re-issued from it. Each part is best effort: what could not be undone is said.
 */

static void undo_answer(struct cluster_join *join, const char *left)
{
    char message[2000];

    snprintf(message, sizeof(message), "%s; %s", join->failure,
             left && *left ? left : "what the join had done was undone");
    finish(join, 1, sync_refusal("join_failed", message));
}

/* The internode certificates from before the join, applied again (the peer's chain to a CA
 * this node no longer holds), so that the services that use them reload with them. */
static void restore_internode(struct cluster_join *join)
{
    struct certstore *store = join->agent->certs->store;
    struct apply_pair_input pairs[JOIN_N_CERTS];
    char *cert[JOIN_N_CERTS] = {0}, *key[JOIN_N_CERTS] = {0};
    size_t cert_len[JOIN_N_CERTS] = {0}, key_len[JOIN_N_CERTS] = {0}, n = 0;
    struct apply_request *request;

    for (size_t i = 0; i < JOIN_N_CERTS; i++) {
        if (!join->own_generation[i] ||
            certstore_read_cert(store, join_cert_names[i], join->own_generation[i], &cert[n],
                                &cert_len[n]) < 0 ||
            certstore_read_key(store, join_cert_names[i], join->own_generation[i], &key[n],
                               &key_len[n]) < 0) {
            free(cert[n]);
            cert[n] = NULL;
            continue;
        }
        pairs[n] =
            (struct apply_pair_input){join_cert_names[i], cert[n], cert_len[n], key[n], key_len[n]};
        n++;
    }
    request = n ? apply_certificates(pairs, n, "generated") : NULL;
    if (request)
        apply_submit(join->agent, request, join->who, false, NULL, NULL);
    for (size_t i = 0; i < n; i++) {
        free(cert[i]);
        OPENSSL_clear_free(key[i], key_len[i]);
    }
}

static void on_undo_reload(void *data, int exit_status, json_t *reply)
{
    struct cluster_join *join = data;

    json_decref(reply);
    (void)exit_status;
    if (join->ca_taken)
        restore_internode(join);
    undo_answer(join, NULL);
}

static void undo_local(struct cluster_join *join)
{
    struct agent *agent = join->agent;
    char path[PATH_MAX], err[512];
    struct apply_request *reload;

    drop_client(join);
    if (join->ca_taken && join->own_ca_generation &&
        (certstore_commit(agent->certs->store, CERT_CLUSTER_CA, join->own_ca_generation, err,
                          sizeof(err)) < 0 ||
         certs_export_ca(agent->certs, err, sizeof(err)) < 0))
        log_error("Cluster: undoing the join: this node's own CA could not be restored: %s", err);
    if (!join->membership_written) {
        on_undo_reload(join, 0, NULL);
        return;
    }
    conf_cluster_membership_path(agent->config->state_dir, path, sizeof(path));
    if (unlink(path) < 0 && errno != ENOENT)
        log_error("Cluster: undoing the join: cannot remove %s: %s", path, strerror(errno));
    reload = apply_config();
    if (!reload) {
        undo_answer(join, "the configuration could not be reloaded: run 'certvisorctl reload'");
        return;
    }
    apply_submit(agent, reload, join->who, false, on_undo_reload, join);
}

static void on_undo_call(void *data, const struct etcd_result *result)
{
    struct cluster_join *join = data;

    join->call = NULL;
    /* undo_next is the part after the one this call did. */
    if (result->error || result->http_status != 200)
        log_error("Cluster: undoing the join: %s did not succeed: %s",
                  join->undo_next == UNDO_REGISTRY ? "removing its etcd member"
                                                   : "deleting its registry entry",
                  result->error ? result->message : result->body);
    undo_step(join);
}

static void undo_step(struct cluster_join *join)
{
    char key[SYNC_MAX_KEY_LEN];

    switch (join->undo_next) {
    case UNDO_MEMBER:
        join->undo_next = UNDO_REGISTRY;
        if (join->client) {
            join->call =
                etcd_call(join->client, "/v3/cluster/member/remove",
                          etcd_member_id_request(join->answer.member_id), on_undo_call, join);
            if (join->call)
                return;
        }
        /* fall through */
    case UNDO_REGISTRY:
        join->undo_next = UNDO_LOCAL;
        if (join->client) {
            spec_key_node(key, sizeof(key), join->prefix, join->answer.node);
            join->call =
                etcd_call(join->client, "/v3/kv/deleterange",
                          etcd_delete_request(key, strlen(key), NULL, 0), on_undo_call, join);
            if (join->call)
                return;
        }
        /* fall through */
    case UNDO_LOCAL:
        join->undo_next = UNDO_DONE;
        undo_local(join);
        return;
    case UNDO_DONE:
        return;
    }
}

static void undo(struct cluster_join *join)
{
    char err[512];

    if (join->call) {
        etcd_call_cancel(join->call);
        join->call = NULL;
    }
    evtimer_del(join->timer);
    join->undo_next = UNDO_MEMBER;
    if (!join->client && join->ca_taken && other_members_client(join, err, sizeof(err)) < 0)
        log_error("Cluster: undoing the join: cannot reach the cluster's members: %s", err);
    if (!join->client)
        log_error("Cluster: undoing the join: node '%s' stays registered in cluster '%s' "
                  "(etcd member %" PRIx64 "): remove it from a node of the cluster",
                  join->answer.node, join->answer.cluster, join->answer.member_id);
    undo_step(join);
}

/* --- the command --- */

/* "Basic <base64 of user:password>" (malloc'd, to wipe), or NULL. */
static char *basic_authorization(const char *user, const char *password)
{
    size_t plain_len = strlen(user) + 1 + strlen(password);
    char *plain = malloc(plain_len + 1), *header = malloc(6 + 4 * ((plain_len + 2) / 3) + 1);

    if (plain && header) {
        snprintf(plain, plain_len + 1, "%s:%s", user, password);
        memcpy(header, "Basic ", 6);
        EVP_EncodeBlock((unsigned char *)header + 6, (const unsigned char *)plain, (int)plain_len);
    } else {
        free(header);
        header = NULL;
    }
    if (plain)
        OPENSSL_clear_free(plain, plain_len + 1);
    return header;
}

static bool hash_form(const char *text)
{
    if (strncasecmp(text, "sha256:", 7) != 0 || strlen(text) != JOIN_CA_HASH_TEXT_LEN)
        return false;
    for (const char *p = text + 7; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F')))
            return false;
    return true;
}

int cluster_join_check(const struct cluster_join_args *args, char *err, size_t err_len)
{
    char id[JOIN_TOKEN_ID_LEN + 1], secret[JOIN_TOKEN_SECRET_LEN + 1], address[64];
    int port, r;

    if (join_http_split_peer(args->peer, 9443, address, sizeof(address), &port) < 0) {
        snprintf(err, err_len,
                 "'%s' is not <IP address>:<port> of a node of the cluster (its REST API, 9443 "
                 "by default; a name is not resolved)",
                 args->peer);
        return -EINVAL;
    }
    if ((args->token != NULL) == (args->user != NULL)) {
        snprintf(err, err_len,
                 "give --token (as 'certvisorctl cluster token create' printed it) or --user "
                 "(an administrator of the cluster's REST API), not %s",
                 args->token ? "both" : "neither");
        return -EINVAL;
    }
    if (args->user && (!args->password || !*args->user || strlen(args->user) > 64 ||
                       strchr(args->user, ':') || strlen(args->password) > 1024)) {
        snprintf(err, err_len,
                 "--user takes an administrator's name (at most 64 bytes, no "
                 "':'), with the password (at most 1024 bytes)");
        return -EINVAL;
    }
    r = args->token ? join_token_parse(args->token, id, secret, err, err_len) : 0;
    OPENSSL_cleanse(secret, sizeof(secret));
    if (r < 0)
        return r;
    if (!args->ca_hash || !hash_form(args->ca_hash)) {
        snprintf(err, err_len,
                 "--ca-cert-hash takes sha256:<64 hex digits>, as 'certvisorctl cluster token "
                 "create' printed it (the cluster CA's public key hash: the join checks the "
                 "peer against it before it sends the token)");
        return -EINVAL;
    }
    if (args->address && args->address[0] &&
        join_http_split_peer(args->address, 1, address, sizeof(address), &port) < 0) {
        snprintf(err, err_len, "--address '%s' is not an IP address", args->address);
        return -EINVAL;
    }
    if (args->client_port < 1 || args->client_port > 65535 || args->peer_port < 1 ||
        args->peer_port > 65535 || args->client_port == args->peer_port) {
        snprintf(err, err_len,
                 "--client-port and --peer-port are two different ports (1 to "
                 "65535)");
        return -EINVAL;
    }
    return 0;
}

void cluster_join(struct agent *agent, const struct cluster_join_args *args, const char *who,
                  cluster_sync_done_fn done, void *data)
{
    const struct cluster_settings *cluster = &agent->config->cluster;
    struct cluster_join *join;
    char err[512];

    if (cluster_join_check(args, err, sizeof(err)) < 0) {
        sync_answer_later(agent, done, data, 2,
                          json_pack("{s:i, s:s, s:s}", "exit", 2, "reason", "usage", "error", err));
        return;
    }
    if (cluster->store != CLUSTER_STORE_LOCAL) {
        snprintf(err, sizeof(err),
                 "this node is already a node of cluster '%s' (store etcd%s): a node joins once",
                 cluster->name, cluster->joined ? ", joined" : ", in certvisor.conf");
        sync_answer_later(agent, done, data, 1, sync_refusal("already_member", err));
        return;
    }
    if (agent->join) {
        sync_answer_later(agent, done, data, 1,
                          sync_refusal("busy", "this node is joining a cluster already"));
        return;
    }
    join = calloc(1, sizeof(*join));
    if (!join || !(join->timer = evtimer_new(agent->base, on_timer, join))) {
        free(join);
        sync_answer_later(agent, done, data, 1, sync_refusal("failed", "out of memory"));
        return;
    }
    join->agent = agent;
    join->done = done;
    join->data = data;
    snprintf(join->who, sizeof(join->who), "%s", who ? who : "?");
    snprintf(join->peer, sizeof(join->peer), "%s", args->peer);
    snprintf(join->token, sizeof(join->token), "%s", args->token ? args->token : "");
    if (args->user && !(join->authorization = basic_authorization(args->user, args->password))) {
        join_free(join);
        sync_answer_later(agent, done, data, 1, sync_refusal("failed", "out of memory"));
        return;
    }
    snprintf(join->ca_hash, sizeof(join->ca_hash), "%s", args->ca_hash);
    for (char *p = join->ca_hash; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
    if (args->address && args->address[0])
        snprintf(join->address, sizeof(join->address), "%s", args->address);
    join->client_port = args->client_port;
    join->peer_port = args->peer_port;
    agent->join = join;
    join->step = STEP_FETCH_CA;
    log_notice("Cluster: %s asked to join the cluster of %s", join->who, join->peer);
    join->http = join_http_request(agent->base, join->peer, NULL, "/v1/join/ca", NULL,
                                   JOIN_HTTP_TIMEOUT_MS, on_ca, join, err, sizeof(err));
    if (!join->http) {
        join->done = NULL;
        join_free(join);
        sync_answer_later(agent, done, data, 1, sync_refusal("failed", err));
    }
}

void cluster_join_forget(struct agent *agent, void *data)
{
    if (agent->join && agent->join->data == data)
        agent->join->done = NULL;
}

void cluster_join_stop(struct agent *agent)
{
    if (agent->join)
        finish(agent->join, 1,
               sync_refusal("shutting_down", "certvisord is stopping: the join did not "
                                             "complete"));
}
