/* Scheduling across services: dependency order, operator requests, child exits, notify routing. */
#include "supervisor_impl.h"

#include "cv_error.h"
#include "log.h"
#include "notify.h"
#include "service_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_records(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    supervisor_write_records(arg);
}

void supervisor_records_changed(struct supervisor *sup)
{
    if (sup->records_event)
        event_active(sup->records_event, 0, 0);
}

static void on_removal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    supervisor_drop_removed(arg);
}

/* run_dir/output (0700), where the services' output FIFOs go; NULL (anonymous pipes, which
 * do not outlive the agent) when it cannot be made. */
static char *make_fifo_dir(const struct agent_config *config)
{
    const char *why = NULL;
    char *path = NULL;
    struct stat st;

    if (!config->run_dir || asprintf(&path, "%s/output", config->run_dir) < 0)
        return NULL;
    if ((mkdir(path, 0700) < 0 && errno != EEXIST) || lstat(path, &st) < 0) {
        why = strerror(errno);
    } else if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
        why = "not a directory of the agent's user";
    }
    if (why) {
        log_warning("Cannot use %s for the services' output: %s; their output will not reach "
                    "an agent started after this one dies",
                    path, why);
        free(path);
        return NULL;
    }
    return path;
}

const char *supervisor_output_dir(const struct supervisor *sup)
{
    return sup->fifo_dir;
}

int supervisor_new(struct event_base *base, const struct agent_config *config, bool under_systemd,
                   struct supervisor_observer observer, struct supervisor **ret_sup)
{
    struct supervisor *sup = calloc(1, sizeof(*sup));

    if (!sup)
        return -ENOMEM;
    *sup = (struct supervisor){
        .base = base, .config = config, .under_systemd = under_systemd, .observer = observer};
    sup->fifo_dir = make_fifo_dir(config);
    sup->removal_event = event_new(base, -1, 0, on_removal, sup);
    sup->records_event = event_new(base, -1, 0, on_records, sup);
    if (!sup->removal_event || !sup->records_event) {
        supervisor_free(sup);
        return -ENOMEM;
    }
    *ret_sup = sup;
    return 0;
}

void supervisor_free(struct supervisor *sup)
{
    if (!sup)
        return;
    /* What is still running now (after a failed start-up, say) stays adoptable. */
    supervisor_write_records(sup);
    for (size_t i = 0; i < sup->n_services; i++)
        service_free(sup->services[i]);
    free(sup->services);
    if (sup->removal_event)
        event_free(sup->removal_event);
    if (sup->records_event)
        event_free(sup->records_event);
    free(sup->records_text);
    free(sup->fifo_dir);
    free(sup);
}

size_t supervisor_count(const struct supervisor *sup)
{
    return sup->n_services;
}

struct service *supervisor_service(const struct supervisor *sup, size_t i)
{
    return i < sup->n_services ? sup->services[i] : NULL;
}

static int compare_names(const void *a, const void *b)
{
    const struct service *const *x = a, *const *y = b;

    return strcmp((*x)->config->name, (*y)->config->name);
}

struct service **supervisor_by_name(const struct supervisor *sup)
{
    struct service **sorted = calloc(sup->n_services + 1, sizeof(*sorted));

    if (!sorted)
        return NULL;
    /* An empty supervisor has no table (NULL): memcpy must not see it. */
    if (sup->n_services)
        memcpy(sorted, sup->services, sup->n_services * sizeof(*sorted));
    qsort(sorted, sup->n_services, sizeof(*sorted), compare_names);
    return sorted;
}

struct service *supervisor_find(const struct supervisor *sup, const char *name)
{
    for (size_t i = 0; i < sup->n_services; i++)
        if (strcmp(sup->services[i]->config->name, name) == 0 &&
            !sup->services[i]->remove_when_stopped)
            return sup->services[i];
    return NULL;
}

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

bool supervisor_all_quiet(const struct supervisor *sup)
{
    for (size_t i = 0; i < sup->n_services; i++)
        if (has_process_or_retry(sup->services[i]))
            return false;
    return true;
}

/*
 * As in systemd, a stop is ordered before a start between two dependent services
 * whichever way the dependency points: a service waits to start while a service
 * that depends on it is being stopped, so "restart all" starts nothing before the
 * stops it began are done, even a service whose own stop was immediate (BACKOFF).
 */
