/* Certificates kept in external files: the watch, and each consistent change into the pipeline. */
#ifndef CERTVISOR_EXTERNAL_H
#define CERTVISOR_EXTERNAL_H

#include "agent.h"

#include <jansson.h>

/*
 * (Re)starts watching the files of the configuration's "certificate <name>"
 * sections and reads them now: a pair that is consistent and differs from
 * the one in force goes through the apply pipeline (origin "external"). Called
 * at start-up and after each configuration reload. Returns 0, or a negative
 * error (logged).
 */
int external_watch_start(struct agent *agent);

/*
 * external_watch_start() after a configuration reload, whose answer (the reload's summary) must
 * tell the operator what cannot be taken from the files: each pair that is not consistent now
 * (a file missing or unreadable, a key that does not match) and each consistent pair that
 * validation refuses (x509_check: a CA certificate, expired, ...) adds its reason to summary's
 * "warnings" and sets its "exit" to 1, which the reply takes. The certificate in force stays,
 * and the files stay watched: once they are fixed they are applied. summary NULL: as
 * external_watch_start(). Returns what external_watch_start() returns.
 */
int external_watch_reload(struct agent *agent, json_t *summary);

void external_watch_free(struct agent *agent);

#endif
