/* certvisord's own behaviour around the parts: readiness, status, shutdown, reload handshake. */
#ifndef CERTVISOR_DAEMON_H
#define CERTVISOR_DAEMON_H

#include "agent.h"

/* Registers the hooks lower parts call (struct agent_hooks). */
void agent_set_hooks(struct agent *agent);

/* Begins an orderly shutdown: every service stops in reverse dependency order, then the loop ends.
 */
void agent_shutdown(struct agent *agent);

/*
 * The supervisor's observer (struct supervisor_observer), after every pass of
 * its scheduler: tells systemd once everything autostarted is up and what runs,
 * and ends the loop once a shutdown has stopped every service.
 */
void agent_on_services_changed(void *agent);

/* Sends the agent's one-line STATUS= to systemd (no-op outside systemd). */
void agent_update_status(struct agent *agent);

#endif
