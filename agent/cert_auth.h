/* REST API sign-in by client certificate: who may assert one, its chain, and its user. */
#ifndef CERTVISOR_CERT_AUTH_H
#define CERTVISOR_CERT_AUTH_H

#include "agent.h"
#include "users.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define CERT_AUTH_MAX_PEM (64 * 1024) /* a client's chain, as the REST API forwards it */
#define CERT_AUTH_MAX_CHAIN 10

/*
 * True when pid is the main process of a running service whose tls section
 * has certificate_auth (the REST API). Only such a service saw the TLS
 * handshake that proved the client holds the certificate's key, so only its
 * word that "this client presented this certificate" is taken. The pid comes
 * from SO_PEERCRED; while the service runs its pid cannot be anyone else's.
 */
bool cert_auth_trusted_peer(const struct agent *agent, pid_t pid);

/*
 * Signs in the client whose certificate chain (PEM, leaf first) the REST API
 * forwarded: certificate sign-in must be enabled, the chain must verify
 * against the current mtls_trusted_ca for client authentication (again, not
 * only in the API: the CA may have changed since the handshake), and exactly
 * one user's certificate subject must match it under
 * mtls_client_cert_subject_validation_type. Returns 0 with the user's name
 * and role, or a negative errno with a message for the log (the client is
 * only told that sign-in failed).
 */
int cert_auth_sign_in(const struct agent *agent, const char *chain_pem, char *ret_name,
                      size_t name_len, enum user_role *ret_role, char *err, size_t err_len);

#endif
