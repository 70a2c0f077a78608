/* Finding a request's command, checking its arguments, and Redis's errors when either is wrong. */
#include "command_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * What Sentinel answers beyond the SENTINEL command that clients rely on.
 * HELLO, SELECT and QUIT are left out on purpose: Redis 7.0's Sentinel has no
 * SELECT or QUIT either, and "unknown command" for HELLO makes every client
 * fall back to RESP2, the only protocol this service speaks.
 */
static const struct command commands[] = {
    {"ping", -1, command_ping, NULL, "PING [<message>]", "Return PONG, or the message."},
    {"auth", -2, command_auth, NULL, "AUTH [<username>] <password>", "Authenticate."},
    {"sentinel", -2, NULL, sentinel_subcommands, NULL, NULL},
    {"client", -2, NULL, client_subcommands, NULL, NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

bool command_arg_is(const struct resp_arg *arg, const char *word)
{
    size_t len = strlen(word);

    return arg->len == len && strncasecmp(arg->data, word, len) == 0;
}

static const struct command *find(const struct command *table, const struct resp_arg *name)
{
    for (; table->name; table++)
        if (command_arg_is(name, table->name))
            return table;
    return NULL;
}

static bool arity_ok(int arity, size_t argc)
{
    return arity >= 0 ? argc == (size_t)arity : argc >= (size_t)-arity;
}

void command_wrong_arity(struct resp_buf *out, const char *container, const char *name)
{
    resp_add_error(out, "ERR wrong number of arguments for '%s%s%s' command",
                   container ? container : "", container ? "|" : "", name);
}

/* Redis's words exactly: the name as sent, then the first arguments quoted, up to 128 bytes. */
static void unknown_command(struct resp_buf *out, const struct resp_request *req)
{
    char args[160] = "";
    size_t used = 0;

    for (size_t i = 1; i < req->argc && used < 128; i++) {
        int n = snprintf(args + used, sizeof(args) - used, "'%.*s' ", (int)(128 - used),
                         req->argv[i].data);

        if (n < 0 || (size_t)n >= sizeof(args) - used)
            break;
        used += (size_t)n;
    }
    resp_add_error(out, "ERR unknown command '%.128s', with args beginning with: %s",
                   req->argv[0].data, args);
}

void command_upper(const char *text, size_t len, char *buf, size_t buf_len)
{
    size_t i = 0;

    for (; i < len && i + 1 < buf_len; i++)
        buf[i] = text[i] >= 'a' && text[i] <= 'z' ? (char)(text[i] - 'a' + 'A') : text[i];
    buf[i] = '\0';
}

void command_help(const struct call *call)
{
    const struct command *sub = call->container->subcommands;
    char upper[32], line[160];
    size_t n = 1;

    for (const struct command *c = sub; c->name; c++)
        n += c->summary ? 2 : 0;
    command_upper(call->container->name, strlen(call->container->name), upper, sizeof(upper));
    resp_add_array(call->out, n);
    snprintf(line, sizeof(line),
             "%s <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", upper);
    resp_add_simple(call->out, line);
    for (const struct command *c = sub; c->name; c++) {
        if (!c->summary)
            continue; /* not listed: known to Sentinel, refused here */
        resp_add_simple(call->out, c->usage);
        snprintf(line, sizeof(line), "    %s", c->summary);
        resp_add_simple(call->out, line);
    }
}

void commands_run(struct session *session, const struct command_env *env,
                  const struct resp_request *req, struct resp_buf *out)
{
    struct call call = {session, env, req, NULL, out};
    const struct command *command = find(commands, &req->argv[0]);
    const struct command *sub;
    char upper[32];

    if (!command) {
        unknown_command(out, req);
        return;
    }
    if (!command->subcommands || req->argc < 2) {
        if (!arity_ok(command->arity, req->argc))
            command_wrong_arity(out, NULL, command->name);
        else
            command->run(&call);
        return;
    }
    sub = find(command->subcommands, &req->argv[1]);
    command_upper(command->name, strlen(command->name), upper, sizeof(upper));
    if (!sub) {
        resp_add_error(out, "ERR unknown subcommand '%.128s'. Try %s HELP.", req->argv[1].data,
                       upper);
    } else if (!arity_ok(sub->arity, req->argc)) {
        command_wrong_arity(out, command->name, sub->name);
    } else {
        call.container = command;
        sub->run(&call);
    }
}

void session_clear(struct session *session)
{
    free(session->name);
    session->name = NULL;
}
