/* Rendering a service's TLS configuration from the certificate store's paths and the policy. */
#ifndef CERTVISOR_RENDER_H
#define CERTVISOR_RENDER_H

#include "policy.h"
#include "tls_config.h"

#include <stdbool.h>
#include <stddef.h>

enum tls_plane { TLS_PLANE_CONTROL, TLS_PLANE_DATA, TLS_PLANE_SENTINEL };

enum render_format {
    RENDER_CERTVISOR, /* lib/tls_config.h's file, read by certvisor's own services */
    RENDER_REDIS,     /* a redis.conf include for a stock redis-server */
};

/* What one service's "tls" section asks for (parsed in service_config.c). */
struct tls_spec {
    char *certificate;    /* logical name: "proxy", "data_internode_encryption", ... */
    enum tls_plane plane; /* whose minimum version and ciphers apply */
    enum render_format format;
    char *output; /* where the rendered file goes */
    enum tls_verify verify_peer;
    char *trust; /* NULL, "cluster_ca" or a certificate name (mtls_trusted_ca) */
    int port;    /* RENDER_REDIS: tls-port; 0 otherwise */
    bool http;   /* the service also serves plain HTTP while http_support is enabled */
    /*
     * The service signs users in by client certificate (the REST API): while
     * mtls_certificate_authentication is enabled it asks clients for a
     * certificate, without requiring one, verified against mtls_trusted_ca.
     */
    bool certificate_auth;
};

/* The files one certificate is served from (a generation in the store). */
struct render_files {
    const char *cert_file;
    const char *key_file;
    const char *ca_file; /* the trusted CAs when spec->trust is set, else NULL */
    /* The OCSP response to staple (a certvisor format file only), else NULL */
    const char *ocsp_response;
};

/*
 * Builds the tls_config a spec stands for: the files, the plane's minimum
 * version (from policy_get()), its TLS 1.2 cipher list and TLS 1.3 suites
 * (the sentinel plane has no TLS 1.3 setting: OpenSSL's default), security
 * level 0 when the minimum is below 1.2 (else -1, OpenSSL's default), the
 * spec's peer verification, tls_mode for the sentinel plane and, for a spec
 * with http, whether plain HTTP is served (http_support). Returns 0, -ENOMEM, or -EINVAL for an
 * input that policy_check() and the configuration checks would have refused. Free with
 * tls_config_free().
 */
int render_tls_config(const struct tls_spec *spec, const struct render_files *files,
                      const struct policy *policy, struct tls_config **ret_config);

/*
 * True when spec asks for client certificates for sign-in now: it has
 * certificate_auth and the policy enables mtls_certificate_authentication.
 * Its ca_file is then mtls_trusted_ca and its verify_peer optional.
 */
bool render_certificate_auth(const struct tls_spec *spec, const struct policy *policy);

/*
 * Renders the spec's file content (malloc'd): RENDER_CERTVISOR is
 * tls_config_render() of render_tls_config(); RENDER_REDIS is a redis.conf
 * include with tls-port, tls-cert-file, tls-key-file, tls-ca-cert-file (when
 * trusted CAs are given), tls-protocols (every version from the minimum up,
 * e.g. "TLSv1.2 TLSv1.3"), tls-ciphers and tls-ciphersuites (when set; below
 * TLS 1.2, tls-ciphers always carries ":@SECLEVEL=0", which redis-server
 * needs for TLS 1.0 and 1.1 under OpenSSL 3) and tls-auth-clients (no,
 * optional or yes). The same input always gives the same bytes. Returns 0,
 * -ENOMEM or -EINVAL.
 */
int render_text(const struct tls_spec *spec, const struct render_files *files,
                const struct policy *policy, char **ret_text);

/* Parses "control", "data", "sentinel" / "certvisor", "redis". Return 0 or -EINVAL. */
int render_plane_parse(const char *word, enum tls_plane *ret_plane);
int render_format_parse(const char *word, enum render_format *ret_format);

#endif
