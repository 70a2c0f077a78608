/* The handlers of the "user ..." commands: the REST API's users. */
#include "commands_users.h"

#include "audit.h"
#include "cv_error.h"
#include "log.h"
#include "users.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void handle_user_list(struct agent *agent, struct control_conn *conn, json_t *args, json_t *options)
{
    (void)args;
    (void)options;
    control_reply(conn, json_pack("{s:i, s:o}", "exit", 0, "items", users_list(agent->users)));
}

/* add and passwd: the password arrives in options (certvisorctl asked for it, or read a file). */
static void set_user(struct agent *agent, struct control_conn *conn, json_t *args, json_t *options,
                     bool replace)
{
    const char *name = json_string_value(json_array_get(args, 0));
    const char *password = json_string_value(json_object_get(options, "password"));
    const char *role_text = json_string_value(json_object_get(options, "role"));
    enum user_role role = USER_ROLE_ADMIN;
    char err[512], who[128];
    int r;

    if (!name || json_array_size(args) != 1 || !password) {
        control_reply_error(conn, 2, "usage: user %s <name> [--role admin|viewer]",
                            replace ? "passwd" : "add");
        return;
    }
    if (replace && !role_text && users_role(agent->users, name, &role) < 0)
        role = USER_ROLE_ADMIN; /* users_set() reports the unknown user */
    if (role_text && user_role_parse(role_text, &role) < 0) {
        control_reply_error(conn, 2, "role '%s' is not admin or viewer", role_text);
        return;
    }
    r = users_set(agent->users, name, password, role, replace, err, sizeof(err));
    if (r < 0) {
        control_reply_error(conn, r == CV_EUSAGE ? 2 : r == -ENOENT ? 4 : 1, "%s", err);
        return;
    }
    control_peer_describe(control_conn_peer(conn), who, sizeof(who));
    audit_record(agent, who, "%s REST user '%s' (role %s)",
                 replace ? "changed the password of" : "added", name, user_role_name(role));
    control_reply(
        conn, json_pack("{s:i, s:s, s:s}", "exit", 0, "name", name, "role", user_role_name(role)));
}

void handle_user_add(struct agent *agent, struct control_conn *conn, json_t *args, json_t *options)
{
    set_user(agent, conn, args, options, false);
}

void handle_user_passwd(struct agent *agent, struct control_conn *conn, json_t *args,
                        json_t *options)
{
    set_user(agent, conn, args, options, true);
}

void handle_user_delete(struct agent *agent, struct control_conn *conn, json_t *args,
                        json_t *options)
{
    const char *name = json_string_value(json_array_get(args, 0));
    char err[512], who[128];
    int r;

    (void)options;
    if (!name || json_array_size(args) != 1) {
        control_reply_error(conn, 2, "usage: user delete <name>");
        return;
    }
    r = users_delete(agent->users, name, err, sizeof(err));
    if (r < 0) {
        control_reply_error(conn, r == -ENOENT ? 4 : 1, "%s", err);
        return;
    }
    control_peer_describe(control_conn_peer(conn), who, sizeof(who));
    audit_record(agent, who, "deleted REST user '%s'", name);
    control_reply(conn, json_pack("{s:i, s:s}", "exit", 0, "name", name));
}
