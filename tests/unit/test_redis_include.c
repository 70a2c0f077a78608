/* Unit tests for the reader of the redis.conf include certvisord renders (lib/redis_include.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "redis_include.h"
#include "render.h"
#include "unit_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BASE                                                                                       \
    "tls-port 12101\n"                                                                             \
    "tls-cert-file \"/c.pem\"\n"                                                                   \
    "tls-key-file \"/k.pem\"\n"

static struct redis_include *parse_ok(const char *text)
{
    struct redis_include *include = NULL;
    char err[512] = "";

    if (redis_include_parse(text, &include, err, sizeof(err)) != 0)
        fail_msg("did not parse: %s\n%s", err, text);
    return include;
}

/* Parses text expecting a refusal whose message holds needle. */
static void parse_refused(const char *text, const char *needle)
{
    struct redis_include *include = NULL;
    char err[512] = "";

    assert_int_equal(redis_include_parse(text, &include, err, sizeof(err)), -EINVAL);
    assert_null(include);
    if (!strstr(err, needle))
        fail_msg("message '%s' does not say '%s'", err, needle);
}

static void reads_what_render_redis_writes(void **state)
{
    struct redis_include *include =
        parse_ok("# Rendered by certvisord for data_internode_encryption; changes here are "
                 "overwritten.\n" BASE "tls-ca-cert-file \"/ca.pem\"\n"
                 "tls-protocols \"TLSv1.2 TLSv1.3\"\n"
                 "tls-ciphers \"DEFAULT:@SECLEVEL=0\"\n"
                 "tls-auth-clients no\n");

    (void)state;
    assert_int_equal(include->n, 7);
    assert_string_equal(redis_include_get(include, "tls-port"), "12101");
    assert_string_equal(redis_include_get(include, "tls-cert-file"), "/c.pem");
    assert_string_equal(redis_include_get(include, "tls-protocols"), "TLSv1.2 TLSv1.3");
    assert_string_equal(redis_include_get(include, "tls-ciphers"), "DEFAULT:@SECLEVEL=0");
    assert_string_equal(redis_include_get(include, "tls-auth-clients"), "no");
    assert_int_equal(include->entries[6].line, 8);
    assert_null(redis_include_get(include, "tls-ciphersuites"));
    redis_include_free(include);
}

static void unquotes_like_sdssplitargs(void **state)
{
    struct redis_include *include =
        parse_ok("  \t" BASE "tls-ciphers \"a\\\"b\\\\c\\x41\\x7f\\n\\t\"  \r\n"
                 "TLS-CIPHERSUITES 'it\\'s \"x\"'\n"
                 "tls-protocols TLSv1\"\"\n"
                 "tls-ca-cert-file \"\"\n");

    (void)state;
    assert_string_equal(redis_include_get(include, "tls-ciphers"), "a\"b\\cA\x7f\n\t");
    /* Directive names are case-insensitive in Redis: stored in lower case. */
    assert_string_equal(redis_include_get(include, "tls-ciphersuites"), "it's \"x\"");
    assert_string_equal(redis_include_get(include, "tls-protocols"), "TLSv1");
    assert_string_equal(redis_include_get(include, "tls-ca-cert-file"), "");
    redis_include_free(include);
}

static void a_repeated_directive_keeps_the_last_value(void **state)
{
    struct redis_include *include = parse_ok(BASE "tls-port 1\ntls-port 2\n");

    (void)state;
    assert_int_equal(include->n, 3);
    assert_string_equal(redis_include_get(include, "tls-port"), "2");
    assert_int_equal(include->entries[0].line, 5);
    redis_include_free(include);
}

static void refuses_what_redis_or_the_reload_cannot_take(void **state)
{
    (void)state;
    parse_refused(BASE "tls-ciphers \"abc\n", "line 4: has unbalanced quotes");
    parse_refused(BASE "tls-ciphers 'abc\n", "line 4: has unbalanced quotes");
    parse_refused(BASE "tls-ciphers \"a\"b\n", "line 4: has a closing quote followed");
    parse_refused(BASE "tls-protocols TLSv1.2 TLSv1.3\n",
                  "line 4: tls-protocols takes exactly one");
    parse_refused(BASE "tls-protocols\n", "tls-protocols takes exactly one value");
    parse_refused(BASE "port 6379\n", "line 4: 'port' is not a tls-* setting");
    parse_refused(BASE "tls-ciphers \"a\\x00b\"\n", "line 4: tls-ciphers has a value with a NUL");
    parse_refused("tls-port 1\ntls-cert-file /c\n", "no tls-key-file");
    parse_refused("tls-port 1\ntls-cert-file /c\ntls-key-file \"\"\n", "empty tls-key-file");
    parse_refused("", "no tls-port");
}

