/*
 * A supervised service as the other parts see it: opaque, read through the accessors and
 * the snapshot below, and acted on through the supervisor's requests (supervisor.h), a
 * reload and waiters. Its inside is service_impl.h, private to agent/supervise.
 */
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

/* What a waiter waits for. */
enum wait_goal { WAIT_READY, WAIT_STOPPED, WAIT_RELOADED };

/*
 * Called once when the goal is reached (result 0) or can no longer be
 * reached (negative result, why says so). The waiter is freed afterwards.
 */
typedef void (*service_wait_fn)(struct service *service, void *data, int result, const char *why);

#define SERVICE_STATS_MAX (64 * 1024)

/* Its name, the configuration in force, and its state. */
const char *service_name(const struct service *service);
const struct service_config *service_config_of(const struct service *service);
enum service_state service_state_of(const struct service *service);

/* Its main process, 0 when none. */
pid_t service_pid(const struct service *service);

/* The configuration it will run with next: a changed one waiting for it to stop, or the one
 * in force. */
const struct service_config *service_upcoming_config(const struct service *service);

/*
 * What status, metrics and the agent's readiness read, in one copy. The strings and stats
 * belong to the service: valid until the loop runs again.
 */
struct service_snapshot {
    const char *name;
    const struct service_config *config;
    enum service_state state;
    pid_t pid;
    unsigned restarts;       /* spawns after the first */
    unsigned crashes;        /* of those, revivals after an exit or failure nobody asked for */
    uint64_t uptime_usec;    /* since it became ready, while RUNNING; else 0 */
    bool start_pending;      /* marked to start, waiting for its dependencies */
    bool stop_pending;       /* marked to stop, waiting for its dependents to stop */
    bool change_pending;     /* marked to start or stop, or to be removed once stopped */
    bool reloading;          /* a reload is under way */
    bool removing;           /* removed by a configuration reload, freed once stopped */
    bool operator_stopped;   /* stopped by hand: stays stopped until asked to start */
    const char *status_text; /* the last STATUS= it sent */
    const char *reason;      /* why it is in its state */
    json_t *stats;           /* the last CERTVISOR_STATS= object (borrowed), or NULL */
};
void service_snapshot(const struct service *service, struct service_snapshot *snapshot);

/* Its captured output, for tail and follow (output.h). */
struct output *service_output(const struct service *service);

/*
 * Reloads a running service: sends its reload signal and waits for
 * RELOADING=1 then READY=1, or runs its reload command and waits for it to
 * end. The WAIT_RELOADED waiters hear the outcome. Returns 0 when the reload
 * is under way (or already was), or a negative error when it could not begin
 * (-ESRCH: the service is not running); the waiters have then heard why.
 */
int service_reload(struct service *service);

/* Registers a waiter. Returns 0 or -ENOMEM. */
int service_wait(struct service *service, enum wait_goal goal, service_wait_fn fn, void *data);

/* Human description for status: "pid 12, uptime 0:01:02" and the like. */
void service_describe(const struct service *service, char *buf, size_t len);

/* Monotonic clock in microseconds. */
uint64_t monotonic_usec(void);

#endif
