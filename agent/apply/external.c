/* Certificates kept in external files: the watch, and each consistent change into the pipeline. */
#include "external.h"

#include "apply.h"
#include "cert_names.h"
#include "cert_watch.h"
#include "config.h"
#include "log.h"
#include "x509_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* certbot writes several files: they are read once they are all there. */
#define EXTERNAL_SETTLE_MS 200
/* The exit status of a reload that could not take a certificate its files name. */
#define EXTERNAL_EXIT_NOT_TAKEN 1

/*
 * The answer of the reload whose files external_watch_reload() is reading now, on the loop's
 * one thread and synchronously (cert_watch_check_now calls back before it returns); NULL at
 * every other time, when the files are read because they changed and the log is the only
 * listener.
 */
static json_t *reload_summary;

static void tell_reload(const char *warning)
{
    if (!reload_summary)
        return;
    json_array_append_new(json_object_get(reload_summary, "warnings"), json_string(warning));
    json_object_set_new(reload_summary, "exit", json_integer(EXTERNAL_EXIT_NOT_TAKEN));
}

static void on_problem(void *data, const char *name, const char *warning)
{
    (void)data;
    (void)name;
    tell_reload(warning);
}

/*
 * During a reload, a consistent pair is validated before the answer goes, so that a refusal
 * (which the pipeline would only log, after the answer) reaches the operator. Returns whether
 * the pair may go on into the pipeline. A pair whose key comes from elsewhere (a pending key)
 * is left to the pipeline, which knows where.
 */
static bool valid_for_reload(struct agent *agent, const char *name, const char *cert_pem,
                             size_t cert_len, const char *key_pem, size_t key_len)
{
    const struct cert_name *entry = cert_name_lookup(name);
    const struct external_cert *conf = config_find_external_cert(agent->config, name);
    struct x509_checked *checked = NULL;
    char err[1024], warning[1400];

    if (!reload_summary || !entry || (entry->has_key && !key_pem))
        return true;
    if (x509_check(name, entry->purpose, cert_pem, cert_len, key_pem, key_len, time(NULL), &checked,
                   err, sizeof(err)) == 0) {
        x509_checked_free(checked);
        return true;
    }
    log_error("External certificate '%s' refused, the one in force stays: %s", name, err);
    snprintf(warning, sizeof(warning),
             "certificate '%s' (%s): %s (cert_file %s); the certificate in force stays until "
             "the files are fixed",
             name, conf && conf->source ? conf->source : "conf.d", err,
             conf ? conf->cert_file : "?");
    tell_reload(warning);
    return false;
}

/* The file a change came from, for the audit line and the result's log line. */
static const char *file_of(const struct agent *agent, const char *name)
{
    const struct external_cert *cert = config_find_external_cert(agent->config, name);

    return cert ? cert->cert_file : "?";
}

static void on_applied(void *data, int exit_status, json_t *reply)
{
    char *name = data;

    if (exit_status == 0)
        log_notice("External certificate '%s' applied", name);
    else
        log_error("External certificate '%s' refused, the one in force stays: %s", name,
                  json_string_value(json_object_get(reply, "error")));
    json_decref(reply);
    free(name);
}

static void on_change(void *data, const char *name, const char *cert_pem, size_t cert_len,
                      const char *key_pem, size_t key_len)
{
    struct agent *agent = data;
    struct apply_request *request;
    char *label, who[320];

    if (!valid_for_reload(agent, name, cert_pem, cert_len, key_pem, key_len))
        return;
    request = apply_certificate(name, cert_pem, cert_len, key_pem, key_len, "external");
    label = strdup(name);
    if (!request || !label) {
        log_error("External certificate '%s': out of memory", name);
        free(label);
        return;
    }
    snprintf(who, sizeof(who), "file %s", file_of(agent, name));
    log_info("External certificate '%s' changed on disk; applying it", name);
    apply_submit(agent, request, who, false, on_applied, label);
}

int external_watch_start(struct agent *agent)
{
    return external_watch_reload(agent, NULL);
}

int external_watch_reload(struct agent *agent, json_t *summary)
{
    char err[512];
    int r;

    /* A reload may have changed the sections: start again from the configuration in force.
     * An unchanged pair read again is "unchanged" in the pipeline and touches nothing. */
    external_watch_free(agent);
    if (agent->config->n_external_certs == 0)
        return 0;
    r = cert_watch_new(agent->base, agent->config->external_certs, agent->config->n_external_certs,
                       EXTERNAL_SETTLE_MS, on_change, agent, &agent->external, err, sizeof(err));
    if (r < 0) {
        log_error("Cannot watch the external certificate files: %s", err);
        if (summary) {
            char warning[600];

            snprintf(warning, sizeof(warning), "cannot watch the external certificate files: %s",
                     err);
            reload_summary = summary;
            tell_reload(warning);
            reload_summary = NULL;
        }
        return r;
    }
    reload_summary = summary;
    cert_watch_on_problem(agent->external, on_problem, NULL);
    cert_watch_check_now(agent->external);
    reload_summary = NULL;
    return 0;
}

void external_watch_free(struct agent *agent)
{
    cert_watch_free(agent->external);
    agent->external = NULL;
}
