/* What the other parts may read of a service (service.h): accessors and a snapshot. */
#include "service_impl.h"

const char *service_name(const struct service *service)
{
    return service->config->name;
}

const struct service_config *service_config_of(const struct service *service)
{
    return service->config;
}

enum service_state service_state_of(const struct service *service)
{
    return service->fsm.state;
}

pid_t service_pid(const struct service *service)
{
    return service->pid;
}

const struct service_config *service_upcoming_config(const struct service *service)
{
    return service->next_config ? service->next_config : service->config;
}

struct output *service_output(const struct service *service)
{
    return service->output;
}

void service_snapshot(const struct service *service, struct service_snapshot *snapshot)
{
    bool running = service->fsm.state == SERVICE_RUNNING;

    *snapshot = (struct service_snapshot){
        .name = service->config->name,
        .config = service->config,
        .state = service->fsm.state,
        .pid = service->pid,
        .restarts = service->restarts,
        .crashes = service->crashes,
        .uptime_usec = running ? monotonic_usec() - service->ready_at_usec : 0,
        .start_pending = service->pending_start,
        .stop_pending = service->pending_stop,
        .change_pending =
            service->pending_start || service->pending_stop || service->remove_when_stopped,
        .reloading = service->reload != RELOAD_IDLE,
        .removing = service->remove_when_stopped,
        .operator_stopped = service->operator_stopped,
        .status_text = service->status_text,
        .reason = service->reason,
        .stats = service->stats,
    };
}
