/* Making keys, the internal cluster CA, the certificates it issues, and CSRs. */
#ifndef CERTVISOR_X509_MAKE_H
#define CERTVISOR_X509_MAKE_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stddef.h>

enum key_type { KEY_EC_P256, KEY_RSA_2048, KEY_RSA_3072, KEY_RSA_4096 };

/* Parses "ecdsa-p256", "rsa-2048", "rsa-3072" or "rsa-4096". Returns 0 or -EINVAL. */
int key_type_parse(const char *word, enum key_type *ret_type);
const char *key_type_word(enum key_type type);

/* The names a certificate is for. */
struct x509_subject_spec {
    const char *common_name;
    const char *const *dns_names; /* subjectAltName DNS entries */
    size_t n_dns_names;
    const char *const *ip_addresses; /* subjectAltName IP entries, IPv4 or IPv6 text */
    size_t n_ip_addresses;
};

/* Makes a new private key. Returns 0, or CV_EINVALID_CERT with a message. */
int x509_make_key(enum key_type type, EVP_PKEY **ret_key, char *err, size_t err_len);

/*
 * Makes a self-signed CA: basicConstraints critical CA:TRUE, keyUsage
 * keyCertSign and cRLSign, subject key identifier, a random 128-bit serial,
 * SHA-256, valid from one hour ago for days days.
 */
int x509_make_ca(EVP_PKEY *key, const char *common_name, int days, X509 **ret_cert, char *err,
                 size_t err_len);

/*
 * Issues a certificate for key from the CA: CA:FALSE, extended key usage
 * serverAuth and clientAuth, key usage digitalSignature (plus
 * keyEncipherment for RSA keys), the spec's names as subjectAltName,
 * authority and subject key identifiers, a random 128-bit serial, SHA-256,
 * valid from one hour ago for days days.
 */
int x509_make_leaf(X509 *ca_cert, EVP_PKEY *ca_key, EVP_PKEY *key,
                   const struct x509_subject_spec *spec, int days, X509 **ret_cert, char *err,
                   size_t err_len);

/*
 * Makes a CSR for key with the spec's subject (subject_dn, when not NULL, is a
 * one-line DN such as "/O=Example/CN=proxy.example.com" and replaces the CN),
 * asking for the spec's subjectAltNames and serverAuth+clientAuth.
 */
int x509_make_csr(EVP_PKEY *key, const struct x509_subject_spec *spec, const char *subject_dn,
                  X509_REQ **ret_csr, char *err, size_t err_len);

/* PEM text of a certificate, a CSR, or a private key (PKCS#8, unencrypted). malloc'd. */
char *x509_pem_of_cert(X509 *cert);
char *x509_pem_of_csr(X509_REQ *csr);
char *x509_pem_of_key(EVP_PKEY *key); /* the caller wipes it (OPENSSL_clear_free) */

#endif
