/* Unit tests for certificate validation: every refusal, its message, and what is accepted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cv_error.h"
#include "x509_check.h"

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY (24L * 3600)
#define KEEP_MAX 64

/* What a generated certificate looks like; leaf_spec() and ca_spec() give the defaults. */
struct spec {
    const char *cn;
    bool ca;
    const char *eku; /* NULL: no extendedKeyUsage extension at all */
    const char *ku;  /* NULL: no keyUsage extension at all */
    long from, to;   /* validity, in seconds relative to now */
    const EVP_MD *md;
    bool bad_extension; /* a keyUsage extension whose value does not decode */
};

static time_t now;
static EVP_PKEY *ca_key, *inter_key, *leaf_key, *other_key, *rsa_key, *rsa_ca_key;
static X509 *root, *inter, *leaf;             /* leaf is issued by inter, inter by root */
static char *root_pem, *inter_pem, *leaf_pem; /* and the PEM of each */
static char *key_pem;                         /* leaf_key as PKCS#8 */
static char err[512];

/* Everything a test makes is kept here and freed by its teardown. */
static void *kept_text[KEEP_MAX];
static X509 *kept_certs[KEEP_MAX];
static EVP_PKEY *kept_keys[KEEP_MAX];
static struct x509_checked *kept_checked[KEEP_MAX];
static int n_text, n_certs, n_keys, n_checked;

static char *keep_text(char *text)
{
    assert_non_null(text);
    assert_true(n_text < KEEP_MAX);
    kept_text[n_text++] = text;
    return text;
}

static X509 *keep_cert(X509 *cert)
{
    assert_non_null(cert);
    assert_true(n_certs < KEEP_MAX);
    kept_certs[n_certs++] = cert;
    return cert;
}

static EVP_PKEY *keep_key(EVP_PKEY *key)
{
    assert_non_null(key);
    assert_true(n_keys < KEEP_MAX);
    kept_keys[n_keys++] = key;
    return key;
}

static int free_kept(void **state)
{
    (void)state;
    while (n_text > 0)
        free(kept_text[--n_text]);
    while (n_certs > 0)
        X509_free(kept_certs[--n_certs]);
    while (n_keys > 0)
        EVP_PKEY_free(kept_keys[--n_keys]);
    while (n_checked > 0)
        x509_checked_free(kept_checked[--n_checked]);
    return 0;
}

static struct spec leaf_spec(void)
{
    return (struct spec){
        .cn = "proxy.example.com", .eku = "serverAuth,clientAuth", .from = -3600, .to = 365 * DAY};
}

static struct spec ca_spec(const char *cn)
{
    return (struct spec){.cn = cn, .ca = true, .from = -3600, .to = 3650 * DAY};
}

static void add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);

    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/* Signing does not decode extension values, so a CA could issue this; OpenSSL flags it invalid. */
static void add_bad_extension(X509 *x)
{
    ASN1_OCTET_STRING *value = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ext;

    assert_non_null(value);
    assert_int_equal(ASN1_OCTET_STRING_set(value, (const unsigned char *)"\x01\x02\x03", 3), 1);
    ext = X509_EXTENSION_create_by_NID(NULL, NID_key_usage, 0, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(value);
}

static void add_extensions(X509 *x, X509 *issuer, const struct spec *s)
{
    X509V3_CTX ctx;

    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    add_ext(x, &ctx, NID_basic_constraints, s->ca ? "critical,CA:TRUE" : "CA:FALSE");
    add_ext(x, &ctx, NID_subject_key_identifier, "hash");
    if (issuer)
        add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
    if (s->eku)
        add_ext(x, &ctx, NID_ext_key_usage, s->eku);
    if (s->ku)
        add_ext(x, &ctx, NID_key_usage, s->ku);
    if (s->bad_extension)
        add_bad_extension(x);
}

/* A certificate for key, signed by issuer_key (self-signed when issuer is NULL). */
static X509 *make_cert(EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, const struct spec *s)
{
    static long serial = 1000;
    X509 *x = X509_new();
    X509_NAME *subject = X509_get_subject_name(x);

    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
    assert_int_equal(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                                (const unsigned char *)s->cn, -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subject), 1);
    assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), now + s->from));
    assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), now + s->to));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    add_extensions(x, issuer, s);
    assert_true(X509_sign(x, issuer ? issuer_key : key, s->md ? s->md : EVP_sha256()) > 0);
    return x;
}

static char *bio_text(BIO *bio)
{
    char *data, *text;
    long len = BIO_get_mem_data(bio, &data);

    text = malloc((size_t)len + 1);
    assert_non_null(text);
    memcpy(text, data, (size_t)len);
    text[len] = '\0';
    BIO_free(bio);
    return text;
}

static char *pem_cert(X509 *x)
{
    BIO *bio = BIO_new(BIO_s_mem());

    assert_int_equal(PEM_write_bio_X509(bio, x), 1);
    return bio_text(bio);
}

/* PKCS#8 ("PRIVATE KEY", or "ENCRYPTED PRIVATE KEY" with a cipher). */
static char *pem_key(EVP_PKEY *key, const EVP_CIPHER *cipher)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char pass[] = "secret";

    assert_int_equal(PEM_write_bio_PKCS8PrivateKey(bio, key, cipher, cipher ? pass : NULL,
                                                   cipher ? 6 : 0, NULL, NULL),
                     1);
    return bio_text(bio);
}

/* "RSA PRIVATE KEY" or "EC PRIVATE KEY", with Proc-Type/DEK-Info headers under a cipher. */
static char *pem_key_traditional(EVP_PKEY *key, const EVP_CIPHER *cipher)
{
    BIO *bio = BIO_new(BIO_s_mem());
    unsigned char pass[] = "secret";

    assert_int_equal(PEM_write_bio_PrivateKey_traditional(bio, key, cipher, cipher ? pass : NULL,
                                                          cipher ? 6 : 0, NULL, NULL),
                     1);
    return bio_text(bio);
}

static char *join(const char *first, ...)
{
    va_list ap;
    size_t len = 0;
    char *out;

    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        len += strlen(s);
    va_end(ap);
    out = calloc(1, len + 1);
    assert_non_null(out);
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        strcat(out, s);
    va_end(ap);
    return keep_text(out);
}

static char *replace_all(const char *s, const char *from, const char *to)
{
    size_t n = 0, from_len = strlen(from), to_len = strlen(to);
    char *out, *o;

    for (const char *p = strstr(s, from); p; p = strstr(p + from_len, from))
        n++;
    out = malloc(strlen(s) + n * to_len + 1);
    assert_non_null(out);
    o = out;
    for (const char *p; (p = strstr(s, from)); s = p + from_len) {
        memcpy(o, s, (size_t)(p - s));
        o += p - s;
        memcpy(o, to, to_len);
        o += to_len;
    }
    strcpy(o, s);
    return keep_text(out);
}

static X509 *issue(EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, struct spec s)
{
    return keep_cert(make_cert(key, issuer, issuer_key, &s));
}

static char *pem(X509 *x)
{
    return keep_text(pem_cert(x));
}

static int run_check(const char *name, enum cert_purpose purpose, const char *cert, const char *key,
                     struct x509_checked **out)
{
    memset(err, 0, sizeof(err));
    return x509_check(name, purpose, cert, cert ? strlen(cert) : 0, key, key ? strlen(key) : 0, now,
                      out, err, sizeof(err));
}

