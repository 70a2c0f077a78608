/* Unit tests for the offload workers: work runs off the loop, results come back on it, in full. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "offload.h"

#include <pthread.h>
#include <stdlib.h>
#include <errno.h>
#include <unistd.h>

struct counter_job {
    pthread_t loop_thread;
    pthread_t ran_on;
    int input, output;
    int *done_count;
    int *cancelled_count;
    struct event_base *base;
    int stop_after;
};

static void square(void *data)
{
    struct counter_job *job = data;

    job->ran_on = pthread_self();
    job->output = job->input * job->input;
}

static void square_done(void *data, bool cancelled)
{
    struct counter_job *job = data;

    if (cancelled) {
        (*job->cancelled_count)++;
        return;
    }
    /* The result is read on the loop's thread, after the work ran on another. */
    assert_true(pthread_equal(pthread_self(), job->loop_thread));
    assert_false(pthread_equal(job->ran_on, job->loop_thread));
    assert_int_equal(job->output, job->input * job->input);
    if (++*job->done_count == job->stop_after)
        event_base_loopbreak(job->base);
}

static void test_results_come_back_on_the_loop(void **state)
{
    enum { N = 200 };
    struct event_base *base = event_base_new();
    struct counter_job jobs[N];
    struct offload *offload = NULL;
    int done = 0, cancelled = 0;

    (void)state;
    assert_int_equal(offload_new(base, 2, &offload), 0);
    for (int i = 0; i < N; i++) {
        jobs[i] = (struct counter_job){.loop_thread = pthread_self(),
                                       .input = i,
                                       .done_count = &done,
                                       .cancelled_count = &cancelled,
                                       .base = base,
                                       .stop_after = N};
        assert_int_equal(offload_submit(offload, square, square_done, &jobs[i]), 0);
    }
    assert_true(offload_backlog(offload) > 0);
    event_base_dispatch(base);
    assert_int_equal(done, N);
    assert_int_equal(cancelled, 0);
    assert_int_equal(offload_backlog(offload), 0);
    offload_free(offload);
    event_base_free(base);
}

static void slow(void *data)
{
    (void)data;
    usleep(20000);
}

/* Freed with jobs outstanding: each one is handed back once, cancelled, and nothing leaks. */
static void test_free_cancels_what_is_left(void **state)
{
    enum { N = 16 };
    struct event_base *base = event_base_new();
    struct counter_job jobs[N];
    struct offload *offload = NULL;
    int done = 0, cancelled = 0;

    (void)state;
    assert_int_equal(offload_new(base, 1, &offload), 0);
    for (int i = 0; i < N; i++) {
        jobs[i] = (struct counter_job){.done_count = &done, .cancelled_count = &cancelled};
        assert_int_equal(offload_submit(offload, slow, square_done, &jobs[i]), 0);
    }
    offload_free(offload);
    assert_int_equal(done, 0);
    assert_int_equal(cancelled, N);
    event_base_free(base);
}

static void test_thread_count_checked(void **state)
{
    struct event_base *base = event_base_new();
    struct offload *offload = NULL;

    (void)state;
    assert_int_equal(offload_new(base, 0, &offload), -EINVAL);
    assert_null(offload);
    offload_free(NULL);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_results_come_back_on_the_loop),
        cmocka_unit_test(test_free_cancels_what_is_left),
        cmocka_unit_test(test_thread_count_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
