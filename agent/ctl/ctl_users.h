/* certvisorctl's side of the "user ..." commands: reading a password without echoing it. */
#ifndef CERTVISOR_CTL_USERS_H
#define CERTVISOR_CTL_USERS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/*
 * Fills args and options of "user add|passwd <name> [--role r] [--password-file f]":
 * the password from the file (its first line), or asked for twice on the
 * terminal without echo, or read as one line from standard input when it is
 * not a terminal. Returns 0, or -1 after printing the problem.
 */
int ctl_user_arguments(const char *command, int argc, char **argv, json_t *args, json_t *options);

/*
 * Reads a password into buf: the first line of file, standard input for "-" (or when it is not
 * a terminal), else asked for without echo (twice with confirm). Returns 0, or -1 after printing
 * why.
 */
int ctl_read_password(const char *name, const char *file, bool confirm, char *buf, size_t len);

/* Prints the answer of a "user ..." command. */
void ctl_print_user_reply(const char *command, json_t *reply);

#endif
