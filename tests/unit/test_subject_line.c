/* Unit tests for certificate subject lines: parsing, the canonical text, matching certificates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "subject_line.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct subject_line *parse_ok(const char *text)
{
    struct subject_line *line = NULL;
    char err[512] = "";

    if (subject_line_parse(text, &line, err, sizeof(err)) != 0)
        fail_msg("'%s' did not parse: %s", text, err);
    return line;
}

/* Parses text expecting a refusal whose message holds needle. */
static void parse_refused(const char *text, const char *needle)
{
    struct subject_line *line = NULL;
    char err[512] = "";

    assert_int_equal(subject_line_parse(text, &line, err, sizeof(err)), -EINVAL);
    assert_null(line);
    if (!strstr(err, needle))
        fail_msg("'%s': message '%s' does not say '%s'", text, err, needle);
}

static void parses_the_redis_enterprise_form(void **state)
{
    struct subject_line *line = parse_ok("CN=ops, OU=Platform, O=Example, L=Austin, ST=TX, C=US");
    char *text;

    (void)state;
    assert_int_equal(line->n, 6);
    assert_int_equal(line->attrs[0].nid, NID_commonName);
    assert_string_equal(line->attrs[0].value, "ops");
    assert_int_equal(line->attrs[4].nid, NID_stateOrProvinceName);
    assert_string_equal(subject_line_cn(line), "ops");
    text = subject_line_format(line);
    assert_string_equal(text, "CN=ops, OU=Platform, O=Example, L=Austin, ST=TX, C=US");
    free(text);
    subject_line_free(line);
}

static void types_any_case_blanks_and_escapes(void **state)
{
    struct subject_line *line =
        parse_ok("  commonName = Ops Team ,ou=A\\, B,  emailAddress=ops@example.com,o=\\2B1\\ ");
    char *text;

    (void)state;
    assert_int_equal(line->n, 4);
    assert_string_equal(line->attrs[0].value, "Ops Team");
    assert_int_equal(line->attrs[1].nid, NID_organizationalUnitName);
    assert_string_equal(line->attrs[1].value, "A, B");
    assert_int_equal(line->attrs[2].nid, NID_pkcs9_emailAddress);
    assert_string_equal(line->attrs[3].value, "+1 "); /* an escaped blank stays */
    text = subject_line_format(line);
    assert_string_equal(text, "CN=Ops Team, OU=A\\, B, emailAddress=ops@example.com, O=\\+1\\ ");
    subject_line_free(line);
    /* The canonical text reads back to the same attributes. */
    line = parse_ok(text);
    assert_string_equal(line->attrs[1].value, "A, B");
    assert_string_equal(line->attrs[3].value, "+1 ");
    free(text);
    subject_line_free(line);
}

/* Found by tests/fuzz/fuzz_subject_line.c: the users file keeps the canonical text. */
static void a_value_may_end_with_an_escaped_comma(void **state)
{
    struct subject_line *line = parse_ok("O=Example, CN=ops\\, ");
    char *text;

    (void)state;
    assert_string_equal(subject_line_cn(line), "ops,");
    text = subject_line_format(line);
    assert_string_equal(text, "O=Example, CN=ops\\,");
    subject_line_free(line);
    line = parse_ok(text); /* was refused: "the subject line ends with a comma" */
    assert_string_equal(subject_line_cn(line), "ops,");
    free(text);
    subject_line_free(line);
    parse_refused("O=Example, CN=ops\\,,", "ends with a comma");
}

static void garbage_is_refused_with_the_reason(void **state)
{
    (void)state;
    parse_refused("", "empty");
    parse_refused("ops", "expected TYPE=value");
    parse_refused("CN=ops, OU", "expected TYPE=value");
    parse_refused("CN=ops,", "ends with a comma");
    parse_refused("CN=", "CN has an empty value");
    parse_refused("XX=1, CN=ops", "'XX' is not an attribute type");
    parse_refused("sha256=1, CN=ops", "'sha256' is not an attribute type");
    parse_refused("O=Example", "no CN");
    parse_refused("CN=a, CN=b", "more than one CN");
    parse_refused("CN=a+OU=b", "multi-valued");
    parse_refused("CN=a, C=USA", "two-letter country code");
    parse_refused("CN=a\\q", "escapes nothing");
    parse_refused("CN=a\\00b", "NUL");
    parse_refused("CN=a\\0Ab", "control character");
    parse_refused("CN=a\\FFb", "not UTF-8");
    parse_refused("CN=a\nb", "control character");
    parse_refused("C*N=a", "cannot be part of an attribute type");
}

static void limits(void **state)
{
    char text[SUBJECT_LINE_MAX + 64];
    size_t used = (size_t)snprintf(text, sizeof(text), "CN=x");

    (void)state;
    for (int i = 0; i < SUBJECT_LINE_MAX_ATTRS; i++)
        used += (size_t)snprintf(text + used, sizeof(text) - used, ", OU=%d", i);
    parse_refused(text, "more than 32 attributes");
    memset(text, 'a', sizeof(text) - 1);
    memcpy(text, "CN=", 3);
    text[SUBJECT_LINE_MAX + 1] = '\0';
    parse_refused(text, "longer than 1024");
}

