/*
 * The conf.d sections about certificates and TLS: "certificates { ... }", "policy { ... }" and
 * "certificate <name> { ... }".
 */
#ifndef CERTVISOR_CONF_CERTS_H
#define CERTVISOR_CONF_CERTS_H

#include "policy.h"
#include "x509_make.h"

#include <confuse.h>
#include <stddef.h>

/* How the node's certificates are generated and watched. */
struct cert_settings {
    char *cluster_fqdn;
    char *node_hostname;    /* NULL: the machine's host name */
    char **extra_dns_names; /* NULL-terminated */
    char **extra_ip_addresses;
    enum key_type key_type;
    int validity_days;
    int ca_validity_days;
    int renew_before_days;
    int *warn_days; /* user-provided certificates: warnings at these days left */
    size_t n_warn_days;
    char *source_file; /* where the section was, or NULL for defaults */
};

/*
 * A certificate the agent takes from files that something else keeps up to
 * date (certbot, say) instead of generating or storing it itself.
 */
struct external_cert {
    char *name;      /* a name of cert_names[], never cluster_ca */
    char *cert_file; /* absolute path: the certificate, then its chain */
    char *key_file;  /* absolute path; NULL for mtls_trusted_ca, which has no key */
    char *source;    /* "file:line" of the section, for messages */
};

extern cfg_opt_t conf_certificates_options[];
extern cfg_opt_t conf_policy_options[];
extern cfg_opt_t conf_certificate_options[]; /* "certificate <name> { ... }", titled, multi */

/* Installs the validators for both sections (call before parsing a conf.d file). */
void conf_certs_set_validators(cfg_t *cfg);

/* The defaults, for a configuration without a certificates section. */
int cert_settings_default(struct cert_settings *settings);

/* Reads a parsed certificates section. Returns 0, or CV_ECONFIG with a message. */
int cert_settings_from_cfg(cfg_t *section, const char *path, struct cert_settings *settings,
                           char *err, size_t err_len);

void cert_settings_clear(struct cert_settings *settings);

/*
 * Adds the settings of a parsed policy section from path to policy, each with
 * its file and line. A setting given twice (in two files, or under both its
 * names) and a value that does not check out are errors naming file and line.
 */
int conf_policy_merge(cfg_t *section, const char *path, struct policy *policy, char *err,
                      size_t err_len);

/*
 * Adds the external certificate of a parsed "certificate <name>" section from
 * path to the array *certs of *n_certs entries (grown with realloc). An unknown
 * name, cluster_ca, a missing or relative cert_file, a missing key_file (or one
 * given for mtls_trusted_ca), and a name already defined in this or an earlier
 * file are errors naming file and line: CV_ECONFIG with a message in err, or
 * -ENOMEM; *certs and *n_certs are then unchanged.
 */
int conf_external_cert_add(cfg_t *section, const char *path, struct external_cert **certs,
                           size_t *n_certs, char *err, size_t err_len);

/* Frees the array and its n entries. NULL is a no-op. */
void external_certs_free(struct external_cert *certs, size_t n);

#endif
