/* Stapling an OCSP response in a server's handshakes: the response the agent fetched and
 * verified (agent/apply/stapling.c), read from the file its TLS configuration names. */
#ifndef CERTVISOR_TLS_STAPLING_H
#define CERTVISOR_TLS_STAPLING_H

#include <openssl/ssl.h>
#include <stddef.h>

/* The largest response read: a real one is a few KiB (one status, a responder certificate). */
#define TLS_OCSP_RESPONSE_MAX (64 * 1024)

/*
 * Staples the DER response at path to ctx's handshakes with clients that ask for a status
 * (status_request), until the response's nextUpdate passes: then nothing is stapled, so an
 * expired answer is never served even if the agent is not there to remove it. A missing
 * file staples nothing and is no error (no response has been fetched yet). ctx's certificate
 * must be loaded first: a response for another certificate (its serial number) is refused.
 * Returns 0, or CV_EINVALID_TLS with a message naming the file and the problem.
 */
int tls_stapling_attach(SSL_CTX *ctx, const char *path, char *err, size_t err_len);

#endif
