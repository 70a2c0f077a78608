/* certvisorctl's side of the "cluster ocsp ..." commands: printing their answers. */
#ifndef CERTVISOR_CTL_OCSP_H
#define CERTVISOR_CTL_OCSP_H

#include <jansson.h>

/*
 * Prints the answer of a "cluster ocsp config|status|test": "name: value" lines, the REST API's
 * field names, then (for a failed test) the error on standard error. Changes (config proxy,
 * config set) are printed as every policy change is, by the caller.
 */
void ctl_print_ocsp_reply(const char *command, json_t *reply);

#endif
