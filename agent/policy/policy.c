/* The node's TLS policy: settings, their validation, where each value came from, runtime overrides.
 */
#include "policy.h"

#include "cv_error.h"
#include "fsutil.h"
#include "tls_context.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

enum value_kind {
    KIND_VERSION,
    KIND_CIPHERS,
    KIND_TLS13_SUITES,
    KIND_MODE,
    KIND_SWITCH,
    KIND_SUBJECT_VALIDATION,
    KIND_NUMBER, /* a whole number within [min, max] */
    KIND_TEXT,   /* free text on one line ("" unsets it), at most POLICY_TEXT_MAX bytes */
    KIND_SECRET, /* the same, never shown */
    KIND_LDAP_URIS,
    KIND_LDAP_FILTER,      /* an LDAP filter in parentheses */
    KIND_LDAP_DN_TEMPLATE, /* a DN holding %u */
};

#define POLICY_TEXT_MAX 1000  /* within the cluster store's limit for a value */
#define POLICY_SECRET_MAX 512 /* and sealed (sync.c: 32 bytes more, then base64) */

/* The three planes whose minimum version and cipher settings go together. */
enum plane { PLANE_CONTROL, PLANE_DATA, PLANE_SENTINEL, PLANE_NONE };

static const struct {
    const char *name;
    const char *alias; /* the older spelling, or NULL */
    enum value_kind kind;
    enum plane plane;
    const char *default_value; /* NULL: OpenSSL's default, or (sentinel version) follows data */
    long min, max;             /* KIND_NUMBER */
} settings[POLICY_COUNT] = {
    [POLICY_MIN_CONTROL_TLS_VERSION] = {"min_control_TLS_version", NULL, KIND_VERSION,
                                        PLANE_CONTROL, "1.2"},
    [POLICY_MIN_DATA_TLS_VERSION] = {"min_data_TLS_version", NULL, KIND_VERSION, PLANE_DATA, "1.2"},
    [POLICY_MIN_SENTINEL_TLS_VERSION] = {"min_sentinel_TLS_version", NULL, KIND_VERSION,
                                         PLANE_SENTINEL, NULL},
    [POLICY_CONTROL_CIPHER_SUITES] = {"control_cipher_suites", "cipher_suites", KIND_CIPHERS,
                                      PLANE_CONTROL, NULL},
    [POLICY_DATA_CIPHER_LIST] = {"data_cipher_list", NULL, KIND_CIPHERS, PLANE_DATA, NULL},
    [POLICY_CONTROL_CIPHER_SUITES_TLS_1_3] = {"control_cipher_suites_tls_1_3", NULL,
                                              KIND_TLS13_SUITES, PLANE_CONTROL, NULL},
    [POLICY_DATA_CIPHER_SUITES_TLS_1_3] = {"data_cipher_suites_tls_1_3", NULL, KIND_TLS13_SUITES,
                                           PLANE_DATA, NULL},
    [POLICY_SENTINEL_CIPHER_SUITES] = {"sentinel_cipher_suites", NULL, KIND_CIPHERS, PLANE_SENTINEL,
                                       NULL},
    [POLICY_SENTINEL_TLS_MODE] = {"sentinel_tls_mode", "sentinel_ssl_policy", KIND_MODE, PLANE_NONE,
                                  "allowed"},
    [POLICY_HTTP_SUPPORT] = {"http_support", NULL, KIND_SWITCH, PLANE_NONE, "enabled"},
    [POLICY_MTLS_CERTIFICATE_AUTHENTICATION] = {"mtls_certificate_authentication", NULL,
                                                KIND_SWITCH, PLANE_NONE, "disabled"},
    [POLICY_MTLS_SUBJECT_VALIDATION_TYPE] = {"mtls_client_cert_subject_validation_type", NULL,
                                             KIND_SUBJECT_VALIDATION, PLANE_NONE, "san_cn"},
    /* Redis Enterprise's names, defaults and ranges for the same settings. */
    [POLICY_OCSP_FUNCTIONALITY] = {"ocsp_functionality", NULL, KIND_SWITCH, PLANE_NONE, "disabled"},
    [POLICY_OCSP_QUERY_FREQUENCY] = {"ocsp_query_frequency", NULL, KIND_NUMBER, PLANE_NONE, "3600",
                                     60, 86400},
    [POLICY_OCSP_RESPONSE_TIMEOUT] = {"ocsp_response_timeout", NULL, KIND_NUMBER, PLANE_NONE, "1",
                                      1, 60},
    [POLICY_OCSP_RECOVERY_FREQUENCY] = {"ocsp_recovery_frequency", NULL, KIND_NUMBER, PLANE_NONE,
                                        "60", 60, 86400},
    [POLICY_OCSP_RECOVERY_MAX_TRIES] = {"ocsp_recovery_max_tries", NULL, KIND_NUMBER, PLANE_NONE,
                                        "5", 1, 100},
    [POLICY_LDAP_AUTHENTICATION] = {"ldap_authentication", NULL, KIND_SWITCH, PLANE_NONE,
                                    "disabled"},
    [POLICY_LDAP_URIS] = {"ldap_uris", NULL, KIND_LDAP_URIS, PLANE_NONE, NULL},
    [POLICY_LDAP_BIND_DN] = {"ldap_bind_dn", NULL, KIND_TEXT, PLANE_NONE, NULL},
    [POLICY_LDAP_BIND_PASSWORD] = {"ldap_bind_password", NULL, KIND_SECRET, PLANE_NONE, NULL},
    [POLICY_LDAP_USER_SEARCH_BASE] = {"ldap_user_search_base", NULL, KIND_TEXT, PLANE_NONE, NULL},
    [POLICY_LDAP_USER_FILTER] = {"ldap_user_filter", NULL, KIND_LDAP_FILTER, PLANE_NONE,
                                 "(uid=%u)"},
    [POLICY_LDAP_USER_DN_TEMPLATE] = {"ldap_user_dn_template", NULL, KIND_LDAP_DN_TEMPLATE,
                                      PLANE_NONE, NULL},
    [POLICY_LDAP_GROUP_SEARCH_BASE] = {"ldap_group_search_base", NULL, KIND_TEXT, PLANE_NONE, NULL},
    [POLICY_LDAP_GROUP_FILTER] = {"ldap_group_filter", NULL, KIND_LDAP_FILTER, PLANE_NONE,
                                  "(member=%d)"},
    [POLICY_LDAP_GROUP_ATTRIBUTE] = {"ldap_group_attribute", NULL, KIND_TEXT, PLANE_NONE,
                                     "memberOf"},
    [POLICY_LDAP_ADMIN_GROUPS] = {"ldap_admin_groups", NULL, KIND_TEXT, PLANE_NONE, NULL},
    [POLICY_LDAP_VIEWER_GROUPS] = {"ldap_viewer_groups", NULL, KIND_TEXT, PLANE_NONE, NULL},
    [POLICY_LDAP_CACHE_SECONDS] = {"ldap_cache_seconds", NULL, KIND_NUMBER, PLANE_NONE, "60", 0,
                                   3600},
    [POLICY_LDAP_TIMEOUT] = {"ldap_timeout", NULL, KIND_NUMBER, PLANE_NONE, "5", 1, 60},
};