static struct x509_checked *expect_ok_as(enum cert_purpose purpose, const char *cert,
                                         const char *key)
{
    struct x509_checked *c = NULL;
    int r = run_check("proxy", purpose, cert, key, &c);

    if (r != 0)
        fail_msg("x509_check failed with %d: %s", r, err);
    assert_non_null(c);
    assert_true(n_checked < KEEP_MAX);
    kept_checked[n_checked++] = c;
    assert_int_equal(ERR_peek_error(), 0);
    return c;
}

static struct x509_checked *expect_ok(const char *cert, const char *key)
{
    return expect_ok_as(CERT_PURPOSE_SERVER, cert, key);
}

/* The code, a distinctive part of the message, nothing returned, nothing left in OpenSSL's queue.
 */
static void expect_fail_as(enum cert_purpose purpose, const char *cert, const char *key, int code,
                           const char *needle)
{
    struct x509_checked untouched, *c = &untouched;
    int r = run_check("proxy", purpose, cert, key, &c);

    if (r != code || !strstr(err, needle))
        fail_msg("got %d \"%s\", wanted %d with \"%s\"", r, err, code, needle);
    assert_ptr_equal(c, &untouched);
    assert_int_equal(ERR_peek_error(), 0);
}

static void expect_fail(const char *cert, const char *key, int code, const char *needle)
{
    expect_fail_as(CERT_PURPOSE_SERVER, cert, key, code, needle);
}

/* No 8-character run of the key's base64 may appear in the message. */
static void assert_no_key_material(const char *pem_text)
{
    const char *body = strchr(pem_text, '\n') + 1;

    for (const char *p = body; p[8] && strncmp(p, "-----", 5) != 0; p++) {
        char window[9];

        memcpy(window, p, 8);
        window[8] = '\0';
        if (!strchr(window, '\n') && strstr(err, window))
            fail_msg("message \"%s\" holds key material \"%s\"", err, window);
    }
}

/* The day, or the day and time as messages print it. */
static void format_utc(time_t t, bool with_time, char *buf, size_t len)
{
    struct tm tm;

    assert_non_null(gmtime_r(&t, &tm));
    assert_true((with_time ? strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm)
                           : strftime(buf, len, "%Y-%m-%d", &tm)) > 0);
}

static int setup(void **state)
{
    struct spec s = ca_spec("Test Root");

    (void)state;
    now = time(NULL);
    ca_key = EVP_EC_gen("P-256");
    inter_key = EVP_EC_gen("P-256");
    leaf_key = EVP_EC_gen("P-256");
    other_key = EVP_EC_gen("P-256");
    rsa_key = EVP_RSA_gen(2048);
    rsa_ca_key = EVP_RSA_gen(2048);
    if (!ca_key || !inter_key || !leaf_key || !other_key || !rsa_key || !rsa_ca_key)
        return -1;
    root = make_cert(ca_key, NULL, NULL, &s);
    s = ca_spec("Test Intermediate");
    inter = make_cert(inter_key, root, ca_key, &s);
    s = leaf_spec();
    leaf = make_cert(leaf_key, inter, inter_key, &s);
    root_pem = pem_cert(root);
    inter_pem = pem_cert(inter);
    leaf_pem = pem_cert(leaf);
    key_pem = pem_key(leaf_key, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(root_pem);
    free(inter_pem);
    free(leaf_pem);
    free(key_pem);
    X509_free(root);
    X509_free(inter);
    X509_free(leaf);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(inter_key);
    EVP_PKEY_free(leaf_key);
    EVP_PKEY_free(other_key);
    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(rsa_ca_key);
    return 0;
}

/* A leaf issued straight by the root, for tests that need no chain. */
static char *direct_leaf(EVP_PKEY *key, struct spec s)
{
    return pem(issue(key, root, ca_key, s));
}

/* --- accepted -------------------------------------------------------------------------------- */

static void leaf_and_key_are_accepted(void **state)
{
    X509 *x = issue(leaf_key, root, ca_key, leaf_spec());
    struct x509_checked *c = expect_ok(pem(x), key_pem);

    (void)state;
    assert_int_equal(X509_cmp(c->leaf, x), 0);
    assert_non_null(c->chain);
    assert_int_equal(sk_X509_num(c->chain), 0);
    assert_non_null(c->key);
    assert_int_equal(EVP_PKEY_eq(c->key, leaf_key), 1);
    assert_true(c->not_before == now - 3600);
    assert_true(c->not_after == now + 365 * DAY);
    assert_string_equal(c->warning, "");
}

static void leaf_chain_and_rsa_key_are_accepted(void **state)
{
    X509 *x = issue(rsa_key, inter, inter_key, leaf_spec());
    char *rsa_pem = keep_text(pem_key_traditional(rsa_key, NULL));
    struct x509_checked *c;

    (void)state;
    assert_true(strncmp(rsa_pem, "-----BEGIN RSA PRIVATE KEY-----\n", 32) == 0);
    c = expect_ok(join(pem(x), inter_pem, root_pem, NULL), rsa_pem);
    assert_int_equal(X509_cmp(c->leaf, x), 0);
    assert_int_equal(sk_X509_num(c->chain), 2);
    assert_int_equal(X509_cmp(sk_X509_value(c->chain, 0), inter), 0);
    assert_int_equal(X509_cmp(sk_X509_value(c->chain, 1), root), 0);
    assert_int_equal(EVP_PKEY_eq(c->key, rsa_key), 1);
}

static void ec_key_with_parameters_block_is_accepted(void **state)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *params, *ec_pem = keep_text(pem_key_traditional(leaf_key, NULL));

    (void)state;
    assert_int_equal(PEM_write_bio_Parameters(bio, leaf_key), 1);
    params = keep_text(bio_text(bio));
    assert_true(strncmp(params, "-----BEGIN EC PARAMETERS-----\n", 30) == 0);
    assert_true(strncmp(ec_pem, "-----BEGIN EC PRIVATE KEY-----\n", 31) == 0);
    expect_ok(join(leaf_pem, inter_pem, NULL), join(params, ec_pem, NULL));
}

static void crlf_is_accepted(void **state)
{
    char *cert = replace_all(join(leaf_pem, inter_pem, root_pem, NULL), "\n", "\r\n");
    char *key = replace_all(key_pem, "\n", "\r\n");
    struct x509_checked *c;

    (void)state;
    assert_non_null(strstr(cert, "-----\r\n"));
    assert_non_null(strstr(key, "-----\r\n"));
    c = expect_ok(cert, key);
    assert_int_equal(sk_X509_num(c->chain), 2);
}

static void bom_blanks_and_no_final_newline_are_accepted(void **state)
{
    char *cert = join("\xEF\xBB\xBF", leaf_pem, "  \n", inter_pem, NULL);
    char *bare = keep_text(strdup(leaf_pem));

    (void)state;
    bare[strlen(bare) - 1] = '\0';
    expect_ok(join(cert, "\n\t \n\n", NULL), key_pem);
    expect_ok(join(bare, NULL), NULL);
}

