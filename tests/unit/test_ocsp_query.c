/*
 * Unit tests for checking OCSP answers (agent/pki/ocsp_query.c) and stapling them
 * (lib/tls_stapling.c): answers made here with OpenSSL's responder functions, signed by the
 * issuer, by a responder it delegated to, or by a stranger; fresh, expired, for another
 * certificate, with or without the request's nonce.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ocsp_query.h"
#include "tls_stapling.h"
#include "unit_util.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pki {
    EVP_PKEY *ca_key, *leaf_key, *other_key, *responder_key, *stranger_key;
    X509 *ca, *leaf, *other, *responder, *stranger;
    struct ocsp_subject subject;
};

static struct pki pki;

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    X509V3_set_ctx(&ctx, issuer ? issuer : cert, cert, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                       long serial, const char *eku)
{
    X509 *cert = X509_new();
    X509_NAME *name = X509_NAME_new();

    X509_set_version(cert, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(cert, name);
    X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400L * 30);
    X509_set_pubkey(cert, key);
    add_ext(cert, issuer, NID_basic_constraints, issuer ? "critical,CA:FALSE" : "critical,CA:TRUE");
    if (eku)
        add_ext(cert, issuer, NID_ext_key_usage, eku);
    if (!issuer)
        add_ext(cert, NULL, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
    assert_true(X509_sign(cert, issuer_key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    return cert;
}

static int setup(void **state)
{
    (void)state;
    pki.ca_key = EVP_EC_gen("P-256");
    pki.leaf_key = EVP_EC_gen("P-256");
    pki.other_key = EVP_EC_gen("P-256");
    pki.responder_key = EVP_EC_gen("P-256");
    pki.stranger_key = EVP_EC_gen("P-256");
    pki.ca = make_cert("test CA", pki.ca_key, NULL, pki.ca_key, 1, NULL);
    pki.leaf = make_cert("proxy", pki.leaf_key, pki.ca, pki.ca_key, 2, "serverAuth");
    pki.other = make_cert("other", pki.other_key, pki.ca, pki.ca_key, 3, "serverAuth");
    pki.responder = make_cert("responder", pki.responder_key, pki.ca, pki.ca_key, 4, "OCSPSigning");
    pki.stranger = make_cert("stranger", pki.stranger_key, NULL, pki.stranger_key, 5, NULL);
    pki.subject.leaf = pki.leaf;
    pki.subject.issuer = pki.ca;
    pki.subject.chain = sk_X509_new_null();
    sk_X509_push(pki.subject.chain, pki.responder);
    X509_up_ref(pki.responder);
    pki.subject.trust = X509_STORE_new();
    X509_STORE_add_cert(pki.subject.trust, pki.ca);
    X509_STORE_set_flags(pki.subject.trust, X509_V_FLAG_PARTIAL_CHAIN);
    X509_up_ref(pki.leaf);
    X509_up_ref(pki.ca);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    ocsp_subject_clear(&pki.subject);
    X509_free(pki.ca);
    X509_free(pki.leaf);
    X509_free(pki.other);
    X509_free(pki.responder);
    X509_free(pki.stranger);
    EVP_PKEY_free(pki.ca_key);
    EVP_PKEY_free(pki.leaf_key);
    EVP_PKEY_free(pki.other_key);
    EVP_PKEY_free(pki.responder_key);
    EVP_PKEY_free(pki.stranger_key);
    return 0;
}

/* How an answer is made: whose status, signed by whom, valid when, with which nonce. */
struct answer_spec {
    X509 *about;        /* default: the leaf */
    int status;         /* V_OCSP_CERTSTATUS_* */
    X509 *signer;       /* default: the CA */
    EVP_PKEY *sign_key; /* default: the CA's */
    long this_update;   /* seconds from now */
    long next_update;   /* seconds from now; 0: none */
    OCSP_REQUEST *echo; /* the request whose nonce is echoed, or NULL */
};

/* The DER of the answer (malloc'd), its length in *ret_len. */
static unsigned char *make_answer(const struct answer_spec *spec, size_t *ret_len)
{
    OCSP_BASICRESP *basic = OCSP_BASICRESP_new();
    OCSP_CERTID *id = OCSP_cert_to_id(NULL, spec->about ? spec->about : pki.leaf, pki.ca);
    ASN1_TIME *this_update = X509_gmtime_adj(NULL, spec->this_update);
    ASN1_TIME *next_update = spec->next_update ? X509_gmtime_adj(NULL, spec->next_update) : NULL;
    ASN1_TIME *revoked_at = X509_gmtime_adj(NULL, -7200);
    OCSP_RESPONSE *response;
    unsigned char *der = NULL;
    int len;

    assert_non_null(OCSP_basic_add1_status(
        basic, id, spec->status, spec->status == V_OCSP_CERTSTATUS_REVOKED ? 1 : -1,
        spec->status == V_OCSP_CERTSTATUS_REVOKED ? revoked_at : NULL, this_update, next_update));
    if (spec->echo)
        assert_int_equal(OCSP_copy_nonce(basic, spec->echo), 1);
    assert_int_equal(OCSP_basic_sign(basic, spec->signer ? spec->signer : pki.ca,
                                     spec->sign_key ? spec->sign_key : pki.ca_key, EVP_sha256(),
                                     NULL, 0),
                     1);
    response = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, basic);
    len = i2d_OCSP_RESPONSE(response, &der);
    assert_true(len > 0);
    *ret_len = (size_t)len;
    OCSP_RESPONSE_free(response);
    OCSP_BASICRESP_free(basic);
    OCSP_CERTID_free(id);
    ASN1_TIME_free(this_update);
    ASN1_TIME_free(next_update);
    ASN1_TIME_free(revoked_at);
    return der;
}

