/*
 * The conf.d sections about certificates and TLS: "certificates { ... }", "policy { ... }" and
 * "certificate <name> { ... }".
 */
#include "conf_certs.h"

#include "cert_names.h"
#include "conf_text.h"
#include "cv_error.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
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
cfg_opt_t conf_policy_options[] = {
    CFG_STR("min_control_TLS_version", NULL, CFGF_NODEFAULT),
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
    CFG_STR("mtls_certificate_authentication", NULL, CFGF_NODEFAULT),
    CFG_STR("mtls_client_cert_subject_validation_type", NULL, CFGF_NODEFAULT),
    CFG_STR("ocsp_functionality", NULL, CFGF_NODEFAULT),
    CFG_STR("ocsp_query_frequency", NULL, CFGF_NODEFAULT),
    CFG_STR("ocsp_response_timeout", NULL, CFGF_NODEFAULT),
    CFG_STR("ocsp_recovery_frequency", NULL, CFGF_NODEFAULT),
    CFG_STR("ocsp_recovery_max_tries", NULL, CFGF_NODEFAULT),
    CFG_STR("ldap_authentication", NULL, CFGF_NODEFAULT),
    CFG_STR("ldap_uris", NULL, CFGF_NODEFAULT),
    CFG_STR("ldap_bind_dn", NULL, CFGF_NODEFAULT),
    CFG_STR("ldap_bind_password", NULL, CFGF_NODEFAULT),
    CFG_STR("ldap_user_search_base", NULL, CFGF_NODEFAULT),
    CFG_STR("ldap_user_filter", NULL, CFGF_NODEFAULT),
    CFG_STR("ldap_user_dn_template", NULL, CFGF_NODEFAULT),
    CFG_STR("ldap_group_search_base", NULL, CFGF_NODEFAULT),
    CFG_STR("ldap_group_filter", NULL, CFGF_NODEFAULT),
    CFG_STR("ldap_group_attribute", NULL, CFGF_NODEFAULT),
    CFG_STR("ldap_admin_groups", NULL, CFGF_NODEFAULT),
    CFG_STR("ldap_viewer_groups", NULL, CFGF_NODEFAULT),
    CFG_STR("ldap_cache_seconds", NULL, CFGF_NODEFAULT),
    CFG_STR("ldap_timeout", NULL, CFGF_NODEFAULT),
    CFG_END()};

cfg_opt_t conf_certificate_options[] = {CFG_STR("cert_file", NULL, CFGF_NODEFAULT),
                                        CFG_STR("key_file", NULL, CFGF_NODEFAULT), CFG_END()};

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

/* --- "certificate <name> { cert_file, key_file }": certificates that other tools keep --- */

/* Where a certificate section and its options are in its file; 0 when not found. */
struct section_place {
    int first;  /* the line that opens the section */
    int second; /* the line that opens another section with the same name */
    int cert_file;
    int key_file;
};

/* Whether line opens "certificate <name>" (the name quoted or not). */
static bool assigns(const char *line, const char *option)
{
    const char *p = line + strspn(line, " \t");
    size_t len = strlen(option);

    return strncmp(p, option, len) == 0 && p[len] && strchr(" \t=", p[len]);
}

/*
 * libconfuse keeps only the last of two sections with one title, and records
 * the line where a section closes. So the file is read again, comments
 * blanked and lines kept, for the lines that open "certificate <name>" and
 * the first cert_file and key_file after the first of them.
 */
static int find_section(const char *path, const char *name, struct section_place *place, char *err,
                        size_t err_len)
{
    char *text;
    int number = 0;
    int r = conf_text_load(path, &text, err, err_len);

    if (r < 0)
        return r;
    memset(place, 0, sizeof(*place));
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        next = next ? next + 1 : NULL;
        number++;
        if (conf_text_opens_section(line, "certificate", name)) {
            if (place->first) {
                place->second = number;
                break;
            }
            place->first = number;
        } else if (place->first && !place->cert_file && assigns(line, "cert_file")) {
            place->cert_file = number;
        } else if (place->first && !place->key_file && assigns(line, "key_file")) {
            place->key_file = number;
        }
    }
    free(text);
    return 0;
}

static const char *optional_str(cfg_t *section, const char *option)
{
    return cfg_size(section, option) ? cfg_getstr(section, option) : NULL;
}

