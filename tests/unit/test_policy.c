/* Unit tests for the TLS policy: names, defaults, validation against OpenSSL, sources, state file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include "cv_error.h"
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int check(const struct policy *p, enum policy_setting s, const char *value, char *err,
                 char *warn)
{
    return policy_check(p, s, value, err, 512, warn, 512);
}

static void names_and_older_spellings(void **state)
{
    (void)state;
    assert_int_equal(policy_setting_lookup("min_data_TLS_version"), POLICY_MIN_DATA_TLS_VERSION);
    assert_int_equal(policy_setting_lookup("MIN_DATA_TLS_VERSION"), POLICY_MIN_DATA_TLS_VERSION);
    assert_int_equal(policy_setting_lookup("cipher_suites"), POLICY_CONTROL_CIPHER_SUITES);
    assert_int_equal(policy_setting_lookup("sentinel_ssl_policy"), POLICY_SENTINEL_TLS_MODE);
    assert_int_equal(policy_setting_lookup("sentinel_tls_mode"), POLICY_SENTINEL_TLS_MODE);
    assert_int_equal(policy_setting_lookup("no_such_setting"), -1);
    for (int i = 0; i < POLICY_COUNT; i++)
        assert_int_equal(policy_setting_lookup(policy_setting_name(i)), i);
}

static void defaults_and_the_sentinel_following_data(void **state)
{
    struct policy p;
    char source[128];

    (void)state;
    policy_init(&p);
    assert_string_equal(policy_get(&p, POLICY_MIN_CONTROL_TLS_VERSION), "1.2");
    assert_string_equal(policy_get(&p, POLICY_MIN_SENTINEL_TLS_VERSION), "1.2");
    assert_string_equal(policy_get(&p, POLICY_SENTINEL_TLS_MODE), "allowed");
    assert_string_equal(policy_get(&p, POLICY_HTTP_SUPPORT), "enabled");
    assert_null(policy_get(&p, POLICY_DATA_CIPHER_LIST));
    assert_int_equal(
        policy_set(&p, POLICY_MIN_DATA_TLS_VERSION, "TLSv1.3", POLICY_FROM_RUNTIME, NULL, 0), 0);
    assert_string_equal(policy_get(&p, POLICY_MIN_DATA_TLS_VERSION), "1.3");
    assert_string_equal(policy_get(&p, POLICY_MIN_SENTINEL_TLS_VERSION), "1.3");
    policy_describe_source(&p, POLICY_MIN_SENTINEL_TLS_VERSION, source, sizeof(source));
    assert_string_equal(source, "follows min_data_TLS_version");
    assert_int_equal(policy_set(&p, POLICY_MIN_SENTINEL_TLS_VERSION, "1.2", POLICY_FROM_FILE,
                                "conf.d/policy.conf", 7),
                     0);
    assert_string_equal(policy_get(&p, POLICY_MIN_SENTINEL_TLS_VERSION), "1.2");
    policy_describe_source(&p, POLICY_MIN_SENTINEL_TLS_VERSION, source, sizeof(source));
    assert_string_equal(source, "conf.d/policy.conf:7");
    policy_describe_source(&p, POLICY_MIN_DATA_TLS_VERSION, source, sizeof(source));
    assert_string_equal(source, "runtime (state file)");
    policy_describe_source(&p, POLICY_HTTP_SUPPORT, source, sizeof(source));
    assert_string_equal(source, "default");
    policy_clear(&p);
}

static void versions_and_words_are_validated(void **state)
{
    struct policy p;
    char err[512], warn[512];

    (void)state;
    policy_init(&p);
    assert_int_equal(check(&p, POLICY_MIN_CONTROL_TLS_VERSION, "1.3", err, warn), 0);
    assert_int_equal(check(&p, POLICY_MIN_CONTROL_TLS_VERSION, "TLSv1.2", err, warn), 0);
    assert_string_equal(warn, "");
    assert_int_equal(check(&p, POLICY_MIN_CONTROL_TLS_VERSION, "1.4", err, warn), CV_EINVALID_TLS);
    assert_non_null(strstr(err, "'1.4' is not a TLS version (use 1, 1.1, 1.2 or 1.3)"));
    assert_int_equal(check(&p, POLICY_SENTINEL_TLS_MODE, "required", err, warn), 0);
    assert_int_equal(check(&p, POLICY_SENTINEL_TLS_MODE, "sometimes", err, warn), CV_EINVALID_TLS);
    assert_non_null(strstr(err, "'sometimes' is not allowed, required or disabled"));
    assert_int_equal(check(&p, POLICY_HTTP_SUPPORT, "disabled", err, warn), 0);
    assert_int_equal(check(&p, POLICY_HTTP_SUPPORT, "off", err, warn), CV_EINVALID_TLS);
    assert_int_equal(check(&p, POLICY_MTLS_CERTIFICATE_AUTHENTICATION, "enabled", err, warn), 0);
    /* A switch takes true and false, as the REST API's booleans (value_spellings_...). */
    assert_int_equal(check(&p, POLICY_MTLS_CERTIFICATE_AUTHENTICATION, "true", err, warn), 0);
    assert_int_equal(check(&p, POLICY_MTLS_CERTIFICATE_AUTHENTICATION, "yes", err, warn),
                     CV_EINVALID_TLS);
    assert_int_equal(check(&p, POLICY_MTLS_SUBJECT_VALIDATION_TYPE, "full_subject", err, warn), 0);
    assert_int_equal(check(&p, POLICY_MTLS_SUBJECT_VALIDATION_TYPE, "disabled", err, warn),
                     CV_EINVALID_TLS);
    assert_non_null(strstr(err, "set mtls_certificate_authentication disabled"));
    assert_int_equal(check(&p, POLICY_MTLS_SUBJECT_VALIDATION_TYPE, "SAN_CN", err, warn),
                     CV_EINVALID_TLS);
    assert_non_null(strstr(err, "'SAN_CN' is not san_cn or full_subject"));
    assert_string_equal(policy_get(&p, POLICY_MTLS_SUBJECT_VALIDATION_TYPE), "san_cn");
    assert_false(policy_enabled(&p, POLICY_MTLS_CERTIFICATE_AUTHENTICATION));
    policy_clear(&p);
}

