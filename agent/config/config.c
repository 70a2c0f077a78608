/* The agent's configuration: certvisor.conf, the conf.d files it includes, and their loading. */
#include "config.h"

#include "conf_text.h"
#include "cv_error.h"
#include "deps.h"
#include "conf_certs.h"
#include "expand.h"

#include <confuse.h>
#include <errno.h>
#include <glob.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <limits.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static cfg_opt_t main_options[] = {CFG_STR("prefix", "/", CFGF_NONE),
                                   CFG_STR("state_dir", "%{prefix}/var/lib/certvisor", CFGF_NONE),
                                   CFG_STR("run_dir", "%{prefix}/run/certvisor", CFGF_NONE),
                                   CFG_STR("log_dir", "%{prefix}/var/log/certvisor", CFGF_NONE),
                                   CFG_STR("libexec_dir", CERTVISOR_LIBEXECDIR, CFGF_NONE),
                                   CFG_STR("console_dir", CERTVISOR_CONSOLEDIR, CFGF_NONE),
                                   CFG_STR("include", "conf.d", CFGF_NONE),
                                   CFG_STR("control_socket", "%{run_dir}/control.sock", CFGF_NONE),
                                   CFG_STR("notify_socket", "%{run_dir}/notify.sock", CFGF_NONE),
                                   CFG_STR("control_group", NULL, CFGF_NODEFAULT),
                                   CFG_STR("admin_group", NULL, CFGF_NODEFAULT),
                                   CFG_STR("service_user", NULL, CFGF_NODEFAULT),
                                   CFG_STR("service_group", NULL, CFGF_NODEFAULT),
                                   CFG_STR("log_target", "auto", CFGF_NONE),
                                   CFG_STR("log_file", "%{log_dir}/certvisord.log", CFGF_NONE),
                                   CFG_STR("log_level", "info", CFGF_NONE),
                                   CFG_INT("service_log_max_bytes", 10 * 1024 * 1024, CFGF_NONE),
                                   CFG_INT("service_log_backups", 3, CFGF_NONE),
                                   CFG_INT("tail_lines", 200, CFGF_NONE),
                                   CFG_SEC("cluster", conf_cluster_options, CFGF_MULTI),
                                   CFG_END()};

