/* Putting a new configuration into force: the apply pipeline's step for conf.d changes. */
#ifndef CERTVISOR_RECONFIGURE_H
#define CERTVISOR_RECONFIGURE_H

#include "agent.h"
#include "config.h"

#include <jansson.h>

/*
 * Reads the configuration files again into a new configuration, ready to be
 * put into force: directories made, the runtime policy applied, and the
 * agent's own sockets kept (a warning each in warnings when they changed).
 * Nothing running is touched. Returns 0, or a negative error with a malloc'd
 * message (file, line, problem) in *ret_error.
 */
int reconfigure_load(struct agent *agent, struct agent_config **ret_config, json_t *warnings,
                     char **ret_error);

/* What reconfigure_swap() would do with config, in summary's arrays, without doing it. */
void reconfigure_changes(const struct agent *agent, const struct agent_config *config,
                         json_t *summary);

/*
 * Puts a loaded configuration into force (takes it): services added,
 * restarted with changed settings, or stopped and removed; summary's arrays
 * "added", "changed", "updated" and "removed" say which. Used by the apply
 * pipeline, after the rendered files are written (agent/apply/apply.c).
 */
void reconfigure_swap(struct agent *agent, struct agent_config *config, json_t *summary);

#endif