/* Values are as case-blind as setting names, and every spelling is stored in one form. */
static void value_spellings_are_case_blind_and_stored_canonically(void **state)
{
    static const struct {
        enum policy_setting setting;
        const char *typed, *stored;
    } cases[] = {
        {POLICY_MIN_CONTROL_TLS_VERSION, "TLSv1.0", "1"},
        {POLICY_MIN_CONTROL_TLS_VERSION, "tlsv1", "1"},
        {POLICY_MIN_CONTROL_TLS_VERSION, "1.0", "1"},
        {POLICY_MIN_DATA_TLS_VERSION, "TLSV1.2", "1.2"},
        {POLICY_SENTINEL_TLS_MODE, "Disabled", "disabled"},
        {POLICY_SENTINEL_TLS_MODE, "REQUIRED", "required"},
        {POLICY_HTTP_SUPPORT, "false", "disabled"},
        {POLICY_HTTP_SUPPORT, "True", "enabled"},
        {POLICY_HTTP_SUPPORT, "Enabled", "enabled"},
    };
    struct policy p;
    char err[512], warn[512];

    (void)state;
    policy_init(&p);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (check(&p, cases[i].setting, cases[i].typed, err, warn) != 0)
            fail_msg("%s refused: %s", cases[i].typed, err);
        assert_int_equal(
            policy_set(&p, cases[i].setting, cases[i].typed, POLICY_FROM_RUNTIME, NULL, 0), 0);
        assert_string_equal(policy_get(&p, cases[i].setting), cases[i].stored);
    }
    assert_int_equal(check(&p, POLICY_MIN_CONTROL_TLS_VERSION, "TLSv1.4", err, warn),
                     CV_EINVALID_TLS);
    assert_int_equal(check(&p, POLICY_SENTINEL_TLS_MODE, "Sometimes", err, warn), CV_EINVALID_TLS);
    assert_int_equal(check(&p, POLICY_HTTP_SUPPORT, "0", err, warn), CV_EINVALID_TLS);
    assert_non_null(strstr(err, "http_support: '0' is not enabled or disabled (or true or false)"));
    policy_clear(&p);
}

