/* The conf.d sections about certificates and TLS: "certificates { ... }" and "policy { ... }". */
#include "conf_certs.h"

#include "conf_text.h"
#include "cv_error.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cfg_opt_t conf_certificates_options[] = {CFG_STR("cluster_fqdn", "cluster.local", CFGF_NONE),
                                         CFG_STR("node_hostname", "", CFGF_NONE),
                                         CFG_STR_LIST("extra_dns_names", "{}", CFGF_NONE),
                                         CFG_STR_LIST("extra_ip_addresses", "{}", CFGF_NONE),
                                         CFG_STR("key_type", "ecdsa-p256", CFGF_NONE),
                                         CFG_INT("validity_days", 365, CFGF_NONE),
                                         CFG_INT("ca_validity_days", 3650, CFGF_NONE),
                                         CFG_INT("renew_before_days", 30, CFGF_NONE),
                                         CFG_INT_LIST("warn_days", "{45, 30, 7, 1}", CFGF_NONE),
                                         CFG_END()};

/* Every policy setting under its canonical name, plus the two older names operators use. */
cfg_opt_t conf_policy_options[] = {CFG_STR("min_control_TLS_version", NULL, CFGF_NODEFAULT),
                                   CFG_STR("min_data_TLS_version", NULL, CFGF_NODEFAULT),
                                   CFG_STR("min_sentinel_TLS_version", NULL, CFGF_NODEFAULT),
                                   CFG_STR("control_cipher_suites", NULL, CFGF_NODEFAULT),
                                   CFG_STR("cipher_suites", NULL, CFGF_NODEFAULT),
                                   CFG_STR("data_cipher_list", NULL, CFGF_NODEFAULT),
                                   CFG_STR("control_cipher_suites_tls_1_3", NULL, CFGF_NODEFAULT),
                                   CFG_STR("data_cipher_suites_tls_1_3", NULL, CFGF_NODEFAULT),
                                   CFG_STR("sentinel_cipher_suites", NULL, CFGF_NODEFAULT),
                                   CFG_STR("sentinel_tls_mode", NULL, CFGF_NODEFAULT),
                                   CFG_STR("sentinel_ssl_policy", NULL, CFGF_NODEFAULT),
                                   CFG_STR("http_support", NULL, CFGF_NODEFAULT),
                                   CFG_END()};

static int validate_days(cfg_t *cfg, cfg_opt_t *opt)
{
    long days = cfg_opt_getnint(opt, cfg_opt_size(opt) - 1);

    if (days < 1 || days > 36500) {
        cfg_error(cfg, "%s: %ld is not a number of days from 1 to 36500", opt->name, days);
        return -1;
    }
    return 0;
}

static int validate_key_type(cfg_t *cfg, cfg_opt_t *opt)
{
    enum key_type type;

    if (key_type_parse(cfg_opt_getnstr(opt, 0), &type) < 0) {
        cfg_error(cfg, "key_type: '%s' is not ecdsa-p256, rsa-2048, rsa-3072 or rsa-4096",
                  cfg_opt_getnstr(opt, 0));
        return -1;
    }
    return 0;
}

static int validate_ip(cfg_t *cfg, cfg_opt_t *opt)
{
    const char *text = cfg_opt_getnstr(opt, cfg_opt_size(opt) - 1);
    unsigned char buf[16];

    if (inet_pton(AF_INET, text, buf) != 1 && inet_pton(AF_INET6, text, buf) != 1) {
        cfg_error(cfg, "extra_ip_addresses: '%s' is not an IPv4 or IPv6 address", text);
        return -1;
    }
    return 0;
}

void conf_certs_set_validators(cfg_t *cfg)
{
    static const char *const days[] = {"validity_days", "ca_validity_days", "renew_before_days",
                                       "warn_days"};
    char path[64];

    for (size_t i = 0; i < sizeof(days) / sizeof(days[0]); i++) {
        snprintf(path, sizeof(path), "certificates|%s", days[i]);
        cfg_set_validate_func(cfg, path, validate_days);
    }
    cfg_set_validate_func(cfg, "certificates|key_type", validate_key_type);
    cfg_set_validate_func(cfg, "certificates|extra_ip_addresses", validate_ip);
}

static char **copy_list(cfg_t *section, const char *option)
{
    size_t n = cfg_size(section, option);
    char **list = calloc(n + 1, sizeof(char *));

    if (!list)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        list[i] = strdup(cfg_getnstr(section, option, (unsigned)i));
        if (!list[i]) {
            for (size_t j = 0; j < i; j++)
                free(list[j]);
            free(list);
            return NULL;
        }
    }
    return list;
}