static void text_before_blocks_is_accepted(void **state)
{
    char *cert = join("Bag Attributes\n    friendlyName: proxy\n", leaf_pem,
                      "subject=CN = Test Intermediate\n", inter_pem, NULL);

    (void)state;
    assert_int_equal(sk_X509_num(expect_ok(cert, key_pem)->chain), 1);
}

static void absent_key_is_accepted_for_a_leaf(void **state)
{
    struct x509_checked *c = expect_ok(join(leaf_pem, inter_pem, NULL), NULL);

    (void)state;
    assert_null(c->key);
    assert_non_null(c->leaf);
}

static void p384_and_p521_are_accepted(void **state)
{
    EVP_PKEY *p384 = keep_key(EVP_EC_gen("P-384")), *p521 = keep_key(EVP_EC_gen("P-521"));

    (void)state;
    expect_ok(direct_leaf(p384, leaf_spec()), keep_text(pem_key(p384, NULL)));
    expect_ok(direct_leaf(p521, leaf_spec()), keep_text(pem_key(p521, NULL)));
}

static void sha1_self_signed_root_is_accepted_in_a_chain(void **state)
{
    struct spec s = ca_spec("SHA-1 Root");
    X509 *old_root, *x;

    (void)state;
    s.md = EVP_sha1();
    old_root = issue(other_key, NULL, NULL, s);
    assert_int_equal(X509_get_signature_nid(old_root), NID_ecdsa_with_SHA1);
    x = issue(leaf_key, old_root, other_key, leaf_spec());
    expect_ok(join(pem(x), pem(old_root), NULL), key_pem);
}

static void client_auth_only_is_accepted_for_a_client(void **state)
{
    struct spec s = leaf_spec();

    (void)state;
    s.eku = "clientAuth";
    expect_ok_as(CERT_PURPOSE_CLIENT, direct_leaf(leaf_key, s), key_pem);
}

static void warning_when_ten_days_are_left(void **state)
{
    struct spec s = leaf_spec();
    struct x509_checked *c;
    char date[32], want[128];

    (void)state;
    s.to = 10 * DAY + 3600;
    c = expect_ok(direct_leaf(leaf_key, s), key_pem);
    format_utc(now + s.to, false, date, sizeof(date));
    snprintf(want, sizeof(want), "certificate 'proxy' expires in 10 days (%s)", date);
    assert_string_equal(c->warning, want);
}

static void no_warning_with_thirty_one_days_left(void **state)
{
    struct spec s = leaf_spec();

    (void)state;
    s.to = 31 * DAY;
    assert_string_equal(expect_ok(direct_leaf(leaf_key, s), key_pem)->warning, "");
}

static void warning_names_an_intermediate_expiring_first(void **state)
{
    struct spec s = ca_spec("Short Intermediate");
    X509 *short_inter, *x;
    struct x509_checked *c;

    (void)state;
    s.to = 5 * DAY + 60;
    short_inter = issue(inter_key, root, ca_key, s);
    x = issue(leaf_key, short_inter, inter_key, leaf_spec());
    c = expect_ok(join(pem(x), pem(short_inter), NULL), key_pem);
    assert_non_null(strstr(c->warning, "certificate 2 ('/CN=Short Intermediate') in the chain of "
                                       "'proxy' expires in 5 days ("));
    assert_true(c->not_after == now + 365 * DAY); /* still the leaf's */
}

static bool is_upper_hex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'F');
}

static void fingerprint_is_upper_case_sha256_pairs(void **state)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n;
    char fp[96], small[9], smaller[8], *want;

    (void)state;
    assert_int_equal(X509_digest(leaf, EVP_sha256(), md, &n), 1);
    want = OPENSSL_buf2hexstr(md, n); /* what openssl x509 -fingerprint prints */
    x509_fingerprint(leaf, fp, sizeof(fp));
    assert_int_equal(strlen(fp), 95);
    for (int i = 0; i < 95; i++)
        assert_true(i % 3 == 2 ? fp[i] == ':' : is_upper_hex(fp[i]));
    assert_string_equal(fp, want);
    assert_string_equal(expect_ok(join(leaf_pem, inter_pem, NULL), NULL)->fingerprint, want);
    /* A short buffer gets whole pairs only: "AB:CD:EF" fits 9 bytes, only "AB:CD" fits 8. */
    x509_fingerprint(leaf, small, sizeof(small));
    assert_int_equal(strlen(small), 8);
    assert_int_equal(strncmp(small, want, 8), 0);
    x509_fingerprint(leaf, smaller, sizeof(smaller));
    assert_int_equal(strlen(smaller), 5);
    assert_int_equal(strncmp(smaller, want, 5), 0);
    OPENSSL_free(want);
}

static void bundle_of_two_cas_is_accepted(void **state)
{
    X509 *rsa_root = issue(rsa_ca_key, NULL, NULL, ca_spec("RSA Root"));
    struct x509_checked *c;
    char fp[96];

    (void)state;
    c = expect_ok_as(CERT_PURPOSE_CA_BUNDLE, join(root_pem, pem(rsa_root), NULL), NULL);
    assert_null(c->leaf);
    assert_null(c->key);
    assert_int_equal(sk_X509_num(c->chain), 2);
    assert_int_equal(X509_cmp(sk_X509_value(c->chain, 0), root), 0);
    assert_int_equal(X509_cmp(sk_X509_value(c->chain, 1), rsa_root), 0);
    x509_fingerprint(root, fp, sizeof(fp));
    assert_string_equal(c->fingerprint, fp);
    assert_true(c->not_after == now + 3650 * DAY);
}

/* --- refused: the input is not usable PEM -------------------------------------------------- */

static void der_is_refused_with_a_conversion(void **state)
{
    unsigned char *der = NULL;
    int len = i2d_X509(leaf, &der);
    struct x509_checked *c = NULL;
    int r;

    (void)state;
    assert_true(len > 0);
    r = x509_check("proxy", CERT_PURPOSE_SERVER, (const char *)der, (size_t)len, NULL, 0, now, &c,
                   err, sizeof(err));
    OPENSSL_free(der);
    assert_int_equal(r, CV_EINVALID_CERT);
    assert_null(c);
    assert_non_null(strstr(err, "certificate 'proxy' is not PEM: it is DER (binary); convert it "
                                "with: openssl x509 -inform der -in FILE -out FILE.pem"));
}

static void der_key_is_refused_with_a_conversion(void **state)
{
    unsigned char *der = NULL;
    int len = i2d_PrivateKey(leaf_key, &der);
    struct x509_checked *c = NULL;
    int r;

    (void)state;
    assert_true(len > 0);
    r = x509_check("proxy", CERT_PURPOSE_SERVER, leaf_pem, strlen(leaf_pem), (const char *)der,
                   (size_t)len, now, &c, err, sizeof(err));
    OPENSSL_free(der);
    assert_int_equal(r, CV_EINVALID_CERT);
    assert_null(c);
    assert_non_null(strstr(err, "the key of certificate 'proxy' is not PEM: it is DER (binary); "
                                "convert it with: openssl pkey -inform der"));
}