static void old_versions_work_at_security_level_zero_with_a_loud_warning(void **state)
{
    struct policy p;
    char err[512], warn[512];

    (void)state;
    policy_init(&p);
    assert_int_equal(check(&p, POLICY_MIN_DATA_TLS_VERSION, "1", err, warn), 0);
    assert_non_null(strstr(warn, "obsolete and insecure"));
    assert_non_null(strstr(warn, "security level 0"));
    assert_int_equal(check(&p, POLICY_MIN_CONTROL_TLS_VERSION, "1.1", err, warn), 0);
    assert_non_null(strstr(warn, "TLS 1.1"));
    policy_clear(&p);
}

static void cipher_strings_must_parse_and_leave_a_usable_cipher(void **state)
{
    struct policy p;
    char err[512], warn[512];

    (void)state;
    policy_init(&p);
    /* The Mozilla intermediate list from the documents. */
    assert_int_equal(check(&p, POLICY_CONTROL_CIPHER_SUITES,
                           "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256", err, warn),
                     0);
    assert_int_equal(
        check(&p, POLICY_DATA_CIPHER_LIST, "HIGH:!aNULL:!eNULL:!EXPORT:!DES:!RC4:!MD5", err, warn),
        0);
    assert_int_equal(check(&p, POLICY_DATA_CIPHER_LIST, "NOT-A-CIPHER", err, warn),
                     CV_EINVALID_TLS);
    assert_non_null(strstr(err, "data plane: cipher list 'NOT-A-CIPHER' is not valid for OpenSSL"));
    /* Parses, but nothing in it works with TLS 1.2 (only SSLv3-era ciphers). */
    assert_int_equal(check(&p, POLICY_DATA_CIPHER_LIST, "aNULL", err, warn), CV_EINVALID_TLS);
    assert_non_null(strstr(err, "no cipher in 'aNULL' is usable with TLS 1.2"));
    assert_int_equal(
        check(&p, POLICY_CONTROL_CIPHER_SUITES_TLS_1_3, "TLS_AES_256_GCM_SHA384", err, warn), 0);
    assert_int_equal(check(&p, POLICY_CONTROL_CIPHER_SUITES_TLS_1_3, "TLS_NOPE", err, warn),
                     CV_EINVALID_TLS);
    assert_non_null(strstr(err, "TLS 1.3 cipher suites 'TLS_NOPE' are not valid"));
    assert_int_equal(check(&p, POLICY_SENTINEL_CIPHER_SUITES, "", err, warn), CV_EINVALID_TLS);
    policy_clear(&p);
}

static void a_version_change_is_checked_against_the_planes_ciphers(void **state)
{
    struct policy p;
    char err[512], warn[512];

    (void)state;
    policy_init(&p);
    /* Only RC4 and 3DES: usable with TLS 1.0 at level 0? Not in OpenSSL 3's default build;
     * what matters is that the check runs with the plane's other settings in place. */
    assert_int_equal(policy_set(&p, POLICY_CONTROL_CIPHER_SUITES, "ECDHE-RSA-AES128-SHA",
                                POLICY_FROM_RUNTIME, NULL, 0),
                     0);
    assert_int_equal(check(&p, POLICY_MIN_CONTROL_TLS_VERSION, "1", err, warn), 0);
    assert_int_equal(check(&p, POLICY_MIN_CONTROL_TLS_VERSION, "1.3", err, warn), 0);
    assert_int_equal(policy_check_all(&p, err, sizeof(err)), 0);
    /* The sentinel follows data: a data version change is checked for the sentinel too. */
    assert_int_equal(
        policy_set(&p, POLICY_SENTINEL_CIPHER_SUITES, "aNULL", POLICY_FROM_RUNTIME, NULL, 0), 0);
    assert_int_equal(check(&p, POLICY_MIN_DATA_TLS_VERSION, "1.2", err, warn), CV_EINVALID_TLS);
    assert_non_null(strstr(err, "sentinel plane: no cipher in 'aNULL'"));
    assert_int_equal(policy_check_all(&p, err, sizeof(err)), CV_EINVALID_TLS);
    policy_clear(&p);
}

