/* Unit tests for the REST API's user store: hashing, the three-step check, the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include "cv_error.h"
#include "users.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct fixture {
    char dir[64];
    struct users *users;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char err[256];

    assert_non_null(fx);
    unit_make_tempdir(fx->dir, sizeof(fx->dir), "users");
    assert_int_equal(users_open(fx->dir, &fx->users, err, sizeof(err)), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    users_free(fx->users);
    unit_remove_tree(fx->dir);
    free(fx);
    return 0;
}

/* The three steps of a check in a row, as the agent runs them on the loop and a worker. */
static enum user_check check(struct users *users, const char *name, const char *password,
                             time_t now, enum user_role *ret_role)
{
    struct users_check *pending = NULL;
    enum user_check r = users_check_begin(users, name, password, now, ret_role, &pending);

    if (r != USER_CHECK_PENDING)
        return r;
    users_check_derive(pending);
    r = users_check_finish(users, pending, now, ret_role);
    users_check_free(pending);
    return r;
}

static char *file_text(const struct fixture *fx)
{
    char path[128], *text = calloc(1, 65536);
    FILE *f;

    snprintf(path, sizeof(path), "%s/users.json", fx->dir);
    f = fopen(path, "r");
    assert_non_null(f);
    assert_true(fread(text, 1, 65535, f) > 0);
    fclose(f);
    return text;
}