/* A .p12/.pfx export, as Windows and Java tools make it: DER, but not a certificate. */
static void pkcs12_is_refused_with_the_pkcs12_commands(void **state)
{
    char pass[] = "secret";
    PKCS12 *p12 = PKCS12_create(pass, "proxy", leaf_key, leaf, NULL, 0, 0, 0, 0, 0);
    unsigned char *der = NULL;
    int len;

    (void)state;
    assert_non_null(p12);
    len = i2d_PKCS12(p12, &der);
    PKCS12_free(p12);
    assert_true(len > 0);
    assert_int_equal(x509_check_text("certificate 'cm'", false, "cm.p12", (const char *)der,
                                     (size_t)len, err, sizeof(err)),
                     CV_EINVALID_CERT);
    assert_string_equal(err,
                        "certificate 'cm' is not PEM: cm.p12 is PKCS#12 (a .p12/.pfx bundle of "
                        "certificates and a key); extract the certificates with: openssl "
                        "pkcs12 -in cm.p12 -nokeys -out cert.pem, and the key with: openssl "
                        "pkcs12 -in cm.p12 -nocerts -nodes -out key.pem (add -legacy if "
                        "openssl says the algorithm is unsupported)");
    /* Given as the key, and cut short: still named, since only its first bytes are read. */
    assert_int_equal(x509_check("proxy", CERT_PURPOSE_SERVER, leaf_pem, strlen(leaf_pem),
                                (const char *)der, 64, now, &(struct x509_checked *){NULL}, err,
                                sizeof(err)),
                     CV_EINVALID_CERT);
    OPENSSL_free(der);
    assert_non_null(strstr(err, "the key of certificate 'proxy' is not PEM: it is PKCS#12"));
    assert_null(strstr(err, "openssl x509"));
    assert_int_equal(ERR_peek_error(), 0);
}

static void json_escaped_newlines_are_refused(void **state)
{
    char *cert = replace_all(leaf_pem, "\n", "\\n");
    char *key = replace_all(key_pem, "\n", "\\n");

    (void)state;
    assert_null(strchr(cert, '\n'));
    expect_fail(cert, key_pem, CV_EINVALID_CERT,
                "certificate 'proxy' holds literal \\n escapes (a backslash and an n");
    expect_fail(leaf_pem, key, CV_EINVALID_CERT,
                "the key of certificate 'proxy' holds literal \\n");
    assert_non_null(strstr(err, "sed 's/\\\\n/\\n/g' FILE > FILE.pem"));
}

static void text_that_is_not_pem_is_refused(void **state)
{
    (void)state;
    expect_fail("hello, world\n", NULL, CV_EINVALID_CERT,
                "certificate 'proxy' is not PEM: it has no -----BEGIN CERTIFICATE----- line");
    expect_fail(leaf_pem, "not a key\n", CV_EINVALID_CERT,
                "the key of certificate 'proxy' is not PEM: it has no -----BEGIN PRIVATE KEY");
}

static void binary_that_is_not_der_is_refused(void **state)
{
    static const char bytes[] = {'a', 'b', '\0', 'c', '\n'};
    struct x509_checked *c = NULL;

    (void)state;
    assert_int_equal(x509_check("proxy", CERT_PURPOSE_SERVER, bytes, sizeof(bytes), NULL, 0, now,
                                &c, err, sizeof(err)),
                     CV_EINVALID_CERT);
    assert_null(c);
    assert_non_null(strstr(err, "certificate 'proxy' is not PEM: it holds binary data"));
}

/* leaf_pem as Windows saves "Unicode" text: UTF-16, little-endian, with a byte order mark. */
static void utf16_is_refused_with_a_conversion(void **state)
{
    size_t n = strlen(leaf_pem), len = 2 + 2 * n;
    char *wide = keep_text(malloc(len));
    struct x509_checked *c = NULL;

    (void)state;
    wide[0] = (char)0xFF;
    wide[1] = (char)0xFE;
    for (size_t i = 0; i < n; i++) {
        wide[2 + 2 * i] = leaf_pem[i];
        wide[3 + 2 * i] = '\0';
    }
    assert_int_equal(
        x509_check("proxy", CERT_PURPOSE_SERVER, wide, len, NULL, 0, now, &c, err, sizeof(err)),
        CV_EINVALID_CERT);
    assert_null(c);
    assert_non_null(strstr(err, "certificate 'proxy' is not PEM: it is UTF-16 text"));
    assert_non_null(strstr(err, "save it as UTF-8 or ASCII, e.g. with: iconv -f UTF-16LE -t UTF-8 "
                                "FILE > FILE.pem"));
    /* Big-endian without a mark: the zero byte comes first. */
    assert_int_equal(x509_check_text("the key of certificate 'proxy'", true, "k.pem",
                                     "\0-\0-\0-\0-", 8, err, sizeof(err)),
                     CV_EINVALID_CERT);
    assert_non_null(strstr(err, "the key of certificate 'proxy' is not PEM: k.pem is UTF-16 text"));
    assert_non_null(strstr(err, "iconv -f UTF-16BE -t UTF-8 k.pem > k.pem.pem"));
}

static void bytes_that_are_not_utf8_are_refused(void **state)
{
    static const char latin1[] = "-----BEGIN CERTIFICATE-----\nCaf\xE9\n";
    static const char overlong[] = "ab\xC0\xAF";     /* '/' in two bytes */
    static const char surrogate[] = "a\xED\xA0\x80"; /* U+D800 */
    static const char cut[] = "abc\xE2\x82";         /* a 3-byte sequence, 2 bytes long */
    static const char utf8[] = "\xEF\xBB\xBF# \xE2\x82\xAC \xF0\x9F\x94\x92\n";

    (void)state;
    expect_fail(latin1, NULL, CV_EINVALID_CERT,
                "certificate 'proxy' is not PEM: it holds binary data (byte 32 is not text: not "
                "UTF-8); save it as UTF-8 or ASCII");
    assert_int_equal(x509_check_text("c", false, "f", overlong, strlen(overlong), err, sizeof(err)),
                     CV_EINVALID_CERT);
    assert_non_null(strstr(err, "f holds binary data (byte 3 is not text"));
    assert_int_equal(
        x509_check_text("c", false, "f", surrogate, strlen(surrogate), err, sizeof(err)),
        CV_EINVALID_CERT);
    assert_int_equal(x509_check_text("c", false, "f", cut, strlen(cut), err, sizeof(err)),
                     CV_EINVALID_CERT);
    assert_non_null(strstr(err, "byte 4 is not text"));
    /* What is UTF-8 passes to the PEM checks: a comment in another script, a BOM. */
    assert_int_equal(x509_check_text("c", false, "f", utf8, strlen(utf8), err, sizeof(err)), 0);
}

static void a_named_file_is_in_the_message_and_the_fix(void **state)
{
    unsigned char *der = NULL;
    int len = i2d_X509(leaf, &der);
    int r;

    (void)state;
    assert_true(len > 0);
    r = x509_check_text("certificate 'cm'", false, "cm_cert.der", (const char *)der, (size_t)len,
                        err, sizeof(err));
    OPENSSL_free(der);
    assert_int_equal(r, CV_EINVALID_CERT);
    assert_string_equal(err, "certificate 'cm' is not PEM: cm_cert.der is DER (binary); convert it "
                             "with: openssl x509 -inform der -in cm_cert.der -out cm_cert.der.pem");
    assert_int_equal(x509_check_text("certificate 'cm'", false, "cm.pem", leaf_pem,
                                     strlen(leaf_pem), err, sizeof(err)),
                     0);
}