static int check(const struct answer_spec *spec, OCSP_REQUEST *request, struct ocsp_answer *answer,
                 char *err, size_t err_len)
{
    size_t len;
    unsigned char *der = make_answer(spec, &len);
    int r = ocsp_answer_check(der, len, &pki.subject, request, answer, err, err_len);

    OPENSSL_free(der);
    return r;
}

static void a_good_answer_from_the_issuer_is_taken_with_its_times(void **state)
{
    struct answer_spec spec = {
        .status = V_OCSP_CERTSTATUS_GOOD, .this_update = -60, .next_update = 3600};
    struct ocsp_answer answer;
    char err[512] = "";

    (void)state;
    assert_int_equal(check(&spec, NULL, &answer, err, sizeof(err)), 0);
    assert_int_equal(answer.status, OCSP_STATUS_GOOD);
    assert_true(answer.next_update - answer.this_update == 3660);
    assert_true(answer.produced_at > 0 && answer.revocation_time == 0);
    assert_string_equal(ocsp_cert_status_name(answer.status), "GOOD");
}

static void revoked_and_unknown_are_answers_too(void **state)
{
    struct answer_spec revoked = {.status = V_OCSP_CERTSTATUS_REVOKED, .next_update = 3600};
    struct answer_spec unknown = {.status = V_OCSP_CERTSTATUS_UNKNOWN, .next_update = 3600};
    struct ocsp_answer answer;
    char err[512];

    (void)state;
    assert_int_equal(check(&revoked, NULL, &answer, err, sizeof(err)), 0);
    assert_int_equal(answer.status, OCSP_STATUS_REVOKED);
    assert_true(answer.revocation_time > 0 && answer.revocation_reason == 1);
    assert_int_equal(check(&unknown, NULL, &answer, err, sizeof(err)), 0);
    assert_int_equal(answer.status, OCSP_STATUS_UNKNOWN);
}

static void a_delegated_responder_is_taken_and_a_stranger_is_not(void **state)
{
    struct answer_spec delegated = {.status = V_OCSP_CERTSTATUS_GOOD,
                                    .next_update = 3600,
                                    .signer = pki.responder,
                                    .sign_key = pki.responder_key};
    struct answer_spec stranger = {.status = V_OCSP_CERTSTATUS_GOOD,
                                   .next_update = 3600,
                                   .signer = pki.stranger,
                                   .sign_key = pki.stranger_key};
    struct ocsp_answer answer;
    char err[512];

    (void)state;
    assert_int_equal(check(&delegated, NULL, &answer, err, sizeof(err)), 0);
    assert_int_equal(check(&stranger, NULL, &answer, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "not signed by the certificate's issuer"));
}

static void an_expired_or_future_answer_is_refused(void **state)
{
    struct answer_spec expired = {
        .status = V_OCSP_CERTSTATUS_GOOD, .this_update = -7200, .next_update = -3600};
    struct answer_spec future = {
        .status = V_OCSP_CERTSTATUS_GOOD, .this_update = 3600, .next_update = 7200};
    struct ocsp_answer answer;
    char err[512];

    (void)state;
    assert_int_equal(check(&expired, NULL, &answer, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "not valid now"));
    assert_int_equal(check(&future, NULL, &answer, err, sizeof(err)), -EBADMSG);
}

static void an_answer_about_another_certificate_is_refused(void **state)
{
    struct answer_spec other = {
        .about = pki.other, .status = V_OCSP_CERTSTATUS_GOOD, .next_update = 3600};
    struct ocsp_answer answer;
    char err[512];

    (void)state;
    assert_int_equal(check(&other, NULL, &answer, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "no status for this certificate"));
}

