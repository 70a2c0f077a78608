/*
 * Unit tests for the apply pipeline's batching rule (agent/apply/request.c): which queued
 * requests are planned and applied together, which wait for the next batch, and that the
 * queue keeps its order. A batch shares one plan, one commit and one rollback, so a request
 * that overlaps another in it, or is of another kind, must never be taken with it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "request.h"

#include <stdlib.h>
#include <string.h>

#define PEM "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"

/* A queue of requests in the order given, as apply_submit() links them. */
struct queue {
    struct apply_request *head, *tail;
};

static void push(struct queue *q, struct apply_request *request)
{
    assert_non_null(request);
    request->next = NULL;
    if (q->tail)
        q->tail->next = request;
    else
        q->head = request;
    q->tail = request;
}

static struct apply_request *certificate(const char *name)
{
    return apply_certificate(name, PEM, strlen(PEM), NULL, 0, "user-provided");
}

static struct apply_request *policy(const char *name, const char *value)
{
    const char *names[] = {name}, *values[] = {value};

    return apply_policy(names, values, 1);
}

/* Takes one batch, checks it is exactly expected (in order), and frees it. */
static void expect_batch(struct queue *q, struct apply_request *const *expected, size_t n)
{
    struct apply_request *batch[BATCH_MAX];
    size_t taken = apply_batch_take(&q->head, &q->tail, batch);

    assert_int_equal(taken, n);
    for (size_t i = 0; i < n; i++) {
        assert_ptr_equal(batch[i], expected[i]);
        assert_null(batch[i]->next);
        apply_request_free(batch[i]);
    }
    if (!q->head)
        assert_null(q->tail);
}

static void certificate_changes_of_different_names_go_together(void **state)
{
    struct queue q = {0};
    struct apply_request *a = certificate("proxy"), *b = certificate("api"),
                         *c = apply_rotate("cm");

    (void)state;
    push(&q, a);
    push(&q, b);
    push(&q, c);
    expect_batch(&q, (struct apply_request *[]){a, b, c}, 3);
    assert_null(q.head);
}

static void a_second_change_of_the_same_certificate_waits_for_the_next_batch(void **state)
{
    struct queue q = {0};
    struct apply_request *a = certificate("proxy"), *b = apply_rotate("proxy"),
                         *c = certificate("api");

    (void)state;
    push(&q, a);
    push(&q, b);
    push(&q, c);
    /* b overlaps a; c is not taken past b, so the queue's order holds. */
    expect_batch(&q, (struct apply_request *[]){a}, 1);
    assert_ptr_equal(q.head, b);
    expect_batch(&q, (struct apply_request *[]){b, c}, 2);
}

static void rotate_all_overlaps_every_certificate(void **state)
{
    struct queue q = {0};
    struct apply_request *a = certificate("syncer"), *b = apply_rotate("all"),
                         *c = apply_delete("ldap_client");

    (void)state;
    push(&q, a);
    push(&q, b);
    push(&q, c);
    expect_batch(&q, (struct apply_request *[]){a}, 1);
    expect_batch(&q, (struct apply_request *[]){b}, 1);
    expect_batch(&q, (struct apply_request *[]){c}, 1);
}

static void policy_changes_batch_unless_they_set_the_same_setting_under_either_name(void **state)
{
    struct queue q = {0};
    struct apply_request *a = policy("min_data_TLS_version", "1.3"),
                         *b = policy("http_support", "disabled"),
                         *c = policy("sentinel_ssl_policy", "allowed"),
                         *d = policy("sentinel_tls_mode", "required");

    (void)state;
    push(&q, a);
    push(&q, b);
    push(&q, c);
    push(&q, d);
    expect_batch(&q, (struct apply_request *[]){a, b, c}, 3);
    expect_batch(&q, (struct apply_request *[]){d}, 1);
}

static void kinds_do_not_mix(void **state)
{
    struct queue q = {0};
    struct apply_request *a = policy("http_support", "disabled"), *b = certificate("proxy"),
                         *c = policy("min_data_TLS_version", "1.3");

    (void)state;
    push(&q, a);
    push(&q, b);
    push(&q, c);
    expect_batch(&q, (struct apply_request *[]){a}, 1);
    expect_batch(&q, (struct apply_request *[]){b}, 1);
    expect_batch(&q, (struct apply_request *[]){c}, 1);
}

static void a_reload_a_dry_run_and_a_request_marked_alone_go_by_themselves(void **state)
{
    struct queue q = {0};
    struct apply_request *reload = apply_config(), *after_reload = certificate("proxy"),
                         *dry = certificate("api"), *after_dry = certificate("cm"),
                         *alone = certificate("syncer"), *last = certificate("metrics_exporter");

    (void)state;
    dry->dry_run = true;
    alone->alone = true;
    push(&q, reload);
    push(&q, after_reload);
    push(&q, dry);
    push(&q, after_dry);
    push(&q, alone);
    push(&q, last);
    expect_batch(&q, (struct apply_request *[]){reload}, 1);
    /* A request that may batch takes no dry run along: that would make it a dry run too. */
    expect_batch(&q, (struct apply_request *[]){after_reload}, 1);
    expect_batch(&q, (struct apply_request *[]){dry}, 1);
    expect_batch(&q, (struct apply_request *[]){after_dry}, 1);
    expect_batch(&q, (struct apply_request *[]){alone}, 1);
    expect_batch(&q, (struct apply_request *[]){last}, 1);
    assert_null(q.head);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(certificate_changes_of_different_names_go_together),
        cmocka_unit_test(a_second_change_of_the_same_certificate_waits_for_the_next_batch),
        cmocka_unit_test(rotate_all_overlaps_every_certificate),
        cmocka_unit_test(policy_changes_batch_unless_they_set_the_same_setting_under_either_name),
        cmocka_unit_test(kinds_do_not_mix),
        cmocka_unit_test(a_reload_a_dry_run_and_a_request_marked_alone_go_by_themselves),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
