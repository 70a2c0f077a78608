/* Unit tests for x509_make: keys, the cluster CA, leaves, CSRs and PEM, checked with OpenSSL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cv_error.h"
#include "x509_make.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#define DAY (24 * 60 * 60)

static const char *const dns_names[] = {"cluster.example.com", "*.cluster.example.com",
                                        "internal.cluster.example.com", "node1",
                                        "extra.example.org"};
static const char *const ip_addresses[] = {"127.0.0.1", "::1", "10.0.0.7"};

static const struct x509_subject_spec node_spec = {
    .common_name = "node1.cluster.example.com",
    .dns_names = dns_names,
    .n_dns_names = sizeof(dns_names) / sizeof(dns_names[0]),
    .ip_addresses = ip_addresses,
    .n_ip_addresses = sizeof(ip_addresses) / sizeof(ip_addresses[0]),
};

static const unsigned char loopback4[4] = {127, 0, 0, 1};
static const unsigned char loopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
static const unsigned char private4[4] = {10, 0, 0, 7};

/* One EC CA for the whole file: the tests only read it. */
struct ca {
    EVP_PKEY *key;
    X509 *cert;
};

static int make_group_ca(void **state)
{
    struct ca *ca = calloc(1, sizeof(*ca));
    char err[512];

    if (!ca || x509_make_key(KEY_EC_P256, &ca->key, err, sizeof(err)) != 0 ||
        x509_make_ca(ca->key, "certvisor cluster CA", 3650, &ca->cert, err, sizeof(err)) != 0) {
        free(ca);
        return -1;
    }
    *state = ca;
    return 0;
}

static int free_group_ca(void **state)
{
    struct ca *ca = *state;

    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
    free(ca);
    return 0;
}

static EVP_PKEY *new_key(enum key_type type)
{
    EVP_PKEY *key = NULL;
    char err[512] = "";

    assert_int_equal(x509_make_key(type, &key, err, sizeof(err)), 0);
    assert_non_null(key);
    return key;
}

static X509 *new_leaf(const struct ca *ca, EVP_PKEY *key, const struct x509_subject_spec *spec,
                      int days)
{
    X509 *leaf = NULL;
    char err[512] = "";

    if (x509_make_leaf(ca->cert, ca->key, key, spec, days, &leaf, err, sizeof(err)) != 0)
        fail_msg("x509_make_leaf: %s", err);
    return leaf;
}

/* Seconds from now until t (negative when t is past). */
static long seconds_until(const ASN1_TIME *t)
{
    int days, seconds;

    assert_int_equal(ASN1_TIME_diff(&days, &seconds, NULL, t), 1);
    return (long)days * DAY + seconds;
}

static void assert_valid_for_days(X509 *cert, int days)
{
    long before = seconds_until(X509_get0_notBefore(cert));
    long after = seconds_until(X509_get0_notAfter(cert));

    assert_true(before <= -3600 + 60 && before >= -3600 - 60); /* backdated by an hour */
    assert_true(labs(after - (long)days * DAY) <= 2 * 3600);
}

static void assert_common_name(const X509_NAME *name, const char *expected)
{
    char cn[256];

    assert_true(X509_NAME_get_text_by_NID(name, NID_commonName, cn, sizeof(cn)) > 0);
    assert_string_equal(cn, expected);
}

static bool san_has_dns(const GENERAL_NAMES *gens, const char *dns)
{
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *gen = sk_GENERAL_NAME_value(gens, i);

        if (gen->type == GEN_DNS && ASN1_STRING_length(gen->d.dNSName) == (int)strlen(dns) &&
            memcmp(ASN1_STRING_get0_data(gen->d.dNSName), dns, strlen(dns)) == 0)
            return true;
    }
    return false;
}

static bool san_has_ip(const GENERAL_NAMES *gens, const unsigned char *bytes, int len)
{
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *gen = sk_GENERAL_NAME_value(gens, i);

        if (gen->type == GEN_IPADD && ASN1_STRING_length(gen->d.iPAddress) == len &&
            memcmp(ASN1_STRING_get0_data(gen->d.iPAddress), bytes, (size_t)len) == 0)
            return true;
    }
    return false;
}

