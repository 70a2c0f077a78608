/* The handlers of the certificate and policy commands (the "cluster ..." rows of the table). */
#include "commands_certs.h"

#include "cert_info.h"
#include "cert_names.h"
#include "apply.h"
#include "audit.h"
#include "certs.h"
#include "config.h"
#include "log.h"
#include "offload.h"
#include "render.h"
#include "service.h"
#include "supervisor.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The services whose tls sections name the certificate. */
static json_t *users_of(const struct agent *agent, const char *name)
{
    json_t *users = json_array();

    for (size_t i = 0; i < supervisor_count(agent->supervisor); i++) {
        const struct service_config *config =
            service_config_of(supervisor_service(agent->supervisor, i));

        for (size_t t = 0; t < config->n_tls; t++) {
            /* mtls_trusted_ca is in use where certificate sign-in renders it. */
            if (strcmp(config->tls[t].certificate, name) == 0 ||
                (config->tls[t].trust && strcmp(config->tls[t].trust, name) == 0) ||
                (strcmp(name, CERT_MTLS_TRUSTED_CA) == 0 &&
                 render_certificate_auth(&config->tls[t], &agent->config->policy))) {
                json_array_append_new(users, json_string(config->name));
                break;
            }
        }
    }
    return users;
}

/* The current certificate of name, described; with its PEM when asked. Never its key. */
/* What every entry says, set or not: may the agent re-issue it, may it be deleted. */
static json_t *with_flags(json_t *info, const char *name)
{
    const struct cert_name *entry = cert_name_lookup(name);

    json_object_set_new(info, "generated", json_boolean(entry && entry->generated));
    json_object_set_new(info, "required", json_boolean(entry && entry->required));
    if (entry)
        json_object_set_new(info, "purpose", json_string(entry->description));
    return info;
}

static json_t *describe(struct agent *agent, const char *name, bool with_pem)
{
    struct certstore *store = agent->certs->store;
    char origin[32];
    char *pem = NULL;
    size_t len = 0;
    unsigned generation;
    json_t *info;

    if (certstore_current(store, name, &generation) < 0 ||
        certstore_read_cert(store, name, generation, &pem, &len) < 0)
        return with_flags(json_pack("{s:s, s:s}", "name", name, "error", "not set"), name);
    info = cert_info_describe(pem, len, time(NULL));
    if (!info) {
        free(pem);
        return with_flags(json_pack("{s:s, s:s}", "name", name, "error", "unreadable in the store"),
                          name);
    }
    certstore_get_origin(store, name, generation, origin, sizeof(origin));
    json_object_set_new(info, "name", json_string(name));
    json_object_set_new(info, "origin", json_string(origin));
    json_object_set_new(info, "generation", json_integer(generation));
    json_object_set_new(info, "used_by", users_of(agent, name));
    if (with_pem)
        json_object_set_new(info, "pem", json_stringn(pem, len));
    free(pem);
    return with_flags(info, name);
}

void handle_cluster_certificate_list(struct agent *agent, struct control_conn *conn, json_t *args,
                                     json_t *options)
{
    json_t *items = json_array();

    (void)args;
    /* With "pem": each certificate's PEM too (never a key), for the REST API's listing. */
    for (size_t i = 0; i < cert_names_count; i++)
        json_array_append_new(items, describe(agent, cert_names[i].name,
                                              json_is_true(json_object_get(options, "pem"))));
    control_reply(conn, json_pack("{s:i, s:o}", "exit", 0, "items", items));
}

void handle_cluster_certificate_show(struct agent *agent, struct control_conn *conn, json_t *args,
                                     json_t *options)
{
    const char *name = json_string_value(json_array_get(args, 0));
    json_t *item;

    (void)options;
    if (!name || json_array_size(args) != 1) {
        control_reply_error(conn, 2, "usage: cluster certificate show <name>");
        return;
    }
    if (!cert_name_lookup(name)) {
        control_reply_error(conn, 4, "unknown certificate '%s' (known: %s)", name,
                            cert_names_list());
        return;
    }
    item = describe(agent, name, true);
    if (json_object_get(item, "error")) {
        json_decref(item);
        control_reply_error(conn, 1, "certificate '%s' is not set", name);
        return;
    }
    control_reply(conn, json_pack("{s:i, s:[o]}", "exit", 0, "items", item));
}