/* What is wrong with the section (into reason, with the line it is on), or "" when nothing. */
static void check_external(cfg_t *section, const struct section_place *place, int *line,
                           char *reason, size_t reason_len)
{
    const char *name = cfg_title(section);
    const char *cert_file = optional_str(section, "cert_file");
    const char *key_file = optional_str(section, "key_file");
    const struct cert_name *known = cert_name_lookup(name);

    *reason = '\0';
    if (strcmp(name, CERT_CLUSTER_CA) == 0) {
        snprintf(reason, reason_len,
                 "the cluster CA is made and kept by certvisor and cannot come from files "
                 "(use one of: %s)",
                 cert_names_list());
    } else if (!known) {
        snprintf(reason, reason_len, "unknown certificate name (use one of: %s)",
                 cert_names_list());
    } else if (!cert_file) {
        snprintf(reason, reason_len,
                 "cert_file is required (the PEM file with the certificate and its chain)");
    } else if (cert_file[0] != '/') {
        *line = place->cert_file ? place->cert_file : *line;
        snprintf(reason, reason_len, "cert_file: '%s' is not an absolute path (start it with '/')",
                 cert_file);
    } else if (!known->has_key && key_file) {
        *line = place->key_file ? place->key_file : *line;
        snprintf(reason, reason_len,
                 "%s is a bundle of CA certificates and has no key: remove "
                 "key_file",
                 name);
    } else if (known->has_key && !key_file) {
        snprintf(reason, reason_len,
                 "key_file is required (the PEM file with the private key of cert_file)");
    } else if (key_file && key_file[0] != '/') {
        *line = place->key_file ? place->key_file : *line;
        snprintf(reason, reason_len, "key_file: '%s' is not an absolute path (start it with '/')",
                 key_file);
    }
}

static void clear_external(struct external_cert *cert)
{
    free(cert->name);
    free(cert->cert_file);
    free(cert->key_file);
    free(cert->source);
}

static int append_external(cfg_t *section, const char *path, int line, struct external_cert **certs,
                           size_t *n_certs)
{
    const char *key_file = optional_str(section, "key_file");
    struct external_cert cert = {strdup(cfg_title(section)),
                                 strdup(cfg_getstr(section, "cert_file")),
                                 key_file ? strdup(key_file) : NULL, NULL};
    struct external_cert *grown;

    if (asprintf(&cert.source, "%s:%d", path, line) < 0)
        cert.source = NULL;
    grown = cert.name && cert.cert_file && (cert.key_file || !key_file) && cert.source
                ? realloc(*certs, (*n_certs + 1) * sizeof(*grown))
                : NULL;
    if (!grown) {
        clear_external(&cert);
        return -ENOMEM;
    }
    grown[*n_certs] = cert;
    *certs = grown;
    (*n_certs)++;
    return 0;
}

int conf_external_cert_add(cfg_t *section, const char *path, struct external_cert **certs,
                           size_t *n_certs, char *err, size_t err_len)
{
    const char *name = cfg_title(section);
    struct section_place place;
    char reason[600];
    int line, r = find_section(path, name, &place, err, err_len);

    if (r < 0)
        return r;
    line = place.first ? place.first : section->line;
    if (place.second) {
        snprintf(err, err_len,
                 "%s:%d: certificate '%s' is already defined at %s:%d (one section per "
                 "certificate: remove one)",
                 path, place.second, name, path, line);
        return CV_ECONFIG;
    }
    for (size_t i = 0; i < *n_certs; i++) {
        if (strcmp((*certs)[i].name, name) == 0) {
            snprintf(err, err_len,
                     "%s:%d: certificate '%s' is already defined at %s (one section per "
                     "certificate: remove one)",
                     path, line, name, (*certs)[i].source);
            return CV_ECONFIG;
        }
    }
    check_external(section, &place, &line, reason, sizeof(reason));
    if (*reason) {
        snprintf(err, err_len, "%s:%d: certificate '%s': %s", path, line, name, reason);
        return CV_ECONFIG;
    }
    return append_external(section, path, line, certs, n_certs);
}

void external_certs_free(struct external_cert *certs, size_t n)
{
    for (size_t i = 0; certs && i < n; i++)
        clear_external(&certs[i]);
    free(certs);
}

int cert_settings_add_ip(struct cert_settings *settings, const char *address)
{
    size_t n = 0;
    char **list;

    if (strcmp(address, "127.0.0.1") == 0 || strcmp(address, "::1") == 0)
        return 0; /* always in */
    for (char **p = settings->extra_ip_addresses; p && *p; p++, n++)
        if (strcmp(*p, address) == 0)
            return 0;
    list = realloc(settings->extra_ip_addresses, (n + 2) * sizeof(char *));
    if (!list)
        return -ENOMEM;
    settings->extra_ip_addresses = list;
    list[n] = strdup(address);
    list[n + 1] = NULL;
    return list[n] ? 0 : -ENOMEM;
}
