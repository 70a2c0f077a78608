/*
 * Unit tests for sign-in with directory accounts (agent/auth/ldap_signin.c): the helper's
 * answer read as outside input, groups mapped to roles, and the memory of recent sign-ins.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ldap_signin.h"

#include <errno.h>
#include <string.h>

#define ADMINS "cn=Admins,ou=groups,dc=example,dc=org"
#define VIEWERS "cn=viewers,ou=groups,dc=example,dc=org"

static void parse(const char *text, struct ldap_answer *answer)
{
    ldap_answer_parse(text, strlen(text), answer);
}

static void the_helpers_answers_are_read_and_anything_else_is_unavailable(void **state)
{
    struct ldap_answer a;

    (void)state;
    parse("{\"result\":\"ok\",\"dn\":\"uid=a,dc=x\",\"groups\":[\"cn=g,dc=x\"]}", &a);
    assert_int_equal(a.result, LDAP_SIGNIN_OK);
    assert_string_equal(a.dn, "uid=a,dc=x");
    assert_int_equal(json_array_size(a.groups), 1);
    ldap_answer_clear(&a);
    parse("{\"result\":\"denied\",\"error\":\"wrong password\"}", &a);
    assert_int_equal(a.result, LDAP_SIGNIN_DENIED);
    assert_string_equal(a.error, "wrong password");
    ldap_answer_clear(&a);
    parse("{\"result\":\"unavailable\",\"error\":\"down\"}", &a);
    assert_int_equal(a.result, LDAP_SIGNIN_UNAVAILABLE);
    ldap_answer_clear(&a);
    /* Not one of its answers: never a success, and said so. */
    static const char *const bad[] = {"",
                                      "{}",
                                      "[1]",
                                      "{\"result\":\"ok\"}",
                                      "{\"result\":\"ok\",\"dn\":\"\",\"groups\":[]}",
                                      "{\"result\":\"ok\",\"dn\":\"x\",\"groups\":[1]}",
                                      "{\"result\":\"ok\",\"dn\":\"x\",\"groups\":{}}",
                                      "{\"result\":\"maybe\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        parse(bad[i], &a);
        assert_int_equal(a.result, LDAP_SIGNIN_UNAVAILABLE);
        assert_true(a.error[0] != '\0');
        ldap_answer_clear(&a);
    }
}

static void groups_map_to_roles_admin_first_dns_compared_loosely(void **state)
{
    struct policy p;
    enum user_role role;
    json_t *both = json_pack("[s, s]", VIEWERS, "cn=admins, ou=groups, dc=example, dc=org");
    json_t *viewer = json_pack("[s]", "CN=VIEWERS,OU=groups,DC=example,DC=org");
    json_t *none = json_pack("[s]", "cn=other,dc=example,dc=org");

    (void)state;
    policy_init(&p);
    policy_set(&p, POLICY_LDAP_ADMIN_GROUPS, ADMINS, POLICY_FROM_RUNTIME, NULL, 0);
    policy_set(&p, POLICY_LDAP_VIEWER_GROUPS, "cn=x,dc=y; " VIEWERS, POLICY_FROM_RUNTIME, NULL, 0);
    assert_int_equal(ldap_role_of_groups(&p, both, &role), 0);
    assert_int_equal(role, USER_ROLE_ADMIN);
    assert_int_equal(ldap_role_of_groups(&p, viewer, &role), 0);
    assert_int_equal(role, USER_ROLE_VIEWER);
    assert_int_equal(ldap_role_of_groups(&p, none, &role), -ENOENT);
    json_decref(both);
    json_decref(viewer);
    json_decref(none);
    policy_clear(&p);
}

static void recent_sign_ins_are_remembered_by_password_ttl_and_settings(void **state)
{
    struct ldap_cache *cache;
    struct policy p;
    enum user_role role = USER_ROLE_VIEWER;

    (void)state;
    policy_init(&p);
    assert_int_equal(ldap_cache_new(&cache), 0);
    policy_set(&p, POLICY_LDAP_CACHE_SECONDS, "60", POLICY_FROM_RUNTIME, NULL, 0);
    ldap_cache_store(cache, &p, "alice", "right", 1000, USER_ROLE_ADMIN);
    assert_true(ldap_cache_lookup(cache, &p, "alice", "right", 1059, &role));
    assert_int_equal(role, USER_ROLE_ADMIN);
    assert_false(ldap_cache_lookup(cache, &p, "alice", "wrong", 1001, &role));
    assert_false(ldap_cache_lookup(cache, &p, "bob", "right", 1001, &role));
    assert_false(ldap_cache_lookup(cache, &p, "alice", "right", 1060, &role)); /* expired */
    /* Another directory or other groups: nothing remembered holds. */
    ldap_cache_store(cache, &p, "alice", "right", 2000, USER_ROLE_ADMIN);
    policy_set(&p, POLICY_LDAP_ADMIN_GROUPS, ADMINS, POLICY_FROM_RUNTIME, NULL, 0);
    assert_false(ldap_cache_lookup(cache, &p, "alice", "right", 2001, &role));
    /* 0: nothing is remembered. */
    policy_set(&p, POLICY_LDAP_CACHE_SECONDS, "0", POLICY_FROM_RUNTIME, NULL, 0);
    ldap_cache_store(cache, &p, "carol", "pw", 3000, USER_ROLE_VIEWER);
    assert_false(ldap_cache_lookup(cache, &p, "carol", "pw", 3000, &role));
    ldap_cache_free(cache);
    policy_clear(&p);
}

static void only_non_local_names_go_to_the_directory_and_only_when_enabled(void **state)
{
    struct policy p;

    (void)state;
    policy_init(&p);
    assert_false(ldap_signin_applies(&p, NULL, "alice"));
    policy_set(&p, POLICY_LDAP_AUTHENTICATION, "enabled", POLICY_FROM_RUNTIME, NULL, 0);
    assert_true(ldap_signin_applies(&p, NULL, "alice"));
    policy_clear(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_helpers_answers_are_read_and_anything_else_is_unavailable),
        cmocka_unit_test(groups_map_to_roles_admin_first_dns_compared_loosely),
        cmocka_unit_test(recent_sign_ins_are_remembered_by_password_ttl_and_settings),
        cmocka_unit_test(only_non_local_names_go_to_the_directory_and_only_when_enabled),
    };
    return cmocka_run_group_tests_name("ldap_signin", tests, NULL, NULL);
}