void handle_cluster_certificate_ca(struct agent *agent, struct control_conn *conn, json_t *args,
                                   json_t *options)
{
    struct certstore *store = agent->certs->store;
    char *pem = NULL;
    size_t len = 0;
    unsigned generation;

    (void)args;
    (void)options;
    if (certstore_current(store, CERT_CLUSTER_CA, &generation) < 0 ||
        certstore_read_cert(store, CERT_CLUSTER_CA, generation, &pem, &len) < 0) {
        control_reply_error(conn, 1, "the cluster CA is not set");
        return;
    }
    control_reply(conn, json_pack("{s:i, s:s%, s:s}", "exit", 0, "pem", pem, len, "path",
                                  agent->certs->ca_export_path));
    free(pem);
}

void handle_cluster_config_show(struct agent *agent, struct control_conn *conn, json_t *args,
                                json_t *options)
{
    const struct policy *policy = &agent->config->policy;
    json_t *items = json_array();

    (void)args;
    (void)options;
    for (int i = 0; i < POLICY_COUNT; i++) {
        const char *value =
            policy_shown((enum policy_setting)i, policy_get(policy, (enum policy_setting)i));
        char source[4200];

        policy_describe_source(policy, (enum policy_setting)i, source, sizeof(source));
        json_array_append_new(items, json_pack("{s:s, s:s?, s:s}", "name",
                                               policy_setting_name((enum policy_setting)i), "value",
                                               value, "source", source));
    }
    control_reply(conn, json_pack("{s:i, s:o}", "exit", 0, "items", items));
}

/* --- changes: through the apply pipeline --- */

static void on_applied(void *data, int exit_status, json_t *reply)
{
    struct control_conn *conn = data;

    (void)exit_status;
    control_reply(conn, reply);
}

static void on_abandoned(void *data)
{
    struct control_conn *conn = data;

    /* The change goes on; only its answer has nobody to go to. */
    apply_forget(control_conn_agent(conn), conn);
}

void commands_submit_change(struct agent *agent, struct control_conn *conn,
                            struct apply_request *request, json_t *options)
{
    char who[128];

    if (!request) {
        control_reply_error(conn, 1, "out of memory");
        return;
    }
    control_peer_describe(control_conn_peer(conn), who, sizeof(who));
    control_on_abandon(conn, on_abandoned, conn);
    apply_submit(agent, request, who, json_is_true(json_object_get(options, "dry_run")), on_applied,
                 conn);
}

void handle_cluster_certificate_set(struct agent *agent, struct control_conn *conn, json_t *args,
                                    json_t *options)
{
    const char *name = json_string_value(json_array_get(args, 0));
    json_t *cert = json_object_get(options, "certificate");
    json_t *key = json_object_get(options, "key");

    if (!name || !json_is_string(cert) || (key && !json_is_string(key))) {
        control_reply_error(conn, 2,
                            "usage: cluster certificate set <name> certificate_file <file> "
                            "[key_file <file>]");
        return;
    }
    commands_submit_change(agent, conn,
                           apply_certificate(name, json_string_value(cert),
                                             json_string_length(cert),
                                             key ? json_string_value(key) : NULL,
                                             key ? json_string_length(key) : 0, "user-provided"),
                           options);
}

void handle_cluster_certificate_rotate(struct agent *agent, struct control_conn *conn, json_t *args,
                                       json_t *options)
{
    const char *name = json_string_value(json_array_get(args, 0));

    if (!name || json_array_size(args) != 1) {
        control_reply_error(conn, 2, "usage: cluster certificate rotate <name>|all");
        return;
    }
    commands_submit_change(agent, conn, apply_rotate(name), options);
}

