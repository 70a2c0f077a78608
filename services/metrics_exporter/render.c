/* The agent's "metrics" reply as Prometheus text (exposition format 0.0.4). */
#include "render.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Every family is written whole (HELP, TYPE, then its samples), as the format
 * requires, by walking the reply once per family. Label values come from the
 * configuration and from what services report: they are escaped, never
 * trusted.
 */

static void header(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and line feed escaped (the only escapes defined). */
static void label_value(FILE *f, const char *value)
{
    fputc('"', f);
    for (const char *p = value; *p; p++) {
        if (*p == '\\')
            fputs("\\\\", f);
        else if (*p == '"')
            fputs("\\\"", f);
        else if (*p == '\n')
            fputs("\\n", f);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* name{l1="v1",...} with labels as NULL-terminated name/value pairs; the value follows. */
static void sample_start(FILE *f, const char *name, const char *const *labels)
{
    fputs(name, f);
    for (size_t i = 0; labels && labels[i]; i += 2) {
        fputs(i == 0 ? "{" : ",", f);
        fprintf(f, "%s=", labels[i]);
        label_value(f, labels[i + 1]);
    }
    if (labels && labels[0])
        fputc('}', f);
    fputc(' ', f);
}

static void sample_int(FILE *f, const char *name, const char *const *labels, json_int_t value)
{
    sample_start(f, name, labels);
    fprintf(f, "%" JSON_INTEGER_FORMAT "\n", value);
}

static void sample_real(FILE *f, const char *name, const char *const *labels, double value)
{
    sample_start(f, name, labels);
    if (isnan(value))
        fputs("NaN\n", f);
    else if (isinf(value))
        fputs(value > 0 ? "+Inf\n" : "-Inf\n", f);
    else
        fprintf(f, "%.17g\n", value);
}

/* A JSON number as a sample; anything else is left out. */
static void sample_number(FILE *f, const char *name, const char *const *labels, const json_t *v)
{
    if (json_is_integer(v))
        sample_int(f, name, labels, json_integer_value(v));
    else if (json_is_real(v))
        sample_real(f, name, labels, json_real_value(v));
}

static const char *string_of(const json_t *object, const char *key)
{
    return json_string_value(json_object_get(object, key));
}

/* --- certificates --- */

/* One family of seconds left per certificate, labelled as Redis Enterprise labels it: the
 * cluster, the node, the certificate's name and its path through the store's `current` link
 * (the same across rotations, so a rotation does not start a new time series). */
static void expiry_family(FILE *f, const char *family, const char *help, const json_t *certs,
                          const json_t *cluster)
{
    const json_t *cert;
    size_t i;

    header(f, family, "gauge", help);
    json_array_foreach(certs, i, cert)
    {
        const char *name = string_of(cert, "name"), *path = string_of(cert, "current_path");
        const char *labels[] = {"cluster",
                                string_of(cluster, "cluster"),
                                "node",
                                string_of(cluster, "node"),
                                "logical_name",
                                name,
                                "path",
                                path ? path : string_of(cert, "path"),
                                NULL};

        if (name && labels[7] && labels[1] && labels[3])
            sample_number(f, family, labels, json_object_get(cert, "seconds_left"));
    }
}

static void certificate_families(FILE *f, const json_t *certs, const json_t *cluster)
{
    const json_t *cert;
    size_t i;

    expiry_family(f, "node_cert_expiration_seconds",
                  "Seconds until the node's certificate expires (negative once it has expired).",
                  certs, cluster);
    expiry_family(f, "node_cert_expires_in_seconds",
                  "Seconds until the node's certificate expires (Redis Enterprise's v2 name of "
                  "node_cert_expiration_seconds).",
                  certs, cluster);
    header(f, "certvisor_certificate_expiry_timestamp_seconds", "gauge",
           "When the certificate in force expires, in seconds since the Unix epoch.");
    json_array_foreach(certs, i, cert)
    {
        const char *name = string_of(cert, "name");
        const char *labels[] = {"name", name, NULL};

        if (name)
            sample_number(f, "certvisor_certificate_expiry_timestamp_seconds", labels,
                          json_object_get(cert, "not_after"));
    }
    header(f, "certvisor_certificate_info", "gauge",
           "The certificate in force: where it came from and its generation in the store "
           "(always 1).");
    json_array_foreach(certs, i, cert)
    {
        const char *name = string_of(cert, "name"), *origin = string_of(cert, "origin");
        json_t *generation = json_object_get(cert, "generation");
        char gen[32];
        const char *labels[] = {"name", name, "origin", origin, "generation", gen, NULL};

        if (!name || !origin || !json_is_integer(generation))
            continue;
        snprintf(gen, sizeof(gen), "%" JSON_INTEGER_FORMAT, json_integer_value(generation));
        sample_int(f, "certvisor_certificate_info", labels, 1);
    }
}

/* --- services --- */

/* One family with a sample per service: the number under field, labelled with its name. */
static void service_number_family(FILE *f, const json_t *services, const char *family,
                                  const char *type, const char *help, const char *field)
{
    const json_t *service;
    size_t i;

    header(f, family, type, help);
    json_array_foreach(services, i, service)
    {
        const char *name = string_of(service, "name");
        const char *labels[] = {"service", name, NULL};

        if (name)
            sample_number(f, family, labels, json_object_get(service, field));
    }
}

static void service_families(FILE *f, const json_t *services, const json_t *states)
{
    const json_t *service;
    size_t i;

    header(f, "certvisor_service_up", "gauge",
           "Whether the service is RUNNING (ready) (1) or not (0).");
    json_array_foreach(services, i, service)
    {
        const char *name = string_of(service, "name"), *state = string_of(service, "state");
        const char *labels[] = {"service", name, NULL};

        if (name && state)
            sample_int(f, "certvisor_service_up", labels, strcmp(state, "RUNNING") == 0);
    }
    header(f, "certvisor_service_state", "gauge",
           "The service's state in the supervisor (1 for the state it is in, 0 for the others).");
    json_array_foreach(services, i, service)
    {
        const char *name = string_of(service, "name"), *state = string_of(service, "state");
        const json_t *each;
        size_t s;

        if (!name || !state)
            continue;
        if (json_array_size(states) == 0) {
            const char *labels[] = {"service", name, "state", state, NULL};

            sample_int(f, "certvisor_service_state", labels, 1);
            continue;
        }
        json_array_foreach(states, s, each)
        {
            const char *labels[] = {"service", name, "state", json_string_value(each), NULL};

            if (json_is_string(each))
                sample_int(f, "certvisor_service_state", labels,
                           strcmp(state, json_string_value(each)) == 0);
        }
    }
    service_number_family(f, services, "certvisor_service_uptime_seconds", "gauge",
                          "Seconds since the service became ready (0 when it is not running).",
                          "uptime_seconds");
    service_number_family(f, services, "certvisor_service_restarts_total", "counter",
                          "Times the service was started again since the agent started.",
                          "restarts");
    service_number_family(f, services, "certvisor_service_crashes_total", "counter",
                          "Of those restarts, the revivals after an exit or failure nobody asked "
                          "for (the rest were asked for: a change, an operator).",
                          "crashes");
}

/* --- what services report about themselves (CERTVISOR_STATS) --- */

/* The per-database counters a service may report, and the families they become. */
static const struct {
    const char *key, *name, *type, *help;
} database_stats[] = {
    {"connections", "certvisor_proxy_connections", "gauge", "Client connections open now."},
    {"connections_total", "certvisor_proxy_connections_total", "counter",
     "Client connections accepted."},
    {"handshakes", "certvisor_proxy_handshakes_total", "counter", "TLS handshakes completed."},
    {"handshake_failures", "certvisor_proxy_handshake_failures_total", "counter",
     "TLS handshakes that failed."},
    {"auth_failures", "certvisor_proxy_auth_failures_total", "counter",
     "Client authentications that failed."},
    {"bytes_in", "certvisor_proxy_bytes_received_total", "counter", "Bytes received from clients."},
    {"bytes_out", "certvisor_proxy_bytes_sent_total", "counter", "Bytes sent to clients."},
    {"errors", "certvisor_proxy_errors_total", "counter", "Errors on client connections."},
};

static bool any_database(const json_t *services)
{
    const json_t *service;
    size_t i;

    json_array_foreach(services, i, service)
    {
        if (json_object_size(json_object_get(json_object_get(service, "stats"), "databases")))
            return true;
    }
    return false;
}

static void database_families(FILE *f, const json_t *services)
{
    if (!any_database(services))
        return;
    for (size_t k = 0; k < sizeof(database_stats) / sizeof(database_stats[0]); k++) {
        const json_t *service;
        size_t i;

        header(f, database_stats[k].name, database_stats[k].type, database_stats[k].help);
        json_array_foreach(services, i, service)
        {
            const char *name = string_of(service, "name");
            json_t *databases = json_object_get(json_object_get(service, "stats"), "databases");
            const char *database;
            json_t *counters;

            if (!name || !json_is_object(databases))
                continue;
            json_object_foreach(databases, database, counters)
            {
                const char *labels[] = {"service", name, "database", database, NULL};
                json_t *value = json_object_get(counters, database_stats[k].key);

                /* Counts are never negative: a negative one is a bug of the sender. */
                if (json_is_number(value) && json_number_value(value) >= 0)
                    sample_number(f, database_stats[k].name, labels, value);
            }
        }
    }
}

/* --- the agent --- */

static void apply_families(FILE *f, const json_t *apply)
{
    json_t *at = json_object_get(apply, "at");
    const char *applied[] = {"result", "applied", NULL}, *failed[] = {"result", "failed", NULL};

    /* Before the first change there is no last one: no sample rather than a false 0. */
    header(f, "certvisor_last_apply_timestamp_seconds", "gauge",
           "When the last change (certificate, policy, configuration) finished, in seconds since "
           "the Unix epoch.");
    if (json_is_integer(at) && json_integer_value(at) > 0)
        sample_int(f, "certvisor_last_apply_timestamp_seconds", NULL, json_integer_value(at));
    header(f, "certvisor_last_apply_success", "gauge",
           "Whether the last change was applied (1) or refused or rolled back (0).");
    if (json_is_integer(at) && json_integer_value(at) > 0 &&
        json_is_boolean(json_object_get(apply, "ok")))
        sample_int(f, "certvisor_last_apply_success", NULL,
                   json_is_true(json_object_get(apply, "ok")));
    header(f, "certvisor_applies_total", "counter",
           "Changes finished since the agent started, by result.");
    sample_number(f, "certvisor_applies_total", applied, json_object_get(apply, "applied"));
    sample_number(f, "certvisor_applies_total", failed, json_object_get(apply, "failed"));
}

static void agent_families(FILE *f, const json_t *agent)
{
    const char *version = string_of(agent, "version");
    const char *labels[] = {"version", version, NULL};

    header(f, "certvisor_agent_info", "gauge", "The agent's version (always 1).");
    if (version)
        sample_int(f, "certvisor_agent_info", labels, 1);
    header(f, "certvisor_agent_start_time_seconds", "gauge",
           "When the agent started, in seconds since the Unix epoch.");
    sample_number(f, "certvisor_agent_start_time_seconds", NULL,
                  json_object_get(agent, "start_time"));
}

/* The cluster's store, on a node whose store is etcd (nothing on the local store). */
static void cluster_families(FILE *f, const json_t *cluster)
{
    const char *labels[] = {"cluster", string_of(cluster, "cluster"), "node",
                            string_of(cluster, "node"), NULL};
    json_t *since = json_object_get(cluster, "seconds_since_sync");
    json_t *alive = json_object_get(cluster, "alive");

    if (!labels[1] || !labels[3] || !json_is_boolean(json_object_get(cluster, "reachable")))
        return;
    header(f, "certvisor_cluster_store_reachable", "gauge",
           "Whether an etcd member answered the node's last poll (1) or not (0).");
    sample_int(f, "certvisor_cluster_store_reachable", labels,
               json_is_true(json_object_get(cluster, "reachable")));
    header(f, "certvisor_cluster_store_has_leader", "gauge",
           "Whether the member that answered knew a leader: the store has quorum (1) or not (0).");
    sample_int(f, "certvisor_cluster_store_has_leader", labels,
               json_is_true(json_object_get(cluster, "has_leader")));
    header(f, "certvisor_cluster_store_revision", "gauge",
           "The store's revision at the node's last answered poll.");
    sample_number(f, "certvisor_cluster_store_revision", labels,
                  json_object_get(cluster, "revision"));
    header(f, "certvisor_cluster_seconds_since_sync", "gauge",
           "Seconds since the store last answered the node with a leader.");
    if (json_is_number(since))
        sample_number(f, "certvisor_cluster_seconds_since_sync", labels, since);
    header(f, "certvisor_cluster_nodes_alive", "gauge",
           "Nodes whose alive key the store holds (each on a lease its agent keeps alive).");
    if (json_is_array(alive))
        sample_int(f, "certvisor_cluster_nodes_alive", labels, (json_int_t)json_array_size(alive));
    header(
        f, "certvisor_cluster_reads_stale", "gauge",
        "Whether what the node answers from its own copy may be behind the cluster's (1: no "
        "quorum, unreachable, not read yet, keys it cannot open, or a failed apply) or not (0).");
    sample_int(f, "certvisor_cluster_reads_stale", labels,
               json_object_get(cluster, "reads_stale") != NULL);
    if (!json_is_integer(json_object_get(cluster, "applied_revision")))
        return;
    header(f, "certvisor_cluster_applied_revision", "gauge",
           "The store's revision whose certificates and policy this node last applied.");
    sample_number(f, "certvisor_cluster_applied_revision", labels,
                  json_object_get(cluster, "applied_revision"));
    header(f, "certvisor_cluster_apply_failing", "gauge",
           "Whether the node failed to apply the store's revision (1: it serves the previous "
           "one and tries again) or not (0).");
    sample_int(f, "certvisor_cluster_apply_failing", labels,
               json_object_get(cluster, "apply_error") != NULL);
}

/* OCSP stapling of the proxy certificate: while enabled, or while an answer is held. */
static void ocsp_families(FILE *f, const json_t *ocsp)
{
    static const char *const statuses[] = {"GOOD", "REVOKED", "UNKNOWN", "NONE"};
    const char *status = string_of(ocsp, "cert_status");
    json_t *next_update = json_object_get(ocsp, "next_update");
    json_int_t queries = json_integer_value(json_object_get(ocsp, "queries"));
    json_int_t failures = json_integer_value(json_object_get(ocsp, "failures"));
    const char *ok[] = {"result", "ok", NULL}, *failed[] = {"result", "failed", NULL};

    if (!status || (!json_is_true(json_object_get(ocsp, "enabled")) && strcmp(status, "NONE") == 0))
        return;
    header(f, "certvisor_ocsp_cert_status", "gauge",
           "The proxy certificate's OCSP status held and stapled: 1 for the one it is (GOOD, "
           "REVOKED, UNKNOWN, or NONE when no valid answer is held), 0 for the others.");
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        const char *labels[] = {"status", statuses[i], NULL};

        sample_int(f, "certvisor_ocsp_cert_status", labels, strcmp(status, statuses[i]) == 0);
    }
    header(f, "certvisor_ocsp_revoked", "gauge",
           "Whether the OCSP responder says the proxy certificate is revoked (1) or not (0).");
    sample_int(f, "certvisor_ocsp_revoked", NULL, strcmp(status, "REVOKED") == 0);
    header(f, "certvisor_ocsp_next_update_timestamp_seconds", "gauge",
           "When the stapled answer expires (its nextUpdate), in seconds since the Unix epoch.");
    if (json_is_integer(next_update) && json_integer_value(next_update) > 0)
        sample_number(f, "certvisor_ocsp_next_update_timestamp_seconds", NULL, next_update);
    header(f, "certvisor_ocsp_queries_total", "counter",
           "Queries to the OCSP responder since the agent started, by result.");
    sample_int(f, "certvisor_ocsp_queries_total", ok, queries - failures);
    sample_int(f, "certvisor_ocsp_queries_total", failed, failures);
}

static void up_family(FILE *f, int up)
{
    header(f, "certvisor_up", "gauge", "Whether the agent answered this scrape (1) or not (0).");
    sample_int(f, "certvisor_up", NULL, up);
}

/* Closes the stream and hands its text over, or NULL if anything failed. */
static char *finish(FILE *f, char **buf, size_t *len, size_t *ret_len)
{
    bool failed = ferror(f) != 0;

    if (fclose(f) != 0 || failed) {
        free(*buf);
        return NULL;
    }
    *ret_len = *len;
    return *buf;
}

char *render_metrics(const json_t *reply, size_t *ret_len)
{
    const json_t *services = json_object_get(reply, "services");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    if (!f)
        return NULL;
    certificate_families(f, json_object_get(reply, "certificates"),
                         json_object_get(reply, "cluster"));
    service_families(f, services, json_object_get(reply, "service_states"));
    database_families(f, services);
    apply_families(f, json_object_get(reply, "apply"));
    agent_families(f, json_object_get(reply, "agent"));
    cluster_families(f, json_object_get(reply, "cluster"));
    ocsp_families(f, json_object_get(reply, "ocsp"));
    up_family(f, 1);
    return finish(f, &buf, &len, ret_len);
}

char *render_unavailable(const char *reason, size_t *ret_len)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    if (!f)
        return NULL;
    /* A comment is one line: the reason's own line feeds would end it. */
    fputs("# certvisor-metrics-exporter: no metrics from the agent: ", f);
    for (const char *p = reason; *p; p++)
        fputc(*p == '\n' || *p == '\r' ? ' ' : *p, f);
    fputc('\n', f);
    up_family(f, 0);
    return finish(f, &buf, &len, ret_len);
}
