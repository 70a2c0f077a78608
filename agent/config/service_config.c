/* One service's settings from a conf.d section: the libconfuse table, validation, conversion. */
#include "service_config.h"

#include "conf_text.h"

#include "cert_names.h"
#include "cv_error.h"

#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A "tls { ... }" section inside a service: one rendered TLS configuration. */
static cfg_opt_t tls_options[] = {CFG_STR("certificate", NULL, CFGF_NODEFAULT),
                                  CFG_STR("plane", "control", CFGF_NONE),
                                  CFG_STR("format", "certvisor", CFGF_NONE),
                                  CFG_STR("output", "%{run_dir}/tls/%{name}.conf", CFGF_NONE),
                                  CFG_STR("verify_peer", "none", CFGF_NONE),
                                  CFG_STR("trust", "", CFGF_NONE),
                                  CFG_INT("port", 0, CFGF_NONE),
                                  CFG_BOOL("http", cfg_false, CFGF_NONE),
                                  CFG_BOOL("certificate_auth", cfg_false, CFGF_NONE),
                                  CFG_END()};

cfg_opt_t service_config_options[] = {CFG_STR("command", NULL, CFGF_NODEFAULT),
                                      CFG_STR_LIST("arguments", "{}", CFGF_NONE),
                                      CFG_STR("user", NULL, CFGF_NODEFAULT),
                                      CFG_STR("group", NULL, CFGF_NODEFAULT),
                                      CFG_STR_LIST("environment", "{}", CFGF_NONE),
                                      CFG_STR("directory", "/", CFGF_NONE),
                                      CFG_STR_LIST("after", "{}", CFGF_NONE),
                                      CFG_BOOL("autostart", cfg_true, CFGF_NONE),
                                      CFG_STR("autorestart", "unexpected", CFGF_NONE),
                                      CFG_INT_LIST("exit_codes", "{0}", CFGF_NONE),
                                      CFG_STR("readiness", "notify", CFGF_NONE),
                                      CFG_FLOAT("start_timeout", 30.0, CFGF_NONE),
                                      CFG_STR("stop_signal", "TERM", CFGF_NONE),
                                      CFG_FLOAT("stop_timeout", 10.0, CFGF_NONE),
                                      CFG_STR("reload_signal", "none", CFGF_NONE),
                                      CFG_STR("upgrade_signal", "none", CFGF_NONE),
                                      CFG_STR_LIST("reload_command", "{}", CFGF_NONE),
                                      CFG_FLOAT("backoff_initial", 0.5, CFGF_NONE),
                                      CFG_FLOAT("backoff_factor", 2.0, CFGF_NONE),
                                      CFG_FLOAT("backoff_max", 30.0, CFGF_NONE),
                                      CFG_FLOAT("backoff_reset_after", 10.0, CFGF_NONE),
                                      CFG_INT("start_retries", 5, CFGF_NONE),
                                      CFG_STR("stdout", "auto", CFGF_NONE),
                                      CFG_STR("stderr", "auto", CFGF_NONE),
                                      CFG_SEC("tls", tls_options, CFGF_MULTI),
                                      CFG_STR("databases_output", NULL, CFGF_NODEFAULT),
                                      CFG_STR("replicas_output", NULL, CFGF_NODEFAULT),
                                      CFG_STR("state_directory", NULL, CFGF_NODEFAULT),
                                      CFG_STR("cluster_store", "any", CFGF_NONE),
                                      CFG_END()};

static const struct {
    const char *word;
    int signo;
} signal_names[] = {{"HUP", SIGHUP},   {"INT", SIGINT},    {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
                    {"USR1", SIGUSR1}, {"USR2", SIGUSR2},  {"TERM", SIGTERM}, {"CONT", SIGCONT},
                    {"STOP", SIGSTOP}, {"WINCH", SIGWINCH}};

int signal_parse(const char *word)
{
    char *end;
    long number;

    if (strncmp(word, "SIG", 3) == 0)
        word += 3;
    for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++)
        if (strcmp(word, signal_names[i].word) == 0)
            return signal_names[i].signo;
    number = strtol(word, &end, 10);
    if (*word && !*end && number > 0 && number < NSIG)
        return (int)number;
    return -EINVAL;
}