static void empty_input_is_refused(void **state)
{
    (void)state;
    expect_fail("", NULL, CV_EINVALID_CERT, "certificate 'proxy' is empty; give the certificate");
    expect_fail(NULL, NULL, CV_EINVALID_CERT, "certificate 'proxy' is empty");
    expect_fail(leaf_pem, " \r\n", CV_EINVALID_CERT,
                "the key of certificate 'proxy' is empty; give the private key");
}

static void oversized_input_is_refused(void **state)
{
    size_t len = strlen(leaf_pem);
    char *big = keep_text(malloc(X509_CHECK_MAX_INPUT + 2));
    char *big_key = keep_text(malloc(X509_CHECK_MAX_INPUT + 2));

    (void)state;
    /* Valid PEM padded with blank lines: exactly the limit passes, one byte more does not. */
    memcpy(big, leaf_pem, len);
    memset(big + len, '\n', X509_CHECK_MAX_INPUT - len);
    big[X509_CHECK_MAX_INPUT] = '\0';
    expect_ok(big, NULL);
    big[X509_CHECK_MAX_INPUT] = '\n';
    big[X509_CHECK_MAX_INPUT + 1] = '\0';
    expect_fail(big, NULL, CV_EINVALID_CERT, "certificate 'proxy' is larger than 262144 bytes");
    memcpy(big_key, key_pem, strlen(key_pem));
    memset(big_key + strlen(key_pem), '\n', X509_CHECK_MAX_INPUT + 1 - strlen(key_pem));
    big_key[X509_CHECK_MAX_INPUT + 1] = '\0';
    expect_fail(leaf_pem, big_key, CV_EINVALID_CERT,
                "the key of certificate 'proxy' is larger than 262144 bytes; give only");
}

static void trailing_garbage_is_refused(void **state)
{
    (void)state;
    expect_fail(join(leaf_pem, inter_pem, "garbage\n", NULL), key_pem, CV_EINVALID_CERT,
                "certificate 'proxy' has text after its last PEM block; remove everything");
    expect_fail(leaf_pem, join(key_pem, "MIIB\n", NULL), CV_EINVALID_CERT,
                "the key of certificate 'proxy' has text after its last PEM block");
}

static void truncated_block_is_refused(void **state)
{
    char *cut = keep_text(strndup(leaf_pem, strlen(leaf_pem) / 2));

    (void)state;
    expect_fail(cut, NULL, CV_EINVALID_CERT,
                "certificate 'proxy' is cut short: its -----BEGIN CERTIFICATE----- line has no "
                "-----END CERTIFICATE----- line");
    /* A block cut short and followed by a whole one is still cut short. */
    expect_fail(join(cut, "\n", inter_pem, NULL), NULL, CV_EINVALID_CERT, "is cut short");
}

static void missing_begin_line_is_refused(void **state)
{
    /* Both BEGIN lines lost, as when a paste starts one line late. */
    char *headless =
        replace_all(join(leaf_pem, inter_pem, NULL), "-----BEGIN CERTIFICATE-----\nMII", "MII");

    (void)state;
    assert_null(strstr(headless, "BEGIN"));
    expect_fail(headless, NULL, CV_EINVALID_CERT,
                "has a damaged PEM boundary (a \"-----\" line with no matching BEGIN or END)");
}

static void damaged_base64_is_refused(void **state)
{
    char *damaged = keep_text(strdup(leaf_pem));
    char *second = strchr(damaged, '\n') + 1, *third = strchr(second, '\n') + 1;

    (void)state;
    memmove(second, third, strlen(third) + 1); /* drops one line of base64 */
    expect_fail(damaged, NULL, CV_EINVALID_CERT,
                "PEM block 1 of certificate 'proxy' is not a valid certificate");
}

static void undecodable_extension_is_refused(void **state)
{
    struct spec s = leaf_spec();

    (void)state;
    s.bad_extension = true;
    expect_fail(join(leaf_pem, pem(issue(inter_key, root, ca_key, s)), NULL), NULL,
                CV_EINVALID_CERT,
                "PEM block 2 of certificate 'proxy' has an extension that cannot be decoded; have "
                "the CA reissue the certificate");
}

static void private_key_among_certificates_is_refused(void **state)
{
    (void)state;
    expect_fail(join(leaf_pem, key_pem, NULL), NULL, CV_EINVALID_CERT,
                "certificate 'proxy' contains a private key; give the key separately");
    assert_no_key_material(key_pem);
}

static void other_blocks_among_certificates_are_refused(void **state)
{
    X509_REQ *req = X509_to_X509_REQ(leaf, leaf_key, EVP_sha256());
    BIO *bio = BIO_new(BIO_s_mem());

    (void)state;
    assert_non_null(req);
    assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
    X509_REQ_free(req);
    expect_fail(keep_text(bio_text(bio)), NULL, CV_EINVALID_CERT,
                "certificate 'proxy' is a certificate signing request, not a certificate");
    expect_fail("-----BEGIN PKCS7-----\nMIIB\n-----END PKCS7-----\n", NULL, CV_EINVALID_CERT,
                "openssl pkcs7 -print_certs -in FILE -out FILE.pem");
    expect_fail("-----BEGIN X509 CRL-----\nMIIB\n-----END X509 CRL-----\n", NULL, CV_EINVALID_CERT,
                "certificate 'proxy' holds a block of type X509 CRL; give the");
}

static void certificate_or_public_key_as_the_key_is_refused(void **state)
{
    BIO *bio = BIO_new(BIO_s_mem());

    (void)state;
    expect_fail(leaf_pem, leaf_pem, CV_EINVALID_CERT,
                "the key of certificate 'proxy' holds a certificate; give only the private key");
    assert_int_equal(PEM_write_bio_PUBKEY(bio, leaf_key), 1);
    expect_fail(leaf_pem, keep_text(bio_text(bio)), CV_EINVALID_CERT,
                "the key of certificate 'proxy' is a public key; give the private key");
    expect_fail(leaf_pem, "-----BEGIN DSA PRIVATE KEY-----\nMIIB\n-----END DSA PRIVATE KEY-----\n",
                CV_EINVALID_CERT, "is a DSA PRIVATE KEY, which is not supported");
}

static void damaged_key_is_refused(void **state)
{
    char *damaged = replace_all(key_pem, "-----\nMI", "-----\nAAAA");

    (void)state;
    assert_string_not_equal(damaged, key_pem);
    expect_fail(leaf_pem, damaged, CV_EINVALID_CERT,
                "the key of certificate 'proxy' is not a valid private key");
}

/* --- refused: the key ----------------------------------------------------------------------- */

static void several_keys_are_refused(void **state)
{
    char *other = keep_text(pem_key(other_key, NULL));

    (void)state;
    expect_fail(leaf_pem, join(key_pem, other, NULL), CV_EINVALID_CERT,
                "the key of certificate 'proxy' holds 2 private keys; give only the one");
    assert_no_key_material(key_pem);
    assert_no_key_material(other);
}

static void encrypted_pkcs8_key_is_refused(void **state)
{
    char *encrypted = keep_text(pem_key(leaf_key, EVP_aes_256_cbc()));

    (void)state;
    assert_true(strncmp(encrypted, "-----BEGIN ENCRYPTED PRIVATE KEY-----\n", 38) == 0);
    expect_fail(leaf_pem, encrypted, CV_EINVALID_CERT,
                "the key of certificate 'proxy' is encrypted with a passphrase; decrypt it with: "
                "openssl pkey -in key.pem -out key-plain.pem");
    assert_no_key_material(encrypted);
}

