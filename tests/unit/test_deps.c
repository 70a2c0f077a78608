/* Unit tests for dependency ordering: stable topological sort, cycles and unknown names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "unit_util.h"

#include "cv_error.h"
#include "deps.h"

#include <stdio.h>
#include <string.h>

#define MAX_SERVICES 8

/* Services built by hand: deps only reads name, after, n_after and the source place. */
struct set {
    struct service_config storage[MAX_SERVICES];
    struct service_config *services[MAX_SERVICES];
    size_t n;
};

/* Adds a service declared at x.conf:line; after is a NULL-terminated list (or NULL). */
static void add(struct set *set, const char *name, int line, char **after)
{
    struct service_config *s = &set->storage[set->n];

    assert_true(set->n < MAX_SERVICES);
    memset(s, 0, sizeof(*s));
    s->name = (char *)name;
    s->source_file = (char *)"/etc/certvisor/conf.d/x.conf";
    s->source_line = line;
    s->after = after;
    while (after && after[s->n_after])
        s->n_after++;
    set->services[set->n++] = s;
}

#define AFTER(...) ((char *[]){__VA_ARGS__, NULL})

/* Sorts and checks the order by names. */
static void assert_order(const struct set *set, const char *const *names)
{
    size_t order[MAX_SERVICES];
    char err[256] = "";
    int r = deps_sort(set->services, set->n, order, err, sizeof(err));

    if (r != 0)
        print_error("deps_sort: %d %s\n", r, err);
    assert_int_equal(r, 0);
    for (size_t i = 0; i < set->n; i++) {
        assert_non_null(names[i]);
        assert_string_equal(set->services[order[i]]->name, names[i]);
    }
    assert_null(names[set->n]);
}

static void expect_failure(const struct set *set, const char *message)
{
    size_t order[MAX_SERVICES];
    char err[256] = "";

    assert_int_equal(deps_sort(set->services, set->n, order, err, sizeof(err)), CV_ECONFIG);
    assert_string_equal(err, message);
}

static void no_services_sort_to_nothing(void **state)
{
    size_t order[1] = {99};
    char err[64] = "";

    (void)state;
    assert_int_equal(deps_sort(NULL, 0, order, err, sizeof(err)), 0);
    assert_int_equal(order[0], 99);
    assert_string_equal(err, "");
}

static void independent_services_keep_file_order(void **state)
{
    struct set set = {0};

    (void)state;
    add(&set, "c", 1, NULL);
    add(&set, "a", 2, NULL);
    add(&set, "b", 3, NULL);
    assert_order(&set, (const char *const[]){"c", "a", "b", NULL});
}

static void a_dependency_moves_only_what_it_must(void **state)
{
    struct set set = {0};

    (void)state;
    add(&set, "web", 1, AFTER("db"));
    add(&set, "tool", 2, NULL);
    add(&set, "db", 3, NULL);
    add(&set, "cron", 4, NULL);
    /* db is the first service ready, then web (first in file order), then the rest */
    assert_order(&set, (const char *const[]){"tool", "db", "web", "cron", NULL});
}

static void a_chain_is_reversed(void **state)
{
    struct set set = {0};

    (void)state;
    add(&set, "c", 1, AFTER("b"));
    add(&set, "b", 2, AFTER("a"));
    add(&set, "a", 3, NULL);
    assert_order(&set, (const char *const[]){"a", "b", "c", NULL});
}

static void diamond_dependencies(void **state)
{
    struct set set = {0};

    (void)state;
    add(&set, "top", 1, AFTER("left", "right"));
    add(&set, "right", 2, AFTER("base"));
    add(&set, "left", 3, AFTER("base"));
    add(&set, "base", 4, NULL);
    assert_order(&set, (const char *const[]){"base", "right", "left", "top", NULL});
}

static void repeated_dependency_is_harmless(void **state)
{
    struct set set = {0};

    (void)state;
    add(&set, "b", 1, AFTER("a", "a"));
    add(&set, "a", 2, NULL);
    assert_order(&set, (const char *const[]){"a", "b", NULL});
}

