/* certvisorctl's side of the "replica ..." commands: certificate files in, links and lists out. */
#ifndef CERTVISOR_CTL_REPLICA_H
#define CERTVISOR_CTL_REPLICA_H

#include <jansson.h>

/*
 * Fills args and options of "replica trust add <list> <file>" (the file's
 * PEM in options "certificate") and "replica trust remove <list>
 * <file|fingerprint>" (an existing file is read; anything else is a
 * fingerprint). Returns 0, or -1 after printing the problem.
 */
int ctl_replica_arguments(const char *command, int argc, char **argv, json_t *args,
                          json_t *options);

/* Prints the answer of a "replica ..." command (a dry run's plan is printed elsewhere). */
void ctl_print_replica_reply(const char *command, json_t *reply);

/* Reads a file given on the command line into a JSON string (certvisorctl.c). */
json_t *read_pem_file(const char *path);

#endif