bool service_config_can_reload(const struct service_config *config)
{
    return config->reload_signal != 0 || config->reload_argv != NULL;
}

const char *signal_word(int signo)
{
    for (size_t i = 0; i < sizeof(signal_names) / sizeof(signal_names[0]); i++)
        if (signal_names[i].signo == signo)
            return signal_names[i].word;
    return NULL;
}

/* --- validators: they run while the file is parsed, so cfg_error() reports file:line --- */

static int validate_words(cfg_t *cfg, cfg_opt_t *opt, const char *const *words)
{
    const char *value = cfg_opt_getnstr(opt, cfg_opt_size(opt) - 1);
    char allowed[160] = "";

    for (size_t i = 0; words[i]; i++) {
        if (strcmp(value, words[i]) == 0)
            return 0;
        snprintf(allowed + strlen(allowed), sizeof(allowed) - strlen(allowed), "%s%s",
                 i ? ", " : "", words[i]);
    }
    cfg_error(cfg, "%s: invalid value '%s' (expected one of: %s)", opt->name, value, allowed);
    return -1;
}

static int validate_autorestart(cfg_t *cfg, cfg_opt_t *opt)
{
    static const char *const words[] = {"true", "false", "unexpected", NULL};
    return validate_words(cfg, opt, words);
}

static int validate_readiness(cfg_t *cfg, cfg_opt_t *opt)
{
    static const char *const words[] = {"notify", "started", NULL};
    return validate_words(cfg, opt, words);
}

static int validate_signal(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *value = cfg_opt_getnstr(opt, 0);

    if ((strcmp(opt->name, "reload_signal") == 0 || strcmp(opt->name, "upgrade_signal") == 0) &&
        strcmp(value, "none") == 0)
        return 0;
    if (signal_parse(value) < 0) {
        cfg_error(cfg, "%s: unknown signal '%s' (use a name such as TERM, HUP, INT or a number)",
                  opt->name, value);
        return -1;
    }
    return 0;
}

static int validate_non_negative(cfg_t *cfg, cfg_opt_t *opt)
{
    double value =
        opt->type == CFGT_FLOAT ? cfg_opt_getnfloat(opt, 0) : (double)cfg_opt_getnint(opt, 0);

    if (value < 0) {
        cfg_error(cfg, "%s: must not be negative (got %g)", opt->name, value);
        return -1;
    }
    return 0;
}

static int validate_backoff_factor(cfg_t *cfg, cfg_opt_t *opt)
{
    if (cfg_opt_getnfloat(opt, 0) < 1.0) {
        cfg_error(cfg, "backoff_factor: must be at least 1 (got %g)", cfg_opt_getnfloat(opt, 0));
        return -1;
    }
    return 0;
}

static int validate_variables(cfg_t *cfg, cfg_opt_t *opt)
{
    char err[512];

    for (unsigned i = 0; i < cfg_opt_size(opt); i++) {
        if (expand_check(cfg_opt_getnstr(opt, i), err, sizeof(err)) < 0) {
            cfg_error(cfg, "%s: %s", opt->name, err);
            return -1;
        }
    }
    return 0;
}

static int validate_environment(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *entry = cfg_opt_getnstr(opt, cfg_opt_size(opt) - 1);
    const char *eq = strchr(entry, '=');

    if (!eq || eq == entry) {
        cfg_error(cfg, "environment: '%s' is not of the form NAME=value", entry);
        return -1;
    }
    for (const char *p = entry; p < eq; p++) {
        if (!(isalnum((unsigned char)*p) || *p == '_')) {
            cfg_error(cfg, "environment: '%.*s' is not a valid variable name", (int)(eq - entry),
                      entry);
            return -1;
        }
    }
    return validate_variables(cfg, opt);
}