static void the_file_holds_salted_hashes_only(void **state)
{
    struct fixture *fx = *state;
    struct users *again = NULL;
    enum user_role role = USER_ROLE_VIEWER;
    char err[256], path[128], *text;
    struct stat st;

    assert_int_equal(
        users_set(fx->users, "alice", "correct horse", USER_ROLE_ADMIN, false, err, sizeof(err)),
        0);
    assert_int_equal(
        users_set(fx->users, "bob", "correct horse", USER_ROLE_VIEWER, false, err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/users.json", fx->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    text = file_text(fx);
    assert_null(strstr(text, "correct horse"));
    assert_non_null(strstr(text, "pbkdf2-sha256"));
    free(text);
    /* Read back by a new store (the agent restarted): the same password still checks out. */
    assert_int_equal(users_open(fx->dir, &again, err, sizeof(err)), 0);
    assert_int_equal(check(again, "bob", "correct horse", 1000, &role), USER_CHECK_OK);
    assert_int_equal(role, USER_ROLE_VIEWER);
    users_free(again);
}

static void refusals(void **state)
{
    struct fixture *fx = *state;
    char err[256];

    assert_int_equal(
        users_set(fx->users, "a b", "password1", USER_ROLE_ADMIN, false, err, sizeof(err)),
        CV_EUSAGE);
    assert_non_null(strstr(err, "is not a user name"));
    assert_int_equal(
        users_set(fx->users, "alice", "short", USER_ROLE_ADMIN, false, err, sizeof(err)),
        CV_EUSAGE);
    assert_non_null(strstr(err, "from 8 to 1024 characters"));
    assert_int_equal(
        users_set(fx->users, "alice", "password1", USER_ROLE_ADMIN, true, err, sizeof(err)),
        -ENOENT);
    assert_int_equal(
        users_set(fx->users, "alice", "password1", USER_ROLE_ADMIN, false, err, sizeof(err)), 0);
    assert_int_equal(
        users_set(fx->users, "alice", "password2", USER_ROLE_ADMIN, false, err, sizeof(err)),
        -EEXIST);
    assert_int_equal(users_delete(fx->users, "nobody", err, sizeof(err)), -ENOENT);
}

static void every_check_costs_a_derivation_unless_the_pair_was_checked_lately(void **state)
{
    struct fixture *fx = *state;
    struct users_check *pending = NULL;
    enum user_role role = USER_ROLE_VIEWER;
    char err[256], long_password[1100];
    /* Unknown, certificate-only, overlong, wrong: each needs a derivation, and fails. */
    const char *const failing[][2] = {
        {"nobody", "password1"}, {"ops", "password1"}, {"alice", long_password}, {"alice", "no"}};

    assert_int_equal(
        users_set(fx->users, "alice", "password1", USER_ROLE_ADMIN, false, err, sizeof(err)), 0);
    assert_int_equal(users_add(fx->users, "ops", NULL, "CN=ops", USER_ROLE_ADMIN, err, sizeof(err)),
                     0);
    memset(long_password, 'x', sizeof(long_password) - 1);
    long_password[sizeof(long_password) - 1] = '\0';
    for (size_t i = 0; i < sizeof(failing) / sizeof(failing[0]); i++) {
        assert_int_equal(
            users_check_begin(fx->users, failing[i][0], failing[i][1], 100, &role, &pending),
            USER_CHECK_PENDING);
        users_check_derive(pending);
        assert_int_equal(users_check_finish(fx->users, pending, 100, &role), USER_CHECK_FAILED);
        users_check_free(pending);
        pending = NULL;
    }
    /* The right pair: a derivation the first time, then answered at once for a minute. */
    assert_int_equal(users_check_begin(fx->users, "alice", "password1", 100, &role, &pending),
                     USER_CHECK_PENDING);
    users_check_derive(pending);
    assert_int_equal(users_check_finish(fx->users, pending, 100, &role), USER_CHECK_OK);
    assert_int_equal(role, USER_ROLE_ADMIN);
    users_check_free(pending);
    pending = NULL;
    role = USER_ROLE_VIEWER;
    assert_int_equal(users_check_begin(fx->users, "alice", "password1", 159, &role, &pending),
                     USER_CHECK_OK);
    assert_null(pending);
    assert_int_equal(role, USER_ROLE_ADMIN);
    assert_int_equal(users_check_begin(fx->users, "alice", "password1", 160, &role, &pending),
                     USER_CHECK_PENDING);
    users_check_free(pending);
}

static void a_password_changed_during_the_derivation_fails_the_check(void **state)
{
    struct fixture *fx = *state;
    struct users_check *pending = NULL;
    enum user_role role = USER_ROLE_VIEWER;
    char err[256];

    assert_int_equal(
        users_set(fx->users, "alice", "password1", USER_ROLE_ADMIN, false, err, sizeof(err)), 0);
    assert_int_equal(users_check_begin(fx->users, "alice", "password1", 10, &role, &pending),
                     USER_CHECK_PENDING);
    /* The worker derives from its own copies while the store changes on the loop. */
    assert_int_equal(
        users_set(fx->users, "alice", "password2", USER_ROLE_ADMIN, true, err, sizeof(err)), 0);
    users_check_derive(pending);
    assert_int_equal(users_check_finish(fx->users, pending, 10, &role), USER_CHECK_FAILED);
    users_check_free(pending);
    /* Nor does a user deleted meanwhile sign in. */
    assert_int_equal(users_check_begin(fx->users, "alice", "password2", 10, &role, &pending),
                     USER_CHECK_PENDING);
    assert_int_equal(users_delete(fx->users, "alice", err, sizeof(err)), 0);
    users_check_derive(pending);
    assert_int_equal(users_check_finish(fx->users, pending, 10, &role), USER_CHECK_FAILED);
    users_check_free(pending);
}

static void a_changed_password_is_not_answered_from_the_cache(void **state)
{
    struct fixture *fx = *state;
    enum user_role role;
    char err[256];

    assert_int_equal(
        users_set(fx->users, "alice", "password1", USER_ROLE_ADMIN, false, err, sizeof(err)), 0);
    assert_int_equal(check(fx->users, "alice", "password1", 10, &role), USER_CHECK_OK);
    assert_int_equal(
        users_set(fx->users, "alice", "password2", USER_ROLE_VIEWER, true, err, sizeof(err)), 0);
    assert_int_equal(check(fx->users, "alice", "password1", 11, &role), USER_CHECK_FAILED);
    assert_int_equal(check(fx->users, "alice", "password2", 11, &role), USER_CHECK_OK);
    assert_int_equal(role, USER_ROLE_VIEWER);
    assert_int_equal(users_delete(fx->users, "alice", err, sizeof(err)), 0);
    assert_int_equal(check(fx->users, "alice", "password2", 12, &role), USER_CHECK_FAILED);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

/* A self-signed certificate with this CN and organization (enough for the subject matcher). */
static X509 *client_cert(const char *cn, const char *org)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    X509_NAME *name = X509_get_subject_name(cert);

    assert_non_null(key);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)org, -1, -1, 0);
    X509_set_pubkey(cert, key);
    assert_true(X509_sign(cert, key, EVP_sha256()) > 0);
    EVP_PKEY_free(key);
    return cert;
}