/* A self-signed certificate with subject entries (pairs of type, value) and SANs ("DNS:..."). */
static X509 *make_cert(const char *const *entries, const char *sans)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509V3_CTX ctx;

    assert_non_null(key);
    for (size_t i = 0; entries[i]; i += 2)
        assert_int_equal(X509_NAME_add_entry_by_txt(name, entries[i], MBSTRING_UTF8,
                                                    (const unsigned char *)entries[i + 1], -1, -1,
                                                    0),
                         1);
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_subject_name(cert, name);
    X509_set_issuer_name(cert, name);
    X509_set_pubkey(cert, key);
    if (sans) {
        X509_EXTENSION *ext;

        X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, sans);
        assert_non_null(ext);
        X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
    }
    assert_true(X509_sign(cert, key, EVP_sha256()) > 0);
    X509_NAME_free(name);
    EVP_PKEY_free(key);
    return cert;
}

static bool matches(const char *text, X509 *cert, enum subject_match how)
{
    struct subject_line *line = parse_ok(text);
    bool result = subject_line_matches(line, cert, how);

    subject_line_free(line);
    return result;
}

static void full_subject_is_every_attribute_in_any_order(void **state)
{
    static const char *const ops[] = {"C",       "US", "ST",       "TX", "L",   "Austin", "O",
                                      "Example", "OU", "Platform", "CN", "ops", NULL};
    X509 *cert = make_cert(ops, "DNS:ops.example.com");

    (void)state;
    assert_true(matches("CN=ops, OU=Platform, O=Example, L=Austin, ST=TX, C=US", cert,
                        SUBJECT_MATCH_FULL_SUBJECT));
    assert_true(matches("C=US, ST=TX, L=Austin, O=Example, OU=Platform, CN=ops", cert,
                        SUBJECT_MATCH_FULL_SUBJECT));
    /* Values are case-sensitive; a missing or an extra attribute is a mismatch. */
    assert_false(matches("CN=OPS, OU=Platform, O=Example, L=Austin, ST=TX, C=US", cert,
                         SUBJECT_MATCH_FULL_SUBJECT));
    assert_false(matches("CN=ops, OU=Platform, O=Example, L=Austin, ST=TX", cert,
                         SUBJECT_MATCH_FULL_SUBJECT));
    assert_false(matches("CN=ops, OU=Platform, OU=Extra, O=Example, L=Austin, ST=TX, C=US", cert,
                         SUBJECT_MATCH_FULL_SUBJECT));
    assert_false(matches("CN=ops, OU=Other, O=Example, L=Austin, ST=TX, C=US", cert,
                         SUBJECT_MATCH_FULL_SUBJECT));
    /* san_cn looks at the CN only. */
    assert_true(matches("CN=ops, O=Somewhere Else", cert, SUBJECT_MATCH_SAN_CN));
    X509_free(cert);
}

static void full_subject_counts_repeated_attributes(void **state)
{
    static const char *const two_ous[] = {"CN", "ops", "OU", "A", "OU", "B", NULL};
    X509 *cert = make_cert(two_ous, NULL);

    (void)state;
    assert_true(matches("OU=B, CN=ops, OU=A", cert, SUBJECT_MATCH_FULL_SUBJECT));
    assert_false(matches("OU=A, CN=ops, OU=A", cert, SUBJECT_MATCH_FULL_SUBJECT));
    X509_free(cert);
}

static void san_cn_is_the_cn_or_a_dns_or_email_san(void **state)
{
    static const char *const cn[] = {"CN", "client-7", "O", "Example", NULL};
    X509 *cert = make_cert(cn, "DNS:Ops.Example.com, email:ops@example.com, IP:127.0.0.1");

    (void)state;
    assert_true(matches("CN=client-7", cert, SUBJECT_MATCH_SAN_CN));
    assert_false(matches("CN=Client-7", cert, SUBJECT_MATCH_SAN_CN));       /* the CN: exact */
    assert_true(matches("CN=ops.example.com", cert, SUBJECT_MATCH_SAN_CN)); /* DNS: any case */
    assert_true(matches("CN=ops@example.com", cert, SUBJECT_MATCH_SAN_CN));
    assert_false(matches("CN=127.0.0.1", cert, SUBJECT_MATCH_SAN_CN)); /* not an IP SAN */
    assert_false(matches("CN=example.com", cert, SUBJECT_MATCH_SAN_CN));
    assert_false(matches("CN=client-7", cert, SUBJECT_MATCH_FULL_SUBJECT));
    X509_free(cert);
}

static void validation_type_words(void **state)
{
    enum subject_match how;

    (void)state;
    assert_int_equal(subject_match_parse("san_cn", &how), 0);
    assert_int_equal(how, SUBJECT_MATCH_SAN_CN);
    assert_int_equal(subject_match_parse("full_subject", &how), 0);
    assert_int_equal(how, SUBJECT_MATCH_FULL_SUBJECT);
    assert_int_equal(subject_match_parse("disabled", &how), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_the_redis_enterprise_form),
        cmocka_unit_test(types_any_case_blanks_and_escapes),
        cmocka_unit_test(a_value_may_end_with_an_escaped_comma),
        cmocka_unit_test(garbage_is_refused_with_the_reason),
        cmocka_unit_test(limits),
        cmocka_unit_test(full_subject_is_every_attribute_in_any_order),
        cmocka_unit_test(full_subject_counts_repeated_attributes),
        cmocka_unit_test(san_cn_is_the_cn_or_a_dns_or_email_san),
        cmocka_unit_test(validation_type_words),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