static void self_cycle(void **state)
{
    struct set set = {0};

    (void)state;
    add(&set, "ok", 1, NULL);
    add(&set, "loop", 5, AFTER("loop"));
    expect_failure(&set, "/etc/certvisor/conf.d/x.conf:5: dependency cycle: loop -> loop");
}

static void two_service_cycle(void **state)
{
    struct set set = {0};

    (void)state;
    add(&set, "a", 1, AFTER("b"));
    add(&set, "b", 2, AFTER("a"));
    expect_failure(&set, "/etc/certvisor/conf.d/x.conf:1: dependency cycle: a -> b -> a");
}

static void longer_cycle_reached_through_a_dependent(void **state)
{
    struct set set = {0};

    (void)state;
    add(&set, "free", 1, NULL);
    add(&set, "entry", 2, AFTER("free", "a")); /* depends on the cycle but is not in it */
    add(&set, "a", 3, AFTER("b"));
    add(&set, "b", 4, AFTER("free", "c"));
    add(&set, "c", 5, AFTER("a"));
    expect_failure(&set, "/etc/certvisor/conf.d/x.conf:3: dependency cycle: a -> b -> c -> a");
}

static void unknown_dependency_is_named(void **state)
{
    struct set set = {0};

    (void)state;
    add(&set, "a", 1, NULL);
    add(&set, "b", 7, AFTER("a", "ghost"));
    expect_failure(&set,
                   "/etc/certvisor/conf.d/x.conf:7: service 'b': after: unknown service 'ghost'");
}

static void unknown_dependency_is_reported_before_a_cycle(void **state)
{
    struct set set = {0};

    (void)state;
    add(&set, "a", 1, AFTER("b"));
    add(&set, "b", 2, AFTER("a"));
    add(&set, "c", 3, AFTER("nope"));
    expect_failure(&set,
                   "/etc/certvisor/conf.d/x.conf:3: service 'c': after: unknown service 'nope'");
}

static void a_short_error_buffer_is_truncated_safely(void **state)
{
    struct set set = {0};
    size_t order[MAX_SERVICES];
    char err[24];

    (void)state;
    add(&set, "alpha", 1, AFTER("beta"));
    add(&set, "beta", 2, AFTER("gamma"));
    add(&set, "gamma", 3, AFTER("alpha"));
    memset(err, 'X', sizeof(err));
    assert_int_equal(deps_sort(set.services, set.n, order, err, sizeof(err)), CV_ECONFIG);
    assert_int_equal(strlen(err), sizeof(err) - 1);
    assert_memory_equal(err, "/etc/certvisor/conf.d/x", sizeof(err) - 1);
}

static void deps_find_returns_the_index(void **state)
{
    struct set set = {0};

    (void)state;
    add(&set, "a", 1, NULL);
    add(&set, "b", 2, NULL);
    assert_int_equal(deps_find(set.services, set.n, "a"), 0);
    assert_int_equal(deps_find(set.services, set.n, "b"), 1);
    assert_int_equal(deps_find(set.services, set.n, "c"), -1);
    assert_int_equal(deps_find(set.services, set.n, ""), -1);
    assert_int_equal(deps_find(set.services, 0, "a"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_services_sort_to_nothing),
        cmocka_unit_test(independent_services_keep_file_order),
        cmocka_unit_test(a_dependency_moves_only_what_it_must),
        cmocka_unit_test(a_chain_is_reversed),
        cmocka_unit_test(diamond_dependencies),
        cmocka_unit_test(repeated_dependency_is_harmless),
        cmocka_unit_test(self_cycle),
        cmocka_unit_test(two_service_cycle),
        cmocka_unit_test(longer_cycle_reached_through_a_dependent),
        cmocka_unit_test(unknown_dependency_is_named),
        cmocka_unit_test(unknown_dependency_is_reported_before_a_cycle),
        cmocka_unit_test(a_short_error_buffer_is_truncated_safely),
        cmocka_unit_test(deps_find_returns_the_index),
    };
    return cmocka_run_group_tests_name("deps", tests, NULL, NULL);
}