void handle_cluster_certificate_delete(struct agent *agent, struct control_conn *conn, json_t *args,
                                       json_t *options)
{
    const char *name = json_string_value(json_array_get(args, 0));

    if (!name || json_array_size(args) != 1) {
        control_reply_error(conn, 2, "usage: cluster certificate delete <name>");
        return;
    }
    commands_submit_change(agent, conn, apply_delete(name), options);
}

#define CSR_SANS_MAX 64

/*
 * A CSR being made on an offload worker (the key takes seconds for RSA-4096):
 * the worker touches only csr, result, csr_pem and message; the rest is the
 * loop's, read in on_csr_made().
 */
struct csr_job {
    struct agent *agent;
    struct control_conn *conn; /* NULL once the client went away */
    const char *name;          /* static storage (cert_names[]) */
    char who[128];
    struct certs_csr *csr;
    int result;
    char *csr_pem;
    char message[1024];
};

static void csr_job_free(struct csr_job *job)
{
    certs_csr_free(job->csr);
    free(job->csr_pem);
    free(job);
}

static void make_csr(void *data)
{
    struct csr_job *job = data;

    job->result = certs_csr_make(job->csr, &job->csr_pem, job->message, sizeof(job->message));
}

static void on_csr_abandoned(void *data)
{
    struct csr_job *job = data;

    job->conn = NULL; /* the key is still made and kept: only the answer has nobody to go to */
}

static void on_csr_made(void *data, bool cancelled)
{
    struct csr_job *job = data;

    if (cancelled) {
        csr_job_free(job);
        return;
    }
    if (job->result == 0)
        audit_record(job->agent->audit, job->who, "made a new pending key and CSR for '%s'",
                     job->name);
    if (job->conn && job->result < 0)
        control_reply_error(job->conn, 1, "cannot make a CSR for '%s': %s", job->name,
                            job->message);
    else if (job->conn)
        control_reply(job->conn, json_pack("{s:i, s:s, s:s}", "exit", 0, "name", job->name, "csr",
                                           job->csr_pem));
    csr_job_free(job);
}

/*
 * Not a change of what is served: the new key waits in the store, unused,
 * until 'set' brings its certificate; a second csr replaces the waiting key.
 */
void handle_cluster_certificate_csr(struct agent *agent, struct control_conn *conn, json_t *args,
                                    json_t *options)
{
    const char *name = json_string_value(json_array_get(args, 0));
    const char *subject = json_string_value(json_object_get(options, "subject"));
    json_t *san_list = json_object_get(options, "sans");
    const struct cert_name *entry;
    const char *sans[CSR_SANS_MAX];
    struct csr_job *job;
    size_t n_sans = 0;
    char err[1024];
    json_t *value;
    size_t i;
    int r;

    if (!name || json_array_size(args) != 1 || json_array_size(san_list) > CSR_SANS_MAX) {
        control_reply_error(
            conn, 2,
            "usage: cluster certificate csr <name> [--subject <dn>] [--san <name>...] "
            "(at most %d names)",
            CSR_SANS_MAX);
        return;
    }
    entry = cert_name_lookup(name);
    if (!entry) {
        control_reply_error(conn, 4, "unknown certificate '%s' (known: %s)", name,
                            cert_names_list());
        return;
    }
    if (!entry->has_key) {
        control_reply_error(conn, 1,
                            "certificate '%s' holds CA certificates only: it has no key "
                            "and needs no CSR",
                            name);
        return;
    }
    json_array_foreach(san_list, i, value)
    {
        if (json_is_string(value))
            sans[n_sans++] = json_string_value(value);
    }
    if (json_is_true(json_object_get(options, "dry_run"))) {
        control_reply(conn, json_pack("{s:i, s:b, s:s}", "exit", 0, "dry_run", 1, "name", name));
        return;
    }
    job = calloc(1, sizeof(*job));
    if (!job) {
        control_reply_error(conn, 1, "out of memory");
        return;
    }
    r = certs_csr_new(agent->certs, &agent->config->certs, entry->name, subject, sans, n_sans,
                      &job->csr, err, sizeof(err));
    if (r < 0) {
        free(job);
        control_reply_error(conn, 1, "cannot make a CSR for '%s': %s", name, err);
        return;
    }
    job->agent = agent;
    job->conn = conn;
    job->name = entry->name;
    control_peer_describe(control_conn_peer(conn), job->who, sizeof(job->who));
    /* The key is made on a worker; the answer comes from on_csr_made(). */
    if (offload_submit(agent->offload, make_csr, on_csr_made, job) < 0) {
        csr_job_free(job);
        control_reply_error(conn, 1, "out of memory");
        return;
    }
    control_on_abandon(conn, on_csr_abandoned, job);
}