static void encrypted_traditional_key_is_refused(void **state)
{
    char *encrypted = keep_text(pem_key_traditional(rsa_key, EVP_aes_128_cbc()));
    char *cert = direct_leaf(rsa_key, leaf_spec());

    (void)state;
    assert_non_null(strstr(encrypted, "\nProc-Type: 4,ENCRYPTED\n"));
    expect_ok(cert, keep_text(pem_key_traditional(rsa_key, NULL)));
    expect_fail(cert, encrypted, CV_EINVALID_CERT,
                "is encrypted with a passphrase; decrypt it with: openssl pkey -in key.pem");
}

static void key_of_another_certificate_is_refused(void **state)
{
    char *other = keep_text(pem_key(other_key, NULL));

    (void)state;
    expect_fail(join(leaf_pem, inter_pem, NULL), other, CV_EINVALID_CERT,
                "key does not match certificate 'proxy'");
    assert_string_equal(err, "key does not match certificate 'proxy'");
    /* A key of another type fails the same way. */
    expect_fail(leaf_pem, keep_text(pem_key(rsa_key, NULL)), CV_EINVALID_CERT,
                "key does not match certificate 'proxy'");
}

static void key_for_a_bundle_is_refused(void **state)
{
    (void)state;
    expect_fail_as(CERT_PURPOSE_CA_BUNDLE, root_pem, key_pem, CV_EINVALID_CERT,
                   "certificate 'proxy' is a CA bundle and takes no key; give only the CA");
}

/* --- refused: dates ------------------------------------------------------------------------- */

static void expired_certificate_is_refused_with_its_date(void **state)
{
    struct spec s = leaf_spec();
    char when[64], want[160];

    (void)state;
    s.from = -400 * DAY;
    s.to = -2 * DAY;
    format_utc(now + s.to, true, when, sizeof(when));
    snprintf(want, sizeof(want),
             "certificate 'proxy' expired on %s; replace it with a renewed certificate", when);
    expect_fail(direct_leaf(leaf_key, s), key_pem, CV_ECERT_EXPIRED, want);
}

static void expired_intermediate_is_refused(void **state)
{
    struct spec s = ca_spec("Old Intermediate");
    X509 *old, *x;

    (void)state;
    s.from = -400 * DAY;
    s.to = -DAY;
    old = issue(inter_key, root, ca_key, s);
    x = issue(leaf_key, old, inter_key, leaf_spec());
    expect_fail(join(pem(x), pem(old), NULL), key_pem, CV_ECERT_EXPIRED,
                "certificate 2 ('/CN=Old Intermediate') in the chain of 'proxy' expired on ");
}

static void expired_ca_in_a_bundle_is_refused(void **state)
{
    struct spec s = ca_spec("Old Root");

    (void)state;
    s.from = -400 * DAY;
    s.to = -DAY;
    expect_fail_as(CERT_PURPOSE_CA_BUNDLE,
                   join(root_pem, pem(issue(other_key, NULL, NULL, s)), NULL), NULL,
                   CV_ECERT_EXPIRED, "CA certificate 2 ('/CN=Old Root') of 'proxy' expired on ");
}

static void certificate_not_yet_valid_is_refused(void **state)
{
    struct spec s = leaf_spec();
    char when[64], want[128];

    (void)state;
    s.from = 3 * DAY;
    format_utc(now + s.from, true, when, sizeof(when));
    snprintf(want, sizeof(want), "certificate 'proxy' is not valid until %s; check this node's",
             when);
    expect_fail(direct_leaf(leaf_key, s), key_pem, CV_EINVALID_CERT, want);
}

/* --- refused: algorithms -------------------------------------------------------------------- */

static void rsa_1024_is_refused(void **state)
{
    EVP_PKEY *weak = keep_key(EVP_RSA_gen(1024));

    (void)state;
    assert_int_equal(EVP_PKEY_get_bits(weak), 1024);
    expect_fail(direct_leaf(weak, leaf_spec()), keep_text(pem_key(weak, NULL)), CV_EINVALID_CERT,
                "certificate 'proxy' has a 1024-bit RSA key, which is too weak; make a key of at "
                "least 2048 bits");
}

static void unsupported_curves_are_refused(void **state)
{
    EVP_PKEY *p224 = keep_key(EVP_EC_gen("P-224")), *k256 = keep_key(EVP_EC_gen("secp256k1"));

    (void)state;
    expect_fail(direct_leaf(p224, leaf_spec()), NULL, CV_EINVALID_CERT,
                "certificate 'proxy' has an EC key on curve secp224r1, which is not supported; "
                "use P-256, P-384 or P-521");
    expect_fail(direct_leaf(k256, leaf_spec()), NULL, CV_EINVALID_CERT,
                "has an EC key on curve secp256k1, which is not supported");
}

static void ed25519_is_refused(void **state)
{
    EVP_PKEY *ed = keep_key(EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"));

    (void)state;
    expect_fail(direct_leaf(ed, leaf_spec()), NULL, CV_EINVALID_CERT,
                "certificate 'proxy' has a key of type ED25519, which is not supported; use RSA "
                "of at least 2048 bits or EC");
}

static void sha1_signature_is_refused(void **state)
{
    struct spec s = leaf_spec();
    X509 *x;

    (void)state;
    s.md = EVP_sha1();
    x = issue(leaf_key, root, ca_key, s);
    assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA1);
    expect_fail(pem(x), key_pem, CV_EINVALID_CERT,
                "certificate 'proxy' is signed with SHA-1, which TLS clients reject; have the CA "
                "reissue it with SHA-256 or stronger");
}

static void md5_signature_is_refused(void **state)
{
    X509 *rsa_root = issue(rsa_ca_key, NULL, NULL, ca_spec("RSA Root"));
    struct spec s = leaf_spec();
    X509 *x;

    (void)state;
    s.md = EVP_md5();
    x = issue(leaf_key, rsa_root, rsa_ca_key, s);
    assert_int_equal(X509_get_signature_nid(x), NID_md5WithRSAEncryption);
    expect_fail(join(pem(x), pem(rsa_root), NULL), key_pem, CV_EINVALID_CERT,
                "certificate 'proxy' is signed with MD5, which TLS clients reject");
}

/* A self-signed certificate is the leaf, not a trust anchor, so its SHA-1 counts. */
static void sha1_self_signed_leaf_is_refused(void **state)
{
    struct spec s = leaf_spec();
    X509 *x;

    (void)state;
    expect_ok(pem(issue(leaf_key, NULL, NULL, s)), key_pem);
    s.md = EVP_sha1();
    x = issue(leaf_key, NULL, NULL, s);
    assert_true(X509_get_extension_flags(x) & EXFLAG_SS);
    expect_fail(pem(x), key_pem, CV_EINVALID_CERT, "certificate 'proxy' is signed with SHA-1");
}

