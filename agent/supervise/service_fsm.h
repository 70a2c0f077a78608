/* The per-service state machine as a pure function: state + event -> new state + actions. */
#ifndef CERTVISOR_SERVICE_FSM_H
#define CERTVISOR_SERVICE_FSM_H

#include "restart_policy.h"

#include <stdbool.h>

enum service_state {
    SERVICE_STOPPED,
    SERVICE_STARTING,
    SERVICE_RUNNING,
    SERVICE_BACKOFF,
    SERVICE_STOPPING,
    SERVICE_EXITED,
    SERVICE_FATAL,
};

enum fsm_event_kind {
    FSM_START,   /* an operator, autostart or a dependent asks for the service */
    FSM_STOP,    /* an operator or shutdown asks it to stop */
    FSM_SPAWNED, /* exec() succeeded */
    FSM_READY,   /* READY=1 arrived */
    FSM_EXIT,    /* the main process exited */
    FSM_TIMEOUT, /* the timer the machine armed fired */
    FSM_ADOPTED, /* a running process a previous agent started was taken over */
};

struct fsm_event {
    enum fsm_event_kind kind;
    bool expected_exit; /* FSM_EXIT: the status is one of the service's exit codes */
    double run_seconds; /* FSM_EXIT: seconds since readiness, or < 0 when never ready */
};

enum fsm_stop_cause { FSM_STOP_REQUESTED, FSM_STOP_START_TIMEOUT };

struct fsm {
    enum service_state state;
    int failures; /* consecutive failed starts or short runs */
    enum fsm_stop_cause stop_cause;
};

/* What the caller must do after a step, in this order: cancel, signal, spawn, arm. */
enum fsm_action {
    FSM_DO_CANCEL_TIMER = 1 << 0,
    FSM_DO_SIGNAL_STOP = 1 << 1, /* the stop signal to the process group */
    FSM_DO_KILL = 1 << 2,        /* SIGKILL to the process group */
    FSM_DO_SPAWN = 1 << 3,
    FSM_DO_ARM_TIMER = 1 << 4, /* for timer_seconds */
};

/* Why the step went where it went, for the status line and the log. */
enum fsm_note {
    FSM_NOTE_NONE,
    FSM_NOTE_IGNORED,       /* the event means nothing in this state */
    FSM_NOTE_EXITED_EARLY,  /* exited before it was ready */
    FSM_NOTE_START_TIMEOUT, /* was not ready within start_timeout */
    FSM_NOTE_CRASHED,       /* exited unexpectedly while running */
    FSM_NOTE_EXITED,        /* exited with an expected status (restarted if autorestart = true) */
    FSM_NOTE_GAVE_UP,       /* too many failures: FATAL */
    FSM_NOTE_STOP_TIMEOUT,  /* ignored the stop signal: killed */
    FSM_NOTE_STOPPED,       /* stopped as asked */
};

struct fsm_effects {
    unsigned actions;
    double timer_seconds;
    enum fsm_note note; /* for a failure: what failed, even when it was the last straw */
    bool gave_up;       /* too many failures: the service is FATAL */
};

const char *service_state_name(enum service_state state);

/* True for the states in which the service has a process. */
bool service_state_active(enum service_state state);

/* The delay before the n-th retry (n >= 1): initial * factor^(n-1), capped at the maximum. */
double fsm_backoff_delay(const struct fsm_policy *policy, int failures);

/* Applies one event. Never fails: an event that means nothing is noted as FSM_NOTE_IGNORED. */
void fsm_step(struct fsm *fsm, const struct fsm_policy *policy, const struct fsm_event *event,
              struct fsm_effects *ret_effects);

#endif
