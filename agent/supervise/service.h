/* A supervised service at run time: its process, state machine, timers, output and waiters. */
#ifndef CERTVISOR_SERVICE_H
#define CERTVISOR_SERVICE_H

#include "service_config.h"
#include "service_fsm.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct output;
struct service;
struct supervisor;

/* A signal reload goes SIGNALED -> RELOADING -> IDLE; a reload command, COMMAND -> IDLE. */
enum reload_phase { RELOAD_IDLE, RELOAD_SIGNALED, RELOAD_RELOADING, RELOAD_COMMAND };

/* What a waiter waits for. */
enum wait_goal { WAIT_READY, WAIT_STOPPED, WAIT_RELOADED };

/*
 * Called once when the goal is reached (result 0) or can no longer be
 * reached (negative result, why says so). The waiter is freed afterwards.
 */
typedef void (*service_wait_fn)(struct service *service, void *data, int result, const char *why);

struct service_waiter {
    struct service_waiter *next;
    enum wait_goal goal;
    service_wait_fn fn;
    void *data;
};

struct service {
    struct supervisor *supervisor; /* the one that owns it */
    struct service_config *config;
    struct service_config *next_config; /* takes effect once the service is stopped */
    struct fsm fsm;
    pid_t pid;          /* main process (and process group and session), 0 when none */
    int exec_status_fd; /* read end of the exec-status pipe while starting, else -1 */
    struct event *exec_status_event;
    struct event *timer;        /* the state machine's timer */
    struct event *reload_timer; /* bounds a reload */
    enum reload_phase reload;
    /* The reload command's process (its own process group) until it is reaped, else 0. It may
     * outlive the reload it served (killed at the timeout): reload says whether one is waited on.
     */
    pid_t reload_pid;
    struct reload_run *reload_run; /* its output pipes (reload_command.c), NULL when none */
    bool reload_timed_out; /* it was killed at the timeout: the waiters hear so at its end */
    bool pending_start;    /* start once every dependency is ready */
    bool pending_stop;     /* stop once every dependent being stopped has stopped */
    bool operator_stopped; /* stopped by hand: a configuration reload leaves it stopped */
    bool remove_when_stopped;
    /* What a configuration reload asks of it, done once the new table is in place. */
    enum { RELOAD_ACTION_NONE, RELOAD_ACTION_START, RELOAD_ACTION_RESTART } reload_action;
    bool settled_once; /* reached RUNNING, FATAL or EXITED at least once (for agent readiness) */
    uint64_t ready_at_usec;    /* CLOCK_MONOTONIC when it became ready */
    uint64_t state_since_usec; /* CLOCK_MONOTONIC of the last state change */
    time_t state_since_wall;
    unsigned restarts; /* spawns after the first */
    char reason[640];  /* why it is in its state, for status */
    char exec_error[512];
    char status_text[128]; /* the last STATUS= it sent */
    /*
     * The last CERTVISOR_STATS= it sent: a JSON object (under
     * SERVICE_STATS_MAX bytes) for the metrics exporter, or NULL. Owned;
     * dropped when the process ends.
     */
    json_t *stats;
    struct output *output;
    struct service_waiter *waiters;
};

#define SERVICE_STATS_MAX (64 * 1024)

/* Creates the run-time object for a configuration (which it takes over). */
int service_new(struct supervisor *supervisor, struct service_config *config,
                struct service **ret_service);

/* Stops watching everything and frees. The service must not be active. */
void service_free(struct service *service);

/* Feeds one event to the state machine and carries out what it says. */
void service_dispatch(struct service *service, enum fsm_event_kind kind);

/* Handles the exit of the main process with a waitpid() status. */
void service_handle_exit(struct service *service, int wait_status);

/* Handles one notify message (already attributed to this service). */
void service_handle_notify(struct service *service, const char *message, pid_t sender);

/*
 * Reloads a running service: sends its reload signal and waits for
 * RELOADING=1 then READY=1, or runs its reload command and waits for it to
 * end. The WAIT_RELOADED waiters hear the outcome. Returns 0 when the reload
 * is under way (or already was), or a negative error when it could not begin
 * (-ESRCH: the service is not running); the waiters have then heard why.
 */
int service_reload(struct service *service);

/* The reload command's process ended (see supervisor_reap). */
void service_handle_reload_exit(struct service *service, int wait_status);

/* Registers a waiter. Returns 0 or -ENOMEM. */
int service_wait(struct service *service, enum wait_goal goal, service_wait_fn fn, void *data);

/* Completes the waiters for goal with a result (0 = reached). */
void service_complete_waiters(struct service *service, enum wait_goal goal, int result,
                              const char *why);

/* Human description for status: "pid 12, uptime 0:01:02" and the like. */
void service_describe(const struct service *service, char *buf, size_t len);

/* Monotonic clock in microseconds. */
uint64_t monotonic_usec(void);

#endif
