/* The one pipeline every change goes through: validate, stage, render, plan, execute, roll back. */
#include "apply.h"

#include "cert_info.h"
#include "cert_names.h"
#include "certs.h"
#include "cv_error.h"
#include "log.h"
#include "render_files.h"
#include "service.h"
#include "supervisor.h"
#include "x509_check.h"

#include <errno.h>
#include <grp.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GENERATIONS_KEPT 2 /* older generations kept for rollback by hand */

enum apply_kind { APPLY_CERTIFICATE, APPLY_POLICY };

struct apply_request {
    struct apply_request *next;
    enum apply_kind kind;
    /* APPLY_CERTIFICATE */
    char *name;
    char *cert_pem;
    size_t cert_len;
    char *key_pem; /* wiped on free */
    size_t key_len;
    /* APPLY_POLICY */
    char **setting_names;
    char **setting_values;
    size_t n_settings;
    /* the caller */
    char who[64];
    bool dry_run;
    apply_done_fn done;
    void *data;
};

/* The state of the change being carried out. */
struct apply_run {
    struct agent *agent;
    struct apply_request *request;
    struct render_override override; /* the staged generation of the certificate */
    bool staged;
    bool had_current;
    unsigned old_generation;
    bool used_pending_key;
    char old_fingerprint[96];
    char new_fingerprint[96];
    char warning[640];
    struct policy new_policy;
    struct policy old_policy;
    bool policy_swapped;
    struct rendered_set rendered;
    struct service **steps; /* affected services, dependency order */
    size_t n_steps;
    size_t current_step;
    bool rolling_back;
    char failure[1024];
    json_t *done_services; /* names reloaded or restarted */
};

struct apply_queue {
    struct apply_request *head;
    struct apply_request *tail;
    struct apply_run *running;
};

static void run_next(struct agent *agent);

static void request_free(struct apply_request *request)
{
    if (!request)
        return;
    free(request->name);
    free(request->cert_pem);
    if (request->key_pem)
        OPENSSL_clear_free(request->key_pem, request->key_len);
    for (size_t i = 0; i < request->n_settings; i++) {
        free(request->setting_names[i]);
        free(request->setting_values[i]);
    }
    free(request->setting_names);
    free(request->setting_values);
    free(request);
}

struct apply_request *apply_certificate(const char *name, const char *cert_pem, size_t cert_len,
                                        const char *key_pem, size_t key_len)
{
    struct apply_request *request = calloc(1, sizeof(*request));

    if (!request)
        return NULL;
    request->kind = APPLY_CERTIFICATE;
    request->name = strdup(name);
    request->cert_pem = malloc(cert_len + 1);
    if (key_pem) {
        request->key_pem = OPENSSL_malloc(key_len + 1);
        if (request->key_pem) {
            memcpy(request->key_pem, key_pem, key_len);
            request->key_pem[key_len] = '\0';
            request->key_len = key_len;
        }
    }
    if (!request->name || !request->cert_pem || (key_pem && !request->key_pem)) {
        request_free(request);
        return NULL;
    }
    memcpy(request->cert_pem, cert_pem, cert_len);
    request->cert_pem[cert_len] = '\0';
    request->cert_len = cert_len;
    return request;
}

struct apply_request *apply_policy(const char *const *names, const char *const *values, size_t n)
{
    struct apply_request *request = calloc(1, sizeof(*request));

    if (!request)
        return NULL;
    request->kind = APPLY_POLICY;
    request->setting_names = calloc(n + 1, sizeof(char *));
    request->setting_values = calloc(n + 1, sizeof(char *));
    if (!request->setting_names || !request->setting_values) {
        request_free(request);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        request->setting_names[i] = strdup(names[i]);
        request->setting_values[i] = strdup(values[i]);
        request->n_settings = i + 1;
        if (!request->setting_names[i] || !request->setting_values[i]) {
            request_free(request);
            return NULL;
        }
    }
    return request;
}