static void the_state_file_round_trips_runtime_values_only(void **state)
{
    struct policy p, loaded;
    char dir[64], path[128], err[512];
    struct stat st;

    (void)state;
    unit_make_tempdir(dir, sizeof(dir), "policy");
    snprintf(path, sizeof(path), "%s/policy.json", dir);
    policy_init(&p);
    policy_init(&loaded);
    assert_int_equal(policy_state_load(&loaded, path, err, sizeof(err)), 0); /* none yet */
    policy_set(&p, POLICY_SENTINEL_TLS_MODE, "required", POLICY_FROM_RUNTIME, NULL, 0);
    policy_set(&p, POLICY_MIN_DATA_TLS_VERSION, "1.2", POLICY_FROM_RUNTIME, NULL, 0);
    policy_set(&p, POLICY_HTTP_SUPPORT, "disabled", POLICY_FROM_FILE, "x.conf", 3);
    assert_int_equal(policy_state_save(&p, path, err, sizeof(err)), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600); /* it may hold ldap_bind_password */
    assert_int_equal(policy_state_load(&loaded, path, err, sizeof(err)), 0);
    assert_string_equal(policy_get(&loaded, POLICY_SENTINEL_TLS_MODE), "required");
    assert_int_equal(loaded.values[POLICY_SENTINEL_TLS_MODE].source, POLICY_FROM_RUNTIME);
    assert_string_equal(policy_get(&loaded, POLICY_HTTP_SUPPORT), "enabled"); /* file, not saved */
    unit_write_file(dir, "policy.json", "{\"bogus\": \"1\"}");
    assert_int_equal(policy_state_load(&loaded, path, err, sizeof(err)), CV_EINVALID_TLS);
    assert_non_null(strstr(err, "'bogus' is not a policy setting"));
    unit_write_file(dir, "policy.json", "{\"http_support\": ");
    assert_int_equal(policy_state_load(&loaded, path, err, sizeof(err)), CV_EINVALID_TLS);
    /*
     * A runtime cipher list and the runtime minimum that goes with it, over a conf.d minimum of
     * 1.1 that the list could not serve: checked together, whatever their order in the file.
     */
    policy_clear(&loaded);
    policy_init(&loaded);
    policy_set(&loaded, POLICY_MIN_CONTROL_TLS_VERSION, "1.1", POLICY_FROM_FILE, "x.conf", 1);
    unit_write_file(dir, "policy.json",
                    "{\"control_cipher_suites\": \"ECDHE-ECDSA-AES128-GCM-SHA256\", "
                    "\"min_control_TLS_version\": \"1.3\"}");
    assert_int_equal(policy_state_load(&loaded, path, err, sizeof(err)), 0);
    assert_string_equal(policy_get(&loaded, POLICY_MIN_CONTROL_TLS_VERSION), "1.3");
    /* A list the final minimum cannot serve is still refused, naming the file. */
    unit_write_file(dir, "policy.json", "{\"control_cipher_suites\": \"aNULL\"}");
    assert_int_equal(policy_state_load(&loaded, path, err, sizeof(err)), 0); /* 1.3: unused */
    unit_write_file(dir, "policy.json",
                    "{\"control_cipher_suites\": \"aNULL\", \"min_control_TLS_version\": \"1.2\"}");
    assert_int_equal(policy_state_load(&loaded, path, err, sizeof(err)), CV_EINVALID_TLS);
    assert_non_null(strstr(err, path));
    policy_clear(&p);
    policy_clear(&loaded);
    unit_remove_tree(dir);
}

