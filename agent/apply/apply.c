/* The one pipeline every change goes through: validate, stage, render, plan, execute, roll back. */
#include "apply.h"

#include "apply_hooks.h"
#include "audit.h"
#include "cert_info.h"
#include "cert_names.h"
#include "certs.h"
#include "config.h"
#include "cv_error.h"
#include "external.h"
#include "log.h"
#include "offload.h"
#include "published.h"
#include "reconfigure.h"
#include "request.h"
#include "render_files.h"
#include "service.h"
#include "stapling.h"
#include "supervisor.h"
#include "text_diff.h"
#include "render_trust.h"
#include "trust.h"
#include "x509_check.h"

#include <event2/event.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GENERATIONS_KEPT 2 /* older generations kept for rollback by hand */
/* No fixed wait: an idle queue starts at once, and what arrives while a batch runs becomes the
 * next batch (group commit), so a burst still shares plans without every change paying a wait.
 * Tests widen it (CERTVISOR_TEST_COALESCE_MS) to gather a burst deterministically. */
#define COALESCE_WINDOW_MS 0
/*
 * Generations staged at once on the offload workers. One: the other worker
 * stays free for sign-ins, which would otherwise queue behind every key of a
 * rotation (seconds each for RSA-4096) and time out; see docs/design.md.
 */
#define STAGE_IN_FLIGHT 1

struct apply_run;

/*
 * What a run's stage jobs share with it: each job and the run hold a
 * reference, so whichever goes last frees it, and a job that comes back after
 * its run is gone (run NULL) only frees itself. Touched on the loop only.
 */
struct stage_wait {
    struct apply_run *run;
    size_t refs;
};

/*
 * One new generation, staged on an offload worker (agent/core/offload.h): the key
 * and certificate made there first for a rotation (issuer), or the given pair
 * copied in. The worker touches only the job: copies of the PEM data, of the
 * issuer's CA and names, and of where the store is.
 */
struct stage_job {
    struct stage_wait *wait;
    size_t change;    /* its index in the run's changes, stable while jobs are out */
    const char *name; /* static storage (cert_names[]) */
    struct certstore_target target;
    struct certs_issuer *issuer; /* ROTATE: issue first; NULL: the pair below is given */
    char *cert_pem;
    size_t cert_len;
    char *key_pem; /* NULL: a CA bundle; wiped on free */
    size_t key_len;
    char origin[32];
    /* what the worker hands back */
    int result;
    unsigned generation;
    char fingerprint[96];
    char message[512];
};

/* One certificate a batch replaces or removes. */
struct cert_change {
    struct apply_request *request;
    const char *name;
    bool removed;
    bool staged; /* a new generation exists that is not current (discarded unless committed) */
    unsigned generation;
    bool had_current;
    unsigned old_generation;
    bool staged_was_committed; /* committed by this run: a rollback puts the old one back */
    bool used_pending_key;
    char old_fingerprint[96];
    struct stage_job *job; /* prepared, not yet handed to a worker */
    json_t *entry;         /* its line in the request's changes (borrowed): "new" comes back */
};

/* The state of the batch being carried out. */
struct apply_run {
    struct agent *agent;
    struct apply_request *requests[BATCH_MAX];
    size_t n_requests;
    size_t accepted; /* requests not refused */
    bool dry_run;
    struct stage_wait *wait; /* while generations are staged on the offload workers */
    size_t n_staging;        /* of those, the jobs not back yet */
    size_t next_stage;       /* the change whose job is handed out next */
    struct cert_change changes[RENDER_OVERRIDES_MAX];
    size_t n_changes;
    bool committed; /* the new generations are current */
    struct render_override override;
    bool policy_change;
    struct policy new_policy;
    struct policy old_policy;
    bool policy_swapped;
    struct agent_config *new_config; /* CONFIG, until it is put into force */
    struct trust_batch trust;        /* the trust lists it changes (agent/pki/trust.h) */
    struct rendered_set rendered;
    struct service **steps; /* affected services, dependency order */
    size_t n_steps;
    size_t current_step;
    bool rolling_back;
    char failure[1024];
    json_t *done_services;      /* names reloaded or restarted */
    json_t *restarted_services; /* those of them restarted: they have no reload */
};

struct apply_queue {
    struct apply_request *head;
    struct apply_request *tail;
    struct apply_run *running;
    struct event *window;                /* the coalescing window before a batch starts */
    struct published_answers *published; /* callers waiting for the cluster's nodes */
};

static void run_next(struct agent *agent);

static void answer(struct apply_request *request, int exit_status, json_t *reply)
{
    if (request->done)
        request->done(request->data, exit_status, reply);
    else
        json_decref(reply);
    request->done = NULL;
    request->answered = true;
}

/* The reason a refusal carries for an error code (apply.h lists them). */
static const char *reason_of(int r)
{
    switch (r) {
    case CV_ECERT_EXPIRED:
        return "expired";
    case CV_EUNKNOWN_CERT:
        return "unknown_certificate";
    case CV_EINVALID_CERT:
        return "invalid_certificate";
    case CV_EINVALID_TLS:
        return "invalid_setting";
    case CV_EUSAGE:
        return "usage";
    case CV_ECONFIG:
        return "invalid_configuration";
    default:
        return "failed";
    }
}

/* Refused, or failed and rolled back: no audit line of a change, a log line for context. */
static void refuse_with(struct apply_request *request, int exit_status, const char *reason,
                        const char *message)
{
    log_info("Apply: refused the change of %s: %s", request->who, message);
    answer(request, exit_status,
           json_pack("{s:i, s:s, s:s}", "exit", exit_status, "error", message, "reason",
                     request->reason ? request->reason : reason));
}

/* Refuses a request for the error r (exit 4 for an unknown certificate, 2 for usage, else 1). */
static void refuse(struct apply_request *request, int r, const char *message)
{
    refuse_with(request, r == CV_EUNKNOWN_CERT ? 4 : r == CV_EUSAGE ? 2 : 1, reason_of(r), message);
}

/* --- the queue --- */

static struct apply_queue *queue_of(struct agent *agent)
{
    if (!agent->apply)
        agent->apply = calloc(1, sizeof(struct apply_queue));
    return agent->apply;
}

static void on_window(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run_next(arg);
}

void apply_submit(struct agent *agent, struct apply_request *request, const char *who, bool dry_run,
                  apply_done_fn done, void *data)
{
    struct apply_queue *queue = queue_of(agent);
    long window_ms = apply_hook_coalesce_ms(COALESCE_WINDOW_MS);
    struct timeval window = {window_ms / 1000, (window_ms % 1000) * 1000};

    snprintf(request->who, sizeof(request->who), "%s", who);
    request->dry_run = dry_run;
    request->done = done;
    request->data = data;
    if (agent->shutting_down) {
        refuse_with(request, 1, "shutting_down", "the agent is shutting down; nothing was changed");
        apply_request_free(request);
        return;
    }
    if (queue && !queue->window)
        queue->window = evtimer_new(agent->base, on_window, agent);
    if (!queue || !queue->window) {
        answer(
            request, 1,
            json_pack("{s:i, s:s, s:s}", "exit", 1, "error", "out of memory", "reason", "failed"));
        apply_request_free(request);
        return;
    }
    if (queue->tail)
        queue->tail->next = request;
    else
        queue->head = request;
    queue->tail = request;
    /* A dry run changes nothing and answers at once; a change starts from the loop (never
     * inside the caller's call), after the window when a test widens it. */
    if (queue->running)
        return;
    if (dry_run && queue->head == request)
        run_next(agent);
    else if (!evtimer_pending(queue->window, NULL))
        evtimer_add(queue->window, &window);
}

