/* certvisorctl's side of the "replica ..." commands: certificate files in, links and lists out. */
#ifndef CERTVISOR_CTL_REPLICA_H
#define CERTVISOR_CTL_REPLICA_H

#include <jansson.h>
#include <stdbool.h>

/*
 * Fills args and options of "replica trust add <list> <file>" (the file's
 * PEM in options "certificate") and "replica trust remove <list>
 * <file|fingerprint>" (an existing file is read; anything else is a
 * fingerprint). Returns 0, or the exit status after printing the problem
 * (as read_pem_file()).
 */
int ctl_replica_arguments(const char *command, int argc, char **argv, json_t *args,
                          json_t *options);

/* Prints the answer of a "replica ..." command (a dry run's plan is printed elsewhere). */
void ctl_print_replica_reply(const char *command, json_t *reply);

/*
 * Reads a certificate or key file given on the command line into *ret_pem, a
 * JSON string for the agent to validate (certvisorctl.c); what names it in
 * messages ("certificate 'cm'", "the key of certificate 'cm'"). Returns 0, or
 * after printing the problem the exit status: 2 for a file that cannot be read
 * (missing, a directory, too large), 1 for one that cannot be PEM text (DER,
 * UTF-16, binary), as the agent answers for any other invalid certificate.
 */
int read_pem_file(const char *path, const char *what, bool is_key, json_t **ret_pem);

/* Whether a JSON array of strings (a reply's "restarted") holds name (certvisorctl.c). */
bool ctl_name_in(json_t *array, const char *name);

#endif
