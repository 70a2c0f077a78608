/*
 * The conf.d sections about certificates and TLS: "certificates { ... }", "policy { ... }" and
 * "certificate <name> { ... }".
 */
#ifndef CERTVISOR_CONF_CERTS_H
#define CERTVISOR_CONF_CERTS_H

#include "cert_settings.h"
#include "policy.h"

#include <confuse.h>
#include <stddef.h>

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

/* Adds an IP address to the generated certificates' names, once. Returns 0 or -ENOMEM. */
int cert_settings_add_ip(struct cert_settings *settings, const char *address);

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