void apply_forget(struct agent *agent, void *data)
{
    struct apply_queue *queue = agent->apply;

    if (!queue)
        return;
    for (struct apply_request *r = queue->head; r; r = r->next)
        if (r->data == data)
            r->done = NULL;
    for (size_t i = 0; queue->running && i < queue->running->n_requests; i++)
        if (queue->running->requests[i]->data == data)
            queue->running->requests[i]->done = NULL;
    published_answers_forget(queue->published, data);
}

void apply_start_now(struct agent *agent)
{
    if (agent->apply && !agent->apply->running)
        run_next(agent);
}

void apply_request_from_cluster(struct apply_request *request)
{
    request->from_cluster = true;
}

bool apply_idle(const struct agent *agent)
{
    const struct apply_queue *queue = agent->apply;

    return !queue || (!queue->running && !queue->head);
}

/* --- finishing --- */

static void stage_job_free(struct stage_job *job)
{
    if (!job)
        return;
    certs_issuer_free(job->issuer);
    free(job->cert_pem);
    if (job->key_pem)
        OPENSSL_clear_free(job->key_pem, job->key_len);
    free(job);
}

/* Removes what one change staged, or was about to. */
static void unstage(struct apply_run *run, struct cert_change *change)
{
    if (change->staged)
        certstore_discard(run->agent->certs->store, change->name, change->generation);
    change->staged = false;
    stage_job_free(change->job);
    change->job = NULL;
}

static void discard_staged(struct apply_run *run)
{
    for (size_t i = 0; i < run->n_changes; i++)
        unstage(run, &run->changes[i]);
    trust_batch_discard(&run->trust);
}

/* Discards the changes from index first on (those of a request that was refused). */
static void unstage_from(struct apply_run *run, size_t first)
{
    for (size_t i = first; i < run->n_changes; i++)
        unstage(run, &run->changes[i]);
    if (first < run->n_changes)
        run->n_changes = first;
}

/* Discards the changes of one request, wherever they are in the batch (all or none). */
static void unstage_request(struct apply_run *run, const struct apply_request *request)
{
    size_t kept = 0;

    for (size_t i = 0; i < run->n_changes; i++) {
        if (run->changes[i].request == request)
            unstage(run, &run->changes[i]);
        else
            run->changes[kept++] = run->changes[i];
    }
    run->n_changes = kept;
}

static void run_free(struct apply_run *run)
{
    /* Jobs still out (only at exit) come back to nobody and free themselves. */
    if (run->wait) {
        run->wait->run = NULL;
        if (--run->wait->refs == 0)
            free(run->wait);
    }
    for (size_t i = 0; i < run->n_changes; i++)
        stage_job_free(run->changes[i].job);
    rendered_set_clear(&run->rendered);
    policy_clear(&run->new_policy);
    policy_clear(&run->old_policy);
    config_free(run->new_config);
    json_decref(run->done_services);
    json_decref(run->restarted_services);
    free(run->steps);
    for (size_t i = 0; i < run->n_requests; i++)
        apply_request_free(run->requests[i]);
    free(run);
}

static void finish(struct apply_run *run)
{
    struct agent *agent = run->agent;

    discard_staged(run);
    for (size_t i = 0; i < run->n_requests; i++)
        if (run->requests[i]->kind == APPLY_CONFIG && !run->requests[i]->dry_run)
            agent_reload_finished(agent);
    run_free(run);
    agent->apply->running = NULL;
    run_next(agent);
    stapling_poke(agent); /* a new proxy certificate or OCSP setting is followed at once */
}

/* For the metrics: when the last change ended, and how. A refused request is not a change. */
static void record_outcome(struct agent *agent, bool ok)
{
    agent->last_apply.at = time(NULL);
    agent->last_apply.ok = ok;
    if (ok)
        agent->last_apply.applied++;
    else
        agent->last_apply.failed++;
}

static void fail_all(struct apply_run *run, int exit_status, const char *reason,
                     const char *message)
{
    for (size_t i = 0; i < run->n_requests; i++)
        if (!run->requests[i]->answered)
            refuse_with(run->requests[i], exit_status, reason, message);
    finish(run);
}

static const struct policy *policy_in_use(const struct apply_run *run)
{
    if (run->new_config)
        return &run->new_config->policy;
    return run->policy_change ? &run->new_policy : &run->agent->config->policy;
}

/* "trust list 'db1' add AB:.., CD:..", for the audit line. Returns what snprintf returns. */
static int describe_trust_change(json_t *change, size_t used, char *buf, size_t len)
{
    json_t *fingerprint;
    size_t i;
    int n = snprintf(buf, len, "%strust list '%s' %s", used ? "; " : "",
                     json_string_value(json_object_get(change, "trust")),
                     json_string_value(json_object_get(change, "action")));

    if (json_object_get(change, "unchanged") && n >= 0 && (size_t)n < len)
        n += snprintf(buf + n, len - (size_t)n, " (unchanged)");
    json_array_foreach(json_object_get(change, "fingerprints"), i, fingerprint)
    {
        if (n < 0 || (size_t)n >= len)
            break;
        n += snprintf(buf + n, len - (size_t)n, "%s%s", i ? ", " : " ",
                      json_string_value(fingerprint));
    }
    return n;
}

/* One line for the audit log: "certificate 'api' AB:.. -> CD:..", "policy x=y z=w". */
static void describe_changes(const struct apply_request *request, char *buf, size_t len)
{
    size_t used = 0, i;
    bool policy_started = false;
    json_t *change;

    buf[0] = '\0';
    json_array_foreach(request->changes, i, change)
    {
        const char *certificate = json_string_value(json_object_get(change, "certificate"));
        const char *setting = json_string_value(json_object_get(change, "setting"));
        const char *config = json_string_value(json_object_get(change, "configuration"));
        const char *trust = json_string_value(json_object_get(change, "trust"));
        int n;

        if (trust)
            n = describe_trust_change(change, used, buf + used, len - used);
        else if (certificate)
            n = snprintf(buf + used, len - used, "%scertificate '%s' %s -> %s%s", used ? "; " : "",
                         certificate,
                         json_string_value(json_object_get(change, "old"))
                             ?: json_string_value(json_object_get(change, "new")),
                         json_string_value(json_object_get(change, "new")),
                         json_object_get(change, "unchanged") ? " (unchanged)" : "");
        else if (setting)
            n = snprintf(buf + used, len - used, "%s%s=%s",
                         policy_started ? " "
                         : used         ? "; policy "
                                        : "policy ",
                         setting, json_string_value(json_object_get(change, "value")));
        else
            n = snprintf(buf + used, len - used, "%sconfiguration %s", used ? "; " : "",
                         config ? config : "?");
        policy_started = setting != NULL;
        if (n < 0 || (size_t)n >= len - used)
            return;
        used += (size_t)n;
    }
}

static void succeed(struct apply_run *run)
{
    struct agent *agent = run->agent;
    struct certstore *store = agent->certs->store;
    char *services = json_dumps(run->done_services, JSON_COMPACT);

    apply_hook("finishing");
    record_outcome(agent, true);
    for (size_t i = 0; i < run->n_changes; i++) {
        struct cert_change *change = &run->changes[i];

        if (change->removed) {
            certstore_delete(store, change->name, NULL, 0);
            continue;
        }
        certstore_prune(store, change->name, GENERATIONS_KEPT);
        if (change->used_pending_key)
            certstore_drop_pending_key(store, change->name);
    }
    trust_batch_succeed(&run->trust);
    /* A reload may have changed which files external certificates come from; what cannot be
     * taken from them goes into the reload's answer, so they are read before it. */
    if (run->requests[0]->kind == APPLY_CONFIG)
        external_watch_reload(agent, run->requests[0]->summary);
    for (size_t i = 0; i < run->n_requests; i++) {
        struct apply_request *request = run->requests[i];
        char what[2048];
        json_t *reply;

        if (request->answered)
            continue;
        describe_changes(request, what, sizeof(what));
        audit_record(agent->audit, request->who, "changed %s: applied; services %s",
                     *what ? what : "nothing", services ? services : "[]");
        reply =
            json_pack("{s:i, s:O, s:O, s:s, s:O, s:i}", "exit", 0, "services", run->done_services,
                      "restarted", run->restarted_services, "warning", request->warning, "changes",
                      request->changes, "coalesced", (int)run->n_requests);
        if (request->summary)
            json_object_update(reply, request->summary);
        answer(request, 0, reply);
    }
    audit_pending_clear(agent->audit); /* audited above */
    free(services);
    finish(run);
}

