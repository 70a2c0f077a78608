/* certvisord's own behaviour around the parts: readiness, status, shutdown, reload handshake. */
#include "daemon.h"

#include "apply.h"
#include "cv_error.h"
#include "log.h"
#include "reexec.h"
#include "sdnotify.h"
#include "service.h"
#include "supervisor.h"

#include <event2/event.h>
#include <sys/stat.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Not settled yet: starting, or taking the files it missed while no agent ran (a reload of
 * an adopted service), which READY=1 must wait for. */
static bool service_settling(const struct service *service)
{
    struct service_snapshot now;

    service_snapshot(service, &now);
    return now.start_pending || now.reloading || now.state == SERVICE_STARTING ||
           now.state == SERVICE_BACKOFF;
}

/* Tells systemd once everything autostarted is up (after every scheduling pass). */
static void agent_check_ready(struct agent *agent)
{
    if (agent->ready_sent || agent->shutting_down)
        return;
    for (size_t i = 0; i < supervisor_count(agent->supervisor); i++)
        if (service_settling(supervisor_service(agent->supervisor, i)))
            return;
    agent->ready_sent = true;
    agent_update_status(agent);
    log_info("certvisord is ready");
    sdnotify_ready(agent);
    reexec_ready(agent->reexec); /* after a re-exec: the requests that waited through it */
}

void agent_update_status(struct agent *agent)
{
    size_t running = 0, failed = 0, other = 0;
    char status[256], failed_names[160] = "";

    if (!agent->under_systemd)
        return;
    for (size_t i = 0; i < supervisor_count(agent->supervisor); i++) {
        const struct service *service = supervisor_service(agent->supervisor, i);

        if (service_state_of(service) == SERVICE_RUNNING) {
            running++;
        } else if (service_state_of(service) == SERVICE_FATAL) {
            size_t used = strlen(failed_names);

            failed++;
            snprintf(failed_names + used, sizeof(failed_names) - used, "%s%s", used ? ", " : "",
                     service_name(service));
        } else {
            other++;
        }
    }
    snprintf(status, sizeof(status), "%zu running, %zu failed%s%s%s, %zu other", running, failed,
             failed ? " (" : "", failed_names, failed ? ")" : "", other);
    sdnotify_status(agent, status);
}

void agent_on_services_changed(void *data)
{
    struct agent *agent = data;

    agent_check_ready(agent);
    agent_update_status(agent);
    if (agent->shutting_down && supervisor_all_quiet(agent->supervisor))
        event_base_loopexit(agent->base, NULL);
}

void agent_shutdown(struct agent *agent)
{
    if (agent->shutting_down)
        return;
    agent->shutting_down = true;
    apply_shutdown(agent); /* a change still making its keys stops there (agent/apply/apply.c) */
    log_info("Stopping every service in reverse dependency order");
    sdnotify_stopping(agent);
    supervisor_stop_all(agent->supervisor);
}

/* --- the reload handshake, for the parts that reload (struct agent_hooks) --- */

/* Ends the notify-reload handshake; before start-up readiness, READY=1 is not ours to send yet. */
static void finish_reload(struct agent *agent)
{
    if (agent->ready_sent)
        sdnotify_ready(agent);
    else
        agent_check_ready(agent);
}

void agent_set_hooks(struct agent *agent)
{
    agent->hooks = (struct agent_hooks){.reload_started = sdnotify_reloading,
                                        .reload_finished = finish_reload};
}
