/* REST API sign-in by client certificate: who may assert one, its chain, and its user. */
#ifndef CERTVISOR_CERT_AUTH_H
#define CERTVISOR_CERT_AUTH_H

#include "certs.h"
#include "policy.h"
#include "users.h"

#include <stddef.h>

#define CERT_AUTH_MAX_PEM (64 * 1024) /* a client's chain, as the REST API forwards it */
#define CERT_AUTH_MAX_CHAIN 10

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
int cert_auth_sign_in(const struct policy *policy, struct certs *certs, const struct users *users,
                      const char *chain_pem, char *ret_name, size_t name_len,
                      enum user_role *ret_role, char *err, size_t err_len);

#endif