/* --- execution, one service at a time --- */

static void step(struct apply_run *run);

/* Puts the previous state back before the touched services restart, so they take it. */
static void restore_previous(struct apply_run *run)
{
    struct agent *agent = run->agent;

    for (size_t i = 0; run->committed && i < run->n_changes; i++) {
        struct cert_change *change = &run->changes[i];

        if (change->removed || !change->staged_was_committed)
            continue;
        /* The old pointer back, then the new generation goes (finish() discards it);
         * a certificate that had none before goes entirely. */
        if (change->had_current && certstore_commit(agent->certs->store, change->name,
                                                    change->old_generation, NULL, 0) == 0)
            change->staged = true;
        else if (!change->had_current)
            certstore_delete(agent->certs->store, change->name, NULL, 0);
    }
    trust_batch_restore(&run->trust);
    if (run->policy_swapped) {
        char path[4200], err[512];

        policy_clear(&agent->config->policy);
        policy_copy(&agent->config->policy, &run->old_policy);
        if (run->policy_change) {
            snprintf(path, sizeof(path), "%s/policy.json", agent->config->state_dir);
            if (policy_state_save(&run->old_policy, path, err, sizeof(err)) < 0)
                log_error("Apply: cannot restore the policy state file: %s", err);
        }
    }
    rendered_set_write(&run->rendered, true, config_service_gid(agent->config), NULL, 0);
    audit_pending_clear(
        agent->audit); /* the previous state is back: nothing to audit at a restart */
}

static void on_step_done(struct service *service, void *data, int result, const char *why)
{
    struct apply_run *run = data;

    if (result < 0 && !run->rolling_back) {
        snprintf(run->failure, sizeof(run->failure),
                 "service '%s' did not come back with the change: %s", service_name(service),
                 why ? why : cv_strerror(result));
        log_error("Apply: %s; rolling back", run->failure);
        run->rolling_back = true;
        run->n_steps = run->current_step + 1; /* restart what was touched, the failed one too */
        run->current_step = 0;
        restore_previous(run);
        step(run);
        return;
    }
    if (!run->rolling_back) {
        json_array_append_new(run->done_services, json_string(service_name(service)));
        if (!service_config_can_reload(service_config_of(service)))
            json_array_append_new(run->restarted_services, json_string(service_name(service)));
        apply_hook("service");
    }
    run->current_step++;
    step(run);
}

/*
 * A reload command reports whether the service took the files, and a service
 * that refused them runs on with what it had (redis-server keeps its TLS
 * context when CONFIG SET fails): rolling back, a running one reloads the
 * restored files in place, which keeps its clients and its data, instead of
 * restarting. A signal reload proves less, so those services restart.
 */
static bool rolls_back_in_place(const struct apply_run *run, const struct service *service)
{
    return run->rolling_back && service_config_of(service)->reload_argv &&
           service_state_of(service) == SERVICE_RUNNING;
}

/* The in-place rollback failed too: a restart is what is left to bring the old files in. */
static void on_rolled_back_in_place(struct service *service, void *data, int result,
                                    const char *why)
{
    struct apply_run *run = data;

    if (result == 0) {
        on_step_done(service, data, 0, NULL);
        return;
    }
    log_warning("Apply: service '%s' did not reload the restored files (%s); restarting it",
                service_name(service), why ? why : cv_strerror(result));
    service_wait(service, WAIT_READY, on_step_done, run);
    supervisor_mark_restart(run->agent->supervisor, service);
    supervisor_schedule(run->agent->supervisor);
}

/* A service that was starting when the files changed is ready now: it reloads like the rest. */
static void on_started(struct service *service, void *data, int result, const char *why)
{
    if (result < 0) {
        on_step_done(service, data, result, why);
        return;
    }
    step(data);
}

static void step(struct apply_run *run)
{
    if (run->agent->shutting_down) {
        /* Every service is stopping: nothing is reloaded or restarted any more. The store
         * keeps what was committed, and the next start renders the files from it. */
        fail_all(run, 1, "shutting_down", "the agent is shutting down; the change stops here");
        return;
    }
    while (run->current_step < run->n_steps) {
        struct service *service = run->steps[run->current_step];
        struct service_snapshot now;

        service_snapshot(service, &now);

        /* Starting: it may have read the old files already; once ready, it takes the change. */
        if (!run->rolling_back && service_state_of(service) == SERVICE_STARTING) {
            service_wait(service, WAIT_READY, on_started, run);
            return;
        }
        /* Applying: a service that is not running takes the new files when it starts.
         * Rolling back: every service the change touched comes back, whatever state the
         * failure left it in (FATAL after a rejected reload), unless an operator stopped it. */
        if ((!run->rolling_back && service_state_of(service) != SERVICE_RUNNING) ||
            (run->rolling_back && now.operator_stopped)) {
            run->current_step++;
            continue;
        }
        if (!run->rolling_back && service_config_can_reload(service_config_of(service))) {
            service_wait(service, WAIT_RELOADED, on_step_done, run);
            service_reload(service); /* on failure, on_step_done hears why */
        } else if (rolls_back_in_place(run, service)) {
            service_wait(service, WAIT_RELOADED, on_rolled_back_in_place, run);
            service_reload(service);
        } else {
            service_wait(service, WAIT_READY, on_step_done, run);
            supervisor_mark_restart(run->agent->supervisor, service);
            supervisor_schedule(run->agent->supervisor);
        }
        return; /* on_step_done continues */
    }
    if (run->rolling_back) {
        char message[1200];

        snprintf(message, sizeof(message), "%s; rolled back: the previous %s in force again",
                 run->failure,
                 run->n_changes == 1                     ? "certificate is"
                 : run->n_changes                        ? "certificates are"
                 : run->new_config || run->policy_change ? "TLS settings are"
                                                         : "state is");
        for (size_t i = 0; i < run->n_requests; i++)
            if (!run->requests[i]->answered)
                audit_record(run->agent->audit, run->requests[i]->who, "changed nothing: %s",
                             message);
        record_outcome(run->agent, false);
        fail_all(run, 1, "rolled_back", message);
        return;
    }
    succeed(run);
}

/* --- preparation: validate and stage each request --- */

static struct cert_change *add_change(struct apply_run *run, struct apply_request *request,
                                      const char *name, char *err, size_t err_len)
{
    struct cert_change *change;

    if (run->n_changes >= RENDER_OVERRIDES_MAX) {
        snprintf(err, err_len, "too many certificates in one change");
        return NULL;
    }
    change = &run->changes[run->n_changes++];
    memset(change, 0, sizeof(*change));
    change->request = request;
    change->name = cert_name_lookup(name)->name; /* static storage: outlives the request */
    change->had_current =
        certstore_current(run->agent->certs->store, name, &change->old_generation) == 0;
    return change;
}

/* The old fingerprint, for the audit line; an expired or weak old certificate still has one. */
static void read_old_fingerprint(struct apply_run *run, struct cert_change *change)
{
    struct certstore *store = run->agent->certs->store;
    char *old = NULL;
    size_t old_len = 0;

    if (change->had_current &&
        certstore_read_cert(store, change->name, change->old_generation, &old, &old_len) == 0)
        cert_info_fingerprint(old, old_len, change->old_fingerprint,
                              sizeof(change->old_fingerprint));
    free(old);
}