static struct apply_queue *queue_of(struct agent *agent)
{
    if (!agent->apply)
        agent->apply = calloc(1, sizeof(struct apply_queue));
    return agent->apply;
}

void apply_submit(struct agent *agent, struct apply_request *request, const char *who, bool dry_run,
                  apply_done_fn done, void *data)
{
    struct apply_queue *queue = queue_of(agent);

    snprintf(request->who, sizeof(request->who), "%s", who);
    request->dry_run = dry_run;
    request->done = done;
    request->data = data;
    if (!queue) {
        done(data, 1, json_pack("{s:i, s:s}", "exit", 1, "error", "out of memory"));
        request_free(request);
        return;
    }
    if (queue->tail)
        queue->tail->next = request;
    else
        queue->head = request;
    queue->tail = request;
    if (!queue->running)
        run_next(agent);
}

void apply_forget(struct agent *agent, void *data)
{
    struct apply_queue *queue = agent->apply;

    if (!queue)
        return;
    for (struct apply_request *r = queue->head; r; r = r->next)
        if (r->data == data)
            r->done = NULL;
    if (queue->running && queue->running->request->data == data)
        queue->running->request->done = NULL;
}

/* --- finishing --- */

static void finish(struct apply_run *run, int exit_status, json_t *reply)
{
    struct agent *agent = run->agent;
    struct apply_queue *queue = agent->apply;

    if (run->request->done)
        run->request->done(run->request->data, exit_status, reply);
    else
        json_decref(reply);
    if (run->staged && (exit_status != 0 || run->request->dry_run))
        certstore_discard(agent->certs->store, run->override.name, run->override.generation);
    rendered_set_clear(&run->rendered);
    policy_clear(&run->new_policy);
    policy_clear(&run->old_policy);
    json_decref(run->done_services);
    free(run->steps);
    request_free(run->request);
    free(run);
    queue->running = NULL;
    run_next(agent);
}

static void fail(struct apply_run *run, int exit_status, const char *message)
{
    finish(run, exit_status, json_pack("{s:i, s:s}", "exit", exit_status, "error", message));
}

static const struct policy *policy_in_use(const struct apply_run *run)
{
    return run->request->kind == APPLY_POLICY ? &run->new_policy : &run->agent->config->policy;
}

static const char *what(const struct apply_run *run, char *buf, size_t len)
{
    if (run->request->kind == APPLY_CERTIFICATE) {
        snprintf(buf, len, "certificate '%s' %s -> %s", run->request->name,
                 *run->old_fingerprint ? run->old_fingerprint : "(none)", run->new_fingerprint);
    } else {
        size_t used = (size_t)snprintf(buf, len, "policy");
        for (size_t i = 0; i < run->request->n_settings && used < len; i++)
            used +=
                (size_t)snprintf(buf + used, len - used, " %s=%s", run->request->setting_names[i],
                                 run->request->setting_values[i]);
    }
    return buf;
}

static void succeed(struct apply_run *run)
{
    struct agent *agent = run->agent;
    char *services = json_dumps(run->done_services, JSON_COMPACT);
    char change[1024];

    if (run->request->kind == APPLY_CERTIFICATE) {
        certstore_prune(agent->certs->store, run->request->name, GENERATIONS_KEPT);
        if (run->used_pending_key)
            certstore_drop_pending_key(agent->certs->store, run->request->name);
    }
    log_notice("audit: %s changed %s: applied; services %s", run->request->who,
               what(run, change, sizeof(change)), services ? services : "[]");
    finish(run, 0,
           json_pack("{s:i, s:O, s:s, s:s, s:s}", "exit", 0, "services", run->done_services,
                     "warning", run->warning, "fingerprint", run->new_fingerprint, "name",
                     run->request->name ? run->request->name : ""));
    free(services);
}

/* --- execution, one service at a time --- */

static void step(struct apply_run *run);

