/* The per-service state machine as a pure function: state + event -> new state + actions. */
#include "service_fsm.h"

const char *service_state_name(enum service_state state)
{
    static const char *const names[] = {"STOPPED",  "STARTING", "RUNNING", "BACKOFF",
                                        "STOPPING", "EXITED",   "FATAL"};
    return names[state];
}

bool service_state_active(enum service_state state)
{
    return state == SERVICE_STARTING || state == SERVICE_RUNNING || state == SERVICE_STOPPING;
}

double fsm_backoff_delay(const struct fsm_policy *policy, int failures)
{
    double delay = policy->backoff_initial;

    for (int i = 1; i < failures && delay < policy->backoff_max; i++)
        delay *= policy->backoff_factor;
    return delay > policy->backoff_max ? policy->backoff_max : delay;
}

/* Arms the timer; a zero delay fires on the next turn of the loop. */
static void arm(struct fsm_effects *out, double seconds)
{
    out->actions |= FSM_DO_ARM_TIMER;
    out->timer_seconds = seconds > 0 ? seconds : 0;
}

static void begin_start(struct fsm *fsm, const struct fsm_policy *policy, struct fsm_effects *out)
{
    fsm->state = SERVICE_STARTING;
    out->actions |= FSM_DO_CANCEL_TIMER | FSM_DO_SPAWN;
    if (policy->start_timeout > 0) /* 0: wait for readiness as long as it takes */
        arm(out, policy->start_timeout);
}

/* Counts one failure and goes to BACKOFF, or to FATAL once the retries are used up. */
static void count_failure(struct fsm *fsm, const struct fsm_policy *policy, struct fsm_effects *out)
{
    fsm->failures++;
    out->actions |= FSM_DO_CANCEL_TIMER;
    if (fsm->failures > policy->start_retries) {
        fsm->state = SERVICE_FATAL;
        out->gave_up = true;
        return;
    }
    fsm->state = SERVICE_BACKOFF;
    arm(out, fsm_backoff_delay(policy, fsm->failures));
}

static void begin_stop(struct fsm *fsm, const struct fsm_policy *policy, enum fsm_stop_cause cause,
                       struct fsm_effects *out)
{
    fsm->state = SERVICE_STOPPING;
    fsm->stop_cause = cause;
    out->actions |= FSM_DO_CANCEL_TIMER | FSM_DO_SIGNAL_STOP;
    arm(out, policy->stop_timeout);
}

static void on_exit_while_running(struct fsm *fsm, const struct fsm_policy *policy,
                                  const struct fsm_event *event, struct fsm_effects *out)
{
    bool restart = policy->autorestart == AUTORESTART_TRUE ||
                   (policy->autorestart == AUTORESTART_UNEXPECTED && !event->expected_exit);

    if (!restart) {
        fsm->state = SERVICE_EXITED;
        out->actions |= FSM_DO_CANCEL_TIMER;
        out->note = event->expected_exit ? FSM_NOTE_EXITED : FSM_NOTE_CRASHED;
        return;
    }
    if (event->run_seconds >= policy->backoff_reset_after)
        fsm->failures = 0;
    /* autorestart = true revives a clean exit too (a database's shard after a SHUTDOWN):
     * it is not called a crash, but it counts and backs off like one, so a loop cannot spin. */
    out->note = event->expected_exit ? FSM_NOTE_EXITED : FSM_NOTE_CRASHED;
    count_failure(fsm, policy, out);
}

static void on_exit(struct fsm *fsm, const struct fsm_policy *policy, const struct fsm_event *event,
                    struct fsm_effects *out)
{
    switch (fsm->state) {
    case SERVICE_STARTING:
        out->note = FSM_NOTE_EXITED_EARLY;
        count_failure(fsm, policy, out);
        break;
    case SERVICE_RUNNING:
        on_exit_while_running(fsm, policy, event, out);
        break;
    case SERVICE_STOPPING:
        if (fsm->stop_cause == FSM_STOP_START_TIMEOUT) {
            out->note = FSM_NOTE_START_TIMEOUT;
            count_failure(fsm, policy, out);
        } else {
            fsm->state = SERVICE_STOPPED;
            out->actions |= FSM_DO_CANCEL_TIMER;
            out->note = FSM_NOTE_STOPPED;
        }
        break;
    default:
        out->note = FSM_NOTE_IGNORED;
    }
}

static void on_timeout(struct fsm *fsm, const struct fsm_policy *policy, struct fsm_effects *out)
{
    switch (fsm->state) {
    case SERVICE_STARTING:
        out->note = FSM_NOTE_START_TIMEOUT;
        begin_stop(fsm, policy, FSM_STOP_START_TIMEOUT, out);
        break;
    case SERVICE_STOPPING:
        out->actions |= FSM_DO_KILL;
        out->note = FSM_NOTE_STOP_TIMEOUT;
        break;
    case SERVICE_BACKOFF:
        begin_start(fsm, policy, out);
        break;
    default:
        out->note = FSM_NOTE_IGNORED;
    }
}

void fsm_step(struct fsm *fsm, const struct fsm_policy *policy, const struct fsm_event *event,
              struct fsm_effects *ret_effects)
{
    struct fsm_effects out = {0, 0, FSM_NOTE_NONE, false};
    enum service_state state = fsm->state;

    switch (event->kind) {
    case FSM_START:
        if (state == SERVICE_STOPPED || state == SERVICE_EXITED || state == SERVICE_FATAL) {
            fsm->failures = 0;
            begin_start(fsm, policy, &out);
        } else if (state == SERVICE_BACKOFF) {
            begin_start(fsm, policy, &out);
        } else {
            out.note = FSM_NOTE_IGNORED;
        }
        break;
    case FSM_STOP:
        if (state == SERVICE_STARTING || state == SERVICE_RUNNING) {
            begin_stop(fsm, policy, FSM_STOP_REQUESTED, &out);
        } else if (state == SERVICE_BACKOFF) {
            fsm->state = SERVICE_STOPPED;
            out.actions |= FSM_DO_CANCEL_TIMER;
            out.note = FSM_NOTE_STOPPED;
        } else if (state == SERVICE_STOPPING) {
            fsm->stop_cause = FSM_STOP_REQUESTED; /* no retry after a timed-out start */
        } else {
            out.note = FSM_NOTE_IGNORED;
        }
        break;
    case FSM_SPAWNED:
        if (state == SERVICE_STARTING && policy->readiness == READINESS_STARTED) {
            fsm->state = SERVICE_RUNNING;
            out.actions |= FSM_DO_CANCEL_TIMER;
        } else if (state != SERVICE_STARTING) {
            out.note = FSM_NOTE_IGNORED;
        }
        break;
    case FSM_READY:
        if (state == SERVICE_STARTING) {
            fsm->state = SERVICE_RUNNING;
            out.actions |= FSM_DO_CANCEL_TIMER;
        } else {
            out.note = FSM_NOTE_IGNORED;
        }
        break;
    case FSM_EXIT:
        on_exit(fsm, policy, event, &out);
        break;
    case FSM_TIMEOUT:
        on_timeout(fsm, policy, &out);
        break;
    case FSM_ADOPTED:
        /* It was ready under the previous agent: running, with no timer to arm. */
        if (state == SERVICE_STOPPED) {
            fsm->state = SERVICE_RUNNING;
            fsm->failures = 0;
        } else {
            out.note = FSM_NOTE_IGNORED;
        }
        break;
    }
    *ret_effects = out;
}
