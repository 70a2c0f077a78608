/* Validation of the certificates and keys that operators hand the agent. */
#ifndef CERTVISOR_X509_CHECK_H
#define CERTVISOR_X509_CHECK_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* What a certificate is for, which decides the extended key usage it needs. */
enum cert_purpose {
    CERT_PURPOSE_SERVER, /* serverAuth: api, cm, proxy, metrics_exporter, *_internode_encryption */
    CERT_PURPOSE_CLIENT, /* clientAuth: syncer, ldap_client */
    CERT_PURPOSE_CA_BUNDLE, /* one or more CA certificates, no key: mtls_trusted_ca */
};

#define X509_CHECK_MAX_INPUT (256 * 1024) /* bytes, certificate or key */
/* A certificate with its chain: the leaf, intermediates and perhaps the root. Real chains have
 * 2 to 4; the bound keeps validation, which runs on the agent's loop, short. CA bundles have none.
 */
#define X509_CHECK_MAX_CHAIN 10
#define X509_CHECK_WARN_DAYS 30

struct x509_checked {
    X509 *leaf;             /* NULL for a CA bundle */
    STACK_OF(X509) * chain; /* after the leaf, each the issuer of the one before; a bundle's CAs */
    EVP_PKEY *key;          /* NULL when no key was given */
    time_t not_before;      /* of the leaf (of the first CA for a bundle) */
    time_t not_after;
    char fingerprint[96]; /* SHA-256 of the leaf (first CA) in DER, "AB:CD:..." upper case */
    char warning[256];    /* "" or, e.g., "certificate 'proxy' expires in 12 days (2026-12-04)" */
};

/*
 * Parses and validates a PEM certificate with its chain and, when key_pem is
 * not NULL, its private key; name is the certificate's logical name for the
 * messages. Validity is checked against now. CRLF line endings are accepted.
 *
 * Returns 0 and a new struct in *ret_checked, or a negative code with a message
 * in err that names the problem and the fix, and changes nothing:
 *   CV_ECERT_EXPIRED  for an expired certificate;
 *   CV_EINVALID_CERT  for everything else: not PEM (saying so when it looks
 *     like DER or UTF-16, is not UTF-8 text, or holds literal "\n" escapes),
 *     several keys, an encrypted key, a key that does not match ("key does not
 *     match certificate 'proxy'"), not yet valid, RSA under 2048 bits, a curve
 *     other than P-256/P-384/P-521, an SHA-1 or MD5 signature, a chain out of
 *     order or not linking, an extended key usage extension without serverAuth
 *     (clientAuth for CERT_PURPOSE_CLIENT; no extension at all is no
 *     restriction), a leaf that is a CA certificate (basicConstraints CA:TRUE)
 *     or whose key usage extension lacks digitalSignature (no extension is no
 *     restriction; both problems are named when both are there), input over
 *     X509_CHECK_MAX_INPUT, more than X509_CHECK_MAX_CHAIN certificates with
 *     a key or service certificate, trailing garbage after the last PEM block, a
 *     key given for a CA bundle or a bundle member that is not a CA.
 * Fewer than X509_CHECK_WARN_DAYS days left is a warning, not a failure.
 */
int x509_check(const char *name, enum cert_purpose purpose, const char *cert_pem, size_t cert_len,
               const char *key_pem, size_t key_len, time_t now, struct x509_checked **ret_checked,
               char *err, size_t err_len);

void x509_checked_free(struct x509_checked *checked);

/*
 * Whether the bytes of a certificate or key can be PEM text at all, before anything parses or
 * sends them (JSON carries only UTF-8 text): refuses UTF-16 text, PKCS#12 (.p12/.pfx), DER, NUL
 * bytes and bytes that are not UTF-8, each with its fix. what names the input ("certificate 'cm'");
 * file is the file it came from, which the message names and uses in the fix (NULL: "FILE").
 * Returns 0, or CV_EINVALID_CERT with the message in err. x509_check() applies it first.
 */
int x509_check_text(const char *what, bool is_key, const char *file, const char *in, size_t len,
                    char *err, size_t err_len);

/* Writes the SHA-256 fingerprint of cert ("AB:CD:...") into buf (at least 96 bytes). */
void x509_fingerprint(X509 *cert, char *buf, size_t len);

#endif