/* Every name of node_spec, and nothing else. */
static void assert_node_sans(const GENERAL_NAMES *gens)
{
    assert_non_null(gens);
    for (size_t i = 0; i < node_spec.n_dns_names; i++)
        assert_true(san_has_dns(gens, node_spec.dns_names[i]));
    assert_true(san_has_ip(gens, loopback4, sizeof(loopback4)));
    assert_true(san_has_ip(gens, loopback6, sizeof(loopback6)));
    assert_true(san_has_ip(gens, private4, sizeof(private4)));
    assert_int_equal(sk_GENERAL_NAME_num(gens),
                     (int)(node_spec.n_dns_names + node_spec.n_ip_addresses));
}

static void assert_serial_positive_128(X509 *cert)
{
    BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);

    assert_non_null(serial);
    assert_false(BN_is_negative(serial));
    assert_false(BN_is_zero(serial));
    assert_true(BN_num_bits(serial) <= 127);
    assert_true(BN_num_bits(serial) > 64); /* 2^-63 chance of a false failure */
    BN_free(serial);
}

static void assert_sha256(X509 *cert)
{
    int md_nid = NID_undef;

    assert_int_equal(X509_get_signature_info(cert, &md_nid, NULL, NULL, NULL), 1);
    assert_int_equal(md_nid, NID_sha256);
}

static void key_types_round_trip_and_reject_others(void **state)
{
    const enum key_type all[] = {KEY_EC_P256, KEY_RSA_2048, KEY_RSA_3072, KEY_RSA_4096};
    enum key_type type = KEY_RSA_4096;

    (void)state;
    assert_string_equal(key_type_word(KEY_EC_P256), "ecdsa-p256");
    assert_string_equal(key_type_word(KEY_RSA_2048), "rsa-2048");
    assert_string_equal(key_type_word(KEY_RSA_3072), "rsa-3072");
    assert_string_equal(key_type_word(KEY_RSA_4096), "rsa-4096");
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        assert_int_equal(key_type_parse(key_type_word(all[i]), &type), 0);
        assert_int_equal(type, all[i]);
    }
    type = KEY_RSA_3072;
    assert_int_equal(key_type_parse("rsa-1024", &type), -EINVAL);
    assert_int_equal(key_type_parse("rsa", &type), -EINVAL);
    assert_int_equal(key_type_parse("ecdsa-p384", &type), -EINVAL);
    assert_int_equal(key_type_parse("", &type), -EINVAL);
    assert_int_equal(key_type_parse(NULL, &type), -EINVAL);
    assert_int_equal(type, KEY_RSA_3072); /* untouched on failure */
}

static void ec_key_is_p256(void **state)
{
    EVP_PKEY *key = new_key(KEY_EC_P256);
    char group[64];
    size_t len = 0;

    (void)state;
    assert_true(EVP_PKEY_is_a(key, "EC"));
    assert_int_equal(EVP_PKEY_get_group_name(key, group, sizeof(group), &len), 1);
    assert_int_equal(OBJ_sn2nid(group), NID_X9_62_prime256v1);
    assert_int_equal(EVP_PKEY_get_bits(key), 256);
    EVP_PKEY_free(key);
}

static void rsa_keys_have_their_sizes(void **state)
{
    const struct {
        enum key_type type;
        int bits;
    } sizes[] = {{KEY_RSA_2048, 2048}, {KEY_RSA_3072, 3072}, {KEY_RSA_4096, 4096}};

    (void)state;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        EVP_PKEY *key = new_key(sizes[i].type);

        assert_true(EVP_PKEY_is_a(key, "RSA"));
        assert_int_equal(EVP_PKEY_get_bits(key), sizes[i].bits);
        EVP_PKEY_free(key);
    }
}

static void unknown_key_type_is_refused_with_a_message(void **state)
{
    EVP_PKEY *key = NULL;
    char err[256] = "";

    (void)state;
    assert_int_equal(x509_make_key((enum key_type)42, &key, err, sizeof(err)), CV_EINVALID_CERT);
    assert_null(key);
    assert_non_null(strstr(err, "42"));
}

