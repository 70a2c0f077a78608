/* Putting a new configuration into force: the apply pipeline's step for conf.d changes. */
#include "reconfigure.h"

#include "config.h"
#include "cv_error.h"
#include "log.h"
#include "service.h"
#include "supervisor.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    struct service *service = supervisor_find(agent->supervisor, config->name);
    bool up;

    if (!service) {
        int r = service_new(agent->supervisor, config, &service);

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

int reconfigure_load(struct agent *agent, struct agent_config **ret_config, json_t *warnings,
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

void reconfigure_changes(const struct agent *agent, const struct agent_config *config,
                         json_t *summary)
{
    for (size_t i = 0; i < config->n_services; i++) {
        const struct service_config *new = config->services[config->start_order[i]];
        const struct service *service = supervisor_find(agent->supervisor, new->name);
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
    for (size_t i = 0; i < agent->supervisor->n_services; i++)
        if (!agent->supervisor->services[i]->remove_when_stopped &&
            !config_find_service(config, agent->supervisor->services[i]->config->name))
            json_array_append_new(json_object_get(summary, "removed"),
                                  json_string(agent->supervisor->services[i]->config->name));
}

void reconfigure_swap(struct agent *agent, struct agent_config *config, json_t *summary)
{
    struct service **services;
    size_t count = 0;

    services = calloc(config->n_services + agent->supervisor->n_services + 1, sizeof(*services));
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
    for (size_t i = 0; i < agent->supervisor->n_services; i++) {
        struct service *old = agent->supervisor->services[i];
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
    free(agent->supervisor->services);
    agent->supervisor->services = services;
    agent->supervisor->n_services = count;
    for (size_t i = 0; i < count; i++) {
        if (services[i]->reload_action == RELOAD_ACTION_START)
            supervisor_mark_start(agent->supervisor, services[i]);
        else if (services[i]->reload_action == RELOAD_ACTION_RESTART)
            supervisor_mark_restart(agent->supervisor, services[i]);
        services[i]->reload_action = RELOAD_ACTION_NONE;
    }
    config->n_services = 0;
    log_setup("certvisord", config->log_target, config->log_file, config->log_level);
    config_free(agent->config);
    agent->config = config;
    agent->supervisor->config = config;
    supervisor_schedule(agent->supervisor);
    log_info("Configuration reloaded");
}
