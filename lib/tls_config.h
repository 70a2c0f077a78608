/* The rendered TLS configuration of a service: the file the agent writes and services read. */
#ifndef CERTVISOR_TLS_CONFIG_H
#define CERTVISOR_TLS_CONFIG_H

#include <stddef.h>

enum tls_verify {
    TLS_VERIFY_NONE,     /* do not ask the peer for a certificate */
    TLS_VERIFY_OPTIONAL, /* ask; verify it against ca_file when one is sent */
    TLS_VERIFY_REQUIRE,  /* a peer without a certificate that verifies is refused */
};

/*
 * The contract between certvisord and every service. The file is text, one
 * "key = value" per line, '#' comments, in this order:
 *   cert_file, key_file, ca_file, min_version, ciphers, ciphersuites,
 *   security_level, verify_peer, tls_mode, http, ocsp_response
 * Unset optional values are omitted. The same configuration always renders to
 * the same bytes, so the agent can tell a change by comparing contents.
 */
struct tls_config {
    char *cert_file;    /* leaf then chain, PEM */
    char *key_file;     /* PEM */
    char *ca_file;      /* CAs to verify peers against; NULL: none */
    char *min_version;  /* "1", "1.1", "1.2" or "1.3" */
    char *ciphers;      /* TLS 1.2 and below, OpenSSL syntax; NULL: OpenSSL's default */
    char *ciphersuites; /* TLS 1.3; NULL: OpenSSL's default */
    int security_level; /* -1: OpenSSL's default; 0 is needed for TLS 1.0 and 1.1 */
    enum tls_verify verify_peer;
    /*
     * Whether plain connections are served beside TLS on the same port:
     * "allowed" (both, told apart by the first byte), "required" (TLS only),
     * "disabled" (plain only). NULL: the service has no such choice (TLS only).
     * The agent renders it for the sentinel plane, from sentinel_tls_mode.
     */
    char *tls_mode;
    /*
     * Whether the service also serves plain HTTP (on a port of its own):
     * "enabled" or "disabled". NULL: the service has no such choice. The agent
     * renders it, from http_support, for tls sections that ask for it
     * ("http = true": the REST API).
     */
    char *http;
    /*
     * The OCSP response to staple (DER) for clients that ask for one: the agent renders it
     * for services serving the proxy certificate while ocsp_functionality is enabled, and
     * writes the file whenever a new response verifies. A missing file staples nothing; one
     * past its nextUpdate is not stapled either. NULL: no stapling.
     */
    char *ocsp_response;
};

/* Renders config as text (malloc'd, NUL-terminated). Returns NULL on no memory. */
char *tls_config_render(const struct tls_config *config);

/*
 * Parses rendered text. Returns 0 with a new config, or CV_EINVALID_TLS with
 * "line N: problem" in err (unknown key, bad value, missing cert_file, key_file
 * or min_version, duplicate key).
 */
int tls_config_parse(const char *text, struct tls_config **ret_config, char *err, size_t err_len);

/* Reads and parses a file (at most 64 KiB). Errors name the path. */
int tls_config_read(const char *path, struct tls_config **ret_config, char *err, size_t err_len);

/*
 * Writes the rendered config to path atomically (temporary file in the same
 * directory, fsync, rename, fsync of the directory), mode 0640. Returns 0,
 * or a negative errno with a message.
 */
int tls_config_write(const char *path, const struct tls_config *config, char *err, size_t err_len);

void tls_config_free(struct tls_config *config);

/* Parses "1", "1.0", "1.1", "1.2", "1.3" (and "TLSv1.2" style) into an OpenSSL version. */
int tls_version_parse(const char *text, int *ret_version);

#endif