/* Per plane: its minimum version, its TLS <= 1.2 ciphers and its TLS 1.3 suites (or -1). */
static const int plane_settings[3][3] = {
    [PLANE_CONTROL] = {POLICY_MIN_CONTROL_TLS_VERSION, POLICY_CONTROL_CIPHER_SUITES,
                       POLICY_CONTROL_CIPHER_SUITES_TLS_1_3},
    [PLANE_DATA] = {POLICY_MIN_DATA_TLS_VERSION, POLICY_DATA_CIPHER_LIST,
                    POLICY_DATA_CIPHER_SUITES_TLS_1_3},
    [PLANE_SENTINEL] = {POLICY_MIN_SENTINEL_TLS_VERSION, POLICY_SENTINEL_CIPHER_SUITES, -1},
};

static const char *const plane_names[] = {"control", "data", "sentinel"};

const char *policy_setting_name(enum policy_setting setting)
{
    return settings[setting].name;
}

int policy_setting_lookup(const char *name)
{
    for (int i = 0; i < POLICY_COUNT; i++)
        if (strcasecmp(name, settings[i].name) == 0 ||
            (settings[i].alias && strcasecmp(name, settings[i].alias) == 0))
            return i;
    return -1;
}

int policy_init(struct policy *policy)
{
    memset(policy, 0, sizeof(*policy));
    return 0;
}

