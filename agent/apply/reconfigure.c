/* Putting a new configuration into force: the apply pipeline's step for conf.d changes. */
#include "reconfigure.h"

#include "config.h"
#include "cv_error.h"
#include "log.h"
#include "policy.h"
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

/*
 * On a cluster the nodes share the policy's runtime layer (cluster config, spec/policy in the
 * store); conf.d is each node's own file. A reload that changes a setting from conf.d changes
 * it on this node only, which is seldom what an operator of a cluster means: say so, and how.
 */
static void warn_node_local_policy(const struct agent_config *old, const struct agent_config *new,
                                   json_t *warnings)
{
    char message[320];

    if (new->cluster.store != CLUSTER_STORE_ETCD)
        return;
    for (int i = 0; i < POLICY_COUNT; i++) {
        const char *before = policy_get(&old->policy, (enum policy_setting)i);
        const char *after = policy_get(&new->policy, (enum policy_setting)i);

        if (new->policy.values[i].source != POLICY_FROM_FILE ||
            strcmp(before ? before : "", after ? after : "") == 0)
            continue;
        snprintf(message, sizeof(message),
                 "%s changed in conf.d applies to this node only: the cluster's nodes share what "
                 "'certvisorctl cluster config %s <value>' sets",
                 policy_setting_name((enum policy_setting)i),
                 policy_setting_name((enum policy_setting)i));
        log_warning("%s", message);
        json_array_append_new(warnings, json_string(message));
    }
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
    warn_node_local_policy(agent->config, config, warnings);
    *ret_config = config;
    return 0;
}

void reconfigure_changes(const struct agent *agent, const struct agent_config *config,
                         json_t *summary)
{
    supervisor_preview_config(agent->supervisor, config, summary);
}

void reconfigure_swap(struct agent *agent, struct agent_config *config, json_t *summary)
{
    if (supervisor_take_config(agent->supervisor, config, summary) < 0) {
        log_error("Configuration reload: out of memory; keeping the running services");
        config_free(config);
        return;
    }
    struct agent_config *old = agent->config;

    log_setup("certvisord", config->log_target, config->log_file, config->log_level);
    agent->config = config;
    if (agent->hooks.config_swapped)
        agent->hooks.config_swapped(agent, old);
    config_free(old);
    supervisor_schedule(agent->supervisor);
    log_info("Configuration reloaded");
}
