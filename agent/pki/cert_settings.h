/*
 * What the configuration says about the node's certificates, as the certificate code reads it:
 * how they are generated, and which are taken from files kept by something else. Parsed in
 * config/conf_certs.c; here so that pki/ needs nothing of the configuration's parsing.
 */
#ifndef CERTVISOR_CERT_SETTINGS_H
#define CERTVISOR_CERT_SETTINGS_H

#include "x509_make.h"

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

#endif
