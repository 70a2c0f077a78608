/* Rendering the database list (lib/db_config.h) for the services that serve databases. */
#include "render_databases.h"

#include "cert_names.h"
#include "cv_error.h"
#include "db_config.h"
#include "tls_context.h"
#include "render_trust.h"
#include "trust.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SHARD_CLIENT_CERT "data_internode_encryption"

/* The paths one database needs, resolved; the db_config points into them. */
struct db_paths {
    char shard_cert[PATH_MAX];
    char shard_key[PATH_MAX];
    char shard_ca[PATH_MAX];
    char client_ca[PATH_MAX];
    char replica_ca[PATH_MAX];
    char advertise[256];
};

static bool is_wildcard(const char *address)
{
    return strcmp(address, "0.0.0.0") == 0 || strcmp(address, "::") == 0;
}

static int resolve_db(const struct render_inputs *in, const struct database_decl *decl,
                      struct db_paths *paths, struct db_config *db, char *err, size_t err_len)
{
    char why[600];

    *db = (struct db_config){
        .name = decl->name,
        .listen = decl->listen,
        .port = decl->port,
        .advertise = decl->advertise,
        .shard = decl->shard,
        .shard_tls = decl->shard_tls,
        .tls_mode = decl->tls_mode,
        .client_verify = decl->client_auth,
        .multiplex_off = decl->multiplex_off,
        .commands_allowed = decl->commands_allowed,
    };
    /* Clients are told the endpoint's own address, or, behind a wildcard, the node's name. */
    if (!db->advertise) {
        if (!is_wildcard(decl->listen))
            snprintf(paths->advertise, sizeof(paths->advertise), "%s", decl->listen);
        else if (gethostname(paths->advertise, sizeof(paths->advertise) - 1) < 0)
            snprintf(paths->advertise, sizeof(paths->advertise), "127.0.0.1");
        db->advertise = paths->advertise;
    }
    if (decl->shard_tls) {
        if (render_cert_files(in, SHARD_CLIENT_CERT, paths->shard_cert, sizeof(paths->shard_cert),
                              paths->shard_key, sizeof(paths->shard_key)) < 0 ||
            render_cert_files(in, CERT_CLUSTER_CA, paths->shard_ca, sizeof(paths->shard_ca), NULL,
                              0) < 0) {
            snprintf(err, err_len, "database '%s' (%s): shard_tls needs certificate '%s'",
                     decl->name, decl->source, SHARD_CLIENT_CERT);
            return -ENOENT;
        }
        db->shard_cert_file = paths->shard_cert;
        db->shard_key_file = paths->shard_key;
        db->shard_ca_file = paths->shard_ca;
    }
    if (decl->client_auth == TLS_VERIFY_NONE)
        return 0;
    if (trust_ref_file(in, "client_trust", decl->client_trust, paths->client_ca,
                       sizeof(paths->client_ca), why, sizeof(why)) < 0) {
        snprintf(err, err_len, "database '%s' (%s): %s", decl->name, decl->source, why);
        return -ENOENT;
    }
    db->client_ca_file = paths->client_ca;
    return 0;
}

/*
 * A replica database as the syncer sees it: its shard, the source and what
 * the source is verified against. Its own clients' settings are left out, so
 * that a change of them does not reload the syncer.
 */
static int resolve_replica(const struct render_inputs *in, const struct database_decl *decl,
                           struct db_paths *paths, struct db_config *db, char *err, size_t err_len)
{
    const struct replica_decl *replica = decl->replica;
    char why[600];
    int r = resolve_db(in, decl, paths, db, err, err_len);

    if (r < 0)
        return r;
    db->client_verify = TLS_VERIFY_NONE;
    db->client_ca_file = NULL;
    db->commands_allowed = 0;
    if (trust_ref_file(in, "server_cert", replica->server_cert, paths->replica_ca,
                       sizeof(paths->replica_ca), why, sizeof(why)) < 0) {
        snprintf(err, err_len, "database '%s' (%s): replica_of: %s", decl->name, decl->source, why);
        return -ENOENT;
    }
    db->replica_source = replica->source;
    db->replica_ca_file = paths->replica_ca;
    db->replica_server_name = replica->server_name;
    db->replica_verify_hostname = replica->verify_hostname;
    db->replica_local_port = replica->local_port;
    return 0;
}

/* The list for service: every database, or (replicas) the replica databases as the syncer needs
 * them. */
