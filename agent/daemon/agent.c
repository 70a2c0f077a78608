/* The agent: one event loop, the configuration in force, and the services it supervises. */
#include "agent.h"

#include "apply.h"
#include "cv_error.h"
#include "log.h"
#include "sdnotify.h"
#include "service.h"
#include "supervisor.h"

#include <sys/stat.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct service *agent_find_service(const struct agent *agent, const char *name)
{
    for (size_t i = 0; i < agent->n_services; i++)
        if (strcmp(agent->services[i]->config->name, name) == 0 &&
            !agent->services[i]->remove_when_stopped)
            return agent->services[i];
    return NULL;
}

static bool service_settling(const struct service *service)
{
    return service->pending_start || service->fsm.state == SERVICE_STARTING ||
           service->fsm.state == SERVICE_BACKOFF;
}

void agent_check_ready(struct agent *agent)
{
    if (agent->ready_sent || agent->shutting_down)
        return;
    for (size_t i = 0; i < agent->n_services; i++)
        if (service_settling(agent->services[i]))
            return;
    agent->ready_sent = true;
    agent_update_status(agent);
    log_info("certvisord is ready");
    sdnotify_ready(agent);
}

void agent_update_status(struct agent *agent)
{
    size_t running = 0, failed = 0, other = 0;
    char status[256], failed_names[160] = "";

    if (!agent->under_systemd)
        return;
    for (size_t i = 0; i < agent->n_services; i++) {
        const struct service *service = agent->services[i];

        if (service->fsm.state == SERVICE_RUNNING) {
            running++;
        } else if (service->fsm.state == SERVICE_FATAL) {
            size_t used = strlen(failed_names);

            failed++;
            snprintf(failed_names + used, sizeof(failed_names) - used, "%s%s", used ? ", " : "",
                     service->config->name);
        } else {
            other++;
        }
    }
    snprintf(status, sizeof(status), "%zu running, %zu failed%s%s%s, %zu other", running, failed,
             failed ? " (" : "", failed_names, failed ? ")" : "", other);
    sdnotify_status(agent, status);
}

void agent_shutdown(struct agent *agent)
{
    if (agent->shutting_down)
        return;
    agent->shutting_down = true;
    apply_shutdown(agent); /* a change still making its keys stops there (agent/apply/apply.c) */
    log_info("Stopping every service in reverse dependency order");
    sdnotify_stopping(agent);
    for (size_t i = 0; i < agent->n_services; i++) {
        agent->services[i]->pending_start = false;
        agent->services[i]->pending_stop = true;
    }
    supervisor_schedule(agent);
}

/* --- configuration reload --- */

/*
 * Settings the running agent cannot change in place (its sockets and their
 * access) keep their running values until certvisord restarts; the reload says so.
 */
static void keep_setting(char **new_value, const char *old_value, const char *name,
                         json_t *warnings)
{
    char message[160];

    if (strcmp(*new_value ? *new_value : "", old_value ? old_value : "") == 0)
        return;
    snprintf(message, sizeof(message), "%s changed: it takes effect when certvisord restarts",
             name);
    log_warning("%s", message);
    json_array_append_new(warnings, json_string(message));
    free(*new_value);
    *new_value = old_value ? strdup(old_value) : NULL;
}

static void keep_agent_settings(const struct agent_config *old, struct agent_config *new,
                                json_t *warnings)
{
    keep_setting(&new->control_socket, old->control_socket, "control_socket", warnings);
    keep_setting(&new->notify_socket, old->notify_socket, "notify_socket", warnings);
    keep_setting(&new->control_group, old->control_group, "control_group", warnings);
    keep_setting(&new->admin_group, old->admin_group, "admin_group", warnings);
}

/* Puts one new service configuration into force. Takes the configuration. */
static int merge_service(struct agent *agent, struct service_config *config, json_t *summary,
                         struct service **ret_service)
{
    struct service *service = agent_find_service(agent, config->name);
    bool up;

    if (!service) {
        int r = service_new(agent, config, &service);

        if (r < 0) {
            service_config_free(config);
            return r;
        }
        json_array_append_new(json_object_get(summary, "added"), json_string(config->name));
        service->reload_action = config->autostart ? RELOAD_ACTION_START : RELOAD_ACTION_NONE;
        *ret_service = service;
        return 0;
    }
    *ret_service = service;
    if (strcmp(service->config->fingerprint, config->fingerprint) == 0) {
        /* Same settings: take the new object anyway, so file and line stay current; a change
         * that an earlier reload left waiting has been reverted. */
        service_config_free(service->config);
        service_config_free(service->next_config);
        service->next_config = NULL;
        service->config = config;
        return 0;
    }
    service_config_free(service->next_config);
    service->next_config = config;
    up = service_state_active(service->fsm.state) || service->fsm.state == SERVICE_BACKOFF;
    if (up)
        service->reload_action = RELOAD_ACTION_RESTART;
    else if (config->autostart && !service->operator_stopped)
        service->reload_action = RELOAD_ACTION_START;
    /* "changed": restarting with the new settings; "updated": they wait for its next start. */
    json_array_append_new(json_object_get(summary, service->reload_action != RELOAD_ACTION_NONE
                                                       ? "changed"
                                                       : "updated"),
                          json_string(config->name));
    return 0;
}