/* True when the current generation already holds exactly this pair. */
static bool same_as_current(struct apply_run *run, const struct cert_change *change,
                            const char *cert_pem, size_t cert_len, const char *key_pem,
                            size_t key_len)
{
    struct certstore *store = run->agent->certs->store;
    char *cert = NULL, *key = NULL;
    size_t len = 0, klen = 0;
    bool same = false;

    if (!change->had_current ||
        certstore_read_cert(store, change->name, change->old_generation, &cert, &len) < 0)
        return false;
    same = len == cert_len && memcmp(cert, cert_pem, len) == 0;
    if (same && key_pem) {
        same = certstore_read_key(store, change->name, change->old_generation, &key, &klen) == 0 &&
               klen == key_len && CRYPTO_memcmp(key, key_pem, klen) == 0;
        if (key)
            OPENSSL_clear_free(key, klen);
    }
    free(cert);
    return same;
}

/*
 * Prepares the new generation of a change, to be staged by a worker:
 * issuer set, the worker issues the pair first (a rotation); else the given
 * pair is copied in. Records the change's line, whose "new" fingerprint a
 * rotation learns from the worker. Returns 0 or -ENOMEM.
 */
static int prepare_stage(struct apply_run *run, struct cert_change *change,
                         struct certs_issuer *issuer, const char *cert_pem, size_t cert_len,
                         const char *key_pem, size_t key_len, const char *origin,
                         const char *fingerprint, char *err, size_t err_len)
{
    struct stage_job *job = calloc(1, sizeof(*job));

    if (!job) {
        certs_issuer_free(issuer);
        snprintf(err, err_len, "out of memory");
        return -ENOMEM;
    }
    job->name = change->name;
    job->issuer = issuer;
    certstore_target_of(run->agent->certs->store, &job->target);
    snprintf(job->origin, sizeof(job->origin), "%s", origin);
    if (!issuer) {
        job->cert_pem = malloc(cert_len + 1);
        job->key_pem = key_pem ? OPENSSL_malloc(key_len + 1) : NULL;
        if (!job->cert_pem || (key_pem && !job->key_pem)) {
            stage_job_free(job);
            snprintf(err, err_len, "out of memory");
            return -ENOMEM;
        }
        memcpy(job->cert_pem, cert_pem, cert_len);
        job->cert_pem[cert_len] = '\0';
        job->cert_len = cert_len;
        if (key_pem) {
            memcpy(job->key_pem, key_pem, key_len);
            job->key_pem[key_len] = '\0';
            job->key_len = key_len;
        }
    }
    change->job = job;
    read_old_fingerprint(run, change);
    change->entry = json_pack("{s:s, s:s, s:s, s:s}", "certificate", change->name, "old",
                              *change->old_fingerprint ? change->old_fingerprint : "(none)", "new",
                              fingerprint ? fingerprint : "(being made)", "origin", origin);
    json_array_append_new(change->request->changes, change->entry);
    return 0;
}

/* Validates and stages one pair of a certificate request. */
static int prepare_pair(struct apply_run *run, struct apply_request *request,
                        const struct apply_pair *pair, char *err, size_t err_len)
{
    struct certstore *store = run->agent->certs->store;
    const struct cert_name *entry = cert_name_lookup(pair->name);
    struct x509_checked *checked = NULL;
    struct cert_change *change;
    char *key = pair->key_pem, *pending = NULL;
    size_t key_len = pair->key_len, pending_len = 0;
    bool used_pending = false;
    int r;

    if (!entry) {
        snprintf(err, err_len, "unknown certificate '%s' (known: %s)", pair->name,
                 cert_names_list());
        return CV_EUNKNOWN_CERT;
    }
    if (strcmp(request->origin, "external") != 0 &&
        config_find_external_cert(run->agent->config, entry->name)) {
        snprintf(err, err_len,
                 "certificate '%s' is kept in files named by %s: change those files, or remove "
                 "that section and reload",
                 entry->name, config_find_external_cert(run->agent->config, entry->name)->source);
        request->reason = "external";
        return CV_EINVALID_CERT;
    }
    if (!key && entry->has_key) {
        if (certstore_read_pending_key(store, pair->name, &pending, &pending_len) < 0) {
            snprintf(err, err_len,
                     "key_file is required: no key is pending for '%s' (give key_file, or make "
                     "one with 'cluster certificate csr %s')",
                     pair->name, pair->name);
            return CV_EINVALID_CERT;
        }
        key = pending;
        key_len = pending_len;
        used_pending = true;
    }
    r = x509_check(pair->name, entry->purpose, pair->cert_pem, pair->cert_len, key, key_len,
                   time(NULL), &checked, err, err_len);
    if (r == 0) {
        if (*checked->warning)
            snprintf(request->warning, sizeof(request->warning), "%s", checked->warning);
        change = add_change(run, request, entry->name, err, err_len);
        if (!change)
            r = -E2BIG;
    }
    if (r == 0 && same_as_current(run, change, pair->cert_pem, pair->cert_len, key,
                                  entry->has_key ? key_len : 0)) {
        run->n_changes--; /* nothing to do: not staged, nothing rendered differently */
        json_array_append_new(request->changes,
                              json_pack("{s:s, s:s, s:b}", "certificate", entry->name, "new",
                                        checked->fingerprint, "unchanged", 1));
    } else if (r == 0) {
        change->used_pending_key = used_pending;
        r = prepare_stage(
            run, change, NULL, pair->cert_pem, pair->cert_len, entry->has_key ? key : NULL, key_len,
            used_pending ? "csr" : request->origin, checked->fingerprint, err, err_len);
        if (r < 0)
            run->n_changes--;
    }
    x509_checked_free(checked);
    if (pending)
        OPENSSL_clear_free(pending, pending_len);
    return r;
}

/*
 * Validates and stages every pair of a certificate request: the first that
 * fails refuses the whole request (start_run() discards what the others
 * staged), so several certificates go in together or not at all.
 */
static int prepare_certificates(struct apply_run *run, struct apply_request *request, char *err,
                                size_t err_len)
{
    int r = 0;

    if (request->n_pairs == 0) {
        snprintf(err, err_len, "no certificate to set");
        return CV_EUSAGE;
    }
    for (size_t i = 0; i < request->n_pairs; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(request->pairs[i].name, request->pairs[j].name) == 0) {
                snprintf(err, err_len, "certificate '%s' is given more than once",
                         request->pairs[i].name);
                return CV_EUSAGE;
            }
        }
    }
    for (size_t i = 0; r == 0 && i < request->n_pairs; i++)
        r = prepare_pair(run, request, &request->pairs[i], err, err_len);
    return r;
}

/* A rotation: the new key and certificate are made by the worker that stages them. */
static int rotate_one(struct apply_run *run, struct apply_request *request, const char *name,
                      char *err, size_t err_len)
{
    struct cert_change *change = add_change(run, request, name, err, err_len);
    struct certs_issuer *issuer = NULL;
    int r;

    if (!change)
        return -E2BIG;
    r = certs_issuer_new(run->agent->certs, &run->agent->config->certs, change->name, &issuer, err,
                         err_len);
    if (r == 0)
        r = prepare_stage(run, change, issuer, NULL, 0, NULL, 0, "generated", NULL, err, err_len);
    if (r < 0)
        run->n_changes--;
    return r;
}