static int validate_exit_code(cfg_t *cfg, cfg_opt_t *opt)
{
    long code = cfg_opt_getnint(opt, cfg_opt_size(opt) - 1);

    if (code < 0 || code > 255) {
        cfg_error(cfg, "exit_codes: %ld is not an exit status (0 to 255)", code);
        return -1;
    }
    return 0;
}

static int validate_tls_certificate(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *name = cfg_opt_getnstr(opt, 0);

    if (!cert_name_lookup(name) && strcmp(name, CERT_CLUSTER_CA) != 0) {
        cfg_error(cfg, "certificate: unknown certificate '%s' (known: %s)", name,
                  cert_names_list());
        return -1;
    }
    return 0;
}

static int validate_tls_plane(cfg_t *cfg, cfg_opt_t *opt)
{
    static const char *const words[] = {"control", "data", "sentinel", NULL};
    return validate_words(cfg, opt, words);
}

static int validate_tls_format(cfg_t *cfg, cfg_opt_t *opt)
{
    static const char *const words[] = {"certvisor", "redis", NULL};
    return validate_words(cfg, opt, words);
}

static int validate_tls_verify(cfg_t *cfg, cfg_opt_t *opt)
{
    static const char *const words[] = {"none", "optional", "require", NULL};
    return validate_words(cfg, opt, words);
}

static int validate_tls_trust(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *name = cfg_opt_getnstr(opt, 0);

    if (*name && strcmp(name, CERT_CLUSTER_CA) != 0 && !cert_name_lookup(name)) {
        cfg_error(cfg, "trust: '%s' is not cluster_ca or a certificate name", name);
        return -1;
    }
    return 0;
}

static int validate_tls_port(cfg_t *cfg, cfg_opt_t *opt)
{
    long port = cfg_opt_getnint(opt, 0);

    if (port < 0 || port > 65535) {
        cfg_error(cfg, "port: %ld is not a TCP port", port);
        return -1;
    }
    return 0;
}

void service_config_set_validators(cfg_t *cfg)
{
    static const char *const with_variables[] = {"command", "arguments",      "directory", "stdout",
                                                 "stderr",  "reload_command", "after"};
    static const char *const non_negative[] = {"start_timeout",       "stop_timeout",
                                               "backoff_initial",     "backoff_max",
                                               "backoff_reset_after", "start_retries"};
    char path[64];

#define SET(option, fn)                                                                            \
    do {                                                                                           \
        snprintf(path, sizeof(path), "service|%s", option);                                        \
        cfg_set_validate_func(cfg, path, fn);                                                      \
    } while (0)
    SET("autorestart", validate_autorestart);
    SET("readiness", validate_readiness);
    SET("stop_signal", validate_signal);
    SET("reload_signal", validate_signal);
    SET("upgrade_signal", validate_signal);
    SET("backoff_factor", validate_backoff_factor);
    SET("environment", validate_environment);
    SET("exit_codes", validate_exit_code);
    SET("tls|certificate", validate_tls_certificate);
    SET("tls|plane", validate_tls_plane);
    SET("tls|format", validate_tls_format);
    SET("tls|verify_peer", validate_tls_verify);
    SET("tls|trust", validate_tls_trust);
    SET("tls|port", validate_tls_port);
    SET("tls|output", validate_variables);
    for (size_t i = 0; i < sizeof(with_variables) / sizeof(with_variables[0]); i++)
        SET(with_variables[i], validate_variables);
    for (size_t i = 0; i < sizeof(non_negative) / sizeof(non_negative[0]); i++)
        SET(non_negative[i], validate_non_negative);
#undef SET
}

/* --- conversion of a parsed section --- */

static void free_strv(char **strv)
{
    if (!strv)
        return;
    for (char **p = strv; *p; p++)
        free(*p);
    free(strv);
}

