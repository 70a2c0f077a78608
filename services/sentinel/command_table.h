/* The command table shared by the files that implement the commands (private to commands*.c). */
#ifndef CERTVISOR_SENTINEL_COMMAND_TABLE_H
#define CERTVISOR_SENTINEL_COMMAND_TABLE_H

#include "commands.h"

#include <stdbool.h>

struct command;

/* One request being answered. */
struct call {
    struct session *session;
    const struct command_env *env;
    const struct resp_request *req;
    const struct command *container; /* SENTINEL or CLIENT for a subcommand; NULL otherwise */
    struct resp_buf *out;
};

/*
 * One command, or one subcommand of a container (SENTINEL, CLIENT). Tables
 * end with an entry whose name is NULL. The arity counts the words of the
 * request, names included, as Redis's does: n exactly, -n at least n.
 */
struct command {
    const char *name; /* lower case, as in Redis's errors: "get-master-addr-by-name" */
    int arity;
    void (*run)(const struct call *call);
    const struct command *subcommands; /* a container's; NULL for a plain command */
    const char *usage;                 /* for HELP: "MASTER <master-name>" */
    const char *summary;
};

extern const struct command sentinel_subcommands[];
extern const struct command client_subcommands[];

void command_ping(const struct call *call);
void command_auth(const struct call *call);

/* HELP for a container: its usage line, then each subcommand's usage and summary. */
void command_help(const struct call *call);

/* Writes text[0, len) upper-cased into buf (always NUL-terminated, cut to fit). */
void command_upper(const char *text, size_t len, char *buf, size_t buf_len);

/* True when arg is word, ignoring case (command names are case-insensitive). */
bool command_arg_is(const struct resp_arg *arg, const char *word);

/*
 * "ERR wrong number of arguments for 'sentinel|master' command": name within
 * container (NULL for a plain command), in lower case as Redis writes them.
 */
void command_wrong_arity(struct resp_buf *out, const char *container, const char *name);

#endif
