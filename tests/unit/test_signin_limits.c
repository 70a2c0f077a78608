/* Unit tests for sign-in admission: the derivation budget and the lock-outs, on a fake clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "signin_limits.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int setup(void **state)
{
    struct signin_limits *limits = NULL;

    assert_int_equal(signin_limits_new(&limits), 0);
    *state = limits;
    return 0;
}

static int teardown(void **state)
{
    signin_limits_free(*state);
    return 0;
}

/* One sign-in that fails, as the control socket runs it: lock check, budget, outcome. */
static enum signin_verdict fail_once(struct signin_limits *limits, const char *source,
                                     const char *name, int64_t now_ms)
{
    long retry = 0;
    enum signin_verdict v = signin_limits_check_lock(limits, source, name, now_ms, &retry);

    if (v != SIGNIN_ADMIT)
        return v;
    v = signin_limits_take(limits, source, now_ms, &retry);
    if (v != SIGNIN_ADMIT)
        return v;
    signin_limits_release(limits, source);
    signin_limits_record(limits, source, name, false, now_ms, NULL, NULL);
    return SIGNIN_ADMIT;
}

static void a_name_is_locked_for_the_failing_source_only(void **state)
{
    struct signin_limits *limits = *state;
    long retry = 0, locked_for = 0;
    bool source_locked = true;
    int64_t t = 1000000;

    for (int i = 0; i < SIGNIN_NAME_FAILURES_FREE; i++, t += 1000)
        assert_int_equal(fail_once(limits, "192.0.2.66", "admin", t), SIGNIN_ADMIT);
    /* The fifth failure locks admin for five seconds, from that source. */
    signin_limits_record(limits, "192.0.2.66", "admin", false, t, &locked_for, &source_locked);
    assert_int_equal(locked_for, SIGNIN_LOCK_FIRST_S);
    assert_false(source_locked);
    assert_int_equal(signin_limits_check_lock(limits, "192.0.2.66", "admin", t + 1, &retry),
                     SIGNIN_LOCKED);
    assert_int_equal(retry, 5);
    /* admin from anywhere else, and other names from there, are untouched. */
    assert_int_equal(signin_limits_check_lock(limits, "198.51.100.7", "admin", t + 1, &retry),
                     SIGNIN_ADMIT);
    assert_int_equal(signin_limits_check_lock(limits, "uid 0", "admin", t + 1, &retry),
                     SIGNIN_ADMIT);
    assert_int_equal(signin_limits_check_lock(limits, "192.0.2.66", "viewer", t + 1, &retry),
                     SIGNIN_ADMIT);
    /* The next failure doubles the lock-out; a success from there clears the name's count. */
    assert_int_equal(fail_once(limits, "192.0.2.66", "admin", t + 5000), SIGNIN_ADMIT);
    assert_int_equal(signin_limits_check_lock(limits, "192.0.2.66", "admin", t + 6000, &retry),
                     SIGNIN_LOCKED);
    assert_int_equal(retry, 9);
    signin_limits_record(limits, "192.0.2.66", "admin", true, t + 15000, NULL, NULL);
    assert_int_equal(signin_limits_check_lock(limits, "192.0.2.66", "admin", t + 15000, &retry),
                     SIGNIN_ADMIT);
}

static void lock_outs_double_up_to_the_maximum_and_are_forgotten(void **state)
{
    struct signin_limits *limits = *state;
    long retry = 0, locked_for = 0;
    int64_t t = 5000;

    for (int i = 0; i < SIGNIN_NAME_FAILURES_FREE + 12; i++) {
        signin_limits_record(limits, "uid 1000", "alice", false, t, &locked_for, NULL);
        t += SIGNIN_LOCK_MAX_S * 1000; /* waits out every lock-out */
    }
    assert_int_equal(locked_for, SIGNIN_LOCK_MAX_S);
    /* SIGNIN_FORGET_S without a failure: the count starts again from zero. */
    t += (int64_t)SIGNIN_FORGET_S * 1000;
    for (int i = 0; i < SIGNIN_NAME_FAILURES_FREE; i++) {
        signin_limits_record(limits, "uid 1000", "alice", false, t, &locked_for, NULL);
        assert_int_equal(locked_for, 0);
    }
    assert_int_equal(signin_limits_check_lock(limits, "uid 1000", "alice", t, &retry),
                     SIGNIN_ADMIT);
}

