/* The commands clients send on connect or to check a connection: PING, AUTH and CLIENT. */
#include "command_table.h"

#include <stdlib.h>
#include <string.h>

void command_ping(const struct call *call)
{
    const struct resp_request *req = call->req;

    /* Redis's arity for PING is -1; it checks the upper bound itself, with the same error. */
    if (req->argc > 2)
        command_wrong_arity(call->out, NULL, "ping");
    else if (req->argc == 2)
        resp_add_bulk(call->out, req->argv[1].data, req->argv[1].len);
    else
        resp_add_simple(call->out, "PONG");
}

/*
 * Like Sentinel with no password set: its default user takes any password,
 * and a password alone is a configuration mistake worth telling the client.
 * Clients configured with a Sentinel password see what they would see there.
 */
void command_auth(const struct call *call)
{
    const struct resp_request *req = call->req;

    if (req->argc > 3)
        resp_add_error(call->out, "ERR syntax error");
    else if (req->argc == 2)
        resp_add_error(call->out, "ERR AUTH <password> called without any password configured for "
                                  "the default user. Are you sure your configuration is correct?");
    else if (strcmp(req->argv[1].data, "default") == 0)
        resp_add_simple(call->out, "OK");
    else
        resp_add_error(call->out, "WRONGPASS invalid username-password pair or user is disabled.");
}

/* Names and library details are one word of printable ASCII, as Redis requires. */
static bool printable_word(const struct resp_arg *arg)
{
    for (size_t i = 0; i < arg->len; i++)
        if (arg->data[i] < '!' || arg->data[i] > '~')
            return false;
    return true;
}

static void client_setname(const struct call *call)
{
    const struct resp_arg *name = &call->req->argv[2];
    char *copy = NULL;

    if (!printable_word(name)) {
        resp_add_error(call->out,
                       "ERR Client names cannot contain spaces, newlines or special characters.");
        return;
    }
    if (name->len > 0 && !(copy = strndup(name->data, name->len))) {
        call->out->failed = true; /* no memory: the connection is closed */
        return;
    }
    free(call->session->name);
    call->session->name = copy; /* an empty name clears it */
    resp_add_simple(call->out, "OK");
}

static void client_getname(const struct call *call)
{
    if (call->session->name)
        resp_add_bulk_string(call->out, call->session->name);
    else
        resp_add_null_bulk(call->out);
}

/* Redis 7.2's CLIENT SETINFO, which redis-py 5 and other clients send on connect. */
static void client_setinfo(const struct call *call)
{
    const struct resp_arg *attr = &call->req->argv[2];

    if (!command_arg_is(attr, "lib-name") && !command_arg_is(attr, "lib-ver"))
        resp_add_error(call->out, "ERR Unrecognized option '%.128s'", attr->data);
    else if (!printable_word(&call->req->argv[3]))
        resp_add_error(call->out,
                       "ERR %.128s cannot contain spaces, newlines or special characters.",
                       attr->data);
    else
        resp_add_simple(call->out, "OK"); /* accepted; nothing here reports it */
}

static void client_id(const struct call *call)
{
    resp_add_integer(call->out, (long long)call->session->id);
}

const struct command client_subcommands[] = {
    {"getname", 2, client_getname, NULL, "GETNAME", "Return the name of the current connection."},
    {"help", 2, command_help, NULL, "HELP", "Print this help."},
    {"id", 2, client_id, NULL, "ID", "Return the ID of the current connection."},
    {"setinfo", 4, client_setinfo, NULL, "SETINFO <LIB-NAME|LIB-VER> <value>",
     "Set client library name or version."},
    {"setname", 3, client_setname, NULL, "SETNAME <name>",
     "Assign the name <name> to the current connection."},
    {NULL, 0, NULL, NULL, NULL, NULL},
};