void policy_clear(struct policy *policy)
{
    for (int i = 0; i < POLICY_COUNT; i++) {
        free(policy->values[i].value);
        free(policy->values[i].file);
    }
    memset(policy, 0, sizeof(*policy));
}

int policy_copy(struct policy *to, const struct policy *from)
{
    policy_init(to);
    for (int i = 0; i < POLICY_COUNT; i++) {
        const struct policy_value *v = &from->values[i];

        to->values[i].source = v->source;
        to->values[i].line = v->line;
        if ((v->value && !(to->values[i].value = strdup(v->value))) ||
            (v->file && !(to->values[i].file = strdup(v->file)))) {
            policy_clear(to);
            return -ENOMEM;
        }
    }
    return 0;
}

const char *policy_get(const struct policy *policy, enum policy_setting setting)
{
    if (policy->values[setting].value)
        return policy->values[setting].value;
    if (setting == POLICY_MIN_SENTINEL_TLS_VERSION)
        return policy_get(policy, POLICY_MIN_DATA_TLS_VERSION);
    return settings[setting].default_value;
}

bool policy_enabled(const struct policy *policy, enum policy_setting setting)
{
    const char *value = policy_get(policy, setting);

    return value && strcmp(value, "enabled") == 0;
}

/* text as a whole decimal number, or false (signs, spaces and overflow are refused). */
static bool parse_number(const char *text, long *ret_number)
{
    char *end;
    long n;

    if (!*text || *text < '0' || *text > '9' || strlen(text) > 9)
        return false;
    n = strtol(text, &end, 10);
    if (*end)
        return false;
    *ret_number = n;
    return true;
}

long policy_number(const struct policy *policy, enum policy_setting setting)
{
    long n = 0;

    /* Values are checked before they are set: the default covers only the impossible. */
    if (!parse_number(policy_get(policy, setting), &n) || n < settings[setting].min ||
        n > settings[setting].max)
        parse_number(settings[setting].default_value, &n);
    return n;
}

void policy_number_range(enum policy_setting setting, long *ret_min, long *ret_max)
{
    *ret_min = settings[setting].min;
    *ret_max = settings[setting].max;
}

bool policy_secret(enum policy_setting setting)
{
    return settings[setting].kind == KIND_SECRET;
}

const char *policy_shown(enum policy_setting setting, const char *value)
{
    return value && policy_secret(setting) ? POLICY_SECRET_SHOWN : value;
}

const char *policy_text(const struct policy *policy, enum policy_setting setting)
{
    const char *value = policy_get(policy, setting);

    return value && *value ? value : NULL;
}

/* Every URI ldaps:// or ldap:// with a host, separated by single spaces: OpenLDAP's list. */
static bool valid_ldap_uris(const char *text, char *err, size_t err_len)
{
    const char *p = text;

    if (!*p) {
        snprintf(err, err_len, "ldap_uris: empty (give ldaps://host:port or ldap://host:port)");
        return false;
    }
    while (*p) {
        size_t len = strcspn(p, " ");
        size_t scheme = strncmp(p, "ldaps://", 8) == 0 ? 8 : strncmp(p, "ldap://", 7) == 0 ? 7 : 0;

        if (!scheme || len <= scheme || memchr(p + scheme, '/', len - scheme) != NULL ||
            memchr(p, '?', len) != NULL) {
            snprintf(err, err_len,
                     "ldap_uris: '%.*s' is not ldaps://host[:port] or ldap://host[:port] (ldap:// "
                     "always uses StartTLS; separate several with single spaces)",
                     (int)(len > 200 ? 200 : len), p);
            return false;
        }
        p += len;
        if (*p == ' ' && !*++p) {
            snprintf(err, err_len, "ldap_uris: ends with a space");
            return false;
        }
    }
    return true;
}