static void the_nonce_must_be_the_requests_when_echoed(void **state)
{
    OCSP_REQUEST *asked = OCSP_REQUEST_new(), *replayed = OCSP_REQUEST_new();
    struct answer_spec echoed = {
        .status = V_OCSP_CERTSTATUS_GOOD, .next_update = 3600, .echo = asked};
    struct answer_spec cached = {.status = V_OCSP_CERTSTATUS_GOOD, .next_update = 3600};
    struct answer_spec other = {
        .status = V_OCSP_CERTSTATUS_GOOD, .next_update = 3600, .echo = replayed};
    struct ocsp_answer answer;
    char err[512];

    (void)state;
    OCSP_request_add1_nonce(asked, NULL, -1);
    OCSP_request_add1_nonce(replayed, NULL, -1);
    assert_int_equal(check(&echoed, asked, &answer, err, sizeof(err)), 0);
    /* Many responders answer from a cache, without the nonce: taken. */
    assert_int_equal(check(&cached, asked, &answer, err, sizeof(err)), 0);
    assert_int_equal(check(&other, asked, &answer, err, sizeof(err)), -EBADMSG);
    assert_non_null(strstr(err, "nonce"));
    OCSP_REQUEST_free(asked);
    OCSP_REQUEST_free(replayed);
}

static void malformed_unsuccessful_and_trailing_bytes_are_refused(void **state)
{
    static const unsigned char try_later[] = {0x30, 0x03, 0x0a, 0x01, 0x03};
    struct answer_spec good = {.status = V_OCSP_CERTSTATUS_GOOD, .next_update = 3600};
    struct ocsp_answer answer;
    unsigned char *der, *longer;
    char err[512];
    size_t len;

    (void)state;
    assert_int_equal(ocsp_answer_check((const unsigned char *)"junk", 4, &pki.subject, NULL,
                                       &answer, err, sizeof(err)),
                     -EBADMSG);
    assert_int_equal(ocsp_answer_check(try_later, sizeof(try_later), &pki.subject, NULL, &answer,
                                       err, sizeof(err)),
                     -EBADMSG);
    assert_non_null(strstr(err, "refused the request: trylater"));
    der = make_answer(&good, &len);
    longer = calloc(1, len + 1);
    memcpy(longer, der, len);
    assert_int_equal(
        ocsp_answer_check(longer, len + 1, &pki.subject, NULL, &answer, err, sizeof(err)),
        -EBADMSG);
    free(longer);
    OPENSSL_free(der);
}

static void the_responder_url_comes_from_authority_information_access(void **state)
{
    X509 *named = X509_new();
    char url[128], err[256];

    (void)state;
    assert_int_equal(ocsp_responder_url(pki.leaf, url, sizeof(url), err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "names no OCSP responder"));
    X509_set_version(named, X509_VERSION_3);
    add_ext(named, pki.ca, NID_info_access, "OCSP;URI:http://127.0.0.1:8888/ocsp");
    assert_int_equal(ocsp_responder_url(named, url, sizeof(url), err, sizeof(err)), 0);
    assert_string_equal(url, "http://127.0.0.1:8888/ocsp");
    X509_free(named);
}

/* A server context with the leaf. */
static SSL_CTX *leaf_context(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    assert_int_equal(SSL_CTX_use_certificate(ctx, pki.leaf), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, pki.leaf_key), 1);
    return ctx;
}

static void write_answer(const char *path, const struct answer_spec *spec)
{
    size_t len;
    unsigned char *der = make_answer(spec, &len);
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(der, 1, len, f), len);
    fclose(f);
    OPENSSL_free(der);
}

static void stapling_loads_the_answer_for_its_certificate_only(void **state)
{
    struct answer_spec good = {.status = V_OCSP_CERTSTATUS_GOOD, .next_update = 3600};
    struct answer_spec other = {
        .about = pki.other, .status = V_OCSP_CERTSTATUS_GOOD, .next_update = 3600};
    char dir[128], path[256], err[512];
    SSL_CTX *ctx = leaf_context();

    (void)state;
    unit_make_tempdir(dir, sizeof(dir), "staple");
    snprintf(path, sizeof(path), "%s/ocsp.der", dir);
    /* Nothing fetched yet: nothing to staple, and no error. */
    assert_int_equal(tls_stapling_attach(ctx, path, err, sizeof(err)), 0);
    write_answer(path, &good);
    assert_int_equal(tls_stapling_attach(ctx, path, err, sizeof(err)), 0);
    write_answer(path, &other);
    assert_true(tls_stapling_attach(ctx, path, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "is not for this certificate"));
    unit_write_file(dir, "ocsp.der", "not DER");
    assert_true(tls_stapling_attach(ctx, path, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "not a DER OCSP response"));
    SSL_CTX_free(ctx);
    unit_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_good_answer_from_the_issuer_is_taken_with_its_times),
        cmocka_unit_test(revoked_and_unknown_are_answers_too),
        cmocka_unit_test(a_delegated_responder_is_taken_and_a_stranger_is_not),
        cmocka_unit_test(an_expired_or_future_answer_is_refused),
        cmocka_unit_test(an_answer_about_another_certificate_is_refused),
        cmocka_unit_test(the_nonce_must_be_the_requests_when_echoed),
        cmocka_unit_test(malformed_unsuccessful_and_trailing_bytes_are_refused),
        cmocka_unit_test(the_responder_url_comes_from_authority_information_access),
        cmocka_unit_test(stapling_loads_the_answer_for_its_certificate_only),
    };
    return cmocka_run_group_tests_name("ocsp_query", tests, setup, teardown);
}