static void ca_is_a_self_signed_critical_ca(void **state)
{
    struct ca *ca = *state;
    BASIC_CONSTRAINTS *bc;
    ASN1_BIT_STRING *usage;
    int crit = -1;

    assert_common_name(X509_get_subject_name(ca->cert), "certvisor cluster CA");
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(ca->cert), X509_get_issuer_name(ca->cert)),
                     0);
    assert_int_equal(X509_get_version(ca->cert), X509_VERSION_3);
    bc = X509_get_ext_d2i(ca->cert, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_true(bc->ca);
    assert_int_equal(crit, 1);
    BASIC_CONSTRAINTS_free(bc);
    usage = X509_get_ext_d2i(ca->cert, NID_key_usage, &crit, NULL);
    assert_non_null(usage);
    assert_int_equal(crit, 1);
    ASN1_BIT_STRING_free(usage);
    assert_true(X509_get_key_usage(ca->cert) & KU_KEY_CERT_SIGN);
    assert_true(X509_get_key_usage(ca->cert) & KU_CRL_SIGN);
    assert_non_null(X509_get0_subject_key_id(ca->cert));
    assert_int_equal(X509_check_ca(ca->cert), 1);
    assert_int_equal(X509_self_signed(ca->cert, 1), 1);
    assert_int_equal(X509_verify(ca->cert, ca->key), 1);
    assert_int_equal(X509_check_private_key(ca->cert, ca->key), 1);
    assert_serial_positive_128(ca->cert);
    assert_sha256(ca->cert);
    assert_valid_for_days(ca->cert, 3650);
}

static void ca_refuses_bad_arguments(void **state)
{
    struct ca *ca = *state;
    X509 *cert = NULL;
    char err[256] = "";

    assert_int_equal(x509_make_ca(ca->key, "CA", 0, &cert, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "0 days"));
    assert_int_equal(x509_make_ca(ca->key, "", 365, &cert, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "common name"));
    assert_null(cert);
}

static void ec_leaf_is_issued_by_the_ca(void **state)
{
    struct ca *ca = *state;
    EVP_PKEY *key = new_key(KEY_EC_P256);
    X509 *leaf = new_leaf(ca, key, &node_spec, 365);
    BASIC_CONSTRAINTS *bc;
    GENERAL_NAMES *gens;

    assert_int_equal(X509_verify(leaf, ca->key), 1);
    assert_int_equal(X509_verify(leaf, key), 0); /* not self-signed */
    assert_int_equal(X509_check_private_key(leaf, key), 1);
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(leaf), X509_get_subject_name(ca->cert)), 0);
    assert_int_equal(X509_check_issued(ca->cert, leaf), X509_V_OK);
    assert_common_name(X509_get_subject_name(leaf), node_spec.common_name);
    assert_int_equal(X509_get_version(leaf), X509_VERSION_3);

    bc = X509_get_ext_d2i(leaf, NID_basic_constraints, NULL, NULL);
    assert_non_null(bc);
    assert_false(bc->ca);
    BASIC_CONSTRAINTS_free(bc);
    assert_int_equal(X509_check_ca(leaf), 0);

    assert_true(X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE);
    assert_true(X509_get_extended_key_usage(leaf) & XKU_SSL_SERVER);
    assert_true(X509_get_extended_key_usage(leaf) & XKU_SSL_CLIENT);
    assert_true(X509_get_extension_flags(leaf) & EXFLAG_KUSAGE);
    assert_true(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE);
    assert_false(X509_get_key_usage(leaf) & KU_KEY_ENCIPHERMENT);
    assert_false(X509_get_key_usage(leaf) & KU_KEY_CERT_SIGN);

    gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    assert_node_sans(gens);
    GENERAL_NAMES_free(gens);

    assert_non_null(X509_get0_subject_key_id(leaf));
    assert_non_null(X509_get0_authority_key_id(leaf));
    assert_int_equal(
        ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(leaf), X509_get0_subject_key_id(ca->cert)),
        0);
    assert_serial_positive_128(leaf);
    assert_sha256(leaf);
    assert_int_equal(X509_get_signature_nid(leaf), NID_ecdsa_with_SHA256);
    assert_valid_for_days(leaf, 365);
    X509_free(leaf);
    EVP_PKEY_free(key);
}