static void certificate_users_sign_in_by_subject_only(void **state)
{
    struct fixture *fx = *state;
    struct users *again = NULL;
    enum user_role role = USER_ROLE_ADMIN;
    char err[1536], name[65], *text, *subject = NULL;
    X509 *ops = client_cert("ops", "Example"), *other = client_cert("ops", "Elsewhere");

    assert_int_equal(
        users_add(fx->users, "ops", NULL, "cn=ops,  O=Example", USER_ROLE_VIEWER, err, sizeof(err)),
        0);
    assert_int_equal(
        users_add(fx->users, "both", "password1", "CN=both", USER_ROLE_ADMIN, err, sizeof(err)), 0);
    /* Stored in canonical form, without a hash for the certificate-only user. */
    text = file_text(fx);
    assert_non_null(strstr(text, "\"certificate_subject\": \"CN=ops, O=Example\""));
    assert_int_equal(strstr(strstr(text, "\"ops\""), "hash") == NULL, 1);
    free(text);
    /* No Basic sign-in for a user without a password, whatever is tried. */
    assert_int_equal(check(fx->users, "ops", "", 10, &role), USER_CHECK_FAILED);
    assert_int_equal(check(fx->users, "both", "password1", 10, &role), USER_CHECK_OK);
    assert_int_equal(users_find_by_certificate(fx->users, ops, SUBJECT_MATCH_FULL_SUBJECT, name,
                                               sizeof(name), &role, err, sizeof(err)),
                     0);
    assert_string_equal(name, "ops");
    assert_int_equal(role, USER_ROLE_VIEWER);
    assert_int_equal(users_find_by_certificate(fx->users, other, SUBJECT_MATCH_FULL_SUBJECT, name,
                                               sizeof(name), &role, err, sizeof(err)),
                     -ENOENT);
    /* san_cn: the CN alone; two users with that CN would be a guess, so it is refused. */
    assert_int_equal(users_find_by_certificate(fx->users, other, SUBJECT_MATCH_SAN_CN, name,
                                               sizeof(name), &role, err, sizeof(err)),
                     0);
    assert_int_equal(users_set_subject(fx->users, "both", "CN=ops, OU=Other", err, sizeof(err)), 0);
    assert_int_equal(users_find_by_certificate(fx->users, other, SUBJECT_MATCH_SAN_CN, name,
                                               sizeof(name), &role, err, sizeof(err)),
                     -EEXIST);
    assert_non_null(strstr(err, "'ops' and 'both'"));
    /* A new password keeps the subject; the file reads back the same. */
    assert_int_equal(
        users_set(fx->users, "both", "password2", USER_ROLE_ADMIN, true, err, sizeof(err)), 0);
    assert_int_equal(users_open(fx->dir, &again, err, sizeof(err)), 0);
    assert_int_equal(users_subject(again, "both", &subject), 0);
    assert_string_equal(subject, "CN=ops, OU=Other");
    free(subject);
    assert_int_equal(check(again, "both", "password2", 20, &role), USER_CHECK_OK);
    users_free(again);
    X509_free(ops);
    X509_free(other);
}