void service_config_free(struct service_config *config)
{
    if (!config)
        return;
    free(config->name);
    free(config->source_file);
    free_strv(config->argv);
    free_strv(config->reload_argv);
    free(config->user);
    free(config->group);
    free_strv(config->environment);
    free(config->directory);
    free_strv(config->after);
    free(config->exit_codes);
    free(config->stdout_target.path);
    free(config->stderr_target.path);
    for (size_t i = 0; i < config->n_tls; i++) {
        free(config->tls[i].certificate);
        free(config->tls[i].output);
        free(config->tls[i].trust);
    }
    free(config->tls);
    free(config->fingerprint);
    free(config->databases_output);
    free(config->replicas_output);
    free(config->state_directory);
    free(config);
}

/* Expands the values of a list option (offset entries are left for the caller). */
static char **expand_list(cfg_t *section, const char *option, size_t offset,
                          const struct expand_vars *vars, size_t *ret_count)
{
    size_t n = cfg_size(section, option);
    char **strv = calloc(n + offset + 1, sizeof(char *));

    if (!strv)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        strv[offset + i] = expand_string(cfg_getnstr(section, option, (unsigned)i), vars);
        if (!strv[offset + i]) {
            /* strv[0] may be unset when offset is 1: free the expanded entries only. */
            for (size_t j = offset; j < offset + i; j++)
                free(strv[j]);
            free(strv);
            return NULL;
        }
    }
    if (ret_count)
        *ret_count = n;
    return strv;
}

static int output_target_from(const char *value, const char *default_path,
                              struct output_target *ret_target)
{
    static const char *const words[] = {"auto", "journal", "file", "null"};
    const char *path = default_path;
    int kind = -1;

    for (int i = 0; i < 4; i++)
        if (strcmp(value, words[i]) == 0)
            kind = i;
    if (kind < 0) {
        if (value[0] != '/')
            return -EINVAL;
        kind = OUTPUT_FILE;
        path = value;
    }
    ret_target->kind = (enum output_target_kind)kind;
    ret_target->path = strdup(path);
    return ret_target->path ? 0 : -ENOMEM;
}

static int convert_tls(cfg_t *tls, const struct expand_vars *vars, struct tls_spec *spec, char *err,
                       size_t err_len)
{
    static const enum tls_verify verify[] = {TLS_VERIFY_NONE, TLS_VERIFY_OPTIONAL,
                                             TLS_VERIFY_REQUIRE};
    static const char *const verify_words[] = {"none", "optional", "require"};
    const char *certificate = cfg_getstr(tls, "certificate");
    const char *trust = cfg_getstr(tls, "trust");

    if (!certificate) {
        snprintf(err, err_len, "tls: 'certificate' is required");
        return CV_ECONFIG;
    }
    render_plane_parse(cfg_getstr(tls, "plane"), &spec->plane);
    render_format_parse(cfg_getstr(tls, "format"), &spec->format);
    for (size_t i = 0; i < 3; i++)
        if (strcmp(cfg_getstr(tls, "verify_peer"), verify_words[i]) == 0)
            spec->verify_peer = verify[i];
    spec->port = (int)cfg_getint(tls, "port");
    spec->http = cfg_getbool(tls, "http");
    spec->certificate_auth = cfg_getbool(tls, "certificate_auth");
    spec->certificate = strdup(certificate);
    spec->output = expand_string(cfg_getstr(tls, "output"), vars);
    spec->trust = *trust ? strdup(trust) : NULL;
    if (!spec->certificate || !spec->output || (*trust && !spec->trust))
        return -ENOMEM;
    if (spec->output[0] != '/') {
        snprintf(err, err_len, "tls: output '%s' is not an absolute path", spec->output);
        return CV_ECONFIG;
    }
    if (spec->format == RENDER_REDIS && spec->port == 0) {
        snprintf(err, err_len, "tls: the redis format needs 'port' (redis-server's tls-port)");
        return CV_ECONFIG;
    }
    if (spec->http && spec->format != RENDER_CERTVISOR) {
        snprintf(err, err_len, "tls: 'http = true' needs the certvisor format");
        return CV_ECONFIG;
    }
    /* While enabled, the policy decides both: a fixed trust beside it would be a second CA. */
    if (spec->certificate_auth &&
        (spec->trust || spec->verify_peer != TLS_VERIFY_NONE || spec->format != RENDER_CERTVISOR)) {
        snprintf(err, err_len,
                 "tls: 'certificate_auth = true' sets the client verification itself "
                 "(mtls_trusted_ca, while mtls_certificate_authentication is enabled): remove "
                 "'trust' and 'verify_peer' from this section, and keep the certvisor format");
        return CV_ECONFIG;
    }
    if (spec->verify_peer != TLS_VERIFY_NONE && !spec->trust) {
        snprintf(err, err_len,
                 "tls: verify_peer = %s needs 'trust' (cluster_ca or "
                 "mtls_trusted_ca)",
                 cfg_getstr(tls, "verify_peer"));
        return CV_ECONFIG;
    }
    return 0;
}