/* The CONFIG SET resets what the include leaves out, so a removed setting goes from Redis too. */
static void config_set_pairs_reset_what_the_include_omits(void **state)
{
    struct redis_include *include = parse_ok(BASE "tls-protocols \"TLSv1.3\"\n");
    const char **pairs = NULL;
    int n = redis_include_config_set_pairs(include, &pairs);
    char joined[1024] = "";

    (void)state;
    assert_int_equal(n, 2 * (4 + 4));
    for (int i = 0; i < n; i += 2)
        snprintf(joined + strlen(joined), sizeof(joined) - strlen(joined), "%s=%s;", pairs[i],
                 pairs[i + 1]);
    assert_string_equal(joined, "tls-port=12101;tls-cert-file=/c.pem;tls-key-file=/k.pem;"
                                "tls-protocols=TLSv1.3;tls-ca-cert-file=;tls-ciphers=;"
                                "tls-ciphersuites=;tls-auth-clients=yes;");
    free(pairs);
    redis_include_free(include);
}

/* Round trip: whatever render_text() writes for the redis format reads back as the same values. */
static void reads_back_render_text_with_awkward_paths(void **state)
{
    struct tls_spec spec = {.certificate = "data_internode_encryption",
                            .plane = TLS_PLANE_DATA,
                            .format = RENDER_REDIS,
                            .port = 12101};
    struct render_files files = {.cert_file = "/gen 1/\"cert\".pem",
                                 .key_file = "/gen\\1/key\x01.pem",
                                 .ca_file = "/ca's.pem"};
    struct policy policy;
    struct redis_include *include;
    char *text = NULL;

    (void)state;
    policy_init(&policy);
    assert_int_equal(render_text(&spec, &files, &policy, &text), 0);
    include = parse_ok(text);
    assert_string_equal(redis_include_get(include, "tls-cert-file"), files.cert_file);
    assert_string_equal(redis_include_get(include, "tls-key-file"), files.key_file);
    assert_string_equal(redis_include_get(include, "tls-ca-cert-file"), files.ca_file);
    assert_string_equal(redis_include_get(include, "tls-port"), "12101");
    assert_non_null(redis_include_get(include, "tls-protocols"));
    redis_include_free(include);
    free(text);
    policy_clear(&policy);
}

static void loads_a_file_and_names_it_in_errors(void **state)
{
    struct redis_include *include = NULL;
    char dir[128], path[256], err[512] = "";

    (void)state;
    unit_make_tempdir(dir, sizeof(dir), "redis-include");
    unit_write_file(dir, "ok.conf", BASE);
    unit_write_file(dir, "bad.conf", BASE "save 60 1\n");
    snprintf(path, sizeof(path), "%s/ok.conf", dir);
    assert_int_equal(redis_include_load(path, &include, err, sizeof(err)), 0);
    assert_string_equal(redis_include_get(include, "tls-key-file"), "/k.pem");
    redis_include_free(include);
    include = NULL;
    snprintf(path, sizeof(path), "%s/bad.conf", dir);
    assert_int_equal(redis_include_load(path, &include, err, sizeof(err)), -EINVAL);
    assert_null(include);
    assert_non_null(strstr(err, "bad.conf: line 4: 'save' is not a tls-* setting"));
    snprintf(path, sizeof(path), "%s/missing.conf", dir);
    assert_int_equal(redis_include_load(path, &include, err, sizeof(err)), -ENOENT);
    assert_non_null(strstr(err, "cannot open"));
    unit_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_what_render_redis_writes),
        cmocka_unit_test(unquotes_like_sdssplitargs),
        cmocka_unit_test(a_repeated_directive_keeps_the_last_value),
        cmocka_unit_test(refuses_what_redis_or_the_reload_cannot_take),
        cmocka_unit_test(config_set_pairs_reset_what_the_include_omits),
        cmocka_unit_test(reads_back_render_text_with_awkward_paths),
        cmocka_unit_test(loads_a_file_and_names_it_in_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