static int prepare_rotate(struct apply_run *run, struct apply_request *request, char *err,
                          size_t err_len)
{
    struct certstore *store = run->agent->certs->store;
    const struct cert_name *entry;
    int r = 0;

    if (strcmp(request->name, "all") == 0) {
        /* Every generated certificate the agent still owns; an operator's replacement stays. */
        char kept[256] = "";
        size_t kept_len = 0;

        for (size_t i = 0; r == 0 && i < cert_names_count; i++) {
            char origin[32];
            unsigned generation;

            if (!cert_names[i].generated)
                continue;
            if (certstore_current(store, cert_names[i].name, &generation) == 0) {
                certstore_get_origin(store, cert_names[i].name, generation, origin, sizeof(origin));
                if (strcmp(origin, "generated") != 0) {
                    int n = snprintf(kept + kept_len, sizeof(kept) - kept_len, "%s%s (%s)",
                                     kept_len ? ", " : "", cert_names[i].name, origin);

                    if (n > 0 && (size_t)n < sizeof(kept) - kept_len)
                        kept_len += (size_t)n;
                    continue;
                }
            }
            r = rotate_one(run, request, cert_names[i].name, err, err_len);
        }
        /* Said, so that "all" is not taken for every certificate. */
        if (r == 0 && kept_len && !*request->warning)
            snprintf(request->warning, sizeof(request->warning),
                     "left as they are, not generated here: %s; 'rotate <name>' replaces one "
                     "with a generated certificate",
                     kept);
        return r;
    }
    entry = cert_name_lookup(request->name);
    if (!entry) {
        snprintf(err, err_len, "unknown certificate '%s' (known: %s, or all)", request->name,
                 cert_names_list());
        return CV_EUNKNOWN_CERT;
    }
    if (!entry->generated) {
        snprintf(err, err_len,
                 "certificate '%s' is provided by the operator, not generated: replace it with "
                 "'cluster certificate set %s certificate_file <file>'",
                 entry->name, entry->name);
        request->reason = "not_generated";
        return CV_EINVALID_CERT;
    }
    if (config_find_external_cert(run->agent->config, entry->name)) {
        snprintf(err, err_len, "certificate '%s' is kept in files named by %s: it is not rotated",
                 entry->name, config_find_external_cert(run->agent->config, entry->name)->source);
        request->reason = "external";
        return CV_EINVALID_CERT;
    }
    return rotate_one(run, request, entry->name, err, err_len);
}

static int prepare_delete(struct apply_run *run, struct apply_request *request, char *err,
                          size_t err_len)
{
    const struct cert_name *entry = cert_name_lookup(request->name);
    struct cert_change *change;

    if (!entry) {
        snprintf(err, err_len, "unknown certificate '%s' (known: %s)", request->name,
                 cert_names_list());
        return CV_EUNKNOWN_CERT;
    }
    if (entry->required) {
        snprintf(err, err_len,
                 "certificate '%s' is required and cannot be deleted: re-issue it with 'cluster "
                 "certificate rotate %s', or replace it with 'cluster certificate set'",
                 entry->name, entry->name);
        request->reason = "required_certificate";
        return CV_EINVALID_CERT;
    }
    if (strcmp(entry->name, CERT_MTLS_TRUSTED_CA) == 0 &&
        policy_enabled(&run->agent->config->policy, POLICY_MTLS_CERTIFICATE_AUTHENTICATION)) {
        snprintf(err, err_len,
                 "certificate 'mtls_trusted_ca' is in use: REST API users sign in with "
                 "certificates it issued (disable mtls_certificate_authentication first: "
                 "'certvisorctl cluster config mtls_certificate_authentication disabled')");
        request->reason = "in_use";
        return CV_EINVALID_CERT;
    }
    change = add_change(run, request, entry->name, err, err_len);
    if (!change)
        return -E2BIG;
    if (!change->had_current) {
        run->n_changes--;
        snprintf(err, err_len, "certificate '%s' is not set", entry->name);
        request->reason = "not_set";
        return CV_EINVALID_CERT;
    }
    change->removed = true;
    read_old_fingerprint(run, change);
    json_array_append_new(request->changes,
                          json_pack("{s:s, s:s, s:s}", "certificate", entry->name, "old",
                                    change->old_fingerprint, "new", "(deleted)"));
    return 0;
}

/*
 * Certificate sign-in needs its CA: enabling it without mtls_trusted_ca is
 * refused here, with the fix, rather than by the render of the api's file.
 * Policy and certificate changes never share a batch, so the store's current
 * state is the one this policy would meet.
 */
static bool certificate_auth_has_ca(const struct apply_run *run, const struct policy *policy,
                                    char *err, size_t err_len)
{
    unsigned generation;

    if (!policy_enabled(policy, POLICY_MTLS_CERTIFICATE_AUTHENTICATION) ||
        certstore_current(run->agent->certs->store, CERT_MTLS_TRUSTED_CA, &generation) == 0)
        return true;
    snprintf(err, err_len,
             "mtls_certificate_authentication cannot be enabled: mtls_trusted_ca is not set "
             "(set it first with 'certvisorctl cluster certificate set mtls_trusted_ca "
             "certificate_file <ca.pem>' or PUT /v1/cluster/certificates)");
    return false;
}

static int prepare_policy(struct apply_run *run, struct apply_request *request, char *err,
                          size_t err_len)
{
    struct policy before;
    int r;

    /* The batch's policy so far, kept to undo this request alone if it does not check out. */
    if (!run->policy_change) {
        if (policy_copy(&run->new_policy, &run->agent->config->policy) < 0)
            return -ENOMEM;
        run->policy_change = true;
    }
    if (policy_copy(&before, &run->new_policy) < 0)
        return -ENOMEM;
    r = 0;
    for (size_t i = 0; r == 0 && i < request->n_settings; i++) {
        int setting = policy_setting_lookup(request->setting_names[i]);
        char check[600], warn[600];

        if (setting < 0) {
            snprintf(err, err_len, "unknown setting '%s'", request->setting_names[i]);
            r = CV_EUSAGE;
            break;
        }
        r = policy_check(&run->new_policy, (enum policy_setting)setting, request->setting_values[i],
                         check, sizeof(check), warn, sizeof(warn));
        if (r < 0) {
            snprintf(err, err_len, "%s", check);
            break;
        }
        if (*warn) {
            log_warning("%s", warn);
            snprintf(request->warning, sizeof(request->warning), "%s", warn);
        }
        r = policy_set(&run->new_policy, (enum policy_setting)setting, request->setting_values[i],
                       POLICY_FROM_RUNTIME, NULL, 0);
        if (r == 0)
            json_array_append_new(
                request->changes,
                json_pack("{s:s, s:s}", "setting",
                          policy_setting_name((enum policy_setting)setting), "value",
                          policy_shown((enum policy_setting)setting, request->setting_values[i])));
    }
    if (r == 0 && policy_check_all(&run->new_policy, err, err_len) < 0)
        r = CV_EINVALID_TLS;
    if (r == 0 && !certificate_auth_has_ca(run, &run->new_policy, err, err_len))
        r = CV_EINVALID_TLS;
    if (r < 0) {
        policy_clear(&run->new_policy);
        policy_copy(&run->new_policy, &before);
    }
    policy_clear(&before);
    return r;
}

static int prepare_config(struct apply_run *run, struct apply_request *request, char *err,
                          size_t err_len)
{
    char *error = NULL;
    int r;

    request->summary = json_pack("{s:[], s:[], s:[], s:[], s:[]}", "added", "changed", "updated",
                                 "removed", "warnings");
    if (!request->summary)
        return -ENOMEM;
    r = reconfigure_load(run->agent, &run->new_config,
                         json_object_get(request->summary, "warnings"), &error);
    if (r < 0) {
        snprintf(err, err_len, "%s", error ? error : cv_strerror(r));
        log_error("Configuration reload failed, keeping the running configuration: %s", err);
    }
    free(error);
    json_array_append_new(request->changes,
                          json_pack("{s:s}", "configuration", run->agent->config->config_path));
    return r;
}

