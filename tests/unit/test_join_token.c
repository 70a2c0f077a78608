/* Unit tests for join tokens (agent/cluster/join_token.c) and their record in the store
 * (spec.c): the token's shape, its secret's hash, --ttl, the CA's public key hash, and a
 * record another node wrote, which is outside input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "join_token.h"
#include "spec.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void generated_tokens_have_the_shape_and_differ(void **unused)
{
    char id[JOIN_TOKEN_ID_LEN + 1], secret[JOIN_TOKEN_SECRET_LEN + 1];
    char id2[JOIN_TOKEN_ID_LEN + 1], secret2[JOIN_TOKEN_SECRET_LEN + 1];
    char text[64], pid[JOIN_TOKEN_ID_LEN + 1], psecret[JOIN_TOKEN_SECRET_LEN + 1], err[256];

    (void)unused;
    assert_int_equal(join_token_generate(id, secret), 0);
    assert_int_equal(join_token_generate(id2, secret2), 0);
    assert_true(join_token_id_valid(id));
    assert_int_equal(strlen(secret), JOIN_TOKEN_SECRET_LEN);
    assert_string_not_equal(secret, secret2);
    snprintf(text, sizeof(text), "%s.%s", id, secret);
    assert_int_equal(join_token_parse(text, pid, psecret, err, sizeof(err)), 0);
    assert_string_equal(pid, id);
    assert_string_equal(psecret, secret);
}

static void malformed_tokens_are_refused_without_echoing_them(void **unused)
{
    static const char *const bad[] = {
        "",
        "abcdef",
        "abcdef.0123456789abcde",   /* a short secret */
        "abcdef.0123456789abcdef0", /* a long one */
        "ABCDEF.0123456789abcdef",  /* upper case */
        "abcdef:0123456789abcdef",
        "abc-ef.0123456789abcdef",
        "abcdef.0123456789abcde\n",
    };
    char id[JOIN_TOKEN_ID_LEN + 1], secret[JOIN_TOKEN_SECRET_LEN + 1], err[256];

    (void)unused;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(join_token_parse(bad[i], id, secret, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "<id>.<secret>"));
        assert_null(strstr(err, "0123456789"));
    }
    assert_false(join_token_id_valid("abcde"));
    assert_false(join_token_id_valid("abcdefg"));
    assert_false(join_token_id_valid(NULL));
}

static void the_secret_is_matched_by_its_hash(void **unused)
{
    char hex[65];

    (void)unused;
    join_token_secret_sha256("0123456789abcdef", hex);
    /* printf 0123456789abcdef | sha256sum */
    assert_string_equal(hex, "9f9f5111f7b27a781f1f1ddde5ebc2dd2b796bfc7365c9c28b548e564176929f");
    assert_true(join_token_secret_matches("0123456789abcdef", hex));
    assert_false(join_token_secret_matches("0123456789abcdeg", hex));
    assert_false(join_token_secret_matches("0123456789abcdef", "short"));
}

static void lifetimes_take_units_and_bounds(void **unused)
{
    static const struct {
        const char *text;
        long seconds;
    } good[] = {{"60", 60}, {"90s", 90}, {"30m", 1800}, {"1h", 3600}, {"7d", 604800}};
    static const char *const bad[] = {"",     "59",  "59s", "8d",       "1w", "h",
                                      "1.5h", "-1h", "1h ", "99999999", "1hh"};
    char err[256];
    long seconds;

    (void)unused;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(join_ttl_parse(good[i].text, &seconds, err, sizeof(err)), 0);
        assert_int_equal(seconds, good[i].seconds);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(join_ttl_parse(bad[i], &seconds, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "from 60 s to 7 days"));
    }
}