/* "(...)", with balanced parentheses, and only %u (filters of users) or %d (of groups). */
static bool valid_ldap_filter(enum policy_setting setting, const char *text, char *err,
                              size_t err_len)
{
    char allowed = setting == POLICY_LDAP_USER_FILTER ? 'u' : 'd';
    int depth = 0;

    if (text[0] != '(' || text[strlen(text) - 1] != ')')
        goto bad;
    for (const char *p = text; *p; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')' && --depth < 0)
            goto bad;
        else if (*p == '%' && p[1] != allowed)
            goto bad;
    }
    if (depth == 0 && strstr(text, (allowed == 'u' ? "%u" : "%d")))
        return true;
bad:
    snprintf(err, err_len,
             "%s: '%s' is not an LDAP filter in parentheses holding %%%c (and no other %%), such "
             "as %s",
             settings[setting].name, text, allowed, settings[setting].default_value);
    return false;
}

/* "1", "1.0", "TLSv1" ... "1.3" -> the canonical "1", "1.1", "1.2", "1.3" and OpenSSL's number. */
static const char *normalise_version(const char *text, int *ret_version)
{
    static const struct {
        const char *canonical;
        int version;
        const char *spellings[4];
    } versions[] = {{"1", TLS1_VERSION, {"1", "1.0", "tlsv1", "tlsv1.0"}},
                    {"1.1", TLS1_1_VERSION, {"1.1", "tlsv1.1", NULL}},
                    {"1.2", TLS1_2_VERSION, {"1.2", "tlsv1.2", NULL}},
                    {"1.3", TLS1_3_VERSION, {"1.3", "tlsv1.3", NULL}}};

    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++)
        for (size_t j = 0; j < 4 && versions[i].spellings[j]; j++)
            if (strcasecmp(text, versions[i].spellings[j]) == 0) {
                if (ret_version)
                    *ret_version = versions[i].version;
                return versions[i].canonical;
            }
    return NULL;
}

/*
 * The stored spelling of a mode or a switch, or NULL: values are as case-blind as setting
 * names ("Disabled"), and a switch takes true and false as the REST API's booleans do.
 */
static const char *normalise_word(enum value_kind kind, const char *text)
{
    static const struct {
        enum value_kind kind;
        const char *spelling, *canonical;
    } words[] = {{KIND_MODE, "allowed", "allowed"},   {KIND_MODE, "required", "required"},
                 {KIND_MODE, "disabled", "disabled"}, {KIND_SWITCH, "enabled", "enabled"},
                 {KIND_SWITCH, "true", "enabled"},    {KIND_SWITCH, "disabled", "disabled"},
                 {KIND_SWITCH, "false", "disabled"}};

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (words[i].kind == kind && strcasecmp(text, words[i].spelling) == 0)
            return words[i].canonical;
    return NULL;
}

/*
 * True when a server limited to exactly min_version, with these ciphers, has
 * at least one cipher it could use: the minimum version itself must work, or
 * clients held to it could never connect.
 */
static int usable_at(int min_version, const char *ciphers, const char *suites, char *err,
                     size_t err_len)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    STACK_OF(SSL_CIPHER) *usable = NULL;
    char reason[512];
    SSL *ssl = NULL;
    int r = CV_EINVALID_TLS;

    if (!ctx)
        return -ENOMEM;
    if (min_version < TLS1_2_VERSION)
        SSL_CTX_set_security_level(ctx, 0); /* OpenSSL 3 refuses TLS 1.0 and 1.1 otherwise */
    SSL_CTX_set_min_proto_version(ctx, min_version);
    SSL_CTX_set_max_proto_version(ctx, min_version);
    if (ciphers && SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
        tls_error_string(reason, sizeof(reason));
        snprintf(err, err_len, "cipher list '%s' is not valid for OpenSSL (%s)", ciphers, reason);
        goto out;
    }
    if (suites && SSL_CTX_set_ciphersuites(ctx, suites) != 1) {
        tls_error_string(reason, sizeof(reason));
        snprintf(err, err_len, "TLS 1.3 cipher suites '%s' are not valid for OpenSSL (%s)", suites,
                 reason);
        goto out;
    }
    ssl = SSL_new(ctx);
    usable = ssl ? SSL_get1_supported_ciphers(ssl) : NULL;
    if (!usable || sk_SSL_CIPHER_num(usable) == 0) {
        snprintf(err, err_len, "no cipher in '%s' is usable with TLS %s",
                 min_version == TLS1_3_VERSION ? (suites ? suites : "(default suites)")
                                               : (ciphers ? ciphers : "(default list)"),
                 min_version == TLS1_VERSION     ? "1.0"
                 : min_version == TLS1_1_VERSION ? "1.1"
                 : min_version == TLS1_2_VERSION ? "1.2"
                                                 : "1.3");
        goto out;
    }
    r = 0;