/* Validates and stages one request of the batch. */
static int prepare(struct apply_run *run, struct apply_request *request, char *err, size_t err_len)
{
    switch (request->kind) {
    case APPLY_CERTIFICATE:
        return prepare_certificates(run, request, err, err_len);
    case APPLY_ROTATE:
        return prepare_rotate(run, request, err, err_len);
    case APPLY_DELETE:
        return prepare_delete(run, request, err, err_len);
    case APPLY_POLICY:
        return prepare_policy(run, request, err, err_len);
    case APPLY_CONFIG:
        return prepare_config(run, request, err, err_len);
    case APPLY_TRUST:
        return trust_prepare(&run->trust, run->agent->certs->trust, request->trust,
                             request->changes, request->warning, sizeof(request->warning),
                             &request->reason, err, err_len);
    }
    return -EINVAL;
}

/* --- plan: render everything with the batch, and list the services whose files change --- */

static void fill_override(struct apply_run *run)
{
    run->override.n = 0;
    for (size_t i = 0; i < run->n_changes; i++) {
        run->override.certs[run->override.n].name = run->changes[i].name;
        run->override.certs[run->override.n].generation = run->changes[i].generation;
        run->override.certs[run->override.n].removed = run->changes[i].removed;
        run->override.n++;
    }
    trust_batch_override(&run->trust, &run->override);
}

static json_t *files_of_service(const struct apply_run *run, const struct service_config *config,
                                bool with_diff)
{
    json_t *files = json_array();

    for (size_t f = 0; f < run->rendered.n_files; f++) {
        const struct rendered_file *file = &run->rendered.files[f];
        char *diff;

        if (!file->changed || file->spec < config->tls || file->spec >= config->tls + config->n_tls)
            continue;
        if (!with_diff) {
            json_array_append_new(files, json_string(file->output));
            continue;
        }
        diff = text_diff(file->output, file->previous ? file->previous : "", file->text);
        json_array_append_new(files, json_pack("{s:s, s:s?}", "path", file->output, "diff", diff));
        free(diff);
    }
    return files;
}

/* What this change renders from: the new configuration's databases when it is a reload. */
static struct render_inputs render_inputs_of(const struct apply_run *run)
{
    const struct agent_config *config = run->new_config ? run->new_config : run->agent->config;

    return (struct render_inputs){run->agent->certs, policy_in_use(run), &run->override,
                                  config->databases, config->n_databases};
}

static int plan(struct apply_run *run, json_t **ret_plan, char *err, size_t err_len)
{
    struct render_inputs inputs;
    struct agent *agent = run->agent;
    struct service_config **configs;
    size_t n_configs;
    json_t *steps = json_array();
    int r = 0;

    fill_override(run);
    inputs = render_inputs_of(run);
    if (run->new_config) {
        configs = run->new_config->services;
        n_configs = run->new_config->n_services;
    } else {
        configs = NULL;
        n_configs = supervisor_count(agent->supervisor);
    }
    run->steps = calloc(supervisor_count(agent->supervisor) + 1, sizeof(*run->steps));
    if (!run->steps || !steps) {
        json_decref(steps);
        return -ENOMEM;
    }
    /* A service's upcoming settings, not those in force: a reload that changed them leaves them
     * waiting until the restart it scheduled, and a change planned meanwhile renders for them. */
    for (size_t i = 0; r == 0 && i < n_configs; i++)
        r = render_files_compute(
            &inputs,
            configs ? configs[i]
                    : service_upcoming_config(supervisor_service(agent->supervisor, i)),
            &run->rendered, err, err_len);
    if (r == 0)
        r = rendered_set_validate(&run->rendered, &inputs, err, err_len);
    for (size_t i = 0; r == 0 && i < n_configs; i++) {
        const struct service_config *config =
            configs ? configs[i]
                    : service_upcoming_config(supervisor_service(agent->supervisor, i));
        struct service *service = supervisor_find(agent->supervisor, config->name);

        if (!rendered_set_changes(&run->rendered, config))
            continue;
        /* A configuration reload decides its steps once the new settings are in force. */
        if (!configs)
            run->steps[run->n_steps++] = service;
        json_array_append_new(
            steps, json_pack("{s:s, s:s, s:s, s:o}", "service", config->name, "action",
                             service_config_can_reload(config) ? "reload" : "restart", "state",
                             service ? service_state_name(service_state_of(service)) : "new",
                             "files", files_of_service(run, config, run->dry_run)));
    }
    if (r < 0) {
        json_decref(steps);
        return r;
    }
    *ret_plan = steps;
    return 0;
}

/* After a configuration reload: the services whose files changed and that nothing else restarts. */
static void plan_config_steps(struct apply_run *run)
{
    struct agent *agent = run->agent;

    for (size_t i = 0; i < supervisor_count(agent->supervisor); i++) {
        struct service *service = supervisor_service(agent->supervisor, i);
        struct service_snapshot now;

        service_snapshot(service, &now);
        if (now.change_pending || !rendered_set_changes(&run->rendered, service_config_of(service)))
            continue;
        run->steps[run->n_steps++] = service;
    }
}

static int commit_certificates(struct apply_run *run, char *err, size_t err_len)
{
    const char *names[RENDER_OVERRIDES_MAX];
    unsigned generations[RENDER_OVERRIDES_MAX];
    size_t n = 0;
    int r;

    for (size_t i = 0; i < run->n_changes; i++) {
        if (run->changes[i].removed)
            continue;
        names[n] = run->changes[i].name;
        generations[n++] = run->changes[i].generation;
    }
    r = certstore_commit_many(run->agent->certs->store, names, generations, n, err, err_len);
    if (r < 0)
        return r;
    run->committed = true;
    for (size_t i = 0; i < run->n_changes; i++) {
        /* In force now: discarded only if a rollback puts the old one back. */
        run->changes[i].staged_was_committed = run->changes[i].staged;
        run->changes[i].staged = false;
    }
    return 0;
}

/* Before the first switch: what is about to change, so that a change the agent does not live to
 * finish is still audited at the next start (agent/apply/audit.h). */
static void note_pending(struct apply_run *run)
{
    struct agent *agent = run->agent;
    char what[2048];

    for (size_t i = 0; i < run->n_requests; i++) {
        if (run->requests[i]->answered)
            continue;
        describe_changes(run->requests[i], what, sizeof(what));
        audit_pending_change(agent->audit, run->requests[i]->who, *what ? what : "nothing");
    }
    for (size_t i = 0; i < run->n_changes; i++) {
        if (run->changes[i].removed)
            audit_pending_removal(agent->audit, run->changes[i].name);
        else if (run->changes[i].staged)
            audit_pending_generation(agent->audit, AUDIT_STORE_CERTS, run->changes[i].name,
                                     run->changes[i].generation);
    }
    for (size_t i = 0; i < run->trust.n; i++)
        if (run->trust.changes[i].staged)
            audit_pending_generation(agent->audit, AUDIT_STORE_TRUST, run->trust.changes[i].list,
                                     run->trust.changes[i].generation);
    audit_pending_write(agent->audit);
}

static int commit_change(struct apply_run *run, char *err, size_t err_len)
{
    struct agent *agent = run->agent;
    char path[4200];
    int r = 0;

    note_pending(run);
    if (run->n_changes)
        r = commit_certificates(run, err, err_len);
    if (r == 0)
        r = trust_batch_commit(&run->trust, err, err_len);
    if (r == 0 && (run->policy_change || run->new_config)) {
        if (policy_copy(&run->old_policy, &agent->config->policy) < 0)
            return -ENOMEM;
    }
    if (r == 0 && run->policy_change) {
        snprintf(path, sizeof(path), "%s/policy.json", agent->config->state_dir);
        r = policy_state_save(&run->new_policy, path, err, err_len);
        if (r == 0) {
            policy_clear(&agent->config->policy);
            r = policy_copy(&agent->config->policy, &run->new_policy);
            run->policy_swapped = true;
        }
    }
    if (r < 0)
        return r;
    audit_pending_committed(agent->audit);
    apply_hook("committed");
    r = rendered_set_write(&run->rendered, false, config_service_gid(agent->config), err, err_len);
    if (r < 0)
        return r;
    apply_hook("rendered");
    if (run->new_config) {
        struct apply_request *request = run->requests[0];

        reconfigure_swap(agent, run->new_config, request->summary);
        run->new_config = NULL;
        run->policy_swapped = true; /* the old policy comes back if a service fails */
        plan_config_steps(run);
    }
    return 0;
}