static int convert_tls_sections(cfg_t *section, const struct expand_vars *vars,
                                struct service_config *config, char *err, size_t err_len)
{
    size_t n = cfg_size(section, "tls");

    config->tls = calloc(n + 1, sizeof(*config->tls));
    if (!config->tls)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        int r = convert_tls(cfg_getnsec(section, "tls", (unsigned)i), vars, &config->tls[i], err,
                            err_len);

        config->n_tls = i + 1;
        if (r < 0)
            return r;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(config->tls[j].output, config->tls[i].output) == 0) {
                snprintf(err, err_len, "tls: two sections render to %s (set 'output')",
                         config->tls[i].output);
                return CV_ECONFIG;
            }
        }
    }
    return 0;
}

static int check_identity(struct service_config *config, char *err, size_t err_len)
{
    if (config->user && !getpwnam(config->user)) {
        snprintf(err, err_len, "user '%s' does not exist (create it, or remove 'user')",
                 config->user);
        return CV_ECONFIG;
    }
    if (config->group && !getgrnam(config->group)) {
        snprintf(err, err_len, "group '%s' does not exist (create it, or remove 'group')",
                 config->group);
        return CV_ECONFIG;
    }
    return 0;
}

/*
 * Every setting as one string: the section as libconfuse prints it (every
 * option, defaults included, in a stable order) plus the values after
 * expansion and defaulting, which a change of the main file can alter.
 */
static char *build_fingerprint(cfg_t *section, const struct service_config *config)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    if (!f)
        return NULL;
    cfg_print(section, f);
    for (char **p = config->argv; *p; p++)
        fprintf(f, "argv %s\n", *p);
    for (char **p = config->environment; *p; p++)
        fprintf(f, "env %s\n", *p);
    for (char **p = config->reload_argv; p && *p; p++)
        fprintf(f, "reload argv %s\n", *p);
    for (size_t i = 0; i < config->n_tls; i++)
        fprintf(f, "tls output %s\n", config->tls[i].output);
    if (config->databases_output)
        fprintf(f, "databases output %s\n", config->databases_output);
    if (config->replicas_output)
        fprintf(f, "replicas output %s\n", config->replicas_output);
    if (config->state_directory)
        fprintf(f, "state directory %s\n", config->state_directory);
    fprintf(f, "dir %s\nuser %s\ngroup %s\nout %s\nerr %s\n", config->directory,
            config->user ? config->user : "", config->group ? config->group : "",
            config->stdout_target.path, config->stderr_target.path);
    fclose(f);
    return text;
}

/*
 * reload_command: expanded like the arguments. A service reloads one way, so a
 * reload signal beside it is refused rather than one of them silently ignored.
 */
static int convert_reload_command(cfg_t *section, const struct expand_vars *vars,
                                  struct service_config *config, char *err, size_t err_len)
{
    if (cfg_size(section, "reload_command") == 0)
        return 0;
    if (config->reload_signal) {
        snprintf(err, err_len,
                 "reload_command and reload_signal = %s are both set: a service reloads one way "
                 "(keep reload_command for a program that cannot reload on a signal, such as "
                 "redis-server, and remove reload_signal)",
                 cfg_getstr(section, "reload_signal"));
        return CV_ECONFIG;
    }
    config->reload_argv = expand_list(section, "reload_command", 0, vars, NULL);
    if (!config->reload_argv)
        return -ENOMEM;
    if (config->reload_argv[0][0] != '/') {
        snprintf(err, err_len, "reload_command: '%s' is not an absolute path",
                 config->reload_argv[0]);
        return CV_ECONFIG;
    }
    return 0;
}

