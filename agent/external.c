/* Certificates kept in external files: the watch, and each consistent change into the pipeline. */
#include "external.h"

#include "apply.h"
#include "cert_watch.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* certbot writes several files: they are read once they are all there. */
#define EXTERNAL_SETTLE_MS 200

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
    struct apply_request *request =
        apply_certificate(name, cert_pem, cert_len, key_pem, key_len, "external");
    char *label = strdup(name);
    char who[320];

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
        return r;
    }
    cert_watch_check_now(agent->external);
    return 0;
}

void external_watch_free(struct agent *agent)
{
    cert_watch_free(agent->external);
    agent->external = NULL;
}