static void the_ca_hash_is_of_its_public_key(void **unused)
{
    /* A P-256 CA; its hash as kubeadm and 'openssl x509 -pubkey | openssl pkey -pubin
     * -outform DER | sha256sum' compute it. */
    static const char ca[] = "-----BEGIN CERTIFICATE-----\n"
                             "MIIBfjCCASOgAwIBAgIUQy3+d3dWoDEUlMOMIkvZYhfyh/4wCgYIKoZIzj0EAwIw\n"
                             "FDESMBAGA1UEAwwJdW5pdC10ZXN0MB4XDTI2MTIwNjIxMjE0MFoXDTM2MTIwMzIx\n"
                             "MjE0MFowFDESMBAGA1UEAwwJdW5pdC10ZXN0MFkwEwYHKoZIzj0CAQYIKoZIzj0D\n"
                             "AQcDQgAEyKTeXt5j1W2Db9s8N0VSso1gbF8ImwJVd7qyFXBY60La2pc91qWCRzb4\n"
                             "J6IltLle+oprSURcFzvwHgjA/JPXXKNTMFEwHQYDVR0OBBYEFAXtB2z5l6yYqL+m\n"
                             "KPXLmHxexMHcMB8GA1UdIwQYMBaAFAXtB2z5l6yYqL+mKPXLmHxexMHcMA8GA1Ud\n"
                             "EwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSQAwRgIhAI/NR9Z6GXrBgu8Ec2cRfxoj\n"
                             "2/f2HwDZ3smlGlWuG2oFAiEAv2zZuz723X6OBUb/d+iNQcQ2Kaj5nCR1FTad955D\n"
                             "Ad0=\n"
                             "-----END CERTIFICATE-----\n";
    char hash[JOIN_CA_HASH_TEXT_LEN + 1], err[256];

    (void)unused;
    assert_int_equal(join_ca_cert_hash(ca, sizeof(ca) - 1, hash, sizeof(hash), err, sizeof(err)),
                     0);
    assert_string_equal(hash,
                        "sha256:e1d4199de095e83ebefbce51f81ca68749d804cba6bb73d7c492891ba2035809");
    assert_int_equal(
        join_ca_cert_hash("not a certificate", 17, hash, sizeof(hash), err, sizeof(err)), -EINVAL);
    assert_int_equal(join_ca_cert_hash(ca, sizeof(ca) - 1, hash, 10, err, sizeof(err)), -EINVAL);
}

static void a_record_round_trips_and_bad_ones_are_refused(void **unused)
{
    struct spec_join join = {.id = "abc123",
                             .secret_sha256 = "9f9f5111f7b27a781f1f1ddde5ebc2dd2b796bfc7365c9c28b5"
                                              "48e564176929f",
                             .created = 100,
                             .expires = 3700,
                             .created_by = "uid 0",
                             .description = "node 4"},
                     back;
    char *text = spec_join_encode(&join), err[256], key[128];

    (void)unused;
    assert_non_null(text);
    assert_int_equal(spec_join_decode(text, strlen(text), &back, err, sizeof(err)), 0);
    assert_memory_equal(&join, &back, offsetof(struct spec_join, description));
    assert_string_equal(back.description, "node 4");
    free(text);
    assert_int_equal(spec_key_join(key, sizeof(key), "/certvisor/t/", "abc123"),
                     (int)strlen("/certvisor/t/join/abc123"));
    assert_int_equal(spec_key_join(key, sizeof(key), "/certvisor/t/", "../x"), -1);
#define BAD(json, field)                                                                           \
    assert_int_equal(spec_join_decode(json, strlen(json), &back, err, sizeof(err)), -EINVAL);      \
    assert_non_null(strstr(err, field))
    BAD("{\"id\":\"ABC123\",\"secret_sha256\":\"00\",\"created\":1,\"expires\":2}", "'id'");
    BAD("{\"id\":\"abc123\",\"secret_sha256\":\"00\",\"created\":1,\"expires\":2}",
        "'secret_sha256'");
    BAD("{\"id\":\"abc123\",\"secret_sha256\":\"9f9f5111f7b27a781f1f1ddde5ebc2dd2b796bfc7365c9c28"
        "b548e564176929f\",\"created\":5,\"expires\":2}",
        "expires before");
    BAD("[1]", "not a JSON object");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(generated_tokens_have_the_shape_and_differ),
        cmocka_unit_test(malformed_tokens_are_refused_without_echoing_them),
        cmocka_unit_test(the_secret_is_matched_by_its_hash),
        cmocka_unit_test(lifetimes_take_units_and_bounds),
        cmocka_unit_test(the_ca_hash_is_of_its_public_key),
        cmocka_unit_test(a_record_round_trips_and_bad_ones_are_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