/* A plan that failed for a batch: each request is planned by itself, so one bad change does
 * not take the others down with it. */
static void split_batch(struct apply_run *run)
{
    struct apply_queue *queue = run->agent->apply;

    discard_staged(run);
    run->n_changes = 0;
    for (size_t i = run->n_requests; i-- > 0;) {
        struct apply_request *request = run->requests[i];

        /* Refused already: it is not tried again behind its caller's back. */
        if (request->answered) {
            apply_request_free(request);
            continue;
        }
        json_array_clear(request->changes);
        request->alone = true;
        request->next = queue->head;
        queue->head = request;
        if (!queue->tail)
            queue->tail = request;
    }
    run->n_requests = 0;
    finish(run);
}

/* Commits the plan, and says how long that took on the loop (docs/design.md has the numbers). */
static int commit_timed(struct apply_run *run, char *err, size_t err_len)
{
    struct timespec before, after;
    int r;

    clock_gettime(CLOCK_MONOTONIC, &before);
    r = commit_change(run, err, err_len);
    clock_gettime(CLOCK_MONOTONIC, &after);
    log_debug("Apply: committed %zu certificates and the rendered files in %.1f ms", run->n_changes,
              (double)(after.tv_sec - before.tv_sec) * 1e3 +
                  (double)(after.tv_nsec - before.tv_nsec) / 1e6);
    return r;
}

/* --- a cluster on etcd: publish instead of commit (agent/sync) --- */

static void publication_clear(struct apply_publication *publication)
{
    for (size_t i = 0; i < publication->n_certs; i++) {
        struct apply_published_cert *cert = &publication->certs[i];

        free((char *)cert->cert_pem);
        if (cert->key_pem)
            OPENSSL_clear_free((char *)cert->key_pem, cert->key_len);
    }
    publication->n_certs = 0;
    for (size_t i = 0; i < publication->n_trust; i++)
        free((char *)publication->trust[i].pem);
    publication->n_trust = 0;
}

/* What the batch changes, read from its staged generations. */
static int publication_fill(struct apply_run *run, struct apply_publication *publication, char *err,
                            size_t err_len)
{
    struct certstore *store = run->agent->certs->store;

    for (size_t i = 0; i < run->n_changes && i < 16; i++) {
        const struct cert_change *change = &run->changes[i];
        struct apply_published_cert *cert = &publication->certs[publication->n_certs++];
        char *pem = NULL, *key = NULL;
        size_t len = 0, key_len = 0;
        int r;

        cert->name = change->name;
        cert->removed = change->removed;
        if (change->removed)
            continue;
        cert->generation = change->generation;
        r = certstore_read_cert(store, change->name, change->generation, &pem, &len);
        if (r == 0 && cert_name_lookup(change->name)->has_key) {
            r = certstore_read_key(store, change->name, change->generation, &key, &key_len);
            if (r == -ENOENT) /* a CA bundle */
                r = 0;
        }
        cert->cert_pem = pem;
        cert->cert_len = len;
        cert->key_pem = key;
        cert->key_len = key_len;
        if (r < 0) {
            snprintf(err, err_len, "cannot read the staged '%s': %s", change->name, strerror(-r));
            return r;
        }
        certstore_get_origin(store, change->name, change->generation, cert->origin,
                             sizeof(cert->origin));
        cert_info_fingerprint(pem, len, cert->fingerprint, sizeof(cert->fingerprint));
    }
    if (run->policy_change)
        publication->policy = &run->new_policy;
    for (size_t i = 0; i < run->trust.n && i < 8; i++) {
        const struct trust_change *change = &run->trust.changes[i];
        struct apply_published_trust *trust = &publication->trust[publication->n_trust++];
        char *pem = NULL;
        size_t len = 0;
        int r;

        trust->list = change->list;
        if (change->removed)
            continue;
        r = certstore_read_cert(run->trust.store, change->list, change->generation, &pem, &len);
        trust->pem = pem;
        trust->len = len;
        if (r < 0) {
            snprintf(err, err_len, "cannot read the staged trust list '%s': %s", change->list,
                     strerror(-r));
            return r;
        }
    }
    return 0;
}

/*
 * On a cluster whose store is etcd, a change validated and staged here is published to the
 * store rather than committed here: every node, this one included, applies it when the store
 * delivers it, and the callers are answered once the nodes have. Returns true when the
 * change went to the store (or was refused on the way): the batch is over.
 */
static bool publish_run(struct apply_run *run)
{
    struct agent *agent = run->agent;
    struct apply_publication publication = {0};
    struct published_answers *answers;
    char what[BATCH_MAX][2048], err[512] = "";
    int r;

    if (!agent->hooks.publish || run->new_config || run->requests[0]->from_cluster)
        return false;
    for (size_t i = 0; i < run->n_requests; i++)
        describe_changes(run->requests[i], what[i], sizeof(what[i]));
    answers = published_answers_new(agent, run->requests, run->n_requests, what);
    r = answers ? publication_fill(run, &publication, err, sizeof(err)) : -ENOMEM;
    if (r == 0)
        r = agent->hooks.publish(agent, &publication, published_answers_done, answers);
    publication_clear(&publication);
    if (r == 1) {
        published_answers_free(answers);
        return false;
    }
    if (r < 0) {
        published_answers_free(answers);
        fail_all(run, 1, "failed", *err ? err : cv_strerror(r));
        return true;
    }
    published_answers_track(answers, &agent->apply->published, run->requests, run->n_requests);
    finish(run); /* the staged generations go: each node stages what the store delivers */
    return true;
}

/* Once every generation is staged: render, plan, and (unless a dry run) commit and execute. */
static void plan_and_apply(struct apply_run *run)
{
    struct agent *agent = run->agent;
    char err[1024] = "";
    json_t *steps = NULL;
    int r;

    if (run->n_requests > 1)
        log_info("Apply: %zu changes coalesced into one plan", run->accepted);
    apply_hook("staged");
    r = plan(run, &steps, err, sizeof(err));
    if (r < 0 && run->accepted > 1) {
        log_info("Apply: the plan of %zu changes failed (%s); planning each by itself",
                 run->accepted, err);
        split_batch(run);
        return;
    }
    if (r < 0) {
        /* A certificate the services' contexts refuse is an invalid certificate for them. */
        fail_all(run, r == CV_EUSAGE ? 2 : 1,
                 r == CV_EINVALID_TLS && !run->policy_change && !run->new_config
                     ? "invalid_certificate"
                     : reason_of(r),
                 *err ? err : cv_strerror(r));
        return;
    }
    if (run->dry_run) {
        struct apply_request *request = run->requests[0];
        json_t *reply = json_pack("{s:i, s:b, s:o, s:s, s:O}", "exit", 0, "dry_run", 1, "plan",
                                  steps, "warning", request->warning, "changes", request->changes);

        if (run->new_config) {
            reconfigure_changes(agent, run->new_config, request->summary);
            json_object_update(reply, request->summary);
        }
        answer(request, 0, reply);
        finish(run);
        return;
    }
    json_decref(steps);
    if (publish_run(run))
        return;
    r = commit_timed(run, err, sizeof(err));
    if (r < 0) {
        restore_previous(run);
        fail_all(run, 1, "failed", err);
        return;
    }
    step(run);
}