static int convert(cfg_t *section, const struct expand_vars *vars, struct service_config *config,
                   char *err, size_t err_len)
{
    const char *command = cfg_getstr(section, "command");
    char stream_path[4096];
    int r;

    if (!command) {
        snprintf(err, err_len, "'command' is required");
        return CV_ECONFIG;
    }
    config->argv = expand_list(section, "arguments", 1, vars, NULL);
    if (!config->argv || !(config->argv[0] = expand_string(command, vars)))
        return -ENOMEM;
    if (config->argv[0][0] != '/') {
        snprintf(err, err_len, "command '%s' is not an absolute path", config->argv[0]);
        return CV_ECONFIG;
    }
    config->environment = expand_list(section, "environment", 0, vars, NULL);
    config->after = expand_list(section, "after", 0, vars, &config->n_after);
    config->directory = expand_string(cfg_getstr(section, "directory"), vars);
    if (!config->environment || !config->after || !config->directory)
        return -ENOMEM;
    if (cfg_size(section, "databases_output") &&
        !(config->databases_output = expand_string(cfg_getstr(section, "databases_output"), vars)))
        return -ENOMEM;
    if (config->databases_output && config->databases_output[0] != '/') {
        snprintf(err, err_len, "databases_output '%s' is not an absolute path",
                 config->databases_output);
        return CV_ECONFIG;
    }
    if (cfg_size(section, "replicas_output") &&
        !(config->replicas_output = expand_string(cfg_getstr(section, "replicas_output"), vars)))
        return -ENOMEM;
    if (config->replicas_output && config->replicas_output[0] != '/') {
        snprintf(err, err_len, "replicas_output '%s' is not an absolute path",
                 config->replicas_output);
        return CV_ECONFIG;
    }
    if (cfg_size(section, "state_directory") &&
        !(config->state_directory = expand_string(cfg_getstr(section, "state_directory"), vars)))
        return -ENOMEM;
    if (config->state_directory && config->state_directory[0] != '/') {
        snprintf(err, err_len, "state_directory '%s' is not an absolute path",
                 config->state_directory);
        return CV_ECONFIG;
    }
    if (config->directory[0] != '/') {
        snprintf(err, err_len, "directory '%s' is not an absolute path", config->directory);
        return CV_ECONFIG;
    }
    if (cfg_getstr(section, "user") && !(config->user = strdup(cfg_getstr(section, "user"))))
        return -ENOMEM;
    if (cfg_getstr(section, "group") && !(config->group = strdup(cfg_getstr(section, "group"))))
        return -ENOMEM;
    config->autostart = cfg_getbool(section, "autostart");
    config->n_exit_codes = cfg_size(section, "exit_codes");
    config->exit_codes = calloc(config->n_exit_codes + 1, sizeof(int));
    if (!config->exit_codes)
        return -ENOMEM;
    for (size_t i = 0; i < config->n_exit_codes; i++)
        config->exit_codes[i] = (int)cfg_getnint(section, "exit_codes", (unsigned)i);
    config->stop_signal = signal_parse(cfg_getstr(section, "stop_signal"));
    config->reload_signal = strcmp(cfg_getstr(section, "reload_signal"), "none") == 0
                                ? 0
                                : signal_parse(cfg_getstr(section, "reload_signal"));
    config->upgrade_signal = strcmp(cfg_getstr(section, "upgrade_signal"), "none") == 0
                                 ? 0
                                 : signal_parse(cfg_getstr(section, "upgrade_signal"));

    r = convert_reload_command(section, vars, config, err, err_len);
    if (r < 0)
        return r;

    const char *autorestart = cfg_getstr(section, "autorestart");
    config->policy.autorestart = strcmp(autorestart, "true") == 0    ? AUTORESTART_TRUE
                                 : strcmp(autorestart, "false") == 0 ? AUTORESTART_FALSE
                                                                     : AUTORESTART_UNEXPECTED;
    config->policy.readiness = strcmp(cfg_getstr(section, "readiness"), "started") == 0
                                   ? READINESS_STARTED
                                   : READINESS_NOTIFY;
    config->policy.start_retries = (int)cfg_getint(section, "start_retries");
    config->policy.start_timeout = cfg_getfloat(section, "start_timeout");
    config->policy.stop_timeout = cfg_getfloat(section, "stop_timeout");
    config->policy.backoff_initial = cfg_getfloat(section, "backoff_initial");
    config->policy.backoff_factor = cfg_getfloat(section, "backoff_factor");
    config->policy.backoff_max = cfg_getfloat(section, "backoff_max");
    config->policy.backoff_reset_after = cfg_getfloat(section, "backoff_reset_after");

    snprintf(stream_path, sizeof(stream_path), "%s/%s.log", vars->log_dir, config->name);
    for (int i = 0; i < 2; i++) {
        const char *option = i ? "stderr" : "stdout";
        struct output_target *target = i ? &config->stderr_target : &config->stdout_target;
        char *value = expand_string(cfg_getstr(section, option), vars);

        if (!value)
            return -ENOMEM;
        r = output_target_from(value, stream_path, target);
        if (r == -EINVAL)
            snprintf(err, err_len, "%s: '%s' is not auto, journal, file, null or an absolute path",
                     option, value);
        free(value);
        if (r < 0)
            return r == -EINVAL ? CV_ECONFIG : r;
    }
    return convert_tls_sections(section, vars, config, err, err_len);
}

