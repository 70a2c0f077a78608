/* Unit tests for the service state machine: every transition, backoff and FATAL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "service_fsm.h"

static const struct fsm_policy policy = {
    .autorestart = AUTORESTART_UNEXPECTED,
    .readiness = READINESS_NOTIFY,
    .start_retries = 2,
    .start_timeout = 5,
    .stop_timeout = 3,
    .backoff_initial = 0.5,
    .backoff_factor = 2,
    .backoff_max = 1.5,
    .backoff_reset_after = 10,
};

static struct fsm_effects step(struct fsm *fsm, const struct fsm_policy *p,
                               enum fsm_event_kind kind)
{
    struct fsm_event event = {kind, false, -1};
    struct fsm_effects effects;

    fsm_step(fsm, p, &event, &effects);
    return effects;
}

static struct fsm_effects exit_with(struct fsm *fsm, const struct fsm_policy *p, bool expected,
                                    double run_seconds)
{
    struct fsm_event event = {FSM_EXIT, expected, run_seconds};
    struct fsm_effects effects;

    fsm_step(fsm, p, &event, &effects);
    return effects;
}

static void start_spawns_and_arms_the_start_timeout(void **state)
{
    struct fsm fsm = {SERVICE_STOPPED, 0, FSM_STOP_REQUESTED};
    struct fsm_effects e = step(&fsm, &policy, FSM_START);

    (void)state;
    assert_int_equal(fsm.state, SERVICE_STARTING);
    assert_true(e.actions & FSM_DO_SPAWN);
    assert_true(e.actions & FSM_DO_ARM_TIMER);
    assert_true(e.timer_seconds == 5);
}

static void ready_makes_it_running(void **state)
{
    struct fsm fsm = {SERVICE_STARTING, 0, FSM_STOP_REQUESTED};
    struct fsm_effects e = step(&fsm, &policy, FSM_READY);

    (void)state;
    assert_int_equal(fsm.state, SERVICE_RUNNING);
    assert_true(e.actions & FSM_DO_CANCEL_TIMER);
}

static void spawned_is_ready_only_for_started_readiness(void **state)
{
    struct fsm_policy started = policy;
    struct fsm fsm = {SERVICE_STARTING, 0, FSM_STOP_REQUESTED};

    (void)state;
    step(&fsm, &policy, FSM_SPAWNED);
    assert_int_equal(fsm.state, SERVICE_STARTING);
    started.readiness = READINESS_STARTED;
    step(&fsm, &started, FSM_SPAWNED);
    assert_int_equal(fsm.state, SERVICE_RUNNING);
}

static void early_exits_back_off_geometrically_then_fatal(void **state)
{
    struct fsm fsm = {SERVICE_STARTING, 0, FSM_STOP_REQUESTED};
    struct fsm_effects e;

    (void)state;
    e = exit_with(&fsm, &policy, false, -1);
    assert_int_equal(fsm.state, SERVICE_BACKOFF);
    assert_int_equal(e.note, FSM_NOTE_EXITED_EARLY);
    assert_true(e.timer_seconds == 0.5);
    step(&fsm, &policy, FSM_TIMEOUT);
    assert_int_equal(fsm.state, SERVICE_STARTING);
    e = exit_with(&fsm, &policy, false, -1);
    assert_int_equal(fsm.state, SERVICE_BACKOFF);
    assert_true(e.timer_seconds == 1.0);
    step(&fsm, &policy, FSM_TIMEOUT);
    e = exit_with(&fsm, &policy, true, -1); /* even a clean exit before ready is a failure */
    assert_int_equal(fsm.state, SERVICE_FATAL);
    assert_true(e.gave_up);
    assert_int_equal(e.note, FSM_NOTE_EXITED_EARLY);
    assert_int_equal(fsm.failures, 3);
}

