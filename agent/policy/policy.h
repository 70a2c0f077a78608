/* The node's TLS policy: settings, their validation, where each value came from, runtime overrides.
 */
#ifndef CERTVISOR_POLICY_H
#define CERTVISOR_POLICY_H

#include <stdbool.h>
#include <stddef.h>

enum policy_setting {
    POLICY_MIN_CONTROL_TLS_VERSION,
    POLICY_MIN_DATA_TLS_VERSION,
    POLICY_MIN_SENTINEL_TLS_VERSION, /* follows the data plane's unless set */
    POLICY_CONTROL_CIPHER_SUITES,    /* TLS 1.2 and below, OpenSSL syntax */
    POLICY_DATA_CIPHER_LIST,
    POLICY_CONTROL_CIPHER_SUITES_TLS_1_3,
    POLICY_DATA_CIPHER_SUITES_TLS_1_3,
    POLICY_SENTINEL_CIPHER_SUITES,
    POLICY_SENTINEL_TLS_MODE, /* allowed, required, disabled */
    POLICY_HTTP_SUPPORT,      /* enabled, disabled */
    /* REST API sign-in by client certificate (mtls_trusted_ca): enabled, disabled */
    POLICY_MTLS_CERTIFICATE_AUTHENTICATION,
    /* How a client certificate names its user: san_cn, full_subject */
    POLICY_MTLS_SUBJECT_VALIDATION_TYPE,
    /* OCSP stapling of the proxy certificate (agent/apply/stapling.c): enabled, disabled */
    POLICY_OCSP_FUNCTIONALITY,
    POLICY_OCSP_QUERY_FREQUENCY,    /* seconds between queries while the answers come */
    POLICY_OCSP_RESPONSE_TIMEOUT,   /* seconds a query may take */
    POLICY_OCSP_RECOVERY_FREQUENCY, /* seconds between retries after a failed query */
    POLICY_OCSP_RECOVERY_MAX_TRIES, /* retries before waiting a whole query_frequency again */
    /* Sign-in to the REST API and the console with directory accounts (agent/auth/ldap_*.c) */
    POLICY_LDAP_AUTHENTICATION,    /* enabled, disabled */
    POLICY_LDAP_URIS,              /* "ldaps://h:636 ldap://h2" (ldap:// always with StartTLS) */
    POLICY_LDAP_BIND_DN,           /* the account that searches ("": anonymous) */
    POLICY_LDAP_BIND_PASSWORD,     /* a secret: never shown, never logged */
    POLICY_LDAP_USER_SEARCH_BASE,  /* where users are searched for ... */
    POLICY_LDAP_USER_FILTER,       /* ... with this filter, %u the user name */
    POLICY_LDAP_USER_DN_TEMPLATE,  /* or no search: this DN, %u the user name */
    POLICY_LDAP_GROUP_SEARCH_BASE, /* where groups are searched for ... */
    POLICY_LDAP_GROUP_FILTER,      /* ... with this filter, %d the user's DN */
    POLICY_LDAP_GROUP_ATTRIBUTE,   /* or the user entry's attribute that lists them */
    POLICY_LDAP_ADMIN_GROUPS,      /* group DNs, ';'-separated, whose members are admins */
    POLICY_LDAP_VIEWER_GROUPS,     /* and viewers */
    POLICY_LDAP_CACHE_SECONDS,     /* how long a directory sign-in is remembered */
    POLICY_LDAP_TIMEOUT,           /* seconds one sign-in may take with the directory */
    POLICY_COUNT
};

enum policy_source { POLICY_FROM_DEFAULT, POLICY_FROM_FILE, POLICY_FROM_RUNTIME };

struct policy_value {
    char *value; /* NULL: not set at this level */
    enum policy_source source;
    char *file; /* POLICY_FROM_FILE: where */
    int line;
};

/* A policy: for each setting the value in force and where it came from. */
struct policy {
    struct policy_value values[POLICY_COUNT];
};

/* The canonical name of a setting (as `cluster config show` prints it). */
const char *policy_setting_name(enum policy_setting setting);

/*
 * Finds a setting by name, case-insensitively, accepting the older names
 * operators know: cipher_suites (control_cipher_suites) and
 * sentinel_ssl_policy (sentinel_tls_mode). Returns the setting or -1.
 */
int policy_setting_lookup(const char *name);

/* A policy with every default in place. */
int policy_init(struct policy *policy);
void policy_clear(struct policy *policy);
int policy_copy(struct policy *to, const struct policy *from);

/*
 * The effective value of a setting: its own, or its default (the sentinel's
 * minimum version follows the data plane's). Never NULL except for cipher
 * settings left to OpenSSL's defaults.
 */
const char *policy_get(const struct policy *policy, enum policy_setting setting);

/* True when a switch setting (http_support, mtls_certificate_authentication) is "enabled". */
bool policy_enabled(const struct policy *policy, enum policy_setting setting);

/* The value of a number setting (the OCSP intervals and tries), always within its range. */
long policy_number(const struct policy *policy, enum policy_setting setting);

/* A number setting's range, for messages and the REST API's checks. */
void policy_number_range(enum policy_setting setting, long *ret_min, long *ret_max);

/* True for a setting whose value is a secret (ldap_bind_password): shown and logged as
 * POLICY_SECRET_SHOWN, never as it is. */
bool policy_secret(enum policy_setting setting);
#define POLICY_SECRET_SHOWN "(set)"

/* The value as it may be shown or logged: the value, or POLICY_SECRET_SHOWN for a secret. */
const char *policy_shown(enum policy_setting setting, const char *value);

/* The value when it is set and not empty ("" unsets a text setting), else NULL. */
const char *policy_text(const struct policy *policy, enum policy_setting setting);

/*
 * Checks value for setting in the context of the rest of policy: versions
 * are 1, 1.1, 1.2 or 1.3 (also 1.0 and TLSv1.x); modes are their words;
 * cipher strings must parse with OpenSSL and leave at least one cipher usable
 * at the plane's minimum version. Returns 0 (with a warning in warn when TLS
 * 1.0 or 1.1 is allowed), or CV_EINVALID_TLS with a message in err.
 */
int policy_check(const struct policy *policy, enum policy_setting setting, const char *value,
                 char *err, size_t err_len, char *warn, size_t warn_len);

/*
 * Sets a value (after policy_check) with its source; file and line are for
 * POLICY_FROM_FILE. The value is normalised ("TLSv1.2" -> "1.2").
 */
int policy_set(struct policy *policy, enum policy_setting setting, const char *value,
               enum policy_source source, const char *file, int line);

/* Checks that every plane still has a usable cipher (after several changes at once). */
int policy_check_all(const struct policy *policy, char *err, size_t err_len);

/* "default", "conf.d/policy.conf:12" or "runtime (state file)". */
void policy_describe_source(const struct policy *policy, enum policy_setting setting, char *buf,
                            size_t len);

/*
 * The runtime state file (state_dir/policy.json): operators' runtime changes,
 * which override conf.d; the operator's own files are never rewritten.
 * policy_state_load applies the file's values to policy (a missing file is no
 * change); policy_state_save writes every POLICY_FROM_RUNTIME value atomically.
 */
int policy_state_load(struct policy *policy, const char *path, char *err, size_t err_len);
int policy_state_save(const struct policy *policy, const char *path, char *err, size_t err_len);

#endif