static void rsa_leaf_from_an_rsa_ca_adds_key_encipherment(void **state)
{
    struct ca rsa_ca = {new_key(KEY_RSA_2048), NULL};
    EVP_PKEY *key = new_key(KEY_RSA_2048);
    char err[512] = "";
    X509 *leaf;

    (void)state;
    assert_int_equal(x509_make_ca(rsa_ca.key, "RSA CA", 30, &rsa_ca.cert, err, sizeof(err)), 0);
    assert_int_equal(X509_get_signature_nid(rsa_ca.cert), NID_sha256WithRSAEncryption);
    leaf = new_leaf(&rsa_ca, key, &node_spec, 90);
    assert_int_equal(X509_verify(leaf, rsa_ca.key), 1);
    assert_true(X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE);
    assert_true(X509_get_key_usage(leaf) & KU_KEY_ENCIPHERMENT);
    assert_int_equal(X509_get_signature_nid(leaf), NID_sha256WithRSAEncryption);
    assert_valid_for_days(leaf, 90);
    X509_free(leaf);
    X509_free(rsa_ca.cert);
    EVP_PKEY_free(rsa_ca.key);
    EVP_PKEY_free(key);
}

static void two_leaves_get_different_serials(void **state)
{
    struct ca *ca = *state;
    EVP_PKEY *key = new_key(KEY_EC_P256);
    X509 *a = new_leaf(ca, key, &node_spec, 365);
    X509 *b = new_leaf(ca, key, &node_spec, 365);

    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(a), X509_get0_serialNumber(b)), 0);
    assert_int_not_equal(
        ASN1_INTEGER_cmp(X509_get0_serialNumber(a), X509_get0_serialNumber(ca->cert)), 0);
    X509_free(a);
    X509_free(b);
    EVP_PKEY_free(key);
}

/* A full chain verification, as a TLS peer runs it; returns X509_V_OK or the failure. */
static int verify_against(X509 *ca_cert, X509 *leaf, int purpose, const char *host, const char *ip)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_VERIFY_PARAM *param;
    int ok, error;

    assert_non_null(store);
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_add_cert(store, ca_cert), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
    assert_int_equal(X509_STORE_CTX_set_purpose(ctx, purpose), 1);
    param = X509_STORE_CTX_get0_param(ctx);
    if (host)
        assert_int_equal(X509_VERIFY_PARAM_set1_host(param, host, 0), 1);
    if (ip)
        assert_int_equal(X509_VERIFY_PARAM_set1_ip_asc(param, ip), 1);
    ok = X509_verify_cert(ctx);
    error = X509_STORE_CTX_get_error(ctx);
    assert_int_equal(ok == 1, error == X509_V_OK);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return error;
}

