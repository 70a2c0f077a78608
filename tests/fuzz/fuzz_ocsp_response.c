/*
 * Fuzzes what an OCSP responder sends back (agent/pki/ocsp_query.c's ocsp_answer_check) and
 * the stapled file the proxy reads (lib/tls_stapling.c), with the same bytes: a certificate
 * and its issuer are made once, and every input is checked as an answer for them. What passes
 * the agent's check must also load for stapling: the agent writes only what it checked.
 */
#include "fuzz_util.h"
#include "ocsp_query.h"
#include "tls_stapling.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <string.h>

static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                       long serial)
{
    X509 *cert = X509_new();
    X509_NAME *name = X509_NAME_new();

    if (!cert || !name)
        fuzz_fail("out of memory");
    X509_set_version(cert, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(cert, name);
    X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600L * 24 * 365);
    X509_set_pubkey(cert, key);
    if (!X509_sign(cert, issuer_key, EVP_sha256()))
        fuzz_fail("cannot sign a test certificate");
    X509_NAME_free(name);
    return cert;
}

static struct ocsp_subject subject;
static EVP_PKEY *leaf_key;

static void setup(void)
{
    EVP_PKEY *ca_key = EVP_EC_gen("P-256");

    leaf_key = EVP_EC_gen("P-256");
    if (!ca_key || !leaf_key)
        fuzz_fail("cannot make test keys");
    subject.issuer = make_cert("fuzz CA", ca_key, NULL, ca_key, 1);
    subject.leaf = make_cert("fuzz leaf", leaf_key, subject.issuer, ca_key, 2);
    subject.chain = sk_X509_new_null();
    subject.trust = X509_STORE_new();
    if (!subject.chain || !subject.trust || !X509_STORE_add_cert(subject.trust, subject.issuer))
        fuzz_fail("cannot make the trust store");
    X509_STORE_set_flags(subject.trust, X509_V_FLAG_PARTIAL_CHAIN);
    EVP_PKEY_free(ca_key);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    struct ocsp_answer answer;
    char err[1024];
    SSL_CTX *ctx;
    int checked, attached;

    if (!ready) {
        setup();
        ready = 1;
    }
    checked = ocsp_answer_check(data, size, &subject, NULL, &answer, err, sizeof(err));
    if (checked == 0 && answer.status == OCSP_STATUS_NONE)
        fuzz_fail("a checked answer without a status");
    if (checked < 0 && !err[0])
        fuzz_fail("a refused answer without a reason");

    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx || SSL_CTX_use_certificate(ctx, subject.leaf) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, leaf_key) != 1)
        fuzz_fail("cannot make the server context");
    attached = tls_stapling_attach(ctx, fuzz_file(data, size), err, sizeof(err));
    if (checked == 0 && attached != 0)
        fuzz_fail("an answer the agent checked does not load for stapling");
    SSL_CTX_free(ctx);
    return 0;
}
