/* Unit tests for the REST API's user store: hashing, checking, throttling, the file. */
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
    long retry = 0;

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
    assert_int_equal(users_check(again, "bob", "correct horse", 1000, &role, &retry),
                     USER_CHECK_OK);
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

static void failures_lock_a_user_out_for_longer_each_time(void **state)
{
    struct fixture *fx = *state;
    enum user_role role;
    char err[256];
    long retry = 0;
    time_t now = 5000;

    assert_int_equal(
        users_set(fx->users, "alice", "password1", USER_ROLE_ADMIN, false, err, sizeof(err)), 0);
    assert_int_equal(users_check(fx->users, "nobody", "password1", now, &role, &retry),
                     USER_CHECK_FAILED);
    for (int i = 0; i < 5; i++)
        assert_int_equal(users_check(fx->users, "alice", "wrong", now, &role, &retry),
                         USER_CHECK_FAILED);
    /* The fifth failure locks for five seconds: even the right password waits. */
    assert_int_equal(users_check(fx->users, "alice", "password1", now, &role, &retry),
                     USER_CHECK_THROTTLED);
    assert_int_equal(retry, 5);
    assert_int_equal(users_check(fx->users, "alice", "wrong", now + 5, &role, &retry),
                     USER_CHECK_FAILED);
    assert_int_equal(users_check(fx->users, "alice", "password1", now + 6, &role, &retry),
                     USER_CHECK_THROTTLED);
    assert_int_equal(retry, 9); /* ten seconds from now + 5 */
    assert_int_equal(users_check(fx->users, "alice", "password1", now + 15, &role, &retry),
                     USER_CHECK_OK);
    assert_int_equal(role, USER_ROLE_ADMIN);
    /* A success clears the count. */
    assert_int_equal(users_check(fx->users, "alice", "wrong", now + 15, &role, &retry),
                     USER_CHECK_FAILED);
    assert_int_equal(users_check(fx->users, "alice", "password1", now + 15, &role, &retry),
                     USER_CHECK_OK);
}

static void a_changed_password_is_not_answered_from_the_cache(void **state)
{
    struct fixture *fx = *state;
    enum user_role role;
    char err[256];
    long retry;

    assert_int_equal(
        users_set(fx->users, "alice", "password1", USER_ROLE_ADMIN, false, err, sizeof(err)), 0);
    assert_int_equal(users_check(fx->users, "alice", "password1", 10, &role, &retry),
                     USER_CHECK_OK);
    assert_int_equal(
        users_set(fx->users, "alice", "password2", USER_ROLE_VIEWER, true, err, sizeof(err)), 0);
    assert_int_equal(users_check(fx->users, "alice", "password1", 11, &role, &retry),
                     USER_CHECK_FAILED);
    assert_int_equal(users_check(fx->users, "alice", "password2", 11, &role, &retry),
                     USER_CHECK_OK);
    assert_int_equal(role, USER_ROLE_VIEWER);
    assert_int_equal(users_delete(fx->users, "alice", err, sizeof(err)), 0);
    assert_int_equal(users_check(fx->users, "alice", "password2", 12, &role, &retry),
                     USER_CHECK_FAILED);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(the_file_holds_salted_hashes_only),
        TEST(refusals),
        TEST(failures_lock_a_user_out_for_longer_each_time),
        TEST(a_changed_password_is_not_answered_from_the_cache),
    };
    return cmocka_run_group_tests_name("users", tests, NULL, NULL);
}