static int render_list(const struct render_inputs *in, const char *service, bool replicas,
                       char **ret_text, char *err, size_t err_len)
{
    struct db_config *dbs = calloc(in->n_databases + 1, sizeof(*dbs));
    struct db_paths *paths = calloc(in->n_databases + 1, sizeof(*paths));
    struct db_list list = {dbs, 0};
    int r = dbs && paths ? 0 : -ENOMEM;

    for (size_t i = 0; r == 0 && i < in->n_databases; i++) {
        const struct database_decl *decl = &in->databases[i];

        if (replicas && !decl->replica)
            continue;
        r = replicas ? resolve_replica(in, decl, &paths[list.n], &dbs[list.n], err, err_len)
                     : resolve_db(in, decl, &paths[list.n], &dbs[list.n], err, err_len);
        list.n++;
    }
    if (r == 0) {
        *ret_text = db_list_render(&list);
        r = *ret_text ? 0 : -ENOMEM;
    }
    if (r < 0 && r != -ENOMEM && strncmp(err, "service", 7) != 0) {
        char message[1024];

        snprintf(message, sizeof(message), "service '%s': %s", service, err);
        snprintf(err, err_len, "%s", message);
    }
    free(dbs);
    free(paths);
    return r;
}

int render_databases_text(const struct render_inputs *in, const char *service, char **ret_text,
                          char *err, size_t err_len)
{
    return render_list(in, service, false, ret_text, err, err_len);
}

int render_replicas_text(const struct render_inputs *in, const char *service, char **ret_text,
                         char *err, size_t err_len)
{
    return render_list(in, service, true, ret_text, err, err_len);
}

/*
 * True when path holds at least one certificate OpenSSL can verify peers
 * against, or is nobody, the file an empty trust list renders to (it trusts
 * nobody). An operator's file that is empty is refused, as a likely mistake.
 */
static int check_ca_file(const char *name, const char *setting, const char *path,
                         const char *nobody, char *reason, size_t len)
{
    X509_STORE *store = X509_STORE_new();
    int loaded = store && X509_STORE_load_file(store, path) == 1;
    STACK_OF(X509_OBJECT) *objects = loaded ? X509_STORE_get0_objects(store) : NULL;
    int count = objects ? sk_X509_OBJECT_num(objects) : 0;
    char why[512] = "";

    if (nobody && strcmp(path, nobody) == 0 && tls_ca_file_empty(path)) {
        X509_STORE_free(store);
        ERR_clear_error();
        return 0;
    }
    if (!loaded)
        tls_error_string(why, sizeof(why));
    X509_STORE_free(store);
    if (count > 0)
        return 0;
    snprintf(reason, len, "database '%s': %s %s holds no certificate%s%s", name, setting, path,
             *why ? ": " : "", why);
    return CV_EINVALID_TLS;
}

static int check_shard_client(const struct db_config *db, const struct policy *policy, char *reason,
                              size_t len)
{
    struct tls_config config = {
        .cert_file = db->shard_cert_file,
        .key_file = db->shard_key_file,
        .ca_file = db->shard_ca_file,
        .min_version = (char *)policy_get(policy, POLICY_MIN_DATA_TLS_VERSION),
        .security_level = -1,
        .verify_peer = TLS_VERIFY_REQUIRE,
    };
    char why[768];
    SSL_CTX *ctx = NULL;
    int r = tls_context_build(&config, TLS_ROLE_CLIENT, &ctx, why, sizeof(why));

    SSL_CTX_free(ctx);
    if (r < 0)
        snprintf(reason, len, "database '%s': the shard's TLS client: %s", db->name, why);
    return r;
}

int render_databases_validate(const char *text, const struct policy *policy, const char *nobody,
                              char *reason, size_t reason_len)
{
    struct db_list list;
    int r = db_list_parse(text, &list, reason, reason_len);

    if (r < 0)
        return r;
    for (size_t i = 0; r == 0 && i < list.n; i++) {
        const struct db_config *db = &list.dbs[i];

        if (db->client_ca_file)
            r = check_ca_file(db->name, "client_ca_file", db->client_ca_file, nobody, reason,
                              reason_len);
        if (r == 0 && db->replica_ca_file)
            r = check_ca_file(db->name, "replica_ca_file", db->replica_ca_file, nobody, reason,
                              reason_len);
        if (r == 0 && db->shard_tls)
            r = check_shard_client(db, policy, reason, reason_len);
    }
    db_list_clear(&list);
    return r;
}