static void free_list(char **list)
{
    for (char **p = list; p && *p; p++)
        free(*p);
    free(list);
}

void cert_settings_clear(struct cert_settings *settings)
{
    free(settings->cluster_fqdn);
    free(settings->node_hostname);
    free_list(settings->extra_dns_names);
    free_list(settings->extra_ip_addresses);
    free(settings->warn_days);
    free(settings->source_file);
    memset(settings, 0, sizeof(*settings));
}

static int fill(cfg_t *section, struct cert_settings *settings)
{
    const char *hostname = cfg_getstr(section, "node_hostname");

    settings->cluster_fqdn = strdup(cfg_getstr(section, "cluster_fqdn"));
    settings->node_hostname = *hostname ? strdup(hostname) : NULL;
    settings->extra_dns_names = copy_list(section, "extra_dns_names");
    settings->extra_ip_addresses = copy_list(section, "extra_ip_addresses");
    key_type_parse(cfg_getstr(section, "key_type"), &settings->key_type);
    settings->validity_days = (int)cfg_getint(section, "validity_days");
    settings->ca_validity_days = (int)cfg_getint(section, "ca_validity_days");
    settings->renew_before_days = (int)cfg_getint(section, "renew_before_days");
    settings->n_warn_days = cfg_size(section, "warn_days");
    settings->warn_days = calloc(settings->n_warn_days + 1, sizeof(int));
    if (!settings->cluster_fqdn || (*hostname && !settings->node_hostname) ||
        !settings->extra_dns_names || !settings->extra_ip_addresses || !settings->warn_days)
        return -ENOMEM;
    for (size_t i = 0; i < settings->n_warn_days; i++)
        settings->warn_days[i] = (int)cfg_getnint(section, "warn_days", (unsigned)i);
    return 0;
}

int cert_settings_default(struct cert_settings *settings)
{
    cfg_opt_t options[] = {CFG_SEC("certificates", conf_certificates_options, CFGF_NONE),
                           CFG_END()};
    cfg_t *cfg = cfg_init(options, CFGF_NONE);
    int r;

    if (!cfg)
        return -ENOMEM;
    memset(settings, 0, sizeof(*settings));
    r = fill(cfg_getsec(cfg, "certificates"), settings);
    cfg_free(cfg);
    if (r < 0)
        cert_settings_clear(settings);
    return r;
}

int cert_settings_from_cfg(cfg_t *section, const char *path, struct cert_settings *settings,
                           char *err, size_t err_len)
{
    int r;

    memset(settings, 0, sizeof(*settings));
    r = fill(section, settings);
    if (r == 0 && !(settings->source_file = strdup(path)))
        r = -ENOMEM;
    if (r == 0 && settings->renew_before_days >= settings->validity_days) {
        snprintf(err, err_len, "%s:%d: renew_before_days (%d) must be less than validity_days (%d)",
                 path, conf_text_option_line(path, "renew_before_days"),
                 settings->renew_before_days, settings->validity_days);
        r = CV_ECONFIG;
    }
    if (r < 0)
        cert_settings_clear(settings);
    return r;
}

int conf_policy_merge(cfg_t *section, const char *path, struct policy *policy, char *err,
                      size_t err_len)
{
    for (cfg_opt_t *opt = conf_policy_options; opt->name; opt++) {
        int setting = policy_setting_lookup(opt->name);
        const char *value = cfg_size(section, opt->name) ? cfg_getstr(section, opt->name) : NULL;
        const struct policy_value *existing = &policy->values[setting];
        int line = value ? conf_text_option_line(path, opt->name) : 0;
        char check[600], warn[600];

        if (!value)
            continue;
        if (existing->value && existing->source == POLICY_FROM_FILE) {
            snprintf(err, err_len, "%s:%d: %s is already set at %s:%d (as %s)", path, line,
                     opt->name, existing->file, existing->line,
                     policy_setting_name((enum policy_setting)setting));
            return CV_ECONFIG;
        }
        if (policy_check(policy, (enum policy_setting)setting, value, check, sizeof(check), warn,
                         sizeof(warn)) < 0) {
            snprintf(err, err_len, "%s:%d: %s", path, line, check);
            return CV_ECONFIG;
        }
        if (*warn)
            log_warning("%s:%d: %s", path, line, warn);
        if (policy_set(policy, (enum policy_setting)setting, value, POLICY_FROM_FILE, path, line) <
            0)
            return -ENOMEM;
    }
    return 0;
}
