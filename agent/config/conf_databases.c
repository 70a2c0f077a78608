/* The conf.d "database <name> { ... }" sections: the databases the proxy serves. */
#include "conf_databases.h"

#include "admin_commands.h"
#include "conf_text.h"
#include "cv_error.h"
#include "netutil.h"
#include "trust.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cfg_opt_t conf_database_options[] = {
    CFG_INT("port", 0, CFGF_NONE),
    CFG_STR("listen", "0.0.0.0", CFGF_NONE),
    CFG_STR("advertise", NULL, CFGF_NODEFAULT),
    CFG_STR("shard", NULL, CFGF_NODEFAULT),
    CFG_BOOL("shard_tls", cfg_false, CFGF_NONE),
    CFG_BOOL("multiplex", cfg_true, CFGF_NONE),
    CFG_STR("allow_commands", "", CFGF_NONE),
    CFG_STR("tls_mode", "enabled", CFGF_NONE),
    CFG_STR("client_auth", "none", CFGF_NONE),
    CFG_STR("client_trust", "mtls_trusted_ca", CFGF_NONE),
    CFG_STR("authentication_ssl_client_certs", NULL, CFGF_NODEFAULT),
    CFG_SEC("replica_of", conf_replica_options, CFGF_MULTI),
    CFG_END()};

static const char *optional_str(cfg_t *section, const char *option)
{
    return cfg_size(section, option) ? cfg_getstr(section, option) : NULL;
}

static int parse_client_auth(const char *text, enum tls_verify *ret)
{
    static const char *const words[] = {"none", "optional", "require"};

    for (size_t i = 0; i < 3; i++) {
        if (strcmp(text, words[i]) == 0) {
            *ret = (enum tls_verify)i;
            return 0;
        }
    }
    return -EINVAL;
}

/*
 * authentication_ssl_client_certs, Redis Enterprise's setting, is client_trust
 * with client_auth require (or optional, when the section says so). Returns the
 * trust reference in force, or NULL with the reason.
 */
static const char *client_trust_of(cfg_t *section, struct database_decl *decl, char *reason,
                                   size_t len)
{
    const char *re_name = optional_str(section, "authentication_ssl_client_certs");
    const char *trust = cfg_getstr(section, "client_trust");

    if (!re_name)
        return trust;
    if (cfg_getopt(section, "client_trust")->flags & CFGF_MODIFIED) {
        snprintf(reason, len,
                 "client_trust and authentication_ssl_client_certs are one setting: give one");
        return NULL;
    }
    if (decl->client_auth == TLS_VERIFY_NONE)
        decl->client_auth = TLS_VERIFY_REQUIRE;
    return re_name;
}

/* What is wrong with the section, into reason; "" when nothing. Fills decl's values. */
static void check(cfg_t *section, struct database_decl *decl, char *reason, size_t len)
{
    const char *shard = optional_str(section, "shard");
    const char *trust = NULL;
    long port = cfg_getint(section, "port");
    char host[256], why[768];
    int shard_port;

    *reason = '\0';
    decl->port = (int)port;
    decl->shard_tls = cfg_getbool(section, "shard_tls");
    decl->multiplex_off = !cfg_getbool(section, "multiplex");
    if (port < 1 || port > 65535)
        snprintf(reason, len, "port is required: the endpoint's port, from 1 to 65535");
    else if (!shard || db_split_address(shard, host, sizeof(host), &shard_port) < 0)
        snprintf(reason, len,
                 "shard is required as \"host:port\" (\"[::1]:port\" for IPv6): where the Redis "
                 "shard listens");
    else if (!net_is_ip_literal(cfg_getstr(section, "listen")))
        snprintf(reason, len, "listen '%s' is not an IPv4 or IPv6 address",
                 cfg_getstr(section, "listen"));
    else if (db_tls_mode_parse(cfg_getstr(section, "tls_mode"), &decl->tls_mode) < 0)
        snprintf(reason, len, "tls_mode '%s' is not enabled, disabled or replica_ssl",
                 cfg_getstr(section, "tls_mode"));
    else if (parse_client_auth(cfg_getstr(section, "client_auth"), &decl->client_auth) < 0)
        snprintf(reason, len, "client_auth '%s' is not none, optional or require",
                 cfg_getstr(section, "client_auth"));
    else if (!(trust = client_trust_of(section, decl, reason, len)))
        return;
    else if (trust_ref_check(trust, why, sizeof(why)) < 0)
        snprintf(reason, len, "client_trust %s", why);
    else if (decl->tls_mode == DB_TLS_DISABLED && decl->client_auth != TLS_VERIFY_NONE)
        snprintf(reason, len, "client_auth needs TLS: it cannot be set with tls_mode disabled");
    else if (admin_commands_parse(cfg_getstr(section, "allow_commands"), &decl->commands_allowed,
                                  why, sizeof(why)) < 0)
        snprintf(reason, len, "allow_commands: %s", why);
    if (!*reason)
        decl->client_trust = strdup(trust);
}