static void subject_refusals_change_nothing(void **state)
{
    struct fixture *fx = *state;
    char err[1536], *subject = NULL;

    assert_int_equal(users_add(fx->users, "ops", NULL, "OU=ops", USER_ROLE_ADMIN, err, sizeof(err)),
                     CV_EUSAGE);
    assert_non_null(strstr(err, "no CN"));
    assert_int_equal(
        users_add(fx->users, "ops", NULL, "garbage", USER_ROLE_ADMIN, err, sizeof(err)), CV_EUSAGE);
    assert_non_null(strstr(err, "expected TYPE=value"));
    assert_int_equal(users_subject(fx->users, "ops", &subject), -ENOENT);
    assert_int_equal(users_add(fx->users, "ops", NULL, "CN=ops", USER_ROLE_ADMIN, err, sizeof(err)),
                     0);
    /* Clearing the subject of a certificate-only user would leave it no way in. */
    assert_int_equal(users_set_subject(fx->users, "ops", NULL, err, sizeof(err)), CV_EUSAGE);
    assert_non_null(strstr(err, "user passwd"));
    assert_int_equal(users_set_subject(fx->users, "ops", "CN=", err, sizeof(err)), CV_EUSAGE);
    assert_int_equal(users_set_subject(fx->users, "nobody", "CN=x", err, sizeof(err)), -ENOENT);
    assert_int_equal(users_subject(fx->users, "ops", &subject), 0);
    assert_string_equal(subject, "CN=ops");
    free(subject);
    assert_int_equal(
        users_set(fx->users, "ops", "password1", USER_ROLE_ADMIN, true, err, sizeof(err)), 0);
    assert_int_equal(users_set_subject(fx->users, "ops", NULL, err, sizeof(err)), 0);
    assert_int_equal(users_subject(fx->users, "ops", &subject), 0);
    assert_null(subject);
}

static void an_older_file_reads_unchanged(void **state)
{
    struct fixture *fx = *state;
    struct users *old = NULL;
    enum user_role role = USER_ROLE_VIEWER;
    char err[512];

    /* What the previous version wrote: no certificate_subject member. */
    assert_int_equal(
        users_set(fx->users, "alice", "password1", USER_ROLE_ADMIN, false, err, sizeof(err)), 0);
    assert_int_equal(users_open(fx->dir, &old, err, sizeof(err)), 0);
    assert_int_equal(check(old, "alice", "password1", 5, &role), USER_CHECK_OK);
    users_free(old);
    /* An entry with neither a hash nor a subject is refused by name. */
    unit_write_file(fx->dir, "users.json", "{\"users\": {\"eve\": {\"role\": \"admin\"}}}");
    assert_int_equal(users_open(fx->dir, &old, err, sizeof(err)), CV_ECONFIG);
    assert_non_null(strstr(err, "user 'eve' is not a valid entry"));
    unit_write_file(
        fx->dir, "users.json",
        "{\"users\": {\"eve\": {\"role\": \"admin\", \"certificate_subject\": \"x\"}}}");
    assert_int_equal(users_open(fx->dir, &old, err, sizeof(err)), CV_ECONFIG);
    assert_non_null(strstr(err, "expected TYPE=value"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(the_file_holds_salted_hashes_only),
        TEST(refusals),
        TEST(every_check_costs_a_derivation_unless_the_pair_was_checked_lately),
        TEST(a_password_changed_during_the_derivation_fails_the_check),
        TEST(a_changed_password_is_not_answered_from_the_cache),
        TEST(certificate_users_sign_in_by_subject_only),
        TEST(subject_refusals_change_nothing),
        TEST(an_older_file_reads_unchanged),
    };
    return cmocka_run_group_tests_name("users", tests, NULL, NULL);
}
