/* The handlers of the "replica ..." commands: Replica Of links and the trust lists. */
#include "commands_replica.h"

#include "apply.h"
#include "certs.h"
#include "commands_certs.h"
#include "config.h"
#include "service.h"
#include "supervisor.h"
#include "trust.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *users_of_list(const struct agent_config *config, const char *list);

/* --- changes of trust lists: through the apply pipeline --- */

void handle_replica_trust_add(struct agent *agent, struct control_conn *conn, json_t *args,
                              json_t *options)
{
    const char *list = json_string_value(json_array_get(args, 0));
    json_t *pem = json_object_get(options, "certificate");
    struct trust_request *request;
    json_t *users;

    if (!list || json_array_size(args) != 1 || !json_is_string(pem)) {
        control_reply_error(conn, 2, "usage: replica trust add <list> <certificate file>");
        return;
    }
    request =
        trust_request_new(TRUST_ADD, list, json_string_value(pem), json_string_length(pem), NULL);
    if (request) {
        users = users_of_list(agent->config, list);
        request->unused_list = json_array_size(users) == 0;
        json_decref(users);
    }
    commands_submit_change(agent, conn, apply_trust(request), options);
}

void handle_replica_trust_remove(struct agent *agent, struct control_conn *conn, json_t *args,
                                 json_t *options)
{
    const char *list = json_string_value(json_array_get(args, 0));
    json_t *pem = json_object_get(options, "certificate");
    const char *fingerprint = json_string_value(json_object_get(options, "fingerprint"));

    if (!list || json_array_size(args) != 1 || (!json_is_string(pem) == !fingerprint)) {
        control_reply_error(conn, 2,
                            "usage: replica trust remove <list> <certificate file|fingerprint>");
        return;
    }
    commands_submit_change(
        agent, conn,
        apply_trust(trust_request_new(TRUST_REMOVE, list, json_string_value(pem),
                                      pem ? json_string_length(pem) : 0, fingerprint)),
        options);
}

/* --- reading --- */

static bool wanted(json_t *args, const char *name)
{
    size_t i;
    json_t *arg;

    if (json_array_size(args) == 0)
        return true;
    json_array_foreach(args, i, arg)
    {
        if (json_is_string(arg) && strcmp(json_string_value(arg), name) == 0)
            return true;
    }
    return false;
}

/* A database that accepts TLS replication clients: replica_ssl, or client trust in a list. */
static bool is_source(const struct database_decl *db)
{
    return db->client_auth != TLS_VERIFY_NONE &&
           (db->tls_mode == DB_TLS_REPLICA_SSL || trust_ref_is_list(db->client_trust));
}

/* Which databases use list, and for what. */
static json_t *users_of_list(const struct agent_config *config, const char *list)
{
    json_t *users = json_array();

    for (size_t i = 0; i < config->n_databases; i++) {
        const struct database_decl *db = &config->databases[i];

        if (db->client_auth != TLS_VERIFY_NONE && strcmp(db->client_trust, list) == 0)
            json_array_append_new(users, json_pack("{s:s, s:s}", "database", db->name, "as",
                                                   "client certificates (proxy)"));
        if (db->replica && strcmp(db->replica->server_cert, list) == 0)
            json_array_append_new(users, json_pack("{s:s, s:s}", "database", db->name, "as",
                                                   "the source's certificate (syncer)"));
    }
    return users;
}

static bool in_array(json_t *array, const char *name)
{
    size_t i;
    json_t *item;

    json_array_foreach(array, i, item)
    {
        if (strcmp(json_string_value(item), name) == 0)
            return true;
    }
    return false;
}

/* Every list: those in the store, and those a database names (maybe empty still). */
static json_t *list_names(struct agent *agent)
{
    char root[PATH_MAX];
    json_t *names = json_array();
    struct dirent *entry;
    DIR *dir;

    snprintf(root, sizeof(root), "%s/trust", agent->config->state_dir);
    dir = opendir(root);
    while (dir && (entry = readdir(dir))) {
        unsigned generation;

        if (trust_list_name_valid(entry->d_name) &&
            certstore_current(agent->certs->trust, entry->d_name, &generation) == 0)
            json_array_append_new(names, json_string(entry->d_name));
    }
    if (dir)
        closedir(dir);
    for (size_t i = 0; i < agent->config->n_databases; i++) {
        const struct database_decl *db = &agent->config->databases[i];
        const char *refs[2] = {db->client_auth != TLS_VERIFY_NONE ? db->client_trust : NULL,
                               db->replica ? db->replica->server_cert : NULL};

        for (size_t r = 0; r < 2; r++)
            if (refs[r] && trust_ref_is_list(refs[r]) && !in_array(names, refs[r]))
                json_array_append_new(names, json_string(refs[r]));
    }
    return names;
}

