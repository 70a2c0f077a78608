/* Building an SSL_CTX from a rendered TLS configuration, and swapping it on reload. */
#ifndef CERTVISOR_TLS_CONTEXT_H
#define CERTVISOR_TLS_CONTEXT_H

#include "tls_config.h"

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

enum tls_role { TLS_ROLE_SERVER, TLS_ROLE_CLIENT };

/*
 * Builds a complete context: certificate chain and key (checked to match),
 * minimum version, cipher list, TLS 1.3 suites, security level (forced to 0
 * when min_version is below 1.2, as OpenSSL 3 needs for TLS 1.0 and 1.1), and
 * peer verification against ca_file, whose every certificate is a trust anchor
 * (an empty ca_file trusts nobody: every peer certificate is refused). A server context
 * has automatic DH parameters, so the DHE suites of its list are offered. Returns 0, or
 * CV_EINVALID_TLS with a message naming the file or setting at fault and OpenSSL's reason. The
 * agent calls this on every change before applying it; services call it on start and on reload.
 */
int tls_context_build(const struct tls_config *config, enum tls_role role, SSL_CTX **ret_ctx,
                      char *err, size_t err_len);

/*
 * The context a service is serving with. New connections take the current one
 * (with a reference of their own); a reload builds a new one completely and
 * swaps it in only on success, so established connections keep theirs and a
 * failed reload changes nothing.
 */
struct tls_context_holder;

/* Reads path and builds the first context. */
int tls_holder_new(const char *path, enum tls_role role, struct tls_context_holder **ret_holder,
                   char *err, size_t err_len);

/* Re-reads the file and swaps in the new context; on failure the old one stays. */
int tls_holder_reload(struct tls_context_holder *holder, char *err, size_t err_len);

/* Returns the current context with a new reference (SSL_CTX_free it when done). */
SSL_CTX *tls_holder_get(struct tls_context_holder *holder);

void tls_holder_free(struct tls_context_holder *holder);

/* True when path is an empty file: as a ca_file, it trusts nobody (an empty trust list). */
bool tls_ca_file_empty(const char *path);

/* Drains OpenSSL's error queue into one line for messages. */
void tls_error_string(char *buf, size_t len);

/* The most a fingerprint takes: 32 "AB" pairs, 31 colons and the NUL. */
#define TLS_FINGERPRINT_MAX 96

/*
 * Writes the SHA-256 fingerprint of cert's DER ("AB:CD:...", upper case, as
 * `openssl x509 -fingerprint -sha256` prints it) into buf; "" for a NULL cert.
 */
void tls_cert_fingerprint(X509 *cert, char *buf, size_t len);

#endif
