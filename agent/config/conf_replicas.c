/* The "replica_of { ... }" part of a conf.d database section: Replica Of from another cluster. */
#include "conf_replicas.h"

#include "db_config.h"
#include "netutil.h"
#include "trust.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cfg_opt_t conf_replica_options[] = {CFG_STR("source", NULL, CFGF_NODEFAULT),
                                    CFG_STR("server_cert", NULL, CFGF_NODEFAULT),
                                    CFG_BOOL("verify_hostname", cfg_false, CFGF_NONE),
                                    CFG_STR("server_name", NULL, CFGF_NODEFAULT),
                                    CFG_INT("local_port", 0, CFGF_NONE),
                                    CFG_END()};

static const char *optional_str(cfg_t *section, const char *option)
{
    return cfg_size(section, option) ? cfg_getstr(section, option) : NULL;
}

/* A host name as SNI and certificates carry it: letters, digits, '-', '.', a leading "*." no. */
static bool host_name_valid(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > 253 || name[0] == '.' || name[0] == '-')
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.' || *p == ':'))
            return false;
    return true;
}

void replica_decl_free(struct replica_decl *decl)
{
    if (!decl)
        return;
    free(decl->source);
    free(decl->server_cert);
    free(decl->server_name);
    free(decl);
}

/* What is wrong with the section, into reason ("" when nothing); fills decl. */
static void check(cfg_t *section, const char *db_name, struct replica_decl *decl, char *reason,
                  size_t len)
{
    const char *source = optional_str(section, "source");
    const char *server_cert = optional_str(section, "server_cert");
    const char *server_name = optional_str(section, "server_name");
    long local_port = cfg_getint(section, "local_port");
    char host[256], why[300];
    int port;

    *reason = '\0';
    decl->verify_hostname = cfg_getbool(section, "verify_hostname");
    decl->local_port = (int)local_port;
    if (!source || db_split_address(source, host, sizeof(host), &port) < 0 ||
        !host_name_valid(host)) {
        snprintf(reason, len,
                 "replica_of: source is required as \"host:port\" (\"[v6]:port\" for IPv6): the "
                 "source database's endpoint on the other cluster");
        return;
    }
    if (!server_cert && !trust_list_name_valid(db_name)) {
        snprintf(reason, len,
                 "replica_of: server_cert is required (the database's name '%s' cannot name a "
                 "trust list: a-z, 0-9 and _)",
                 db_name);
        return;
    }
    if (server_cert && trust_ref_check(server_cert, why, sizeof(why)) < 0) {
        snprintf(reason, len, "replica_of: server_cert %s", why);
        return;
    }
    if (server_name && (!host_name_valid(server_name) || net_is_ip_literal(server_name))) {
        snprintf(reason, len, "replica_of: server_name '%s' is not a host name", server_name);
        return;
    }
    if (decl->verify_hostname && !server_name && net_is_ip_literal(host) && strchr(host, ':')) {
        snprintf(reason, len, "replica_of: verify_hostname with an IPv6 source needs server_name");
        return;
    }
    if (local_port < 0 || local_port > 65535)
        snprintf(reason, len, "replica_of: local_port %ld is not a port number (0: any)",
                 local_port);
}

int conf_replica_from_cfg(cfg_t *database, const char *db_name, struct replica_decl **ret_decl,
                          char *reason, size_t reason_len)
{
    struct replica_decl *decl;
    cfg_t *section;

    *ret_decl = NULL;
    if (cfg_size(database, "replica_of") == 0)
        return 0;
    if (cfg_size(database, "replica_of") > 1) {
        snprintf(reason, reason_len, "replica_of is given more than once");
        return -EINVAL;
    }
    section = cfg_getnsec(database, "replica_of", 0);
    decl = calloc(1, sizeof(*decl));
    if (!decl)
        return -ENOMEM;
    check(section, db_name, decl, reason, reason_len);
    if (*reason) {
        replica_decl_free(decl);
        return -EINVAL;
    }
    decl->source = strdup(cfg_getstr(section, "source"));
    decl->server_cert = strdup(optional_str(section, "server_cert") ?: db_name);
    if (optional_str(section, "server_name"))
        decl->server_name = strdup(cfg_getstr(section, "server_name"));
    if (!decl->source || !decl->server_cert ||
        (optional_str(section, "server_name") && !decl->server_name)) {
        replica_decl_free(decl);
        return -ENOMEM;
    }
    *ret_decl = decl;
    return 0;
}