static void a_source_that_fails_with_many_names_is_locked_whatever_it_sends(void **state)
{
    struct signin_limits *limits = *state;
    long retry = 0, locked_for = 0;
    bool source_locked = false;
    char name[32];
    int64_t t = 1;

    /* Random unknown names, slowly enough for the rate limits: the source's count grows. */
    for (int i = 0; i < SIGNIN_SOURCE_FAILURES_FREE; i++, t += 1000) {
        snprintf(name, sizeof(name), "guess%d", i);
        assert_int_equal(fail_once(limits, "203.0.113.9", name, t), SIGNIN_ADMIT);
    }
    signin_limits_record(limits, "203.0.113.9", "guess-last", false, t, &locked_for,
                         &source_locked);
    assert_true(source_locked);
    assert_int_equal(locked_for, SIGNIN_LOCK_FIRST_S);
    /* Even admin with the right password waits: the lock-out must not answer guesses. */
    assert_int_equal(signin_limits_check_lock(limits, "203.0.113.9", "admin", t, &retry),
                     SIGNIN_LOCKED);
    /* A success from there (a valid account of the guesser's) does not clear the count. */
    signin_limits_record(limits, "203.0.113.9", "viewer", true, t + 6000, NULL, NULL);
    signin_limits_record(limits, "203.0.113.9", "guess-more", false, t + 6000, &locked_for,
                         &source_locked);
    assert_true(source_locked);
    assert_int_equal(locked_for, 2 * SIGNIN_LOCK_FIRST_S);
    /* Another source signs admin in at once. */
    assert_int_equal(signin_limits_check_lock(limits, "203.0.113.10", "admin", t + 6000, &retry),
                     SIGNIN_ADMIT);
    assert_int_equal(signin_limits_take(limits, "203.0.113.10", t + 6000, &retry), SIGNIN_ADMIT);
}

static void the_derivation_budget_is_global_per_source_and_concurrent(void **state)
{
    struct signin_limits *limits = *state;
    char source[32];
    long retry = 0;
    int taken = 0;
    int64_t t = 100;

    /* One source: its burst, then refused at once with a wait; budget comes back with time. */
    for (int i = 0; i < SIGNIN_SOURCE_BURST; i++) {
        assert_int_equal(signin_limits_take(limits, "uid 5", t, &retry), SIGNIN_ADMIT);
        signin_limits_release(limits, "uid 5");
    }
    assert_int_equal(signin_limits_take(limits, "uid 5", t, &retry), SIGNIN_BUSY);
    assert_int_equal(retry, 1);
    assert_int_equal(signin_limits_take(limits, "uid 5", t + 1000 / SIGNIN_SOURCE_RATE, &retry),
                     SIGNIN_ADMIT);
    signin_limits_release(limits, "uid 5");
    /* Many sources: the global budget caps them all together. */
    t += 100000;
    for (int i = 0; i < 4 * SIGNIN_BURST; i++) {
        snprintf(source, sizeof(source), "198.51.100.%d", i);
        if (signin_limits_take(limits, source, t, &retry) == SIGNIN_ADMIT) {
            taken++;
            signin_limits_release(limits, source);
        }
    }
    assert_int_equal(taken, SIGNIN_BURST);
    assert_int_equal(signin_limits_take(limits, "192.0.2.1", t, &retry), SIGNIN_BUSY);
    assert_true(retry >= 1);
    /* At most SIGNIN_SOURCE_MAX_PENDING derivations under way for one source, whatever its
     * budget says, so that a flood from one address leaves room for the others... */
    t += 100000;
    for (int i = 0; i < SIGNIN_SOURCE_MAX_PENDING; i++)
        assert_int_equal(signin_limits_take(limits, "192.0.2.10", t, &retry), SIGNIN_ADMIT);
    assert_int_equal(signin_limits_take(limits, "192.0.2.10", t, &retry), SIGNIN_BUSY);
    assert_int_equal(retry, 1);
    /* ...and SIGNIN_MAX_PENDING in all. */
    for (int i = SIGNIN_SOURCE_MAX_PENDING; i < SIGNIN_MAX_PENDING; i++) {
        snprintf(source, sizeof(source), "192.0.2.%d", 10 + i);
        assert_int_equal(signin_limits_take(limits, source, t, &retry), SIGNIN_ADMIT);
    }
    assert_int_equal(signin_limits_take(limits, "192.0.2.99", t, &retry), SIGNIN_BUSY);
    signin_limits_release(limits, "192.0.2.10");
    assert_int_equal(signin_limits_take(limits, "192.0.2.99", t, &retry), SIGNIN_ADMIT);
    assert_int_equal(signin_limits_take(limits, "192.0.2.10", t, &retry), SIGNIN_BUSY);
}