static void on_step_done(struct service *service, void *data, int result, const char *why)
{
    struct apply_run *run = data;

    if (result < 0 && !run->rolling_back) {
        snprintf(run->failure, sizeof(run->failure),
                 "service '%s' did not come back with the change: %s", service->config->name,
                 why ? why : cv_strerror(result));
        log_error("Apply: %s; rolling back", run->failure);
        run->rolling_back = true;
        run->n_steps = run->current_step + 1; /* restart what was touched, the failed one too */
        run->current_step = 0;
        /* Restore before restarting, so the restarts take the old files. */
        if (run->request->kind == APPLY_CERTIFICATE) {
            struct certstore *store = run->agent->certs->store;

            /* The old pointer back, then the new generation goes (finish() discards it);
             * a certificate that had none before goes entirely. */
            if (run->had_current &&
                certstore_commit(store, run->request->name, run->old_generation, NULL, 0) == 0)
                run->staged = true;
            else if (!run->had_current)
                certstore_delete(store, run->request->name, NULL, 0);
        } else if (run->policy_swapped) {
            char path[4200], err[512];

            policy_clear(&run->agent->config->policy);
            policy_copy(&run->agent->config->policy, &run->old_policy);
            snprintf(path, sizeof(path), "%s/policy.json", run->agent->config->state_dir);
            if (policy_state_save(&run->old_policy, path, err, sizeof(err)) < 0)
                log_error("Apply: cannot restore the policy state file: %s", err);
        }
        rendered_set_write(&run->rendered, true, config_service_gid(run->agent->config), NULL, 0);
        step(run);
        return;
    }
    if (!run->rolling_back)
        json_array_append_new(run->done_services, json_string(service->config->name));
    run->current_step++;
    step(run);
}

static void step(struct apply_run *run)
{
    while (run->current_step < run->n_steps) {
        struct service *service = run->steps[run->current_step];

        /* Applying: a service that is not running takes the new files when it starts.
         * Rolling back: every service the change touched comes back, whatever state the
         * failure left it in (FATAL after a rejected reload), unless an operator stopped it. */
        if ((!run->rolling_back && service->fsm.state != SERVICE_RUNNING) ||
            (run->rolling_back && service->operator_stopped)) {
            run->current_step++;
            continue;
        }
        if (!run->rolling_back && service->config->reload_signal) {
            service_wait(service, WAIT_RELOADED, on_step_done, run);
            if (service_reload(service) < 0)
                service_complete_waiters(service, WAIT_RELOADED, -ESRCH,
                                         "cannot send the reload signal");
        } else {
            service_wait(service, WAIT_READY, on_step_done, run);
            supervisor_mark_restart(run->agent, service);
            supervisor_schedule(run->agent);
        }
        return; /* on_step_done continues */
    }
    if (run->rolling_back) {
        char message[1200];

        snprintf(message, sizeof(message), "%s; rolled back: the previous %s is in force again",
                 run->failure, run->request->kind == APPLY_CERTIFICATE ? "certificate" : "policy");
        log_notice("audit: %s changed nothing: %s", run->request->who, message);
        fail(run, 1, message);
        return;
    }
    succeed(run);
}

/* --- preparation: validate, stage, render, plan --- */

