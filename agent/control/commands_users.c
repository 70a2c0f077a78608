/* The handlers of the "user ..." commands: the REST API's users. */
#include "commands_users.h"

#include "audit.h"
#include "cv_error.h"
#include "log.h"
#include "offload.h"
#include "users.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void handle_user_list(struct agent *agent, struct control_conn *conn, json_t *args, json_t *options)
{
    (void)args;
    (void)options;
    control_reply(conn, json_pack("{s:i, s:o}", "exit", 0, "items", users_list(agent->users)));
}

/* The answer to add, passwd and subject: the user as `user list` shows it. */
static json_t *user_reply(const struct agent *agent, const char *name, enum user_role role)
{
    json_t *list = users_list(agent->users), *item, *reply;
    char *subject = NULL;
    bool password = true;
    size_t i;

    users_subject(agent->users, name, &subject);
    json_array_foreach(list, i, item)
    {
        if (strcmp(json_string_value(json_object_get(item, "name")), name) == 0)
            password = json_is_true(json_object_get(item, "password"));
    }
    json_decref(list);
    reply =
        json_pack("{s:i, s:s, s:s, s:b, s:s?}", "exit", 0, "name", name, "role",
                  user_role_name(role), "password", (int)password, "certificate_subject", subject);
    free(subject);
    return reply;
}

/*
 * A user add or passwd whose password is being hashed on an offload worker (0.1 s or more
 * of PBKDF2, never on the loop). The request's connection waits; when it goes away first,
 * the change is still made (the operator asked for it, and the audit says so) and only the
 * answer is dropped.
 */
struct user_change {
    struct agent *agent;
    struct control_conn *conn; /* NULL once it went away */
    char *name;
    char *subject;
    enum user_role role;
    bool replace;
    struct users_password *password;
    char who[128];
};

static void user_change_free(struct user_change *change)
{
    free(change->name);
    free(change->subject);
    users_password_free(change->password);
    free(change);
}

/* Stores the change and answers it: the part of add and passwd that runs on the loop. */
static void conclude_user_change(struct user_change *change)
{
    struct agent *agent = change->agent;
    char err[1536];
    int r;

    r = change->replace ? users_set_hashed(agent->users, change->name, change->password,
                                           change->role, true, err, sizeof(err))
                        : users_add_hashed(agent->users, change->name, change->password,
                                           change->subject, change->role, err, sizeof(err));
    if (r < 0) {
        if (change->conn)
            control_reply_error(change->conn, r == CV_EUSAGE ? 2 : r == -ENOENT ? 4 : 1, "%s", err);
        return;
    }
    audit_record(agent->audit, change->who, "%s REST user '%s' (role %s%s)",
                 change->replace ? "changed the password of" : "added", change->name,
                 user_role_name(change->role),
                 change->subject
                     ? (change->password ? ", password and certificate" : ", certificate only")
                     : "");
    if (change->conn)
        control_reply(change->conn, user_reply(agent, change->name, change->role));
}

static void derive_user_password(void *data)
{
    struct user_change *change = data;

    users_password_derive(change->password);
}

static void on_user_password_derived(void *data, bool cancelled)
{
    struct user_change *change = data;

    if (!cancelled)
        conclude_user_change(change);
    user_change_free(change);
}

static void on_user_change_abandoned(void *data)
{
    struct user_change *change = data;

    change->conn = NULL;
}

/*
 * add and passwd: the password arrives in options (certvisorctl asked for it, or read a
 * file); add may carry a certificate subject instead of, or beside, a password.
 */
static void set_user(struct agent *agent, struct control_conn *conn, json_t *args, json_t *options,
                     bool replace)
{
    const char *name = json_string_value(json_array_get(args, 0));
    const char *password = json_string_value(json_object_get(options, "password"));
    const char *role_text = json_string_value(json_object_get(options, "role"));
    const char *subject = json_string_value(json_object_get(options, "certificate_subject"));
    enum user_role role = USER_ROLE_ADMIN;
    struct user_change *change;
    char err[1536];
    int r;

    if (!name || json_array_size(args) != 1 || (!password && !subject) || (replace && subject)) {
        control_reply_error(conn, 2,
                            replace ? "usage: user passwd <name> [--role admin|viewer]"
                                    : "usage: user add <name> [--role admin|viewer] (a password, "
                                      "a --certificate-subject, or both)");
        return;
    }
    if (replace && !role_text && users_role(agent->users, name, &role) < 0)
        role = USER_ROLE_ADMIN; /* users_set() reports the unknown user */
    if (role_text && user_role_parse(role_text, &role) < 0) {
        control_reply_error(conn, 2, "role '%s' is not admin or viewer", role_text);
        return;
    }
    change = calloc(1, sizeof(*change));
    if (!change || !(change->name = strdup(name)) ||
        (subject && !(change->subject = strdup(subject)))) {
        if (change)
            user_change_free(change);
        control_reply_error(conn, 1, "out of memory");
        return;
    }
    change->agent = agent;
    change->conn = conn;
    change->role = role;
    change->replace = replace;
    control_peer_describe(control_conn_peer(conn), change->who, sizeof(change->who));
    if (password) {
        r = users_password_new(password, &change->password, err, sizeof(err));
        if (r < 0) {
            user_change_free(change);
            control_reply_error(conn, r == CV_EUSAGE ? 2 : 1, "%s", err);
            return;
        }
    }
    if (!password) { /* a certificate-only user: nothing slow to do */
        conclude_user_change(change);
        user_change_free(change);
        return;
    }
    if (offload_submit(agent->offload, derive_user_password, on_user_password_derived, change) <
        0) {
        user_change_free(change);
        control_reply_error(conn, 1, "out of memory");
        return;
    }
    control_on_abandon(conn, on_user_change_abandoned, change);
}

/* user subject <name> <subject line>|--clear */
void handle_user_subject(struct agent *agent, struct control_conn *conn, json_t *args,
                         json_t *options)
{
    const char *name = json_string_value(json_array_get(args, 0));
    const char *subject = json_string_value(json_array_get(args, 1));
    enum user_role role = USER_ROLE_VIEWER;
    char err[1536], who[128], *canonical = NULL;
    int r;

    (void)options;
    if (!name || !subject || json_array_size(args) != 2) {
        control_reply_error(conn, 2, "usage: user subject <name> <subject line>|--clear");
        return;
    }
    if (strcmp(subject, "--clear") == 0)
        subject = NULL;
    r = users_set_subject(agent->users, name, subject, err, sizeof(err));
    if (r < 0) {
        control_reply_error(conn, r == CV_EUSAGE ? 2 : r == -ENOENT ? 4 : 1, "%s", err);
        return;
    }
    users_role(agent->users, name, &role);
    users_subject(agent->users, name, &canonical);
    control_peer_describe(control_conn_peer(conn), who, sizeof(who));
    if (canonical)
        audit_record(agent->audit, who, "set the certificate subject of REST user '%s' to \"%s\"",
                     name, canonical);
    else
        audit_record(agent->audit, who, "cleared the certificate subject of REST user '%s'", name);
    free(canonical);
    control_reply(conn, user_reply(agent, name, role));
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
    audit_record(agent->audit, who, "deleted REST user '%s'", name);
    control_reply(conn, json_pack("{s:i, s:s}", "exit", 0, "name", name));
}
