/* Certificates kept in external files: the watch, and each consistent change into the pipeline. */
#ifndef CERTVISOR_EXTERNAL_H
#define CERTVISOR_EXTERNAL_H

#include "agent.h"

/*
 * (Re)starts watching the files of the configuration's "certificate <name>"
 * sections and reads them now: a pair that is consistent and differs from
 * the one in force goes through the apply pipeline (origin "external"). Called
 * at start-up and after each configuration reload. Returns 0, or a negative
 * error (logged).
 */
int external_watch_start(struct agent *agent);

void external_watch_free(struct agent *agent);

#endif
