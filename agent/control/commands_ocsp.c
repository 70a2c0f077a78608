/* The handlers of "cluster ocsp ...": OCSP stapling's settings, status and test. */
#include "commands_ocsp.h"

#include "apply.h"
#include "commands_certs.h"
#include "config.h"
#include "stapling.h"

#include <stdio.h>
#include <string.h>

/* The settings by the names Redis Enterprise's OCSP object uses, and the policy's. */
static const struct {
    const char *name;
    enum policy_setting setting;
} ocsp_settings[] = {
    {"query_frequency", POLICY_OCSP_QUERY_FREQUENCY},
    {"response_timeout", POLICY_OCSP_RESPONSE_TIMEOUT},
    {"recovery_frequency", POLICY_OCSP_RECOVERY_FREQUENCY},
    {"recovery_max_tries", POLICY_OCSP_RECOVERY_MAX_TRIES},
};

#define N_OCSP_SETTINGS (sizeof(ocsp_settings) / sizeof(ocsp_settings[0]))

void handle_cluster_ocsp_config(struct agent *agent, struct control_conn *conn, json_t *args,
                                json_t *options)
{
    const struct policy *policy = &agent->config->policy;
    json_t *status = stapling_status(agent);
    json_t *config = json_pack("{s:b, s:O}", "ocsp_functionality",
                               policy_enabled(policy, POLICY_OCSP_FUNCTIONALITY), "responder_url",
                               json_object_get(status, "responder_url"));

    (void)options;
    json_decref(status);
    if (json_array_size(args)) {
        json_decref(config);
        control_reply_error(conn, 2,
                            "usage: cluster ocsp config [proxy enable|disable | set <name> "
                            "<value>]");
        return;
    }
    for (size_t i = 0; config && i < N_OCSP_SETTINGS; i++)
        json_object_set_new(config, ocsp_settings[i].name,
                            json_integer(policy_number(policy, ocsp_settings[i].setting)));
    control_reply(conn, json_pack("{s:i, s:o}", "exit", 0, "config", config));
}

void handle_cluster_ocsp_config_proxy(struct agent *agent, struct control_conn *conn, json_t *args,
                                      json_t *options)
{
    const char *word = json_string_value(json_array_get(args, 0));
    const char *name = policy_setting_name(POLICY_OCSP_FUNCTIONALITY);
    const char *value;

    if (json_array_size(args) != 1 || !word ||
        (strcmp(word, "enable") != 0 && strcmp(word, "disable") != 0)) {
        control_reply_error(conn, 2, "usage: cluster ocsp config proxy enable|disable");
        return;
    }
    value = strcmp(word, "enable") == 0 ? "enabled" : "disabled";
    commands_submit_change(agent, conn, apply_policy(&name, &value, 1), options);
}

/* The policy setting an OCSP object's field name stands for, or -1. */
static int ocsp_setting(const char *name)
{
    for (size_t k = 0; k < N_OCSP_SETTINGS; k++)
        if (strcmp(name, ocsp_settings[k].name) == 0)
            return ocsp_settings[k].setting;
    return -1;
}

void handle_cluster_ocsp_config_set(struct agent *agent, struct control_conn *conn, json_t *args,
                                    json_t *options)
{
    commands_submit_settings(agent, conn, args, options, ocsp_setting,
                             "cluster ocsp config set query_frequency|response_timeout|"
                             "recovery_frequency|recovery_max_tries <value> [<name> <value>...]",
                             "OCSP",
                             "query_frequency, response_timeout, recovery_frequency or "
                             "recovery_max_tries");
}

void handle_cluster_ocsp_status(struct agent *agent, struct control_conn *conn, json_t *args,
                                json_t *options)
{
    (void)options;
    if (json_array_size(args)) {
        control_reply_error(conn, 2, "usage: cluster ocsp status");
        return;
    }
    control_reply(conn, json_pack("{s:i, s:o}", "exit", 0, "status", stapling_status(agent)));
}

static void on_tested(void *data, int exit_status, json_t *reply)
{
    (void)exit_status;
    control_reply(data, reply);
}

static void on_abandoned(void *data)
{
    struct control_conn *conn = data;

    stapling_forget(control_conn_agent(conn), conn);
}

void handle_cluster_ocsp_test(struct agent *agent, struct control_conn *conn, json_t *args,
                              json_t *options)
{
    (void)options;
    if (json_array_size(args)) {
        control_reply_error(conn, 2, "usage: cluster ocsp test");
        return;
    }
    control_on_abandon(conn, on_abandoned, conn);
    stapling_test(agent, on_tested, conn);
}