static void leaf_verifies_against_the_ca_as_server_and_client(void **state)
{
    struct ca *ca = *state;
    EVP_PKEY *key = new_key(KEY_EC_P256);
    X509 *leaf = new_leaf(ca, key, &node_spec, 365);
    EVP_PKEY *other_key = new_key(KEY_EC_P256);
    X509 *other_ca = NULL;
    char err[512] = "";

    assert_int_equal(verify_against(ca->cert, leaf, X509_PURPOSE_SSL_SERVER, NULL, NULL),
                     X509_V_OK);
    assert_int_equal(verify_against(ca->cert, leaf, X509_PURPOSE_SSL_CLIENT, NULL, NULL),
                     X509_V_OK);
    assert_int_equal(
        verify_against(ca->cert, leaf, X509_PURPOSE_SSL_SERVER, "db7.cluster.example.com", NULL),
        X509_V_OK);
    assert_int_equal(verify_against(ca->cert, leaf, X509_PURPOSE_SSL_SERVER, "node1", NULL),
                     X509_V_OK);
    assert_int_equal(verify_against(ca->cert, leaf, X509_PURPOSE_SSL_SERVER, NULL, "::1"),
                     X509_V_OK);
    assert_int_equal(verify_against(ca->cert, leaf, X509_PURPOSE_SSL_SERVER, NULL, "127.0.0.1"),
                     X509_V_OK);
    /* The same checks do fail: a name or address the certificate lacks, another CA. */
    assert_int_equal(
        verify_against(ca->cert, leaf, X509_PURPOSE_SSL_SERVER, "other.example.com", NULL),
        X509_V_ERR_HOSTNAME_MISMATCH);
    assert_int_equal(verify_against(ca->cert, leaf, X509_PURPOSE_SSL_SERVER, NULL, "::2"),
                     X509_V_ERR_IP_ADDRESS_MISMATCH);
    assert_int_equal(
        x509_make_ca(other_key, "certvisor cluster CA", 365, &other_ca, err, sizeof(err)), 0);
    assert_int_equal(verify_against(other_ca, leaf, X509_PURPOSE_SSL_SERVER, NULL, NULL),
                     X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    X509_free(other_ca);
    EVP_PKEY_free(other_key);
    X509_free(leaf);
    EVP_PKEY_free(key);
}

static void leaf_refuses_a_mismatched_ca_key_or_a_non_ca(void **state)
{
    struct ca *ca = *state;
    EVP_PKEY *key = new_key(KEY_EC_P256);
    X509 *leaf = new_leaf(ca, key, &node_spec, 365);
    struct ca wrong_key = {key, ca->cert}, not_a_ca = {key, leaf};
    X509 *cert = NULL;
    char err[512] = "";

    assert_int_equal(x509_make_leaf(wrong_key.cert, wrong_key.key, key, &node_spec, 365, &cert, err,
                                    sizeof(err)),
                     CV_EINVALID_CERT);
    assert_non_null(strstr(err, "CA key does not match"));
    assert_int_equal(
        x509_make_leaf(not_a_ca.cert, not_a_ca.key, key, &node_spec, 365, &cert, err, sizeof(err)),
        CV_EINVALID_CERT);
    assert_non_null(strstr(err, "not a CA"));
    assert_null(cert);
    assert_int_equal(ERR_peek_error(), 0); /* the queue went into the message */
    X509_free(leaf);
    EVP_PKEY_free(key);
}

static void leaf_refuses_bad_names_and_days(void **state)
{
    struct ca *ca = *state;
    EVP_PKEY *key = new_key(KEY_EC_P256);
    const char *bad_ip[] = {"127.0.0.256"};
    const char *bad_dns[] = {"a.example.com,DNS:evil.example.com"};
    const char *long_cn =
        "a-very-long-label-that-goes-on.and-on-and-on.cluster.example.com.example";
    struct x509_subject_spec spec = {.common_name = "node1"};
    X509 *cert = NULL;
    char err[512] = "";

    spec.ip_addresses = bad_ip;
    spec.n_ip_addresses = 1;
    assert_int_equal(x509_make_leaf(ca->cert, ca->key, key, &spec, 365, &cert, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "invalid IP address \"127.0.0.256\""));
    spec.n_ip_addresses = 0;
    spec.dns_names = bad_dns;
    spec.n_dns_names = 1;
    assert_int_equal(x509_make_leaf(ca->cert, ca->key, key, &spec, 365, &cert, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "invalid DNS name"));
    spec.n_dns_names = 0;
    assert_int_equal(x509_make_leaf(ca->cert, ca->key, key, &spec, -1, &cert, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "-1 days"));
    spec.common_name = long_cn;
    assert_int_equal(x509_make_leaf(ca->cert, ca->key, key, &spec, 365, &cert, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "at most 64"));
    assert_null(cert);
    EVP_PKEY_free(key);
}

static void duplicate_names_appear_once(void **state)
{
    struct ca *ca = *state;
    EVP_PKEY *key = new_key(KEY_EC_P256);
    const char *dns[] = {"node1", "node1", "node2"};
    const char *ips[] = {"::1", "0:0:0:0:0:0:0:1", "127.0.0.1"};
    const struct x509_subject_spec spec = {"node1", dns, 3, ips, 3};
    X509 *leaf = new_leaf(ca, key, &spec, 365);
    GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);

    assert_non_null(gens);
    assert_int_equal(sk_GENERAL_NAME_num(gens), 4);
    assert_true(san_has_dns(gens, "node1"));
    assert_true(san_has_dns(gens, "node2"));
    assert_true(san_has_ip(gens, loopback6, sizeof(loopback6)));
    assert_true(san_has_ip(gens, loopback4, sizeof(loopback4)));
    GENERAL_NAMES_free(gens);
    X509_free(leaf);
    EVP_PKEY_free(key);
}

/* The extension list a CSR asks for, and one extension of it decoded. */
static void *csr_ext_d2i(X509_REQ *csr, int nid, int *ret_count)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(csr);
    void *value;

    assert_non_null(exts);
    *ret_count = sk_X509_EXTENSION_num(exts);
    value = X509V3_get_d2i(exts, nid, NULL, NULL);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return value;
}

