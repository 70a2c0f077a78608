/* REST API sign-in by client certificate: who may assert one, its chain, and its user. */
#include "cert_auth.h"

#include "cert_names.h"
#include "certs.h"
#include "policy.h"
#include "subject_line.h"

#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

/* Reads every certificate of pem: the leaf first. Returns the stack, or NULL with a message. */
static STACK_OF(X509) * read_chain(const char *pem, char *err, size_t err_len)
{
    size_t len = strlen(pem);
    BIO *bio = len <= CERT_AUTH_MAX_PEM ? BIO_new_mem_buf(pem, (int)len) : NULL;
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509 *cert;

    while (bio && chain && sk_X509_num(chain) <= CERT_AUTH_MAX_CHAIN &&
           (cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)))
        if (!sk_X509_push(chain, cert))
            X509_free(cert);
    ERR_clear_error();
    BIO_free(bio);
    if (!chain || sk_X509_num(chain) == 0 || sk_X509_num(chain) > CERT_AUTH_MAX_CHAIN) {
        snprintf(err, err_len,
                 "the forwarded client certificate is not a PEM chain of 1 to %d "
                 "certificates (at most %d bytes)",
                 CERT_AUTH_MAX_CHAIN, CERT_AUTH_MAX_PEM);
        sk_X509_pop_free(chain, X509_free);
        return NULL;
    }
    return chain;
}

/* Verifies chain's leaf for client authentication against the CA file. */
static int verify_chain(STACK_OF(X509) * chain, const char *ca_file, char *err, size_t err_len)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_dup(chain);
    int r = -EACCES;

    if (!store || !ctx || !untrusted) {
        r = -ENOMEM;
        goto out;
    }
    (void)sk_X509_shift(untrusted); /* the leaf; the rest may be intermediates */
    if (X509_STORE_load_file(store, ca_file) != 1) {
        snprintf(err, err_len, "cannot load mtls_trusted_ca from %s", ca_file);
        r = -EIO;
        goto out;
    }
    /* As lib/tls_context.c sets for the API's own handshake: every CA file entry is an anchor. */
    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
    if (X509_STORE_CTX_init(ctx, store, sk_X509_value(chain, 0), untrusted) != 1 ||
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) != 1) {
        r = -ENOMEM;
        goto out;
    }
    if (X509_verify_cert(ctx) == 1)
        r = 0;
    else
        snprintf(err, err_len, "the client certificate does not verify against mtls_trusted_ca: %s",
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
out:
    ERR_clear_error();
    sk_X509_free(untrusted);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return r;
}

int cert_auth_sign_in(const struct policy *policy, struct certs *certs, const struct users *users,
                      const char *chain_pem, char *ret_name, size_t name_len,
                      enum user_role *ret_role, char *err, size_t err_len)
{
    char ca_file[PATH_MAX];
    enum subject_match how = SUBJECT_MATCH_SAN_CN;
    STACK_OF(X509) * chain;
    int r;

    if (!policy_enabled(policy, POLICY_MTLS_CERTIFICATE_AUTHENTICATION)) {
        snprintf(err, err_len, "certificate sign-in is disabled (mtls_certificate_authentication)");
        return -EPERM;
    }
    if (certs_current_files(certs, CERT_MTLS_TRUSTED_CA, ca_file, sizeof(ca_file), NULL, 0) < 0) {
        snprintf(err, err_len, "mtls_trusted_ca is not set");
        return -ENOENT;
    }
    subject_match_parse(policy_get(policy, POLICY_MTLS_SUBJECT_VALIDATION_TYPE), &how);
    chain = read_chain(chain_pem, err, err_len);
    if (!chain)
        return -EINVAL;
    r = verify_chain(chain, ca_file, err, err_len);
    if (r == 0)
        r = users ? users_find_by_certificate(users, sk_X509_value(chain, 0), how, ret_name,
                                              name_len, ret_role, err, err_len)
                  : -ENOENT;
    sk_X509_pop_free(chain, X509_free);
    return r;
}
