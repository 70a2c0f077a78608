/* certvisorctl's side of the "cluster ldap ..." commands. */
#ifndef CERTVISOR_CTL_LDAP_H
#define CERTVISOR_CTL_LDAP_H

#include <jansson.h>

/* Fills args and options of "cluster ldap test <user> [--password-file <file>|-]": the
 * password from the file, standard input, or asked for. Returns 0, or -1 after printing why. */
int ctl_ldap_test_arguments(int argc, char **argv, json_t *args, json_t *options);

/* Prints the answer of "cluster ldap show|test": "name: value" lines; a failure's reason on
 * standard error. */
void ctl_print_ldap_reply(const char *command, json_t *reply);

#endif
