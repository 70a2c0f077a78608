/*
 * Putting a configuration's services into force: the table merged with the running one,
 * services added, restarted with changed settings or stopped and removed. Here, with the
 * supervisor, so that no other part writes a service's marks.
 */
#include "supervisor_impl.h"

#include "service_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Puts one new service configuration into force. Takes the configuration. */
static int merge_service(struct supervisor *sup, struct service_config *config, json_t *summary,
                         struct service **ret_service)
{
    struct service *service = supervisor_find(sup, config->name);
    bool up;

    if (!service) {
        int r = service_new(sup, config, &service);

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
        if (service_binary_replaced(service))
            service->reload_action = RELOAD_ACTION_UPGRADE;
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

int supervisor_take_config(struct supervisor *sup, struct agent_config *config, json_t *summary)
{
    struct service **services;
    size_t count = 0;

    services = calloc(config->n_services + sup->n_services + 1, sizeof(*services));
    if (!services)
        return -ENOMEM; /* nothing is half-done: the running services keep their settings */
    /* The new order first; services no longer configured stop and go. */
    for (size_t i = 0; i < config->n_services; i++) {
        size_t index = config->start_order[i];

        if (merge_service(sup, config->services[index], summary, &services[count]) == 0)
            count++;
        config->services[index] = NULL;
    }
    for (size_t i = 0; i < sup->n_services; i++) {
        struct service *old = sup->services[i];
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
    free(sup->services);
    sup->services = services;
    sup->n_services = count;
    for (size_t i = 0; i < count; i++) {
        if (services[i]->reload_action == RELOAD_ACTION_START)
            supervisor_mark_start(sup, services[i]);
        else if (services[i]->reload_action == RELOAD_ACTION_RESTART)
            supervisor_mark_restart(sup, services[i]);
        else if (services[i]->reload_action == RELOAD_ACTION_UPGRADE)
            service_upgrade(sup, services[i], "its binary was replaced (an upgrade)");
        services[i]->reload_action = RELOAD_ACTION_NONE;
    }
    config->n_services = 0;
    sup->config = config;
    return 0;
}

void supervisor_preview_config(const struct supervisor *sup, const struct agent_config *config,
                               json_t *summary)
{
    for (size_t i = 0; i < config->n_services; i++) {
        const struct service_config *new = config->services[config->start_order[i]];
        const struct service *service = supervisor_find(sup, new->name);
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
    for (size_t i = 0; i < sup->n_services; i++)
        if (!sup->services[i]->remove_when_stopped &&
            !config_find_service(config, sup->services[i]->config->name))
            json_array_append_new(json_object_get(summary, "removed"),
                                  json_string(sup->services[i]->config->name));
}

void supervisor_stop_all(struct supervisor *sup)
{
    for (size_t i = 0; i < sup->n_services; i++) {
        sup->services[i]->pending_start = false;
        sup->services[i]->pending_stop = true;
    }
    supervisor_schedule(sup);
}