static cfg_opt_t include_options[] = {
    CFG_SEC("service", service_config_options, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
    CFG_SEC("certificates", conf_certificates_options, CFGF_MULTI),
    CFG_SEC("policy", conf_policy_options, CFGF_MULTI),
    /* No CFGF_NO_TITLE_DUPES: conf_external_cert_add() names both places of a duplicate. */
    CFG_SEC("certificate", conf_certificate_options, CFGF_MULTI | CFGF_TITLE),
    CFG_SEC("database", conf_database_options, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
    CFG_END()};

/* Collects libconfuse's messages, each prefixed with file:line, for one load. */
static FILE *error_sink;
static const char *current_file; /* the file being parsed: libconfuse parses a buffer */

static void collect_error(cfg_t *cfg, const char *fmt, va_list ap)
{
    if (!error_sink)
        return;
    /* cfg->filename is "[buf]" for a parsed buffer: name the real file. */
    if (cfg && (current_file || cfg->filename))
        fprintf(error_sink, "%s:%d: ", current_file ? current_file : cfg->filename, cfg->line);
    vfprintf(error_sink, fmt, ap);
    fputc('\n', error_sink);
}

static int validate_log_target(cfg_t *cfg, cfg_opt_t *opt)
{
    enum log_target target;

    if (log_target_parse(cfg_opt_getnstr(opt, 0), &target) < 0) {
        cfg_error(cfg, "log_target: invalid value '%s' (expected auto, console, journal or file)",
                  cfg_opt_getnstr(opt, 0));
        return -1;
    }
    return 0;
}

static int parse_log_level(const char *word)
{
    static const char *const words[] = {"error", "warning", "notice", "info", "debug"};
    static const int levels[] = {LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG};

    for (size_t i = 0; i < 5; i++)
        if (strcmp(word, words[i]) == 0)
            return levels[i];
    return -1;
}

static int validate_log_level(cfg_t *cfg, cfg_opt_t *opt)
{
    if (parse_log_level(cfg_opt_getnstr(opt, 0)) < 0) {
        cfg_error(cfg,
                  "log_level: invalid value '%s' (expected error, warning, notice, info or "
                  "debug)",
                  cfg_opt_getnstr(opt, 0));
        return -1;
    }
    return 0;
}

static int validate_positive_int(cfg_t *cfg, cfg_opt_t *opt)
{
    if (cfg_opt_getnint(opt, 0) < 0) {
        cfg_error(cfg, "%s: must not be negative", opt->name);
        return -1;
    }
    return 0;
}

/* Collapses repeated slashes, so that "%{prefix}/var" with prefix "/" reads "/var". */
static void squeeze_slashes(char *path)
{
    char *out = path;

    for (char *in = path; *in; in++)
        if (!(in[0] == '/' && in[1] == '/'))
            *out++ = *in;
    *out = '\0';
    if (out > path + 1 && out[-1] == '/')
        out[-1] = '\0';
}

/* Makes path absolute against base (when it is relative). Returns a malloc'd string. */
static char *absolute_from(const char *base, const char *path)
{
    char *out;

    if (path[0] == '/')
        out = strdup(path);
    else if (asprintf(&out, "%s/%s", base, path) < 0)
        out = NULL;
    if (out)
        squeeze_slashes(out);
    return out;
}

/*
 * Expands a path option of the main file and makes it absolute. Variables
 * that have no value yet at that point (%{name} always; %{state_dir} inside
 * libexec_dir, for instance) are a configuration error, named in err.
 */
static int expand_path(cfg_t *cfg, const char *option, const struct expand_vars *vars,
                       const char *base, char **ret_path, char *err, size_t err_len)
{
    const char *value = cfg_getstr(cfg, option);
    char check[512];
    char *expanded;

    if (expand_check(value, check, sizeof(check)) < 0) {
        snprintf(err, err_len, "%s:%d: %s: %s", current_file,
                 conf_text_option_line(current_file, option), option, check);
        return CV_ECONFIG;
    }
    expanded = expand_string(value, vars);
    if (!expanded) {
        snprintf(err, err_len,
                 "%s:%d: %s: \"%s\" uses a variable that has no value here (%%{name} exists "
                 "only in services; prefix, conf_dir, then libexec_dir, state_dir, run_dir and "
                 "log_dir are set in that order)",
                 current_file, conf_text_option_line(current_file, option), option, value);
        return CV_ECONFIG;
    }
    *ret_path = absolute_from(base, expanded);
    free(expanded);
    return *ret_path ? 0 : -ENOMEM;
}

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

void config_free(struct agent_config *config)
{
    if (!config)
        return;
    for (size_t i = 0; i < config->n_services; i++)
        service_config_free(config->services[i]);
    free(config->services);
    free(config->start_order);
    free(config->config_path);
    free(config->conf_dir);
    free(config->prefix);
    free(config->state_dir);
    free(config->run_dir);
    free(config->log_dir);
    free(config->libexec_dir);
    free(config->console_dir);
    free(config->include_dir);
    free(config->control_socket);
    free(config->notify_socket);
    free(config->control_group);
    free(config->admin_group);
    free(config->service_user);
    free(config->service_group);
    free(config->log_file);
    cert_settings_clear(&config->certs);
    cluster_settings_free(&config->cluster);
    policy_clear(&config->policy);
    external_certs_free(config->external_certs, config->n_external_certs);
    database_decls_free(config->databases, config->n_databases);
    free(config);
}

struct service_config *config_find_service(const struct agent_config *config, const char *name)
{
    int index = deps_find(config->services, config->n_services, name);

    return index < 0 ? NULL : config->services[index];
}

static int fill_main(cfg_t *cfg, const char *prefix_override, struct agent_config *config,
                     char *err, size_t err_len)
{
    struct expand_vars vars = {0};
    const char *prefix = prefix_override ? prefix_override : cfg_getstr(cfg, "prefix");
    static const struct {
        const char *option;
        size_t offset;
    } paths[] = {
        {"libexec_dir", offsetof(struct agent_config, libexec_dir)},
        {"console_dir", offsetof(struct agent_config, console_dir)},
        {"state_dir", offsetof(struct agent_config, state_dir)},
        {"run_dir", offsetof(struct agent_config, run_dir)},
        {"log_dir", offsetof(struct agent_config, log_dir)},
        {"include", offsetof(struct agent_config, include_dir)},
        {"control_socket", offsetof(struct agent_config, control_socket)},
        {"notify_socket", offsetof(struct agent_config, notify_socket)},
        {"log_file", offsetof(struct agent_config, log_file)},
    };
    int r;

    config->prefix = absolute_from(config->conf_dir, prefix);
    if (!config->prefix)
        return -ENOMEM;
    vars.prefix = config->prefix;
    vars.conf_dir = config->conf_dir;
    /* In table order, each path may use the ones before it. */
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char **slot = (char **)((char *)config + paths[i].offset);

        r = expand_path(cfg, paths[i].option, &vars, config->conf_dir, slot, err, err_len);
        if (r < 0)
            return r;
        vars.libexec_dir = config->libexec_dir;
        vars.console_dir = config->console_dir;
        vars.state_dir = config->state_dir;
        vars.run_dir = config->run_dir;
        vars.log_dir = config->log_dir;
        vars.control_socket = config->control_socket;
    }
    config->control_group = dup_or_null(cfg_getstr(cfg, "control_group"));
    config->admin_group = dup_or_null(cfg_getstr(cfg, "admin_group"));
    config->service_user = dup_or_null(cfg_getstr(cfg, "service_user"));
    config->service_group = dup_or_null(cfg_getstr(cfg, "service_group"));
    log_target_parse(cfg_getstr(cfg, "log_target"), &config->log_target);
    config->log_level = parse_log_level(cfg_getstr(cfg, "log_level"));
    config->service_log_max_bytes = cfg_getint(cfg, "service_log_max_bytes");
    config->service_log_backups = (int)cfg_getint(cfg, "service_log_backups");
    config->tail_lines = (int)cfg_getint(cfg, "tail_lines");
    if (cfg_size(cfg, "cluster") > 1) {
        snprintf(err, err_len, "%s: one cluster section, not %u", config->config_path,
                 cfg_size(cfg, "cluster"));
        return CV_ECONFIG;
    }
    r = conf_cluster_read(cfg_size(cfg, "cluster") ? cfg_getsec(cfg, "cluster") : NULL,
                          config->config_path, &config->cluster, err, err_len);
    return r < 0 ? r
                 : conf_cluster_membership(&config->cluster, config->config_path, config->state_dir,
                                           err, err_len);
}

/* Parses one file from its comment-blanked text. Returns 0, or CV_ECONFIG (messages in err or the
 * sink). */
static int parse_file(cfg_t *cfg, const char *path, char *err, size_t err_len)
{
    char *text;
    int r = conf_text_load(path, &text, err, err_len);

    if (r < 0)
        return r;
    current_file = path;
    r = cfg_parse_buf(cfg, text) == CFG_SUCCESS ? 0 : CV_ECONFIG;
    free(text);
    return r;
}

static int add_service(struct agent_config *config, struct service_config *service, char *err,
                       size_t err_len)
{
    struct service_config **grown;
    struct service_config *existing = config_find_service(config, service->name);

    if (existing) {
        snprintf(err, err_len, "%s:%d: service '%s' is already defined at %s:%d",
                 service->source_file, service->source_line, service->name, existing->source_file,
                 existing->source_line);
        return CV_ECONFIG;
    }
    grown = realloc(config->services, (config->n_services + 1) * sizeof(*grown));
    if (!grown)
        return -ENOMEM;
    config->services = grown;
    config->services[config->n_services++] = service;
    return 0;
}

/*
 * The certificates section (once across every file), and the policy and certificate <name>
 * sections of one file.
 */
static int load_tls_sections(cfg_t *cfg, const char *path, struct agent_config *config, char *err,
                             size_t err_len)
{
    int r = 0;

    for (unsigned i = 0; r == 0 && i < cfg_size(cfg, "certificates"); i++) {
        if (config->certs.source_file) {
            snprintf(err, err_len, "%s: a certificates section is already defined in %s", path,
                     config->certs.source_file);
            return CV_ECONFIG;
        }
        cert_settings_clear(&config->certs);
        r = cert_settings_from_cfg(cfg_getnsec(cfg, "certificates", i), path, &config->certs, err,
                                   err_len);
    }
    for (unsigned i = 0; r == 0 && i < cfg_size(cfg, "policy"); i++)
        r = conf_policy_merge(cfg_getnsec(cfg, "policy", i), path, &config->policy, err, err_len);
    for (unsigned i = 0; r == 0 && i < cfg_size(cfg, "certificate"); i++)
        r = conf_external_cert_add(cfg_getnsec(cfg, "certificate", i), path,
                                   &config->external_certs, &config->n_external_certs, err,
                                   err_len);
    for (unsigned i = 0; r == 0 && i < cfg_size(cfg, "database"); i++)
        r = conf_database_add(cfg_getnsec(cfg, "database", i), path, &config->databases,
                              &config->n_databases, err, err_len);
    return r;
}

/*
 * A service with cluster_store = local or etcd belongs to the configuration only where the
 * cluster's store is that one (the etcd member: only in a cluster on etcd). Sets *wanted;
 * returns 0, or CV_ECONFIG for a word that is none of any, local and etcd.
 */
static int service_for_this_store(cfg_t *section, const char *path,
                                  const struct cluster_settings *cluster, bool *wanted, char *err,
                                  size_t err_len)
{
    const char *word = cfg_getstr(section, "cluster_store");
    enum cluster_store store;

    *wanted = true;
    if (strcmp(word, "any") == 0)
        return 0;
    if (cluster_store_parse(word, &store) < 0) {
        snprintf(err, err_len, "%s:%d: service '%s': cluster_store '%s' is not any, local or etcd",
                 path, conf_text_section_line(path, "service", cfg_title(section)),
                 cfg_title(section), word);
        return CV_ECONFIG;
    }
    *wanted = store == cluster->store;
    return 0;
}

/* Parses one conf.d file and adds its services. Errors go to the sink, or into err. */
static int load_include(struct agent_config *config, const char *path, char *err, size_t err_len)
{
    struct expand_vars vars = {config->prefix,
                               config->state_dir,
                               config->run_dir,
                               config->log_dir,
                               config->conf_dir,
                               config->libexec_dir,
                               config->console_dir,
                               config->control_socket,
                               NULL,
                               config->cluster.name,
                               config->cluster.node,
                               config->cluster.node_address,
                               config->cluster.client_url,
                               config->cluster.peer_url,
                               config->cluster.initial_cluster,
                               config->cluster.joined ? "existing" : "new"};
    cfg_t *cfg = cfg_init(include_options, CFGF_NONE);
    int r = 0;

    if (!cfg)
        return -ENOMEM;
    cfg_set_error_function(cfg, collect_error);
    service_config_set_validators(cfg);
    conf_certs_set_validators(cfg);
    r = parse_file(cfg, path, err, err_len);
    if (r == 0)
        r = load_tls_sections(cfg, path, config, err, err_len);
    for (unsigned i = 0; r == 0 && i < cfg_size(cfg, "service"); i++) {
        struct service_config *service;
        bool wanted;

        r = service_for_this_store(cfg_getnsec(cfg, "service", i), path, &config->cluster, &wanted,
                                   err, err_len);
        if (r < 0 || !wanted)
            continue;
        r = service_config_from_cfg(cfg_getnsec(cfg, "service", i), path, &vars,
                                    config->service_user, config->service_group, &service, err,
                                    err_len);
        if (r == 0) {
            r = add_service(config, service, err, err_len);
            if (r < 0)
                service_config_free(service);
        }
    }
    cfg_free(cfg);
    return r;
}

static int load_includes(struct agent_config *config, char *err, size_t err_len)
{
    char *pattern;
    glob_t found = {0};
    int r = 0;

    if (asprintf(&pattern, "%s/*.conf", config->include_dir) < 0)
        return -ENOMEM;
    switch (glob(pattern, GLOB_ERR, NULL, &found)) {
    case 0:
    case GLOB_NOMATCH:
        break;
    default:
        snprintf(err, err_len, "%s: cannot read the include directory", config->include_dir);
        r = CV_ECONFIG;
    }
    free(pattern);
    /* glob() sorts, so files load in name order and start order ties follow it. */
    for (size_t i = 0; r == 0 && i < found.gl_pathc; i++)
        r = load_include(config, found.gl_pathv[i], err, err_len);
    globfree(&found);
    return r;
}

static int load_main(const char *path, const char *prefix_override, struct agent_config *config,
                     char *err, size_t err_len)
{
    cfg_t *cfg = cfg_init(main_options, CFGF_NONE);
    int r = 0;

    if (!cfg)
        return -ENOMEM;
    cfg_set_error_function(cfg, collect_error);
    cfg_set_validate_func(cfg, "log_target", validate_log_target);
    cfg_set_validate_func(cfg, "log_level", validate_log_level);
    cfg_set_validate_func(cfg, "service_log_max_bytes", validate_positive_int);
    cfg_set_validate_func(cfg, "service_log_backups", validate_positive_int);
    cfg_set_validate_func(cfg, "tail_lines", validate_positive_int);
    r = parse_file(cfg, path, err, err_len);
    if (r == 0)
        r = fill_main(cfg, prefix_override, config, err, err_len);
    cfg_free(cfg);
    return r;
}

static int set_paths(const char *path, struct agent_config *config)
{
    char cwd[PATH_MAX];
    char *slash;

    if (!getcwd(cwd, sizeof(cwd)))
        return -errno;
    config->config_path = absolute_from(cwd, path);
    if (!config->config_path)
        return -ENOMEM;
    config->conf_dir = strdup(config->config_path);
    if (!config->conf_dir)
        return -ENOMEM;
    slash = strrchr(config->conf_dir, '/');
    if (slash == config->conf_dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    return 0;
}

/* Two tls sections writing one file would each overwrite the other's configuration. */
static int check_tls_outputs(const struct agent_config *config, char *err, size_t err_len)
{
    for (size_t a = 0; a < config->n_services; a++) {
        const struct service_config *first = config->services[a];

        for (size_t i = 0; i < first->n_tls; i++) {
            for (size_t b = a; b < config->n_services; b++) {
                const struct service_config *second = config->services[b];

                for (size_t j = b == a ? i + 1 : 0; j < second->n_tls; j++) {
                    if (strcmp(first->tls[i].output, second->tls[j].output) != 0)
                        continue;
                    snprintf(err, err_len,
                             "%s:%d: service '%s': its tls output %s is also written by service "
                             "'%s' (%s:%d): give each tls section its own output",
                             second->source_file, second->source_line, second->name,
                             second->tls[j].output, first->name, first->source_file,
                             first->source_line);
                    return CV_ECONFIG;
                }
            }
        }
    }
    return 0;
}

int config_load(const char *path, const char *prefix_override, struct agent_config **ret_config,
                char **ret_error)
{
    struct agent_config *config = calloc(1, sizeof(*config));
    char err[1024] = "";
    char *sink_text = NULL;
    size_t sink_len = 0;
    int r;

    if (!config)
        return -ENOMEM;
    error_sink = open_memstream(&sink_text, &sink_len);
    policy_init(&config->policy);
    r = set_paths(path, config);
    if (r == 0)
        r = cert_settings_default(&config->certs);
    if (r == 0)
        r = load_main(config->config_path, prefix_override, config, err, sizeof(err));
    if (r == 0)
        r = load_includes(config, err, sizeof(err));
    /* The other members reach this node's etcd member at its cluster address, and verify it
     * against the certificate (ccs_internode_encryption): that address is one of its names. */
    if (r == 0 && config->cluster.node_address)
        r = cert_settings_add_ip(&config->certs, config->cluster.node_address);
    if (r == 0 && policy_check_all(&config->policy, err, sizeof(err)) < 0)
        r = CV_ECONFIG;
    if (r == 0)
        r = check_tls_outputs(config, err, sizeof(err));
    if (r == 0) {
        config->start_order = calloc(config->n_services + 1, sizeof(size_t));
        r = config->start_order ? deps_sort(config->services, config->n_services,
                                            config->start_order, err, sizeof(err))
                                : -ENOMEM;
    }
    if (error_sink)
        fclose(error_sink);
    error_sink = NULL;
    if (r < 0) {
        if (ret_error) {
            if (sink_len && sink_text[sink_len - 1] == '\n')
                sink_text[sink_len - 1] = '\0';
            if (!*err && sink_text && *sink_text)
                *ret_error = strdup(sink_text);
            else if (asprintf(ret_error, "%s", *err ? err : cv_strerror(r)) < 0)
                *ret_error = NULL;
        }
        free(sink_text);
        config_free(config);
        return r;
    }
    free(sink_text);
    *ret_config = config;
    return 0;
}

int config_control_socket(const char *path, const char *prefix_override, char **ret_socket,
                          char **ret_error)
{
    struct agent_config *config = calloc(1, sizeof(*config));
    char err[1024] = "";
    char *sink_text = NULL;
    size_t sink_len = 0;
    int r;

    if (!config)
        return -ENOMEM;
    error_sink = open_memstream(&sink_text, &sink_len);
    r = set_paths(path, config);
    if (r == 0)
        r = load_main(config->config_path, prefix_override, config, err, sizeof(err));
    if (error_sink)
        fclose(error_sink);
    error_sink = NULL;
    current_file = NULL;
    if (r == 0) {
        *ret_socket = config->control_socket;
        config->control_socket = NULL;
    } else if (ret_error) {
        if (sink_len && sink_text[sink_len - 1] == '\n')
            sink_text[sink_len - 1] = '\0';
        if (asprintf(ret_error, "%s",
                     *err                      ? err
                     : sink_text && *sink_text ? sink_text
                                               : cv_strerror(r)) < 0)
            *ret_error = NULL;
    }
    free(sink_text);
    config_free(config);
    return r;
}

/* Makes path and its parents; returns 1 when path itself was made here, 0 when it existed. */
static int make_dir(const char *path, mode_t mode)
{
    char buf[4096];

    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(buf, mode) < 0)
        return errno == EEXIST ? 0 : -errno;
    return 1;
}

int config_make_directories(const struct agent_config *config, char **ret_error)
{
    const char *dirs[] = {config->state_dir, config->run_dir, config->log_dir};
    const mode_t modes[] = {0750, 0755, 0750};

    for (size_t i = 0; i < 3; i++) {
        int r = make_dir(dirs[i], modes[i]);

        /* The services (their group) must reach the store and their own directories in the
         * state directory; one that existed already is the operator's (or the package's). */
        if (r == 1 && i == 0 && config_service_gid(config) != (gid_t)-1 &&
            chown(dirs[i], (uid_t)-1, config_service_gid(config)) < 0)
            r = -errno;
        if (r < 0) {
            if (ret_error && asprintf(ret_error, "cannot create %s: %s", dirs[i], strerror(-r)) < 0)
                *ret_error = NULL;
            return r;
        }
    }
    return 0;
}

int config_check_environment(const struct agent_config *config, char **ret_error)
{
    const char *groups[] = {config->control_group, config->admin_group};
    const char *group_settings[] = {"control_group", "admin_group"};
    const char *sockets[] = {config->control_socket, config->notify_socket};
    const char *socket_settings[] = {"control_socket", "notify_socket"};
    struct sockaddr_un addr;
    int r = 0;

    for (size_t i = 0; i < 2 && r == 0; i++) {
        if (groups[i] && !getgrnam(groups[i]))
            r = asprintf(ret_error, "%s: %s: group '%s' does not exist (create it, or change %s)",
                         config->config_path, group_settings[i], groups[i], group_settings[i]);
        else if (strlen(sockets[i]) >= sizeof(addr.sun_path))
            r = asprintf(ret_error, "%s: %s: '%s' is longer than a socket path may be (%zu bytes)",
                         config->config_path, socket_settings[i], sockets[i],
                         sizeof(addr.sun_path) - 1);
        if (r > 0)
            return CV_ECONFIG;
        r = r < 0 ? -ENOMEM : 0;
    }
    return r;
}

gid_t config_service_gid(const struct agent_config *config)
{
    struct group *gr = config->service_group ? getgrnam(config->service_group) : NULL;

    return gr ? gr->gr_gid : (gid_t)-1;
}

int config_load_runtime_policy(struct agent_config *config, char *err, size_t err_len)
{
    char path[PATH_MAX + 16];

    snprintf(path, sizeof(path), "%s/policy.json", config->state_dir);
    if (policy_state_load(&config->policy, path, err, err_len) < 0 ||
        policy_check_all(&config->policy, err, err_len) < 0)
        return CV_ECONFIG;
    return 0;
}

const struct external_cert *config_find_external_cert(const struct agent_config *config,
                                                      const char *name)
{
    for (size_t i = 0; i < config->n_external_certs; i++)
        if (strcmp(config->external_certs[i].name, name) == 0)
            return &config->external_certs[i];
    return NULL;
}