static void csr_carries_key_names_and_usages(void **state)
{
    EVP_PKEY *key = new_key(KEY_EC_P256);
    X509_REQ *csr = NULL;
    EXTENDED_KEY_USAGE *eku;
    GENERAL_NAMES *gens;
    EVP_PKEY *pub;
    char err[512] = "";
    int count = 0;

    (void)state;
    assert_int_equal(x509_make_csr(key, &node_spec, NULL, &csr, err, sizeof(err)), 0);
    assert_int_equal(X509_REQ_verify(csr, key), 1);
    pub = X509_REQ_get0_pubkey(csr);
    assert_int_equal(EVP_PKEY_eq(pub, key), 1);
    assert_int_equal(X509_REQ_get_version(csr), X509_REQ_VERSION_1);
    assert_common_name(X509_REQ_get_subject_name(csr), node_spec.common_name);
    assert_int_equal(X509_NAME_entry_count(X509_REQ_get_subject_name(csr)), 1);
    assert_int_equal(X509_REQ_get_signature_nid(csr), NID_ecdsa_with_SHA256);

    gens = csr_ext_d2i(csr, NID_subject_alt_name, &count);
    assert_int_equal(count, 2);
    assert_node_sans(gens);
    GENERAL_NAMES_free(gens);
    eku = csr_ext_d2i(csr, NID_ext_key_usage, &count);
    assert_non_null(eku);
    assert_int_equal(sk_ASN1_OBJECT_num(eku), 2);
    assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)), NID_server_auth);
    assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 1)), NID_client_auth);
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
}

static void assert_entry(const X509_NAME *name, int index, int nid, const char *value)
{
    const X509_NAME_ENTRY *entry = X509_NAME_get_entry(name, index);
    const ASN1_STRING *data;

    assert_non_null(entry);
    assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry)), nid);
    data = X509_NAME_ENTRY_get_data(entry);
    assert_int_equal(ASN1_STRING_length(data), (int)strlen(value));
    assert_memory_equal(ASN1_STRING_get0_data(data), value, strlen(value));
}

static void csr_subject_dn_replaces_the_cn(void **state)
{
    EVP_PKEY *key = new_key(KEY_RSA_2048);
    X509_REQ *csr = NULL;
    const X509_NAME *name;
    char err[512] = "";

    (void)state;
    assert_int_equal(x509_make_csr(key, &node_spec, "/C=DE/O=Example\\/Ops/CN=proxy.example.com",
                                   &csr, err, sizeof(err)),
                     0);
    assert_int_equal(X509_REQ_verify(csr, key), 1);
    assert_int_equal(X509_REQ_get_signature_nid(csr), NID_sha256WithRSAEncryption);
    name = X509_REQ_get_subject_name(csr);
    assert_int_equal(X509_NAME_entry_count(name), 3);
    assert_entry(name, 0, NID_countryName, "DE");
    assert_entry(name, 1, NID_organizationName, "Example/Ops");
    assert_entry(name, 2, NID_commonName, "proxy.example.com");
    X509_REQ_free(csr);
    EVP_PKEY_free(key);
}

static void csr_refuses_malformed_subjects_with_a_message(void **state)
{
    const struct {
        const char *dn;
        const char *message;
    } bad[] = {
        {"O=Example/CN=host", "must start with '/'"},
        {"/O=Example/Oops", "component 2 (\"Oops\") is not key=value"},
        {"/O=", "O has an empty value"},
        {"/=Example", "component 1 (\"=Example\") is not key=value"},
        {"//CN=host", "component 1 is empty"},
        {"/CN=host/", "component 2 is empty"},
        {"/", "component 1 is empty"},
        {"/CN=host\\", "ends with '\\'"},
        {"/NOPE=x", "unknown attribute \"NOPE\""},
        {"/C=Germany", "cannot set C=\"Germany\": error:"}, /* with OpenSSL's reason */
    };
    EVP_PKEY *key = new_key(KEY_EC_P256);

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        X509_REQ *csr = NULL;
        char err[512] = "";

        assert_int_equal(x509_make_csr(key, &node_spec, bad[i].dn, &csr, err, sizeof(err)),
                         -EINVAL);
        assert_null(csr);
        if (!strstr(err, bad[i].message) || !strstr(err, bad[i].dn))
            fail_msg("subject \"%s\": message \"%s\" lacks \"%s\"", bad[i].dn, err, bad[i].message);
    }
    EVP_PKEY_free(key);
}