static bool valid_service_name(const char *name)
{
    if (!*name || strlen(name) > 64)
        return false;
    for (const char *p = name; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == '.'))
            return false;
    return strcmp(name, "all") != 0;
}

int service_config_from_cfg(cfg_t *section, const char *source_file, struct expand_vars *vars,
                            const char *default_user, const char *default_group,
                            struct service_config **ret_config, char *err, size_t err_len)
{
    struct service_config *config = calloc(1, sizeof(*config));
    const char *name = cfg_title(section);
    char reason[512] = "";
    int r;

    if (!config)
        return -ENOMEM;
    config->source_line = section->line;
    config->name = strdup(name);
    config->source_file = strdup(source_file);
    if (!config->name || !config->source_file) {
        service_config_free(config);
        return -ENOMEM;
    }
    /* libconfuse records where a section closes; operators look for where it opens. */
    config->source_line = conf_text_section_line(config->source_file, "service", name);
    if (!config->source_line)
        config->source_line = section->line;
    if (!valid_service_name(name)) {
        snprintf(reason, sizeof(reason),
                 "invalid service name (use letters, digits, '_', '-' and '.'; not 'all')");
        r = CV_ECONFIG;
    } else {
        vars->name = name;
        r = convert(section, vars, config, reason, sizeof(reason));
        vars->name = NULL;
    }
    if (r == 0 && !config->user && default_user && !(config->user = strdup(default_user)))
        r = -ENOMEM;
    if (r == 0 && !config->group && default_group && !(config->group = strdup(default_group)))
        r = -ENOMEM;
    if (r == 0)
        r = check_identity(config, reason, sizeof(reason));
    if (r == 0 && !(config->fingerprint = build_fingerprint(section, config)))
        r = -ENOMEM;
    if (r < 0) {
        snprintf(err, err_len, "%s:%d: service '%s': %s", config->source_file, config->source_line,
                 name, r == CV_ECONFIG ? reason : cv_strerror(r));
        service_config_free(config);
        return r == -ENOMEM ? r : CV_ECONFIG;
    }
    *ret_config = config;
    return 0;
}