out:
    sk_SSL_CIPHER_free(usable);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return r;
}

/* Checks one plane with a candidate value for one of its settings substituted in. */
static int check_plane(const struct policy *policy, enum plane plane, int changed,
                       const char *value, char *err, size_t err_len)
{
    const int *s = plane_settings[plane];
    const char *version_text = s[0] == changed ? value : policy_get(policy, s[0]);
    const char *ciphers = s[1] == changed ? value : policy_get(policy, s[1]);
    const char *suites = s[2] < 0 ? NULL : s[2] == changed ? value : policy_get(policy, s[2]);
    char reason[600];
    int version, r;

    if (!normalise_version(version_text, &version)) {
        snprintf(err, err_len, "%s plane: '%s' is not a TLS version", plane_names[plane],
                 version_text);
        return CV_EINVALID_TLS;
    }
    r = usable_at(version, ciphers, suites, reason, sizeof(reason));
    if (r < 0)
        snprintf(err, err_len, "%s plane: %s", plane_names[plane], reason);
    return r;
}

int policy_check(const struct policy *policy, enum policy_setting setting, const char *value,
                 char *err, size_t err_len, char *warn, size_t warn_len)
{
    int version;

    if (warn && warn_len)
        warn[0] = '\0';
    switch (settings[setting].kind) {
    case KIND_VERSION:
        if (!normalise_version(value, &version)) {
            snprintf(err, err_len, "%s: '%s' is not a TLS version (use 1, 1.1, 1.2 or 1.3)",
                     settings[setting].name, value);
            return CV_EINVALID_TLS;
        }
        if (version < TLS1_2_VERSION && warn)
            snprintf(warn, warn_len,
                     "%s %s allows TLS %s, which is obsolete and insecure: the %s plane will run "
                     "at OpenSSL security level 0 so that it works",
                     settings[setting].name, normalise_version(value, NULL),
                     normalise_version(value, NULL), plane_names[settings[setting].plane]);
        break;
    case KIND_MODE:
        if (!normalise_word(KIND_MODE, value)) {
            snprintf(err, err_len, "%s: '%s' is not allowed, required or disabled",
                     settings[setting].name, value);
            return CV_EINVALID_TLS;
        }
        return 0;
    case KIND_SWITCH:
        if (!normalise_word(KIND_SWITCH, value)) {
            snprintf(err, err_len, "%s: '%s' is not enabled or disabled (or true or false)",
                     settings[setting].name, value);
            return CV_EINVALID_TLS;
        }
        return 0;
    case KIND_SUBJECT_VALIDATION:
        /*
         * Redis Enterprise's "disabled" means "any certificate from the CA, no
         * subject check". Here the subject is what names the user, so there is
         * no sign-in without it: refused, with the way to turn sign-in off.
         */
        if (strcmp(value, "disabled") == 0) {
            snprintf(err, err_len,
                     "%s: 'disabled' is not supported: certvisor finds the user by the "
                     "certificate's subject, so one of san_cn or full_subject applies (to stop "
                     "certificate sign-in, set mtls_certificate_authentication disabled)",
                     settings[setting].name);
            return CV_EINVALID_TLS;
        }
        if (strcmp(value, "san_cn") && strcmp(value, "full_subject")) {
            snprintf(err, err_len, "%s: '%s' is not san_cn or full_subject", settings[setting].name,
                     value);
            return CV_EINVALID_TLS;
        }
        return 0;
    case KIND_NUMBER: {
        long n;

        if (!parse_number(value, &n) || n < settings[setting].min || n > settings[setting].max) {
            snprintf(err, err_len, "%s: '%s' is not a whole number from %ld to %ld",
                     settings[setting].name, value, settings[setting].min, settings[setting].max);
            return CV_EINVALID_TLS;
        }
        return 0;
    }
    case KIND_TEXT:
    case KIND_SECRET:
    case KIND_LDAP_URIS:
    case KIND_LDAP_FILTER:
    case KIND_LDAP_DN_TEMPLATE:
        /* A secret is kept sealed in a cluster's store, which makes it a third longer. */
        if (strlen(value) >
                (settings[setting].kind == KIND_SECRET ? POLICY_SECRET_MAX : POLICY_TEXT_MAX) ||
            strpbrk(value, "\r\n")) {
            snprintf(err, err_len, "%s: longer than %d bytes or more than one line",
                     settings[setting].name,
                     settings[setting].kind == KIND_SECRET ? POLICY_SECRET_MAX : POLICY_TEXT_MAX);
            return CV_EINVALID_TLS;
        }
        if (settings[setting].kind == KIND_LDAP_URIS && *value &&
            !valid_ldap_uris(value, err, err_len))
            return CV_EINVALID_TLS;
        if (settings[setting].kind == KIND_LDAP_FILTER &&
            !valid_ldap_filter(setting, value, err, err_len))
            return CV_EINVALID_TLS;
        if (settings[setting].kind == KIND_LDAP_DN_TEMPLATE && *value &&
            (!strstr(value, "%u") || strchr(strstr(value, "%u") + 1, '%') ||
             strchr(value, '%') != strstr(value, "%u"))) {
            snprintf(err, err_len,
                     "%s: '%s' must hold %%u once, where the user name goes (such as "
                     "uid=%%u,ou=people,dc=example,dc=org)",
                     settings[setting].name, value);
            return CV_EINVALID_TLS;
        }
        return 0;
    case KIND_CIPHERS:
    case KIND_TLS13_SUITES:
        if (!*value) {
            snprintf(err, err_len, "%s: an empty cipher string leaves no cipher",
                     settings[setting].name);
            return CV_EINVALID_TLS;
        }
        break;
    }
    if (setting == POLICY_MIN_DATA_TLS_VERSION &&
        !policy->values[POLICY_MIN_SENTINEL_TLS_VERSION].value) {
        /* The sentinel follows the data plane: check it with the new version too. */
        int r = check_plane(policy, PLANE_DATA, setting, value, err, err_len);

        if (r == 0)
            r = check_plane(policy, PLANE_SENTINEL, POLICY_MIN_SENTINEL_TLS_VERSION, value, err,
                            err_len);
        return r;
    }
    return check_plane(policy, settings[setting].plane, setting,
                       settings[setting].kind == KIND_VERSION ? normalise_version(value, NULL)
                                                              : value,
                       err, err_len);
}