void handle_replica_trust_list(struct agent *agent, struct control_conn *conn, json_t *args,
                               json_t *options)
{
    json_t *items = json_array(), *names = list_names(agent), *name;
    time_t now = time(NULL);
    size_t i;

    (void)options;
    json_array_foreach(args, i, name)
    {
        const char *text = json_string_value(name);

        if (!text || !trust_list_name_valid(text)) {
            json_decref(items);
            json_decref(names);
            control_reply_error(conn, 2, "'%s' is not a trust list name (a-z, 0-9 and _)",
                                text ? text : "?");
            return;
        }
        if (!in_array(names, text))
            json_array_append_new(names, json_string(text));
    }
    json_array_foreach(names, i, name)
    {
        const char *list = json_string_value(name);
        struct trust_set set;

        if (!wanted(args, list))
            continue;
        if (trust_list_load(agent->certs->trust, list, &set) < 0) {
            json_array_append_new(
                items, json_pack("{s:s, s:s}", "name", list, "error", "unreadable in the store"));
            continue;
        }
        json_array_append_new(items, json_pack("{s:s, s:o, s:o}", "name", list, "certificates",
                                               trust_set_describe(&set, now), "used_by",
                                               users_of_list(agent->config, list)));
        trust_set_clear(&set);
    }
    json_decref(names);
    control_reply(conn, json_pack("{s:i, s:o}", "exit", 0, "items", items));
}

/* The object a running service reported under key for name ("links", "databases"), or NULL. */
static json_t *reported(const struct agent *agent, const char *key, const char *name,
                        const char **ret_service)
{
    for (size_t i = 0; i < supervisor_count(agent->supervisor); i++) {
        struct service_snapshot now;
        json_t *found;

        service_snapshot(supervisor_service(agent->supervisor, i), &now);
        found = json_object_get(json_object_get(now.stats, key), name);
        if (json_is_object(found)) {
            if (ret_service)
                *ret_service = now.name;
            return found;
        }
    }
    return NULL;
}

/* The replica databases' links, as the syncer reports them. */
static json_t *replica_item(const struct agent *agent, const struct database_decl *db)
{
    const char *service = NULL;
    json_t *link = reported(agent, "links", db->name, &service);
    json_t *item = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s?}", "database", db->name, "role",
                             "replica", "source", db->replica->source, "server_cert",
                             db->replica->server_cert, "verify_hostname",
                             db->replica->verify_hostname, "server_name", db->replica->server_name);

    if (!item)
        return NULL;
    if (!link) {
        json_object_set_new(item, "state", json_string("unknown"));
        json_object_set_new(item, "last_error",
                            json_string("no service reports this link: is the syncer running? "
                                        "(certvisorctl status syncer)"));
        return item;
    }
    json_object_update_missing(item, link);
    json_object_set_new(item, "reported_by", json_string(service));
    return item;
}

/* A source database: what the proxy reports of the replication clients it refused. */
static json_t *source_item(struct agent *agent, const struct database_decl *db)
{
    json_t *stats = reported(agent, "databases", db->name, NULL);
    struct trust_set set = {0};
    json_t *item;

    if (trust_ref_is_list(db->client_trust))
        trust_list_load(agent->certs->trust, db->client_trust, &set);
    item =
        json_pack("{s:s, s:s, s:s, s:s, s:i}", "database", db->name, "role", "source", "tls_mode",
                  db_tls_mode_name(db->tls_mode), "trust", db->client_trust, "trusted", (int)set.n);
    trust_set_clear(&set);
    if (!item || !stats)
        return item;
    json_object_set(item, "connections", json_object_get(stats, "connections"));
    json_object_set(item, "refused", json_object_get(stats, "auth_failures"));
    if (json_object_get(stats, "last_refusal")) {
        json_object_set(item, "last_error", json_object_get(stats, "last_refusal"));
        json_object_set(item, "last_error_at", json_object_get(stats, "last_refusal_at"));
    }
    return item;
}

void handle_replica_status(struct agent *agent, struct control_conn *conn, json_t *args,
                           json_t *options)
{
    const struct agent_config *config = agent->config;
    json_t *items = json_array();
    size_t i;
    json_t *arg;

    (void)options;
    json_array_foreach(args, i, arg)
    {
        bool known = false;

        for (size_t d = 0; d < config->n_databases; d++)
            known |= strcmp(config->databases[d].name, json_string_value(arg) ?: "") == 0;
        if (!known) {
            json_decref(items);
            control_reply_error(conn, 4, "no database '%s'", json_string_value(arg) ?: "?");
            return;
        }
    }
    for (size_t d = 0; d < config->n_databases; d++) {
        const struct database_decl *db = &config->databases[d];

        if (!wanted(args, db->name))
            continue;
        if (db->replica)
            json_array_append_new(items, replica_item(agent, db));
        if (is_source(db))
            json_array_append_new(items, source_item(agent, db));
    }
    control_reply(conn, json_pack("{s:i, s:I, s:o}", "exit", 0, "time", (json_int_t)time(NULL),
                                  "items", items));
}