static void pem_cert_and_csr_read_back(void **state)
{
    struct ca *ca = *state;
    EVP_PKEY *key = new_key(KEY_EC_P256);
    X509 *leaf = new_leaf(ca, key, &node_spec, 365);
    X509_REQ *csr = NULL, *csr_back;
    char *cert_pem = x509_pem_of_cert(leaf), *csr_pem;
    char err[512] = "";
    X509 *back;
    BIO *bio;

    assert_non_null(cert_pem);
    assert_true(strncmp(cert_pem, "-----BEGIN CERTIFICATE-----\n", 28) == 0);
    bio = BIO_new_mem_buf(cert_pem, -1);
    back = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    assert_non_null(back);
    assert_int_equal(X509_cmp(back, leaf), 0);
    X509_free(back);
    BIO_free(bio);

    assert_int_equal(x509_make_csr(key, &node_spec, NULL, &csr, err, sizeof(err)), 0);
    csr_pem = x509_pem_of_csr(csr);
    assert_non_null(csr_pem);
    assert_true(strncmp(csr_pem, "-----BEGIN CERTIFICATE REQUEST-----\n", 36) == 0);
    bio = BIO_new_mem_buf(csr_pem, -1);
    csr_back = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    assert_non_null(csr_back);
    assert_int_equal(X509_REQ_verify(csr_back, key), 1);
    assert_int_equal(
        X509_NAME_cmp(X509_REQ_get_subject_name(csr_back), X509_REQ_get_subject_name(csr)), 0);
    X509_REQ_free(csr_back);
    BIO_free(bio);

    assert_null(x509_pem_of_cert(NULL));
    assert_null(x509_pem_of_csr(NULL));
    free(cert_pem);
    free(csr_pem);
    X509_REQ_free(csr);
    X509_free(leaf);
    EVP_PKEY_free(key);
}

static void pem_key_is_pkcs8_and_reads_back(void **state)
{
    const enum key_type types[] = {KEY_EC_P256, KEY_RSA_2048};

    (void)state;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        EVP_PKEY *key = new_key(types[i]), *back;
        char *pem = x509_pem_of_key(key);
        X509_REQ *csr = NULL;
        char err[512] = "";
        BIO *bio;

        assert_non_null(pem);
        assert_true(strncmp(pem, "-----BEGIN PRIVATE KEY-----\n", 28) == 0);
        assert_null(strstr(pem, "ENCRYPTED"));
        bio = BIO_new_mem_buf(pem, -1);
        back = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
        assert_non_null(back);
        assert_int_equal(EVP_PKEY_eq(back, key), 1);
        /* The private half too: what the copy signs, the original's public half verifies. */
        assert_int_equal(x509_make_csr(back, &node_spec, NULL, &csr, err, sizeof(err)), 0);
        assert_int_equal(X509_REQ_verify(csr, key), 1);
        X509_REQ_free(csr);
        EVP_PKEY_free(back);
        BIO_free(bio);
        OPENSSL_clear_free(pem, strlen(pem));
        EVP_PKEY_free(key);
    }
    assert_null(x509_pem_of_key(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(key_types_round_trip_and_reject_others),
        cmocka_unit_test(ec_key_is_p256),
        cmocka_unit_test(rsa_keys_have_their_sizes),
        cmocka_unit_test(unknown_key_type_is_refused_with_a_message),
        cmocka_unit_test(ca_is_a_self_signed_critical_ca),
        cmocka_unit_test(ca_refuses_bad_arguments),
        cmocka_unit_test(ec_leaf_is_issued_by_the_ca),
        cmocka_unit_test(rsa_leaf_from_an_rsa_ca_adds_key_encipherment),
        cmocka_unit_test(two_leaves_get_different_serials),
        cmocka_unit_test(leaf_verifies_against_the_ca_as_server_and_client),
        cmocka_unit_test(leaf_refuses_a_mismatched_ca_key_or_a_non_ca),
        cmocka_unit_test(leaf_refuses_bad_names_and_days),
        cmocka_unit_test(duplicate_names_appear_once),
        cmocka_unit_test(csr_carries_key_names_and_usages),
        cmocka_unit_test(csr_subject_dn_replaces_the_cn),
        cmocka_unit_test(csr_refuses_malformed_subjects_with_a_message),
        cmocka_unit_test(pem_cert_and_csr_read_back),
        cmocka_unit_test(pem_key_is_pkcs8_and_reads_back),
    };
    return cmocka_run_group_tests_name("x509_make", tests, make_group_ca, free_group_ca);
}