static void decl_clear(struct database_decl *decl)
{
    free(decl->name);
    free(decl->listen);
    free(decl->advertise);
    free(decl->shard);
    free(decl->client_trust);
    replica_decl_free(decl->replica);
    free(decl->source);
}

int conf_database_add(cfg_t *section, const char *path, struct database_decl **dbs, size_t *n,
                      char *err, size_t err_len)
{
    const char *name = cfg_title(section);
    const char *advertise = optional_str(section, "advertise");
    int line = conf_text_section_line(path, "database", name);
    struct database_decl decl = {0}, *grown;
    char reason[1024];

    if (!line)
        line = section->line;
    if (!db_config_name_valid(name)) {
        snprintf(err, err_len,
                 "%s:%d: database '%s': not a database name (a-z, 0-9, _ and -, at most 63)", path,
                 line, name);
        return CV_ECONFIG;
    }
    check(section, &decl, reason, sizeof(reason));
    if (!*reason &&
        conf_replica_from_cfg(section, name, &decl.replica, reason, sizeof(reason)) == -ENOMEM) {
        decl_clear(&decl);
        return -ENOMEM;
    }
    if (*reason) {
        decl_clear(&decl);
        snprintf(err, err_len, "%s:%d: database '%s': %s", path, line, name, reason);
        return CV_ECONFIG;
    }
    for (size_t i = 0; i < *n; i++) {
        const struct database_decl *other = &(*dbs)[i];

        if (strcmp(other->name, name) == 0 ||
            (other->port == decl.port &&
             strcmp(other->listen, cfg_getstr(section, "listen")) == 0)) {
            snprintf(err, err_len, "%s:%d: database '%s': %s already defined at %s", path, line,
                     name, strcmp(other->name, name) == 0 ? "the name is" : "its endpoint is",
                     other->source);
            decl_clear(&decl);
            return CV_ECONFIG;
        }
        if (decl.replica && other->replica && decl.replica->local_port &&
            decl.replica->local_port == other->replica->local_port) {
            snprintf(err, err_len,
                     "%s:%d: database '%s': replica_of's local_port %d is already the one of "
                     "database '%s' (%s)",
                     path, line, name, decl.replica->local_port, other->name, other->source);
            decl_clear(&decl);
            return CV_ECONFIG;
        }
    }
    decl.name = strdup(name);
    decl.listen = strdup(cfg_getstr(section, "listen"));
    decl.advertise = advertise ? strdup(advertise) : NULL;
    decl.shard = strdup(cfg_getstr(section, "shard"));
    if (asprintf(&decl.source, "%s:%d", path, line) < 0)
        decl.source = NULL;
    grown = decl.name && decl.listen && (decl.advertise || !advertise) && decl.shard &&
                    decl.client_trust && decl.source
                ? realloc(*dbs, (*n + 1) * sizeof(*grown))
                : NULL;
    if (!grown) {
        decl_clear(&decl);
        return -ENOMEM;
    }
    grown[*n] = decl;
    *dbs = grown;
    (*n)++;
    return 0;
}

void database_decls_free(struct database_decl *dbs, size_t n)
{
    for (size_t i = 0; dbs && i < n; i++)
        decl_clear(&dbs[i]);
    free(dbs);
}