static int prepare_certificate(struct apply_run *run, char *err, size_t err_len)
{
    struct apply_request *request = run->request;
    struct certstore *store = run->agent->certs->store;
    const struct cert_name *entry = cert_name_lookup(request->name);
    struct x509_checked *checked = NULL;
    char *key = request->key_pem, *pending = NULL, *old = NULL;
    size_t old_len = 0;
    size_t key_len = request->key_len, pending_len = 0;
    int r;

    if (!entry) {
        snprintf(err, err_len, "unknown certificate '%s' (known: %s)", request->name,
                 cert_names_list());
        return CV_EUNKNOWN_CERT;
    }
    if (!key && entry->has_key) {
        if (certstore_read_pending_key(store, request->name, &pending, &pending_len) < 0) {
            snprintf(err, err_len,
                     "key_file is required: no key is pending for '%s' (give key_file, or make "
                     "one with 'cluster certificate csr %s')",
                     request->name, request->name);
            return CV_EINVALID_CERT;
        }
        key = pending;
        key_len = pending_len;
        run->used_pending_key = true;
    }
    r = x509_check(request->name, entry->purpose, request->cert_pem, request->cert_len, key,
                   key_len, time(NULL), &checked, err, err_len);
    if (r == 0) {
        snprintf(run->new_fingerprint, sizeof(run->new_fingerprint), "%s", checked->fingerprint);
        snprintf(run->warning, sizeof(run->warning), "%s", checked->warning);
        run->had_current = certstore_current(store, request->name, &run->old_generation) == 0;
        if (run->had_current &&
            certstore_read_cert(store, request->name, run->old_generation, &old, &old_len) == 0) {
            /* For the audit line; an expired or weak old certificate still has one. */
            cert_info_fingerprint(old, old_len, run->old_fingerprint, sizeof(run->old_fingerprint));
            free(old);
        }
        r = certstore_stage(store, request->name, request->cert_pem, request->cert_len, key,
                            entry->has_key ? key_len : 0, true, &run->override.generation, err,
                            err_len);
    }
    if (r == 0) {
        run->staged = true;
        run->override.name = request->name;
        certstore_set_origin(store, request->name, run->override.generation,
                             run->used_pending_key ? "csr" : "user-provided");
    }
    x509_checked_free(checked);
    if (pending)
        OPENSSL_clear_free(pending, pending_len);
    return r;
}

static int prepare_policy(struct apply_run *run, char *err, size_t err_len)
{
    struct apply_request *request = run->request;
    int r = policy_copy(&run->new_policy, &run->agent->config->policy);

    if (r == 0)
        r = policy_copy(&run->old_policy, &run->agent->config->policy);
    for (size_t i = 0; r == 0 && i < request->n_settings; i++) {
        int setting = policy_setting_lookup(request->setting_names[i]);
        char check[600], warn[600];

        if (setting < 0) {
            snprintf(err, err_len, "unknown setting '%s'", request->setting_names[i]);
            return CV_EUSAGE;
        }
        r = policy_check(&run->new_policy, (enum policy_setting)setting, request->setting_values[i],
                         check, sizeof(check), warn, sizeof(warn));
        if (r < 0) {
            snprintf(err, err_len, "%s", check);
            return r;
        }
        if (*warn) {
            log_warning("%s", warn);
            snprintf(run->warning, sizeof(run->warning), "%s", warn);
        }
        r = policy_set(&run->new_policy, (enum policy_setting)setting, request->setting_values[i],
                       POLICY_FROM_RUNTIME, NULL, 0);
    }
    if (r == 0 && policy_check_all(&run->new_policy, err, err_len) < 0)
        r = CV_EINVALID_TLS;
    return r;
}