static void ldap_settings_are_checked_and_the_password_is_never_shown(void **state)
{
    struct policy p;
    char err[600], warn[600];

    (void)state;
    policy_init(&p);
#define ACCEPTS(setting, value)                                                                    \
    assert_int_equal(policy_check(&p, setting, value, err, sizeof(err), warn, sizeof(warn)), 0)
#define REFUSES(setting, value, words)                                                             \
    do {                                                                                           \
        assert_true(policy_check(&p, setting, value, err, sizeof(err), warn, sizeof(warn)) < 0);   \
        assert_non_null(strstr(err, words));                                                       \
    } while (0)
    ACCEPTS(POLICY_LDAP_URIS, "ldaps://127.0.0.1:636 ldap://dir.example.com");
    REFUSES(POLICY_LDAP_URIS, "http://dir.example.com", "is not ldaps://");
    REFUSES(POLICY_LDAP_URIS, "ldaps://h/dc=x", "is not ldaps://");
    REFUSES(POLICY_LDAP_URIS, "ldaps://h ", "ends with a space");
    ACCEPTS(POLICY_LDAP_USER_FILTER, "(&(objectClass=person)(uid=%u))");
    REFUSES(POLICY_LDAP_USER_FILTER, "uid=%u", "not an LDAP filter");
    REFUSES(POLICY_LDAP_USER_FILTER, "(uid=%d)", "not an LDAP filter");
    REFUSES(POLICY_LDAP_GROUP_FILTER, "((member=%d)", "not an LDAP filter");
    ACCEPTS(POLICY_LDAP_USER_DN_TEMPLATE, "uid=%u,ou=people,dc=example,dc=org");
    REFUSES(POLICY_LDAP_USER_DN_TEMPLATE, "uid=x,ou=people", "must hold %u once");
    REFUSES(POLICY_LDAP_USER_DN_TEMPLATE, "uid=%u,cn=%u", "must hold %u once");
    REFUSES(POLICY_LDAP_BIND_DN, "cn=a\nb", "more than one line");
    REFUSES(POLICY_LDAP_CACHE_SECONDS, "3601", "from 0 to 3600");
    ACCEPTS(POLICY_LDAP_BIND_DN, ""); /* unsets it */
    /* Enabled, it needs a directory and a way to find users. */
    policy_set(&p, POLICY_LDAP_AUTHENTICATION, "enabled", POLICY_FROM_RUNTIME, NULL, 0);
    assert_true(policy_check_all(&p, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "ldap_uris is not set"));
    policy_set(&p, POLICY_LDAP_URIS, "ldaps://h:636", POLICY_FROM_RUNTIME, NULL, 0);
    assert_true(policy_check_all(&p, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "ldap_user_search_base nor ldap_user_dn_template"));
    policy_set(&p, POLICY_LDAP_USER_SEARCH_BASE, "ou=people,dc=x", POLICY_FROM_RUNTIME, NULL, 0);
    assert_int_equal(policy_check_all(&p, err, sizeof(err)), 0);
    assert_string_equal(policy_get(&p, POLICY_LDAP_USER_FILTER), "(uid=%u)");
    assert_null(policy_text(&p, POLICY_LDAP_BIND_DN));
    policy_set(&p, POLICY_LDAP_BIND_PASSWORD, "s3cret", POLICY_FROM_RUNTIME, NULL, 0);
    assert_string_equal(policy_shown(POLICY_LDAP_BIND_PASSWORD, "s3cret"), POLICY_SECRET_SHOWN);
    assert_string_equal(policy_shown(POLICY_LDAP_BIND_DN, "cn=r"), "cn=r");
    assert_null(policy_shown(POLICY_LDAP_BIND_PASSWORD, NULL));
#undef ACCEPTS
#undef REFUSES
    policy_clear(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ldap_settings_are_checked_and_the_password_is_never_shown),
        cmocka_unit_test(names_and_older_spellings),
        cmocka_unit_test(defaults_and_the_sentinel_following_data),
        cmocka_unit_test(versions_and_words_are_validated),
        cmocka_unit_test(value_spellings_are_case_blind_and_stored_canonically),
        cmocka_unit_test(old_versions_work_at_security_level_zero_with_a_loud_warning),
        cmocka_unit_test(cipher_strings_must_parse_and_leave_a_usable_cipher),
        cmocka_unit_test(a_version_change_is_checked_against_the_planes_ciphers),
        cmocka_unit_test(the_state_file_round_trips_runtime_values_only),
    };
    return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