static void a_full_table_forgets_the_least_recent_source_that_is_not_locked(void **state)
{
    struct signin_limits *limits = *state;
    char source[32];
    long retry = 0;
    int64_t t = 1;

    for (int i = 0; i <= SIGNIN_SOURCE_FAILURES_FREE; i++)
        signin_limits_record(limits, "192.0.2.1", "x", false, t, NULL, NULL);
    assert_int_equal(signin_limits_check_lock(limits, "192.0.2.1", "y", t, &retry), SIGNIN_LOCKED);
    for (int i = 0; i < 2 * SIGNIN_MAX_SOURCES; i++) {
        snprintf(source, sizeof(source), "10.%d.%d.1", i / 256, i % 256);
        signin_limits_record(limits, source, "x", false, t + 1 + i / 1000, NULL, NULL);
    }
    assert_int_equal(signin_limits_check_lock(limits, "192.0.2.1", "y", t + 1000, &retry),
                     SIGNIN_LOCKED);
}

static void sources_are_addresses_and_ipv6_counts_by_its_64(void **state)
{
    char buf[SIGNIN_SOURCE_LEN];

    (void)state;
    assert_int_equal(signin_source_of_address("203.0.113.5", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "203.0.113.5");
    assert_int_equal(signin_source_of_address("::ffff:203.0.113.5", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "203.0.113.5");
    assert_int_equal(signin_source_of_address("2001:db8:1:2:aaaa:bbbb:cccc:dddd", buf, sizeof(buf)),
                     0);
    assert_string_equal(buf, "2001:db8:1:2::/64");
    assert_int_equal(signin_source_of_address("::1", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "::/64");
    assert_int_equal(signin_source_of_address("[::1]:5", buf, sizeof(buf)), -EINVAL);
    assert_int_equal(signin_source_of_address("uid 0", buf, sizeof(buf)), -EINVAL);
    assert_int_equal(signin_source_of_address("", buf, sizeof(buf)), -EINVAL);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(a_name_is_locked_for_the_failing_source_only),
        TEST(lock_outs_double_up_to_the_maximum_and_are_forgotten),
        TEST(a_source_that_fails_with_many_names_is_locked_whatever_it_sends),
        TEST(the_derivation_budget_is_global_per_source_and_concurrent),
        TEST(a_full_table_forgets_the_least_recent_source_that_is_not_locked),
        TEST(sources_are_addresses_and_ipv6_counts_by_its_64),
    };
    return cmocka_run_group_tests_name("signin_limits", tests, NULL, NULL);
}
