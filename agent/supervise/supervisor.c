/* Scheduling across services: dependency order, operator requests, child exits, notify routing. */
#include "supervisor.h"

#include "cv_error.h"
#include "log.h"
#include "service.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static bool depends_on(const struct service *service, const struct service *dependency)
{
    for (size_t i = 0; i < service->config->n_after; i++)
        if (strcmp(service->config->after[i], dependency->config->name) == 0)
            return true;
    return false;
}

static bool has_process_or_retry(const struct service *service)
{
    return service_state_active(service->fsm.state) || service->fsm.state == SERVICE_BACKOFF;
}

bool supervisor_all_quiet(const struct agent *agent)
{
    for (size_t i = 0; i < agent->n_services; i++)
        if (has_process_or_retry(agent->services[i]))
            return false;
    return true;
}

/*
 * As in systemd, a stop is ordered before a start between two dependent services
 * whichever way the dependency points: a service waits to start while a service
 * that depends on it is being stopped, so "restart all" starts nothing before the
 * stops it began are done, even a service whose own stop was immediate (BACKOFF).
 */
static bool dependent_stopping(const struct agent *agent, const struct service *service)
{
    for (size_t i = 0; i < agent->n_services; i++) {
        const struct service *other = agent->services[i];

        if (other != service && depends_on(other, service) &&
            (other->pending_stop || other->fsm.state == SERVICE_STOPPING))
            return true;
    }
    return false;
}

/*
 * A pending stop waits for the dependents that are being stopped too, so that
 * none of them loses a dependency it still runs with. A service in BACKOFF has
 * no process to take from them, only a retry: that is cancelled at once, or the
 * retry would start it again while the agent stops it (its shutdown, "restart
 * all"), and a shard that had just exited would be revived behind the stop.
 */
static bool stop_must_wait(const struct agent *agent, const struct service *service)
{
    return service->fsm.state != SERVICE_BACKOFF && dependent_stopping(agent, service);
}

static void run_pending_stops(struct agent *agent)
{
    for (size_t i = agent->n_services; i-- > 0;) {
        struct service *service = agent->services[i];

        if (!service->pending_stop || stop_must_wait(agent, service))
            continue;
        service->pending_stop = false;
        if (has_process_or_retry(service))
            service_dispatch(service, FSM_STOP);
        else
            service_complete_waiters(service, WAIT_STOPPED, 0, NULL);
    }
}

enum dependency_status { DEPS_READY, DEPS_WAIT, DEPS_FAILED };

static enum dependency_status check_dependencies(const struct agent *agent,
                                                 const struct service *service,
                                                 const struct service **ret_failed)
{
    enum dependency_status status = DEPS_READY;

    for (size_t d = 0; d < service->config->n_after; d++) {
        const struct service *dep = agent_find_service(agent, service->config->after[d]);

        if (!dep || dep->remove_when_stopped) {
            *ret_failed = dep;
            return DEPS_FAILED;
        }
        if (dep->fsm.state == SERVICE_RUNNING)
            continue;
        if (dep->pending_start || dep->pending_stop || dep->fsm.state == SERVICE_STARTING ||
            dep->fsm.state == SERVICE_BACKOFF || dep->fsm.state == SERVICE_STOPPING) {
            status = DEPS_WAIT;
            continue;
        }
        *ret_failed = dep;
        return DEPS_FAILED;
    }
    return status;
}

static void run_pending_starts(struct agent *agent)
{
    for (size_t i = 0; i < agent->n_services; i++) {
        struct service *service = agent->services[i];
        const struct service *failed = NULL;
        char why[400];

        if (!service->pending_start || service->pending_stop ||
            service_state_active(service->fsm.state) || dependent_stopping(agent, service))
            continue;
        switch (check_dependencies(agent, service, &failed)) {
        case DEPS_WAIT:
            break;
        case DEPS_FAILED:
            service->pending_start = false;
            if (failed)
                snprintf(why, sizeof(why), "dependency '%s' is %s%s%.300s", failed->config->name,
                         service_state_name(failed->fsm.state), *failed->reason ? ": " : "",
                         failed->reason);
            else
                snprintf(why, sizeof(why), "a dependency is no longer configured");
            log_error("Not starting service '%s': %s", service->config->name, why);
            snprintf(service->reason, sizeof(service->reason), "not started: %.200s", why);
            service_complete_waiters(service, WAIT_READY, CV_EDEPENDENCY, why);
            break;
        case DEPS_READY:
            service->pending_start = false;
            service_dispatch(service, FSM_START);
            break;
        }
    }
}

