/* The control protocol shared by certvisord and its clients: the command table and framing. */
#ifndef CERTVISOR_CONTROL_PROTO_H
#define CERTVISOR_CONTROL_PROTO_H

#include <jansson.h>
#include <stddef.h>

/*
 * Messages are single-line JSON objects terminated by '\n', at most
 * CONTROL_MAX_MESSAGE bytes. A request is {"command": "...", "args": [...],
 * "options": {...}}. The agent answers with one object holding "exit" (the
 * exit status certvisorctl should use) and command-specific fields, or, for
 * streaming commands, with any number of {"line": "..."} objects first.
 */
#define CONTROL_MAX_MESSAGE (1024 * 1024)

enum control_access {
    CONTROL_ACCESS_READ,  /* anyone who can connect */
    CONTROL_ACCESS_ADMIN, /* root, the agent's own user and the admin group */
};

/*
 * The one command table. Each row: the word, who may call it, usage, and a
 * one-line summary. The agent binds a handler to every row at compile time
 * (control_handle_<word>), and certvisorctl generates its help from it.
 */
#define CONTROL_COMMANDS(X)                                                                        \
    X(status, CONTROL_ACCESS_READ, "status [<name>...]",                                           \
      "Show the state of the named services, or of all of them.")                                  \
    X(start, CONTROL_ACCESS_ADMIN, "start <name>...|all",                                          \
      "Start services (and what they run after); return once each is ready or has failed.")        \
    X(stop, CONTROL_ACCESS_ADMIN, "stop <name>...|all",                                            \
      "Stop services; with 'all', in reverse dependency order.")                                   \
    X(restart, CONTROL_ACCESS_ADMIN, "restart <name>...|all",                                      \
      "Stop then start services; return once each is ready again or has failed.")                  \
    X(reload, CONTROL_ACCESS_ADMIN, "reload [<name>...]",                                          \
      "Without names: re-read the configuration and restart only the services whose settings "     \
      "changed. With names: reload those services (their reload signal, or a restart).")           \
    X(pid, CONTROL_ACCESS_READ, "pid [<name>...|all]",                                             \
      "Print the agent's pid, or the pids of the named services (0 when not running).")            \
    X(tail, CONTROL_ACCESS_READ, "tail [-f] [-n <lines>] <name> [stdout|stderr]",                  \
      "Print the last output lines of a service; with -f, keep following it.")                     \
    X(avail, CONTROL_ACCESS_READ, "avail", "List the configured services and how they start.")     \
    X(version, CONTROL_ACCESS_READ, "version", "Print the agent's version.")

#define CONTROL_COMMAND_ENUM(word, access, usage, summary) CONTROL_CMD_##word,
enum control_command { CONTROL_COMMANDS(CONTROL_COMMAND_ENUM) CONTROL_CMD_COUNT };
#undef CONTROL_COMMAND_ENUM

struct control_command_info {
    const char *word;
    enum control_access access;
    const char *usage;
    const char *summary;
};

extern const struct control_command_info control_command_table[CONTROL_CMD_COUNT];

/* Returns the command for a word, or -1 when there is none. */
int control_command_lookup(const char *word);

/* Serializes a message as one line (with its '\n'). Returns a malloc'd string or NULL. */
char *control_encode(const json_t *message, size_t *ret_len);

/*
 * Parses one line (without its '\n'). Returns 0 and a new reference in
 * *ret_message, or CV_EPROTOCOL with a description in err_buf.
 */
int control_decode(const char *line, size_t len, json_t **ret_message, char *err_buf,
                   size_t err_len);

#endif