/* --- staging on the offload workers --- */

/* Runs on a worker: makes the pair when it is a rotation, then writes the generation. */
static void stage_work(void *data)
{
    struct stage_job *job = data;

    if (job->issuer) {
        job->result = certs_issuer_issue(job->issuer, &job->cert_pem, &job->key_pem, job->message,
                                         sizeof(job->message));
        if (job->result < 0)
            return;
        job->cert_len = strlen(job->cert_pem);
        job->key_len = strlen(job->key_pem);
        cert_info_fingerprint(job->cert_pem, job->cert_len, job->fingerprint,
                              sizeof(job->fingerprint));
    }
    job->result =
        certstore_stage_at(&job->target, job->name, job->cert_pem, job->cert_len, job->key_pem,
                           job->key_pem ? job->key_len : 0, true, job->origin, &job->generation,
                           job->message, sizeof(job->message));
}

/* On the loop: what the worker made becomes the change's, or its request's failure. */
static void take_result(struct apply_run *run, struct stage_job *job)
{
    struct cert_change *change = &run->changes[job->change];
    struct apply_request *request = change->request;

    if (job->result == 0) {
        change->staged = true;
        change->generation = job->generation;
        if (*job->fingerprint)
            json_object_set_new(change->entry, "new", json_string(job->fingerprint));
    } else if (!request->stage_error) {
        request->stage_error = job->result;
        snprintf(request->stage_message, sizeof(request->stage_message), "%s",
                 *job->message ? job->message : cv_strerror(job->result));
    }
}

static void continue_run(struct apply_run *run);
static void stage_more(struct apply_run *run);

static void on_staged(void *data, bool cancelled)
{
    struct stage_job *job = data;
    struct stage_wait *wait = job->wait;
    struct apply_run *run = cancelled ? NULL : wait->run;

    if (run)
        take_result(run, job);
    stage_job_free(job);
    if (--wait->refs == 0)
        free(wait);
    if (!run)
        return;
    run->n_staging--;
    /* Stopping: nothing more is handed out; continue_run() discards what was staged. */
    if (!run->agent->shutting_down)
        stage_more(run);
    if (run->n_staging == 0)
        continue_run(run);
}

/*
 * Hands prepared generations to the offload workers, STAGE_IN_FLIGHT at a
 * time, in the batch's order; each one back hands out the next. The run stays
 * the running one meanwhile, so no other batch starts.
 */
static void stage_more(struct apply_run *run)
{
    struct offload *offload = run->agent->offload;

    while (run->n_staging < STAGE_IN_FLIGHT && run->next_stage < run->n_changes) {
        size_t i = run->next_stage++;
        struct stage_job *job = run->changes[i].job;

        if (!job)
            continue;
        run->changes[i].job = NULL;
        job->change = i;
        if (!run->wait && (run->wait = calloc(1, sizeof(*run->wait)))) {
            run->wait->run = run;
            run->wait->refs = 1;
        }
        job->wait = run->wait;
        if (!offload || !run->wait) {
            /* No workers (a unit test) or no memory for the wait: the loop does it itself. */
            stage_work(job);
            take_result(run, job);
            stage_job_free(job);
            continue;
        }
        run->wait->refs++;
        if (offload_submit(offload, stage_work, on_staged, job) < 0) {
            run->wait->refs--;
            job->result = -ENOMEM;
            take_result(run, job);
            stage_job_free(job);
            continue;
        }
        run->n_staging++;
    }
}

/* Stages the batch's generations; continue_run() goes on once the last is back. */
static void stage_all(struct apply_run *run)
{
    stage_more(run);
    if (run->n_staging == 0)
        continue_run(run);
}

static void continue_run(struct apply_run *run)
{
    if (run->agent->shutting_down) {
        /* apply_shutdown() answered already; what was staged goes, nothing was committed. */
        fail_all(run, 1, "shutting_down", "the agent is shutting down; nothing was changed");
        return;
    }
    for (size_t i = 0; i < run->n_requests; i++) {
        struct apply_request *request = run->requests[i];

        if (request->answered || !request->stage_error)
            continue;
        unstage_request(run, request);
        refuse(request, request->stage_error, request->stage_message);
        run->accepted--;
    }
    if (run->accepted == 0) {
        finish(run);
        return;
    }
    plan_and_apply(run);
}

static void start_run(struct agent *agent, struct apply_request **batch, size_t n)
{
    struct apply_run *run = calloc(1, sizeof(*run));
    char err[1024] = "";
    int r;

    if (run) {
        run->done_services = json_array();
        run->restarted_services = json_array();
    }
    if (!run || !run->done_services || !run->restarted_services) {
        if (run) {
            json_decref(run->done_services);
            json_decref(run->restarted_services);
        }
        free(run);
        for (size_t i = 0; i < n; i++) {
            refuse(batch[i], -ENOMEM, "out of memory");
            apply_request_free(batch[i]);
        }
        return;
    }
    run->agent = agent;
    memcpy(run->requests, batch, n * sizeof(*batch));
    run->n_requests = n;
    run->dry_run = batch[0]->dry_run;
    agent->apply->running = run;
    for (size_t i = 0; i < n; i++) {
        size_t first_change = run->n_changes;

        *err = '\0';
        batch[i]->stage_error = 0;
        r = prepare(run, batch[i], err, sizeof(err));
        if (r < 0) {
            /* What the refused request prepared before it failed goes too: all or none. */
            unstage_from(run, first_change);
            refuse(batch[i], r, *err ? err : cv_strerror(r));
        } else {
            run->accepted++;
        }
    }
    if (run->accepted == 0) {
        finish(run);
        return;
    }
    stage_all(run);
}

static void run_next(struct agent *agent)
{
    struct apply_queue *queue = agent->apply;
    struct apply_request *batch[BATCH_MAX];
    size_t n;

    if (!queue || queue->running || !queue->head || agent->shutting_down)
        return;
    evtimer_del(queue->window);
    n = apply_batch_take(&queue->head, &queue->tail, batch);
    start_run(agent, batch, n);
}

/* Answers every queued request that the agent is shutting down, and empties the queue. */
static void refuse_queued(struct apply_queue *queue)
{
    while (queue->head) {
        struct apply_request *next = queue->head->next;

        refuse_with(queue->head, 1, "shutting_down",
                    "the agent is shutting down; nothing was changed");
        apply_request_free(queue->head);
        queue->head = next;
    }
    queue->tail = NULL;
}

void apply_shutdown(struct agent *agent)
{
    struct apply_queue *queue = agent->apply;
    struct apply_run *run = queue ? queue->running : NULL;

    if (!queue)
        return;
    if (queue->window)
        evtimer_del(queue->window);
    refuse_queued(queue);
    /* Keys still being made: the workers finish (or are cancelled at exit), and what they
     * staged is discarded; nothing is committed, and the callers hear so now. */
    for (size_t i = 0; run && run->n_staging && i < run->n_requests; i++)
        if (!run->requests[i]->answered)
            refuse_with(run->requests[i], 1, "shutting_down",
                        "the agent is shutting down; nothing was changed");
}

void apply_free_all(struct agent *agent)
{
    struct apply_queue *queue = agent->apply;

    if (!queue)
        return;
    refuse_queued(queue);
    if (queue->running) {
        for (size_t i = 0; i < queue->running->n_requests; i++)
            if (!queue->running->requests[i]->answered)
                refuse_with(queue->running->requests[i], 1, "shutting_down",
                            "the agent is shutting down");
        run_free(queue->running);
    }
    if (queue->window)
        event_free(queue->window);
    free(queue);
    agent->apply = NULL;
}