static void sha1_intermediate_is_refused(void **state)
{
    struct spec s = ca_spec("SHA-1 Intermediate");
    X509 *weak, *x;

    (void)state;
    s.md = EVP_sha1();
    weak = issue(inter_key, root, ca_key, s);
    x = issue(leaf_key, weak, inter_key, leaf_spec());
    expect_fail(join(pem(x), pem(weak), root_pem, NULL), key_pem, CV_EINVALID_CERT,
                "certificate 2 ('/CN=SHA-1 Intermediate') in the chain of 'proxy' is signed with "
                "SHA-1");
}

/* --- refused: the chain --------------------------------------------------------------------- */

static void chain_out_of_order_is_refused(void **state)
{
    (void)state;
    expect_fail(join(leaf_pem, root_pem, inter_pem, NULL), key_pem, CV_EINVALID_CERT,
                "the chain of certificate 'proxy' is out of order; put the certificate itself "
                "first, then its issuer");
    expect_fail(join(inter_pem, leaf_pem, NULL), NULL, CV_EINVALID_CERT, "is out of order");
    expect_fail(join(root_pem, inter_pem, leaf_pem, NULL), NULL, CV_EINVALID_CERT,
                "is out of order");
}

/* Validation runs on the agent's loop: a chain of hundreds is refused before it is verified. */
static void chain_longer_than_the_limit_is_refused(void **state)
{
    size_t len = strlen(leaf_pem) + 1;
    char *text;

    (void)state;
    for (int i = 0; i <= X509_CHECK_MAX_CHAIN; i++)
        len += strlen(root_pem);
    text = keep_text(calloc(1, len));
    strcpy(text, leaf_pem);
    strcat(text, inter_pem);
    for (int i = 2; i < X509_CHECK_MAX_CHAIN; i++)
        strcat(text, root_pem);
    /* At the limit, the repeated root is the only fault: it still links. */
    expect_ok(text, key_pem);
    strcat(text, root_pem);
    expect_fail(text, key_pem, CV_EINVALID_CERT,
                "certificate 'proxy' has more than 10 certificates; give the certificate itself");
    /* A CA bundle is not a chain: a system bundle holds over a hundred. */
    expect_ok_as(CERT_PURPOSE_CA_BUNDLE, strstr(text, root_pem), NULL);
}

static void chain_that_does_not_link_is_refused(void **state)
{
    X509 *rsa_root = issue(rsa_ca_key, NULL, NULL, ca_spec("RSA Root"));

    (void)state;
    expect_fail(join(leaf_pem, pem(rsa_root), NULL), key_pem, CV_EINVALID_CERT,
                "certificate 2 ('/CN=RSA Root') in the chain of 'proxy' did not issue certificate "
                "'proxy', so the chain does not link");
    /* Skipping the intermediate breaks the chain as well. */
    expect_fail(join(leaf_pem, root_pem, NULL), key_pem, CV_EINVALID_CERT,
                "certificate 2 ('/CN=Test Root') in the chain of 'proxy' did not issue");
}

static void same_name_other_key_is_refused(void **state)
{
    X509 *impostor = issue(other_key, root, ca_key, ca_spec("Test Intermediate"));

    (void)state;
    expect_fail(join(leaf_pem, pem(impostor), NULL), key_pem, CV_EINVALID_CERT,
                "certificate 2 ('/CN=Test Intermediate') in the chain of 'proxy' has the name of "
                "the issuer of certificate 'proxy' but the signature does not verify");
}

static void chain_member_that_is_not_a_ca_is_refused(void **state)
{
    struct spec s = leaf_spec();
    X509 *fake_issuer, *x;

    (void)state;
    s.cn = "Not A CA";
    fake_issuer = issue(other_key, root, ca_key, s);
    x = issue(leaf_key, fake_issuer, other_key, leaf_spec());
    expect_fail(join(pem(x), pem(fake_issuer), NULL), key_pem, CV_EINVALID_CERT,
                "certificate 2 ('/CN=Not A CA') in the chain of 'proxy' is not a CA (no "
                "basicConstraints CA:TRUE)");
}

/* --- refused: purpose ----------------------------------------------------------------------- */

static void missing_server_auth_is_refused(void **state)
{
    struct spec s = leaf_spec();

    (void)state;
    s.eku = "clientAuth";
    expect_fail(direct_leaf(leaf_key, s), key_pem, CV_EINVALID_CERT,
                "certificate 'proxy' is not for serverAuth: its extended key usage lacks it; have "
                "it reissued with extendedKeyUsage = serverAuth");
}

static void missing_client_auth_is_refused_for_a_client(void **state)
{
    struct spec s = leaf_spec();

    (void)state;
    s.eku = "serverAuth";
    expect_fail_as(CERT_PURPOSE_CLIENT, direct_leaf(leaf_key, s), key_pem, CV_EINVALID_CERT,
                   "certificate 'proxy' is not for clientAuth");
    expect_ok(direct_leaf(leaf_key, s), key_pem);
}

/* RFC 5280 4.2.1.12: without the extension the key may serve any purpose (openssl x509 -req). */
static void missing_eku_extension_is_no_restriction(void **state)
{
    struct spec s = leaf_spec();
    const char *cert;

    (void)state;
    s.eku = NULL;
    cert = direct_leaf(leaf_key, s);
    assert_false(X509_get_extension_flags(expect_ok(cert, key_pem)->leaf) & EXFLAG_XKUSAGE);
    expect_ok_as(CERT_PURPOSE_CLIENT, cert, key_pem);
}

/* What the issue saw: the CA's own certificate (and key) given as metrics_exporter's. */
static void ca_certificate_as_the_leaf_is_refused_naming_both_problems(void **state)
{
    struct spec s = ca_spec("Ops CA");

    (void)state;
    s.ku = "critical,keyCertSign,cRLSign";
    expect_fail(pem(issue(leaf_key, NULL, NULL, s)), key_pem, CV_EINVALID_CERT,
                "certificate 'proxy' is a CA certificate (basicConstraints CA:TRUE) and its key "
                "usage lacks digitalSignature (it has keyCertSign, cRLSign), so TLS clients "
                "refuse it as a server's certificate: issue a leaf certificate from that CA "
                "(basicConstraints = CA:FALSE, keyUsage = digitalSignature) and give that");
    expect_fail_as(CERT_PURPOSE_CLIENT, pem(issue(leaf_key, NULL, NULL, s)), key_pem,
                   CV_EINVALID_CERT, "as a client's certificate");
    /* An RSA CA: the fix names the key usages an RSA server certificate has. */
    expect_fail(pem(issue(rsa_key, NULL, NULL, s)), NULL, CV_EINVALID_CERT,
                "keyUsage = digitalSignature, keyEncipherment)");
}

/* An intermediate with its chain, as if the operator picked the wrong file from the CA's zip. */
static void ca_certificate_with_its_chain_is_refused(void **state)
{
    (void)state;
    expect_fail(join(inter_pem, root_pem, NULL), NULL, CV_EINVALID_CERT,
                "certificate 'proxy' is a CA certificate (basicConstraints CA:TRUE), which TLS "
                "clients refuse as a server's certificate: issue a leaf certificate "
                "(basicConstraints = CA:FALSE) from that CA and give that");
}