/* Ends the notify-reload handshake; before start-up readiness, READY=1 is not ours to send yet. */
static void finish_reload(struct agent *agent)
{
    if (agent->ready_sent)
        sdnotify_ready(agent);
    else
        agent_check_ready(agent);
}

void agent_reload_started(struct agent *agent)
{
    sdnotify_reloading(agent);
}

void agent_reload_finished(struct agent *agent)
{
    finish_reload(agent);
}

int agent_load_config(struct agent *agent, struct agent_config **ret_config, json_t *warnings,
                      char **ret_error)
{
    char runtime_err[1024];
    struct agent_config *config;
    int r = config_load(agent->config->config_path, agent->prefix_override, &config, ret_error);

    if (r < 0)
        return r;
    if (config_make_directories(config, ret_error) < 0) {
        config_free(config);
        return CV_ECONFIG;
    }
    keep_agent_settings(agent->config, config, warnings);
    if (config_load_runtime_policy(config, runtime_err, sizeof(runtime_err)) < 0) {
        if (asprintf(ret_error, "%s", runtime_err) < 0)
            *ret_error = NULL;
        config_free(config);
        return CV_ECONFIG;
    }
    *ret_config = config;
    return 0;
}

void agent_config_changes(const struct agent *agent, const struct agent_config *config,
                          json_t *summary)
{
    for (size_t i = 0; i < config->n_services; i++) {
        const struct service_config *new = config->services[config->start_order[i]];
        const struct service *service = agent_find_service(agent, new->name);
        const char *key = "added";

        if (service && strcmp(service->config->fingerprint, new->fingerprint) == 0)
            continue;
        if (service)
            key = service_state_active(service->fsm.state) ||
                          service->fsm.state == SERVICE_BACKOFF ||
                          (new->autostart && !service->operator_stopped)
                      ? "changed"
                      : "updated";
        json_array_append_new(json_object_get(summary, key), json_string(new->name));
    }
    for (size_t i = 0; i < agent->n_services; i++)
        if (!agent->services[i]->remove_when_stopped &&
            !config_find_service(config, agent->services[i]->config->name))
            json_array_append_new(json_object_get(summary, "removed"),
                                  json_string(agent->services[i]->config->name));
}

void agent_swap_config(struct agent *agent, struct agent_config *config, json_t *summary)
{
    struct service **services;
    size_t count = 0;

    services = calloc(config->n_services + agent->n_services + 1, sizeof(*services));
    if (!services) {
        /* Nothing is half-done: the running services keep their settings. */
        log_error("Configuration reload: out of memory; keeping the running services");
        config_free(config);
        return;
    }
    /* The new order first; services no longer configured stop and go. */
    for (size_t i = 0; i < config->n_services; i++) {
        size_t index = config->start_order[i];

        if (merge_service(agent, config->services[index], summary, &services[count]) == 0)
            count++;
        config->services[index] = NULL;
    }
    for (size_t i = 0; i < agent->n_services; i++) {
        struct service *old = agent->services[i];
        bool kept = false;

        for (size_t j = 0; j < count && !kept; j++)
            kept = services[j] == old;
        if (kept)
            continue;
        if (!old->remove_when_stopped)
            json_array_append_new(json_object_get(summary, "removed"),
                                  json_string(old->config->name));
        old->remove_when_stopped = true;
        old->pending_start = false;
        old->pending_stop = true;
        services[count++] = old;
    }
    free(agent->services);
    agent->services = services;
    agent->n_services = count;
    for (size_t i = 0; i < count; i++) {
        if (services[i]->reload_action == RELOAD_ACTION_START)
            supervisor_mark_start(agent, services[i]);
        else if (services[i]->reload_action == RELOAD_ACTION_RESTART)
            supervisor_mark_restart(agent, services[i]);
        services[i]->reload_action = RELOAD_ACTION_NONE;
    }
    config->n_services = 0;
    log_setup("certvisord", config->log_target, config->log_file, config->log_level);
    config_free(agent->config);
    agent->config = config;
    supervisor_schedule(agent);
    log_info("Configuration reloaded");
}
