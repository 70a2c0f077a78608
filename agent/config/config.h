/* The agent's configuration: certvisor.conf, the conf.d files it includes, and their loading. */
#ifndef CERTVISOR_CONFIG_H
#define CERTVISOR_CONFIG_H

#include "conf_certs.h"
#include "conf_cluster.h"
#include "conf_databases.h"
#include "log.h"
#include "policy.h"
#include "service_config.h"

#include <stddef.h>
#include <sys/types.h>

#ifndef CERTVISOR_DEFAULT_CONFIG
#define CERTVISOR_DEFAULT_CONFIG "/etc/certvisor/certvisor.conf"
#endif
#ifndef CERTVISOR_CONSOLEDIR
#define CERTVISOR_CONSOLEDIR "/usr/share/certvisor/console"
#endif
#ifndef CERTVISOR_LIBEXECDIR
#define CERTVISOR_LIBEXECDIR "/usr/libexec/certvisor"
#endif

struct agent_config {
    char *config_path;
    char *conf_dir; /* the directory holding config_path */
    char *prefix;
    char *state_dir;
    char *run_dir;
    char *log_dir;
    char *libexec_dir;
    char *console_dir; /* the admin console's static files */
    char *include_dir;
    char *control_socket;
    char *notify_socket;
    char *control_group; /* group of the control socket; NULL: the agent's own */
    char *admin_group;   /* members may change things; NULL: only root and the agent's user */
    char *service_user;  /* default user of services; NULL: the agent's own */
    char *service_group;
    enum log_target log_target;
    char *log_file;
    int log_level;
    long service_log_max_bytes;
    int service_log_backups;
    int tail_lines;

    struct cluster_settings cluster; /* certvisor.conf's cluster section, or its defaults */
    struct cert_settings certs;      /* the certificates section, or its defaults */
    struct policy policy;            /* conf.d's policy sections (the state file comes later) */
    struct external_cert *external_certs; /* conf.d's "certificate <name>" sections */
    size_t n_external_certs;
    struct database_decl *databases; /* conf.d's "database <name>" sections, in file order */
    size_t n_databases;

    struct service_config **services; /* in file order */
    size_t n_services;
    size_t *start_order; /* indices into services, dependencies first */
};

/*
 * Reads the main file at path (and, through its include setting, every
 * the *.conf files of its include directory) into a new configuration. prefix_override, when not
 * NULL, replaces the file's prefix. On failure returns CV_ECONFIG (or -ENOMEM) and a malloc'd
 * message with file, line and the problem in *ret_error.
 */
int config_load(const char *path, const char *prefix_override, struct agent_config **ret_config,
                char **ret_error);

void config_free(struct agent_config *config);

/*
 * Reads only the main file at path and returns its control socket (malloc'd),
 * for clients that need nothing else. Returns 0, or a negative error with a
 * malloc'd message (file, line, problem) in *ret_error.
 */
int config_control_socket(const char *path, const char *prefix_override, char **ret_socket,
                          char **ret_error);

/*
 * Creates state_dir (0750), run_dir (0755) and log_dir (0750) and their
 * parents. Returns 0, or a negative errno with a message in *ret_error.
 */
int config_make_directories(const struct agent_config *config, char **ret_error);

/*
 * Checks what the files alone cannot: the groups exist and the socket paths
 * fit a unix socket address. Returns 0, or CV_ECONFIG with a message in *ret_error.
 */
int config_check_environment(const struct agent_config *config, char **ret_error);

/* The group of service_group (may read service keys and rendered files), or (gid_t)-1. */
gid_t config_service_gid(const struct agent_config *config);

/*
 * Applies state_dir/policy.json (operators' runtime changes) over conf.d's
 * policy, then checks the whole. Returns 0, or CV_ECONFIG with a message.
 */
int config_load_runtime_policy(struct agent_config *config, char *err, size_t err_len);

/* The conf.d section that keeps certificate name in external files, or NULL. */
const struct external_cert *config_find_external_cert(const struct agent_config *config,
                                                      const char *name);

/* Returns the service called name, or NULL. */
struct service_config *config_find_service(const struct agent_config *config, const char *name);

#endif