static void backoff_is_capped(void **state)
{
    (void)state;
    assert_true(fsm_backoff_delay(&policy, 1) == 0.5);
    assert_true(fsm_backoff_delay(&policy, 2) == 1.0);
    assert_true(fsm_backoff_delay(&policy, 3) == 1.5);
    assert_true(fsm_backoff_delay(&policy, 30) == 1.5);
}

static void start_timeout_stops_then_counts_a_failure(void **state)
{
    struct fsm fsm = {SERVICE_STARTING, 0, FSM_STOP_REQUESTED};
    struct fsm_effects e = step(&fsm, &policy, FSM_TIMEOUT);

    (void)state;
    assert_int_equal(fsm.state, SERVICE_STOPPING);
    assert_true(e.actions & FSM_DO_SIGNAL_STOP);
    assert_true(e.timer_seconds == 3);
    e = exit_with(&fsm, &policy, false, -1);
    assert_int_equal(fsm.state, SERVICE_BACKOFF);
    assert_int_equal(e.note, FSM_NOTE_START_TIMEOUT);
}

static void stop_then_kill_on_timeout(void **state)
{
    struct fsm fsm = {SERVICE_RUNNING, 0, FSM_STOP_REQUESTED};
    struct fsm_effects e = step(&fsm, &policy, FSM_STOP);

    (void)state;
    assert_int_equal(fsm.state, SERVICE_STOPPING);
    assert_true(e.actions & FSM_DO_SIGNAL_STOP);
    e = step(&fsm, &policy, FSM_TIMEOUT);
    assert_true(e.actions & FSM_DO_KILL);
    assert_int_equal(fsm.state, SERVICE_STOPPING);
    e = exit_with(&fsm, &policy, false, 3);
    assert_int_equal(fsm.state, SERVICE_STOPPED);
    assert_int_equal(e.note, FSM_NOTE_STOPPED);
}

static void an_adopted_process_is_running_with_nothing_to_do(void **state)
{
    struct fsm fsm = {SERVICE_STOPPED, 3, FSM_STOP_REQUESTED};
    struct fsm_effects e = step(&fsm, &policy, FSM_ADOPTED);

    (void)state;
    assert_int_equal(fsm.state, SERVICE_RUNNING);
    assert_int_equal(fsm.failures, 0);
    assert_int_equal(e.actions, 0);
    /* Only a stopped service takes a process over. */
    assert_int_equal(step(&fsm, &policy, FSM_ADOPTED).note, FSM_NOTE_IGNORED);
    assert_int_equal(fsm.state, SERVICE_RUNNING);
}

static void unexpected_exit_restarts_expected_does_not(void **state)
{
    struct fsm fsm = {SERVICE_RUNNING, 0, FSM_STOP_REQUESTED};
    struct fsm_effects e = exit_with(&fsm, &policy, true, 100);

    (void)state;
    assert_int_equal(fsm.state, SERVICE_EXITED);
    assert_int_equal(e.note, FSM_NOTE_EXITED);
    fsm.state = SERVICE_RUNNING;
    e = exit_with(&fsm, &policy, false, 100);
    assert_int_equal(fsm.state, SERVICE_BACKOFF);
    assert_int_equal(e.note, FSM_NOTE_CRASHED);
}

static void autorestart_true_and_false(void **state)
{
    struct fsm_policy always = policy, never = policy;
    struct fsm fsm = {SERVICE_RUNNING, 0, FSM_STOP_REQUESTED};

    (void)state;
    always.autorestart = AUTORESTART_TRUE;
    never.autorestart = AUTORESTART_FALSE;
    exit_with(&fsm, &always, true, 100);
    assert_int_equal(fsm.state, SERVICE_BACKOFF);
    fsm.state = SERVICE_RUNNING;
    exit_with(&fsm, &never, false, 100);
    assert_int_equal(fsm.state, SERVICE_EXITED);
}