/* What openssl req -x509 makes by default: CA:TRUE, and no key usage. */
static void self_signed_ca_certificate_is_refused_with_the_openssl_fix(void **state)
{
    struct spec s = leaf_spec();

    (void)state;
    s.ca = true;
    expect_fail(pem(issue(leaf_key, NULL, NULL, s)), key_pem, CV_EINVALID_CERT,
                "certificate 'proxy' is a CA certificate (basicConstraints CA:TRUE), which TLS "
                "clients refuse as a server's certificate: make a self-signed leaf with openssl "
                "req -x509 -addext basicConstraints=critical,CA:FALSE, or issue a leaf from a CA");
}

static void key_usage_without_digital_signature_is_refused(void **state)
{
    struct spec s = leaf_spec();

    (void)state;
    s.ku = "critical,keyEncipherment";
    expect_fail(direct_leaf(rsa_key, s), NULL, CV_EINVALID_CERT,
                "certificate 'proxy' has a key usage without digitalSignature (it has "
                "keyEncipherment), so TLS clients refuse it (unsuitable certificate purpose): "
                "have it reissued with keyUsage = digitalSignature, keyEncipherment");
    s.ku = "keyAgreement";
    expect_fail(direct_leaf(leaf_key, s), key_pem, CV_EINVALID_CERT,
                "(it has keyAgreement), so TLS clients refuse it (unsuitable certificate purpose): "
                "have it reissued with keyUsage = digitalSignature");
}

/* What CAs issue for TLS servers, and no extension at all (RFC 5280 4.2.1.3), are accepted. */
static void key_usages_with_digital_signature_are_accepted(void **state)
{
    struct spec s = leaf_spec();

    (void)state;
    s.ku = "critical,digitalSignature";
    expect_ok(direct_leaf(leaf_key, s), key_pem);
    expect_ok_as(CERT_PURPOSE_CLIENT, direct_leaf(leaf_key, s), key_pem);
    s.ku = "critical,digitalSignature,keyEncipherment";
    expect_ok(direct_leaf(rsa_key, s), NULL);
    s.ku = "digitalSignature,keyAgreement";
    expect_ok(direct_leaf(leaf_key, s), key_pem);
    s.ku = NULL;
    s.eku = NULL;
    assert_false(X509_get_extension_flags(expect_ok(direct_leaf(leaf_key, s), key_pem)->leaf) &
                 EXFLAG_KUSAGE);
}

static void leaf_in_a_bundle_is_refused(void **state)
{
    (void)state;
    expect_fail_as(CERT_PURPOSE_CA_BUNDLE, join(root_pem, leaf_pem, NULL), NULL, CV_EINVALID_CERT,
                   "CA certificate 2 ('/CN=proxy.example.com') of 'proxy' is not a CA (no "
                   "basicConstraints CA:TRUE); a trusted CA bundle holds only CA certificates");
}

/* --- the call itself ------------------------------------------------------------------------ */

static void short_error_buffer_is_cut_not_overrun(void **state)
{
    char tiny[12];
    struct x509_checked *c = NULL;

    (void)state;
    memset(tiny, 'x', sizeof(tiny));
    assert_int_equal(
        x509_check("proxy", CERT_PURPOSE_SERVER, "junk", 4, NULL, 0, now, &c, tiny, sizeof(tiny)),
        CV_EINVALID_CERT);
    assert_string_equal(tiny, "certificate");
    assert_null(c);
}

static void failures_leave_no_openssl_errors(void **state)
{
    (void)state;
    ERR_clear_error();
    /* These make OpenSSL queue errors internally (bad DER, failed signature checks). */
    expect_fail(join(leaf_pem, root_pem, NULL), NULL, CV_EINVALID_CERT, "did not issue");
    expect_fail("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", NULL,
                CV_EINVALID_CERT, "is not a valid certificate");
    assert_int_equal(ERR_peek_error(), 0);
    expect_ok(leaf_pem, key_pem);
}

int main(void)
{
#define T(f) cmocka_unit_test_teardown(f, free_kept)
    const struct CMUnitTest tests[] = {
        T(leaf_and_key_are_accepted),
        T(leaf_chain_and_rsa_key_are_accepted),
        T(ec_key_with_parameters_block_is_accepted),
        T(crlf_is_accepted),
        T(bom_blanks_and_no_final_newline_are_accepted),
        T(text_before_blocks_is_accepted),
        T(absent_key_is_accepted_for_a_leaf),
        T(p384_and_p521_are_accepted),
        T(sha1_self_signed_root_is_accepted_in_a_chain),
        T(client_auth_only_is_accepted_for_a_client),
        T(warning_when_ten_days_are_left),
        T(no_warning_with_thirty_one_days_left),
        T(warning_names_an_intermediate_expiring_first),
        T(fingerprint_is_upper_case_sha256_pairs),
        T(bundle_of_two_cas_is_accepted),
        T(der_is_refused_with_a_conversion),
        T(der_key_is_refused_with_a_conversion),
        T(pkcs12_is_refused_with_the_pkcs12_commands),
        T(json_escaped_newlines_are_refused),
        T(text_that_is_not_pem_is_refused),
        T(binary_that_is_not_der_is_refused),
        T(utf16_is_refused_with_a_conversion),
        T(bytes_that_are_not_utf8_are_refused),
        T(a_named_file_is_in_the_message_and_the_fix),
        T(empty_input_is_refused),
        T(oversized_input_is_refused),
        T(trailing_garbage_is_refused),
        T(truncated_block_is_refused),
        T(missing_begin_line_is_refused),
        T(damaged_base64_is_refused),
        T(undecodable_extension_is_refused),
        T(private_key_among_certificates_is_refused),
        T(other_blocks_among_certificates_are_refused),
        T(certificate_or_public_key_as_the_key_is_refused),
        T(damaged_key_is_refused),
        T(several_keys_are_refused),
        T(encrypted_pkcs8_key_is_refused),
        T(encrypted_traditional_key_is_refused),
        T(key_of_another_certificate_is_refused),
        T(key_for_a_bundle_is_refused),
        T(expired_certificate_is_refused_with_its_date),
        T(expired_intermediate_is_refused),
        T(expired_ca_in_a_bundle_is_refused),
        T(certificate_not_yet_valid_is_refused),
        T(rsa_1024_is_refused),
        T(unsupported_curves_are_refused),
        T(ed25519_is_refused),
        T(sha1_signature_is_refused),
        T(md5_signature_is_refused),
        T(sha1_self_signed_leaf_is_refused),
        T(sha1_intermediate_is_refused),
        T(chain_out_of_order_is_refused),
        T(chain_longer_than_the_limit_is_refused),
        T(chain_that_does_not_link_is_refused),
        T(same_name_other_key_is_refused),
        T(chain_member_that_is_not_a_ca_is_refused),
        T(missing_server_auth_is_refused),
        T(missing_client_auth_is_refused_for_a_client),
        T(missing_eku_extension_is_no_restriction),
        T(ca_certificate_as_the_leaf_is_refused_naming_both_problems),
        T(ca_certificate_with_its_chain_is_refused),
        T(self_signed_ca_certificate_is_refused_with_the_openssl_fix),
        T(key_usage_without_digital_signature_is_refused),
        T(key_usages_with_digital_signature_are_accepted),
        T(leaf_in_a_bundle_is_refused),
        T(short_error_buffer_is_cut_not_overrun),
        T(failures_leave_no_openssl_errors),
    };
#undef T

    return cmocka_run_group_tests(tests, setup, teardown);
}
