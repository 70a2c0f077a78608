/*
 * The inside of a supervised service, private to agent/supervise: the other parts see
 * struct service only through service.h (accessors, a snapshot, waiters, reload) and
 * supervisor.h, so that only this part writes its fields. The guard makes an include
 * from elsewhere fail the build (CMake defines it for certvisor_supervise alone).
 */
#ifndef CERTVISOR_SERVICE_IMPL_H
#define CERTVISOR_SERVICE_IMPL_H

#ifndef CERTVISOR_SUPERVISE_INTERNAL
#error "service_impl.h is private to agent/supervise: use the accessors in service.h"
#endif

#include "service.h"

struct output;
struct supervisor;

/* A file as the kernel names it, and when it last changed: another file at the path (a
 * package upgrade renames a new one over it) or a rewrite shows. known is false when the
 * path could not be read. */
struct binary_identity {
    bool known;
    dev_t dev;
    ino_t ino;
    int64_t mtime_ns;
};

/* A signal reload goes SIGNALED -> RELOADING -> IDLE; a reload command, COMMAND -> IDLE. */
enum reload_phase { RELOAD_IDLE, RELOAD_SIGNALED, RELOAD_RELOADING, RELOAD_COMMAND };

struct service_waiter {
    struct service_waiter *next;
    enum wait_goal goal;
    service_wait_fn fn;
    void *data;
};

/* A process's pidfd, watched on the loop for its exit (pidfd -1 and event NULL: none). */
struct pid_watch {
    int pidfd;
    struct event *event;
};

struct service {
    struct supervisor *supervisor; /* the one that owns it */
    struct service_config *config;
    struct service_config *next_config; /* takes effect once the service is stopped */
    struct fsm fsm;
    pid_t pid; /* main process, 0 when none */
    /* Its session and process group: the first main process's pid (spawn made it a session
     * leader). A hand-over (upgrade_signal) changes the main process, not the session. */
    pid_t session;
    /* The command file it was started from, to tell an upgrade (upgrade.c). */
    struct binary_identity binary;
    unsigned long long start_time; /* the main process's, from /proc (0: unknown), for the record */
    pid_t draining_pid;            /* the previous main process after a hand-over, until it exits */
    struct pid_watch draining;     /* and its pidfd, watched */
    struct event *handover_timer;  /* armed while waiting for the new process's MAINPID= */
    int exec_status_fd;            /* read end of the exec-status pipe while starting, else -1 */
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
    enum {
        RELOAD_ACTION_NONE,
        RELOAD_ACTION_START,
        RELOAD_ACTION_RESTART,
        RELOAD_ACTION_UPGRADE /* same settings, but its binary was replaced */
    } reload_action;
    bool settled_once; /* reached RUNNING, FATAL or EXITED at least once (for agent readiness) */
    uint64_t ready_at_usec;    /* CLOCK_MONOTONIC when it became ready */
    uint64_t state_since_usec; /* CLOCK_MONOTONIC of the last state change */
    time_t state_since_wall;
    unsigned restarts; /* spawns after the first */
    unsigned crashes;  /* of those, revivals after it exited or failed unasked (the rest planned) */
    bool reviving;     /* the next spawn revives it after such an exit */
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
    /*
     * A process a previous agent started, adopted at start-up (adopt.c): not the agent's
     * child, so its exit comes through a pidfd, with no status. -1 and NULL otherwise.
     */
    struct pid_watch adopted;
    /*
     * CLOCK_REALTIME_COARSE (usec) when the process last began to read its files (its spawn,
     * or the reload it finished since): a rendered file changed at or after it was not read.
     * load_begun_usec is the one under way, loaded_usec the last that took.
     */
    uint64_t load_begun_usec;
    uint64_t loaded_usec;
};

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

/* The reload command's process ended (see supervisor_reap). */
void service_handle_reload_exit(struct service *service, int wait_status);

/* A process an earlier agent started, as its record says (records.h). */
struct service_adoption {
    pid_t pid;                     /* checked by the caller: still the recorded process */
    uint64_t loaded_usec;          /* when it last read its files */
    unsigned restarts;             /* its service's restarts so far */
    unsigned crashes;              /* of those, revivals after an unasked exit */
    unsigned long long start_time; /* as recorded, and checked */
    const char *how; /* "adopted from the previous agent", for its reason and the log */
};

/*
 * Takes over the process as RUNNING, watching its exit through pidfd (taken). Returns 0, or
 * -ENOMEM with nothing taken.
 */
int service_adopt(struct service *service, const struct service_adoption *adoption, int pidfd);

/*
 * Makes pid, a process of the service's session, its main process (a hand-over): the one
 * it replaces drains and exits on its own (draining_pid). Returns 0 or a negative errno.
 */
int service_switch_main(struct service *service, pid_t pid);

/* --- upgrades (upgrade.c) --- */

/* Records the identity of the command file the service was just started from. */
void service_note_binary(struct service *service);

/* True when the command file is not the one the running process was started from. */
bool service_binary_replaced(const struct service *service);

/* The identity as text for the record ("dev:ino:mtime_ns"), and back (false: ignored). */
void binary_identity_format(const struct binary_identity *id, char *buf, size_t len);
bool binary_identity_parse(const char *text, struct binary_identity *id);

/*
 * Its binary was replaced: a service with an upgrade_signal is asked to hand over to a new
 * process of it (no restart, no refused connection); any other is restarted in dependency
 * order. why is for the log.
 */
void service_upgrade(struct supervisor *sup, struct service *service, const char *why);

/* True while a hand-over was asked for and the new process has not announced itself. */
bool service_handover_pending(const struct service *service);

/* The previous main process after a hand-over (draining_pid) has exited: logs it, forgets it. */
void service_draining_ended(struct service *service);

/* The new process announced MAINPID=pid: it becomes the main process. */
void service_handover_take(struct service *service, pid_t pid);

/* Ends a hand-over wait (the process exited, or the service is freed). */
void service_handover_done(struct service *service);

/* CLOCK_REALTIME_COARSE in microseconds: the clock file timestamps come from. */
uint64_t coarse_wall_usec(void);

/* Completes the waiters for goal with a result (0 = reached). */
void service_complete_waiters(struct service *service, enum wait_goal goal, int result,
                              const char *why);

#endif