static bool dependent_stopping(const struct supervisor *sup, const struct service *service)
{
    for (size_t i = 0; i < sup->n_services; i++) {
        const struct service *other = sup->services[i];

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
static bool stop_must_wait(const struct supervisor *sup, const struct service *service)
{
    return service->fsm.state != SERVICE_BACKOFF && dependent_stopping(sup, service);
}

static void run_pending_stops(struct supervisor *sup)
{
    for (size_t i = sup->n_services; i-- > 0;) {
        struct service *service = sup->services[i];

        if (!service->pending_stop || stop_must_wait(sup, service))
            continue;
        service->pending_stop = false;
        if (has_process_or_retry(service))
            service_dispatch(service, FSM_STOP);
        else
            service_complete_waiters(service, WAIT_STOPPED, 0, NULL);
    }
}

enum dependency_status { DEPS_READY, DEPS_WAIT, DEPS_FAILED };

static enum dependency_status check_dependencies(const struct supervisor *sup,
                                                 const struct service *service,
                                                 const struct service **ret_failed)
{
    enum dependency_status status = DEPS_READY;

    for (size_t d = 0; d < service->config->n_after; d++) {
        const struct service *dep = supervisor_find(sup, service->config->after[d]);

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

static void run_pending_starts(struct supervisor *sup)
{
    for (size_t i = 0; i < sup->n_services; i++) {
        struct service *service = sup->services[i];
        const struct service *failed = NULL;
        char why[400];

        if (!service->pending_start || service->pending_stop ||
            service_state_active(service->fsm.state) || dependent_stopping(sup, service))
            continue;
        switch (check_dependencies(sup, service, &failed)) {
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

void supervisor_drop_removed(struct supervisor *sup)
{
    size_t kept = 0;

    for (size_t i = 0; i < sup->n_services; i++) {
        struct service *service = sup->services[i];

        if (removable(service)) {
            log_info("Service '%s' removed", service->config->name);
            service_free(service);
        } else {
            sup->services[kept++] = service;
        }
    }
    sup->n_services = kept;
}

void supervisor_schedule(struct supervisor *sup)
{
    if (sup->scheduling) {
        sup->schedule_again = true;
        return;
    }
    sup->scheduling = true;
    do {
        sup->schedule_again = false;
        run_pending_stops(sup);
        run_pending_starts(sup);
    } while (sup->schedule_again);
    sup->scheduling = false;
    /* Never free a service here: the caller may be that service's own transition.
     * The removal runs from the event loop, on its own. */
    for (size_t i = 0; i < sup->n_services; i++) {
        if (removable(sup->services[i]) && sup->removal_event) {
            event_active(sup->removal_event, 0, 0);
            break;
        }
    }
    supervisor_records_changed(sup);
    if (sup->observer.changed)
        sup->observer.changed(sup->observer.data);
}

static void mark_start(struct supervisor *sup, struct service *service)
{
    service->pending_start = true;
    service->operator_stopped = false;
    for (size_t d = 0; d < service->config->n_after; d++) {
        struct service *dep = supervisor_find(sup, service->config->after[d]);

        if (dep && !dep->pending_start && dep->fsm.state != SERVICE_RUNNING &&
            dep->fsm.state != SERVICE_STARTING && dep->fsm.state != SERVICE_BACKOFF)
            mark_start(sup, dep);
    }
}

void supervisor_mark_start(struct supervisor *sup, struct service *service)
{
    mark_start(sup, service);
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

void supervisor_mark_restart(struct supervisor *sup, struct service *service)
{
    service->pending_stop = true;
    mark_start(sup, service);
}

static struct service *service_by_pid(const struct supervisor *sup, pid_t pid)
{
    for (size_t i = 0; i < sup->n_services; i++)
        if (sup->services[i]->pid == pid)
            return sup->services[i];
    return NULL;
}

static struct service *service_by_session(const struct supervisor *sup, pid_t session)
{
    for (size_t i = 0; i < sup->n_services; i++)
        if (sup->services[i]->pid && sup->services[i]->session == session)
            return sup->services[i];
    return NULL;
}

static struct service *service_by_draining_pid(const struct supervisor *sup, pid_t pid)
{
    for (size_t i = 0; i < sup->n_services; i++)
        if (sup->services[i]->draining_pid == pid)
            return sup->services[i];
    return NULL;
}

static struct service *service_by_reload_pid(const struct supervisor *sup, pid_t pid)
{
    for (size_t i = 0; i < sup->n_services; i++)
        if (sup->services[i]->reload_pid == pid)
            return sup->services[i];
    return NULL;
}

void supervisor_set_notify(struct supervisor *sup, struct notify_server *notify)
{
    sup->notify = notify;
}

bool supervisor_read_handover(struct supervisor *sup, struct service *service, pid_t exited)
{
    if (!service_handover_pending(service))
        return false;
    notify_server_read_pending(sup->notify);
    return service->pid != exited;
}

void supervisor_reap(struct supervisor *sup)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct service *service = service_by_pid(sup, pid);

        if (service && supervisor_read_handover(sup, service, pid))
            service = NULL; /* its successor took over first: pid is the draining one */
        if (service)
            service_handle_exit(service, status);
        else if ((service = service_by_reload_pid(sup, pid)))
            service_handle_reload_exit(service, status);
        else if ((service = service_by_draining_pid(sup, pid)))
            service_draining_ended(service);
        else
            log_debug("Reaped process %d (not a service's main process)", (int)pid);
    }
}

void supervisor_on_notify(void *data, pid_t sender, const char *message)
{
    struct supervisor *sup = data;
    struct service *service = service_by_pid(sup, sender);

    /* Services lead their own session: any of their processes may speak for them. */
    if (!service) {
        pid_t session = getsid(sender);

        if (session > 0)
            service = service_by_session(sup, session);
    }
    if (!service) {
        log_debug("Dropped a notify message from pid %d, which is no service's", (int)sender);
        return;
    }
    service_handle_notify(service, message, sender);
}
