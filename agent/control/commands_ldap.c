/* The handlers of "cluster ldap ...": sign-in with directory accounts. */
#include "commands_ldap.h"

#include "cert_names.h"
#include "certs.h"
#include "commands_certs.h"
#include "config.h"
#include "ldap_signin.h"
#include "offload.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "ldap_"

/* The policy setting an LDAP name stands for ("uris" or "ldap_uris"), or -1. */
static int ldap_setting(const char *name)
{
    char full[128];
    int setting;

    if (strlen(name) > 64)
        return -1;
    snprintf(full, sizeof(full), "%s%s", strncmp(name, PREFIX, 5) == 0 ? "" : PREFIX, name);
    setting = policy_setting_lookup(full);
    return setting >= POLICY_LDAP_AUTHENTICATION && setting <= POLICY_LDAP_TIMEOUT ? setting : -1;
}

static bool has_certificate(struct agent *agent, const char *name)
{
    char cert[PATH_MAX];

    return certs_current_files(agent->certs, name, cert, sizeof(cert), NULL, 0) == 0;
}

void handle_cluster_ldap_show(struct agent *agent, struct control_conn *conn, json_t *args,
                              json_t *options)
{
    const struct policy *policy = &agent->config->policy;
    json_t *settings = json_object();

    (void)options;
    if (json_array_size(args)) {
        json_decref(settings);
        control_reply_error(conn, 2, "usage: cluster ldap show");
        return;
    }
    for (int i = POLICY_LDAP_AUTHENTICATION; i <= POLICY_LDAP_TIMEOUT; i++) {
        const char *value = policy_get(policy, (enum policy_setting)i);

        json_object_set_new(settings, policy_setting_name((enum policy_setting)i) + 5,
                            json_string(policy_shown((enum policy_setting)i, value) ?: ""));
    }
    control_reply(conn, json_pack("{s:i, s:o, s:{s:b, s:b}}", "exit", 0, "settings", settings,
                                  "certificates", CERT_LDAP_CLIENT,
                                  has_certificate(agent, CERT_LDAP_CLIENT), CERT_LDAP_SERVER_CA,
                                  has_certificate(agent, CERT_LDAP_SERVER_CA)));
}

void handle_cluster_ldap_config(struct agent *agent, struct control_conn *conn, json_t *args,
                                json_t *options)
{
    commands_submit_settings(agent, conn, args, options, ldap_setting,
                             "cluster ldap config <name> <value> [<name> <value>...]", "LDAP",
                             "see 'certvisorctl cluster ldap show'");
}

/* One `cluster ldap test`: its check, and whom to answer. */
struct ldap_test {
    struct agent *agent;
    struct control_conn *conn; /* NULL once the client went away */
    struct ldap_signin *signin;
};

static void test_work(void *data)
{
    ldap_signin_run(((struct ldap_test *)data)->signin);
}

static void test_done(void *data, bool cancelled)
{
    struct ldap_test *test = data;
    enum user_role role = USER_ROLE_VIEWER;
    const char *why = "";
    json_t *detail = NULL;
    enum ldap_signin_result result;

    if (cancelled || !test->conn)
        goto out;
    result = ldap_signin_outcome(test->signin, &test->agent->config->policy, &role, &why, &detail);
    if (result == LDAP_SIGNIN_OK) {
        json_object_set_new(detail, "exit", json_integer(0));
        control_reply(test->conn, detail);
        detail = NULL;
    } else {
        control_reply(
            test->conn,
            json_pack("{s:i, s:s, s:s, s:O?}", "exit", 1, "error", why, "reason",
                      result == LDAP_SIGNIN_DENIED ? "ldap_denied" : "directory_unavailable",
                      "detail", detail));
    }
out:
    json_decref(detail);
    ldap_signin_free(test->signin);
    free(test);
}

static void test_abandoned(void *data)
{
    ((struct ldap_test *)data)->conn = NULL;
}

void handle_cluster_ldap_test(struct agent *agent, struct control_conn *conn, json_t *args,
                              json_t *options)
{
    const char *user = json_string_value(json_array_get(args, 0));
    const char *password = json_string_value(json_object_get(options, "password"));
    const struct policy *policy = &agent->config->policy;
    struct ldap_test *test;
    char helper[PATH_MAX];

    if (!user || json_array_size(args) != 1 || !password) {
        control_reply_error(conn, 2, "usage: cluster ldap test <user> [--password-file <file>]");
        return;
    }
    if (!policy_text(policy, POLICY_LDAP_URIS) ||
        (!policy_text(policy, POLICY_LDAP_USER_DN_TEMPLATE) &&
         !policy_text(policy, POLICY_LDAP_USER_SEARCH_BASE))) {
        control_reply_refused(conn, 1, "invalid_setting",
                              "set ldap_uris and ldap_user_search_base or ldap_user_dn_template "
                              "first ('certvisorctl cluster ldap config uris ldaps://...')");
        return;
    }
    snprintf(helper, sizeof(helper), "%s/certvisor-ldap-check", agent->config->libexec_dir);
    test = calloc(1, sizeof(*test));
    if (test) {
        test->agent = agent;
        test->conn = conn;
    }
    if (!test || ldap_signin_new(policy, agent->certs, helper, user, password, &test->signin) < 0 ||
        offload_submit(agent->offload, test_work, test_done, test) < 0) {
        if (test)
            ldap_signin_free(test->signin);
        free(test);
        control_reply_error(conn, 1, "out of memory");
        return;
    }
    control_on_abandon(conn, test_abandoned, test);
}