/* Enabled LDAP sign-in needs a directory and a way to find users in it. */
static int check_ldap(const struct policy *policy, char *err, size_t err_len)
{
    if (!policy_enabled(policy, POLICY_LDAP_AUTHENTICATION))
        return 0;
    if (!policy_text(policy, POLICY_LDAP_URIS)) {
        snprintf(err, err_len,
                 "ldap_authentication is enabled but ldap_uris is not set (set "
                 "ldap_uris ldaps://host:port with it)");
        return CV_EINVALID_TLS;
    }
    if (!policy_text(policy, POLICY_LDAP_USER_DN_TEMPLATE) &&
        !policy_text(policy, POLICY_LDAP_USER_SEARCH_BASE)) {
        snprintf(err, err_len,
                 "ldap_authentication is enabled but neither ldap_user_search_base nor "
                 "ldap_user_dn_template says where users are (set one of them with it)");
        return CV_EINVALID_TLS;
    }
    return 0;
}

int policy_check_all(const struct policy *policy, char *err, size_t err_len)
{
    int r = check_ldap(policy, err, err_len);

    if (r < 0)
        return r;
    for (int plane = PLANE_CONTROL; plane <= PLANE_SENTINEL; plane++) {
        r = check_plane(policy, (enum plane)plane, -1, NULL, err, err_len);

        if (r < 0)
            return r;
    }
    return 0;
}