/* Renders every service with the change, and lists those whose files change, in order. */
static int plan(struct apply_run *run, json_t **ret_plan, char *err, size_t err_len)
{
    struct agent *agent = run->agent;
    json_t *steps = json_array();
    int r = 0;

    run->steps = calloc(agent->n_services + 1, sizeof(*run->steps));
    if (!run->steps || !steps) {
        json_decref(steps);
        return -ENOMEM;
    }
    for (size_t i = 0; r == 0 && i < agent->n_services; i++)
        r = render_files_compute(agent->certs, policy_in_use(run), agent->services[i]->config,
                                 &run->override, &run->rendered, err, err_len);
    if (r == 0)
        r = rendered_set_validate(&run->rendered, agent->certs, policy_in_use(run), &run->override,
                                  err, err_len);
    for (size_t i = 0; r == 0 && i < agent->n_services; i++) {
        struct service *service = agent->services[i];
        json_t *files = json_array();

        if (!rendered_set_changes(&run->rendered, service->config)) {
            json_decref(files);
            continue;
        }
        for (size_t f = 0; f < run->rendered.n_files; f++)
            if (run->rendered.files[f].changed &&
                run->rendered.files[f].spec >= service->config->tls &&
                run->rendered.files[f].spec < service->config->tls + service->config->n_tls)
                json_array_append_new(files, json_string(run->rendered.files[f].output));
        run->steps[run->n_steps++] = service;
        json_array_append_new(
            steps, json_pack("{s:s, s:s, s:s, s:o}", "service", service->config->name, "action",
                             service->config->reload_signal ? "reload" : "restart", "state",
                             service_state_name(service->fsm.state), "files", files));
    }
    if (r < 0) {
        json_decref(steps);
        return r;
    }
    *ret_plan = steps;
    return 0;
}

static int commit_change(struct apply_run *run, char *err, size_t err_len)
{
    struct agent *agent = run->agent;
    char path[4200];
    int r;

    if (run->request->kind == APPLY_CERTIFICATE) {
        r = certstore_commit(agent->certs->store, run->request->name, run->override.generation, err,
                             err_len);
        if (r == 0)
            run->staged = false; /* in force now: never discarded */
    } else {
        snprintf(path, sizeof(path), "%s/policy.json", agent->config->state_dir);
        r = policy_state_save(&run->new_policy, path, err, err_len);
        if (r == 0) {
            policy_clear(&agent->config->policy);
            r = policy_copy(&agent->config->policy, &run->new_policy);
            run->policy_swapped = true;
        }
    }
    if (r == 0)
        r = rendered_set_write(&run->rendered, false, config_service_gid(agent->config), err,
                               err_len);
    return r;
}

static void start_run(struct agent *agent, struct apply_request *request)
{
    struct apply_run *run = calloc(1, sizeof(*run));
    char err[1024] = "";
    json_t *steps = NULL;
    int r;

    if (!run) {
        if (request->done)
            request->done(request->data, 1,
                          json_pack("{s:i, s:s}", "exit", 1, "error", "out of memory"));
        request_free(request);
        run_next(agent);
        return;
    }
    run->agent = agent;
    run->request = request;
    run->done_services = json_array();
    agent->apply->running = run;
    r = request->kind == APPLY_CERTIFICATE ? prepare_certificate(run, err, sizeof(err))
                                           : prepare_policy(run, err, sizeof(err));
    if (r == 0)
        r = plan(run, &steps, err, sizeof(err));
    if (r < 0) {
        fail(run, r == CV_EUNKNOWN_CERT ? 4 : r == CV_EUSAGE ? 2 : 1, *err ? err : cv_strerror(r));
        return;
    }
    if (request->dry_run) {
        finish(run, 0,
               json_pack("{s:i, s:b, s:o, s:s, s:s}", "exit", 0, "dry_run", 1, "plan", steps,
                         "warning", run->warning, "fingerprint", run->new_fingerprint));
        return;
    }
    json_decref(steps);
    r = commit_change(run, err, sizeof(err));
    if (r < 0) {
        fail(run, 1, err);
        return;
    }
    step(run);
}

static void run_next(struct agent *agent)
{
    struct apply_queue *queue = agent->apply;
    struct apply_request *request;

    if (!queue || queue->running || !queue->head)
        return;
    request = queue->head;
    queue->head = request->next;
    if (!queue->head)
        queue->tail = NULL;
    request->next = NULL;
    start_run(agent, request);
}

void apply_free_all(struct agent *agent)
{
    struct apply_queue *queue = agent->apply;

    if (!queue)
        return;
    while (queue->head) {
        struct apply_request *next = queue->head->next;

        request_free(queue->head);
        queue->head = next;
    }
    free(queue);
    agent->apply = NULL;
}
