/* Unit tests for the values a cluster keeps in etcd (agent/cluster/spec.c): keys, a
 * certificate's value with its sealed key, meta's schema, the policy's and a status's limits.
 * What another node wrote is outside input: anything malformed is refused with its reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "spec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void keys_name_the_certificate_and_refuse_slashes(void **unused)
{
    char buf[128], list[SPEC_MAX_NAME];

    (void)unused;
    assert_int_equal(spec_key_cert(buf, sizeof(buf), "/certvisor/t/", NULL, "proxy"),
                     (int)strlen("/certvisor/t/spec/certs/proxy/current"));
    assert_string_equal(buf, "/certvisor/t/spec/certs/proxy/current");
    spec_key_cert(buf, sizeof(buf), "/certvisor/t/", "n2", "ccs_internode_encryption");
    assert_string_equal(buf, "/certvisor/t/spec/nodecerts/n2/ccs_internode_encryption/current");
    assert_int_equal(spec_key_cert(buf, sizeof(buf), "/certvisor/t/", NULL, "../x/y"), -1);
    assert_int_equal(spec_key_cert(buf, sizeof(buf), "/certvisor/t/", "a/b", "proxy"), -1);
    assert_int_equal(spec_key_cert(buf, 10, "/certvisor/t/", NULL, "proxy"), -1);
    spec_key_trust(buf, sizeof(buf), "/certvisor/t/", "peers");
    assert_string_equal(buf, "/certvisor/t/spec/trust/peers/current");
    assert_int_equal(spec_trust_list_of(buf, "/certvisor/t/", list, sizeof(list)), 0);
    assert_string_equal(list, "peers");
    assert_int_equal(spec_trust_list_of("/certvisor/t/spec/trust/a/b/current", "/certvisor/t/",
                                        list, sizeof(list)),
                     -1);
    assert_int_equal(
        spec_trust_list_of("/certvisor/t/spec/trust//current", "/certvisor/t/", list, 64), -1);
    assert_int_equal(spec_trust_list_of("/certvisor/t/spec/policy", "/certvisor/t/", list, 64), -1);
    assert_int_equal(spec_key_status(buf, sizeof(buf), "/certvisor/t/", "n1"),
                     (int)strlen("/certvisor/t/status/n1"));
}

static void a_certificate_round_trips_with_its_sealed_key(void **unused)
{
    unsigned char sealed[40];
    struct spec_cert cert = {.generation = 7,
                             .cert_pem = "-----BEGIN CERTIFICATE-----\nAA\n",
                             .cert_len = 31,
                             .sealed_key = sealed,
                             .sealed_len = sizeof(sealed)};
    struct spec_cert back;
    char err[256], *text;

    (void)unused;
    for (size_t i = 0; i < sizeof(sealed); i++)
        sealed[i] = (unsigned char)(i * 7);
    strcpy(cert.name, "proxy");
    strcpy(cert.origin, "user-provided");
    strcpy(cert.fingerprint, "AB:CD");
    strcpy(cert.published_by, "n2");
    text = spec_cert_encode(&cert);
    assert_non_null(text);
    assert_int_equal(spec_cert_decode(text, strlen(text), &back, err, sizeof(err)), 0);
    assert_string_equal(back.name, "proxy");
    assert_int_equal(back.generation, 7);
    assert_string_equal(back.cert_pem, cert.cert_pem);
    assert_int_equal(back.sealed_len, sizeof(sealed));
    assert_memory_equal(back.sealed_key, sealed, sizeof(sealed));
    assert_false(back.removed);
    spec_cert_clear(&back);
    free(text);
}

static void malformed_certificates_are_refused_with_the_field(void **unused)
{
    static const struct {
        const char *text, *expected;
    } cases[] = {
        {"[1]", "not a JSON object"},
        {"{\"name\":\"proxy\"}", "'cert' is missing"},
        {"{\"name\":\"\",\"cert\":\"x\"}", "'name' is empty"},
        {"{\"name\":\"proxy\",\"cert\":\"x\",\"key\":\"***\"}", "'key' is not base64"},
        {"{\"name\":\"proxy\",\"cert\":\"x\",\"generation\":-1}", "'generation' is not"},
        {"{\"name\":\"proxy\",\"cert\":\"x\",\"removed\":1}", "'removed' is not true or false"},
        {"{\"name\":\"proxy\",\"name\":\"api\",\"cert\":\"x\"}", "not JSON"},
    };
    struct spec_cert cert;
    char err[256];

    (void)unused;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(
            spec_cert_decode(cases[i].text, strlen(cases[i].text), &cert, err, sizeof(err)),
            -EINVAL);
        assert_null(cert.cert_pem);
        if (!strstr(err, cases[i].expected))
            fail_msg("case %zu: '%s' does not say '%s'", i, err, cases[i].expected);
    }
}

static void meta_of_another_schema_says_to_upgrade(void **unused)
{
    const char *text = "{\"schema\":2,\"uid\":\"u\",\"check\":\"c\"}";
    struct spec_meta meta;
    char err[256];

    (void)unused;
    assert_int_equal(spec_meta_decode(text, strlen(text), &meta, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "upgrade"));
}

static void the_policy_and_a_status_have_limits(void **unused)
{
    static struct spec_policy policy;
    struct spec_status status;
    char text[8192], err[256];
    size_t at = 0;

    (void)unused;
    at += (size_t)snprintf(text, sizeof(text), "{");
    for (int i = 0; i <= SPEC_MAX_POLICY_SETTINGS; i++)
        at += (size_t)snprintf(text + at, sizeof(text) - at, "%s\"s%d\":\"v\"", i ? "," : "", i);
    snprintf(text + at, sizeof(text) - at, "}");
    assert_int_equal(spec_policy_decode(text, strlen(text), &policy, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "over the limit"));
    snprintf(text, sizeof(text), "{\"min_data_TLS_version\":\"1.3\"}");
    assert_int_equal(spec_policy_decode(text, strlen(text), &policy, err, sizeof(err)), 0);
    assert_int_equal(policy.n, 1);
    snprintf(text, sizeof(text), "{\"node\":\"n1\",\"revision\":9,\"result\":\"maybe\"}");
    assert_int_equal(spec_status_decode(text, strlen(text), &status, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "neither applied nor failed"));
    snprintf(text, sizeof(text),
             "{\"node\":\"n1\",\"revision\":9,\"result\":\"failed\","
             "\"reason\":\"proxy did not come back\"}");
    assert_int_equal(spec_status_decode(text, strlen(text), &status, err, sizeof(err)), 0);
    assert_int_equal(status.result, SPEC_FAILED);
    assert_string_equal(status.reason, "proxy did not come back");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keys_name_the_certificate_and_refuse_slashes),
        cmocka_unit_test(a_certificate_round_trips_with_its_sealed_key),
        cmocka_unit_test(malformed_certificates_are_refused_with_the_field),
        cmocka_unit_test(meta_of_another_schema_says_to_upgrade),
        cmocka_unit_test(the_policy_and_a_status_have_limits),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