int policy_set(struct policy *policy, enum policy_setting setting, const char *value,
               enum policy_source source, const char *file, int line)
{
    struct policy_value *v = &policy->values[setting];
    const char *normal = settings[setting].kind == KIND_VERSION
                             ? normalise_version(value, NULL)
                             : normalise_word(settings[setting].kind, value);
    char *copy = strdup(normal ? normal : value);
    char *file_copy = file ? strdup(file) : NULL;

    if (!copy || (file && !file_copy)) {
        free(copy);
        free(file_copy);
        return -ENOMEM;
    }
    free(v->value);
    free(v->file);
    v->value = copy;
    v->file = file_copy;
    v->source = source;
    v->line = line;
    return 0;
}

void policy_describe_source(const struct policy *policy, enum policy_setting setting, char *buf,
                            size_t len)
{
    const struct policy_value *v = &policy->values[setting];

    if (!v->value && setting == POLICY_MIN_SENTINEL_TLS_VERSION)
        snprintf(buf, len, "follows min_data_TLS_version");
    else if (!v->value && !settings[setting].default_value &&
             (settings[setting].kind == KIND_CIPHERS ||
              settings[setting].kind == KIND_TLS13_SUITES))
        snprintf(buf, len, "default (OpenSSL's)");
    else if (!v->value)
        snprintf(buf, len, settings[setting].default_value ? "default" : "not set");
    else if (v->source == POLICY_FROM_FILE)
        snprintf(buf, len, "%s:%d", v->file ? v->file : "?", v->line);
    else if (v->source == POLICY_FROM_RUNTIME)
        snprintf(buf, len, "runtime (state file)");
    else
        snprintf(buf, len, "default");
}

int policy_state_load(struct policy *policy, const char *path, char *err, size_t err_len)
{
    json_error_t error;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &error);
    const char *key;
    json_t *value;
    int r = 0;

    if (!root) {
        if (access(path, F_OK) != 0 && errno == ENOENT)
            return 0;
        snprintf(err, err_len, "%s: line %d: %s", path, error.line, error.text);
        return CV_EINVALID_TLS;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        snprintf(err, err_len, "%s: not a JSON object", path);
        return CV_EINVALID_TLS;
    }
    /*
     * Every value over conf.d's first, then each checked against the result:
     * checked one by one as they came, a runtime cipher list met conf.d's
     * minimum version when the runtime one that goes with it came later.
     */
    json_object_foreach(root, key, value)
    {
        int setting = policy_setting_lookup(key);

        if (setting < 0 || !json_is_string(value)) {
            snprintf(err, err_len, "%s: '%s' is not a policy setting with a string value", path,
                     key);
            json_decref(root);
            return CV_EINVALID_TLS;
        }
        r = policy_set(policy, (enum policy_setting)setting, json_string_value(value),
                       POLICY_FROM_RUNTIME, NULL, 0);
        if (r < 0) {
            json_decref(root);
            return r;
        }
    }
    /* Checked like a value from conf.d: the file may have been edited by hand. */
    json_object_foreach(root, key, value)
    {
        char check[600], warn[600];

        if (policy_check(policy, (enum policy_setting)policy_setting_lookup(key),
                         json_string_value(value), check, sizeof(check), warn, sizeof(warn)) < 0) {
            snprintf(err, err_len, "%s: %s", path, check);
            r = CV_EINVALID_TLS;
            break;
        }
    }
    json_decref(root);
    return r;
}

int policy_state_save(const struct policy *policy, const char *path, char *err, size_t err_len)
{
    json_t *root = json_object();
    char *text;
    int r;

    if (!root)
        return -ENOMEM;
    for (int i = 0; i < POLICY_COUNT; i++)
        if (policy->values[i].value && policy->values[i].source == POLICY_FROM_RUNTIME)
            json_object_set_new(root, settings[i].name, json_string(policy->values[i].value));
    text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    if (!text)
        return -ENOMEM;
    /* 0600: it may hold a secret (ldap_bind_password), and only the agent reads it. */
    r = fs_write_atomic(path, text, strlen(text), 0600, err, err_len);
    free(text);
    return r;
}
