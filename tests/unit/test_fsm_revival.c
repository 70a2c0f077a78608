/* Unit tests for autorestart = true (a database's shard): any exit revives it, a stop never does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "service_fsm.h"

/* The shipped shard's settings: autorestart = true, the default backoff and retries. */
static const struct fsm_policy shard = {
    .autorestart = AUTORESTART_TRUE,
    .readiness = READINESS_NOTIFY,
    .start_retries = 5,
    .start_timeout = 30,
    .stop_timeout = 20,
    .backoff_initial = 0.5,
    .backoff_factor = 2,
    .backoff_max = 30,
    .backoff_reset_after = 10,
};

static struct fsm_effects step(struct fsm *fsm, enum fsm_event_kind kind)
{
    struct fsm_event event = {kind, false, -1};
    struct fsm_effects effects;

    fsm_step(fsm, &shard, &event, &effects);
    return effects;
}

/* The main process exits after run_seconds of readiness; expected: a status in exit_codes. */
static struct fsm_effects exit_with(struct fsm *fsm, bool expected, double run_seconds)
{
    struct fsm_event event = {FSM_EXIT, expected, run_seconds};
    struct fsm_effects effects;

    fsm_step(fsm, &shard, &event, &effects);
    return effects;
}

static void a_clean_exit_is_revived_after_the_backoff_and_not_called_a_crash(void **state)
{
    struct fsm fsm = {SERVICE_RUNNING, 0, FSM_STOP_REQUESTED};
    struct fsm_effects e = exit_with(&fsm, true, 100); /* SHUTDOWN: status 0 */

    (void)state;
    assert_int_equal(fsm.state, SERVICE_BACKOFF);
    assert_int_equal(fsm.failures, 1);
    assert_int_equal(e.note, FSM_NOTE_EXITED);
    assert_false(e.gave_up);
    assert_false(e.actions & FSM_DO_SPAWN); /* not at once: after the delay */
    assert_true(e.actions & FSM_DO_ARM_TIMER);
    assert_true(e.timer_seconds == 0.5);
    e = step(&fsm, FSM_TIMEOUT);
    assert_int_equal(fsm.state, SERVICE_STARTING);
    assert_true(e.actions & FSM_DO_SPAWN);
}

static void an_unexpected_exit_is_still_a_crash(void **state)
{
    struct fsm fsm = {SERVICE_RUNNING, 0, FSM_STOP_REQUESTED};
    struct fsm_effects e = exit_with(&fsm, false, 100);

    (void)state;
    assert_int_equal(fsm.state, SERVICE_BACKOFF);
    assert_int_equal(e.note, FSM_NOTE_CRASHED);
}

static void clean_exits_in_a_loop_back_off_like_crashes_then_go_fatal(void **state)
{
    static const double delays[] = {0.5, 1, 2, 4, 8};
    struct fsm fsm = {SERVICE_RUNNING, 0, FSM_STOP_REQUESTED};
    struct fsm_effects e;

    (void)state;
    for (size_t i = 0; i < sizeof(delays) / sizeof(delays[0]); i++) {
        e = exit_with(&fsm, true, 1); /* shorter than backoff_reset_after */
        assert_int_equal(fsm.state, SERVICE_BACKOFF);
        assert_true(e.timer_seconds == delays[i]);
        step(&fsm, FSM_TIMEOUT);
        step(&fsm, FSM_READY);
        assert_int_equal(fsm.state, SERVICE_RUNNING);
    }
    e = exit_with(&fsm, true, 1);
    assert_int_equal(fsm.state, SERVICE_FATAL);
    assert_true(e.gave_up);
    assert_int_equal(e.note, FSM_NOTE_EXITED);
    assert_false(e.actions & (FSM_DO_SPAWN | FSM_DO_ARM_TIMER));
}

static void a_long_run_before_a_clean_exit_forgets_earlier_failures(void **state)
{
    struct fsm fsm = {SERVICE_RUNNING, 4, FSM_STOP_REQUESTED};
    struct fsm_effects e = exit_with(&fsm, true, 60);

    (void)state;
    assert_int_equal(fsm.state, SERVICE_BACKOFF);
    assert_int_equal(fsm.failures, 1);
    assert_true(e.timer_seconds == 0.5);
}

static void a_requested_stop_is_never_revived(void **state)
{
    struct fsm fsm = {SERVICE_RUNNING, 0, FSM_STOP_REQUESTED};
    struct fsm_effects e = step(&fsm, FSM_STOP);

    (void)state;
    assert_int_equal(fsm.state, SERVICE_STOPPING);
    assert_true(e.actions & FSM_DO_SIGNAL_STOP);
    e = exit_with(&fsm, true, 100); /* redis-server exits 0 on SIGTERM */
    assert_int_equal(fsm.state, SERVICE_STOPPED);
    assert_int_equal(e.note, FSM_NOTE_STOPPED);
    assert_false(e.actions & (FSM_DO_SPAWN | FSM_DO_ARM_TIMER));
    assert_int_equal(fsm.failures, 0);
}

static void a_stop_during_the_backoff_cancels_the_revival(void **state)
{
    struct fsm fsm = {SERVICE_RUNNING, 0, FSM_STOP_REQUESTED};
    struct fsm_effects e;

    (void)state;
    exit_with(&fsm, true, 100);
    assert_int_equal(fsm.state, SERVICE_BACKOFF);
    e = step(&fsm, FSM_STOP);
    assert_int_equal(fsm.state, SERVICE_STOPPED);
    assert_true(e.actions & FSM_DO_CANCEL_TIMER);
    assert_false(e.actions & FSM_DO_SPAWN);
    /* A timer that fired before it was cancelled starts nothing. */
    e = step(&fsm, FSM_TIMEOUT);
    assert_int_equal(fsm.state, SERVICE_STOPPED);
    assert_int_equal(e.note, FSM_NOTE_IGNORED);
    assert_false(e.actions & FSM_DO_SPAWN);
}

static void an_exit_after_the_stop_signal_is_a_stop_whatever_the_status(void **state)
{
    struct fsm fsm = {SERVICE_STOPPING, 0, FSM_STOP_REQUESTED};
    struct fsm_effects e = exit_with(&fsm, false, 100); /* killed after stop_timeout */

    (void)state;
    assert_int_equal(fsm.state, SERVICE_STOPPED);
    assert_false(e.actions & (FSM_DO_SPAWN | FSM_DO_ARM_TIMER));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_clean_exit_is_revived_after_the_backoff_and_not_called_a_crash),
        cmocka_unit_test(an_unexpected_exit_is_still_a_crash),
        cmocka_unit_test(clean_exits_in_a_loop_back_off_like_crashes_then_go_fatal),
        cmocka_unit_test(a_long_run_before_a_clean_exit_forgets_earlier_failures),
        cmocka_unit_test(a_requested_stop_is_never_revived),
        cmocka_unit_test(a_stop_during_the_backoff_cancels_the_revival),
        cmocka_unit_test(an_exit_after_the_stop_signal_is_a_stop_whatever_the_status),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