static bool removable(const struct service *service)
{
    return service->remove_when_stopped && !has_process_or_retry(service) && !service->pending_stop;
}

void supervisor_drop_removed(struct agent *agent)
{
    size_t kept = 0;

    for (size_t i = 0; i < agent->n_services; i++) {
        struct service *service = agent->services[i];

        if (removable(service)) {
            log_info("Service '%s' removed", service->config->name);
            service_free(service);
        } else {
            agent->services[kept++] = service;
        }
    }
    agent->n_services = kept;
}

void supervisor_schedule(struct agent *agent)
{
    static bool running, again;

    if (running) {
        again = true;
        return;
    }
    running = true;
    do {
        again = false;
        run_pending_stops(agent);
        run_pending_starts(agent);
    } while (again);
    running = false;
    /* Never free a service here: the caller may be that service's own transition.
     * The removal runs from the event loop, on its own. */
    for (size_t i = 0; i < agent->n_services; i++) {
        if (removable(agent->services[i]) && agent->removal_event) {
            event_active(agent->removal_event, 0, 0);
            break;
        }
    }
    if (agent->shutting_down && supervisor_all_quiet(agent))
        event_base_loopexit(agent->base, NULL);
}

static void mark_start(struct agent *agent, struct service *service)
{
    service->pending_start = true;
    service->operator_stopped = false;
    for (size_t d = 0; d < service->config->n_after; d++) {
        struct service *dep = agent_find_service(agent, service->config->after[d]);

        if (dep && !dep->pending_start && dep->fsm.state != SERVICE_RUNNING &&
            dep->fsm.state != SERVICE_STARTING && dep->fsm.state != SERVICE_BACKOFF)
            mark_start(agent, dep);
    }
}

void supervisor_mark_start(struct agent *agent, struct service *service)
{
    mark_start(agent, service);
}

void supervisor_mark_stop(struct service *service, bool by_operator)
{
    if (service->pending_start && !service_state_active(service->fsm.state)) {
        service->pending_start = false;
        service->reason[0] = '\0';
        service_complete_waiters(service, WAIT_READY, -ECANCELED, "stopped before it started");
    }
    service->pending_start = false;
    service->pending_stop = true;
    if (by_operator)
        service->operator_stopped = true;
}

void supervisor_mark_restart(struct agent *agent, struct service *service)
{
    service->pending_stop = true;
    mark_start(agent, service);
}

static struct service *service_by_pid(const struct agent *agent, pid_t pid)
{
    for (size_t i = 0; i < agent->n_services; i++)
        if (agent->services[i]->pid == pid)
            return agent->services[i];
    return NULL;
}

static struct service *service_by_reload_pid(const struct agent *agent, pid_t pid)
{
    for (size_t i = 0; i < agent->n_services; i++)
        if (agent->services[i]->reload_pid == pid)
            return agent->services[i];
    return NULL;
}

void supervisor_reap(struct agent *agent)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct service *service = service_by_pid(agent, pid);

        if (service)
            service_handle_exit(service, status);
        else if ((service = service_by_reload_pid(agent, pid)))
            service_handle_reload_exit(service, status);
        else
            log_debug("Reaped process %d (not a service's main process)", (int)pid);
    }
}

void supervisor_on_notify(void *data, pid_t sender, const char *message)
{
    struct agent *agent = data;
    struct service *service = service_by_pid(agent, sender);

    /* Services lead their own session: any of their processes may speak for them. */
    if (!service) {
        pid_t session = getsid(sender);

        if (session > 0)
            service = service_by_pid(agent, session);
    }
    if (!service) {
        log_debug("Dropped a notify message from pid %d, which is no service's", (int)sender);
        return;
    }
    service_handle_notify(service, message, sender);
}