/*
 * Whether names[i] names a setting an earlier name did (twice, or in both spellings:
 * cipher_suites and control_cipher_suites), which would leave the last one silently winning;
 * refused with the reason when so.
 */
static bool repeated_setting(struct control_conn *conn, const char *const *names, size_t i)
{
    int setting = policy_setting_lookup(names[i]);

    for (size_t j = 0; j < i; j++) {
        if (policy_setting_lookup(names[j]) != setting)
            continue;
        if (strcasecmp(names[j], names[i]) == 0)
            control_reply_refused(conn, 2, "invalid_setting",
                                  "%s is given twice; give each setting once: nothing was changed",
                                  names[i]);
        else
            control_reply_refused(conn, 2, "invalid_setting",
                                  "%s and %s are two names of one setting (%s); give it once: "
                                  "nothing was changed",
                                  names[j], names[i], policy_setting_name(setting));
        return true;
    }
    return false;
}

void commands_submit_settings(struct agent *agent, struct control_conn *conn, json_t *args,
                              json_t *options, int (*lookup)(const char *name), const char *usage,
                              const char *what, const char *hint)
{
    size_t n = json_array_size(args) / 2;
    const char *names[POLICY_COUNT], *values[POLICY_COUNT];

    if (n == 0 || n > POLICY_COUNT || json_array_size(args) % 2) {
        control_reply_error(conn, 2, "usage: %s", usage);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value(json_array_get(args, 2 * i));
        int setting = name ? lookup(name) : -1;

        if (setting < 0) {
            control_reply_refused(conn, 2, "unknown_setting", "unknown %s setting '%s' (%s)", what,
                                  name ? name : "", hint);
            return;
        }
        names[i] = policy_setting_name((enum policy_setting)setting);
        values[i] = json_string_value(json_array_get(args, 2 * i + 1));
        for (size_t j = 0; j < i; j++)
            if (names[j] == names[i]) {
                control_reply_refused(conn, 2, "usage", "'%s' is given twice", name);
                return;
            }
        if (!values[i]) {
            control_reply_error(conn, 2, "usage: the value of '%s' must be a string", name);
            return;
        }
    }
    commands_submit_change(agent, conn, apply_policy(names, values, n), options);
}

void handle_cluster_config(struct agent *agent, struct control_conn *conn, json_t *args,
                           json_t *options)
{
    size_t n = json_array_size(args) / 2;
    const char *names[POLICY_COUNT], *values[POLICY_COUNT];

    if (n == 0 || json_array_size(args) % 2 || n > POLICY_COUNT) {
        control_reply_error(conn, 2,
                            "usage: cluster config <setting> <value> [<setting> <value>...]");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        names[i] = json_string_value(json_array_get(args, 2 * i));
        values[i] = json_string_value(json_array_get(args, 2 * i + 1));
        if (policy_setting_lookup(names[i]) < 0) {
            control_reply_refused(conn, 2, "unknown_setting",
                                  "unknown setting '%s' (see 'cluster config show')", names[i]);
            return;
        }
        if (repeated_setting(conn, names, i))
            return;
    }
    commands_submit_change(agent, conn, apply_policy(names, values, n), options);
}