static void a_long_run_forgets_earlier_failures(void **state)
{
    struct fsm fsm = {SERVICE_RUNNING, 2, FSM_STOP_REQUESTED};

    (void)state;
    exit_with(&fsm, &policy, false, 11); /* ran longer than backoff_reset_after */
    assert_int_equal(fsm.state, SERVICE_BACKOFF);
    assert_int_equal(fsm.failures, 1);
    fsm.state = SERVICE_RUNNING;
    fsm.failures = 2;
    exit_with(&fsm, &policy, false, 1); /* a short run counts */
    assert_int_equal(fsm.state, SERVICE_FATAL);
}

static void stop_during_backoff_and_restart_after_fatal(void **state)
{
    struct fsm fsm = {SERVICE_BACKOFF, 1, FSM_STOP_REQUESTED};
    struct fsm_effects e = step(&fsm, &policy, FSM_STOP);

    (void)state;
    assert_int_equal(fsm.state, SERVICE_STOPPED);
    assert_true(e.actions & FSM_DO_CANCEL_TIMER);
    fsm.state = SERVICE_FATAL;
    fsm.failures = 3;
    step(&fsm, &policy, FSM_START);
    assert_int_equal(fsm.state, SERVICE_STARTING);
    assert_int_equal(fsm.failures, 0);
}

static void stop_during_a_timed_out_start_does_not_retry(void **state)
{
    struct fsm fsm = {SERVICE_STARTING, 0, FSM_STOP_REQUESTED};

    (void)state;
    step(&fsm, &policy, FSM_TIMEOUT);
    step(&fsm, &policy, FSM_STOP);
    exit_with(&fsm, &policy, false, -1);
    assert_int_equal(fsm.state, SERVICE_STOPPED);
}

static void meaningless_events_are_ignored(void **state)
{
    struct fsm fsm = {SERVICE_STOPPED, 0, FSM_STOP_REQUESTED};

    (void)state;
    assert_int_equal(step(&fsm, &policy, FSM_STOP).note, FSM_NOTE_IGNORED);
    assert_int_equal(step(&fsm, &policy, FSM_READY).note, FSM_NOTE_IGNORED);
    assert_int_equal(step(&fsm, &policy, FSM_TIMEOUT).note, FSM_NOTE_IGNORED);
    assert_int_equal(fsm.state, SERVICE_STOPPED);
    fsm.state = SERVICE_RUNNING;
    assert_int_equal(step(&fsm, &policy, FSM_START).note, FSM_NOTE_IGNORED);
    assert_int_equal(fsm.state, SERVICE_RUNNING);
}

static void zero_start_timeout_waits_forever(void **state)
{
    struct fsm_policy patient = policy;
    struct fsm fsm = {SERVICE_STOPPED, 0, FSM_STOP_REQUESTED};

    (void)state;
    patient.start_timeout = 0;
    assert_false(step(&fsm, &patient, FSM_START).actions & FSM_DO_ARM_TIMER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(start_spawns_and_arms_the_start_timeout),
        cmocka_unit_test(ready_makes_it_running),
        cmocka_unit_test(spawned_is_ready_only_for_started_readiness),
        cmocka_unit_test(early_exits_back_off_geometrically_then_fatal),
        cmocka_unit_test(backoff_is_capped),
        cmocka_unit_test(start_timeout_stops_then_counts_a_failure),
        cmocka_unit_test(stop_then_kill_on_timeout),
        cmocka_unit_test(an_adopted_process_is_running_with_nothing_to_do),
        cmocka_unit_test(unexpected_exit_restarts_expected_does_not),
        cmocka_unit_test(autorestart_true_and_false),
        cmocka_unit_test(a_long_run_forgets_earlier_failures),
        cmocka_unit_test(stop_during_backoff_and_restart_after_fatal),
        cmocka_unit_test(stop_during_a_timed_out_start_does_not_retry),
        cmocka_unit_test(meaningless_events_are_ignored),
        cmocka_unit_test(zero_start_timeout_waits_forever),
    };
    return cmocka_run_group_tests_name("service_fsm", tests, NULL, NULL);
}
